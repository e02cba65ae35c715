//! Studies inside an investigation: create, show, edit, delete.

use actix_web::{HttpResponse, web};
use askama::Template;
use askama_web::WebTemplate;

use crate::db::models::{Access, Assay, Investigation, Study};

use super::error::AppResult;
use super::forms::{EntityFormPage, FormTarget, TitleForm};
use super::page::{Page, flash};
use super::viewer::Viewer;
use super::{AppState, see_other};
use crate::deletion::{Item, kept_files};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/investigations/{id}/studies/new", web::get().to(new_form))
        .route("/investigations/{id}/studies/new", web::post().to(create))
        .route("/studies/{id}", web::get().to(show))
        .route("/studies/{id}/edit", web::get().to(edit_form))
        .route("/studies/{id}/edit", web::post().to(update))
        .route("/studies/{id}/delete", web::post().to(delete));
}

const HELP: &str = "What the study covers (optional).";

fn new_target(inv: &Investigation) -> FormTarget {
    FormTarget::new(
        format!("New study in “{}”", inv.title),
        format!("/investigations/{}/studies/new", inv.id),
        format!("/investigations/{}", inv.id),
    )
}

fn edit_target(id: i32) -> FormTarget {
    FormTarget::new("Edit study", format!("/studies/{id}/edit"), format!("/studies/{id}"))
}

pub async fn new_form(state: web::Data<AppState>, viewer: Viewer, path: web::Path<i32>) -> AppResult<EntityFormPage> {
    let inv = viewer.investigation(&state, path.into_inner(), Access::Own).await?;
    Ok(new_target(&inv).entity_page(&viewer, TitleForm::default(), None, HELP))
}

pub async fn create(
    state: web::Data<AppState>,
    viewer: Viewer,
    path: web::Path<i32>,
    form: web::Form<TitleForm>,
) -> AppResult<HttpResponse> {
    let inv = viewer.investigation(&state, path.into_inner(), Access::Own).await?;
    let fields = match new_target(&inv).parse(&viewer, form.into_inner(), HELP) {
        Ok(fields) => fields,
        Err(page) => return super::unprocessable(*page),
    };
    let study = state.db(move |conn| Ok(Study::create(conn, inv.id, &fields.title, &fields.description)?)).await?;
    flash(&viewer.session, "success", format!("Study “{}” created.", study.title));
    Ok(see_other(&format!("/studies/{}", study.id)))
}

#[derive(Template, WebTemplate)]
#[template(path = "study.html")]
pub struct StudyPage {
    page: Page,
    study: Study,
    investigation: Investigation,
    assays: Vec<Assay>,
    /// Kept documents that a deletion would delete too.
    kept_files: usize,
    /// The viewer owns its investigation (edits, deletes, adds assays).
    owner: bool,
}

pub async fn show(state: web::Data<AppState>, viewer: Viewer, path: web::Path<i32>) -> AppResult<StudyPage> {
    let (study, investigation) = viewer.study(&state, path.into_inner(), Access::View).await?;
    let study_id = study.id;
    let (assays, kept_files) =
        state.db(move |conn| Ok((Assay::of_study(conn, study_id)?, kept_files(conn, Item::Study(study_id))?))).await?;
    let owner = investigation.owner_id == viewer.person.id;
    Ok(StudyPage { page: viewer.page(), study, investigation, assays, kept_files, owner })
}

pub async fn edit_form(state: web::Data<AppState>, viewer: Viewer, path: web::Path<i32>) -> AppResult<EntityFormPage> {
    let (study, _) = viewer.study(&state, path.into_inner(), Access::Own).await?;
    let form = TitleForm { title: study.title, description: study.description };
    Ok(edit_target(study.id).entity_page(&viewer, form, None, HELP))
}

pub async fn update(
    state: web::Data<AppState>,
    viewer: Viewer,
    path: web::Path<i32>,
    form: web::Form<TitleForm>,
) -> AppResult<HttpResponse> {
    let id = viewer.study(&state, path.into_inner(), Access::Own).await?.0.id;
    let fields = match edit_target(id).parse(&viewer, form.into_inner(), HELP) {
        Ok(fields) => fields,
        Err(page) => return super::unprocessable(*page),
    };
    state.db(move |conn| Ok(Study::update(conn, id, &fields.title, &fields.description)?)).await?;
    flash(&viewer.session, "success", "Study saved.");
    Ok(see_other(&format!("/studies/{id}")))
}

pub async fn delete(state: web::Data<AppState>, viewer: Viewer, path: web::Path<i32>) -> AppResult<HttpResponse> {
    let (study, inv) = viewer.study(&state, path.into_inner(), Access::Own).await?;
    let what = format!("Study “{}” and its assays", study.title);
    super::delete_item(&state, &viewer, crate::deletion::Item::Study(study.id), what).await?;
    Ok(see_other(&format!("/investigations/{}", inv.id)))
}
