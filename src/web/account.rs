//! The person's own account (`/account`): change the password. The current password is
//! checked like a login — counted by the login throttle before the check, so this form
//! cannot be used to guess it — and a success ends every other session of the person while
//! this browser stays logged in (its login is renewed with the new session generation).

use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use askama_web::WebTemplate;
use serde::Deserialize;

use crate::auth::{self, NewPassword, throttle, throttle::Attempt};

use super::error::AppResult;
use super::page::{self, Page};
use super::viewer::{LOGIN_KEY, Login, Viewer};
use super::{AppState, see_other};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/account", web::get().to(show)).route("/account/password", web::post().to(change_password));
}

#[derive(Template, WebTemplate)]
#[template(path = "account.html")]
pub struct AccountPage {
    page: Page,
    error: Option<String>,
}

pub async fn show(viewer: Viewer) -> AccountPage {
    AccountPage { page: viewer.page(), error: None }
}

#[derive(Deserialize)]
pub struct PasswordForm {
    current_password: String,
    new_password: String,
    new_password_repeat: String,
}

pub async fn change_password(
    state: web::Data<AppState>,
    req: HttpRequest,
    viewer: Viewer,
    form: web::Form<PasswordForm>,
) -> AppResult<HttpResponse> {
    let PasswordForm { current_password, new_password, new_password_repeat } = form.into_inner();
    let new_password = match NewPassword::confirmed(&new_password, &new_password_repeat) {
        Ok(password) => password,
        Err(problem) => return refuse(&viewer, problem.to_string()),
    };
    if current_password.len() > auth::MAX_PASSWORD_BYTES {
        return refuse(&viewer, "The current password is wrong.".into());
    }
    let attempt = Attempt::new(&viewer.person.email, &super::client_ip(&req, state.config()));
    let check = attempt.clone();
    if let Some(wait) = state.db(move |c| Ok(throttle::admit(c, &check)?)).await? {
        return Err(super::too_many("failed attempts", wait));
    }
    let person = viewer.person.clone();
    let hash = {
        let _permit = state.password_checks.acquire().await.map_err(anyhow::Error::from)?;
        web::block(move || {
            if auth::check_password(Some(person), &current_password).is_none() {
                return Ok(None);
            }
            new_password.hash().map(Some)
        })
        .await
        .map_err(anyhow::Error::from)??
    };
    let Some(hash) = hash else {
        // Counted already, by `admit`.
        return refuse(&viewer, "The current password is wrong.".into());
    };
    let id = viewer.person.id;
    let person = state
        .db(move |c| {
            throttle::succeeded(c, &attempt)?;
            Ok(auth::replace_password(c, id, &hash)?)
        })
        .await?;
    // Every session carries the old generation now; this one is renewed with the new one.
    let session = &viewer.session;
    session.renew();
    session.insert(LOGIN_KEY, Login::of(&person)).map_err(anyhow::Error::from)?;
    page::rotate_csrf_token(session);
    tracing::info!(person = id, "password changed");
    page::flash(
        session,
        "success",
        "Your password was changed. You were logged out everywhere else; this browser stays logged in.",
    );
    Ok(see_other("/account"))
}

fn refuse(viewer: &Viewer, error: String) -> AppResult<HttpResponse> {
    super::unprocessable(AccountPage { page: viewer.page(), error: Some(error) })
}
