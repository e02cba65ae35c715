//! Passwords (argon2id) and their rules, account creation shared by the CLI, the staff page
//! and the first-start admin, changing a password by any route (`replace_password`),
//! account administration (`accounts`), reset links (`reset`) and failed-login throttling
//! (`throttle`).

pub mod accounts;
pub mod reset;
pub mod throttle;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};

use crate::db::DbConn;
use crate::db::models::Person;
use crate::db::models::person::{self, PersonSpec};

pub const MIN_PASSWORD_LEN: usize = 8;
/// Longest password we hash (argon2 takes any length; a megabyte of it is not a password).
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// Why a new password is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PasswordProblem {
    #[error("The password must have at least {MIN_PASSWORD_LEN} characters.")]
    TooShort,
    #[error("The password must be at most {MAX_PASSWORD_BYTES} bytes long.")]
    TooLong,
    #[error("The two new passwords differ.")]
    Mismatch,
}

/// A new password that follows the rules (the same for every route that sets one).
pub struct NewPassword(String);

impl NewPassword {
    /// A password given once (the command line, the first-start admin).
    pub fn parse(password: &str) -> Result<Self, PasswordProblem> {
        if password.len() > MAX_PASSWORD_BYTES {
            return Err(PasswordProblem::TooLong);
        }
        if password.chars().count() < MIN_PASSWORD_LEN {
            return Err(PasswordProblem::TooShort);
        }
        Ok(Self(password.to_owned()))
    }

    /// A password typed twice in a form.
    pub fn confirmed(password: &str, repeated: &str) -> Result<Self, PasswordProblem> {
        let parsed = Self::parse(password)?;
        if password != repeated {
            return Err(PasswordProblem::Mismatch);
        }
        Ok(parsed)
    }

    /// The argon2id hash (CPU-bound: off the async threads).
    pub fn hash(&self) -> anyhow::Result<String> {
        hash_password(&self.0)
    }
}

/// Why an account cannot be created.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("{0:?} is not an email address")]
    NotAnEmail(String),
    #[error("an account for {0} exists already")]
    Exists(String),
    #[error("{0}")]
    Password(#[from] PasswordProblem),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<diesel::result::Error> for AccountError {
    fn from(err: diesel::result::Error) -> Self {
        Self::Internal(err.into())
    }
}

pub fn hash_password(password: &str) -> anyhow::Result<String> {
    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("hashing the password: {e}"))
}

pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|parsed| Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
        .unwrap_or(false)
}

/// A hash of a random password: verifying against it when the email is unknown makes a
/// failed login take as long as a wrong password, so timing does not reveal accounts.
pub fn dummy_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| hash_password(&uuid::Uuid::new_v4().to_string()).unwrap_or_default())
}

/// Longest email address (RFC 5321): longer ones are refused before any other work.
pub const MAX_EMAIL_BYTES: usize = 254;

/// The person found for a login's email, if the password is theirs and the account active.
/// When no one was found a dummy hash is checked anyway, so timing does not reveal accounts.
/// CPU-bound (argon2): run it off the async threads and without holding a database connection.
pub fn check_password(found: Option<Person>, password: &str) -> Option<Person> {
    match found {
        Some(person) if verify_password(password, &person.password_hash) && person.is_active => Some(person),
        Some(_) => None,
        None => {
            verify_password(password, dummy_hash());
            None
        }
    }
}

/// Create an account after checking the email shape, the password rules and uniqueness.
pub fn create_account(conn: &mut DbConn, spec: &PersonSpec<'_>, password: &str) -> Result<Person, AccountError> {
    let password = NewPassword::parse(password)?;
    let email = new_email(conn, spec.email)?;
    let hash = password.hash()?;
    Ok(person::create(conn, &PersonSpec { email: &email, ..*spec }, &hash)?)
}

/// Create an account that has no password yet: its hash is of a random secret nobody knows
/// (a real argon2 hash, so a login attempt takes as long as for any account). The person
/// sets a password through an invitation link (`reset::invite`).
pub fn create_invited_account(conn: &mut DbConn, spec: &PersonSpec<'_>) -> Result<Person, AccountError> {
    let email = new_email(conn, spec.email)?;
    let hash = hash_password(&reset::new_token())?;
    Ok(person::create(conn, &PersonSpec { email: &email, ..*spec }, &hash)?)
}

/// The normalized email of a new account: well-formed, not too long, not taken.
fn new_email(conn: &mut DbConn, raw: &str) -> Result<String, AccountError> {
    let email = person::normalize_email(raw);
    if !looks_like_email(&email) || email.len() > MAX_EMAIL_BYTES {
        return Err(AccountError::NotAnEmail(email));
    }
    if Person::find_by_email(conn, &email)?.is_some() {
        return Err(AccountError::Exists(email));
    }
    Ok(email)
}

/// Set a new password, by whatever route: every session of the person ends and every open
/// reset link of theirs dies, in one transaction. Returns the person as they are now (a
/// caller that keeps its own browser logged in needs the new session generation).
pub fn replace_password(conn: &mut DbConn, person_id: i32, hash: &str) -> diesel::QueryResult<Person> {
    crate::db::write_transaction(conn, |c| replace_password_within(c, person_id, hash))
}

/// [`replace_password`] inside the caller's transaction.
fn replace_password_within(conn: &mut DbConn, person_id: i32, hash: &str) -> diesel::QueryResult<Person> {
    Person::set_password(conn, person_id, hash)?;
    crate::db::models::PasswordReset::delete_for(conn, person_id)?;
    Person::find(conn, person_id)
}

fn looks_like_email(email: &str) -> bool {
    match email.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !email.contains(char::is_whitespace)
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_only_its_password() {
        let hash = hash_password("correct horse").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &hash));
        assert!(!verify_password("wrong horse", &hash));
        assert!(!verify_password("anything", "not a hash"));
    }

    #[test]
    fn new_passwords_follow_one_set_of_rules() {
        assert!(NewPassword::parse("12345678").is_ok());
        assert_eq!(NewPassword::parse("1234567").err(), Some(PasswordProblem::TooShort));
        assert_eq!(NewPassword::parse(&"x".repeat(MAX_PASSWORD_BYTES + 1)).err(), Some(PasswordProblem::TooLong));
        assert_eq!(NewPassword::confirmed("12345678", "12345679").err(), Some(PasswordProblem::Mismatch));
        assert_eq!(NewPassword::confirmed("1234", "5678").err(), Some(PasswordProblem::TooShort), "rules first");
    }

    #[test]
    fn email_shapes() {
        assert!(looks_like_email("a@b.org"));
        assert!(!looks_like_email("a@b"));
        assert!(!looks_like_email("@b.org"));
        assert!(!looks_like_email("a b@c.org"));
    }
}
