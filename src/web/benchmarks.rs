//! Staff pages for benchmarking (`/admin/benchmarks…`): sets frozen from kept assays, runs
//! started on them, each run's metrics, runs side by side with a chart, one question across
//! runs, and the per-question results as CSV and JSON.

use actix_web::http::{StatusCode, header};
use actix_web::{HttpResponse, web};
use askama::Template;
use askama_web::WebTemplate;
use serde::Deserialize;

use crate::benchmark::{
    self, Candidate, Comparison, NewSet, QuestionAcrossRuns, RunReport, RunRequest, SetError, Summary,
};
use crate::db::models::{BenchmarkItem, BenchmarkSet, EvaluationRun, FileAsset};

use super::error::{AppError, AppResult};
use super::page::{Page, flash};
use super::viewer::Staff;
use super::{AppState, see_other};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/admin/benchmarks", web::get().to(list))
        .route("/admin/benchmarks", web::post().to(create))
        .route("/admin/benchmarks/{set}", web::get().to(show))
        .route("/admin/benchmarks/{set}/delete", web::post().to(delete))
        .route("/admin/benchmarks/{set}/runs", web::post().to(start_run))
        .route("/admin/benchmarks/{set}/runs/{run}", web::get().to(run_page))
        .route("/admin/benchmarks/{set}/runs/{run}/results.csv", web::get().to(results_csv))
        .route("/admin/benchmarks/{set}/runs/{run}/results.json", web::get().to(results_json))
        .route("/admin/benchmarks/{set}/compare", web::get().to(compare))
        .route("/admin/benchmarks/{set}/compare/{item}/{question}", web::get().to(question));
}

/// Numbers for people: a share as "67.5 %", a score as "0.675", nothing as "–".
pub trait Figures {
    fn pct(&self, value: &Option<f64>) -> String {
        value.map(|v| format!("{:.1} %", v * 100.0)).unwrap_or_else(|| "–".into())
    }
    fn score(&self, value: &Option<f64>) -> String {
        value.map(|v| format!("{v:.3}")).unwrap_or_else(|| "–".into())
    }
}

fn refused(err: SetError) -> AppError {
    match err {
        SetError::Invalid(message) => AppError::Rejected(StatusCode::UNPROCESSABLE_ENTITY, message),
        SetError::Internal(err) => AppError::Internal(err),
    }
}

/// A set as listed: its cases, how many of their files left, its runs.
pub struct SetRow {
    pub set: BenchmarkSet,
    pub cases: usize,
    pub missing_files: usize,
    pub runs: usize,
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/benchmarks.html")]
pub struct ListPage {
    page: Page,
    sets: Vec<SetRow>,
    candidates: Vec<Candidate>,
    error: Option<String>,
}

async fn list_page(state: &AppState, viewer: &super::viewer::Viewer, error: Option<String>) -> AppResult<ListPage> {
    let (sets, candidates) = state
        .db(|c| {
            let mut rows = Vec::new();
            for set in BenchmarkSet::all(c)? {
                let items = BenchmarkSet::items(c, set.id)?;
                let mut missing = 0;
                for item in &items {
                    missing += crate::db::models::benchmark::missing_files(&BenchmarkItem::files(c, item.id)?);
                }
                let runs = EvaluationRun::of_set(c, set.id)?.len();
                rows.push(SetRow { cases: items.len(), missing_files: missing, runs, set });
            }
            Ok((rows, benchmark::candidates(c)?))
        })
        .await?;
    Ok(ListPage { page: viewer.page(), sets, candidates, error })
}

pub async fn list(state: web::Data<AppState>, Staff(viewer): Staff) -> AppResult<ListPage> {
    list_page(&state, &viewer, None).await
}

pub async fn create(
    state: web::Data<AppState>,
    Staff(viewer): Staff,
    form: web::Form<Vec<(String, String)>>,
) -> AppResult<HttpResponse> {
    let fields = form.into_inner();
    let field = |name: &str| fields.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()).unwrap_or_default();
    let assays: Vec<i32> = fields.iter().filter(|(k, _)| k == "assay").filter_map(|(_, v)| v.parse().ok()).collect();
    let new = NewSet {
        name: field("name"),
        description: field("description"),
        out_of_scope: matches!(field("out_of_scope").as_str(), "on" | "true" | "1"),
        created_by: Some(viewer.person.id),
    };
    match benchmark::freeze_from_assays(&state.ctx, new, assays).await {
        Ok(set) => {
            flash(&viewer.session, "success", format!("Benchmark set “{}” frozen.", set.name));
            Ok(see_other(&format!("/admin/benchmarks/{}", set.id)))
        }
        Err(SetError::Invalid(message)) => super::unprocessable(list_page(&state, &viewer, Some(message)).await?),
        Err(err) => Err(refused(err)),
    }
}

