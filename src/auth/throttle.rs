//! Failed-login throttling, per account and per client address: after `EMAIL_LIMIT` wrong
//! passwords for one email, or `IP_LIMIT` failures from one address, within `WINDOW`, further
//! attempts are refused (429) until the window has passed. Counts live in the database, so
//! every server of a deployment enforces the same limits, and the table is bounded whatever
//! an attacker sends (see `LoginFailure`).

use std::time::Duration;

use crate::db::models::LoginFailure;
use crate::db::models::person::normalize_email;
use crate::db::{DbConn, now, write_transaction};

pub const EMAIL_LIMIT: i32 = 10;
pub const IP_LIMIT: i32 = 50;
pub const WINDOW: Duration = Duration::from_secs(15 * 60);

/// Who is trying: the account and the address the attempt comes from.
#[derive(Clone, Debug)]
pub struct Attempt {
    email_key: String,
    ip_key: String,
}

impl Attempt {
    pub fn new(email: &str, ip: &str) -> Self {
        Self { email_key: format!("email:{}", normalize_email(email)), ip_key: format!("ip:{ip}") }
    }

    fn keys(&self) -> [String; 2] {
        [self.email_key.clone(), self.ip_key.clone()]
    }
}

fn window_start() -> chrono::NaiveDateTime {
    now() - chrono::Duration::from_std(WINDOW).unwrap_or_default()
}

/// `Some(wait)` while this account or this address is locked out.
pub fn locked(conn: &mut DbConn, attempt: &Attempt) -> diesel::QueryResult<Option<Duration>> {
    let since = window_start();
    let mut wait = None;
    for row in LoginFailure::current(conn, &attempt.keys(), since)? {
        let limit = if row.key == attempt.email_key { EMAIL_LIMIT } else { IP_LIMIT };
        if row.failures >= limit {
            let left = (row.window_start - since).to_std().unwrap_or_default();
            wait = Some(wait.map_or(left, |w: Duration| w.max(left)));
        }
    }
    Ok(wait)
}

pub fn failed(conn: &mut DbConn, attempt: &Attempt) -> diesel::QueryResult<()> {
    let since = window_start();
    write_transaction(conn, |c| {
        LoginFailure::record(c, &attempt.email_key, since)?;
        LoginFailure::record(c, &attempt.ip_key, since)
    })
}

/// A successful login forgives the account's failures (not the address's).
pub fn succeeded(conn: &mut DbConn, attempt: &Attempt) -> diesel::QueryResult<usize> {
    LoginFailure::clear(conn, &attempt.email_key)
}
