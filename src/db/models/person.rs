//! People who log in. Emails are stored lower-cased so login is case-insensitive.

use diesel::prelude::*;

use crate::db::schema::persons;
use crate::db::{DbConn, now};

#[derive(Clone, Debug, Queryable, Selectable, Identifiable, PartialEq)]
#[diesel(table_name = persons)]
pub struct Person {
    pub id: i32,
    pub email: String,
    pub password_hash: String,
    pub display_name: String,
    pub organization: String,
    pub is_staff: bool,
    pub is_superuser: bool,
    pub is_active: bool,
    pub created_at: chrono::NaiveDateTime,
    /// Bumped to end every session of the person (logout, password change, deactivation).
    pub session_generation: i32,
}

#[derive(Insertable)]
#[diesel(table_name = persons)]
pub struct NewPerson<'a> {
    pub email: &'a str,
    pub password_hash: &'a str,
    pub display_name: &'a str,
    pub organization: &'a str,
    pub is_staff: bool,
    pub is_superuser: bool,
    pub is_active: bool,
    pub created_at: chrono::NaiveDateTime,
}

/// Lower-case and trim an email address for storage and lookup.
pub fn normalize_email(email: &str) -> String {
    email.trim().to_lowercase()
}

impl Person {
    /// Staff and superusers may look at everyone's assays.
    pub fn sees_everything(&self) -> bool {
        self.is_staff || self.is_superuser
    }

    pub fn label(&self) -> &str {
        if self.display_name.is_empty() { &self.email } else { &self.display_name }
    }

    pub fn find(conn: &mut DbConn, id: i32) -> QueryResult<Person> {
        persons::table.find(id).select(Person::as_select()).first(conn)
    }

    pub fn find_by_email(conn: &mut DbConn, email: &str) -> QueryResult<Option<Person>> {
        persons::table
            .filter(persons::email.eq(normalize_email(email)))
            .select(Person::as_select())
            .first(conn)
            .optional()
    }

    pub fn insert(conn: &mut DbConn, new: &NewPerson<'_>) -> QueryResult<Person> {
        let id = diesel::insert_into(persons::table).values(new).returning(persons::id).get_result(conn)?;
        Person::find(conn, id)
    }

    pub fn count_staff(conn: &mut DbConn) -> QueryResult<i64> {
        persons::table.filter(persons::is_staff.eq(true)).count().get_result(conn)
    }

    /// A new password ends every session of the person.
    pub fn set_password(conn: &mut DbConn, id: i32, hash: &str) -> QueryResult<usize> {
        diesel::update(persons::table.find(id))
            .set((persons::password_hash.eq(hash), persons::session_generation.eq(persons::session_generation + 1)))
            .execute(conn)
    }

    /// Deactivating (or reactivating) an account ends its sessions.
    pub fn set_active(conn: &mut DbConn, id: i32, active: bool) -> QueryResult<usize> {
        diesel::update(persons::table.find(id))
            .set((persons::is_active.eq(active), persons::session_generation.eq(persons::session_generation + 1)))
            .execute(conn)
    }

    /// Grant or remove the staff flag (it takes effect on the person's next request).
    pub fn set_staff(conn: &mut DbConn, id: i32, staff: bool) -> QueryResult<usize> {
        diesel::update(persons::table.find(id)).set(persons::is_staff.eq(staff)).execute(conn)
    }

    /// When the person last logged in (shown to staff).
    pub fn record_login(conn: &mut DbConn, id: i32) -> QueryResult<usize> {
        diesel::update(persons::table.find(id)).set(persons::last_login_at.eq(Some(now()))).execute(conn)
    }

    /// End every session of the person (their sessions carry the old generation).
    pub fn end_sessions(conn: &mut DbConn, id: i32) -> QueryResult<usize> {
        diesel::update(persons::table.find(id))
            .set(persons::session_generation.eq(persons::session_generation + 1))
            .execute(conn)
    }

    pub fn delete(conn: &mut DbConn, id: i32) -> QueryResult<usize> {
        diesel::delete(persons::table.find(id)).execute(conn)
    }
}

/// Fields of a new account, before the password is hashed.
pub struct PersonSpec<'a> {
    pub email: &'a str,
    pub display_name: &'a str,
    pub is_staff: bool,
    pub is_superuser: bool,
}

/// Create an account with an already hashed password; the email is normalized here.
pub fn create(conn: &mut DbConn, spec: &PersonSpec<'_>, password_hash: &str) -> QueryResult<Person> {
    let email = normalize_email(spec.email);
    Person::insert(
        conn,
        &NewPerson {
            email: &email,
            password_hash,
            display_name: spec.display_name,
            organization: "",
            is_staff: spec.is_staff || spec.is_superuser,
            is_superuser: spec.is_superuser,
            is_active: true,
            created_at: now(),
        },
    )
}
