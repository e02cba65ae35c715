//! Staff-only pages under `/admin/`. Every handler takes `Staff`, which answers 403 to
//! anyone else.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use askama_web::WebTemplate;
use diesel::prelude::*;
use serde::Deserialize;

use crate::admin::{self, AssayRow, FileRow, Paged};
use crate::answers::{self, AnswerSheet};
use crate::db::models::{Assay, FileDownloadLog};
use crate::db::schema::{assays, file_assets, persons};
use crate::fileops;
use crate::jobs::{self, Job};

use super::AppState;
use super::error::{AppError, AppResult};
use super::page::Page;
use super::viewer::Staff;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/admin/", web::get().to(index))
        .route("/admin", web::get().to(|| async { super::see_other("/admin/") }))
        .route("/admin/assays", web::get().to(assay_list))
        .route("/admin/assays/{id}", web::get().to(assay_page))
        .route("/admin/assays/{id}/files.zip", web::post().to(download_zip))
        .route("/admin/assays/{id}/files.zip", web::get().to(download_page))
        .route("/admin/assays/{id}/withdraw-consent", web::post().to(withdraw_for_owner))
        .route("/admin/files", web::get().to(files))
        .route("/admin/downloads", web::get().to(downloads))
        .route("/admin/storage", web::get().to(storage));
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/index.html")]
pub struct AdminIndex {
    page: Page,
    people: i64,
    assays: i64,
    files: i64,
    failed_jobs: Vec<Job>,
}

impl AdminIndex {
    fn job_assay(&self, job: &Job) -> Option<i32> {
        crate::drafting::assay_of(job.subject.as_deref())
    }
}

pub async fn index(state: web::Data<AppState>, Staff(viewer): Staff) -> AppResult<AdminIndex> {
    let (people, assays, files, failed_jobs) = state
        .db(|conn| {
            Ok((
                persons::table.count().get_result(conn)?,
                assays::table.count().get_result(conn)?,
                file_assets::table.count().get_result(conn)?,
                jobs::failed(conn)?,
            ))
        })
        .await?;
    Ok(AdminIndex { page: viewer.page(), people, assays, files, failed_jobs })
}

#[derive(Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    pub q: String,
    pub page: Option<i64>,
}

/// Links to the neighbouring pages of a list, keeping its search.
pub struct Pager {
    pub page: i64,
    pub previous: Option<String>,
    pub next: Option<String>,
}

