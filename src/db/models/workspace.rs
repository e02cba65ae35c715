//! Workspaces: groups of people that investigations are shared into. A member of any role
//! sees and contributes to every investigation shared into the workspace; exactly one member
//! is its owner (a partial unique index keeps it at most one, a transfer swaps the roles in one
//! transaction). Every sharing change is kept in `workspace_events`, with names copied so the
//! history outlives the people, investigations and the workspace itself.

use std::fmt;
use std::str::FromStr;

use diesel::prelude::*;

use crate::db::schema::{
    investigations, persons, workspace_events, workspace_investigations, workspace_members, workspaces,
};
use crate::db::{DbConn, now};

use super::{Investigation, Person};

/// A member's role in a workspace.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, diesel::AsExpression, diesel::FromSqlRow)]
#[diesel(sql_type = diesel::sql_types::Text)]
pub enum Role {
    Member,
    /// Adds and removes members, changes their roles, shares (their own) investigations.
    Admin,
    /// Everything an admin does, and deletes the workspace or hands it to another member.
    Owner,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Member => "member",
            Self::Admin => "admin",
            Self::Owner => "owner",
        }
    }

    /// Manages members and shares.
    pub fn manages(self) -> bool {
        self >= Self::Admin
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "member" => Ok(Self::Member),
            "admin" => Ok(Self::Admin),
            "owner" => Ok(Self::Owner),
            other => Err(format!("unknown workspace role {other:?}")),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

super::text_sql_type!(Role);

/// What changed in a workspace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    Created,
    MemberAdded,
    MemberRemoved,
    RoleChanged,
    MemberLeft,
    InvestigationShared,
    InvestigationUnshared,
    OwnershipTransferred,
    Deleted,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "workspace_created",
            Self::MemberAdded => "member_added",
            Self::MemberRemoved => "member_removed",
            Self::RoleChanged => "role_changed",
            Self::MemberLeft => "member_left",
            Self::InvestigationShared => "investigation_shared",
            Self::InvestigationUnshared => "investigation_unshared",
            Self::OwnershipTransferred => "ownership_transferred",
            Self::Deleted => "workspace_deleted",
        }
    }

    /// Words for the history table.
    pub fn label(self) -> &'static str {
        match self {
            Self::Created => "created the workspace",
            Self::MemberAdded => "added a member",
            Self::MemberRemoved => "removed a member",
            Self::RoleChanged => "changed a role",
            Self::MemberLeft => "left the workspace",
            Self::InvestigationShared => "shared an investigation",
            Self::InvestigationUnshared => "unshared an investigation",
            Self::OwnershipTransferred => "transferred ownership",
            Self::Deleted => "deleted the workspace",
        }
    }
}

#[derive(Clone, Debug, Queryable, Selectable, Identifiable, PartialEq)]
#[diesel(table_name = workspaces)]
pub struct Workspace {
    pub id: i32,
    pub name: String,
    pub created_at: chrono::NaiveDateTime,
}

/// A member with their role.
#[derive(Clone, Debug, PartialEq)]
pub struct Member {
    pub person: Person,
    pub role: Role,
}

/// An investigation shared into a workspace, with its owner.
#[derive(Clone, Debug, PartialEq)]
pub struct Shared {
    pub investigation: Investigation,
    pub owner: Person,
    pub shared_at: chrono::NaiveDateTime,
}

#[derive(Clone, Debug, Queryable, Selectable, Identifiable, PartialEq)]
#[diesel(table_name = workspace_events)]
pub struct WorkspaceEvent {
    pub id: i32,
    pub workspace_id: Option<i32>,
    pub workspace_name: String,
    pub kind: String,
    pub actor_id: Option<i32>,
    pub actor: String,
    pub subject_id: Option<i32>,
    pub subject: String,
    pub investigation_id: Option<i32>,
    pub investigation: String,
    pub detail: String,
    pub created_at: chrono::NaiveDateTime,
}

/// A change to record: who did what to whom (a person, an investigation, or the workspace).
pub struct NewEvent<'a> {
    pub workspace: &'a Workspace,
    pub kind: EventKind,
    pub actor: &'a Person,
    pub subject: Option<&'a Person>,
    pub investigation: Option<&'a Investigation>,
    pub detail: String,
}

impl WorkspaceEvent {
    pub fn record(conn: &mut DbConn, event: NewEvent<'_>) -> QueryResult<usize> {
        tracing::info!(target: "toxtemp::audit", event = event.kind.as_str(), workspace = event.workspace.id, actor = event.actor.id, subject = event.subject.map(|p| p.id), investigation = event.investigation.map(|i| i.id), "workspace changed");
        diesel::insert_into(workspace_events::table)
            .values((
                workspace_events::workspace_id.eq(Some(event.workspace.id)),
                workspace_events::workspace_name.eq(&event.workspace.name),
                workspace_events::kind.eq(event.kind.as_str()),
                workspace_events::actor_id.eq(Some(event.actor.id)),
                workspace_events::actor.eq(event.actor.email.as_str()),
                workspace_events::subject_id.eq(event.subject.map(|p| p.id)),
                workspace_events::subject.eq(event.subject.map(|p| p.email.as_str()).unwrap_or_default()),
                workspace_events::investigation_id.eq(event.investigation.map(|i| i.id)),
                workspace_events::investigation.eq(event.investigation.map(|i| i.title.as_str()).unwrap_or_default()),
                workspace_events::detail.eq(&event.detail),
                workspace_events::created_at.eq(now()),
            ))
            .execute(conn)
    }

