//! Password-reset links, and invitations (the same link, for an account created without a
//! password).
//!
//! A link carries a random token of [`TOKEN_BYTES`] bytes; only its SHA-256 is stored
//! (`password_resets`), so a copy of the database sets no password. Links are looked up by
//! that hash — a comparison of hashes of a 256-bit secret tells a timing attacker nothing
//! worth having — expire after [`RESET_LINK_LIFETIME`] (invitations after
//! [`INVITATION_LIFETIME`]), work once, and die with every other link of their person when
//! the password changes by any route, when the account is deactivated, or when a newer link
//! is issued. Deactivated accounts get no link and cannot use one.
//!
//! Delivery: by mail when SMTP is configured (in the background, see `mail`), otherwise the
//! link is written to the log at warn level for the operator. A link in a mail always starts
//! with `TOXTEMP_PUBLIC_URL` (required with SMTP), never with a request's Host header, which
//! an attacker chooses (Host-header poisoning would mail a victim a link to the attacker's
//! site carrying a valid token). Only the operator's log line falls back to the request's
//! host when the variable is unset, and says so. Tokens appear nowhere else in logs: the
//! access log shows `/password-reset/…` (see `web::loggable_path`).

use std::time::Duration;

use base64::Engine;
use diesel::prelude::*;
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::context::AppContext;
use crate::db::models::{PasswordReset, Person};
use crate::db::schema::persons;
use crate::db::{DbConn, write_transaction};
use crate::mail::Mail;

/// How long a password-reset link works.
pub const RESET_LINK_LIFETIME: Duration = Duration::from_secs(3600);
/// How long an invitation (the first password of an account created by staff) works.
pub const INVITATION_LIFETIME: Duration = Duration::from_secs(72 * 3600);
/// Random bytes in a token (base64url in the link: 43 characters).
pub const TOKEN_BYTES: usize = 32;
const TOKEN_CHARS: usize = 43;

/// A fresh random token, base64url without padding.
pub fn new_token() -> String {
    let mut bytes = [0u8; TOKEN_BYTES];
    rand::rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// What is stored for a token: its SHA-256, hex.
fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// How links reach people on this server. It depends on the configuration only, never on
/// whether the address asked for has an account.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    Mail,
    OperatorLog,
}

pub fn delivery(ctx: &AppContext) -> Delivery {
    if ctx.mailer.is_configured() && ctx.config.public_url.is_some() { Delivery::Mail } else { Delivery::OperatorLog }
}

/// `scheme://host` of a request, only for the operator's log line when `TOXTEMP_PUBLIC_URL`
/// is unset. Built from the `Host` header alone (not `X-Forwarded-Host`), and only when it
/// looks like a host name or address with an optional port.
#[derive(Clone, Debug)]
pub struct RequestOrigin(String);

