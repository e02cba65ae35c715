//! The StartingForm: pick or create investigation / study / assay, upload documents, choose
//! whether to share them (checked by default), and start the drafting.

use actix_multipart::Multipart;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use crate::db::models::assay::AssayFields;
use crate::db::models::{Answer, Assay, Investigation, Person, QuestionSet, Study};
use diesel::QueryResult;

use crate::db::{DbConn, write_transaction};
use crate::ingest::ACCEPTED_EXTENSIONS;
use crate::submission::{self, FileProblem, Submission, SubmitDeps, SubmitError};

use super::error::{AppError, AppResult, new_reference};
use super::extract::Viewer;
use super::forms::MAX_TITLE;
use super::page::{Page, flash};
use super::upload::{SpooledForm, spool};
use super::{AppState, see_other};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/add/", web::get().to(form))
        .route("/add/", web::post().to(submit))
        .route("/add", web::get().to(|| async { see_other("/add/") }));
}

/// What the person typed or chose, kept for re-rendering.
#[derive(Clone, Debug, Default)]
pub struct StartFields {
    pub question_set_id: String,
    pub assay_id: String,
    pub investigation_id: String,
    pub new_investigation_title: String,
    pub study_id: String,
    pub new_study_title: String,
    pub new_assay_title: String,
    pub new_assay_description: String,
    pub overwrite: bool,
    pub extract_images: bool,
    pub share_files_for_development: bool,
}

impl StartFields {
    fn from_form(form: &SpooledForm) -> Self {
        Self {
            question_set_id: form.text("question_set_id"),
            assay_id: form.text("assay_id"),
            investigation_id: form.text("investigation_id"),
            new_investigation_title: form.text("new_investigation_title"),
            study_id: form.text("study_id"),
            new_study_title: form.text("new_study_title"),
            new_assay_title: form.text("new_assay_title"),
            new_assay_description: form.text("new_assay_description"),
            overwrite: form.checked("overwrite"),
            extract_images: form.checked("extract_images"),
            share_files_for_development: form.checked("share_files_for_development"),
        }
    }
}

#[derive(Template)]
#[template(path = "start.html")]
pub struct StartPage {
    page: Page,
    fields: StartFields,
    question_sets: Vec<QuestionSet>,
    /// (assay, "investigation › study") of the person's assays.
    assays: Vec<(Assay, String)>,
    investigations: Vec<Investigation>,
    studies: Vec<(Study, String)>,
    errors: Vec<String>,
    file_problems: Vec<FileProblem>,
    accept: &'static str,
    max_file_mb: u64,
}

impl StartPage {
    fn set_selected(&self, set: &QuestionSet) -> bool {
        self.fields.question_set_id == set.id.to_string()
            || (self.fields.question_set_id.is_empty() && self.question_sets.len() == 1)
    }
}

#[derive(Deserialize)]
pub struct FormQuery {
    assay: Option<i32>,
}

async fn render(
    state: &AppState,
    viewer: &Viewer,
    fields: StartFields,
    errors: Vec<String>,
    file_problems: Vec<FileProblem>,
) -> AppResult<StartPage> {
    let person = viewer.person.clone();
    let (question_sets, assays, investigations, studies) = state
        .db(move |c| {
            let investigations = Investigation::owned_by(c, &person)?;
            let studies = Study::owned_by(c, &person)?;
            let mut assays = Vec::new();
            for (study, inv_title) in &studies {
                for assay in Assay::of_study(c, study.id)? {
                    assays.push((assay, format!("{inv_title} › {}", study.title)));
                }
            }
            Ok((QuestionSet::all(c)?, assays, investigations, studies))
        })
        .await?;
    Ok(StartPage {
        page: viewer.page(),
        fields,
        question_sets,
        assays,
        investigations,
        studies,
        errors,
        file_problems,
        accept: ACCEPTED_EXTENSIONS,
        max_file_mb: state.config.upload_limits.max_file_bytes / (1024 * 1024),
    })
}

fn respond(page: StartPage, status: StatusCode) -> AppResult<HttpResponse> {
    let body = page.render().map_err(anyhow::Error::from)?;
    Ok(HttpResponse::build(status).content_type("text/html; charset=utf-8").body(body))
}

pub async fn form(state: web::Data<AppState>, viewer: Viewer, query: web::Query<FormQuery>) -> AppResult<HttpResponse> {
    let fields = StartFields {
        assay_id: query.assay.map(|a| a.to_string()).unwrap_or_default(),
        share_files_for_development: true,
        ..StartFields::default()
    };
    respond(render(&state, &viewer, fields, vec![], vec![]).await?, StatusCode::OK)
}

