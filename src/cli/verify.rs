//! `toxtemp verify-storage`: prove every stored byte (see `fileops::verify`).

use std::io::Write;
use std::process::ExitCode;

use crate::context::AppContext;
use crate::fileops::{self, VerifyOptions};

#[derive(clap::Args, Debug, Clone)]
pub struct VerifyArgs {
    /// Read the kept objects back and compare their SHA-256 (streamed, a few at a time).
    #[arg(long)]
    pub rehash: bool,
    /// With --rehash: the share of kept files read back (1–100).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u8).range(1..=100))]
    pub sample: u8,
    /// Delete stray objects and abort incomplete uploads older than the grace period; mark
    /// files whose object is missing as lost (an audit event each).
    #[arg(long)]
    pub repair: bool,
    /// Repair even when more than a tenth (and more than ten) of the files are missing, or of
    /// the objects stray — which usually means the wrong bucket, key prefix or database.
    #[arg(long, requires = "repair")]
    pub force: bool,
    /// Stray objects and incomplete uploads younger than this are left alone.
    #[arg(long, default_value_t = 24)]
    pub grace_hours: i64,
    /// The report as JSON.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(ctx: &AppContext, args: VerifyArgs, out: &mut impl Write) -> anyhow::Result<ExitCode> {
    let options = VerifyOptions {
        rehash: args.rehash,
        sample_percent: args.sample,
        repair: args.repair,
        force: args.force,
        grace: chrono::Duration::hours(args.grace_hours.max(0)),
    };
    let report = fileops::verify_storage(&ctx.pool, ctx.store.as_ref(), &options).await?;
    if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
    } else {
        for f in &report.findings {
            writeln!(
                out,
                "{:<18} {:<48} {:<30} {}{}",
                f.kind.as_str(),
                f.key,
                f.name.as_deref().unwrap_or("-"),
                f.detail,
                if f.repaired { " [repaired]" } else { "" }
            )?;
        }
        let state = if report.findings.is_empty() {
            "all good".to_owned()
        } else {
            let unrepaired = report.findings.iter().filter(|f| !f.repaired).count();
            format!("{} finding(s), {unrepaired} unrepaired", report.findings.len())
        };
        writeln!(
            out,
            "checked {} file(s) and {} object(s), {} bytes, {} rehashed: {state}",
            report.files, report.objects, report.bytes, report.rehashed
        )?;
    }
    Ok(if report.is_clean() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
