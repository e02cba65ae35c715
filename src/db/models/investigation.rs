//! Investigations: the top of a person's Investigation → Study → Assay tree.

use diesel::prelude::*;

use crate::db::schema::investigations;
use crate::db::{DbConn, now};

use super::Person;

#[derive(Clone, Debug, Queryable, Selectable, Identifiable, PartialEq)]
#[diesel(table_name = investigations)]
pub struct Investigation {
    pub id: i32,
    pub owner_id: i32,
    pub title: String,
    pub description: String,
    pub created_at: chrono::NaiveDateTime,
}

/// What someone wants to do with an investigation and everything in it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Read: its owner, and staff (who see everyone's work).
    View,
    /// Edit, delete, upload, draft, withdraw: its owner only — staff included, nobody changes
    /// someone else's work (the one exception is an explicit, audited admin action).
    Change,
}

impl Investigation {
    /// May `person` do this with the investigation (found with [`Self::find_for`])?
    pub fn allows(&self, person: &Person, access: Access) -> bool {
        self.owner_id == person.id || (access == Access::View && person.sees_everything())
    }

    /// The investigation if `viewer` may see it. Someone else's is reported as not found,
    /// so that ids of other people's work are not confirmed to exist.
    pub fn find_for(conn: &mut DbConn, id: i32, viewer: &Person) -> QueryResult<Investigation> {
        let inv: Investigation = investigations::table.find(id).select(Self::as_select()).first(conn)?;
        if inv.owner_id == viewer.id || viewer.sees_everything() {
            Ok(inv)
        } else {
            Err(diesel::result::Error::NotFound)
        }
    }

    /// The viewer's own investigations, newest first.
    pub fn owned_by(conn: &mut DbConn, owner: &Person) -> QueryResult<Vec<Investigation>> {
        investigations::table
            .filter(investigations::owner_id.eq(owner.id))
            .order(investigations::id.desc())
            .select(Self::as_select())
            .load(conn)
    }

    pub fn create(conn: &mut DbConn, owner: &Person, title: &str, description: &str) -> QueryResult<Investigation> {
        diesel::insert_into(investigations::table)
            .values((
                investigations::owner_id.eq(owner.id),
                investigations::title.eq(title),
                investigations::description.eq(description),
                investigations::created_at.eq(now()),
            ))
            .get_result(conn)
    }

    pub fn update(conn: &mut DbConn, id: i32, title: &str, description: &str) -> QueryResult<usize> {
        diesel::update(investigations::table.find(id))
            .set((investigations::title.eq(title), investigations::description.eq(description)))
            .execute(conn)
    }

    /// Deletes the row, its studies, assays and answers (cascade); see `crate::deletion`.
    pub fn delete(conn: &mut DbConn, id: i32) -> QueryResult<usize> {
        diesel::delete(investigations::table.find(id)).execute(conn)
    }
}
