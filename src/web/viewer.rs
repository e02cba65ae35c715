//! Who is asking: the logged-in person (`Viewer`) and the staff-only variant (`Staff`), as
//! actix request extractors.

use std::future::Future;
use std::pin::Pin;

use actix_session::{Session, SessionExt};
use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, web};

use crate::db::models::{Access, Assay, Investigation, Person, Study};

use super::AppState;
use super::error::{AppError, AppResult};
use super::page::Page;

pub const LOGIN_KEY: &str = "login";

/// How long a login lasts, whatever the cookie says.
pub const SESSION_LIFETIME: chrono::Duration = chrono::Duration::hours(12);

/// What a session holds about its login. A session is valid while the person's session
/// generation is unchanged (logout, a new password and deactivation bump it, ending every
/// session of that person) and for [`SESSION_LIFETIME`] after the login.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Login {
    pub person: i32,
    pub generation: i32,
    /// Unix time of the login.
    pub since: i64,
}

impl Login {
    pub fn of(person: &Person) -> Self {
        Self { person: person.id, generation: person.session_generation, since: chrono::Utc::now().timestamp() }
    }

    fn still_valid_for(&self, person: &Person) -> bool {
        let age = chrono::Utc::now().timestamp() - self.since;
        person.is_active
            && person.session_generation == self.generation
            && (0..SESSION_LIFETIME.num_seconds()).contains(&age)
    }
}

/// The logged-in, active person. Anonymous requests are sent to the login page.
pub struct Viewer {
    pub person: Person,
    pub session: Session,
}

impl Viewer {
    pub fn page(&self) -> Page {
        Page::new(&self.session, Some(self.person.clone()))
    }

    /// How this person is named on audit trails.
    pub fn actor(&self) -> String {
        format!("person {} ({})", self.person.id, self.person.email)
    }

    /// The investigation, if this person may do `access` with it: someone else's answers 404
    /// (its id is not confirmed to exist); staff may view it, but changing it answers 403.
    pub async fn investigation(&self, state: &AppState, id: i32, access: Access) -> AppResult<Investigation> {
        let person = self.person.clone();
        let inv = state.db(move |c| Ok(Investigation::find_for(c, id, &person)?)).await?;
        self.check(&inv, access)?;
        Ok(inv)
    }

    /// The study and its investigation, if this person may do `access` with them.
    pub async fn study(&self, state: &AppState, id: i32, access: Access) -> AppResult<(Study, Investigation)> {
        let person = self.person.clone();
        let found = state.db(move |c| Ok(Study::find_for(c, id, &person)?)).await?;
        self.check(&found.1, access)?;
        Ok(found)
    }

    /// The assay, its study and investigation, if this person may do `access` with them.
    pub async fn assay(&self, state: &AppState, id: i32, access: Access) -> AppResult<(Assay, Study, Investigation)> {
        let person = self.person.clone();
        let found = state.db(move |c| Ok(Assay::find_for(c, id, &person)?)).await?;
        self.check(&found.2, access)?;
        Ok(found)
    }

    fn check(&self, inv: &Investigation, access: Access) -> AppResult<()> {
        if inv.allows(&self.person, access) { Ok(()) } else { Err(AppError::Forbidden) }
    }
}

impl FromRequest for Viewer {
    type Error = AppError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, AppError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let session = req.get_session();
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let next = match req.uri().path_and_query() {
            Some(pq) if req.method() == actix_web::http::Method::GET => pq.to_string(),
            _ => "/".to_owned(),
        };
        Box::pin(async move {
            let state = state.ok_or_else(|| AppError::internal(anyhow::anyhow!("AppState missing")))?;
            let Some(login) = session.get::<Login>(LOGIN_KEY).ok().flatten() else {
                return Err(AppError::LoginRequired { next });
            };
            let id = login.person;
            match state.db(move |conn| Ok(Person::find(conn, id)?)).await {
                Ok(person) if login.still_valid_for(&person) => Ok(Viewer { person, session }),
                // Logged out elsewhere, a new password, deactivated, deleted, or simply too old.
                Ok(_) | Err(AppError::NotFound) => {
                    session.purge();
                    Err(AppError::LoginRequired { next })
                }
                Err(other) => Err(other),
            }
        })
    }
}

/// A logged-in staff member or superuser; anyone else gets 403.
pub struct Staff(pub Viewer);

impl FromRequest for Staff {
    type Error = AppError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, AppError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let viewer = Viewer::from_request(req, payload);
        Box::pin(async move {
            let viewer = viewer.await?;
            if viewer.person.sees_everything() { Ok(Staff(viewer)) } else { Err(AppError::Forbidden) }
        })
    }
}
