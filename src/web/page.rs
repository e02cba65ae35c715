//! What every page template needs: the person viewing it, the CSRF token for its forms and
//! the one-shot flash messages.

use actix_session::Session;
use serde::{Deserialize, Serialize};

use crate::db::models::Person;

use super::csrf;

const FLASH_KEY: &str = "flash";

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
        Self { user, csrf: csrf::token(session), flashes }
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
