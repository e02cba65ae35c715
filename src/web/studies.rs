//! Studies inside an investigation: create, show, edit, delete.

use actix_web::{HttpResponse, web};
use askama::Template;
use askama_web::WebTemplate;

use crate::db::models::{Assay, Investigation, Study};

use super::error::AppResult;
use super::forms::{EntityFormPage, TitleForm};
use super::page::{Page, flash};
use super::viewer::Viewer;
use super::{AppState, see_other};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/investigations/{id}/studies/new", web::get().to(new_form))
        .route("/investigations/{id}/studies/new", web::post().to(create))
        .route("/studies/{id}", web::get().to(show))
        .route("/studies/{id}/edit", web::get().to(edit_form))
        .route("/studies/{id}/edit", web::post().to(update))
        .route("/studies/{id}/delete", web::post().to(delete));
}

const DESCRIPTION_HELP: &str = "What the study covers (optional).";

fn form_page(
    viewer: &Viewer,
    heading: String,
    action: String,
    cancel: String,
    form: TitleForm,
    error: Option<String>,
) -> EntityFormPage {
    EntityFormPage { page: viewer.page(), heading, action, cancel, form, error, description_help: DESCRIPTION_HELP }
}

async fn investigation(state: &AppState, viewer: &Viewer, id: i32) -> AppResult<Investigation> {
    let person = viewer.person.clone();
    state.db(move |conn| Ok(Investigation::find_for(conn, id, &person)?)).await
}

async fn study(state: &AppState, viewer: &Viewer, id: i32) -> AppResult<(Study, Investigation)> {
    let person = viewer.person.clone();
    state.db(move |conn| Ok(Study::find_for(conn, id, &person)?)).await
}

pub async fn new_form(state: web::Data<AppState>, viewer: Viewer, path: web::Path<i32>) -> AppResult<EntityFormPage> {
    let inv = investigation(&state, &viewer, path.into_inner()).await?;
    Ok(form_page(
        &viewer,
        format!("New study in “{}”", inv.title),
        format!("/investigations/{}/studies/new", inv.id),
        format!("/investigations/{}", inv.id),
        TitleForm::default(),
        None,
    ))
}

pub async fn create(
    state: web::Data<AppState>,
    viewer: Viewer,
    path: web::Path<i32>,
    form: web::Form<TitleForm>,
) -> AppResult<HttpResponse> {
    let inv = investigation(&state, &viewer, path.into_inner()).await?;
    let form = form.into_inner();
    let fields = match form.parse() {
        Ok(fields) => fields,
        Err(msg) => {
            let page = form_page(
                &viewer,
                format!("New study in “{}”", inv.title),
                format!("/investigations/{}/studies/new", inv.id),
                format!("/investigations/{}", inv.id),
                form,
                Some(msg),
            );
            return super::unprocessable(page);
        }
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
}

pub async fn show(state: web::Data<AppState>, viewer: Viewer, path: web::Path<i32>) -> AppResult<StudyPage> {
    let (study, investigation) = study(&state, &viewer, path.into_inner()).await?;
    let study_id = study.id;
    let assays = state.db(move |conn| Ok(Assay::of_study(conn, study_id)?)).await?;
    Ok(StudyPage { page: viewer.page(), study, investigation, assays })
}

pub async fn edit_form(state: web::Data<AppState>, viewer: Viewer, path: web::Path<i32>) -> AppResult<EntityFormPage> {
    let (study, _) = study(&state, &viewer, path.into_inner()).await?;
    let id = study.id;
    let form = TitleForm { title: study.title, description: study.description };
    Ok(form_page(&viewer, "Edit study".into(), format!("/studies/{id}/edit"), format!("/studies/{id}"), form, None))
}

pub async fn update(
    state: web::Data<AppState>,
    viewer: Viewer,
    path: web::Path<i32>,
    form: web::Form<TitleForm>,
) -> AppResult<HttpResponse> {
    let (study, _) = study(&state, &viewer, path.into_inner()).await?;
    let id = study.id;
    let form = form.into_inner();
    let fields = match form.parse() {
        Ok(fields) => fields,
        Err(msg) => {
            let page = form_page(
                &viewer,
                "Edit study".into(),
                format!("/studies/{id}/edit"),
                format!("/studies/{id}"),
                form,
                Some(msg),
            );
            return super::unprocessable(page);
        }
    };
    state.db(move |conn| Ok(Study::update(conn, id, &fields.title, &fields.description)?)).await?;
    flash(&viewer.session, "success", "Study saved.");
    Ok(see_other(&format!("/studies/{id}")))
}

pub async fn delete(state: web::Data<AppState>, viewer: Viewer, path: web::Path<i32>) -> AppResult<HttpResponse> {
    let (study, inv) = study(&state, &viewer, path.into_inner()).await?;
    let id = study.id;
    state.db(move |conn| Ok(crate::deletion::delete_study(conn, id)?)).await?;
    flash(&viewer.session, "info", format!("Study “{}” and its assays deleted.", study.title));
    Ok(see_other(&format!("/investigations/{}", inv.id)))
}
