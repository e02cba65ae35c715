//! The `cleanup-orphaned-files` command: list, delete, report.

use std::io::Write;
use std::process::ExitCode;

use crate::context::AppContext;
use crate::db::models::FileAsset;
use crate::fileops::{self, CleanupReport, CleanupRun, FileAssetManager};

pub const ACTOR: &str = "cleanup-orphaned-files";

/// Run one cleanup and print a table of what was (or would be) deleted; then drop the names
/// of files deleted longer ago than the retention period. A real run is recorded (monitoring
/// asks when the last one finished).
pub async fn run(ctx: &AppContext, days: u32, dry_run: bool, out: &mut impl Write) -> anyhow::Result<ExitCode> {
    let started = crate::db::now();
    let manager = FileAssetManager { pool: ctx.pool.clone(), store: ctx.store.clone() };
    let orphans = manager.get_orphaned(days).await?;
    if dry_run {
        match orphans.len() {
            0 => writeln!(out, "no orphaned files older than {days} days")?,
            n => {
                writeln!(out, "would delete {n} orphaned file(s) older than {days} days (dry run):")?;
                write_table(out, &orphans)?;
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    let report = fileops::delete_orphaned_file_assets(&ctx.pool, ctx.store.as_ref(), orphans, ACTOR).await?;
    write_report(out, days, &report)?;
    let retention = ctx.config.deleted_name_retention;
    let forgotten = fileops::forget_deleted_names(&ctx.pool, retention).await?;
    if forgotten > 0 {
        let days = retention.as_secs() / 86_400;
        writeln!(out, "removed the original names of {forgotten} file(s) deleted more than {days} days ago")?;
    }
    let run = CleanupRun::new(started, &report, forgotten);
    ctx.db(move |c| Ok::<_, anyhow::Error>(run.record(c)?)).await?;
    Ok(if report.errors.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

fn write_report(out: &mut impl Write, days: u32, report: &CleanupReport) -> std::io::Result<()> {
    if report.deleted.is_empty() && report.errors.is_empty() && report.skipped.is_empty() {
        return writeln!(out, "no orphaned files older than {days} days");
    }
    writeln!(out, "deleted {} orphaned file(s) older than {days} days:", report.deleted.len())?;
    write_table(out, &report.deleted)?;
    if !report.skipped.is_empty() {
        let skipped: Vec<&str> = report.skipped.iter().map(|id| id.as_str()).collect();
        writeln!(out, "left alone (linked meanwhile or already gone): {}", skipped.join(", "))?;
    }
    if !report.errors.is_empty() {
        writeln!(
            out,
            "{} file(s) could not be deleted; their rows are kept and will be retried:",
            report.errors.len()
        )?;
        for (id, err) in &report.errors {
            writeln!(out, "  {id}  {err}")?;
        }
    }
    Ok(())
}

fn write_table(out: &mut impl Write, assets: &[FileAsset]) -> std::io::Result<()> {
    let now = crate::db::now();
    writeln!(out, "{:<36}  {:>12}  {:>5}  original name", "id", "size (bytes)", "days")?;
    for a in assets {
        let age = (now - a.created_at).num_days();
        let name: String = a.shown_name().chars().map(|c| if c.is_control() { '?' } else { c }).collect();
        writeln!(out, "{:<36}  {:>12}  {:>5}  {}", a.id, a.size_bytes, age, name)?;
    }
    Ok(())
}
