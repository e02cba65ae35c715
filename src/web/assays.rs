//! Assays inside a study: create, show, edit, delete.

use actix_web::{HttpResponse, web};
use askama::Template;
use askama_web::WebTemplate;
use serde::Deserialize;

use crate::db::models::assay::{AssayFields, Edit};
use crate::db::models::{Access, Answer, Assay, FileAsset, FileAssetId, Investigation, QuestionSet, Study, Which};
use crate::fileops::KeptFile;

use super::error::{AppError, AppResult};
use super::forms::{FormTarget, TitleForm};
use super::page::{Page, flash};
use super::viewer::Viewer;
use super::{AppState, see_other};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/studies/{id}/assays/new", web::get().to(new_form))
        .route("/studies/{id}/assays/new", web::post().to(create))
        .route("/assays/{id}", web::get().to(show))
        .route("/assays/{id}/edit", web::get().to(edit_form))
        .route("/assays/{id}/edit", web::post().to(update))
        .route("/assays/{id}/delete", web::post().to(delete))
        .route("/assays/{id}/withdraw-consent", web::post().to(withdraw_consent))
        .route("/assays/{id}/files/{file}/withdraw-consent", web::post().to(withdraw_file_consent));
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct AssayForm {
    #[serde(flatten)]
    pub text: TitleForm,
    #[serde(default)]
    pub question_set_id: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "assay_form.html")]
pub struct AssayFormPage {
    page: Page,
    target: FormTarget,
    form: AssayForm,
    question_sets: Vec<QuestionSet>,
    error: Option<String>,
    /// The assay has answers (or a run in progress) for its question set: it stays.
    question_set_locked: bool,
}

const QUESTION_SET_LOCKED: &str = "The question set cannot be changed: this assay already has answers for it (or a \
     run in progress). Create a new assay to use another question set.";

impl AssayFormPage {
    fn selected(&self, set: &QuestionSet) -> bool {
        self.form.question_set_id == set.id.to_string()
            || (self.form.question_set_id.is_empty() && self.question_sets.len() == 1)
    }
}

/// A validated assay form.
struct ParsedAssay {
    title: String,
    description: String,
    question_set_id: Option<i32>,
}

fn parse(form: &AssayForm, sets: &[QuestionSet]) -> Result<ParsedAssay, String> {
    let text = form.text.parse()?;
    let question_set_id = match form.question_set_id.trim() {
        "" => None,
        raw => {
            let id: i32 = raw.parse().map_err(|_| "Please choose a question set from the list.")?;
            if !sets.iter().any(|s| s.id == id) {
                return Err("Please choose a question set from the list.".into());
            }
            Some(id)
        }
    };
    Ok(ParsedAssay { title: text.title, description: text.description, question_set_id })
}

async fn question_sets(state: &AppState) -> AppResult<Vec<QuestionSet>> {
    state.db(|conn| Ok(QuestionSet::all(conn)?)).await
}

fn new_target(study: &Study) -> FormTarget {
    FormTarget::new(
        format!("New assay in “{}”", study.title),
        format!("/studies/{}/assays/new", study.id),
        format!("/studies/{}", study.id),
    )
}

fn edit_target(id: i32) -> FormTarget {
    FormTarget::new("Edit assay", format!("/assays/{id}/edit"), format!("/assays/{id}"))
}

impl AssayFormPage {
    fn new(
        target: FormTarget,
        viewer: &Viewer,
        form: AssayForm,
        question_sets: Vec<QuestionSet>,
        error: Option<String>,
    ) -> Self {
        Self { page: viewer.page(), target, form, question_sets, error, question_set_locked: false }
    }
}

impl ParsedAssay {
    fn fields(&self) -> AssayFields<'_> {
        AssayFields { title: &self.title, description: &self.description, question_set_id: self.question_set_id }
    }
}

