//! The answer page: read, edit, accept, see sources and history, regenerate selected
//! questions with new uploads, export.

use actix_multipart::Multipart;
use actix_web::http::header;
use actix_web::{HttpResponse, web};
use askama::Template;
use askama_web::WebTemplate;
use serde::Deserialize;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::answers::export::{self, Metadata};
use crate::answers::{self, AnswerSheet, EvidenceView};
use crate::db::models::DraftingRun;
use crate::db::models::{Access, Answer, Assay, Investigation, Study};
use crate::drafting::choice::{self, ModelChoice, ModelEntry};
use crate::drafting::{self, DraftRequest, Scope, Target};

use super::error::{AppError, AppResult};
use super::page::{Page, flash};
use super::upload::spool;
use super::viewer::Viewer;
use super::{AppState, see_other};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/assays/{id}/answers", web::get().to(show))
        .route("/assays/{id}/answers/{question}", web::post().to(save))
        .route("/assays/{id}/answers/{question}/evidence", web::get().to(evidence))
        .route("/assays/{id}/answers/{question}/edit", web::get().to(edit))
        .route("/assays/{id}/answers/{question}/accept", web::post().to(accept))
        .route("/assays/{id}/regenerate", web::post().to(regenerate))
        .route("/assays/{id}/export.json", web::get().to(export_json))
        .route("/assays/{id}/export.md", web::get().to(export_markdown))
        .route("/assays/{id}/export.docx", web::get().to(export_docx))
        .route("/assays/{id}/export.html", web::get().to(export_html))
        .route("/assays/{id}/export.pdf", web::get().to(export_pdf));
}

#[derive(Template, WebTemplate)]
#[template(path = "answers.html")]
pub struct AnswersPage {
    page: Page,
    title: String,
    /// The rendered sheet (cached across requests; see [`RenderedSheets`]).
    content: String,
    /// Which answers are shown: `all`, `open` (not accepted) or `not-found`.
    show: &'static str,
}

#[derive(Deserialize)]
pub struct ShowQuery {
    show: Option<String>,
}

/// The answer filter of `?show=…`; anything unknown shows all.
fn answer_filter(show: Option<&str>) -> &'static str {
    match show {
        Some("open") => "open",
        Some("not-found") => "not-found",
        _ => "all",
    }
}

/// The part of the answer page that is the same for everyone who sees it: every answer, its
/// evidence and files. Forms carry [`CSRF_PLACEHOLDER`], replaced per request.
#[derive(Template)]
#[template(path = "answers_content.html")]
struct AnswersContent<'a> {
    assay: &'a Assay,
    study: &'a Study,
    investigation: &'a Investigation,
    sheet: &'a AnswerSheet,
    accept: &'static str,
    csrf: &'a str,
    /// Stands for the model select of the regenerate form (the models on offer change
    /// without the sheet changing): [`MODEL_CHOICE_PLACEHOLDER`], replaced per request.
    model_choice: &'a str,
}

/// The regenerate form's select of language models, rendered per request.
#[derive(Template)]
#[template(path = "_model_choice.html")]
struct ModelChoiceField {
    models: Vec<ModelEntry>,
    selected: ModelChoice,
}

/// Where the model select goes in cached pages (random per process, like the CSRF one).
static MODEL_CHOICE_PLACEHOLDER: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| format!("model-choice-{}", uuid::Uuid::new_v4().simple()));

impl AnswersContent<'_> {
    /// Files an answer used only as context (listed by name only when there are few).
    fn context_files(&self, q: &answers::QuestionView) -> usize {
        q.files.iter().filter(|f| f.label != "cited").count()
    }
}

/// Stands for the session's CSRF token in cached pages: random per process, so no answer text
/// can contain it.
static CSRF_PLACEHOLDER: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| format!("csrf-{}", uuid::Uuid::new_v4().simple()));

