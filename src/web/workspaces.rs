//! Workspaces: the list and creation, a workspace's page (members, shared investigations, the
//! sharing history) and its forms; sharing an investigation from its page. The rules live in
//! `crate::workspaces`; these handlers parse, call and redirect.

use actix_web::{HttpResponse, web};
use askama::Template;
use askama_web::WebTemplate;
use serde::Deserialize;

use crate::db::models::{Role, Workspace};
use crate::workspaces::{self as domain, WorkspaceView};

use super::error::{AppError, AppResult};
use super::page::{Page, flash};
use super::viewer::Viewer;
use super::{AppState, see_other};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/workspaces", web::get().to(list))
        .route("/workspaces", web::post().to(create))
        .route("/workspaces/{id}", web::get().to(show))
        .route("/workspaces/{id}/members", web::post().to(add_member))
        .route("/workspaces/{id}/members/{person}/remove", web::post().to(remove_member))
        .route("/workspaces/{id}/members/{person}/role", web::post().to(set_role))
        .route("/workspaces/{id}/leave", web::post().to(leave))
        .route("/workspaces/{id}/transfer", web::post().to(transfer))
        .route("/workspaces/{id}/delete", web::post().to(delete))
        .route("/workspaces/{id}/share", web::post().to(share_here))
        .route("/investigations/{id}/share", web::post().to(share))
        .route("/investigations/{id}/unshare", web::post().to(unshare));
}

#[derive(Template, WebTemplate)]
#[template(path = "workspaces.html")]
pub struct ListPage {
    page: Page,
    workspaces: Vec<(Workspace, Role)>,
}

pub async fn list(state: web::Data<AppState>, viewer: Viewer) -> AppResult<ListPage> {
    let id = viewer.person.id;
    let workspaces = state.db(move |c| Ok(Workspace::of_person(c, id)?)).await?;
    Ok(ListPage { page: viewer.page(), workspaces })
}

#[derive(Deserialize)]
pub struct NameForm {
    #[serde(default)]
    name: String,
}

pub async fn create(state: web::Data<AppState>, viewer: Viewer, form: web::Form<NameForm>) -> AppResult<HttpResponse> {
    let person = viewer.person.clone();
    let ws = state.db(move |c| Ok(domain::create(c, &person, &form.name)?)).await?;
    flash(&viewer.session, "success", format!("Workspace “{}” created.", ws.name));
    Ok(see_other(&format!("/workspaces/{}", ws.id)))
}

#[derive(Template, WebTemplate)]
#[template(path = "workspace.html")]
pub struct WorkspacePage {
    page: Page,
    view: WorkspaceView,
    me: i32,
}

impl WorkspacePage {
    fn manages(&self) -> bool {
        self.view.role.is_some_and(Role::manages)
    }

    fn owns(&self) -> bool {
        self.view.role == Some(Role::Owner)
    }
}

pub async fn show(state: web::Data<AppState>, viewer: Viewer, path: web::Path<i32>) -> AppResult<WorkspacePage> {
    let (person, id) = (viewer.person.clone(), path.into_inner());
    let view = state.db(move |c| Ok(domain::view(c, &person, id)?)).await?;
    Ok(WorkspacePage { page: viewer.page(), view, me: viewer.person.id })
}

#[derive(Deserialize)]
pub struct MemberForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    role: String,
}

fn parse_role(role: &str) -> AppResult<Role> {
    match role {
        "" | "member" => Ok(Role::Member),
        "admin" => Ok(Role::Admin),
        _ => Err(AppError::BadRequest("Please choose a role: member or admin.".into())),
    }
}

pub async fn add_member(
    state: web::Data<AppState>,
    viewer: Viewer,
    path: web::Path<i32>,
    form: web::Form<MemberForm>,
) -> AppResult<HttpResponse> {
    let (person, id, role) = (viewer.person.clone(), path.into_inner(), parse_role(&form.role)?);
    let email = form.into_inner().email;
    let added = state.db(move |c| Ok(domain::add_member(c, &person, id, &email, role)?)).await?;
    flash(&viewer.session, "success", format!("{} added as {role}.", added.email));
    Ok(see_other(&format!("/workspaces/{id}")))
}

