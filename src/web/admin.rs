//! Staff-only pages under `/admin/`. Every handler takes `Staff`, which answers 403 to
//! anyone else.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use askama_web::WebTemplate;
use diesel::prelude::*;
use serde::Deserialize;

use crate::admin::{self, AssayRow, FileDetail, FileRow, Order, Paged};
use crate::answers::{self, AnswerSheet};
use crate::db::models::{Assay, FileAssetId, FileDownloadLog};
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
        .route("/admin/files/{id}", web::get().to(file_page))
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
    pub sort: Option<String>,
}

/// What a list page was asked for (search, order) and the links that keep it: to the
/// neighbouring pages and to the list sorted by another column.
pub struct ListView {
    path: &'static str,
    pub q: String,
    order: Order,
    default: Order,
}

impl ListView {
    pub fn new(path: &'static str, query: &ListQuery, keys: &[&'static str], default: Order) -> Self {
        let order = Order::parse(query.sort.as_deref(), keys, default);
        Self { path, q: query.q.trim().to_owned(), order, default }
    }

    fn url(&self, page: Option<i64>, order: Order) -> String {
        let page = page.map(|p| p.to_string());
        let sort = (order != self.default).then(|| order.param());
        let params: Vec<(&str, &str)> =
            [("page", page.as_deref()), ("q", Some(self.q.as_str())), ("sort", sort.as_deref())]
                .into_iter()
                .filter_map(|(name, value)| value.filter(|v| !v.is_empty()).map(|v| (name, v)))
                .collect();
        match params.is_empty() {
            true => self.path.to_owned(),
            false => format!("{}?{}", self.path, serde_urlencoded::to_string(params).unwrap_or_default()),
        }
    }

    /// The list sorted by `key`: the other way round when it already is, else ascending
    /// (the default column: its default direction), from the first page.
    pub fn sort_url(&self, key: &'static str) -> String {
        let descending = match (self.order.key == key, key == self.default.key) {
            (true, _) => !self.order.descending,
            (false, true) => self.default.descending,
            (false, false) => false,
        };
        self.url(None, Order { key, descending })
    }

    pub fn aria_sort(&self, key: &str) -> &'static str {
        match (self.order.key == key, self.order.descending) {
            (false, _) => "none",
            (true, false) => "ascending",
            (true, true) => "descending",
        }
    }

    pub fn arrow(&self, key: &str) -> &'static str {
        match self.aria_sort(key) {
            "ascending" => "▲",
            "descending" => "▼",
            _ => "",
        }
    }

    /// The header cell of a sortable column: a link that sorts by it, and its direction.
    pub fn th(&self, key: &'static str, label: &str) -> String {
        format!(
            "<th aria-sort=\"{}\" data-sort=\"{key}\"><a class=\"sort-link\" href=\"{}\">{label}</a> {}</th>",
            self.aria_sort(key),
            self.sort_url(key).replace('&', "&amp;"),
            self.arrow(key)
        )
    }

    /// The order asked for (or the list's default).
    pub fn order(&self) -> Order {
        self.order
    }

    pub fn pager<T>(&self, list: &Paged<T>) -> Pager {
        Pager {
            page: list.page,
            previous: (list.page > 1).then(|| self.url(Some(list.page - 1), self.order)),
            next: list.has_next.then(|| self.url(Some(list.page + 1), self.order)),
        }
    }
}

