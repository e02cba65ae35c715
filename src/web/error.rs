//! The one error type of the web layer. Each variant maps to an HTTP status and a page;
//! internal causes are logged with a reference id and never shown to the user.

use actix_web::http::{StatusCode, header};
use actix_web::{HttpResponse, ResponseError};
use askama::Template;

use super::page::Page;
use crate::drafting::{DraftError, FileProblem, ProblemKind};
use crate::telemetry::new_reference;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("not found")]
    NotFound,
    #[error("forbidden")]
    Forbidden,
    #[error("login required")]
    LoginRequired { next: String },
    #[error("the form has expired")]
    CsrfRejected,
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    /// A refusal with its own status (415, 422, 409 …) and a message for people.
    #[error("{1}")]
    Rejected(StatusCode, String),
    #[error("storage unavailable (reference {0})")]
    StorageUnavailable(String),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

pub type AppResult<T> = Result<T, AppError>;

impl AppError {
    /// Log an internal failure under a fresh reference id and return the matching error.
    pub fn internal(err: impl Into<anyhow::Error>) -> Self {
        Self::Internal(err.into())
    }
}

impl From<diesel::result::Error> for AppError {
    fn from(err: diesel::result::Error) -> Self {
        match err {
            diesel::result::Error::NotFound => Self::NotFound,
            other => Self::Internal(other.into()),
        }
    }
}

impl From<diesel::r2d2::PoolError> for AppError {
    fn from(err: diesel::r2d2::PoolError) -> Self {
        Self::Internal(err.into())
    }
}

impl From<crate::db::Unavailable> for AppError {
    fn from(err: crate::db::Unavailable) -> Self {
        Self::Internal(err.into())
    }
}

/// The status of a refused upload: 413 for sizes, 415 for types, 422 for the rest.
pub fn problems_status(problems: &[FileProblem]) -> StatusCode {
    let has = |kinds: &[ProblemKind]| problems.iter().any(|p| kinds.contains(&p.kind));
    if has(&[ProblemKind::TooLarge, ProblemKind::TotalTooLarge]) {
        StatusCode::PAYLOAD_TOO_LARGE
    } else if has(&[ProblemKind::Unsupported, ProblemKind::WrongContent]) {
        StatusCode::UNSUPPORTED_MEDIA_TYPE
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    }
}

impl From<DraftError> for AppError {
    fn from(err: DraftError) -> Self {
        match err {
            DraftError::Files(problems) => {
                let listed: Vec<String> = problems
                    .iter()
                    .map(|p| if p.name.is_empty() { p.reason.clone() } else { format!("{}: {}", p.name, p.reason) })
                    .collect();
                let message = format!("Nothing was stored and nothing was started. {}", listed.join(" "));
                Self::Rejected(problems_status(&problems), message)
            }
            DraftError::NotFound => Self::NotFound,
            DraftError::Forbidden => Self::Forbidden,
            DraftError::Invalid(message) => Self::BadRequest(message),
            DraftError::ModelUnavailable => Self::Rejected(StatusCode::BAD_REQUEST, err.to_string()),
            DraftError::NoQuestionsChosen => Self::Rejected(StatusCode::UNPROCESSABLE_ENTITY, err.to_string()),
            DraftError::NeedsOverwrite | DraftError::AlreadyRunning | DraftError::AssayGone => {
                Self::Rejected(StatusCode::CONFLICT, err.to_string())
            }
            DraftError::StorageUnavailable { reference } => Self::StorageUnavailable(reference),
            DraftError::Internal(inner) => Self::Internal(inner),
        }
    }
}

impl From<crate::workspaces::WorkspaceError> for AppError {
    fn from(err: crate::workspaces::WorkspaceError) -> Self {
        use crate::workspaces::WorkspaceError;
        match err {
            WorkspaceError::NotFound => Self::NotFound,
            WorkspaceError::Forbidden => Self::Forbidden,
            WorkspaceError::Invalid(message) => Self::Rejected(StatusCode::UNPROCESSABLE_ENTITY, message),
            WorkspaceError::Db(inner) => inner.into(),
        }
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    page: Page,
    status: u16,
    title: &'a str,
    message: String,
    reference: Option<String>,
}

impl ResponseError for AppError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::Forbidden | Self::CsrfRejected => StatusCode::FORBIDDEN,
            Self::LoginRequired { .. } => StatusCode::SEE_OTHER,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Rejected(status, _) => *status,
            Self::StorageUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let Self::LoginRequired { next } = self {
            let target = format!("/login?next={}", urlencode(next));
            return HttpResponse::SeeOther().insert_header((header::LOCATION, target)).finish();
        }
        let (title, message, reference) = match self {
            Self::NotFound => ("Not found", "This page does not exist, or you do not have access to it.".into(), None),
            Self::Forbidden => (
                "Forbidden",
                "You are not allowed to do this: staff may look at everyone's work, but only its owner changes it."
                    .into(),
                None,
            ),
            Self::CsrfRejected => (
                "Form expired",
                "The form was stale or incomplete. Go back, reload the page and try again.".into(),
                None,
            ),
            Self::BadRequest(msg) => ("Cannot accept this request", msg.clone(), None),
            Self::PayloadTooLarge(msg) => ("Too large", msg.clone(), None),
            Self::Rejected(_, msg) => ("Cannot accept this request", msg.clone(), None),
            Self::StorageUnavailable(reference) => (
                "Storage unavailable",
                "Your files could not be stored right now, so nothing was saved. Please try again later.".into(),
                Some(reference.clone()),
            ),
            Self::Internal(err) => {
                let reference = new_reference();
                tracing::error!(reference = %reference, error = ?err, "internal error");
                ("Something went wrong", "An unexpected error occurred. Nothing you can fix: please try again, and quote the reference if it keeps happening.".into(), Some(reference))
            }
            Self::LoginRequired { .. } => unreachable!("handled above"),
        };
        let status = self.status_code();
        let body = ErrorPage { page: Page::anonymous(), status: status.as_u16(), title, message, reference }
            .render()
            .unwrap_or_else(|_| title.to_owned());
        HttpResponse::build(status).content_type("text/html; charset=utf-8").body(body)
    }
}

pub fn urlencode(s: &str) -> String {
    serde_urlencoded::to_string([("", s)]).map(|e| e[1..].to_owned()).unwrap_or_default()
}
