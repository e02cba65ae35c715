//! The HTTP side: the app factory, shared state and one module per resource.
//!
//! Handlers are thin: extract → authorise → call a use case or a plain `db` function →
//! render a template (or map a typed error). Database work runs on the blocking pool through
//! `AppState::db`.

pub mod account;
pub mod admin;
pub mod admin_accounts;
pub mod admin_workspaces;
pub mod answers;
pub mod assays;
pub mod benchmarks;
pub mod csrf;
pub mod error;
pub mod forms;
pub mod investigations;
pub mod login;
pub mod models;
pub mod ops;
pub mod overview;
pub mod page;
pub mod password_reset;
pub mod start;
pub mod static_files;
pub mod studies;
pub mod upload;
pub mod viewer;
pub mod workspaces;

use std::sync::Arc;

use actix_session::SessionMiddleware;
use actix_session::config::{CookieContentSecurity, PersistentSession};
use actix_session::storage::CookieSessionStore;
use actix_web::body::MessageBody;
use actix_web::cookie::{Key, SameSite, time::Duration as CookieDuration};
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::middleware::{DefaultHeaders, from_fn};
use actix_web::{App, HttpResponse, web};

use crate::config::{Config, ExposeSecret};
use crate::context::AppContext;
use crate::db::DbConn;
use error::{AppError, AppResult};

/// What handlers share: the application context and what only the web needs.
#[derive(Clone)]
pub struct AppState {
    pub ctx: AppContext,
    pub session_key: Key,
    /// Password hashes checked at once (argon2 is deliberately slow; a flood of logins must
    /// not take every core).
    pub password_checks: Arc<tokio::sync::Semaphore>,
    /// Answer sheets rendered before, shared by the workers of this process.
    pub rendered_sheets: answers::RenderedSheets,
    /// The readiness checks and their last answer.
    pub readiness: Arc<crate::readiness::Probe>,
}

/// Password checks running at once.
const PASSWORD_CHECKS: usize = 2;

impl AppState {
    pub fn new(ctx: AppContext) -> Self {
        let session_key = session_key(&ctx.config);
        Self {
            ctx,
            session_key,
            password_checks: Arc::new(tokio::sync::Semaphore::new(PASSWORD_CHECKS)),
            rendered_sheets: answers::RenderedSheets::default(),
            readiness: Arc::default(),
        }
    }

    pub fn config(&self) -> &Config {
        &self.ctx.config
    }

    /// Blocking database work off the async threads.
    pub async fn db<T, F>(&self, f: F) -> AppResult<T>
    where
        F: FnOnce(&mut DbConn) -> AppResult<T> + Send + 'static,
        T: Send + 'static,
    {
        self.ctx.db(f).await
    }
}

/// The session key from `SESSION_KEY`, or a random one with a loud warning.
fn session_key(config: &Config) -> Key {
    match &config.session_key {
        Some(secret) => Key::derive_from(secret.expose_secret().as_bytes()),
        None => {
            tracing::warn!(
                "SESSION_KEY is not set: using a random key for this run. Everyone is logged \
                 out at every restart. Set SESSION_KEY (32+ random characters) in production."
            );
            Key::generate()
        }
    }
}

/// Content-Security-Policy: nothing from other origins, no inline scripts.
const CSP: &str = "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; \
                   frame-ancestors 'none'; form-action 'self'; base-uri 'none'";

/// Build the application; used by `serve` and by the tests.
pub fn app(
    state: AppState,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    let sessions = SessionMiddleware::builder(CookieSessionStore::default(), state.session_key.clone())
        .cookie_name("toxtemp_session".into())
        .cookie_http_only(true)
        .cookie_same_site(SameSite::Lax)
        .cookie_secure(state.config().secure_cookies)
        .cookie_content_security(CookieContentSecurity::Private)
        .session_lifecycle(PersistentSession::default().session_ttl(cookie_lifetime(state.config().session_lifetime)))
        .build();
    let mut headers = DefaultHeaders::new()
        .add(("Content-Security-Policy", CSP))
        .add(("X-Content-Type-Options", "nosniff"))
        .add(("X-Frame-Options", "DENY"))
        .add(("Referrer-Policy", "same-origin"));
    if state.config().secure_cookies {
        headers = headers.add(("Strict-Transport-Security", "max-age=31536000"));
    }
    App::new()
        .app_data(web::Data::new(state))
        .app_data(web::FormConfig::default().limit(256 * 1024).error_handler(|err, _| {
            tracing::info!(error = %err, "unreadable form");
            AppError::BadRequest("The form could not be read. Please reload the page and try again.".into()).into()
        }))
        .configure(routes)
        .default_service(web::to(|| async { Err::<HttpResponse, _>(AppError::NotFound) }))
        // Registered last = runs first: sessions must exist before the CSRF check.
        .wrap(from_fn(csrf::guard))
        .wrap(from_fn(no_store_when_logged_in))
        .wrap(sessions)
        .wrap(headers)
        // Path only: query strings may carry the CSRF token of multipart forms.
        .wrap(
            actix_web::middleware::Logger::new("%{method}xi %{path}xi %s %Dms")
                .custom_request_replace("method", |req| req.method().to_string())
                .custom_request_replace("path", |req| loggable_path(req.path()).into_owned())
                .log_target("toxtemp::http"),
        )
        .wrap(from_fn(ops::count_requests))
}

