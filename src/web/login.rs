//! Login and logout.

use actix_session::Session;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use askama_web::WebTemplate;
use serde::Deserialize;

use crate::auth::{self, throttle, throttle::Attempt};
use crate::db::models::Person;

use actix_web::http::StatusCode;

use super::error::AppResult;
use super::page::Page;
use super::viewer::{LOGIN_KEY, Login};
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
    req: HttpRequest,
    session: Session,
    form: web::Form<LoginForm>,
) -> AppResult<HttpResponse> {
    let LoginForm { email, password, next } = form.into_inner();
    if email.len() > auth::MAX_EMAIL_BYTES || password.len() > auth::MAX_PASSWORD_BYTES {
        return refuse(&session, StatusCode::BAD_REQUEST, String::new(), &next, "Unknown email or wrong password.");
    }
    let attempt = Attempt::new(&email, &super::client_ip(&req, state.config()));
    let check = attempt.clone();
    if let Some(wait) = state.db(move |c| Ok(throttle::admit(c, &check)?)).await? {
        tracing::warn!("login refused: too many failed attempts");
        return Err(super::too_many("failed attempts", wait));
    }
    let candidate = email.clone();
    let found = state.db(move |c| Ok(Person::find_by_email(c, &candidate)?)).await?;
    // The hash check holds no database connection, and only a few run at once.
    let person = {
        let _permit = state.password_checks.acquire().await.map_err(anyhow::Error::from)?;
        web::block(move || auth::check_password(found, &password)).await.map_err(anyhow::Error::from)?
    };
    let Some(person) = person else {
        // Counted already, by `admit`.
        return refuse(&session, StatusCode::UNAUTHORIZED, email, &next, "Unknown email or wrong password.");
    };
    let id = person.id;
    state
        .db(move |c| {
            throttle::succeeded(c, &attempt)?;
            Ok(Person::record_login(c, id)?)
        })
        .await?;
    // A new session id and a new CSRF token: nothing from before login carries over.
    session.renew();
    session.insert(LOGIN_KEY, Login::of(&person)).map_err(anyhow::Error::from)?;
    super::page::rotate_csrf_token(&session);
    tracing::info!(person = person.id, "logged in");
    Ok(see_other(&safe_next(Some(&next))))
}

fn refuse(
    session: &Session,
    status: StatusCode,
    email: String,
    next: &str,
    error: &'static str,
) -> AppResult<HttpResponse> {
    let page = LoginPage { page: Page::new(session, None), email, next: safe_next(Some(next)), error: Some(error) };
    Ok(HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .body(page.render().map_err(anyhow::Error::from)?))
}

/// Logging out ends every session of the person (on every device), not just this cookie.
pub async fn logout(state: web::Data<AppState>, session: Session) -> AppResult<HttpResponse> {
    if let Some(login) = session.get::<Login>(LOGIN_KEY).ok().flatten() {
        state.db(move |c| Ok(Person::end_sessions(c, login.person)?)).await?;
    }
    session.purge();
    Ok(see_other("/login"))
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
