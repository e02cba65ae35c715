//! The `process` command: the StartingForm's submission from the command line, then the
//! queue is driven until the run has ended.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use tokio::io::AsyncReadExt;

use crate::db::models::{Assay, AssayStatus, Person};
use crate::ingest::Extractor;
use crate::jobs::worker::run_pending_jobs;
use crate::submission::{self, IncomingFile, Submission, SubmitDeps, UploadLimits};
use crate::web::AppState;

pub struct Options {
    pub share_files: bool,
    pub overwrite: bool,
    pub extract_images: bool,
}

/// Read the first 8 KiB (for content sniffing) and the size of a file.
pub async fn incoming(path: PathBuf, original_name: String) -> anyhow::Result<IncomingFile> {
    let mut file = tokio::fs::File::open(&path).await.with_context(|| format!("opening {}", path.display()))?;
    let size = file.metadata().await?.len();
    let mut head = vec![0u8; 8192];
    let mut n = 0;
    while n < head.len() {
        let read = file.read(&mut head[n..]).await?;
        if read == 0 {
            break;
        }
        n += read;
    }
    head.truncate(n);
    Ok(IncomingFile { original_name, path, size, head })
}

pub async fn run(
    state: &AppState,
    assay_id: i32,
    paths: &[PathBuf],
    opts: Options,
    out: &mut impl Write,
) -> anyhow::Result<ExitCode> {
    let pool = state.pool.clone();
    let owner = tokio::task::spawn_blocking(move || -> anyhow::Result<Person> {
        Assay::owner(&mut *pool.get()?, assay_id).context("no such assay")
    })
    .await??;
    let mut files = Vec::new();
    for path in paths {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        files.push(incoming(path.clone(), name).await?);
    }
    let limits = UploadLimits::default();
    let checked = match submission::check_files(files, &limits) {
        Ok(checked) => checked,
        Err(problems) => {
            for p in problems {
                writeln!(out, "refused: {} {}", p.name, p.reason)?;
            }
            return Ok(ExitCode::FAILURE);
        }
    };
    let extractor = Extractor::from_env()?;
    let deps = SubmitDeps {
        pool: &state.pool,
        store: state.store.as_ref(),
        extractor: &extractor,
        workers: &state.workers,
        limits: &limits,
    };
    let sub = Submission {
        assay_id,
        uploader_id: owner.id,
        files: checked,
        share_files_for_development: opts.share_files,
        extract_images: opts.extract_images,
        overwrite: opts.overwrite,
        question_ids: None,
    };
    let submitted = submission::submit(&deps, sub).await?;
    for w in &submitted.warnings {
        writeln!(out, "warning: {w}")?;
    }
    writeln!(out, "scheduled job {} ({} file(s) stored)", submitted.job_id, submitted.stored.len())?;
    run_pending_jobs(&state.workers).await?;
    let pool = state.pool.clone();
    let (assay, answers) = tokio::task::spawn_blocking(move || -> anyhow::Result<(Assay, usize)> {
        let mut conn = pool.get()?;
        Ok((Assay::find(&mut conn, assay_id)?, crate::db::models::Answer::of_assay(&mut conn, assay_id)?.len()))
    })
    .await??;
    writeln!(out, "{}: {answers} answers", assay.status())?;
    for alert in assay.alerts() {
        writeln!(out, "alert: {alert}")?;
    }
    Ok(if assay.status() == AssayStatus::Done { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