pub async fn new_form(state: web::Data<AppState>, viewer: Viewer, path: web::Path<i32>) -> AppResult<AssayFormPage> {
    let (study, _) = viewer.study(&state, path.into_inner(), Access::Own).await?;
    Ok(AssayFormPage::new(new_target(&study), &viewer, AssayForm::default(), question_sets(&state).await?, None))
}

pub async fn create(
    state: web::Data<AppState>,
    viewer: Viewer,
    path: web::Path<i32>,
    form: web::Form<AssayForm>,
) -> AppResult<HttpResponse> {
    let (study, _) = viewer.study(&state, path.into_inner(), Access::Own).await?;
    let sets = question_sets(&state).await?;
    let form = form.into_inner();
    let parsed = match parse(&form, &sets) {
        Ok(parsed) => parsed,
        Err(msg) => {
            return super::unprocessable(AssayFormPage::new(new_target(&study), &viewer, form, sets, Some(msg)));
        }
    };
    let study_id = study.id;
    let assay = state.db(move |conn| Ok(Assay::create(conn, study_id, &parsed.fields())?)).await?;
    flash(&viewer.session, "success", format!("Assay “{}” created.", assay.title));
    Ok(see_other(&format!("/assays/{}", assay.id)))
}

#[derive(Template, WebTemplate)]
#[template(path = "assay.html")]
pub struct AssayPage {
    page: Page,
    assay: Assay,
    study: Study,
    investigation: Investigation,
    question_set: Option<QuestionSet>,
    drafted: usize,
    accepted: usize,
    stored_files: Vec<KeptFile>,
    /// The viewer owns the investigation (edits, deletes, withdraws the whole assay's consent).
    owner: bool,
    /// The viewer may upload documents and edit answers.
    contributor: bool,
    /// The drafting runs with their tokens and estimated costs.
    runs: crate::drafting::runs::RunsSummary,
}

pub async fn show(state: web::Data<AppState>, viewer: Viewer, path: web::Path<i32>) -> AppResult<AssayPage> {
    let (assay, study, investigation) = viewer.assay(&state, path.into_inner(), Access::View).await?;
    let (assay_id, set_id) = (assay.id, assay.question_set_id);
    let (inv, person) = (investigation.clone(), viewer.person.clone());
    let (question_set, answers, stored_files, runs, standing) = state
        .db(move |conn| {
            let set = set_id.map(|id| QuestionSet::find(conn, id)).transpose()?;
            let runs = crate::drafting::runs::summary(conn, assay_id)?;
            let files = crate::fileops::kept_files(conn, assay_id, inv.owner_id, person.id)?;
            Ok((set, Answer::of_assay(conn, assay_id)?, files, runs, inv.standing_of(conn, &person)?))
        })
        .await?;
    let drafted = answers.iter().filter(|a| !a.text.is_empty()).count();
    let accepted = answers.iter().filter(|a| a.accepted).count();
    Ok(AssayPage {
        page: viewer.page(),
        assay,
        study,
        investigation,
        question_set,
        drafted,
        accepted,
        stored_files,
        owner: standing.allows(Access::Own),
        contributor: standing.allows(Access::Contribute),
        runs,
    })
}

/// The owner takes back the consent to keep this assay's documents.
pub async fn withdraw_consent(
    state: web::Data<AppState>,
    viewer: Viewer,
    path: web::Path<i32>,
) -> AppResult<HttpResponse> {
    let (assay, _, _) = viewer.assay(&state, path.into_inner(), Access::Own).await?;
    let actor = viewer.actor();
    let ctx = &state.ctx;
    let crate::fileops::Withdrawn { deleted, failed } =
        crate::fileops::withdraw_consent(&ctx.pool, ctx.store.as_ref(), assay.id, &actor).await?;
    if failed > 0 {
        flash(
            &viewer.session,
            "warning",
            format!("{deleted} stored file(s) deleted; {failed} could not be deleted right now — please try again."),
        );
    } else {
        flash(&viewer.session, "success", format!("Consent withdrawn: {deleted} stored file(s) deleted."));
    }
    Ok(see_other(&format!("/assays/{}", assay.id)))
}

