//! Failed logins, counted per key (`email:…`, `ip:…`) in a window, in the database so that
//! every server sees the same counts. The table is bounded: expired windows are dropped and,
//! past a fixed number of rows, the oldest go first.

use diesel::prelude::*;

use crate::db::schema::login_failures;
use crate::db::{DbConn, now};

/// Rows kept at most, whatever is sent.
pub const MAX_ROWS: i64 = 10_000;

#[derive(Clone, Debug, Queryable, Selectable, PartialEq)]
#[diesel(table_name = login_failures)]
pub struct LoginFailure {
    pub key: String,
    pub failures: i32,
    pub window_start: chrono::NaiveDateTime,
}

impl LoginFailure {
    /// The counts of these keys whose window started after `since`.
    pub fn current(conn: &mut DbConn, keys: &[String], since: chrono::NaiveDateTime) -> QueryResult<Vec<LoginFailure>> {
        login_failures::table
            .filter(login_failures::key.eq_any(keys))
            .filter(login_failures::window_start.gt(since))
            .select(Self::as_select())
            .load(conn)
    }

    /// One more failure for `key`; a window that started before `since` starts again.
    pub fn record(conn: &mut DbConn, key: &str, since: chrono::NaiveDateTime) -> QueryResult<()> {
        Self::record_bounded(conn, key, since, MAX_ROWS)
    }

    /// [`Self::record`] with the table kept to `max_rows`.
    pub fn record_bounded(
        conn: &mut DbConn,
        key: &str,
        since: chrono::NaiveDateTime,
        max_rows: i64,
    ) -> QueryResult<()> {
        let at = now();
        let bumped = diesel::update(login_failures::table.find(key).filter(login_failures::window_start.gt(since)))
            .set(login_failures::failures.eq(login_failures::failures + 1))
            .execute(conn)?;
        if bumped == 0 {
            // Only an expired window goes: on PostgreSQL this statement sees rows committed
            // since the update above, and a live window another attempt has just started
            // must keep its count.
            diesel::delete(login_failures::table.find(key).filter(login_failures::window_start.le(since)))
                .execute(conn)?;
            // In a savepoint: when another attempt inserted the same key a moment ago, the
            // unique violation must not abort the surrounding transaction (PostgreSQL would).
            let inserted = conn.transaction(|c| {
                diesel::insert_into(login_failures::table)
                    .values((
                        login_failures::key.eq(key),
                        login_failures::failures.eq(1),
                        login_failures::window_start.eq(at),
                    ))
                    .execute(c)
            });
            match inserted {
                Err(diesel::result::Error::DatabaseError(diesel::result::DatabaseErrorKind::UniqueViolation, _)) => {
                    diesel::update(login_failures::table.find(key))
                        .set(login_failures::failures.eq(login_failures::failures + 1))
                        .execute(conn)?;
                }
                other => {
                    other?;
                }
            }
            Self::prune(conn, since, max_rows)?;
        }
        Ok(())
    }

    /// One failure fewer for `key` (an attempt counted in advance that succeeded).
    pub fn take_back(conn: &mut DbConn, key: &str) -> QueryResult<()> {
        diesel::update(login_failures::table.find(key).filter(login_failures::failures.gt(0)))
            .set(login_failures::failures.eq(login_failures::failures - 1))
            .execute(conn)?;
        Ok(())
    }

    pub fn clear(conn: &mut DbConn, key: &str) -> QueryResult<usize> {
        diesel::delete(login_failures::table.find(key)).execute(conn)
    }

    /// Drop expired windows, then the oldest rows beyond `max_rows`.
    fn prune(conn: &mut DbConn, since: chrono::NaiveDateTime, max_rows: i64) -> QueryResult<()> {
        diesel::delete(login_failures::table.filter(login_failures::window_start.le(since))).execute(conn)?;
        let rows: i64 = login_failures::table.count().get_result(conn)?;
        if rows > max_rows {
            let oldest: Vec<String> = login_failures::table
                .order(login_failures::window_start)
                .limit(rows - max_rows)
                .select(login_failures::key)
                .load(conn)?;
            diesel::delete(login_failures::table.filter(login_failures::key.eq_any(oldest))).execute(conn)?;
        }
        Ok(())
    }

    pub fn count(conn: &mut DbConn) -> QueryResult<i64> {
        login_failures::table.count().get_result(conn)
    }
}