/// Where the answers go: an existing assay of the viewer's, or new ones to create.
enum Target {
    Existing(i32),
    New { investigation: NewOrId, study: NewOrId, title: String, description: String },
}

enum NewOrId {
    Id(i32),
    New(String),
}

fn parse_target(f: &StartFields) -> Result<Target, String> {
    let title = |t: &str, what: &str| -> Result<String, String> {
        let t = t.trim();
        if t.is_empty() {
            Err(format!("Please give the new {what} a title."))
        } else if t.chars().count() > MAX_TITLE {
            Err(format!("The {what} title may have at most {MAX_TITLE} characters."))
        } else {
            Ok(t.to_owned())
        }
    };
    let id_or_new = |raw: &str, new_title: &str, what: &str| -> Result<NewOrId, String> {
        match raw.trim() {
            "" | "new" => Ok(NewOrId::New(title(new_title, what)?)),
            id => id.parse().map(NewOrId::Id).map_err(|_| format!("Please choose a {what} from the list.")),
        }
    };
    match f.assay_id.trim() {
        "" => Err("Please choose an assay, or “new assay”.".into()),
        "new" => Ok(Target::New {
            investigation: id_or_new(&f.investigation_id, &f.new_investigation_title, "investigation")?,
            study: id_or_new(&f.study_id, &f.new_study_title, "study")?,
            title: title(&f.new_assay_title, "assay")?,
            description: f.new_assay_description.trim().to_owned(),
        }),
        id => id.parse().map(Target::Existing).map_err(|_| "Please choose an assay from the list.".into()),
    }
}

/// Check access to what the target names, without writing anything.
fn check_target(c: &mut DbConn, viewer: &Person, target: &Target, set_id: Option<i32>) -> AppResult<()> {
    match target {
        Target::Existing(id) => {
            Assay::find_for(c, *id, viewer)?;
        }
        Target::New { investigation, study, .. } => {
            if let NewOrId::Id(id) = study {
                let (_, inv) = Study::find_for(c, *id, viewer)?;
                if let NewOrId::Id(inv_id) = investigation
                    && inv.id != *inv_id
                {
                    return Err(AppError::BadRequest("The chosen study is not in the chosen investigation.".into()));
                }
            } else if let NewOrId::Id(id) = investigation {
                Investigation::find_for(c, *id, viewer)?;
            }
        }
    }
    if let Some(id) = set_id {
        QuestionSet::find(c, id)?;
    }
    Ok(())
}

/// The outermost thing a submission created, so that a failed submission can take it back.
#[derive(Clone, Copy, Debug)]
enum Created {
    Nothing,
    Assay(i32),
    Study(i32),
    Investigation(i32),
}

impl Created {
    fn undo(self, c: &mut DbConn) -> QueryResult<usize> {
        match self {
            Created::Nothing => Ok(0),
            Created::Assay(id) => Assay::delete(c, id),
            Created::Study(id) => Study::delete(c, id),
            Created::Investigation(id) => Investigation::delete(c, id),
        }
    }
}

/// Create what the target asks for; returns the assay id and what was created.
fn create_target(c: &mut DbConn, viewer: &Person, target: Target, set_id: Option<i32>) -> AppResult<(i32, Created)> {
    match target {
        Target::Existing(id) => {
            let (assay, _, _) = Assay::find_for(c, id, viewer)?;
            if assay.question_set_id.is_none() && set_id.is_some() {
                let fields =
                    AssayFields { title: &assay.title, description: &assay.description, question_set_id: set_id };
                Assay::update(c, id, &fields)?;
            }
            Ok((id, Created::Nothing))
        }
        Target::New { investigation, study, title, description } => write_transaction(c, |c| {
            let mut created = None;
            let study_id = match study {
                NewOrId::Id(id) => id,
                NewOrId::New(study_title) => {
                    let inv_id = match investigation {
                        NewOrId::Id(id) => id,
                        NewOrId::New(inv_title) => {
                            let id = Investigation::create(c, viewer, &inv_title, "")?.id;
                            created = Some(Created::Investigation(id));
                            id
                        }
                    };
                    let id = Study::create(c, inv_id, &study_title, "")?.id;
                    created = created.or(Some(Created::Study(id)));
                    id
                }
            };
            let fields = AssayFields { title: &title, description: &description, question_set_id: set_id };
            let id = Assay::create(c, study_id, &fields)?.id;
            Ok((id, created.unwrap_or(Created::Assay(id))))
        }),
    }
}

