//! Staff-only pages under `/admin/`. Every handler takes `Staff`, which answers 403 to
//! anyone else.

use actix_web::web;
use askama::Template;
use askama_web::WebTemplate;
use diesel::prelude::*;

use crate::db::schema::{assays, file_assets, persons};

use super::AppState;
use super::error::AppResult;
use super::extract::Staff;
use super::page::Page;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/admin/", web::get().to(index))
        .route("/admin", web::get().to(|| async { super::see_other("/admin/") }));
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/index.html")]
pub struct AdminIndex {
    page: Page,
    people: i64,
    assays: i64,
    files: i64,
}

pub async fn index(state: web::Data<AppState>, Staff(viewer): Staff) -> AppResult<AdminIndex> {
    let (people, assays, files) = state
        .db(|conn| {
            Ok((
                persons::table.count().get_result(conn)?,
                assays::table.count().get_result(conn)?,
                file_assets::table.count().get_result(conn)?,
            ))
        })
        .await?;
    Ok(AdminIndex { page: viewer.page(), people, assays, files })
}
