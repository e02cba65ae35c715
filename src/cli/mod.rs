//! The command line: `serve` (default) and the operator's commands. Each command builds the
//! application context the same way the server does and calls the same use cases.

pub mod accounts;
pub mod bench;
mod bench_http;
pub mod cleanup;
pub mod evaluate;
pub mod process;
pub mod verify;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::config::{self, Config, ExposeSecret};
use crate::context::AppContext;
use crate::db::models::person::PersonSpec;
use crate::{auth, questions, startup};

#[derive(Parser, Debug)]
#[command(name = "toxtemp", version, about = "ToxTempAssistant: draft ToxTemp answers from your documents")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the web server (the default). Migrates the database and, on the first start,
    /// imports the ToxTemp v1 questions and creates the ADMIN_EMAIL account.
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Create an account. The password comes from TOXTEMP_PASSWORD or an interactive prompt,
    /// never from the command line.
    CreateUser {
        /// Login email (case-insensitive).
        #[arg(long)]
        email: String,
        /// Display name.
        #[arg(long, default_value = "")]
        name: String,
        /// May use the admin pages.
        #[arg(long)]
        staff: bool,
        /// Staff with every permission.
        #[arg(long)]
        superuser: bool,
    },
    /// Set an account's password (from TOXTEMP_PASSWORD or a prompt). Ends every session
    /// of that person.
    SetPassword {
        #[arg(long)]
        email: String,
    },
    /// Deactivate an account: no more logins, every session ends. --reactivate undoes it.
    DeactivateUser {
        #[arg(long)]
        email: String,
        #[arg(long)]
        reactivate: bool,
    },
    /// Delete an account with its investigations, studies, assays, answers and the documents
    /// it kept (deleted from storage at once, each with an audit event). Without --yes only
    /// says what would be deleted.
    DeleteUser {
        #[arg(long)]
        email: String,
        #[arg(long)]
        yes: bool,
    },
    /// Delete stored files that no answer links to and that are older than --days days:
    /// their objects first, then their rows. Exits non-zero if any deletion failed (those
    /// rows are kept and retried next time).
    CleanupOrphanedFiles {
        /// Minimum age in days.
        #[arg(long, default_value_t = 7)]
        days: u32,
        /// Only list what would be deleted.
        #[arg(long)]
        dry_run: bool,
    },
    /// Draft an assay's answers from documents, as the StartingForm does, and wait until the
    /// run ends. With --share-files the documents are kept in storage (consent).
    Process {
        /// The assay to answer.
        #[arg(long)]
        assay: i32,
        /// Keep the documents in object storage, linked to the answers.
        #[arg(long)]
        share_files: bool,
        /// Replace existing answers.
        #[arg(long)]
        overwrite: bool,
        /// Describe images with the language model.
        #[arg(long)]
        extract_images: bool,
        /// The documents.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Compare the database with the bucket: missing objects, stray objects, size (and with
    /// --rehash content) mismatches, incomplete uploads. Exits 1 when anything is (still)
    /// wrong.
    VerifyStorage(verify::VerifyArgs),
    /// Benchmark sets and evaluation runs (see `toxtemp evaluate --help`).
    #[command(subcommand)]
    Evaluate(evaluate::EvaluateCommand),
    /// Time 77 questions against a fake OpenAI-compatible endpoint with a fixed latency.
    BenchLlm {
        #[arg(long, default_value_t = 200)]
        latency_ms: u64,
    },
    /// Extract the text of one document to stdout (used internally, in a child process with
    /// time and memory limits).
    #[command(hide = true)]
    ExtractText {
        #[arg(long)]
        kind: String,
        #[arg(long, default_value_t = 1024)]
        memory_mib: u64,
        #[arg(long, default_value_t = 2_000_001)]
        max_chars: usize,
        path: PathBuf,
    },
    /// Measure upload, ZIP and cleanup throughput against the configured storage (see README).
    Bench(bench::BenchArgs),
    /// Load a question template (ToxTemp JSON format) under a new label.
    ImportQuestions {
        /// The JSON file.
        path: PathBuf,
        /// A unique label, e.g. v2. Loading a label twice is refused.
        #[arg(long)]
        label: String,
        /// Name shown to users (defaults to the label).
        #[arg(long)]
        name: Option<String>,
    },
}

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let command = cli.command.unwrap_or(Command::Serve);
    if let Command::ExtractText { kind, memory_mib, max_chars, path } = &command {
        crate::ingest::run_child(kind, path, *memory_mib, *max_chars)?;
        return Ok(ExitCode::SUCCESS);
    }
    let config = Config::from_env()?;
    match command {
        Command::ExtractText { .. } => unreachable!("handled above"),
        Command::Serve => {
            let ctx = startup::prepare(config)?;
            actix_web::rt::System::new().block_on(startup::serve(ctx))?;
        }
        Command::Migrate => {
            AppContext::build(config)?;
            println!("database is up to date");
        }
        Command::CreateUser { email, name, staff, superuser } => {
            let ctx = AppContext::build(config)?;
            let password = read_password()?;
            let spec = PersonSpec { email: &email, display_name: &name, is_staff: staff, is_superuser: superuser };
            let person = auth::create_account(&mut *ctx.pool.get()?, &spec, password.expose_secret())?;
            let role = match (person.is_superuser, person.is_staff) {
                (true, _) => "superuser",
                (false, true) => "staff",
                (false, false) => "user",
            };
            println!("created {role} account {}", person.email);
        }
        Command::SetPassword { email } => {
            let ctx = AppContext::build(config)?;
            accounts::set_password(&ctx, &email, read_password()?.expose_secret())?;
            println!("password changed; every session of {email} ended");
        }
        Command::DeactivateUser { email, reactivate } => {
            let ctx = AppContext::build(config)?;
            accounts::set_active(&ctx, &email, reactivate)?;
            println!("{email} {}", if reactivate { "reactivated" } else { "deactivated; every session ended" });
        }
        Command::DeleteUser { email, yes } => {
            let ctx = AppContext::build(config)?;
            return block_on(accounts::delete(&ctx, &email, yes, &mut std::io::stdout()))?;
        }
        Command::CleanupOrphanedFiles { days, dry_run } => {
            let ctx = AppContext::build(config)?;
            return block_on(cleanup::run(&ctx, days, dry_run, &mut std::io::stdout()))?;
        }
        Command::Process { assay, share_files, overwrite, extract_images, files } => {
            let ctx = startup::prepare(config)?;
            let options = process::Options { share_files, overwrite, extract_images };
            return block_on(process::run(&ctx, assay, &files, options, &mut std::io::stdout()))?;
        }
        Command::VerifyStorage(args) => {
            let ctx = AppContext::build(config)?;
            return block_on(verify::run(&ctx, args, &mut std::io::stdout()))?;
        }
        Command::Evaluate(command) => {
            let ctx = startup::prepare(config)?;
            return block_on(evaluate::run(&ctx, command, &mut std::io::stdout()))?;
        }
        Command::BenchLlm { latency_ms } => {
            block_on(bench::llm(&config, std::time::Duration::from_millis(latency_ms)))??;
        }
        Command::Bench(args) => block_on(async {
            let bench = bench::prepare(&config).await?;
            if !args.http_only {
                bench::storage_phases(&config, &bench, &args).await?;
            }
            bench_http::run(&config, bench.store.clone(), &bench.dir.path().join("http"), &args).await
        })??,
        Command::ImportQuestions { path, label, name } => {
            let json = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
            let ctx = AppContext::build(config)?;
            let display = name.unwrap_or_else(|| label.clone());
            let summary = questions::import(&mut *ctx.pool.get()?, &json, &label, &display)?;
            println!(
                "imported question set {label:?}: {} sections, {} subsections, {} questions",
                summary.sections, summary.subsections, summary.questions
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Run an async command on a fresh runtime.
fn block_on<F: std::future::Future>(future: F) -> anyhow::Result<F::Output> {
    Ok(tokio::runtime::Runtime::new()?.block_on(future))
}

/// TOXTEMP_PASSWORD, or ask twice on the terminal.
fn read_password() -> anyhow::Result<config::SecretString> {
    if let Some(pw) = config::password_from_env() {
        return Ok(pw);
    }
    let first =
        rpassword::prompt_password("Password: ").context("no terminal to ask for a password: set TOXTEMP_PASSWORD")?;
    let second = rpassword::prompt_password("Password (again): ")?;
    anyhow::ensure!(first == second, "the passwords differ");
    Ok(first.into())
}
