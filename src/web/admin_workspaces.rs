//! `/admin/workspaces`: staff see every workspace with its members and shared investigations,
//! and the latest sharing changes (deleted workspaces' included). They change nothing here;
//! a workspace's own page is open to them read-only.

use actix_web::web;
use askama::Template;
use askama_web::WebTemplate;

use crate::db::models::workspace::{Member, Shared};
use crate::db::models::{Workspace, WorkspaceEvent};

use super::AppState;
use super::error::AppResult;
use super::page::Page;
use super::viewer::Staff;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/admin/workspaces", web::get().to(list));
}

/// The latest changes shown under the list.
const HISTORY: i64 = 100;

#[derive(Template, WebTemplate)]
#[template(path = "admin/workspaces.html")]
pub struct WorkspacesPage {
    page: Page,
    workspaces: Vec<(Workspace, Vec<Member>, Vec<Shared>)>,
    history: Vec<WorkspaceEvent>,
}

pub async fn list(state: web::Data<AppState>, Staff(viewer): Staff) -> AppResult<WorkspacesPage> {
    let (workspaces, history) = state
        .db(|c| {
            let mut rows = Vec::new();
            for ws in Workspace::all(c)? {
                let (members, shared) = (Workspace::members(c, ws.id)?, Workspace::shared(c, ws.id)?);
                rows.push((ws, members, shared));
            }
            Ok((rows, WorkspaceEvent::latest(c, HISTORY)?))
        })
        .await?;
    Ok(WorkspacesPage { page: viewer.page(), workspaces, history })
}
