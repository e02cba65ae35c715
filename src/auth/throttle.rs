//! Failed-login throttling, per account and per client address: after `EMAIL_LIMIT` wrong
//! passwords for one email, or `IP_LIMIT` failures from one address, within `WINDOW`, further
//! attempts are refused (429) until the window has passed. Counts live in the database, so
//! every server of a deployment enforces the same limits, and the table is bounded whatever
//! an attacker sends (see `LoginFailure`).
//!
//! Requests for password-reset links are counted the same way under their own keys
//! (`reset-email:…`, `reset-ip:…`) and lower limits ([`Attempt::reset_request`]): every
//! request counts, whether or not the account exists, so the limit reveals nothing either.

use std::time::Duration;

use crate::db::models::LoginFailure;
use crate::db::models::person::normalize_email;
use crate::db::{DbConn, now, write_transaction};

pub const EMAIL_LIMIT: i32 = 10;
pub const IP_LIMIT: i32 = 50;
pub const WINDOW: Duration = Duration::from_secs(15 * 60);
/// Reset links requested for one email address, and from one client address, per `WINDOW`.
pub const RESET_EMAIL_LIMIT: i32 = 3;
pub const RESET_IP_LIMIT: i32 = 20;

/// Who is trying: the account and the address the attempt comes from.
#[derive(Clone, Debug)]
pub struct Attempt {
    email_key: String,
    ip_key: String,
    email_limit: i32,
    ip_limit: i32,
}

impl Attempt {
    /// A login (or a check of the current password before changing it).
    pub fn new(email: &str, ip: &str) -> Self {
        Self {
            email_key: format!("email:{}", normalize_email(email)),
            ip_key: format!("ip:{ip}"),
            email_limit: EMAIL_LIMIT,
            ip_limit: IP_LIMIT,
        }
    }

    /// A request for a password-reset link.
    pub fn reset_request(email: &str, ip: &str) -> Self {
        Self {
            email_key: format!("reset-email:{}", normalize_email(email)),
            ip_key: format!("reset-ip:{ip}"),
            email_limit: RESET_EMAIL_LIMIT,
            ip_limit: RESET_IP_LIMIT,
        }
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
            let limit = if row.key == attempt.email_key { attempt.email_limit } else { attempt.ip_limit };
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

/// A new password was set through a reset link: the failed logins counted against the
/// account are forgiven (the person may have locked it out while trying to remember).
pub fn forgive(conn: &mut DbConn, email: &str) -> diesel::QueryResult<()> {
    LoginFailure::clear(conn, &Attempt::new(email, "").email_key).map(|_| ())
}