    /// The history of a workspace, newest first.
    pub fn of_workspace(conn: &mut DbConn, workspace_id: i32) -> QueryResult<Vec<WorkspaceEvent>> {
        workspace_events::table
            .filter(workspace_events::workspace_id.eq(workspace_id))
            .order(workspace_events::id.desc())
            .select(Self::as_select())
            .load(conn)
    }

    /// The latest changes of every workspace, deleted ones included (for staff).
    pub fn latest(conn: &mut DbConn, limit: i64) -> QueryResult<Vec<WorkspaceEvent>> {
        workspace_events::table.order(workspace_events::id.desc()).limit(limit).select(Self::as_select()).load(conn)
    }

    pub fn label(&self) -> &str {
        [
            EventKind::Created,
            EventKind::MemberAdded,
            EventKind::MemberRemoved,
            EventKind::RoleChanged,
            EventKind::MemberLeft,
            EventKind::InvestigationShared,
            EventKind::InvestigationUnshared,
            EventKind::OwnershipTransferred,
            EventKind::Deleted,
        ]
        .into_iter()
        .find(|k| k.as_str() == self.kind)
        .map(EventKind::label)
        .unwrap_or(&self.kind)
    }
}

impl Workspace {
    /// A new workspace with `owner` as its owner.
    pub fn create(conn: &mut DbConn, name: &str, owner: &Person) -> QueryResult<Workspace> {
        let ws: Workspace = diesel::insert_into(workspaces::table)
            .values((workspaces::name.eq(name), workspaces::created_at.eq(now())))
            .get_result(conn)?;
        Self::add_member(conn, ws.id, owner.id, Role::Owner)?;
        Ok(ws)
    }

    pub fn find(conn: &mut DbConn, id: i32) -> QueryResult<Workspace> {
        workspaces::table.find(id).select(Self::as_select()).first(conn)
    }

    pub fn all(conn: &mut DbConn) -> QueryResult<Vec<Workspace>> {
        workspaces::table.order(workspaces::id.desc()).select(Self::as_select()).load(conn)
    }

    /// The person's workspaces with their role in each, newest first.
    pub fn of_person(conn: &mut DbConn, person_id: i32) -> QueryResult<Vec<(Workspace, Role)>> {
        workspaces::table
            .inner_join(workspace_members::table)
            .filter(workspace_members::person_id.eq(person_id))
            .order(workspaces::id.desc())
            .select((Self::as_select(), workspace_members::role))
            .load(conn)
    }

    /// The workspaces the person manages (as admin or owner): where they may share.
    pub fn managed_by(conn: &mut DbConn, person_id: i32) -> QueryResult<Vec<Workspace>> {
        Ok(Self::of_person(conn, person_id)?.into_iter().filter(|(_, r)| r.manages()).map(|(w, _)| w).collect())
    }

    /// The workspaces the person owns.
    pub fn owned_by(conn: &mut DbConn, person_id: i32) -> QueryResult<Vec<Workspace>> {
        Ok(Self::of_person(conn, person_id)?.into_iter().filter(|(_, r)| *r == Role::Owner).map(|(w, _)| w).collect())
    }

    /// Deletes the workspace with its memberships and shares (cascade); its history stays.
    pub fn delete(conn: &mut DbConn, id: i32) -> QueryResult<usize> {
        diesel::delete(workspaces::table.find(id)).execute(conn)
    }

    pub fn role_of(conn: &mut DbConn, workspace_id: i32, person_id: i32) -> QueryResult<Option<Role>> {
        workspace_members::table
            .filter(workspace_members::workspace_id.eq(workspace_id))
            .filter(workspace_members::person_id.eq(person_id))
            .select(workspace_members::role)
            .first(conn)
            .optional()
    }

    /// Members by role (owner first), then e-mail.
    pub fn members(conn: &mut DbConn, workspace_id: i32) -> QueryResult<Vec<Member>> {
        let rows: Vec<(Person, Role)> = workspace_members::table
            .inner_join(persons::table)
            .filter(workspace_members::workspace_id.eq(workspace_id))
            .order(persons::email)
            .select((Person::as_select(), workspace_members::role))
            .load(conn)?;
        let mut members: Vec<Member> = rows.into_iter().map(|(person, role)| Member { person, role }).collect();
        members.sort_by_key(|m| std::cmp::Reverse(m.role));
        Ok(members)
    }

