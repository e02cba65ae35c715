//! Who is asking: the logged-in person (`Viewer`) and the staff-only variant (`Staff`), as
//! actix request extractors.

use std::future::Future;
use std::pin::Pin;

use actix_session::{Session, SessionExt};
use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, web};

use crate::db::DbConn;
use crate::db::models::{Access, Assay, Denied, Investigation, Person, Study};

use super::AppState;
use super::error::{AppError, AppResult};
use super::page::Page;

pub const LOGIN_KEY: &str = "login";

/// What a session holds about its login. A session is valid while the person's session
/// generation is unchanged (logout, a new password and deactivation bump it, ending every
/// session of that person) and for the configured lifetime after the login
/// (`TOXTEMP_SESSION_HOURS`), whatever the cookie says.
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

    fn still_valid_for(&self, person: &Person, lifetime: std::time::Duration, now: i64) -> bool {
        let age = now - self.since;
        person.is_active
            && person.id == self.person
            && person.session_generation == self.generation
            && (0..lifetime.as_secs() as i64).contains(&age)
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

    /// The investigation, if this person may do `access` with it: one they do not see (not
    /// theirs, not shared with them) answers 404, its id is not confirmed to exist; one they
    /// see but may not do this with (staff changing anything, a member doing what only the
    /// owner does) answers 403.
    pub async fn investigation(&self, state: &AppState, id: i32, access: Access) -> AppResult<Investigation> {
        let person = self.person.clone();
        state
            .db(move |c| {
                let inv = Investigation::find(c, id)?;
                decide(c, &person, &inv, access)?;
                Ok(inv)
            })
            .await
    }

    /// The study and its investigation, if this person may do `access` with them.
    pub async fn study(&self, state: &AppState, id: i32, access: Access) -> AppResult<(Study, Investigation)> {
        let person = self.person.clone();
        state
            .db(move |c| {
                let study = Study::find(c, id)?;
                let inv = Investigation::find(c, study.investigation_id)?;
                decide(c, &person, &inv, access)?;
                Ok((study, inv))
            })
            .await
    }

    /// The assay, its study and investigation, if this person may do `access` with them.
    pub async fn assay(&self, state: &AppState, id: i32, access: Access) -> AppResult<(Assay, Study, Investigation)> {
        let person = self.person.clone();
        state.db(move |c| assay_for(c, &person, id, access)).await
    }
}

/// [`Viewer::assay`] inside a database task that goes on to change something.
pub(super) fn assay_for(
    c: &mut DbConn,
    person: &Person,
    id: i32,
    access: Access,
) -> AppResult<(Assay, Study, Investigation)> {
    let assay = Assay::find(c, id)?;
    let study = Study::find(c, assay.study_id)?;
    let inv = Investigation::find(c, study.investigation_id)?;
    decide(c, person, &inv, access)?;
    Ok((assay, study, inv))
}

/// One access decision per request (one membership query at most): someone who does not see
/// the investigation gets 404, someone who sees it but may not do `access` with it 403.
fn decide(c: &mut DbConn, person: &Person, inv: &Investigation, access: Access) -> AppResult<()> {
    inv.decide(c, person, access)?.map_err(|denied| match denied {
        Denied::Unseen => AppError::NotFound,
        Denied::NotAllowed => AppError::Forbidden,
    })
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
            let (lifetime, now) = (state.config().session_lifetime, chrono::Utc::now().timestamp());
            match state.db(move |conn| Ok(Person::find(conn, id)?)).await {
                Ok(person) if login.still_valid_for(&person, lifetime, now) => Ok(Viewer { person, session }),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn person() -> Person {
        Person {
            id: 7,
            email: "a@example.org".into(),
            display_name: String::new(),
            organization: String::new(),
            password_hash: String::new(),
            is_active: true,
            is_staff: false,
            is_superuser: false,
            created_at: chrono::Utc::now().naive_utc(),
            session_generation: 3,
        }
    }

    #[test]
    fn a_login_ends_after_its_lifetime_with_a_new_generation_or_deactivation() {
        let twelve_hours = std::time::Duration::from_secs(12 * 3600);
        let login = Login { person: 7, generation: 3, since: 1_000_000 };
        let p = person();
        assert!(login.still_valid_for(&p, twelve_hours, 1_000_000 + 11 * 3600));
        assert!(!login.still_valid_for(&p, twelve_hours, 1_000_000 + 12 * 3600), "12 hours is the end");
        assert!(!login.still_valid_for(&p, twelve_hours, 1_000_000 - 60), "not from the future");
        assert!(!login.still_valid_for(&Person { session_generation: 4, ..p.clone() }, twelve_hours, 1_000_001));
        assert!(!login.still_valid_for(&Person { is_active: false, ..p }, twelve_hours, 1_000_001));
    }
}