pub async fn remove_member(
    state: web::Data<AppState>,
    viewer: Viewer,
    path: web::Path<(i32, i32)>,
) -> AppResult<HttpResponse> {
    let (person, (id, member)) = (viewer.person.clone(), path.into_inner());
    state.db(move |c| Ok(domain::remove_member(c, &person, id, member)?)).await?;
    flash(&viewer.session, "success", "Member removed.");
    Ok(see_other(&format!("/workspaces/{id}")))
}

#[derive(Deserialize)]
pub struct RoleForm {
    #[serde(default)]
    role: String,
}

pub async fn set_role(
    state: web::Data<AppState>,
    viewer: Viewer,
    path: web::Path<(i32, i32)>,
    form: web::Form<RoleForm>,
) -> AppResult<HttpResponse> {
    let (person, (id, member), role) = (viewer.person.clone(), path.into_inner(), parse_role(&form.role)?);
    state.db(move |c| Ok(domain::set_role(c, &person, id, member, role)?)).await?;
    flash(&viewer.session, "success", "Role changed.");
    Ok(see_other(&format!("/workspaces/{id}")))
}

pub async fn leave(state: web::Data<AppState>, viewer: Viewer, path: web::Path<i32>) -> AppResult<HttpResponse> {
    let (person, id) = (viewer.person.clone(), path.into_inner());
    let ws = state.db(move |c| Ok(domain::leave(c, &person, id)?)).await?;
    flash(&viewer.session, "success", format!("You left “{}”.", ws.name));
    Ok(see_other("/workspaces"))
}

#[derive(Deserialize)]
pub struct TransferForm {
    person_id: i32,
}

pub async fn transfer(
    state: web::Data<AppState>,
    viewer: Viewer,
    path: web::Path<i32>,
    form: web::Form<TransferForm>,
) -> AppResult<HttpResponse> {
    let (person, id, heir) = (viewer.person.clone(), path.into_inner(), form.person_id);
    state.db(move |c| Ok(domain::transfer(c, &person, id, heir)?)).await?;
    flash(&viewer.session, "success", "Ownership transferred.");
    Ok(see_other(&format!("/workspaces/{id}")))
}

pub async fn delete(state: web::Data<AppState>, viewer: Viewer, path: web::Path<i32>) -> AppResult<HttpResponse> {
    let (person, id) = (viewer.person.clone(), path.into_inner());
    let ws = state.db(move |c| Ok(domain::delete(c, &person, id)?)).await?;
    flash(&viewer.session, "success", format!("Workspace “{}” deleted.", ws.name));
    Ok(see_other("/workspaces"))
}

#[derive(Deserialize)]
pub struct ShareForm {
    workspace_id: i32,
}

pub async fn share(
    state: web::Data<AppState>,
    viewer: Viewer,
    path: web::Path<i32>,
    form: web::Form<ShareForm>,
) -> AppResult<HttpResponse> {
    let (person, inv, ws) = (viewer.person.clone(), path.into_inner(), form.workspace_id);
    let ws = state.db(move |c| Ok(domain::share(c, &person, ws, inv)?)).await?;
    flash(&viewer.session, "success", format!("Shared with “{}”.", ws.name));
    Ok(see_other(&format!("/investigations/{inv}")))
}

pub async fn unshare(
    state: web::Data<AppState>,
    viewer: Viewer,
    path: web::Path<i32>,
    form: web::Form<ShareForm>,
) -> AppResult<HttpResponse> {
    let (person, inv, ws) = (viewer.person.clone(), path.into_inner(), form.workspace_id);
    let ws = state.db(move |c| Ok(domain::unshare(c, &person, ws, inv)?)).await?;
    flash(&viewer.session, "success", format!("No longer shared with “{}”.", ws.name));
    Ok(see_other(&format!("/investigations/{inv}")))
}

#[derive(Deserialize)]
pub struct ShareHereForm {
    investigation_id: i32,
}

/// Share from the workspace's page: the same rule as from the investigation's.
pub async fn share_here(
    state: web::Data<AppState>,
    viewer: Viewer,
    path: web::Path<i32>,
    form: web::Form<ShareHereForm>,
) -> AppResult<HttpResponse> {
    let (person, ws, inv) = (viewer.person.clone(), path.into_inner(), form.investigation_id);
    let ws = state.db(move |c| Ok(domain::share(c, &person, ws, inv)?)).await?;
    flash(&viewer.session, "success", format!("Shared with “{}”.", ws.name));
    Ok(see_other(&format!("/workspaces/{}", ws.id)))
}
