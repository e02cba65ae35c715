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

/// Admit a login attempt, or `Some(wait)` while its account or address is locked out.
///
/// An admitted attempt is counted as a failure before the password is checked, in one
/// transaction with the check of the limits: concurrent attempts cannot all slip past a
/// check that none of them has been counted in yet. [`succeeded`] takes the count back.
pub fn admit(conn: &mut DbConn, attempt: &Attempt) -> diesel::QueryResult<Option<Duration>> {
    let since = window_start();
    let outcome = write_transaction(conn, |c| {
        for key in attempt.keys() {
            LoginFailure::record(c, &key, since)?;
        }
        let mut wait = None;
        for row in LoginFailure::current(c, &attempt.keys(), since)? {
            let limit = if row.key == attempt.email_key { EMAIL_LIMIT } else { IP_LIMIT };
            if row.failures > limit {
                let left = (row.window_start - since).to_std().unwrap_or_default();
                wait = Some(wait.map_or(left, |w: Duration| w.max(left)));
            }
        }
        // Locked out: roll the counting back, so refused attempts cost no rows.
        match wait {
            Some(wait) => Err(Admission::Locked(wait)),
            None => Ok(()),
        }
    });
    match outcome {
        Ok(()) => Ok(None),
        Err(Admission::Locked(wait)) => Ok(Some(wait)),
        Err(Admission::Db(err)) => Err(err),
    }
}

enum Admission {
    Locked(Duration),
    Db(diesel::result::Error),
}

impl From<diesel::result::Error> for Admission {
    fn from(err: diesel::result::Error) -> Self {
        Self::Db(err)
    }
}

/// The password was right: the account's failures are forgiven, and this attempt no longer
/// counts against the address.
pub fn succeeded(conn: &mut DbConn, attempt: &Attempt) -> diesel::QueryResult<()> {
    write_transaction(conn, |c| {
        LoginFailure::clear(c, &attempt.email_key)?;
        LoginFailure::take_back(c, &attempt.ip_key)
    })
}
