//! Account commands for operators: change a password, deactivate or reactivate an account
//! (each ends every session of that person), delete an account with everything it owns.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;

use crate::auth;
use crate::context::AppContext;
use crate::db::models::Person;
use crate::deletion::{self, Item};

fn find(ctx: &AppContext, email: &str) -> anyhow::Result<Person> {
    Person::find_by_email(&mut *ctx.pool.get()?, email)?.with_context(|| format!("no account for {email}"))
}

/// A new password (the same rules as everywhere); every session and every open reset link of
/// the person ends.
pub fn set_password(ctx: &AppContext, email: &str, password: &str) -> anyhow::Result<()> {
    let password = auth::NewPassword::parse(password)?;
    let person = find(ctx, email)?;
    let hash = password.hash()?;
    auth::replace_password(&mut *ctx.pool.get()?, person.id, &hash)?;
    Ok(())
}

/// Deactivate (no login, every session and reset link ends) or reactivate an account — the
/// same change the staff page makes, without its guards: the operator may do anything.
pub fn set_active(ctx: &AppContext, email: &str, active: bool) -> anyhow::Result<()> {
    let person = find(ctx, email)?;
    auth::accounts::set_active(&mut *ctx.pool.get()?, person.id, active)?;
    Ok(())
}

/// Delete an account with its investigations, studies, assays, answers and the documents it
/// kept (at once, each with an audit event). Without `confirmed` only says what would go.
pub async fn delete(ctx: &AppContext, email: &str, confirmed: bool, out: &mut impl Write) -> anyhow::Result<ExitCode> {
    let person = find(ctx, email)?;
    let item = Item::Person(person.id);
    let (assays, files) = ctx
        .db(move |c| {
            let assays = crate::db::models::Assay::ids_in(c, crate::db::models::assay::Within::Owner(person.id))?;
            Ok::<_, anyhow::Error>((assays.len(), deletion::kept_files(c, item)?))
        })
        .await?;
    if !confirmed {
        writeln!(out, "would delete {} with {assays} assay(s) and {files} kept document(s)", person.email)?;
        writeln!(out, "run again with --yes to delete")?;
        return Ok(ExitCode::FAILURE);
    }
    let done = deletion::delete(ctx, item, &format!("account deletion of {}", person.email)).await?;
    writeln!(out, "deleted {} with {assays} assay(s) and {} kept document(s)", person.email, done.files)?;
    if done.pending > 0 {
        writeln!(
            out,
            "{} document(s) could not be deleted from storage yet; cleanup-orphaned-files retries them",
            done.pending
        )?;
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}
