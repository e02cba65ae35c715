//! What every page template needs: the person viewing it, the CSRF token for its forms and
//! the one-shot flash messages.

use actix_session::Session;
use serde::{Deserialize, Serialize};

use rand::RngCore;

use crate::db::models::Person;

const FLASH_KEY: &str = "flash";
/// Where the session keeps its CSRF token (checked by the `csrf` middleware).
pub const CSRF_SESSION_KEY: &str = "csrf";

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Flash {
    /// A Bootstrap alert flavour: success, info, warning, danger.
    pub level: String,
    pub message: String,
}

#[derive(Clone, Debug, Default)]
pub struct Page {
    pub user: Option<Person>,
    pub csrf: String,
    pub flashes: Vec<Flash>,
}

impl Page {
    pub fn new(session: &Session, user: Option<Person>) -> Self {
        let flashes = session.remove_as::<Vec<Flash>>(FLASH_KEY).and_then(Result::ok).unwrap_or_default();
        Self { user, csrf: csrf_token(session), flashes }
    }

    /// For error pages, which may be rendered outside a session.
    pub fn anonymous() -> Self {
        Self::default()
    }

    pub fn is_staff(&self) -> bool {
        self.user.as_ref().is_some_and(|u| u.is_staff || u.is_superuser)
    }
}

/// Queue a message for the next page the person sees.
pub fn flash(session: &Session, level: &str, message: impl Into<String>) {
    let mut list = session.get::<Vec<Flash>>(FLASH_KEY).ok().flatten().unwrap_or_default();
    list.push(Flash { level: level.into(), message: message.into() });
    let _ = session.insert(FLASH_KEY, list);
}

/// The session's CSRF token, created on first use.
pub fn csrf_token(session: &Session) -> String {
    if let Ok(Some(token)) = session.get::<String>(CSRF_SESSION_KEY) {
        return token;
    }
    rotate_csrf_token(session)
}

/// Replace the token (at login), so one captured before login is useless after it.
pub fn rotate_csrf_token(session: &Session) -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let token = hex::encode(bytes);
    let _ = session.insert(CSRF_SESSION_KEY, &token);
    token
}
