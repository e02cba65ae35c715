//! `/admin/accounts`: staff list, search and create accounts, (de)activate them, grant or
//! remove the staff flag, and send a new password link. Who may do what is decided in
//! `auth::accounts` (shared with the command line); every change is a POST (CSRF-checked)
//! answered with a flash message, a refused one with 403 and the reason.
//!
//! New accounts get no password from staff: they are created without a usable one and the
//! person is sent an invitation link (or, without SMTP, the link goes to the log for the
//! operator) to choose it themselves — no password ever passes through a staff member.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use askama_web::WebTemplate;
use serde::Deserialize;

use crate::admin::{self, AccountRow};
use crate::auth::accounts::{self, Change};
use crate::auth::reset::{self, Delivery};
use crate::auth::{self, AccountError};
use crate::db::models::Person;
use crate::db::models::person::PersonSpec;

use super::admin::{ListQuery, ListView, Pager};
use super::error::{AppError, AppResult};
use super::page::{Page, flash};
use super::viewer::{Staff, Viewer};
use super::{AppState, see_other};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/admin/accounts", web::get().to(list))
        .route("/admin/accounts", web::post().to(create))
        .route("/admin/accounts/{id}/send-link", web::post().to(send_link))
        .route("/admin/accounts/{id}/{change}", web::post().to(change));
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/accounts.html")]
pub struct AccountsPage {
    page: Page,
    list: ListView,
    rows: Vec<AccountRow>,
    pager: Pager,
    /// The viewer may grant the staff flag (a superuser).
    superuser: bool,
    me: i32,
}

pub async fn list(
    state: web::Data<AppState>,
    Staff(viewer): Staff,
    query: web::Query<ListQuery>,
) -> AppResult<AccountsPage> {
    let list = ListView::new("/admin/accounts", &query, admin::ACCOUNT_SORTS, admin::ACCOUNT_ORDER);
    let (search, order, page) = (list.q.clone(), list.order(), admin::page_number(query.page));
    let rows = state.db(move |c| Ok(admin::account_list(c, &search, order, page)?)).await?;
    let pager = list.pager(&rows);
    Ok(AccountsPage {
        superuser: viewer.person.is_superuser,
        me: viewer.person.id,
        page: viewer.page(),
        list,
        rows: rows.rows,
        pager,
    })
}

#[derive(Deserialize)]
pub struct NewAccountForm {
    email: String,
    #[serde(default)]
    display_name: String,
    /// A checkbox: `on` when ticked.
    #[serde(default)]
    staff: Option<String>,
}

pub async fn create(
    state: web::Data<AppState>,
    req: HttpRequest,
    Staff(viewer): Staff,
    form: web::Form<NewAccountForm>,
) -> AppResult<HttpResponse> {
    let NewAccountForm { email, display_name, staff } = form.into_inner();
    let staff = matches!(staff.as_deref(), Some("on" | "true" | "1"));
    accounts::check_create(&viewer.person, staff).map_err(refused)?;
    let name = display_name.trim().chars().take(200).collect::<String>();
    let created = state
        .db(move |c| {
            let spec = PersonSpec { email: &email, display_name: &name, is_staff: staff, is_superuser: false };
            Ok(auth::create_invited_account(c, &spec))
        })
        .await?;
    let person = match created {
        Ok(person) => person,
        Err(AccountError::Exists(email)) => {
            return Err(AppError::Rejected(StatusCode::CONFLICT, format!("An account for {email} exists already.")));
        }
        Err(err @ (AccountError::NotAnEmail(_) | AccountError::Password(_))) => {
            return Err(AppError::Rejected(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("{}.", capitalized(&err.to_string())),
            ));
        }
        Err(AccountError::Internal(err)) => return Err(AppError::Internal(err)),
    };
    tracing::info!(target: "toxtemp::audit", event = "account_created", person = person.id, staff, by = %viewer.person.email, "account created");
    let delivery = invite(&state, &req, &viewer, &person).await?;
    flash(
        &viewer.session,
        "success",
        format!("Account created for {}. {}", person.email, sent(delivery, "An invitation", &person.email)),
    );
    Ok(see_other(&format!(
        "/admin/accounts?{}",
        serde_urlencoded::to_string([("q", &person.email)]).unwrap_or_default()
    )))
}

/// A new password link for the person (their open links die), e.g. when an invitation
/// expired. Deactivated accounts get none; changing a staff account's password this way
/// needs a superuser, like any other change to it.
pub async fn send_link(
    state: web::Data<AppState>,
    req: HttpRequest,
    Staff(viewer): Staff,
    path: web::Path<i32>,
) -> AppResult<HttpResponse> {
    let id = path.into_inner();
    let target = state.db(move |c| Ok(Person::find(c, id)?)).await?;
    // Whoever may (re)activate the account may send it a link.
    accounts::check(&viewer.person, &target, Change::Reactivate).map_err(refused)?;
    if !target.is_active {
        return Err(AppError::Rejected(
            StatusCode::CONFLICT,
            "This account is deactivated: reactivate it first.".into(),
        ));
    }
    let delivery = invite(&state, &req, &viewer, &target).await?;
    flash(&viewer.session, "success", sent(delivery, "A password link", &target.email));
    Ok(see_other("/admin/accounts"))
}

pub async fn change(
    state: web::Data<AppState>,
    Staff(viewer): Staff,
    path: web::Path<(i32, String)>,
) -> AppResult<HttpResponse> {
    let (id, change) = path.into_inner();
    let change = match change.as_str() {
        "deactivate" => Change::Deactivate,
        "reactivate" => Change::Reactivate,
        "grant-staff" => Change::GrantStaff,
        "revoke-staff" => Change::RevokeStaff,
        _ => return Err(AppError::NotFound),
    };
    let actor = viewer.person.clone();
    // The rules are checked against the account as loaded right before the change.
    let person = state
        .db(move |c| {
            let target = Person::find(c, id)?;
            accounts::check(&actor, &target, change).map_err(refused)?;
            Ok(accounts::apply(c, id, change)?)
        })
        .await?;
    tracing::info!(target: "toxtemp::audit", event = "account_changed", person = id, change = ?change, by = %viewer.person.email, "account changed");
    let message = match change {
        Change::Deactivate => format!("{} is deactivated; their sessions have ended.", person.email),
        Change::Reactivate => format!("{} is active again.", person.email),
        Change::GrantStaff => format!("{} is staff now.", person.email),
        Change::RevokeStaff => format!("{} is no longer staff.", person.email),
    };
    flash(&viewer.session, "success", message);
    Ok(see_other("/admin/accounts"))
}

async fn invite(state: &AppState, req: &HttpRequest, viewer: &Viewer, person: &Person) -> AppResult<Delivery> {
    let origin = super::password_reset::request_origin(req, state);
    Ok(reset::invite(&state.ctx, person, &viewer.person.email, origin).await?)
}

fn sent(delivery: Delivery, what: &str, email: &str) -> String {
    match delivery {
        Delivery::Mail => format!("{what} for {email} was e-mailed."),
        Delivery::OperatorLog => format!(
            "{what} for {email} was written to the server log (this server does not send e-mail): ask the operator to pass it on."
        ),
    }
}

fn refused(refusal: accounts::Refusal) -> AppError {
    AppError::Rejected(StatusCode::FORBIDDEN, refusal.to_string())
}

fn capitalized(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map(|first| first.to_uppercase().chain(chars).collect()).unwrap_or_default()
}