/// Rendered answer sheets, by assay, with the version they were rendered at: the answer page
/// is the heaviest page and mostly read, so it is rendered again only when something on it
/// changed (any answer, edit, kept file, the assay, its study or investigation).
#[derive(Clone, Default)]
pub struct RenderedSheets {
    entries: Arc<Mutex<HashMap<i32, Rendered>>>,
}

/// A rendered sheet and the version it shows.
type Rendered = (String, Arc<String>);

/// Sheets kept at most (each is the size of one answer page).
const RENDERED_SHEETS: usize = 128;

impl RenderedSheets {
    fn get(&self, assay: i32, version: &str) -> Option<Arc<String>> {
        let entries = self.entries.lock().ok()?;
        entries.get(&assay).filter(|(v, _)| v == version).map(|(_, html)| html.clone())
    }

    fn put(&self, assay: i32, version: String, html: Arc<String>) {
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= RENDERED_SHEETS && !entries.contains_key(&assay) {
                let evict = *entries.keys().next().unwrap_or(&assay);
                entries.remove(&evict);
            }
            entries.insert(assay, (version, html));
        }
    }
}

pub async fn show(
    state: web::Data<AppState>,
    viewer: Viewer,
    path: web::Path<i32>,
    query: web::Query<ShowQuery>,
) -> AppResult<AnswersPage> {
    let (assay, study, investigation) = viewer.assay(&state, path.into_inner(), Access::View).await?;
    let for_version = assay.clone();
    let version = state.db(move |c| Ok(answers::version(c, &for_version)?)).await?;
    let version = format!("{version:?}|{}|{}", study.title, investigation.title);
    let content = match state.rendered_sheets.get(assay.id, &version) {
        Some(html) => html,
        None => {
            let for_sheet = assay.clone();
            let sheet = state.db(move |c| Ok(answers::load(c, &for_sheet)?)).await?;
            let content = AnswersContent {
                assay: &assay,
                study: &study,
                investigation: &investigation,
                sheet: &sheet,
                accept: crate::ingest::ACCEPTED_EXTENSIONS,
                csrf: &CSRF_PLACEHOLDER,
                model_choice: &MODEL_CHOICE_PLACEHOLDER,
            };
            let html = Arc::new(content.render().map_err(anyhow::Error::from)?);
            state.rendered_sheets.put(assay.id, version, html.clone());
            html
        }
    };
    let page = viewer.page();
    let (llm, assay_id) = (state.config().llm.clone(), assay.id);
    let (models, last) = state
        .db(move |c| {
            let last = DraftingRun::of_assay(c, assay_id)?.first().and_then(|r| r.configuration_id);
            Ok((choice::offered(c, &llm)?, last))
        })
        .await?;
    // The model of the assay's last run is chosen again, while it is on offer.
    let last = ModelChoice::from_configuration(last);
    let selected = if models.iter().any(|m| m.choice == last) { last } else { ModelChoice::Default };
    let select = ModelChoiceField { models, selected }.render().map_err(anyhow::Error::from)?;
    let content =
        content.replace(CSRF_PLACEHOLDER.as_str(), &page.csrf).replace(MODEL_CHOICE_PLACEHOLDER.as_str(), &select);
    Ok(AnswersPage { page, title: assay.title, content, show: answer_filter(query.show.as_deref()) })
}

#[derive(Deserialize)]
pub struct EvidenceQuery {
    #[serde(default)]
    fragment: Option<String>,
}

#[derive(Template, WebTemplate)]
#[template(path = "answer_evidence.html")]
pub struct EvidencePage {
    page: Page,
    assay: Assay,
    question_id: i32,
    question: String,
    evidence: Vec<EvidenceView>,
}

/// Only the passages, for the answer page to insert when a citation is opened.
#[derive(Template, WebTemplate)]
#[template(path = "_evidence_items.html")]
pub struct EvidenceItems {
    question_id: i32,
    evidence: Vec<EvidenceView>,
}

