//! Account administration, shared by the operator's commands (`toxtemp deactivate-user`) and
//! the staff page `/admin/accounts`: the changes themselves, and who may make them.
//!
//! The rules for staff (the command line is the operator and may do anything):
//! - nobody deactivates themselves or removes their own staff flag (no locking oneself out);
//! - granting or removing the staff flag is for superusers only;
//! - a superuser account, or another staff account, is changed only by a superuser;
//! - any staff member may create ordinary accounts and (de)activate ordinary ones; only a
//!   superuser creates staff accounts. Superusers are created with `toxtemp create-user`.

use diesel::QueryResult;

use crate::db::models::{PasswordReset, Person};
use crate::db::{DbConn, write_transaction};

/// A change to someone's account.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    Deactivate,
    Reactivate,
    GrantStaff,
    RevokeStaff,
}

/// Why a staff member may not make a change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("You cannot deactivate your own account.")]
    DeactivateSelf,
    #[error("You cannot remove your own staff flag.")]
    UnstaffSelf,
    #[error("Only a superuser may grant or remove the staff flag.")]
    StaffFlagNeedsSuperuser,
    #[error("Only a superuser may change a staff or superuser account.")]
    PrivilegedTarget,
    #[error("A superuser is always staff; use the command line to change a superuser.")]
    SuperuserIsStaff,
}

/// May `actor` (a staff member) make `change` to `target`'s account?
pub fn check(actor: &Person, target: &Person, change: Change) -> Result<(), Refusal> {
    let own = actor.id == target.id;
    match change {
        Change::Deactivate if own => return Err(Refusal::DeactivateSelf),
        Change::RevokeStaff if own => return Err(Refusal::UnstaffSelf),
        Change::GrantStaff | Change::RevokeStaff if !actor.is_superuser => {
            return Err(Refusal::StaffFlagNeedsSuperuser);
        }
        Change::RevokeStaff if target.is_superuser => return Err(Refusal::SuperuserIsStaff),
        _ => {}
    }
    if target.sees_everything() && !actor.is_superuser && !own {
        return Err(Refusal::PrivilegedTarget);
    }
    Ok(())
}

/// May `actor` create an account with (or without) the staff flag?
pub fn check_create(actor: &Person, staff: bool) -> Result<(), Refusal> {
    if staff && !actor.is_superuser { Err(Refusal::StaffFlagNeedsSuperuser) } else { Ok(()) }
}

/// Make the change and return the account as it is now.
pub fn apply(conn: &mut DbConn, person_id: i32, change: Change) -> QueryResult<Person> {
    match change {
        Change::Deactivate => set_active(conn, person_id, false),
        Change::Reactivate => set_active(conn, person_id, true),
        Change::GrantStaff | Change::RevokeStaff => {
            Person::set_staff(conn, person_id, change == Change::GrantStaff)?;
            Person::find(conn, person_id)
        }
    }
}

/// Deactivate (no more logins; every session and every open reset link ends at once) or
/// reactivate an account.
pub fn set_active(conn: &mut DbConn, person_id: i32, active: bool) -> QueryResult<Person> {
    write_transaction(conn, |c| {
        Person::set_active(c, person_id, active)?;
        PasswordReset::delete_for(c, person_id)?;
        Person::find(c, person_id)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn person(id: i32, staff: bool, superuser: bool) -> Person {
        Person {
            id,
            email: format!("p{id}@example.org"),
            password_hash: String::new(),
            display_name: String::new(),
            organization: String::new(),
            is_staff: staff || superuser,
            is_superuser: superuser,
            is_active: true,
            created_at: chrono::Utc::now().naive_utc(),
            session_generation: 0,
        }
    }

    #[test]
    fn staff_change_ordinary_accounts_and_superusers_everything_but_themselves() {
        let (user, staff, other_staff, root) =
            (person(1, false, false), person(2, true, false), person(3, true, false), person(4, true, true));
        assert_eq!(check(&staff, &user, Change::Deactivate), Ok(()));
        assert_eq!(check(&staff, &user, Change::Reactivate), Ok(()));
        assert_eq!(check(&staff, &user, Change::GrantStaff), Err(Refusal::StaffFlagNeedsSuperuser));
        assert_eq!(check(&staff, &other_staff, Change::Deactivate), Err(Refusal::PrivilegedTarget));
        assert_eq!(check(&staff, &root, Change::Deactivate), Err(Refusal::PrivilegedTarget));
        assert_eq!(check(&staff, &staff, Change::Deactivate), Err(Refusal::DeactivateSelf));
        assert_eq!(check(&staff, &staff, Change::RevokeStaff), Err(Refusal::UnstaffSelf));
        assert_eq!(check(&root, &root, Change::Deactivate), Err(Refusal::DeactivateSelf));
        assert_eq!(check(&root, &other_staff, Change::RevokeStaff), Ok(()));
        assert_eq!(check(&root, &user, Change::GrantStaff), Ok(()));
        assert_eq!(check(&root, &person(5, true, true), Change::RevokeStaff), Err(Refusal::SuperuserIsStaff));
        assert_eq!(check(&root, &person(5, true, true), Change::Deactivate), Ok(()));
        assert_eq!(check_create(&staff, true), Err(Refusal::StaffFlagNeedsSuperuser));
        assert_eq!(check_create(&staff, false), Ok(()));
        assert_eq!(check_create(&root, true), Ok(()));
    }
}
