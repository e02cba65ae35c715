//! "Forgot your password?": ask for a link (`/password-reset`), then set a new password
//! through it (`/password-reset/{token}`). The rules live in `auth::reset`; here: the
//! throttle, the neutral answer (the same whether or not the address has an account) and the
//! pages. These pages are never cached, and the token is kept out of the access log.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::http::header::{self, CacheControl, CacheDirective};
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use crate::auth::reset::{self, Delivery, RequestOrigin};
use crate::auth::{self, NewPassword, throttle, throttle::Attempt};

use super::error::{AppError, AppResult};
use super::page::{self, Page};
use super::viewer::LOGIN_KEY;
use super::{AppState, see_other};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/password-reset", web::get().to(request_form))
        .route("/password-reset", web::post().to(request_link))
        .route("/password-reset/{token}", web::get().to(new_password_form))
        .route("/password-reset/{token}", web::post().to(set_new_password));
}

#[derive(Template)]
#[template(path = "password_reset_request.html")]
pub struct RequestPage {
    page: Page,
    /// After a request: how the link travels (the same answer for every address).
    sent: Option<Delivery>,
}

#[derive(Template)]
#[template(path = "password_reset_form.html")]
pub struct NewPasswordPage {
    page: Page,
    token: String,
    email: String,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "password_reset_invalid.html")]
pub struct InvalidLinkPage {
    page: Page,
}

fn private(status: StatusCode, page: impl Template) -> AppResult<HttpResponse> {
    let body = page.render().map_err(anyhow::Error::from)?;
    Ok(HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .insert_header(CacheControl(vec![CacheDirective::NoStore]))
        .body(body))
}

pub async fn request_form(session: Session) -> AppResult<HttpResponse> {
    private(StatusCode::OK, RequestPage { page: Page::new(&session, None), sent: None })
}

#[derive(Deserialize)]
pub struct RequestForm {
    email: String,
}

pub async fn request_link(
    state: web::Data<AppState>,
    req: HttpRequest,
    session: Session,
    form: web::Form<RequestForm>,
) -> AppResult<HttpResponse> {
    let email = form.into_inner().email.trim().to_owned();
    if email.is_empty() || email.len() > auth::MAX_EMAIL_BYTES {
        return Err(AppError::BadRequest("Please give the email address of your account.".into()));
    }
    let attempt = Attempt::reset_request(&email, &super::client_ip(&req, state.config()));
    if let Some(wait) = state.db(move |c| Ok(throttle::admit(c, &attempt)?)).await? {
        tracing::warn!("password-reset request refused: too many requests");
        return Err(super::too_many("requests for a password link", wait));
    }
    let delivery = reset::request(&state.ctx, email, request_origin(&req, &state)).await?;
    private(StatusCode::OK, RequestPage { page: Page::new(&session, None), sent: Some(delivery) })
}

/// The request's own scheme and `Host`, for the operator's log line only (see `auth::reset`).
pub fn request_origin(req: &HttpRequest, state: &AppState) -> Option<RequestOrigin> {
    let host = req.headers().get(header::HOST).and_then(|h| h.to_str().ok())?;
    RequestOrigin::new(state.config().secure_cookies, host)
}

pub async fn new_password_form(
    state: web::Data<AppState>,
    session: Session,
    token: web::Path<String>,
) -> AppResult<HttpResponse> {
    let token = token.into_inner();
    let check = token.clone();
    match state.db(move |c| Ok(reset::holder(c, &check)?)).await? {
        Some(person) => private(
            StatusCode::OK,
            NewPasswordPage { page: Page::new(&session, None), token, email: person.email, error: None },
        ),
        None => invalid(&session),
    }
}

fn invalid(session: &Session) -> AppResult<HttpResponse> {
    private(StatusCode::GONE, InvalidLinkPage { page: Page::new(session, None) })
}

#[derive(Deserialize)]
pub struct NewPasswordForm {
    new_password: String,
    new_password_repeat: String,
}

pub async fn set_new_password(
    state: web::Data<AppState>,
    session: Session,
    token: web::Path<String>,
    form: web::Form<NewPasswordForm>,
) -> AppResult<HttpResponse> {
    let token = token.into_inner();
    let check = token.clone();
    let Some(person) = state.db(move |c| Ok(reset::holder(c, &check)?)).await? else {
        return invalid(&session);
    };
    let password = match NewPassword::confirmed(&form.new_password, &form.new_password_repeat) {
        Ok(password) => password,
        Err(problem) => {
            let page = NewPasswordPage {
                page: Page::new(&session, None),
                token,
                email: person.email,
                error: Some(problem.to_string()),
            };
            return private(StatusCode::UNPROCESSABLE_ENTITY, page);
        }
    };
    let hash = {
        let _permit = state.password_checks.acquire().await.map_err(anyhow::Error::from)?;
        web::block(move || password.hash()).await.map_err(anyhow::Error::from)??
    };
    let Some(person) = state.db(move |c| Ok(reset::complete(c, &token, &hash)?)).await? else {
        return invalid(&session);
    };
    tracing::info!(person = person.id, "password set through a reset link");
    // Whoever was logged in in this browser is not any more; the person logs in anew.
    session.remove(LOGIN_KEY);
    session.renew();
    page::rotate_csrf_token(&session);
    page::flash(&session, "success", "Your new password is set, and every session of yours has ended. Please log in.");
    Ok(see_other("/login"))
}
