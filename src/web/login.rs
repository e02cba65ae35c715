//! Login and logout.

use actix_session::Session;
use actix_web::{HttpResponse, web};
use askama::Template;
use askama_web::WebTemplate;
use serde::Deserialize;

use crate::auth;

use actix_web::http::StatusCode;

use super::error::{AppError, AppResult};
use super::page::Page;
use super::viewer::PERSON_KEY;
use super::{AppState, see_other};

#[derive(Template, WebTemplate)]
#[template(path = "login.html")]
pub struct LoginPage {
    page: Page,
    email: String,
    next: String,
    error: Option<&'static str>,
}

#[derive(Deserialize)]
pub struct NextQuery {
    next: Option<String>,
}

#[derive(Deserialize)]
pub struct LoginForm {
    email: String,
    password: String,
    #[serde(default)]
    next: String,
}

/// Only same-site paths are followed after login (no open redirect).
fn safe_next(next: Option<&str>) -> String {
    match next {
        // Browsers drop tabs and newlines from URLs, so "/\t/evil" would become "//evil".
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && !n.contains('\\')
                && !n.chars().any(|c| c.is_control() || c.is_whitespace()) =>
        {
            n.to_owned()
        }
        _ => "/".to_owned(),
    }
}

pub async fn form(session: Session, query: web::Query<NextQuery>) -> LoginPage {
    LoginPage {
        page: Page::new(&session, None),
        email: String::new(),
        next: safe_next(query.next.as_deref()),
        error: None,
    }
}

pub async fn submit(
    state: web::Data<AppState>,
    session: Session,
    form: web::Form<LoginForm>,
) -> AppResult<HttpResponse> {
    let LoginForm { email, password, next } = form.into_inner();
    if let Some(wait) = state.login_throttle.locked(&email) {
        let minutes = wait.as_secs().div_ceil(60);
        tracing::warn!("login refused: too many failed attempts for one email");
        return Err(AppError::Rejected(
            StatusCode::TOO_MANY_REQUESTS,
            format!("Too many failed attempts for this account. Please try again in {minutes} minute(s)."),
        ));
    }
    let candidate = email.clone();
    let person = state.db(move |conn| Ok(auth::authenticate(conn, &candidate, &password)?)).await?;
    let Some(person) = person else {
        state.login_throttle.failed(&email);
        let page = LoginPage {
            page: Page::new(&session, None),
            email,
            next: safe_next(Some(&next)),
            error: Some("Unknown email or wrong password."),
        };
        return Ok(HttpResponse::Unauthorized()
            .content_type("text/html; charset=utf-8")
            .body(page.render().map_err(anyhow::Error::from)?));
    };
    state.login_throttle.succeeded(&email);
    // A new session id and a new CSRF token: nothing from before login carries over.
    session.renew();
    session.insert(PERSON_KEY, person.id).map_err(anyhow::Error::from)?;
    super::page::rotate_csrf_token(&session);
    tracing::info!(person = person.id, "logged in");
    Ok(see_other(&safe_next(Some(&next))))
}

pub async fn logout(session: Session) -> HttpResponse {
    session.purge();
    see_other("/login")
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn only_local_paths_are_followed() {
        assert_eq!(safe_next(Some("/assays/3")), "/assays/3");
        assert_eq!(safe_next(Some("//evil.example")), "/");
        assert_eq!(safe_next(Some("https://evil.example")), "/");
        assert_eq!(safe_next(Some("/\\evil.example")), "/");
        assert_eq!(safe_next(Some("/\t/evil.example")), "/");
        assert_eq!(safe_next(Some("/\n/evil.example")), "/");
        assert_eq!(safe_next(None), "/");
    }
}
