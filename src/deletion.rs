//! Deleting an investigation, study or assay as a person does: the rows go (answers with
//! them, by cascade), and so does the queued drafting work of every assay inside — its
//! payload holds the documents' text, and a job must not draft a deleted assay again.

use crate::db::models::assay::Within;
use crate::db::models::{Assay, Investigation, Study};
use crate::db::{DbConn, write_transaction};
use crate::drafting;

/// What is being deleted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Item {
    Assay(i32),
    Study(i32),
    Investigation(i32),
}

/// Delete `item` with everything below it, in one transaction.
pub fn delete(conn: &mut DbConn, item: Item) -> diesel::QueryResult<()> {
    write_transaction(conn, |c| {
        let assays = match item {
            Item::Assay(id) => vec![id],
            Item::Study(id) => Assay::ids_in(c, Within::Study(id))?,
            Item::Investigation(id) => Assay::ids_in(c, Within::Investigation(id))?,
        };
        drafting::forget_assays(c, &assays)?;
        match item {
            Item::Assay(id) => Assay::delete(c, id),
            Item::Study(id) => Study::delete(c, id),
            Item::Investigation(id) => Investigation::delete(c, id),
        }?;
        Ok(())
    })
}
