//! Investigations: create, show, edit, delete. Its owner, the members of workspaces it is
//! shared into, and staff see one; only its owner changes it (sharing: `super::workspaces`).

use actix_web::{HttpResponse, web};
use askama::Template;
use askama_web::WebTemplate;

use crate::db::models::{Access, Assay, Investigation, Study, Workspace};

use super::error::AppResult;
use super::forms::{EntityFormPage, FormTarget, TitleForm};
use super::page::{Page, flash};
use super::viewer::Viewer;
use super::{AppState, see_other};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/investigations/new", web::get().to(new_form))
        .route("/investigations/new", web::post().to(create))
        .route("/investigations/{id}", web::get().to(show))
        .route("/investigations/{id}/edit", web::get().to(edit_form))
        .route("/investigations/{id}/edit", web::post().to(update))
        .route("/investigations/{id}/delete", web::post().to(delete));
}

const HELP: &str = "What the investigation is about (optional).";

fn new_target() -> FormTarget {
    FormTarget::new("New investigation", "/investigations/new", "/")
}

fn edit_target(id: i32) -> FormTarget {
    FormTarget::new("Edit investigation", format!("/investigations/{id}/edit"), format!("/investigations/{id}"))
}

pub async fn new_form(viewer: Viewer) -> EntityFormPage {
    new_target().entity_page(&viewer, TitleForm::default(), None, HELP)
}

pub async fn create(state: web::Data<AppState>, viewer: Viewer, form: web::Form<TitleForm>) -> AppResult<HttpResponse> {
    let fields = match new_target().parse(&viewer, form.into_inner(), HELP) {
        Ok(fields) => fields,
        Err(page) => return super::unprocessable(*page),
    };
    let owner = viewer.person.clone();
    let inv =
        state.db(move |conn| Ok(Investigation::create(conn, &owner, &fields.title, &fields.description)?)).await?;
    flash(&viewer.session, "success", format!("Investigation “{}” created.", inv.title));
    Ok(see_other(&format!("/investigations/{}", inv.id)))
}

#[derive(Template, WebTemplate)]
#[template(path = "investigation.html")]
pub struct InvestigationPage {
    page: Page,
    investigation: Investigation,
    studies: Vec<(Study, Vec<Assay>)>,
    /// Kept documents that a deletion would delete too.
    kept_files: usize,
    /// The viewer owns it: edits, deletes and shares it.
    owner: bool,
    /// The workspaces it is shared into (shown to its owner only: members need not learn
    /// which other groups see it).
    shared_in: Vec<Workspace>,
    /// The workspaces its owner manages where it is not shared yet.
    share_into: Vec<Workspace>,
}

pub async fn show(state: web::Data<AppState>, viewer: Viewer, path: web::Path<i32>) -> AppResult<InvestigationPage> {
    let investigation = viewer.investigation(&state, path.into_inner(), Access::View).await?;
    let id = investigation.id;
    let owner = investigation.owner_id == viewer.person.id;
    let person_id = viewer.person.id;
    let (studies, kept_files, shared_in, share_into) = state
        .db(move |conn| {
            let mut studies = Vec::new();
            for study in Study::of_investigation(conn, id)? {
                let assays = Assay::of_study(conn, study.id)?;
                studies.push((study, assays));
            }
            let (shared_in, share_into) = if owner {
                let shared_in = Workspace::sharing(conn, id)?;
                let managed = Workspace::managed_by(conn, person_id)?;
                let share_into = managed.into_iter().filter(|w| !shared_in.contains(w)).collect();
                (shared_in, share_into)
            } else {
                (Vec::new(), Vec::new())
            };
            let kept = crate::deletion::kept_files(conn, crate::deletion::Item::Investigation(id))?;
            Ok((studies, kept, shared_in, share_into))
        })
        .await?;
    Ok(InvestigationPage { page: viewer.page(), investigation, studies, kept_files, owner, shared_in, share_into })
}

pub async fn edit_form(state: web::Data<AppState>, viewer: Viewer, path: web::Path<i32>) -> AppResult<EntityFormPage> {
    let inv = viewer.investigation(&state, path.into_inner(), Access::Own).await?;
    let form = TitleForm { title: inv.title, description: inv.description };
    Ok(edit_target(inv.id).entity_page(&viewer, form, None, HELP))
}

pub async fn update(
    state: web::Data<AppState>,
    viewer: Viewer,
    path: web::Path<i32>,
    form: web::Form<TitleForm>,
) -> AppResult<HttpResponse> {
    let id = viewer.investigation(&state, path.into_inner(), Access::Own).await?.id;
    let fields = match edit_target(id).parse(&viewer, form.into_inner(), HELP) {
        Ok(fields) => fields,
        Err(page) => return super::unprocessable(*page),
    };
    state.db(move |conn| Ok(Investigation::update(conn, id, &fields.title, &fields.description)?)).await?;
    flash(&viewer.session, "success", "Investigation saved.");
    Ok(see_other(&format!("/investigations/{id}")))
}

pub async fn delete(state: web::Data<AppState>, viewer: Viewer, path: web::Path<i32>) -> AppResult<HttpResponse> {
    let inv = viewer.investigation(&state, path.into_inner(), Access::Own).await?;
    let what = format!("Investigation “{}” and everything in it", inv.title);
    super::delete_item(&state, &viewer, crate::deletion::Item::Investigation(inv.id), what).await?;
    Ok(see_other("/"))
}