/// Links to the neighbouring pages of a list, keeping its search and order.
pub struct Pager {
    pub page: i64,
    pub previous: Option<String>,
    pub next: Option<String>,
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/assays.html")]
pub struct AssayListPage {
    page: Page,
    list: ListView,
    rows: Vec<AssayRow>,
    pager: Pager,
}

pub async fn assay_list(
    state: web::Data<AppState>,
    Staff(viewer): Staff,
    query: web::Query<ListQuery>,
) -> AppResult<AssayListPage> {
    let list = ListView::new("/admin/assays", &query, admin::ASSAY_SORTS, admin::ASSAY_ORDER);
    let (search, order, page) = (list.q.clone(), list.order, admin::page_number(query.page));
    let rows = state.db(move |c| Ok(admin::assay_list(c, &search, order, page)?)).await?;
    let pager = list.pager(&rows);
    Ok(AssayListPage { page: viewer.page(), list, rows: rows.rows, pager })
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/assay.html")]
pub struct AdminAssayPage {
    page: Page,
    assay: Assay,
    sheet: AnswerSheet,
    files: Vec<FileRow>,
    available: usize,
    /// The drafting runs with their tokens and estimated costs.
    runs: crate::drafting::runs::RunsSummary,
}

impl AdminAssayPage {
    /// The files of one assay are few: their table is not sorted by the reader.
    fn th(&self, _key: &'static str, label: &str) -> String {
        format!("<th>{label}</th>")
    }
}

pub async fn assay_page(
    state: web::Data<AppState>,
    Staff(viewer): Staff,
    path: web::Path<i32>,
) -> AppResult<AdminAssayPage> {
    let id = path.into_inner();
    let (assay, sheet, files, runs) = state
        .db(move |c| {
            let assay = Assay::find(c, id)?;
            let sheet = answers::load(c, &assay)?;
            Ok((assay, sheet, admin::assay_files(c, id)?, crate::drafting::runs::summary(c, id)?))
        })
        .await?;
    let available = files.iter().filter(|f| f.asset.is_available()).count();
    Ok(AdminAssayPage { page: viewer.page(), assay, sheet, files, available, runs })
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
    list: ListView,
    files: Vec<FileRow>,
    pager: Pager,
}

impl FilesPage {
    fn th(&self, key: &'static str, label: &str) -> String {
        self.list.th(key, label)
    }
}

pub async fn files(
    state: web::Data<AppState>,
    Staff(viewer): Staff,
    query: web::Query<ListQuery>,
) -> AppResult<FilesPage> {
    let list = ListView::new("/admin/files", &query, admin::FILE_SORTS, admin::FILE_ORDER);
    let (search, order, page) = (list.q.clone(), list.order, admin::page_number(query.page));
    let rows = state.db(move |c| Ok(admin::all_files(c, &search, order, page)?)).await?;
    let pager = list.pager(&rows);
    Ok(FilesPage { page: viewer.page(), list, files: rows.rows, pager })
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/file.html")]
pub struct FilePage {
    page: Page,
    detail: FileDetail,
}

/// One stored file: everything about it on one page.
pub async fn file_page(
    state: web::Data<AppState>,
    Staff(viewer): Staff,
    path: web::Path<String>,
) -> AppResult<FilePage> {
    let id = uuid::Uuid::parse_str(&path.into_inner()).map_err(|_| AppError::NotFound)?;
    let id = FileAssetId::from(id);
    let detail = state.db(move |c| Ok(admin::file_detail(c, &id)?)).await?;
    Ok(FilePage { page: viewer.page(), detail })
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/downloads.html")]
pub struct DownloadsPage {
    page: Page,
    list: ListView,
    logs: Vec<FileDownloadLog>,
    pager: Pager,
}

pub async fn downloads(
    state: web::Data<AppState>,
    Staff(viewer): Staff,
    query: web::Query<ListQuery>,
) -> AppResult<DownloadsPage> {
    let list = ListView::new("/admin/downloads", &query, admin::DOWNLOAD_SORTS, admin::DOWNLOAD_ORDER);
    let (search, order, page) = (list.q.clone(), list.order, admin::page_number(query.page));
    let rows = state.db(move |c| Ok(admin::downloads(c, &search, order, page)?)).await?;
    let pager = list.pager(&rows);
    Ok(DownloadsPage { page: viewer.page(), list, logs: rows.rows, pager })
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
