//! The command line: `serve` (default), `migrate`, `create-user`, `import-questions`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::config::Config;
use crate::db::models::person::PersonSpec;
use crate::{auth, cleanup, db, questions, server, storage};

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
    Bench(crate::bench::BenchArgs),
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
            let state = server::prepare(config)?;
            actix_web::rt::System::new().block_on(server::serve(state))?;
        }
        Command::Migrate => {
            let pool = db::connect(&config.database)?;
            db::run_migrations(&mut *pool.get()?)?;
            println!("database is up to date");
        }
        Command::CreateUser { email, name, staff, superuser } => {
            let pool = db::connect(&config.database)?;
            let mut conn = pool.get()?;
            db::run_migrations(&mut conn)?;
            let password = read_password()?;
            let spec = PersonSpec { email: &email, display_name: &name, is_staff: staff, is_superuser: superuser };
            let person = auth::create_account(&mut conn, &spec, &password)?;
            let role = if person.is_superuser {
                "superuser"
            } else if person.is_staff {
                "staff"
            } else {
                "user"
            };
            println!("created {role} account {}", person.email);
        }
        Command::CleanupOrphanedFiles { days, dry_run } => {
            let pool = db::connect(&config.database)?;
            db::run_migrations(&mut *pool.get()?)?;
            let store = storage::from_config(&config.storage)?;
            let runtime = tokio::runtime::Runtime::new()?;
            return runtime.block_on(cleanup::run(&pool, store.as_ref(), days, dry_run, &mut std::io::stdout()));
        }
        Command::Process { assay, share_files, overwrite, extract_images, files } => {
            let state = server::prepare(config)?;
            let runtime = tokio::runtime::Runtime::new()?;
            let options = crate::process::Options { share_files, overwrite, extract_images };
            return runtime.block_on(crate::process::run(&state, assay, &files, options, &mut std::io::stdout()));
        }
        Command::BenchLlm { latency_ms } => {
            let runtime = tokio::runtime::Runtime::new()?;
            runtime.block_on(crate::bench::llm(&config, std::time::Duration::from_millis(latency_ms)))?;
        }
        Command::Bench(args) => {
            let runtime = tokio::runtime::Runtime::new()?;
            runtime.block_on(crate::bench::run(&config, args))?;
        }
        Command::ImportQuestions { path, label, name } => {
            let json = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
            let pool = db::connect(&config.database)?;
            let mut conn = pool.get()?;
            db::run_migrations(&mut conn)?;
            let display = name.unwrap_or_else(|| label.clone());
            let summary = questions::import(&mut conn, &json, &label, &display)?;
            println!(
                "imported question set {label:?}: {} sections, {} subsections, {} questions",
                summary.sections, summary.subsections, summary.questions
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// TOXTEMP_PASSWORD, or ask twice on the terminal.
fn read_password() -> anyhow::Result<String> {
    if let Ok(pw) = std::env::var("TOXTEMP_PASSWORD") {
        return Ok(pw);
    }
    let first =
        rpassword::prompt_password("Password: ").context("no terminal to ask for a password: set TOXTEMP_PASSWORD")?;
    let second = rpassword::prompt_password("Password (again): ")?;
    anyhow::ensure!(first == second, "the passwords differ");
    Ok(first)
}