fn routes(cfg: &mut web::ServiceConfig) {
    cfg.configure(ops::routes)
        .route("/static/{file:.*}", web::get().to(static_files::serve))
        .route("/", web::get().to(overview::show))
        .route("/api/assays/status", web::get().to(overview::status))
        .route("/login", web::get().to(login::form))
        .route("/login", web::post().to(login::submit))
        .route("/logout", web::post().to(login::logout))
        .configure(account::routes)
        .configure(password_reset::routes)
        .configure(investigations::routes)
        .configure(studies::routes)
        .configure(assays::routes)
        .configure(start::routes)
        .configure(answers::routes)
        .configure(admin::routes)
        .configure(models::routes)
        .configure(admin_accounts::routes)
        .configure(admin_workspaces::routes)
        .configure(benchmarks::routes)
        .configure(workspaces::routes);
}

/// A request path as it may appear in logs: the token of a password-reset link is a secret
/// (whoever has it sets the password), so it is cut off.
pub fn loggable_path(path: &str) -> std::borrow::Cow<'_, str> {
    match path.strip_prefix("/password-reset/") {
        Some(rest) if !rest.is_empty() => "/password-reset/…".into(),
        _ => path.into(),
    }
}

/// Pages for a logged-in person are not kept by browsers or proxies.
async fn no_store_when_logged_in(
    req: ServiceRequest,
    next: actix_web::middleware::Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    use actix_session::SessionExt;
    let logged_in = req.get_session().contains_key(viewer::LOGIN_KEY);
    let mut response = next.call(req).await?;
    let headers = response.headers_mut();
    if logged_in && !headers.contains_key(actix_web::http::header::CACHE_CONTROL) {
        headers.insert(
            actix_web::http::header::CACHE_CONTROL,
            actix_web::http::header::HeaderValue::from_static("no-store"),
        );
    }
    Ok(response)
}

/// The cookie's Max-Age: the login lifetime, but at least an hour, because the same cookie
/// carries the login form's CSRF token before anyone logs in. Whether a login is still valid
/// is decided by the server ([`viewer::Login`]), not by the cookie.
fn cookie_lifetime(login: std::time::Duration) -> CookieDuration {
    CookieDuration::seconds(login.as_secs().max(3600) as i64)
}

/// The client's address: the peer, or — when the peer is a trusted proxy
/// (`TOXTEMP_TRUSTED_PROXIES`) — the last address in `X-Forwarded-For` that is not one.
pub fn client_ip(req: &actix_web::HttpRequest, config: &Config) -> String {
    let Some(peer) = req.peer_addr().map(|a| a.ip()) else { return String::new() };
    if !config.trusted_proxies.contains(&peer) {
        return peer.to_string();
    }
    let forwarded = req.headers().get("x-forwarded-for").and_then(|v| v.to_str().ok()).unwrap_or_default();
    forwarded
        .rsplit(',')
        .filter_map(|ip| ip.trim().parse::<std::net::IpAddr>().ok())
        .find(|ip| !config.trusted_proxies.contains(ip))
        .unwrap_or(peer)
        .to_string()
}

/// Delete an investigation, study or assay for the viewer and say what went with it.
pub async fn delete_item(
    state: &AppState,
    viewer: &viewer::Viewer,
    item: crate::deletion::Item,
    what: String,
) -> AppResult<()> {
    let done = crate::deletion::delete(&state.ctx, item, &viewer.actor()).await?;
    let kept = match done.files + done.pending {
        0 => String::new(),
        n => format!(" Its {n} kept document(s) were deleted too."),
    };
    page::flash(&viewer.session, "info", format!("{what} deleted.{kept}"));
    Ok(())
}

/// After a successful POST sent by our upload script (`Accept: application/json`): where to
/// go, as JSON, so that the script navigates there itself. Answering it with a redirect
/// would make the XHR follow it and consume the flash message meant for the page.
pub fn see_other_or_json(req: &actix_web::HttpRequest, url: &str) -> HttpResponse {
    let wants_json = req
        .headers()
        .get(actix_web::http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.starts_with("application/json"));
    if wants_json { HttpResponse::Ok().json(serde_json::json!({ "redirect": url })) } else { see_other(url) }
}

/// A redirect after a successful POST (303, so the browser follows with GET).
pub fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther().insert_header((actix_web::http::header::LOCATION, location)).finish()
}

/// Re-render a form with its errors: 422, so tests and tools see the rejection.
pub fn unprocessable(page: impl askama::Template) -> Result<HttpResponse, AppError> {
    rendered(actix_web::http::StatusCode::UNPROCESSABLE_ENTITY, page)
}

/// The form again, because what it asks for conflicts with the current state.
pub fn conflict(page: impl askama::Template) -> Result<HttpResponse, AppError> {
    rendered(actix_web::http::StatusCode::CONFLICT, page)
}

/// A page rendered with this status.
pub(crate) fn rendered(
    status: actix_web::http::StatusCode,
    page: impl askama::Template,
) -> Result<HttpResponse, AppError> {
    let body = page.render().map_err(anyhow::Error::from)?;
    Ok(HttpResponse::build(status).content_type("text/html; charset=utf-8").body(body))
}

/// 429 with when to try again (login, password change and password-link requests are
/// throttled alike).
pub(crate) fn too_many(what: &str, wait: std::time::Duration) -> AppError {
    let minutes = wait.as_secs().div_ceil(60).max(1);
    AppError::Rejected(
        actix_web::http::StatusCode::TOO_MANY_REQUESTS,
        format!("Too many {what}. Please try again in {minutes} minute(s)."),
    )
}

#[cfg(test)]
mod tests {
    use super::loggable_path;

    #[test]
    fn reset_tokens_never_reach_the_access_log() {
        assert_eq!(loggable_path("/password-reset/secret-token"), "/password-reset/…");
        assert_eq!(loggable_path("/password-reset"), "/password-reset");
        assert_eq!(loggable_path("/assays/3"), "/assays/3");
    }
}
