//! Studies: groups of assays inside an investigation.

use diesel::prelude::*;

use crate::db::schema::{investigations, studies};
use crate::db::{DbConn, now};

use super::{Investigation, Person};

#[derive(Clone, Debug, Queryable, Selectable, Identifiable, PartialEq)]
#[diesel(table_name = studies)]
pub struct Study {
    pub id: i32,
    pub investigation_id: i32,
    pub title: String,
    pub description: String,
    pub created_at: chrono::NaiveDateTime,
}

impl Study {
    /// The study and its investigation if `viewer` may see them (else NotFound).
    pub fn find_for(conn: &mut DbConn, id: i32, viewer: &Person) -> QueryResult<(Study, Investigation)> {
        let study = Self::find(conn, id)?;
        let inv = Investigation::find_for(conn, study.investigation_id, viewer)?;
        Ok((study, inv))
    }

    /// The study, whoever asks (callers decide access on its investigation).
    pub fn find(conn: &mut DbConn, id: i32) -> QueryResult<Study> {
        studies::table.find(id).select(Self::as_select()).first(conn)
    }

    pub fn of_investigation(conn: &mut DbConn, investigation_id: i32) -> QueryResult<Vec<Study>> {
        studies::table
            .filter(studies::investigation_id.eq(investigation_id))
            .order(studies::id)
            .select(Self::as_select())
            .load(conn)
    }

    /// Every study the viewer owns, with its investigation's title (for pickers).
    pub fn owned_by(conn: &mut DbConn, owner: &Person) -> QueryResult<Vec<(Study, String)>> {
        studies::table
            .inner_join(investigations::table)
            .filter(investigations::owner_id.eq(owner.id))
            .order((investigations::id, studies::id))
            .select((Self::as_select(), investigations::title))
            .load(conn)
    }

    /// Every study of others' investigations shared with the viewer, with its investigation's
    /// title (for the StartingForm's list of assays).
    pub fn shared_with(conn: &mut DbConn, viewer: &Person) -> QueryResult<Vec<(Study, String)>> {
        let shared = super::workspace::shared_investigation_ids(conn, viewer.id)?;
        studies::table
            .inner_join(investigations::table)
            .filter(investigations::id.eq_any(shared))
            .order((investigations::id, studies::id))
            .select((Self::as_select(), investigations::title))
            .load(conn)
    }

    pub fn create(conn: &mut DbConn, investigation_id: i32, title: &str, description: &str) -> QueryResult<Study> {
        diesel::insert_into(studies::table)
            .values((
                studies::investigation_id.eq(investigation_id),
                studies::title.eq(title),
                studies::description.eq(description),
                studies::created_at.eq(now()),
            ))
            .get_result(conn)
    }

    pub fn update(conn: &mut DbConn, id: i32, title: &str, description: &str) -> QueryResult<usize> {
        diesel::update(studies::table.find(id))
            .set((studies::title.eq(title), studies::description.eq(description)))
            .execute(conn)
    }

    /// Deletes the row, its assays and their answers (cascade); see `crate::deletion`.
    pub fn delete(conn: &mut DbConn, id: i32) -> QueryResult<usize> {
        diesel::delete(studies::table.find(id)).execute(conn)
    }
}