/// The evidence of one answer: each verified citation's passage with the quote marked.
pub async fn evidence(
    state: web::Data<AppState>,
    viewer: Viewer,
    path: web::Path<(i32, i32)>,
    query: web::Query<EvidenceQuery>,
) -> AppResult<HttpResponse> {
    let (assay_id, question_id) = path.into_inner();
    let (assay, _, _) = viewer.assay(&state, assay_id, Access::View).await?;
    let (question, evidence) = state
        .db(move |c| {
            let question = crate::db::models::Question::find(c, question_id)?;
            let answer = Answer::of_question(c, assay_id, question_id)?.ok_or(AppError::NotFound)?;
            Ok((question.text, answers::evidence_of(c, answer.id)?))
        })
        .await?;
    let body = if query.fragment.is_some() {
        EvidenceItems { question_id, evidence }.render()
    } else {
        EvidencePage { page: viewer.page(), assay, question_id, question, evidence }.render()
    };
    Ok(HttpResponse::Ok().content_type("text/html; charset=utf-8").body(body.map_err(anyhow::Error::from)?))
}

#[derive(Template, WebTemplate)]
#[template(path = "answer_edit.html")]
pub struct EditPage {
    page: Page,
    assay: Assay,
    question_id: i32,
    question: String,
    text: String,
    accepted: bool,
    history: Vec<answers::EditView>,
}

/// Only the form and the history, for the answer page to insert when "Edit" is opened.
#[derive(Template, WebTemplate)]
#[template(path = "_answer_edit.html")]
pub struct EditFragment {
    page: Page,
    assay: Assay,
    question_id: i32,
    text: String,
    accepted: bool,
    history: Vec<answers::EditView>,
}

/// The editor of one answer (its text, the accepted switch and its history): loaded on
/// demand, so the answer page does not carry every answer twice.
pub async fn edit(
    state: web::Data<AppState>,
    viewer: Viewer,
    path: web::Path<(i32, i32)>,
    query: web::Query<EvidenceQuery>,
) -> AppResult<HttpResponse> {
    let (assay_id, question_id) = path.into_inner();
    let (assay, _, _) = viewer.assay(&state, assay_id, Access::Contribute).await?;
    let set = assay.question_set_id;
    let (question, answer, history) = state
        .db(move |c| {
            let question = crate::db::models::Question::find(c, question_id)?;
            let in_set = set.is_some_and(|s| {
                crate::db::models::QuestionSet::questions(c, s).is_ok_and(|qs| qs.iter().any(|q| q.id == question_id))
            });
            if !in_set {
                return Err(AppError::NotFound);
            }
            let answer = Answer::of_question(c, assay_id, question_id)?;
            let history = match &answer {
                Some(a) => answers::history_of(c, &[a.id])?.remove(&a.id).unwrap_or_default(),
                None => Vec::new(),
            };
            Ok((question.text, answer, history))
        })
        .await?;
    let (text, accepted) = answer.map(|a| (a.text, a.accepted)).unwrap_or_default();
    let body = if query.fragment.is_some() {
        EditFragment { page: viewer.page(), assay, question_id, text, accepted, history }.render()
    } else {
        EditPage { page: viewer.page(), assay, question_id, question, text, accepted, history }.render()
    };
    Ok(HttpResponse::Ok().content_type("text/html; charset=utf-8").body(body.map_err(anyhow::Error::from)?))
}

#[derive(Deserialize)]
pub struct AcceptForm {
    #[serde(default)]
    accepted: String,
}

/// Accept an answer as it stands, or take the acceptance back.
pub async fn accept(
    state: web::Data<AppState>,
    viewer: Viewer,
    path: web::Path<(i32, i32)>,
    form: web::Form<AcceptForm>,
) -> AppResult<HttpResponse> {
    let (assay_id, question_id) = path.into_inner();
    viewer.assay(&state, assay_id, Access::Contribute).await?;
    let accepted = matches!(form.accepted.as_str(), "on" | "true" | "1");
    let editor = viewer.person.id;
    state
        .db(move |c| {
            crate::db::write_transaction(c, |c| {
                let answer = Answer::of_question(c, assay_id, question_id)?.ok_or(AppError::NotFound)?;
                Answer::edit(c, &answer, editor, &answer.text, accepted)?;
                Ok::<_, AppError>(())
            })
        })
        .await?;
    flash(&viewer.session, "success", if accepted { "Answer accepted." } else { "Answer no longer accepted." });
    Ok(see_other(&format!("/assays/{assay_id}/answers#q{question_id}")))
}

