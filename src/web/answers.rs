//! The answer page: read, edit, accept, see sources and history, regenerate selected
//! questions with new uploads, export.

use actix_multipart::Multipart;
use actix_web::http::{StatusCode, header};
use actix_web::{HttpResponse, web};
use askama::Template;
use askama_web::WebTemplate;
use serde::Deserialize;

use crate::answers::{self, AnswerSheet};
use crate::db::models::{Answer, Assay, Investigation, Study};
use crate::fileops::safe_entry_name;
use crate::submission::{self, Submission, SubmitDeps, SubmitError};

use super::error::{AppError, AppResult, new_reference};
use super::extract::Viewer;
use super::page::{Page, flash};
use super::start::problems_status;
use super::upload::spool;
use super::{AppState, see_other};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/assays/{id}/answers", web::get().to(show))
        .route("/assays/{id}/answers/{question}", web::post().to(save))
        .route("/assays/{id}/regenerate", web::post().to(regenerate))
        .route("/assays/{id}/export.json", web::get().to(export_json))
        .route("/assays/{id}/export.md", web::get().to(export_markdown));
}

#[derive(Template, WebTemplate)]
#[template(path = "answers.html")]
pub struct AnswersPage {
    page: Page,
    assay: Assay,
    study: Study,
    investigation: Investigation,
    sheet: AnswerSheet,
    accept: &'static str,
}

async fn sheet_for(
    state: &AppState,
    viewer: &Viewer,
    id: i32,
) -> AppResult<(Assay, Study, Investigation, AnswerSheet)> {
    let person = viewer.person.clone();
    state
        .db(move |c| {
            let (assay, study, inv) = Assay::find_for(c, id, &person)?;
            let sheet = answers::load(c, &assay)?;
            Ok((assay, study, inv, sheet))
        })
        .await
}

pub async fn show(state: web::Data<AppState>, viewer: Viewer, path: web::Path<i32>) -> AppResult<AnswersPage> {
    let (assay, study, investigation, sheet) = sheet_for(&state, &viewer, path.into_inner()).await?;
    Ok(AnswersPage {
        page: viewer.page(),
        assay,
        study,
        investigation,
        sheet,
        accept: crate::ingest::ACCEPTED_EXTENSIONS,
    })
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
    let accepted = form.accepted.is_some();
    let person = viewer.person.clone();
    state
        .db(move |c| {
            let (assay, _, _) = Assay::find_for(c, assay_id, &person)?;
            let Some(set_id) = assay.question_set_id else { return Err(AppError::NotFound) };
            if !crate::db::models::QuestionSet::questions(c, set_id)?.iter().any(|q| q.id == question_id) {
                return Err(AppError::NotFound);
            }
            crate::db::write_transaction(c, |c| {
                let existing = Answer::of_assay(c, assay_id)?.into_iter().find(|a| a.question_id == question_id);
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

pub async fn regenerate(
    state: web::Data<AppState>,
    viewer: Viewer,
    path: web::Path<i32>,
    payload: Multipart,
) -> AppResult<HttpResponse> {
    let assay_id = path.into_inner();
    let person = viewer.person.clone();
    let (assay, _, _) = state.db(move |c| Ok(Assay::find_for(c, assay_id, &person)?)).await?;
    let limits = state.config.upload_limits.clone();
    let spooled = spool(payload, "files", &limits, &state.config.data_dir.join("tmp")).await?;
    let question_ids: Vec<i32> = spooled.all("question_ids").iter().filter_map(|q| q.parse().ok()).collect();
    if question_ids.is_empty() {
        return Err(AppError::Rejected(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Please tick the questions to regenerate.".into(),
        ));
    }
    let mut problems = spooled.problems.clone();
    let checked = match submission::check_files(spooled.files.clone(), &limits) {
        Ok(checked) if problems.is_empty() => checked,
        Ok(_) => Vec::new(),
        Err(more) => {
            problems.extend(more);
            Vec::new()
        }
    };
    if !problems.is_empty() {
        let message = problems
            .iter()
            .map(|p| if p.name.is_empty() { p.reason.clone() } else { format!("{}: {}", p.name, p.reason) })
            .collect::<Vec<_>>()
            .join(" ");
        return Err(AppError::Rejected(
            problems_status(&problems),
            format!("Nothing was stored and nothing was started. {message}"),
        ));
    }
    let sub = Submission {
        assay_id: assay.id,
        uploader_id: viewer.person.id,
        files: checked,
        share_files_for_development: spooled.checked("share_files_for_development"),
        extract_images: spooled.checked("extract_images"),
        overwrite: true,
        question_ids: Some(question_ids.clone()),
    };
    // Its own task, so a browser that goes away cannot leave it half-done.
    let task_state = state.clone();
    let outcome = actix_web::rt::spawn(async move {
        let st = task_state;
        let deps = SubmitDeps {
            pool: &st.pool,
            store: st.store.as_ref(),
            extractor: &st.extractor,
            workers: &st.workers,
            limits: &limits,
        };
        let result = submission::submit(&deps, sub).await;
        drop(spooled);
        result
    })
    .await
    .map_err(|e| AppError::internal(anyhow::anyhow!("submission task failed: {e}")))?;
    match outcome {
        Ok(_) => {
            flash(&viewer.session, "success", format!("Regenerating {} answer(s).", question_ids.len()));
            Ok(see_other("/"))
        }
        Err(SubmitError::Storage(err)) => {
            let reference = new_reference();
            tracing::error!(reference = %reference, error = %err, "storage failed during a regeneration");
            Err(AppError::StorageUnavailable(reference))
        }
        Err(SubmitError::Refused(msg)) => Err(AppError::Rejected(StatusCode::CONFLICT, msg)),
        Err(SubmitError::Internal(e)) => Err(AppError::Internal(e)),
    }
}

fn attachment(name: String, content_type: &str, body: String) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(content_type)
        .insert_header((header::CONTENT_DISPOSITION, format!("attachment; filename=\"{name}\"")))
        .body(body)
}

fn export_name(sheet: &AnswerSheet, ext: &str) -> String {
    let stem: String = safe_entry_name(&sheet.assay_title)
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' })
        .take(60)
        .collect();
    format!("toxtemp-assay-{}-{stem}.{ext}", sheet.assay_id)
}

pub async fn export_json(state: web::Data<AppState>, viewer: Viewer, path: web::Path<i32>) -> AppResult<HttpResponse> {
    let (assay, study, inv, sheet) = sheet_for(&state, &viewer, path.into_inner()).await?;
    let doc = serde_json::json!({
        "format": "toxtemp-assistant-export/1",
        "exported_at": crate::db::now().format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        "investigation": inv.title,
        "study": study.title,
        "assay": { "id": assay.id, "title": assay.title, "scope": assay.description, "status": assay.status, "question_set": sheet.question_set },
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
    let (_, _, _, sheet) = sheet_for(&state, &viewer, path.into_inner()).await?;
    Ok(attachment(export_name(&sheet, "md"), "text/markdown; charset=utf-8", answers::markdown(&sheet)))
}