impl Pager {
    pub fn new<T>(path: &str, q: &str, list: &Paged<T>) -> Self {
        let link = |page: i64| {
            let page = page.to_string();
            let params: &[(&str, &str)] = if q.is_empty() { &[("page", &page)] } else { &[("page", &page), ("q", q)] };
            format!("{path}?{}", serde_urlencoded::to_string(params).unwrap_or_default())
        };
        Self {
            page: list.page,
            previous: (list.page > 1).then(|| link(list.page - 1)),
            next: list.has_next.then(|| link(list.page + 1)),
        }
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/assays.html")]
pub struct AssayListPage {
    page: Page,
    q: String,
    rows: Vec<AssayRow>,
    pager: Pager,
}

pub async fn assay_list(
    state: web::Data<AppState>,
    Staff(viewer): Staff,
    query: web::Query<ListQuery>,
) -> AppResult<AssayListPage> {
    let ListQuery { q, page } = query.into_inner();
    let (search, page) = (q.clone(), admin::page_number(page));
    let list = state.db(move |c| Ok(admin::assay_list(c, &search, page)?)).await?;
    let pager = Pager::new("/admin/assays", &q, &list);
    Ok(AssayListPage { page: viewer.page(), q, rows: list.rows, pager })
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/assay.html")]
pub struct AdminAssayPage {
    page: Page,
    assay: Assay,
    sheet: AnswerSheet,
    files: Vec<FileRow>,
    available: usize,
}

pub async fn assay_page(
    state: web::Data<AppState>,
    Staff(viewer): Staff,
    path: web::Path<i32>,
) -> AppResult<AdminAssayPage> {
    let id = path.into_inner();
    let (assay, sheet, files) = state
        .db(move |c| {
            let assay = Assay::find(c, id)?;
            let sheet = answers::load(c, &assay)?;
            Ok((assay, sheet, admin::assay_files(c, id)?))
        })
        .await?;
    let available = files.iter().filter(|f| f.asset.is_available()).count();
    Ok(AdminAssayPage { page: viewer.page(), assay, sheet, files, available })
}

/// The streamed ZIP of the assay's available files. A POST (so the CSRF check applies:
/// another site cannot make a staff browser start downloads and write audit rows); each file
/// gets its download-log row once its entry has been streamed.
pub async fn download_zip(
    state: web::Data<AppState>,
    Staff(viewer): Staff,
    path: web::Path<i32>,
    req: HttpRequest,
) -> AppResult<HttpResponse> {
    let id = path.into_inner();
    let plan = state.db(move |c| Ok(fileops::plan_assay_zip(c, id)?)).await?;
    if plan.is_empty() {
        return Err(AppError::Rejected(
            actix_web::http::StatusCode::NOT_FOUND,
            "This assay has no stored files to download (none were shared, or consent was withdrawn).".into(),
        ));
    }
    let ip = super::client_ip(&req, &state.ctx.config);
    tracing::info!(target: "toxtemp::audit", event = "assay_zip_download", assay = id, files = plan.entries.len(), by = %viewer.person.email, %ip, "assay files download started");
    let log = admin::download_logger(state.ctx.pool.clone(), viewer.person.id, viewer.person.email.clone(), ip);
    let name = plan.file_name();
    let stream = fileops::stream_assay_zip(plan, state.ctx.store.clone(), log);
    Ok(HttpResponse::Ok()
        .content_type("application/zip")
        .insert_header((header::CONTENT_DISPOSITION, crate::filenames::content_disposition(&name)))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .streaming(stream))
}

/// Old links to the ZIP land on the page with the download button.
async fn download_page(_staff: Staff, path: web::Path<i32>) -> HttpResponse {
    super::see_other(&format!("/admin/assays/{}", path.into_inner()))
}

#[derive(Deserialize)]
pub struct WithdrawForm {
    #[serde(default)]
    reason: String,
}

/// The one thing staff change in someone else's work: withdrawing the consent to keep an
/// assay's documents when its owner asks for it (by e-mail, say), with the reason recorded on
/// every file's audit event.
pub async fn withdraw_for_owner(
    state: web::Data<AppState>,
    Staff(viewer): Staff,
    path: web::Path<i32>,
    form: web::Form<WithdrawForm>,
) -> AppResult<HttpResponse> {
    let id = path.into_inner();
    let reason = form.reason.trim().to_owned();
    if reason.is_empty() || reason.chars().count() > 500 {
        let message = "Please give the reason (at most 500 characters), e.g. “owner asked by e-mail on …”.".into();
        return Err(AppError::Rejected(actix_web::http::StatusCode::UNPROCESSABLE_ENTITY, message));
    }
    let owner = state.db(move |c| Ok(Assay::owner(c, id)?)).await?;
    let actor = format!("staff {} on behalf of {}; reason: {reason}", viewer.person.email, owner.email);
    let ctx = &state.ctx;
    let done = fileops::withdraw_consent(&ctx.pool, ctx.store.as_ref(), id, &actor).await?;
    let message = format!("Consent withdrawn on behalf of {}: {} kept file(s) deleted.", owner.email, done.deleted);
    crate::web::page::flash(&viewer.session, if done.failed > 0 { "warning" } else { "success" }, message);
    Ok(super::see_other(&format!("/admin/assays/{id}")))
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/files.html")]
pub struct FilesPage {
    page: Page,
    files: Vec<FileRow>,
    pager: Pager,
}

pub async fn files(
    state: web::Data<AppState>,
    Staff(viewer): Staff,
    query: web::Query<ListQuery>,
) -> AppResult<FilesPage> {
    let page = admin::page_number(query.page);
    let list = state.db(move |c| Ok(admin::all_files(c, page)?)).await?;
    let pager = Pager::new("/admin/files", "", &list);
    Ok(FilesPage { page: viewer.page(), files: list.rows, pager })
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/downloads.html")]
pub struct DownloadsPage {
    page: Page,
    logs: Vec<FileDownloadLog>,
    pager: Pager,
}

pub async fn downloads(
    state: web::Data<AppState>,
    Staff(viewer): Staff,
    query: web::Query<ListQuery>,
) -> AppResult<DownloadsPage> {
    let page = admin::page_number(query.page);
    let list = state.db(move |c| Ok(admin::downloads(c, page)?)).await?;
    let pager = Pager::new("/admin/downloads", "", &list);
    Ok(DownloadsPage { page: viewer.page(), logs: list.rows, pager })
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/storage.html")]
pub struct StoragePage {
    page: Page,
    check: Option<fileops::StorageCheck>,
}

impl StoragePage {
    fn summary(&self, field: &str) -> String {
        self.check.as_ref().map(|c| c.summary()[field].to_string()).unwrap_or_default()
    }

    /// (kind, key, name, detail, repaired) of each finding of the last check.
    fn findings(&self) -> Vec<(String, String, String, String, bool)> {
        let text = |v: &serde_json::Value| v.as_str().unwrap_or("").to_owned();
        self.check
            .as_ref()
            .map(|c| {
                c.findings()
                    .iter()
                    .map(|f| {
                        let kind = text(&f["kind"]).replace('_', " ");
                        (
                            kind,
                            text(&f["key"]),
                            text(&f["name"]),
                            text(&f["detail"]),
                            f["repaired"].as_bool().unwrap_or(false),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// The last `verify-storage` report.
pub async fn storage(state: web::Data<AppState>, Staff(viewer): Staff) -> AppResult<StoragePage> {
    let check = state.db(|c| Ok(fileops::StorageCheck::last(c)?)).await?;
    Ok(StoragePage { page: viewer.page(), check })
}