/// A case of a set with its files (withdrawn ones marked) and how many gold answers it has.
pub struct CaseView {
    pub item: BenchmarkItem,
    pub files: Vec<FileAsset>,
    pub gold: usize,
}

impl CaseView {
    pub fn missing(&self) -> usize {
        crate::db::models::benchmark::missing_files(&self.files)
    }
}

/// A run as listed on its set's page.
pub struct RunRow {
    pub run: EvaluationRun,
    pub overall: Summary,
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/benchmark_set.html")]
pub struct SetPage {
    page: Page,
    set: BenchmarkSet,
    cases: Vec<CaseView>,
    runs: Vec<RunRow>,
    prompt_versions: Vec<&'static str>,
    default_base_url: String,
    default_model: String,
}

impl Figures for SetPage {}

impl SetPage {
    fn missing_files(&self) -> usize {
        self.cases.iter().map(CaseView::missing).sum()
    }
    fn withdrawn_cases(&self) -> usize {
        self.cases.iter().filter(|c| c.item.withdrawn_at.is_some()).count()
    }
}

pub async fn show(state: web::Data<AppState>, Staff(viewer): Staff, path: web::Path<i32>) -> AppResult<SetPage> {
    let set_id = path.into_inner();
    let (set, cases, runs) = state
        .db(move |c| {
            let set = BenchmarkSet::find(c, set_id)?;
            let mut cases = Vec::new();
            for item in BenchmarkSet::items(c, set_id)? {
                let files = BenchmarkItem::files(c, item.id)?;
                let gold = BenchmarkItem::gold(c, item.id)?.len();
                cases.push(CaseView { item, files, gold });
            }
            let mut runs = Vec::new();
            for run in EvaluationRun::of_set(c, set_id)? {
                let answers = crate::db::models::EvaluationAnswer::of_run(c, run.id)?;
                runs.push(RunRow { overall: Summary::of(&answers), run });
            }
            Ok((set, cases, runs))
        })
        .await?;
    let llm = &state.config().llm;
    Ok(SetPage {
        page: viewer.page(),
        set,
        cases,
        runs,
        prompt_versions: benchmark::PROMPT_VERSIONS.to_vec(),
        default_base_url: llm.base_url.clone().unwrap_or_default(),
        default_model: if llm.base_url.is_some() { llm.model.clone() } else { String::new() },
    })
}

pub async fn delete(state: web::Data<AppState>, Staff(viewer): Staff, path: web::Path<i32>) -> AppResult<HttpResponse> {
    let set_id = path.into_inner();
    let set = state
        .db(move |c| {
            let set = BenchmarkSet::find(c, set_id)?;
            let subjects: Vec<String> =
                EvaluationRun::of_set(c, set_id)?.iter().map(|r| benchmark::run_subject(r.id)).collect();
            crate::jobs::delete_about(c, &subjects)?;
            BenchmarkSet::delete(c, set_id)?;
            Ok(set)
        })
        .await?;
    flash(&viewer.session, "info", format!("Benchmark set “{}” deleted with its runs.", set.name));
    Ok(see_other("/admin/benchmarks"))
}

#[derive(Deserialize)]
pub struct RunForm {
    #[serde(default)]
    label: String,
    #[serde(default)]
    base_url: String,
    #[serde(default)]
    model: String,
    #[serde(default)]
    prompt_version: String,
    #[serde(default)]
    concurrency: String,
    #[serde(default)]
    price_prompt: String,
    #[serde(default)]
    price_completion: String,
}

fn optional_number(raw: &str) -> Result<Option<f64>, AppError> {
    match raw.trim() {
        "" => Ok(None),
        raw => raw.parse().map(Some).map_err(|_| {
            AppError::Rejected(StatusCode::UNPROCESSABLE_ENTITY, "Prices must be numbers, e.g. 0.15.".into())
        }),
    }
}

pub async fn start_run(
    state: web::Data<AppState>,
    Staff(viewer): Staff,
    path: web::Path<i32>,
    form: web::Form<RunForm>,
) -> AppResult<HttpResponse> {
    let set_id = path.into_inner();
    state.db(move |c| Ok(BenchmarkSet::find(c, set_id)?)).await?;
    let form = form.into_inner();
    let request = RunRequest {
        label: form.label,
        base_url: form.base_url,
        model: form.model,
        prompt_version: form.prompt_version,
        concurrency: form.concurrency.trim().parse().unwrap_or(4),
        price_prompt_per_mtok: optional_number(&form.price_prompt)?,
        price_completion_per_mtok: optional_number(&form.price_completion)?,
    };
    let run = benchmark::start(&state.ctx, set_id, request, Some(viewer.person.id)).await.map_err(refused)?;
    flash(&viewer.session, "success", format!("Run “{}” started.", run.label));
    Ok(see_other(&format!("/admin/benchmarks/{set_id}/runs/{}", run.id)))
}

async fn report(state: &AppState, set_id: i32, run_id: i32) -> AppResult<RunReport> {
    let report = state.db(move |c| Ok(benchmark::run_report(c, run_id)?)).await?;
    if report.set.id != set_id {
        return Err(AppError::NotFound);
    }
    Ok(report)
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/evaluation_run.html")]
pub struct RunPage {
    page: Page,
    report: RunReport,
}

impl Figures for RunPage {}

impl RunPage {
    fn running(&self) -> bool {
        matches!(self.report.run.status.as_str(), "scheduled" | "busy")
    }
}

pub async fn run_page(
    state: web::Data<AppState>,
    Staff(viewer): Staff,
    path: web::Path<(i32, i32)>,
) -> AppResult<RunPage> {
    let (set_id, run_id) = path.into_inner();
    Ok(RunPage { page: viewer.page(), report: report(&state, set_id, run_id).await? })
}

fn download(name: String, content_type: &str, body: String) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(content_type)
        .insert_header((header::CONTENT_DISPOSITION, crate::filenames::content_disposition(&name)))
        .body(body)
}

pub async fn results_csv(
    state: web::Data<AppState>,
    _staff: Staff,
    path: web::Path<(i32, i32)>,
) -> AppResult<HttpResponse> {
    let (set_id, run_id) = path.into_inner();
    let report = report(&state, set_id, run_id).await?;
    Ok(download(format!("evaluation-run-{run_id}.csv"), "text/csv; charset=utf-8", benchmark::csv(&report)))
}

pub async fn results_json(
    state: web::Data<AppState>,
    _staff: Staff,
    path: web::Path<(i32, i32)>,
) -> AppResult<HttpResponse> {
    let (set_id, run_id) = path.into_inner();
    let report = report(&state, set_id, run_id).await?;
    let body = serde_json::to_string_pretty(&benchmark::json(&report)).map_err(anyhow::Error::from)?;
    Ok(download(format!("evaluation-run-{run_id}.json"), "application/json", body))
}

/// The `run` parameters of a comparison, in order, each once.
fn chosen_runs(query: &[(String, String)]) -> Result<Vec<i32>, AppError> {
    let mut runs: Vec<i32> = Vec::new();
    for (key, value) in query.iter().filter(|(k, _)| k == "run") {
        let id = value.parse().map_err(|_| AppError::BadRequest(format!("{key}={value} is not a run.")))?;
        if !runs.contains(&id) {
            runs.push(id);
        }
    }
    if runs.is_empty() || runs.len() > 6 {
        return Err(AppError::Rejected(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Choose between one and six runs to compare.".into(),
        ));
    }
    Ok(runs)
}

async fn comparison(state: &AppState, set_id: i32, runs: Vec<i32>) -> AppResult<Comparison> {
    state.db(move |c| Ok(benchmark::compare(c, set_id, &runs)?)).await
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/benchmark_compare.html")]
pub struct ComparePage {
    page: Page,
    comparison: Comparison,
    query: String,
    charts: Vec<String>,
}

impl Figures for ComparePage {}

/// The metrics shown side by side: (label, how to read it from a summary, shown as a share).
type Metric = (&'static str, fn(&Summary) -> Option<f64>, bool);

const METRICS: [Metric; 9] = [
    ("Completeness", |s| s.completeness, true),
    ("Abstention agreement", |s| s.abstention_agreement, true),
    ("Specificity", |s| s.specificity, true),
    ("Token F1", |s| s.token_f1, false),
    ("ROUGE-L", |s| s.rouge_l, false),
    ("Cosine", |s| s.cosine, false),
    ("Cosine ≥ 0.6", |s| s.cosine_at_0_6, true),
    ("Citation verification", |s| s.citation_verification, true),
    ("Cited-file agreement", |s| s.cited_file_agreement, false),
];

impl ComparePage {
    fn metrics(&self) -> Vec<(&'static str, Vec<String>)> {
        METRICS
            .iter()
            .map(|(label, read, share)| {
                let values = self
                    .comparison
                    .reports
                    .iter()
                    .map(|r| if *share { self.pct(&read(&r.overall)) } else { self.score(&read(&r.overall)) })
                    .collect();
                (*label, values)
            })
            .collect()
    }

    /// Per question: (item, question id, case, section, question, token F1 of each run).
    fn questions(&self) -> Vec<(i32, i32, String, String, String, Vec<String>)> {
        let Some(first) = self.comparison.reports.first() else { return Vec::new() };
        first
            .rows
            .iter()
            .map(|row| {
                let scores = self
                    .comparison
                    .reports
                    .iter()
                    .map(|r| {
                        let same = r
                            .rows
                            .iter()
                            .find(|x| x.item_id == row.item_id && x.place.question_id == row.place.question_id);
                        match same {
                            Some(x) if x.answer.failed => "failed".to_owned(),
                            Some(x) if x.answer.abstained => "abstained".to_owned(),
                            Some(x) => self.score(&x.answer.token_f1),
                            None => "–".to_owned(),
                        }
                    })
                    .collect();
                (
                    row.item_id,
                    row.place.question_id,
                    row.case.clone(),
                    row.place.subsection.clone(),
                    row.place.question.clone(),
                    scores,
                )
            })
            .collect()
    }
}

pub async fn compare(
    state: web::Data<AppState>,
    Staff(viewer): Staff,
    path: web::Path<i32>,
    query: web::Query<Vec<(String, String)>>,
) -> AppResult<ComparePage> {
    let set_id = path.into_inner();
    let runs = chosen_runs(&query)?;
    let query = runs.iter().map(|r| format!("run={r}")).collect::<Vec<_>>().join("&");
    let comparison = comparison(&state, set_id, runs).await?;
    let labels: Vec<String> = comparison.reports.iter().map(|r| format!("#{} {}", r.run.id, r.run.label)).collect();
    let charts = [("Completeness by section", METRICS[0].1), ("Token F1 by section", METRICS[3].1)]
        .iter()
        .map(|(title, read)| {
            let rows: Vec<(String, Vec<Option<f64>>)> = comparison
                .sections
                .iter()
                .map(|section| {
                    (section.clone(), comparison.section(section).iter().map(|s| s.and_then(read)).collect())
                })
                .collect();
            benchmark::section_bars(title, &labels, &rows)
        })
        .collect();
    Ok(ComparePage { page: viewer.page(), comparison, query, charts })
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/benchmark_question.html")]
pub struct QuestionPage {
    page: Page,
    set_id: i32,
    query: String,
    comparison: Comparison,
    item_id: i32,
    question_id: i32,
}

impl Figures for QuestionPage {}

impl QuestionPage {
    fn detail(&self) -> Option<QuestionAcrossRuns<'_>> {
        self.comparison.question(self.item_id, self.question_id)
    }
}

pub async fn question(
    state: web::Data<AppState>,
    Staff(viewer): Staff,
    path: web::Path<(i32, i32, i32)>,
    query: web::Query<Vec<(String, String)>>,
) -> AppResult<QuestionPage> {
    let (set_id, item_id, question_id) = path.into_inner();
    let runs = chosen_runs(&query)?;
    let query = runs.iter().map(|r| format!("run={r}")).collect::<Vec<_>>().join("&");
    let comparison = comparison(&state, set_id, runs).await?;
    if comparison.question(item_id, question_id).is_none() {
        return Err(AppError::NotFound);
    }
    Ok(QuestionPage { page: viewer.page(), set_id, query, comparison, item_id, question_id })
}
