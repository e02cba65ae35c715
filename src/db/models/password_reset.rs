//! Open password-reset (and invitation) links. Only the SHA-256 of each token is stored; a
//! row lives until it is used, replaced by a newer link, or its person's password changes.

use diesel::prelude::*;

use crate::db::schema::password_resets;
use crate::db::{DbConn, now};

#[derive(Clone, Debug, Queryable, Selectable, PartialEq)]
#[diesel(table_name = password_resets)]
pub struct PasswordReset {
    pub id: i32,
    pub person_id: i32,
    pub token_hash: String,
    pub created_at: chrono::NaiveDateTime,
    pub expires_at: chrono::NaiveDateTime,
}

impl PasswordReset {
    /// A new open link for the person; their older links are dropped (only the newest works).
    pub fn replace_for(
        conn: &mut DbConn,
        person_id: i32,
        token_hash: &str,
        lifetime: chrono::Duration,
    ) -> QueryResult<()> {
        Self::delete_for(conn, person_id)?;
        let at = now();
        diesel::insert_into(password_resets::table)
            .values((
                password_resets::person_id.eq(person_id),
                password_resets::token_hash.eq(token_hash),
                password_resets::created_at.eq(at),
                password_resets::expires_at.eq(at + lifetime),
            ))
            .execute(conn)?;
        Ok(())
    }

    /// The unexpired link with this token hash.
    pub fn find_open(conn: &mut DbConn, token_hash: &str) -> QueryResult<Option<PasswordReset>> {
        password_resets::table
            .filter(password_resets::token_hash.eq(token_hash))
            .filter(password_resets::expires_at.gt(now()))
            .select(Self::as_select())
            .first(conn)
            .optional()
    }

    /// Use the link: true when this call deleted it (a concurrent use finds it gone).
    pub fn consume(conn: &mut DbConn, id: i32) -> QueryResult<bool> {
        Ok(diesel::delete(password_resets::table.find(id)).execute(conn)? == 1)
    }

    /// Every open link of the person ends (a new password, deactivation, a newer link).
    pub fn delete_for(conn: &mut DbConn, person_id: i32) -> QueryResult<usize> {
        diesel::delete(password_resets::table.filter(password_resets::person_id.eq(person_id))).execute(conn)
    }

    /// Forget links that expired (they could not be used anyway).
    pub fn delete_expired(conn: &mut DbConn) -> QueryResult<usize> {
        diesel::delete(password_resets::table.filter(password_resets::expires_at.le(now()))).execute(conn)
    }

    pub fn count_for(conn: &mut DbConn, person_id: i32) -> QueryResult<i64> {
        password_resets::table.filter(password_resets::person_id.eq(person_id)).count().get_result(conn)
    }
}
