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
    /// Read, export: its owner, members of a workspace it is shared into, and staff (who see
    /// everyone's work).
    View,
    /// Upload documents, draft, regenerate, edit and accept answers: its owner and the members
    /// of a workspace it is shared into — staff included only as such members; nobody else
    /// changes someone else's work (the one exception is an explicit, audited admin action).
    Contribute,
    /// Edit or delete the investigation, its studies and assays; share or unshare it; withdraw
    /// the consent of a whole assay: its owner only.
    Own,
}

/// How a person stands to an investigation; the first that applies wins.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Standing {
    Owner,
    /// A member (of any role) of a workspace the investigation is shared into.
    Member,
    /// Staff, who see everything and change nothing of others' work.
    Staff,
    Stranger,
}

impl Standing {
    pub fn allows(self, access: Access) -> bool {
        match self {
            Standing::Owner => true,
            Standing::Member => access != Access::Own,
            Standing::Staff => access == Access::View,
            Standing::Stranger => false,
        }
    }
}

/// Why an access decision said no.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Denied {
    /// Not theirs, not shared with them: its existence is not confirmed (404).
    Unseen,
    /// They see it but may not do this (403).
    NotAllowed,
}

impl Investigation {
    /// How `person` stands to this investigation (one query for a workspace membership).
    pub fn standing_of(&self, conn: &mut DbConn, person: &Person) -> QueryResult<Standing> {
        Ok(if self.owner_id == person.id {
            Standing::Owner
        } else if super::workspace::is_shared_with(conn, self.id, person.id)? {
            Standing::Member
        } else if person.sees_everything() {
            Standing::Staff
        } else {
            Standing::Stranger
        })
    }

    /// The one access decision, made with one [`Self::standing_of`]: `Ok` when `person` may do
    /// `access` with the investigation, else whether they see it at all.
    pub fn decide(&self, conn: &mut DbConn, person: &Person, access: Access) -> QueryResult<Result<(), Denied>> {
        Ok(match self.standing_of(conn, person)? {
            Standing::Stranger => Err(Denied::Unseen),
            standing if standing.allows(access) => Ok(()),
            _ => Err(Denied::NotAllowed),
        })
    }

    /// The investigation if `viewer` may see it. One nobody shared with the viewer is
    /// reported as not found, so that ids of other people's work are not confirmed to exist.
    pub fn find_for(conn: &mut DbConn, id: i32, viewer: &Person) -> QueryResult<Investigation> {
        let inv = Self::find(conn, id)?;
        if inv.standing_of(conn, viewer)? == Standing::Stranger {
            Err(diesel::result::Error::NotFound)
        } else {
            Ok(inv)
        }
    }

    /// The investigation, whoever asks (callers decide access with [`Self::standing_of`]).
    pub fn find(conn: &mut DbConn, id: i32) -> QueryResult<Investigation> {
        investigations::table.find(id).select(Self::as_select()).first(conn)
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