impl RequestOrigin {
    pub fn new(secure: bool, host: &str) -> Option<Self> {
        let plausible = !host.is_empty()
            && host.len() <= 255
            && host.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'));
        plausible.then(|| Self(format!("{}://{host}", if secure { "https" } else { "http" })))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Purpose {
    Reset,
    Invitation,
}

/// Someone asked for a reset link for `email`: an active account gets a new one (its older
/// links die), mailed or logged. Unknown and deactivated addresses get nothing, and the
/// answer is the same.
pub async fn request(ctx: &AppContext, email: String, origin: Option<RequestOrigin>) -> anyhow::Result<Delivery> {
    let issued = ctx
        .db(move |c| {
            PasswordReset::delete_expired(c)?;
            match Person::find_by_email(c, &email)? {
                Some(person) if person.is_active => {
                    let token = issue(c, person.id, RESET_LINK_LIFETIME)?;
                    Ok::<_, anyhow::Error>(Some((person, token)))
                }
                _ => Ok(None),
            }
        })
        .await?;
    match issued {
        Some((person, token)) => deliver(ctx, &person, &token, Purpose::Reset, origin.as_ref(), None),
        None => tracing::info!("password reset requested for an address without an active account"),
    }
    Ok(delivery(ctx))
}

/// Invite the person to choose their first password (an account created by staff), or send
/// a fresh link on a staff member's request: an invitation (valid [`INVITATION_LIFETIME`])
/// while they have never logged in, a password reset (valid [`RESET_LINK_LIFETIME`]) after.
pub async fn invite(
    ctx: &AppContext,
    person: &Person,
    inviter: &str,
    origin: Option<RequestOrigin>,
) -> anyhow::Result<Delivery> {
    let id = person.id;
    let (token, purpose) = ctx
        .db(move |c| {
            let logged_in: Option<chrono::NaiveDateTime> =
                persons::table.find(id).select(persons::last_login_at).first(c)?;
            let (purpose, lifetime) = match logged_in {
                None => (Purpose::Invitation, INVITATION_LIFETIME),
                Some(_) => (Purpose::Reset, RESET_LINK_LIFETIME),
            };
            Ok::<_, anyhow::Error>((issue(c, id, lifetime)?, purpose))
        })
        .await?;
    let inviter = matches!(purpose, Purpose::Invitation).then_some(inviter);
    deliver(ctx, person, &token, purpose, origin.as_ref(), inviter);
    Ok(delivery(ctx))
}

/// A new link for the person, replacing their open ones.
fn issue(conn: &mut DbConn, person_id: i32, lifetime: Duration) -> diesel::QueryResult<String> {
    let token = new_token();
    let lifetime = chrono::Duration::from_std(lifetime).unwrap_or_default();
    write_transaction(conn, |c| PasswordReset::replace_for(c, person_id, &token_hash(&token), lifetime))?;
    Ok(token)
}

fn deliver(
    ctx: &AppContext,
    person: &Person,
    token: &str,
    purpose: Purpose,
    origin: Option<&RequestOrigin>,
    inviter: Option<&str>,
) {
    let what = match purpose {
        Purpose::Reset => "password-reset",
        Purpose::Invitation => "invitation",
    };
    let path = format!("/password-reset/{token}");
    match (delivery(ctx), ctx.config.public_url.as_deref()) {
        (Delivery::Mail, Some(base)) => {
            let mail = compose(purpose, &person.email, &format!("{base}{path}"), inviter);
            ctx.mailer.send_in_background(mail, what, person.id);
        }
        (_, base) => {
            let from_request = base.is_none();
            let base = base.or(origin.map(|o| o.0.as_str())).unwrap_or_default();
            tracing::warn!(
                person = person.id,
                email = %person.email,
                link = %format!("{base}{path}"),
                host_from_request = from_request,
                "e-mail is not set up (SMTP_HOST): pass this {what} link to the person yourself{}",
                if from_request { "; its host is the one the request named, check it (or set TOXTEMP_PUBLIC_URL)" } else { "" }
            );
        }
    }
}

fn compose(purpose: Purpose, email: &str, link: &str, inviter: Option<&str>) -> Mail {
    let minutes = |d: Duration| d.as_secs() / 60;
    let (subject, body) = match purpose {
        Purpose::Reset => (
            "Reset your ToxTempAssistant password".to_owned(),
            format!(
                "Someone, hopefully you, asked to reset the password of the ToxTempAssistant account {email}.\n\n\
                 Open this link within {} minutes to choose a new password (it works once):\n\n{link}\n\n\
                 If you did not ask for this, ignore this mail: your password stays as it is.\n",
                minutes(RESET_LINK_LIFETIME)
            ),
        ),
        Purpose::Invitation => (
            "Your ToxTempAssistant account".to_owned(),
            format!(
                "{} set up a ToxTempAssistant account for {email}.\n\n\
                 Open this link within {} hours to choose your password (it works once):\n\n{link}\n",
                inviter.unwrap_or("An administrator"),
                INVITATION_LIFETIME.as_secs() / 3600
            ),
        ),
    };
    Mail { to: email.to_owned(), subject, body }
}

/// The active person an open link belongs to, if the link is open.
pub fn holder(conn: &mut DbConn, token: &str) -> diesel::QueryResult<Option<Person>> {
    Ok(open_link(conn, token)?.map(|(_, person)| person))
}

fn open_link(conn: &mut DbConn, token: &str) -> diesel::QueryResult<Option<(PasswordReset, Person)>> {
    // Not a token of ours (wrong length or alphabet): no query.
    if token.len() != TOKEN_CHARS || !token.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_')) {
        return Ok(None);
    }
    let Some(link) = PasswordReset::find_open(conn, &token_hash(token))? else { return Ok(None) };
    let person = Person::find(conn, link.person_id)?;
    Ok(person.is_active.then_some((link, person)))
}

/// Use the link to set the password whose hash is given: once, in one transaction with the
/// change (which ends every session and every other link of the person) and with forgiving
/// the failed logins counted against the account. `None` when the link is not (or no
/// longer) open.
pub fn complete(conn: &mut DbConn, token: &str, hash: &str) -> diesel::QueryResult<Option<Person>> {
    write_transaction(conn, |c| {
        let Some((link, person)) = open_link(c, token)? else { return Ok(None) };
        if !PasswordReset::consume(c, link.id)? {
            return Ok(None);
        }
        let person = super::replace_password_within(c, person.id, hash)?;
        super::throttle::forgive(c, &person.email)?;
        Ok(Some(person))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_long_random_and_url_safe() {
        let (a, b) = (new_token(), new_token());
        assert_ne!(a, b);
        assert_eq!(a.len(), TOKEN_CHARS);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
        assert_eq!(token_hash(&a).len(), 64);
        assert_ne!(token_hash(&a), a);
    }

    #[test]
    fn request_origins_accept_host_names_only() {
        assert_eq!(RequestOrigin::new(true, "toxtemp.example.org").unwrap().0, "https://toxtemp.example.org");
        assert_eq!(RequestOrigin::new(false, "127.0.0.1:8000").unwrap().0, "http://127.0.0.1:8000");
        for bad in ["", "evil.org/x", "a b", "evil.org@x", "x\r\nSet-Cookie"] {
            assert!(RequestOrigin::new(false, bad).is_none(), "{bad}");
        }
    }
}
