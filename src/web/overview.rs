//! The overview: the person's assays with status and progress, the assays shared with them,
//! and their investigations.

use actix_web::web;
use askama::Template;
use askama_web::WebTemplate;

use crate::db::models::assay::AssaySummary;
use crate::db::models::{Assay, Investigation};

use super::AppState;
use super::error::AppResult;
use super::page::Page;
use super::viewer::Viewer;

#[derive(Template, WebTemplate)]
#[template(path = "overview.html")]
pub struct OverviewPage {
    page: Page,
    assays: Vec<AssaySummary>,
    /// Assays of investigations others shared with the viewer through a workspace.
    shared: Vec<AssaySummary>,
    investigations: Vec<Investigation>,
}

pub async fn show(state: web::Data<AppState>, viewer: Viewer) -> AppResult<OverviewPage> {
    let person = viewer.person.clone();
    let (assays, shared, investigations) = state
        .db(move |conn| {
            let assays = Assay::overview_for(conn, &person)?;
            let shared = Assay::shared_overview_for(conn, &person)?;
            Ok((assays, shared, Investigation::owned_by(conn, &person)?))
        })
        .await?;
    Ok(OverviewPage { page: viewer.page(), assays, shared, investigations })
}

#[derive(serde::Serialize)]
pub struct AssayStatusRow {
    id: i32,
    status: String,
    label: &'static str,
    accepted: i64,
    drafted: i64,
    total: i64,
    /// User-visible alerts of a failed run (internal text never reaches them).
    alerts: Vec<String>,
}

/// `GET /api/assays/status`: what the overview polls while assays are running.
pub async fn status(state: web::Data<AppState>, viewer: Viewer) -> AppResult<actix_web::HttpResponse> {
    let person = viewer.person.clone();
    let rows = state
        .db(move |conn| {
            let mut rows = Assay::overview_for(conn, &person)?;
            rows.extend(Assay::shared_overview_for(conn, &person)?);
            Ok(rows)
        })
        .await?;
    let rows: Vec<AssayStatusRow> = rows
        .into_iter()
        .map(|s| {
            let status = s.assay.status();
            AssayStatusRow {
                id: s.assay.id,
                status: status.as_str().to_owned(),
                label: status.label(),
                accepted: s.accepted,
                drafted: s.drafted,
                total: s.total,
                alerts: if status == crate::db::models::AssayStatus::Error { s.assay.alerts() } else { vec![] },
            }
        })
        .collect();
    Ok(actix_web::HttpResponse::Ok().insert_header(("Cache-Control", "no-store")).json(rows))
}