pub async fn submit(state: web::Data<AppState>, viewer: Viewer, payload: Multipart) -> AppResult<HttpResponse> {
    let limits = state.config.upload_limits.clone();
    let spooled = spool(payload, "files", &limits, &state.config.data_dir.join("tmp")).await?;
    let fields = StartFields::from_form(&spooled);
    let mut problems = spooled.problems.clone();
    let checked = match submission::check_files(spooled.files.clone(), &limits) {
        Ok(checked) if problems.is_empty() => Some(checked),
        Ok(_) => None,
        Err(more) => {
            problems.extend(more);
            None
        }
    };
    let set_id = fields.question_set_id.trim().parse::<i32>().ok();
    let (checked, target) = match (checked, parse_target(&fields)) {
        (Some(checked), Ok(target)) => (checked, target),
        (_, target) => {
            let errors = target.err().into_iter().collect();
            let status =
                if problems.is_empty() { StatusCode::UNPROCESSABLE_ENTITY } else { problems_status(&problems) };
            return respond(render(&state, &viewer, fields, errors, problems).await?, status);
        }
    };
    let person = viewer.person.clone();
    let (target, set_id) = state
        .db(move |c| {
            check_target(c, &person, &target, set_id)?;
            // No choice made and only one set to choose from: that one.
            let set_id = match set_id {
                Some(id) => Some(id),
                None => match QuestionSet::all(c)?.as_slice() {
                    [only] => Some(only.id),
                    _ => None,
                },
            };
            let has_set = match &target {
                Target::Existing(id) => set_id.is_some() || Assay::find(c, *id)?.question_set_id.is_some(),
                Target::New { .. } => set_id.is_some(),
            };
            if !has_set {
                return Err(AppError::BadRequest("Please choose a question set.".into()));
            }
            Ok((target, set_id))
        })
        .await?;
    // An existing assay with answers needs “overwrite”.
    if let Target::Existing(id) = target {
        let has_answers = state.db(move |c| Ok(!Answer::of_assay(c, id)?.is_empty())).await?;
        if has_answers && !fields.overwrite {
            let errors =
                vec!["This assay already has answers. Tick “overwrite” to replace them with new drafts.".into()];
            return respond(render(&state, &viewer, fields, errors, vec![]).await?, StatusCode::CONFLICT);
        }
    }
    let person = viewer.person.clone();
    let (assay_id, created) = state.db(move |c| create_target(c, &person, target, set_id)).await?;
    let sub = Submission {
        assay_id,
        uploader_id: viewer.person.id,
        files: checked,
        share_files_for_development: fields.share_files_for_development,
        extract_images: fields.extract_images,
        overwrite: true,
        question_ids: None,
    };
    // Its own task: if the browser goes away mid-way, the submission still ends whole —
    // scheduled, or rolled back — instead of being dropped half-done.
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
        if result.is_err() {
            let _ = st.db(move |c| Ok(created.undo(c)?)).await;
        }
        drop(spooled);
        result
    })
    .await
    .map_err(|e| AppError::internal(anyhow::anyhow!("submission task failed: {e}")))?;
    match outcome {
        Ok(done) => {
            let stored = if done.stored.is_empty() {
                String::new()
            } else {
                format!(" {} file(s) kept with your consent.", done.stored.len())
            };
            flash(
                &viewer.session,
                "success",
                format!("Your documents were received and drafting has started.{stored}"),
            );
            Ok(see_other("/"))
        }
        Err(err) => {
            let (status, message) = match err {
                SubmitError::Refused(msg) => (StatusCode::CONFLICT, msg),
                SubmitError::Storage(_) => {
                    let reference = new_reference();
                    tracing::error!(reference = %reference, error = %err, "storage failed during a submission");
                    (
                        StatusCode::SERVICE_UNAVAILABLE,
                        format!(
                            "Your files could not be stored right now, so nothing was saved and nothing was started. Please try again later (reference {reference})."
                        ),
                    )
                }
                SubmitError::Internal(e) => return Err(AppError::Internal(e)),
            };
            let mut fields = fields;
            if !matches!(created, Created::Nothing) {
                fields.assay_id = "new".into();
            }
            respond(render(&state, &viewer, fields, vec![message], vec![]).await?, status)
        }
    }
}

/// 413 for sizes, 415 for types, 422 for the rest.
pub fn problems_status(problems: &[FileProblem]) -> StatusCode {
    if problems.iter().any(|p| p.reason.contains("larger than") || p.reason.contains("add up to")) {
        StatusCode::PAYLOAD_TOO_LARGE
    } else if problems.iter().any(|p| p.reason.contains("not supported") || p.reason.contains("not a valid")) {
        StatusCode::UNSUPPORTED_MEDIA_TYPE
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    }
}
