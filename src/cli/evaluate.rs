//! `toxtemp evaluate …`: benchmark sets and evaluation runs from the command line, the same
//! use cases as the staff pages. `run` waits for its run and exits non-zero when it failed or
//! questions went unanswered, so it can guard a CI pipeline.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;

use crate::benchmark::{self, FolderImport, NewSet, RunReport, RunRequest, SetError, Summary};
use crate::context::AppContext;
use crate::db::models::{BenchmarkSet, EvaluationRun, QuestionSet, RunStatus};

#[derive(Subcommand, Debug)]
pub enum EvaluateCommand {
    /// List the benchmark sets and their runs.
    List,
    /// Freeze a set from assays with kept documents (their accepted answers become the gold).
    CreateSet {
        #[arg(long)]
        name: String,
        /// An assay to include (repeat for more).
        #[arg(long = "assay", required = true)]
        assays: Vec<i32>,
        #[arg(long, default_value = "")]
        description: String,
        /// A negative control: every answer should abstain.
        #[arg(long)]
        out_of_scope: bool,
    },
    /// Import a folder as a set: documents and a gold.json (our JSON export), or one
    /// sub-folder of those per case.
    ImportSet {
        #[arg(long)]
        name: String,
        #[arg(long)]
        dir: PathBuf,
        /// The question set's label (default: the first one loaded).
        #[arg(long)]
        question_set: Option<String>,
        #[arg(long, default_value = "")]
        description: String,
        #[arg(long)]
        out_of_scope: bool,
    },
    /// Run a set with a provider, wait for the end and print the metrics.
    Run {
        #[arg(long)]
        set: i32,
        /// An OpenAI-compatible base URL; without it, the offline provider.
        #[arg(long, default_value = "")]
        base_url: String,
        #[arg(long, default_value = "")]
        model: String,
        #[arg(long, default_value = "")]
        prompt_version: String,
        #[arg(long, default_value_t = 4)]
        concurrency: i32,
        #[arg(long, default_value = "")]
        label: String,
        /// USD per million prompt tokens (for the cost).
        #[arg(long)]
        price_prompt: Option<f64>,
        /// USD per million completion tokens.
        #[arg(long)]
        price_completion: Option<f64>,
    },
    /// Print a run's metrics (or its per-question results as CSV or JSON).
    Show {
        #[arg(long)]
        run: i32,
        #[arg(long)]
        csv: bool,
        #[arg(long)]
        json: bool,
    },
    /// Print runs of one set side by side.
    Compare {
        #[arg(long = "run", required = true)]
        runs: Vec<i32>,
    },
}

