//! Investigations: create, show, edit, delete. Only the owner (and staff) see one.

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
    cfg.route("/investigations/new", web::get().to(new_form))
        .route("/investigations/new", web::post().to(create))
        .route("/investigations/{id}", web::get().to(show))
        .route("/investigations/{id}/edit", web::get().to(edit_form))
        .route("/investigations/{id}/edit", web::post().to(update))
        .route("/investigations/{id}/delete", web::post().to(delete));
}

const DESCRIPTION_HELP: &str = "What the investigation is about (optional).";

fn form_page(
    viewer: &Viewer,
    heading: &str,
    action: String,
    cancel: &str,
    form: TitleForm,
    error: Option<String>,
) -> EntityFormPage {
    EntityFormPage {
        page: viewer.page(),
        heading: heading.into(),
        action,
        cancel: cancel.into(),
        form,
        error,
        description_help: DESCRIPTION_HELP,
    }
}

pub async fn new_form(viewer: Viewer) -> EntityFormPage {
    form_page(&viewer, "New investigation", "/investigations/new".into(), "/", TitleForm::default(), None)
}

pub async fn create(state: web::Data<AppState>, viewer: Viewer, form: web::Form<TitleForm>) -> AppResult<HttpResponse> {
    let form = form.into_inner();
    let fields = match form.parse() {
        Ok(fields) => fields,
        Err(msg) => {
            let page = form_page(&viewer, "New investigation", "/investigations/new".into(), "/", form, Some(msg));
            return super::unprocessable(page);
        }
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
}

pub async fn show(state: web::Data<AppState>, viewer: Viewer, path: web::Path<i32>) -> AppResult<InvestigationPage> {
    let id = path.into_inner();
    let person = viewer.person.clone();
    let (investigation, studies) = state
        .db(move |conn| {
            let inv = Investigation::find_for(conn, id, &person)?;
            let mut studies = Vec::new();
            for study in Study::of_investigation(conn, inv.id)? {
                let assays = Assay::of_study(conn, study.id)?;
                studies.push((study, assays));
            }
            Ok((inv, studies))
        })
        .await?;
    Ok(InvestigationPage { page: viewer.page(), investigation, studies })
}

pub async fn edit_form(state: web::Data<AppState>, viewer: Viewer, path: web::Path<i32>) -> AppResult<EntityFormPage> {
    let id = path.into_inner();
    let person = viewer.person.clone();
    let inv = state.db(move |conn| Ok(Investigation::find_for(conn, id, &person)?)).await?;
    let form = TitleForm { title: inv.title, description: inv.description };
    let cancel = format!("/investigations/{id}");
    Ok(form_page(&viewer, "Edit investigation", format!("/investigations/{id}/edit"), &cancel, form, None))
}

pub async fn update(
    state: web::Data<AppState>,
    viewer: Viewer,
    path: web::Path<i32>,
    form: web::Form<TitleForm>,
) -> AppResult<HttpResponse> {
    let id = path.into_inner();
    let person = viewer.person.clone();
    state.db(move |conn| Ok(Investigation::find_for(conn, id, &person)?)).await?;
    let form = form.into_inner();
    let fields = match form.parse() {
        Ok(fields) => fields,
        Err(msg) => {
            let cancel = format!("/investigations/{id}");
            let page = form_page(
                &viewer,
                "Edit investigation",
                format!("/investigations/{id}/edit"),
                &cancel,
                form,
                Some(msg),
            );
            return super::unprocessable(page);
        }
    };
    state.db(move |conn| Ok(Investigation::update(conn, id, &fields.title, &fields.description)?)).await?;
    flash(&viewer.session, "success", "Investigation saved.");
    Ok(see_other(&format!("/investigations/{id}")))
}

pub async fn delete(state: web::Data<AppState>, viewer: Viewer, path: web::Path<i32>) -> AppResult<HttpResponse> {
    let id = path.into_inner();
    let person = viewer.person.clone();
    let title = state
        .db(move |conn| {
            let inv = Investigation::find_for(conn, id, &person)?;
            crate::deletion::delete_investigation(conn, inv.id)?;
            Ok(inv.title)
        })
        .await?;
    flash(&viewer.session, "info", format!("Investigation “{title}” and everything in it deleted."));
    Ok(see_other("/"))
}