    pub fn add_member(conn: &mut DbConn, workspace_id: i32, person_id: i32, role: Role) -> QueryResult<usize> {
        diesel::insert_into(workspace_members::table)
            .values((
                workspace_members::workspace_id.eq(workspace_id),
                workspace_members::person_id.eq(person_id),
                workspace_members::role.eq(role),
                workspace_members::added_at.eq(now()),
            ))
            .execute(conn)
    }

    pub fn remove_member(conn: &mut DbConn, workspace_id: i32, person_id: i32) -> QueryResult<usize> {
        diesel::delete(
            workspace_members::table
                .filter(workspace_members::workspace_id.eq(workspace_id))
                .filter(workspace_members::person_id.eq(person_id)),
        )
        .execute(conn)
    }

    /// Lock the workspace's row for the rest of the transaction (a no-op write; 0 when it
    /// does not exist).
    pub fn lock(conn: &mut DbConn, workspace_id: i32) -> QueryResult<usize> {
        diesel::update(workspaces::table.find(workspace_id)).set(workspaces::id.eq(workspaces::id)).execute(conn)
    }

    pub fn set_role(conn: &mut DbConn, workspace_id: i32, person_id: i32, role: Role) -> QueryResult<usize> {
        diesel::update(
            workspace_members::table
                .filter(workspace_members::workspace_id.eq(workspace_id))
                .filter(workspace_members::person_id.eq(person_id)),
        )
        .set(workspace_members::role.eq(role))
        .execute(conn)
    }

    /// The investigations shared into the workspace, with their owners, in title order.
    pub fn shared(conn: &mut DbConn, workspace_id: i32) -> QueryResult<Vec<Shared>> {
        let rows: Vec<(Investigation, Person, chrono::NaiveDateTime)> = workspace_investigations::table
            .inner_join(investigations::table.inner_join(persons::table))
            .filter(workspace_investigations::workspace_id.eq(workspace_id))
            .order((investigations::title, investigations::id))
            .select((Investigation::as_select(), Person::as_select(), workspace_investigations::shared_at))
            .load(conn)?;
        Ok(rows
            .into_iter()
            .map(|(investigation, owner, shared_at)| Shared { investigation, owner, shared_at })
            .collect())
    }

    /// Whether the investigation is shared into the workspace.
    pub fn holds(conn: &mut DbConn, workspace_id: i32, investigation_id: i32) -> QueryResult<bool> {
        diesel::select(diesel::dsl::exists(
            workspace_investigations::table
                .filter(workspace_investigations::workspace_id.eq(workspace_id))
                .filter(workspace_investigations::investigation_id.eq(investigation_id)),
        ))
        .get_result(conn)
    }

    pub fn share(conn: &mut DbConn, workspace_id: i32, investigation_id: i32, by: i32) -> QueryResult<usize> {
        diesel::insert_into(workspace_investigations::table)
            .values((
                workspace_investigations::workspace_id.eq(workspace_id),
                workspace_investigations::investigation_id.eq(investigation_id),
                workspace_investigations::shared_by.eq(Some(by)),
                workspace_investigations::shared_at.eq(now()),
            ))
            .execute(conn)
    }

    pub fn unshare(conn: &mut DbConn, workspace_id: i32, investigation_id: i32) -> QueryResult<usize> {
        diesel::delete(
            workspace_investigations::table
                .filter(workspace_investigations::workspace_id.eq(workspace_id))
                .filter(workspace_investigations::investigation_id.eq(investigation_id)),
        )
        .execute(conn)
    }

    /// The workspaces an investigation is shared into.
    pub fn sharing(conn: &mut DbConn, investigation_id: i32) -> QueryResult<Vec<Workspace>> {
        workspaces::table
            .inner_join(workspace_investigations::table)
            .filter(workspace_investigations::investigation_id.eq(investigation_id))
            .order(workspaces::name)
            .select(Self::as_select())
            .load(conn)
    }
}

/// Whether the investigation is shared into a workspace the person is a member of.
pub fn is_shared_with(conn: &mut DbConn, investigation_id: i32, person_id: i32) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        workspace_investigations::table
            .inner_join(
                workspace_members::table.on(workspace_members::workspace_id.eq(workspace_investigations::workspace_id)),
            )
            .filter(workspace_investigations::investigation_id.eq(investigation_id))
            .filter(workspace_members::person_id.eq(person_id)),
    ))
    .get_result(conn)
}

/// The investigations of others shared with the person through any of their workspaces.
pub fn shared_investigation_ids(conn: &mut DbConn, person_id: i32) -> QueryResult<Vec<i32>> {
    let mut ids: Vec<i32> = workspace_investigations::table
        .inner_join(
            workspace_members::table.on(workspace_members::workspace_id.eq(workspace_investigations::workspace_id)),
        )
        .inner_join(investigations::table)
        .filter(workspace_members::person_id.eq(person_id))
        .filter(investigations::owner_id.ne(person_id))
        .select(workspace_investigations::investigation_id)
        .load(conn)?;
    ids.sort_unstable();
    ids.dedup();
    Ok(ids)
}
