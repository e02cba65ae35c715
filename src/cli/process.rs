//! The `process` command: the StartingForm's submission from the command line (for the assay's
//! owner), then the queue is driven until the run has ended.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use crate::context::AppContext;
use crate::db::models::{Answer, Assay, AssayStatus};
use crate::drafting::{self, DraftError, DraftRequest, IncomingFile, Scope, Target, Upload};

pub struct Options {
    pub share_files: bool,
    pub overwrite: bool,
    pub extract_images: bool,
}

pub async fn run(
    ctx: &AppContext,
    assay_id: i32,
    paths: &[PathBuf],
    opts: Options,
    out: &mut impl Write,
) -> anyhow::Result<ExitCode> {
    let owner = ctx.db(move |c| Assay::owner(c, assay_id).context("no such assay")).await?;
    let mut files = Vec::new();
    for path in paths {
        let name = crate::filenames::clean(&path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default());
        files.push(
            IncomingFile::from_path(path.clone(), name).await.with_context(|| format!("reading {}", path.display()))?,
        );
    }
    let request = DraftRequest {
        uploader: owner,
        target: Target::Existing(assay_id),
        question_set_id: None,
        scope: Scope::All { overwrite: opts.overwrite },
        upload: Upload::of_files(files),
        keep_files: opts.share_files,
        extract_images: opts.extract_images,
        model: drafting::choice::ModelChoice::Default,
    };
    let submitted = match drafting::submit(ctx, request).await {
        Ok(submitted) => submitted,
        Err(DraftError::Files(problems)) => {
            for p in problems {
                writeln!(out, "refused: {} {}", p.name, p.reason)?;
            }
            return Ok(ExitCode::FAILURE);
        }
        Err(DraftError::Internal(err)) => return Err(err),
        Err(refused) => {
            writeln!(out, "refused: {refused}")?;
            return Ok(ExitCode::FAILURE);
        }
    };
    for w in &submitted.warnings {
        writeln!(out, "warning: {w}")?;
    }
    writeln!(out, "scheduled job {} ({} file(s) stored)", submitted.job_id, submitted.stored.len())?;
    crate::startup::run_pending_jobs(ctx).await?;
    let (assay, answers) = ctx
        .db(move |c| Ok::<_, anyhow::Error>((Assay::find(c, assay_id)?, Answer::of_assay(c, assay_id)?.len())))
        .await?;
    writeln!(out, "{}: {answers} answers", assay.status())?;
    for alert in assay.alerts() {
        writeln!(out, "alert: {alert}")?;
    }
    Ok(if assay.status() == AssayStatus::Done { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
