//! The overview: the person's assays with status and progress, and their investigations.

use actix_web::web;
use askama::Template;
use askama_web::WebTemplate;

use crate::db::models::Investigation;
use crate::db::models::assay::AssaySummary;

use super::AppState;
use super::error::AppResult;
use super::extract::Viewer;
use super::page::Page;

#[derive(Template, WebTemplate)]
#[template(path = "overview.html")]
pub struct OverviewPage {
    page: Page,
    assays: Vec<AssaySummary>,
    investigations: Vec<Investigation>,
}

pub async fn show(state: web::Data<AppState>, viewer: Viewer) -> AppResult<OverviewPage> {
    let person = viewer.person.clone();
    let (assays, investigations) = state
        .db(move |conn| {
            let assays = crate::db::models::Assay::overview_for(conn, &person)?;
            Ok((assays, Investigation::owned_by(conn, &person)?))
        })
        .await?;
    Ok(OverviewPage { page: viewer.page(), assays, investigations })
}