#[derive(Deserialize)]
pub struct AnswerForm {
    #[serde(default)]
    text: String,
    #[serde(default)]
    accepted: Option<String>,
}

const MAX_ANSWER: usize = 100_000;

pub async fn save(
    state: web::Data<AppState>,
    viewer: Viewer,
    path: web::Path<(i32, i32)>,
    form: web::Form<AnswerForm>,
) -> AppResult<HttpResponse> {
    let (assay_id, question_id) = path.into_inner();
    let text = form.text.replace("\r\n", "\n").trim().to_owned();
    if text.chars().count() > MAX_ANSWER {
        return Err(AppError::PayloadTooLarge(format!("An answer may have at most {MAX_ANSWER} characters.")));
    }
    let accepted = form.accepted.as_deref().is_some_and(|v| matches!(v, "on" | "true" | "1"));
    let person = viewer.person.clone();
    state
        .db(move |c| {
            let (assay, _, _) = super::viewer::assay_for(c, &person, assay_id, Access::Contribute)?;
            let Some(set_id) = assay.question_set_id else { return Err(AppError::NotFound) };
            if !crate::db::models::QuestionSet::questions(c, set_id)?.iter().any(|q| q.id == question_id) {
                return Err(AppError::NotFound);
            }
            crate::db::write_transaction(c, |c| {
                let existing = Answer::of_question(c, assay_id, question_id)?;
                let answer = match existing {
                    Some(a) => a,
                    None => Answer::save_draft(c, assay_id, question_id, "", &[])?,
                };
                Answer::edit(c, &answer, person.id, &text, accepted)?;
                Ok::<_, AppError>(())
            })
        })
        .await?;
    flash(&viewer.session, "success", "Answer saved.");
    Ok(see_other(&format!("/assays/{assay_id}/answers#q{question_id}")))
}

/// Redraft the ticked questions, from new uploads (the same checks and consent rules as the
/// StartingForm).
pub async fn regenerate(
    state: web::Data<AppState>,
    viewer: Viewer,
    path: web::Path<i32>,
    payload: Multipart,
) -> AppResult<HttpResponse> {
    let assay_id = path.into_inner();
    viewer.assay(&state, assay_id, Access::Contribute).await?; // authorise before reading the upload
    let early = super::upload::StoreAsTheyArrive::for_form(&state, &viewer);
    let form = spool(payload, "files", &state.config().upload_limits, &state.config().spool_dir(), early).await?;
    let question_ids: Vec<i32> = form.all("question_ids").iter().filter_map(|q| q.parse().ok()).collect();
    let count = question_ids.len();
    let model = match ModelChoice::parse(&form.text("llm_configuration")) {
        Ok(model) => model,
        Err(message) => {
            let mut upload = form.upload;
            upload.discard_early().await;
            return Err(AppError::BadRequest(message));
        }
    };
    let request = DraftRequest {
        uploader: viewer.person.clone(),
        target: Target::Existing(assay_id),
        question_set_id: None,
        scope: Scope::Questions(question_ids),
        keep_files: form.checked("share_files_for_development"),
        extract_images: form.checked("extract_images"),
        upload: form.upload,
        model,
    };
    let done = drafting::submit(&state.ctx, request).await?;
    if let Some(warning) = done.context_warning {
        flash(&viewer.session, "warning", warning);
    }
    flash(&viewer.session, "success", format!("Regenerating {count} answer(s)."));
    Ok(see_other("/"))
}

fn attachment(name: String, content_type: &str, body: impl actix_web::body::MessageBody + 'static) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(content_type)
        .insert_header((header::CONTENT_DISPOSITION, crate::filenames::content_disposition(&name)))
        .body(body)
}

