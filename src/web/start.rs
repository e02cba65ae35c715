//! The StartingForm: pick or create investigation / study / assay, upload documents, choose
//! whether to keep them (checked by default), and start the drafting. The work is the
//! drafting use case's; this module reads the form and shows the outcome.

use actix_multipart::Multipart;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use crate::db::models::{Assay, Investigation, QuestionSet, Study};
use crate::drafting::choice::{self, ModelChoice, ModelEntry};
use crate::drafting::{self, DraftError, DraftRequest, FileProblem, NewOrId, Scope, Target};
use crate::ingest::ACCEPTED_EXTENSIONS;

use super::error::{AppError, AppResult, problems_status};
use super::forms::MAX_TITLE;
use super::page::{Page, flash};
use super::upload::{SpooledForm, spool};
use super::viewer::Viewer;
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
    /// The language model chosen (`default` or a configuration's id).
    pub llm_configuration: String,
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
            llm_configuration: form.text("llm_configuration"),
        }
    }

    /// The assay the person chose, or the new one they described.
    fn target(&self) -> Result<Target, String> {
        match self.assay_id.trim() {
            "" => Err("Please choose an assay, or “new assay”.".into()),
            "new" => Ok(Target::New {
                investigation: id_or_new(&self.investigation_id, &self.new_investigation_title, "investigation")?,
                study: id_or_new(&self.study_id, &self.new_study_title, "study")?,
                title: title(&self.new_assay_title, "assay")?,
                description: self.new_assay_description.trim().to_owned(),
            }),
            id => id.parse().map(Target::Existing).map_err(|_| "Please choose an assay from the list.".into()),
        }
    }
}

fn title(typed: &str, what: &str) -> Result<String, String> {
    let typed = typed.trim();
    if typed.is_empty() {
        Err(format!("Please give the new {what} a title."))
    } else if typed.chars().count() > MAX_TITLE {
        Err(format!("The {what} title may have at most {MAX_TITLE} characters."))
    } else {
        Ok(typed.to_owned())
    }
}

fn id_or_new(raw: &str, new_title: &str, what: &str) -> Result<NewOrId, String> {
    match raw.trim() {
        "" | "new" => Ok(NewOrId::New(title(new_title, what)?)),
        id => id.parse().map(NewOrId::Id).map_err(|_| format!("Please choose a {what} from the list.")),
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
    /// The models people may choose, the default first.
    models: Vec<ModelEntry>,
}

impl StartPage {
    fn set_selected(&self, set: &QuestionSet) -> bool {
        self.fields.question_set_id == set.id.to_string()
            || (self.fields.question_set_id.is_empty() && self.question_sets.len() == 1)
    }

    fn model_selected(&self, entry: &ModelEntry) -> bool {
        ModelChoice::parse(&self.fields.llm_configuration).is_ok_and(|c| c == entry.choice)
    }
}

#[derive(Deserialize)]
pub struct FormQuery {
    assay: Option<i32>,
}

/// The form, with what was typed and why it was refused.
async fn render(
    state: &AppState,
    viewer: &Viewer,
    fields: StartFields,
    errors: Vec<String>,
    file_problems: Vec<FileProblem>,
    status: StatusCode,
) -> AppResult<HttpResponse> {
    let person = viewer.person.clone();
    let llm = state.config().llm.clone();
    let (question_sets, assays, investigations, studies, models) = state
        .db(move |c| {
            let studies = Study::owned_by(c, &person)?;
            let shared = Study::shared_with(c, &person)?;
            let mut assays = Vec::new();
            // Shared assays are listed too: their members upload into them (not new ones).
            for (study, inv_title) in studies.iter().chain(&shared) {
                for assay in Assay::of_study(c, study.id)? {
                    assays.push((assay, format!("{inv_title} › {}", study.title)));
                }
            }
            let models = choice::offered(c, &llm)?;
            Ok((QuestionSet::all(c)?, assays, Investigation::owned_by(c, &person)?, studies, models))
        })
        .await?;
    let page = StartPage {
        page: viewer.page(),
        fields,
        question_sets,
        assays,
        investigations,
        studies,
        errors,
        file_problems,
        accept: ACCEPTED_EXTENSIONS,
        max_file_mb: state.config().upload_limits.max_file_bytes / (1024 * 1024),
        models,
    };
    let body = page.render().map_err(anyhow::Error::from)?;
    Ok(HttpResponse::build(status).content_type("text/html; charset=utf-8").body(body))
}

pub async fn form(state: web::Data<AppState>, viewer: Viewer, query: web::Query<FormQuery>) -> AppResult<HttpResponse> {
    let fields = StartFields {
        assay_id: query.assay.map(|a| a.to_string()).unwrap_or_default(),
        share_files_for_development: true,
        ..StartFields::default()
    };
    render(&state, &viewer, fields, vec![], vec![], StatusCode::OK).await
}

pub async fn submit(
    state: web::Data<AppState>,
    viewer: Viewer,
    req: actix_web::HttpRequest,
    payload: Multipart,
) -> AppResult<HttpResponse> {
    let early = super::upload::StoreAsTheyArrive::for_form(&state, &viewer);
    let mut form = spool(payload, "files", &state.config().upload_limits, &state.config().spool_dir(), early).await?;
    let fields = StartFields::from_form(&form);
    let target = fields.target().and_then(|t| Ok((t, ModelChoice::parse(&fields.llm_configuration)?)));
    let (target, model) = match target {
        Ok(chosen) => chosen,
        Err(message) => {
            form.upload.discard_early().await;
            let problems = drafting::check_files(&form.upload, &state.config().upload_limits).err().unwrap_or_default();
            let status =
                if problems.is_empty() { StatusCode::UNPROCESSABLE_ENTITY } else { problems_status(&problems) };
            return render(&state, &viewer, fields, vec![message], problems, status).await;
        }
    };
    let request = DraftRequest {
        uploader: viewer.person.clone(),
        target,
        question_set_id: fields.question_set_id.trim().parse().ok(),
        scope: Scope::All { overwrite: fields.overwrite },
        upload: form.upload,
        keep_files: fields.share_files_for_development,
        extract_images: fields.extract_images,
        model,
    };
    match drafting::submit(&state.ctx, request).await {
        Ok(done) => {
            if let Some(warning) = &done.context_warning {
                flash(&viewer.session, "warning", warning.clone());
            }
            let kept = match done.stored.len() {
                0 => String::new(),
                n => format!(" {n} file(s) kept with your consent."),
            };
            flash(&viewer.session, "success", format!("Your documents were received and drafting has started.{kept}"));
            Ok(super::see_other_or_json(&req, "/"))
        }
        Err(err) => refused(&state, &viewer, fields, err).await,
    }
}

/// The form again, with why the submission was refused; errors that are not about the form
/// (someone else's assay, an internal failure) get their own page.
async fn refused(state: &AppState, viewer: &Viewer, fields: StartFields, err: DraftError) -> AppResult<HttpResponse> {
    let (status, errors, problems) = match err {
        DraftError::Files(problems) => (problems_status(&problems), vec![], problems),
        DraftError::StorageUnavailable { .. } => (StatusCode::SERVICE_UNAVAILABLE, vec![err.to_string()], vec![]),
        err => match AppError::from(err) {
            AppError::Rejected(status, message) => (status, vec![message], vec![]),
            other => return Err(other),
        },
    };
    render(state, viewer, fields, errors, problems, status).await
}
