//! Deleting an investigation, study or assay as a person does: the rows go (answers with
//! them, by cascade), and so does the queued drafting work of every assay inside — its
//! payload holds the documents' text, and a job must not draft a deleted assay again.

use crate::db::models::assay::Within;
use crate::db::models::{Assay, Investigation, Study};
use crate::db::{DbConn, write_transaction};
use crate::drafting;

pub fn delete_assay(conn: &mut DbConn, id: i32) -> diesel::QueryResult<()> {
    write_transaction(conn, |c| {
        drafting::forget_assays(c, &[id])?;
        Assay::delete(c, id)?;
        Ok(())
    })
}

pub fn delete_study(conn: &mut DbConn, id: i32) -> diesel::QueryResult<()> {
    write_transaction(conn, |c| {
        let assays = Assay::ids_in(c, Within::Study(id))?;
        drafting::forget_assays(c, &assays)?;
        Study::delete(c, id)?;
        Ok(())
    })
}

pub fn delete_investigation(conn: &mut DbConn, id: i32) -> diesel::QueryResult<()> {
    write_transaction(conn, |c| {
        let assays = Assay::ids_in(c, Within::Investigation(id))?;
        drafting::forget_assays(c, &assays)?;
        Investigation::delete(c, id)?;
        Ok(())
    })
}
