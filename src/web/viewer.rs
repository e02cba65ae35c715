//! Who is asking: the logged-in person (`Viewer`) and the staff-only variant (`Staff`), as
//! actix request extractors.

use std::future::Future;
use std::pin::Pin;

use actix_session::{Session, SessionExt};
use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, web};

use crate::db::models::{Assay, Investigation, Person, Study};

use super::AppState;
use super::error::{AppError, AppResult};
use super::page::Page;

pub const PERSON_KEY: &str = "person_id";

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

    /// The investigation if this person may see it; someone else's answers 404 (its id is
    /// not confirmed to exist).
    pub async fn investigation(&self, state: &AppState, id: i32) -> AppResult<Investigation> {
        let person = self.person.clone();
        state.db(move |c| Ok(Investigation::find_for(c, id, &person)?)).await
    }

    /// The study and its investigation, if this person may see them (else 404).
    pub async fn study(&self, state: &AppState, id: i32) -> AppResult<(Study, Investigation)> {
        let person = self.person.clone();
        state.db(move |c| Ok(Study::find_for(c, id, &person)?)).await
    }

    /// The assay, its study and investigation, if this person may see them (else 404).
    pub async fn assay(&self, state: &AppState, id: i32) -> AppResult<(Assay, Study, Investigation)> {
        let person = self.person.clone();
        state.db(move |c| Ok(Assay::find_for(c, id, &person)?)).await
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
            let Some(id) = session.get::<i32>(PERSON_KEY).ok().flatten() else {
                return Err(AppError::LoginRequired { next });
            };
            match state.db(move |conn| Ok(Person::find(conn, id)?)).await {
                Ok(person) if person.is_active => Ok(Viewer { person, session }),
                // A deleted or deactivated account: its session is over.
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
