//! Passwords (argon2id), account creation shared by the CLI and the first-start admin, and
//! failed-login throttling (`throttle`).

pub mod throttle;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};

use crate::db::DbConn;
use crate::db::models::Person;
use crate::db::models::person::{self, PersonSpec};

pub const MIN_PASSWORD_LEN: usize = 8;

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

/// Create an account after checking the email shape, the password length and uniqueness.
pub fn create_account(conn: &mut DbConn, spec: &PersonSpec<'_>, password: &str) -> anyhow::Result<Person> {
    let email = person::normalize_email(spec.email);
    if !looks_like_email(&email) {
        anyhow::bail!("{email:?} is not an email address");
    }
    if password.chars().count() < MIN_PASSWORD_LEN {
        anyhow::bail!("the password must have at least {MIN_PASSWORD_LEN} characters");
    }
    if Person::find_by_email(conn, &email)?.is_some() {
        anyhow::bail!("an account for {email} exists already");
    }
    let hash = hash_password(password)?;
    Ok(person::create(conn, &PersonSpec { email: &email, ..*spec }, &hash)?)
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
    fn email_shapes() {
        assert!(looks_like_email("a@b.org"));
        assert!(!looks_like_email("a@b"));
        assert!(!looks_like_email("@b.org"));
        assert!(!looks_like_email("a b@c.org"));
    }
}