/// The uploader of a kept file (or the investigation's owner) takes back the consent to keep
/// that one file; other members may not (403).
pub async fn withdraw_file_consent(
    state: web::Data<AppState>,
    viewer: Viewer,
    path: web::Path<(i32, String)>,
) -> AppResult<HttpResponse> {
    let (assay_id, file) = path.into_inner();
    let file_id: FileAssetId = file.parse().map_err(|_| AppError::NotFound)?;
    let (assay, _, inv) = viewer.assay(&state, assay_id, Access::Contribute).await?;
    let wanted = file_id.clone();
    let asset = state
        .db(move |c| {
            let kept = FileAsset::of_assay(c, assay_id, Which::Available)?;
            kept.into_iter().find(|a| a.id == wanted).ok_or(AppError::NotFound)
        })
        .await?;
    if !crate::fileops::may_withdraw_file(&asset, inv.owner_id, viewer.person.id) {
        return Err(AppError::Forbidden);
    }
    let ctx = &state.ctx;
    let which = crate::fileops::Withdrawal::File(file_id);
    let outcome = crate::fileops::withdraw(&ctx.pool, ctx.store.as_ref(), assay.id, which, &viewer.actor()).await?;
    if outcome.failed > 0 {
        flash(&viewer.session, "warning", "The document could not be deleted right now — please try again.");
    } else {
        flash(&viewer.session, "success", format!("Consent withdrawn: “{}” deleted.", asset.shown_name()));
    }
    Ok(see_other(&format!("/assays/{}", assay.id)))
}

pub async fn edit_form(state: web::Data<AppState>, viewer: Viewer, path: web::Path<i32>) -> AppResult<AssayFormPage> {
    let (assay, _, _) = viewer.assay(&state, path.into_inner(), Access::Own).await?;
    let locked_check = assay.clone();
    let locked = state.db(move |c| Ok(Assay::question_set_locked(c, &locked_check)?)).await?;
    let form = AssayForm {
        text: TitleForm { title: assay.title, description: assay.description },
        question_set_id: assay.question_set_id.map(|i| i.to_string()).unwrap_or_default(),
    };
    let mut page = AssayFormPage::new(edit_target(assay.id), &viewer, form, question_sets(&state).await?, None);
    page.question_set_locked = locked;
    Ok(page)
}

pub async fn update(
    state: web::Data<AppState>,
    viewer: Viewer,
    path: web::Path<i32>,
    form: web::Form<AssayForm>,
) -> AppResult<HttpResponse> {
    let (assay, _, _) = viewer.assay(&state, path.into_inner(), Access::Own).await?;
    let id = assay.id;
    let sets = question_sets(&state).await?;
    let form = form.into_inner();
    let parsed = match parse(&form, &sets) {
        Ok(parsed) => parsed,
        Err(msg) => return super::unprocessable(AssayFormPage::new(edit_target(id), &viewer, form, sets, Some(msg))),
    };
    match state.db(move |conn| Ok(Assay::edit(conn, id, &parsed.fields())?)).await? {
        Edit::Saved => {
            flash(&viewer.session, "success", "Assay saved.");
            Ok(see_other(&format!("/assays/{id}")))
        }
        Edit::QuestionSetLocked => {
            let form =
                AssayForm { question_set_id: assay.question_set_id.map(|i| i.to_string()).unwrap_or_default(), ..form };
            let mut page = AssayFormPage::new(edit_target(id), &viewer, form, sets, Some(QUESTION_SET_LOCKED.into()));
            page.question_set_locked = true;
            super::conflict(page)
        }
    }
}

pub async fn delete(state: web::Data<AppState>, viewer: Viewer, path: web::Path<i32>) -> AppResult<HttpResponse> {
    let (assay, study, _) = viewer.assay(&state, path.into_inner(), Access::Own).await?;
    let what = format!("Assay “{}”", assay.title);
    super::delete_item(&state, &viewer, crate::deletion::Item::Assay(assay.id), what).await?;
    Ok(see_other(&format!("/studies/{}", study.id)))
}
