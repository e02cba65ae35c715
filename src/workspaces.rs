//! Workspaces and sharing, the use cases: who may change what, and the history of every
//! change. Access to shared investigations is decided in one place,
//! `Investigation::standing_of`; this module only changes who is in which workspace and what
//! is shared there, so a removal, an unshare or a deletion takes effect on the next request.
//!
//! Rules: members of any role see and contribute to what is shared; admins (and the owner) add
//! and remove members and change their roles; an investigation's owner shares it into a
//! workspace they manage and unshares it from any; only the workspace's owner deletes it or
//! hands it to another member (becoming an admin). The owner cannot leave or be removed. When
//! a person leaves or is removed, their own investigations are unshared from that workspace
//! (nobody else could take them back).

use diesel::result::DatabaseErrorKind;

use crate::db::models::person::normalize_email;
use crate::db::models::workspace::{EventKind, Member, NewEvent, Shared};
use crate::db::models::{Investigation, Person, Role, Workspace, WorkspaceEvent};
use crate::db::{DbConn, write_transaction};

/// Why a workspace change was refused.
#[derive(Debug, thiserror::Error)]
pub enum WorkspaceError {
    /// Not a member (nor staff): the workspace is not confirmed to exist.
    #[error("not found")]
    NotFound,
    /// A member without the role for this.
    #[error("forbidden")]
    Forbidden,
    /// A mistake in the form, said for people.
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Db(#[from] diesel::result::Error),
}

pub type Result<T> = std::result::Result<T, WorkspaceError>;

const MAX_NAME: usize = 200;

/// A workspace as its page shows it.
pub struct WorkspaceView {
    pub workspace: Workspace,
    /// The viewer's role; `None` for staff looking in.
    pub role: Option<Role>,
    pub members: Vec<Member>,
    pub shared: Vec<Shared>,
    pub history: Vec<WorkspaceEvent>,
    /// The viewer's investigations not yet shared here (when they may share).
    pub shareable: Vec<Investigation>,
}

/// The workspace and the actor's role in it; strangers get `NotFound`.
/// Every change to a workspace starts here, inside its transaction: the workspace row is
/// locked first, so changes to one workspace happen one after the other (on PostgreSQL too,
/// where a transfer racing a removal could otherwise leave it without an owner).
fn membership(c: &mut DbConn, workspace_id: i32, actor: &Person) -> Result<(Workspace, Role)> {
    if Workspace::lock(c, workspace_id)? == 0 {
        return Err(WorkspaceError::NotFound);
    }
    let ws = Workspace::find(c, workspace_id).map_err(not_found)?;
    match Workspace::role_of(c, workspace_id, actor.id)? {
        Some(role) => Ok((ws, role)),
        None if actor.sees_everything() => Err(WorkspaceError::Forbidden),
        None => Err(WorkspaceError::NotFound),
    }
}

/// Like [`membership`], but the actor must manage the workspace.
fn managed(c: &mut DbConn, workspace_id: i32, actor: &Person) -> Result<(Workspace, Role)> {
    let (ws, role) = membership(c, workspace_id, actor)?;
    if role.manages() { Ok((ws, role)) } else { Err(WorkspaceError::Forbidden) }
}

fn not_found(e: diesel::result::Error) -> WorkspaceError {
    match e {
        diesel::result::Error::NotFound => WorkspaceError::NotFound,
        other => WorkspaceError::Db(other),
    }
}

fn event<'a>(ws: &'a Workspace, kind: EventKind, actor: &'a Person) -> NewEvent<'a> {
    NewEvent { workspace: ws, kind, actor, subject: None, investigation: None, detail: String::new() }
}

/// A name from a form: trimmed, not empty, not too long.
pub fn parse_name(name: &str) -> Result<String> {
    let name = name.trim();
    if name.is_empty() {
        Err(WorkspaceError::Invalid("Please give the workspace a name.".into()))
    } else if name.chars().count() > MAX_NAME {
        Err(WorkspaceError::Invalid(format!("A name may have at most {MAX_NAME} characters.")))
    } else {
        Ok(name.to_owned())
    }
}

pub fn create(c: &mut DbConn, actor: &Person, name: &str) -> Result<Workspace> {
    let name = parse_name(name)?;
    write_transaction(c, |c| {
        let ws = Workspace::create(c, &name, actor)?;
        WorkspaceEvent::record(c, event(&ws, EventKind::Created, actor))?;
        Ok(ws)
    })
}

/// What the workspace page shows: to its members, and read-only to staff.
pub fn view(c: &mut DbConn, viewer: &Person, workspace_id: i32) -> Result<WorkspaceView> {
    let ws = Workspace::find(c, workspace_id).map_err(not_found)?;
    let role = Workspace::role_of(c, workspace_id, viewer.id)?;
    if role.is_none() && !viewer.sees_everything() {
        return Err(WorkspaceError::NotFound);
    }
    let shared = Workspace::shared(c, workspace_id)?;
    let shareable = if role.is_some_and(Role::manages) {
        Investigation::owned_by(c, viewer)?
            .into_iter()
            .filter(|i| !shared.iter().any(|s| s.investigation.id == i.id))
            .collect()
    } else {
        Vec::new()
    };
    Ok(WorkspaceView {
        members: Workspace::members(c, workspace_id)?,
        history: WorkspaceEvent::of_workspace(c, workspace_id)?,
        workspace: ws,
        role,
        shared,
        shareable,
    })
}

/// Add the account with this e-mail address (admins and the owner).
pub fn add_member(c: &mut DbConn, actor: &Person, workspace_id: i32, email: &str, role: Role) -> Result<Person> {
    if role == Role::Owner {
        return Err(WorkspaceError::Invalid("A workspace has one owner: transfer ownership instead.".into()));
    }
    write_transaction(c, |c| {
        let (ws, _) = managed(c, workspace_id, actor)?;
        let Some(person) = Person::find_by_email(c, email)?.filter(|p| p.is_active) else {
            let email = normalize_email(email);
            return Err(WorkspaceError::Invalid(format!("There is no account with the e-mail address “{email}”.")));
        };
        match Workspace::add_member(c, ws.id, person.id, role) {
            Err(diesel::result::Error::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => {
                return Err(WorkspaceError::Invalid(format!("{} is already a member.", person.email)));
            }
            other => other?,
        };
        WorkspaceEvent::record(
            c,
            NewEvent { subject: Some(&person), detail: role.to_string(), ..event(&ws, EventKind::MemberAdded, actor) },
        )?;
        Ok(person)
    })
}

/// Remove a member (admins and the owner; never the owner).
pub fn remove_member(c: &mut DbConn, actor: &Person, workspace_id: i32, person_id: i32) -> Result<()> {
    write_transaction(c, |c| {
        let (ws, _) = managed(c, workspace_id, actor)?;
        let subject = member(c, &ws, person_id)?;
        if subject.role == Role::Owner {
            return Err(WorkspaceError::Invalid("The owner cannot be removed.".into()));
        }
        depart(c, &ws, actor, &subject.person, EventKind::MemberRemoved)
    })
}

/// Leave a workspace (the owner transfers it first).
pub fn leave(c: &mut DbConn, actor: &Person, workspace_id: i32) -> Result<Workspace> {
    write_transaction(c, |c| {
        let (ws, role) = membership(c, workspace_id, actor)?;
        if role == Role::Owner {
            return Err(WorkspaceError::Invalid(
                "The owner cannot leave: transfer the ownership to another member first.".into(),
            ));
        }
        depart(c, &ws, actor, actor, EventKind::MemberLeft)?;
        Ok(ws)
    })
}

/// Take `person` out of the workspace, and their investigations with them.
fn depart(c: &mut DbConn, ws: &Workspace, actor: &Person, person: &Person, kind: EventKind) -> Result<()> {
    for shared in Workspace::shared(c, ws.id)?.into_iter().filter(|s| s.owner.id == person.id) {
        Workspace::unshare(c, ws.id, shared.investigation.id)?;
        let detail = "its owner is no longer a member".to_owned();
        let unshared = NewEvent {
            investigation: Some(&shared.investigation),
            detail,
            ..event(ws, EventKind::InvestigationUnshared, actor)
        };
        WorkspaceEvent::record(c, unshared)?;
    }
    Workspace::remove_member(c, ws.id, person.id)?;
    WorkspaceEvent::record(c, NewEvent { subject: Some(person), ..event(ws, kind, actor) })?;
    Ok(())
}

fn member(c: &mut DbConn, ws: &Workspace, person_id: i32) -> Result<Member> {
    Workspace::members(c, ws.id)?
        .into_iter()
        .find(|m| m.person.id == person_id)
        .ok_or_else(|| WorkspaceError::Invalid("That person is not a member.".into()))
}

/// Make a member an admin or a plain member (admins and the owner; not the owner's role).
pub fn set_role(c: &mut DbConn, actor: &Person, workspace_id: i32, person_id: i32, role: Role) -> Result<()> {
    if role == Role::Owner {
        return Err(WorkspaceError::Invalid("A workspace has one owner: transfer ownership instead.".into()));
    }
    write_transaction(c, |c| {
        let (ws, _) = managed(c, workspace_id, actor)?;
        let subject = member(c, &ws, person_id)?;
        if subject.role == Role::Owner {
            return Err(WorkspaceError::Invalid("The owner's role changes only with a transfer.".into()));
        }
        if subject.role != role {
            Workspace::set_role(c, ws.id, person_id, role)?;
            let detail = format!("{} → {}", subject.role, role);
            let changed =
                NewEvent { subject: Some(&subject.person), detail, ..event(&ws, EventKind::RoleChanged, actor) };
            WorkspaceEvent::record(c, changed)?;
        }
        Ok(())
    })
}

/// Hand the workspace to another member (the owner only); the old owner becomes an admin.
pub fn transfer(c: &mut DbConn, actor: &Person, workspace_id: i32, person_id: i32) -> Result<()> {
    write_transaction(c, |c| {
        let (ws, role) = membership(c, workspace_id, actor)?;
        if role != Role::Owner {
            return Err(WorkspaceError::Forbidden);
        }
        let heir = member(c, &ws, person_id)?;
        if heir.person.id == actor.id {
            return Err(WorkspaceError::Invalid("You own this workspace already.".into()));
        }
        // Step down first: the one-owner index would refuse two owners even for a moment.
        let stepped_down = Workspace::set_role(c, ws.id, actor.id, Role::Admin)?;
        let took_over = Workspace::set_role(c, ws.id, heir.person.id, Role::Owner)?;
        if (stepped_down, took_over) != (1, 1) {
            return Err(WorkspaceError::Invalid("The members changed meanwhile: please try again.".into()));
        }
        let transferred =
            NewEvent { subject: Some(&heir.person), ..event(&ws, EventKind::OwnershipTransferred, actor) };
        WorkspaceEvent::record(c, transferred)?;
        Ok(())
    })
}

/// Delete the workspace (the owner only): every share into it ends; its history stays.
pub fn delete(c: &mut DbConn, actor: &Person, workspace_id: i32) -> Result<Workspace> {
    write_transaction(c, |c| {
        let (ws, role) = membership(c, workspace_id, actor)?;
        if role != Role::Owner {
            return Err(WorkspaceError::Forbidden);
        }
        WorkspaceEvent::record(c, event(&ws, EventKind::Deleted, actor))?;
        Workspace::delete(c, ws.id)?;
        Ok(ws)
    })
}

/// Share an investigation into a workspace: its owner, who manages the workspace.
pub fn share(c: &mut DbConn, actor: &Person, workspace_id: i32, investigation_id: i32) -> Result<Workspace> {
    write_transaction(c, |c| {
        let inv = owned(c, actor, investigation_id)?;
        let (ws, _) = managed(c, workspace_id, actor).map_err(|e| match e {
            // Sharing happens on the investigation's page: a workspace one is not in is not
            // one of the choices, whatever the id says.
            WorkspaceError::NotFound => WorkspaceError::Invalid("Please choose one of your workspaces.".into()),
            other => other,
        })?;
        if !Workspace::holds(c, ws.id, inv.id)? {
            Workspace::share(c, ws.id, inv.id, actor.id)?;
            WorkspaceEvent::record(
                c,
                NewEvent { investigation: Some(&inv), ..event(&ws, EventKind::InvestigationShared, actor) },
            )?;
        }
        Ok(ws)
    })
}

/// Take an investigation out of a workspace: its owner only.
pub fn unshare(c: &mut DbConn, actor: &Person, workspace_id: i32, investigation_id: i32) -> Result<Workspace> {
    write_transaction(c, |c| {
        let inv = owned(c, actor, investigation_id)?;
        let ws = Workspace::find(c, workspace_id).map_err(not_found)?;
        if Workspace::unshare(c, ws.id, inv.id)? == 0 {
            return Err(WorkspaceError::NotFound);
        }
        WorkspaceEvent::record(
            c,
            NewEvent { investigation: Some(&inv), ..event(&ws, EventKind::InvestigationUnshared, actor) },
        )?;
        Ok(ws)
    })
}

/// The investigation, if the actor owns it: others who see it get `Forbidden`, the rest
/// `NotFound`.
fn owned(c: &mut DbConn, actor: &Person, investigation_id: i32) -> Result<Investigation> {
    let inv = Investigation::find_for(c, investigation_id, actor).map_err(not_found)?;
    if inv.owner_id == actor.id { Ok(inv) } else { Err(WorkspaceError::Forbidden) }
}