pub async fn run(ctx: &AppContext, command: EvaluateCommand, out: &mut impl Write) -> anyhow::Result<ExitCode> {
    match command {
        EvaluateCommand::List => list(ctx, out).await,
        EvaluateCommand::CreateSet { name, assays, description, out_of_scope } => {
            let new = NewSet { name, description, out_of_scope, created_by: None };
            created(benchmark::freeze_from_assays(ctx, new, assays).await, out)
        }
        EvaluateCommand::ImportSet { name, dir, question_set, description, out_of_scope } => {
            let question_set_id = ctx
                .db(move |c| {
                    let sets = QuestionSet::all(c)?;
                    let chosen = match &question_set {
                        Some(label) => sets.into_iter().find(|s| &s.label == label),
                        None => sets.into_iter().next(),
                    };
                    chosen.map(|s| s.id).context("no such question set (see import-questions)")
                })
                .await?;
            let new = NewSet { name, description, out_of_scope, created_by: None };
            created(benchmark::import_folder(ctx, FolderImport { new, dir, question_set_id }).await, out)
        }
        EvaluateCommand::Run {
            set,
            base_url,
            model,
            prompt_version,
            concurrency,
            label,
            price_prompt,
            price_completion,
        } => {
            let request = RunRequest {
                label,
                base_url,
                model,
                prompt_version,
                concurrency,
                price_prompt_per_mtok: price_prompt,
                price_completion_per_mtok: price_completion,
            };
            let run = match benchmark::start(ctx, set, request, None).await {
                Ok(run) => run,
                Err(SetError::Invalid(message)) => {
                    writeln!(out, "refused: {message}")?;
                    return Ok(ExitCode::FAILURE);
                }
                Err(SetError::Internal(err)) => return Err(err),
            };
            writeln!(out, "run {} started", run.id)?;
            let report = wait_for(ctx, run.id).await?;
            print_report(&report, out)?;
            let failed = report.run.status() != RunStatus::Done || report.overall.failed > 0;
            Ok(if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS })
        }
        EvaluateCommand::Show { run, csv, json } => {
            let report = ctx.db(move |c| Ok::<_, anyhow::Error>(benchmark::run_report(c, run)?)).await?;
            if csv {
                write!(out, "{}", benchmark::csv(&report))?;
            } else if json {
                writeln!(out, "{}", serde_json::to_string_pretty(&benchmark::json(&report))?)?;
            } else {
                print_report(&report, out)?;
            }
            Ok(ExitCode::SUCCESS)
        }
        EvaluateCommand::Compare { runs } => {
            let first = runs[0];
            let set_id = ctx.db(move |c| Ok::<_, anyhow::Error>(EvaluationRun::find(c, first)?.set_id)).await?;
            let comparison = ctx
                .db(move |c| benchmark::compare(c, set_id, &runs).context("the runs must belong to one set"))
                .await?;
            let labels: Vec<String> =
                comparison.reports.iter().map(|r| format!("#{} {}", r.run.id, r.run.label)).collect();
            writeln!(out, "{:<26}{}", "metric", labels.iter().map(|l| format!("{l:>22}")).collect::<String>())?;
            for (label, read) in table_rows() {
                let values: String = comparison.reports.iter().map(|r| format!("{:>22}", read(&r.overall))).collect();
                writeln!(out, "{label:<26}{values}")?;
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn created(result: Result<BenchmarkSet, SetError>, out: &mut impl Write) -> anyhow::Result<ExitCode> {
    match result {
        Ok(set) => {
            writeln!(out, "created benchmark set {} “{}”", set.id, set.name)?;
            Ok(ExitCode::SUCCESS)
        }
        Err(SetError::Invalid(message)) => {
            writeln!(out, "refused: {message}")?;
            Ok(ExitCode::FAILURE)
        }
        Err(SetError::Internal(err)) => Err(err),
    }
}

async fn list(ctx: &AppContext, out: &mut impl Write) -> anyhow::Result<ExitCode> {
    let sets = ctx
        .db(|c| {
            let mut sets = Vec::new();
            for set in BenchmarkSet::all(c)? {
                let runs = EvaluationRun::of_set(c, set.id)?;
                sets.push((set, runs));
            }
            Ok::<_, anyhow::Error>(sets)
        })
        .await?;
    if sets.is_empty() {
        writeln!(out, "no benchmark sets")?;
    }
    for (set, runs) in sets {
        let kind = if set.out_of_scope { "out of scope" } else { "gold" };
        writeln!(out, "set {} “{}” ({kind})", set.id, set.name)?;
        for run in runs {
            writeln!(out, "  run {} {} · {} · {}", run.id, run.label, run.provider(), run.status)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Drive the queue here until the run has ended (a server may be running it instead).
async fn wait_for(ctx: &AppContext, run_id: i32) -> anyhow::Result<RunReport> {
    loop {
        crate::startup::run_pending_jobs(ctx).await?;
        let report = ctx.db(move |c| Ok::<_, anyhow::Error>(benchmark::run_report(c, run_id)?)).await?;
        if matches!(report.run.status(), RunStatus::Done | RunStatus::Error) {
            return Ok(report);
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
}

fn pct(value: Option<f64>) -> String {
    value.map(|v| format!("{:.1} %", v * 100.0)).unwrap_or_else(|| "–".into())
}

fn score(value: Option<f64>) -> String {
    value.map(|v| format!("{v:.3}")).unwrap_or_else(|| "–".into())
}

type Row = (&'static str, fn(&Summary) -> String);

fn table_rows() -> [Row; 10] {
    [
        ("questions", |s| s.questions.to_string()),
        ("without answer", |s| s.failed.to_string()),
        ("completeness", |s| pct(s.completeness)),
        ("abstention agreement", |s| pct(s.abstention_agreement)),
        ("specificity", |s| pct(s.specificity)),
        ("token F1", |s| score(s.token_f1)),
        ("ROUGE-L", |s| score(s.rouge_l)),
        ("cosine", |s| score(s.cosine)),
        ("citations verified", |s| pct(s.citation_verification)),
        ("cited-file agreement", |s| score(s.cited_file_agreement)),
    ]
}

fn print_report(report: &RunReport, out: &mut impl Write) -> anyhow::Result<()> {
    let run = &report.run;
    writeln!(out, "run {} “{}” on set {} “{}”: {}", run.id, run.label, report.set.id, report.set.name, run.status)?;
    writeln!(out, "provider: {} · prompt {}", run.provider(), run.prompt_version)?;
    for (label, read) in table_rows() {
        writeln!(out, "{label:<24}{:>12}", read(&report.overall))?;
    }
    writeln!(out, "{:<24}{:>12}", "tokens", run.prompt_tokens + run.completion_tokens)?;
    if let Some(cost) = run.cost() {
        writeln!(out, "{:<24}{:>12}", "cost (USD)", format!("{cost:.4}"))?;
    }
    if let Some(seconds) = run.wall_seconds() {
        writeln!(out, "{:<24}{:>12}", "wall time (s)", format!("{seconds:.1}"))?;
    }
    for note in run.notes() {
        writeln!(out, "note: {note}")?;
    }
    Ok(())
}