fn export_name(sheet: &AnswerSheet, ext: &str) -> String {
    let stem: String = crate::filenames::zip_entry(&sheet.assay_title)
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' })
        .take(60)
        .collect();
    format!("toxtemp-assay-{}-{stem}.{ext}", sheet.assay_id)
}

pub async fn export_json(state: web::Data<AppState>, viewer: Viewer, path: web::Path<i32>) -> AppResult<HttpResponse> {
    let (assay, sheet, meta) = export_for(&state, &viewer, path.into_inner()).await?;
    let doc = serde_json::json!({
        "format": "toxtemp-assistant-export/1",
        "exported_at": crate::db::now().format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        "investigation": meta.investigation,
        "study": meta.study,
        "assay": { "id": assay.id, "title": assay.title, "scope": assay.description, "status": assay.status, "question_set": sheet.question_set },
        "metadata": meta,
        "progress": { "accepted": sheet.accepted(), "drafted": sheet.drafted(), "total": sheet.total() },
        "sections": sheet.sections,
    });
    let body = serde_json::to_string_pretty(&doc).map_err(anyhow::Error::from)?;
    Ok(attachment(export_name(&sheet, "json"), "application/json", body))
}

pub async fn export_markdown(
    state: web::Data<AppState>,
    viewer: Viewer,
    path: web::Path<i32>,
) -> AppResult<HttpResponse> {
    let (_, sheet, meta) = export_for(&state, &viewer, path.into_inner()).await?;
    Ok(attachment(export_name(&sheet, "md"), "text/markdown; charset=utf-8", answers::markdown(&sheet, &meta)))
}

/// The assay's answer sheet with its export metadata, for every export (owner, or staff
/// read access; anyone else 404).
async fn export_for(state: &AppState, viewer: &Viewer, id: i32) -> AppResult<(Assay, AnswerSheet, Metadata)> {
    let person = viewer.person.clone();
    let model = state.ctx.provider.name().to_owned();
    state
        .db(move |c| {
            let (assay, study, inv) = super::viewer::assay_for(c, &person, id, Access::View)?;
            let sheet = answers::load(c, &assay)?;
            let meta = Metadata::load(c, &assay, &study, &inv, sheet.question_set.clone(), &model)?;
            Ok((assay, sheet, meta))
        })
        .await
}

/// Build an export file off the async threads (the PDF lays out and compresses pages).
async fn build<F>(sheet: AnswerSheet, meta: Metadata, render: F) -> AppResult<Vec<u8>>
where
    F: FnOnce(&AnswerSheet, &Metadata) -> anyhow::Result<Vec<u8>> + Send + 'static,
{
    let file = web::block(move || render(&sheet, &meta)).await.map_err(anyhow::Error::from)?;
    Ok(file?)
}

pub async fn export_docx(state: web::Data<AppState>, viewer: Viewer, path: web::Path<i32>) -> AppResult<HttpResponse> {
    let (_, sheet, meta) = export_for(&state, &viewer, path.into_inner()).await?;
    let name = export_name(&sheet, "docx");
    let file = build(sheet, meta, export::docx::render).await?;
    Ok(attachment(name, "application/vnd.openxmlformats-officedocument.wordprocessingml.document", file))
}

pub async fn export_html(state: web::Data<AppState>, viewer: Viewer, path: web::Path<i32>) -> AppResult<HttpResponse> {
    let (_, sheet, meta) = export_for(&state, &viewer, path.into_inner()).await?;
    let file = export::html::render(&sheet, &meta);
    Ok(attachment(export_name(&sheet, "html"), "text/html; charset=utf-8", file))
}

pub async fn export_pdf(state: web::Data<AppState>, viewer: Viewer, path: web::Path<i32>) -> AppResult<HttpResponse> {
    let (_, sheet, meta) = export_for(&state, &viewer, path.into_inner()).await?;
    let name = export_name(&sheet, "pdf");
    let file = build(sheet, meta, export::pdf::render).await?;
    Ok(attachment(name, "application/pdf", file))
}
