//! Evaluation runs: a set × a provider configuration, run as a durable job in the same queue
//! as drafting. A run reads each case's documents from storage (SHA-256 checked on read),
//! asks every question the way drafting does (`drafting::Asking`: rounds, earlier answers,
//! checked citations), scores each answer against its gold answer ([`super::metrics`]) and
//! writes only its own rows: it never touches users' answers, their files' links or their
//! assays.
//!
//! Consent holds during a run: a file is read only while it is `available`, and before every
//! question the run checks its case's files again — a file withdrawn mid-way is left out of
//! the remaining questions, and the run says so in its notes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};

use super::metrics;
use super::sets::SetError;
use crate::config::LlmConfig;
use crate::context::AppContext;
use crate::db::models::{
    BenchmarkItem, BenchmarkSet, EvaluationAnswer, EvaluationRun, FileAsset, FileAssetId, FileAssetStatus, GoldAnswer,
    NewEvaluationAnswer, NewRun, RunStatus,
};
use crate::db::schema::file_assets;
use crate::db::write_transaction;
use crate::drafting::{self, Asked, Asking, EarlierAnswer, EarlierAnswers, QuestionInfo, RunDocument};
use crate::jobs::{BackgroundJob, GiveUp};
use crate::llm::openai::OpenAiCompatible;
use crate::llm::{Document, LlmError, LlmProvider, offline::OfflineProvider, prompt};

/// The job's name in the queue.
pub const EVALUATE_RUN: &str = "evaluate_run";

/// The prompts a run can measure: the one drafting uses, and the same without the answers of
/// earlier rounds (to see what they are worth).
pub const PROMPT_VERSIONS: [&str; 2] = [prompt::VERSION, prompt::VERSION_WITHOUT_EARLIER_ROUNDS];

/// Largest number of questions a run asks at once.
pub const MAX_CONCURRENCY: i32 = 16;

/// Evaluate one run (all of its set).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EvaluateRun {
    pub run_id: i32,
}

pub fn run_subject(run_id: i32) -> String {
    format!("evaluation:{run_id}")
}

/// What someone asks for when starting a run (from the staff page or the CLI).
#[derive(Clone, Debug, Default)]
pub struct RunRequest {
    pub label: String,
    /// Empty: the offline provider.
    pub base_url: String,
    pub model: String,
    pub prompt_version: String,
    pub concurrency: i32,
    pub price_prompt_per_mtok: Option<f64>,
    pub price_completion_per_mtok: Option<f64>,
}

impl RunRequest {
    fn check(self) -> Result<NewRun, SetError> {
        let invalid = |m: &str| Err(SetError::Invalid(m.to_owned()));
        let base_url = Some(self.base_url.trim().trim_end_matches('/').to_owned()).filter(|u| !u.is_empty());
        if let Some(url) = &base_url {
            let parsed = reqwest::Url::parse(url);
            if !parsed.is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some()) {
                return invalid("The base URL must be an http(s) address, e.g. https://api.openai.com/v1.");
            }
        }
        let model = self.model.trim().to_owned();
        if base_url.is_some() && model.is_empty() {
            return invalid("Name the model to ask.");
        }
        let prompt_version = if self.prompt_version.trim().is_empty() {
            prompt::VERSION.to_owned()
        } else {
            self.prompt_version.trim().to_owned()
        };
        if !PROMPT_VERSIONS.contains(&prompt_version.as_str()) {
            return invalid("Choose one of the prompt versions offered.");
        }
        if !(1..=MAX_CONCURRENCY).contains(&self.concurrency) {
            return invalid("Concurrency must be between 1 and 16.");
        }
        let prices = [self.price_prompt_per_mtok, self.price_completion_per_mtok];
        if prices.iter().flatten().any(|p| !p.is_finite() || *p < 0.0) {
            return invalid("Prices must be positive numbers (USD per million tokens).");
        }
        if self.label.chars().count() > 200 {
            return invalid("The label is too long (at most 200 characters).");
        }
        let label = match self.label.trim() {
            "" => match &base_url {
                None => "offline".to_owned(),
                Some(_) => model.clone(),
            },
            label => label.to_owned(),
        };
        Ok(NewRun {
            label,
            model: if base_url.is_none() { "offline".to_owned() } else { model },
            base_url,
            prompt_version,
            concurrency: self.concurrency,
            price_prompt_per_mtok: self.price_prompt_per_mtok,
            price_completion_per_mtok: self.price_completion_per_mtok,
        })
    }
}

/// Create the run and queue it, in one transaction.
pub async fn start(
    ctx: &AppContext,
    set_id: i32,
    request: RunRequest,
    created_by: Option<i32>,
) -> Result<EvaluationRun, SetError> {
    let new = request.check()?;
    let run = ctx
        .db(move |c| {
            write_transaction(c, |c| {
                BenchmarkSet::find(c, set_id)
                    .map_err(|_| SetError::Invalid("That benchmark set does not exist.".into()))?;
                let run = EvaluationRun::create(c, set_id, &new, created_by)?;
                crate::jobs::enqueue(c, &EvaluateRun { run_id: run.id })?;
                Ok::<_, SetError>(run)
            })
        })
        .await?;
    ctx.queue.wake();
    Ok(run)
}

#[async_trait]
impl BackgroundJob for EvaluateRun {
    const JOB_NAME: &'static str = EVALUATE_RUN;
    const MAX_ATTEMPTS: i32 = 2;
    type Context = AppContext;

    fn subject(&self) -> Option<String> {
        Some(run_subject(self.run_id))
    }

    async fn run(self, ctx: &AppContext) -> anyhow::Result<()> {
        evaluate(ctx, self.run_id).await
    }

    async fn given_up(ctx: &AppContext, subject: Option<&str>, why: &GiveUp) -> anyhow::Result<()> {
        let Some(run_id) = subject.and_then(|s| s.strip_prefix("evaluation:")).and_then(|id| id.parse().ok()) else {
            return Ok(());
        };
        let note = match why {
            GiveUp::Failed { attempts, reference } => {
                format!("The run failed {attempts} times and was given up (reference {reference}).")
            }
            GiveUp::Stalled => "The run stopped unexpectedly several times and was given up.".to_owned(),
        };
        ctx.db(move |c| {
            if EvaluationRun::find(c, run_id).is_ok() {
                EvaluationRun::add_note(c, run_id, &note)?;
                EvaluationRun::finished(c, run_id, RunStatus::Error)?;
            }
            Ok::<_, anyhow::Error>(())
        })
        .await
    }
}

/// The provider a run asks: the offline one, or an OpenAI-compatible endpoint. The API key
/// configured for the app goes only to the app's own endpoint, never to another host.
pub fn provider_for(app: &LlmConfig, run: &EvaluationRun) -> anyhow::Result<Arc<dyn LlmProvider>> {
    let Some(base_url) = &run.base_url else { return Ok(Arc::new(OfflineProvider::default())) };
    let same_endpoint = app.base_url.as_deref().map(|u| u.trim_end_matches('/')) == Some(base_url.as_str());
    let key = if same_endpoint { app.api_key.clone() } else { None };
    let config = LlmConfig {
        azure_api_version: if same_endpoint { app.azure_api_version.clone() } else { None },
        ..app.for_endpoint(base_url.clone(), run.model.clone(), key)
    };
    Ok(Arc::new(OpenAiCompatible::new(&config)?))
}

/// The embeddings endpoint for cosine similarity, when the app has one configured.
struct Embedder {
    client: OpenAiCompatible,
    model: String,
}

impl Embedder {
    fn from_config(app: &LlmConfig) -> Option<Self> {
        let model = app.embeddings_model.clone()?;
        app.base_url.as_ref()?;
        OpenAiCompatible::new(app).ok().map(|client| Self { client, model })
    }

    async fn cosine(&self, answer: &str, gold: &str) -> Option<f64> {
        let texts = vec![metrics::without_citations(answer), metrics::without_citations(gold)];
        match self.client.embed(&self.model, &texts).await {
            Ok(vectors) => metrics::cosine(&vectors[0], &vectors[1]),
            Err(err) => {
                tracing::warn!(error = %err, "embeddings failed; no cosine for this answer");
                None
            }
        }
    }
}

/// Everything an evaluation needs, loaded once.
struct Plan {
    run: EvaluationRun,
    set: BenchmarkSet,
    items: Vec<BenchmarkItem>,
    questions: Vec<QuestionInfo>,
}

async fn evaluate(ctx: &AppContext, run_id: i32) -> anyhow::Result<()> {
    let plan = ctx
        .db(move |c| {
            write_transaction(c, |c| {
                let Ok(run) = EvaluationRun::find(c, run_id) else { return Ok(None) };
                let set = BenchmarkSet::find(c, run.set_id)?;
                let items = BenchmarkSet::items(c, set.id)?;
                let questions = drafting::load_set(c, set.question_set_id)?;
                // Another attempt after a crash starts again from scratch.
                EvaluationRun::clear_answers(c, run_id)?;
                EvaluationRun::started(c, run_id)?;
                Ok::<_, anyhow::Error>(Some(Plan { run, set, items, questions }))
            })
        })
        .await?;
    let Some(plan) = plan else {
        tracing::info!(run = run_id, "evaluation run deleted before it started");
        return Ok(());
    };
    let evaluation = Evaluation {
        ctx,
        provider: provider_for(&ctx.config.llm, &plan.run)?,
        embedder: Embedder::from_config(&ctx.config.llm),
        run: &plan.run,
        set: &plan.set,
        questions: &plan.questions,
    };
    let (mut asked, mut failed) = (0, 0);
    for item in &plan.items {
        let (a, f) = evaluation.item(item).await?;
        asked += a;
        failed += f;
    }
    let status = if asked > 0 && failed == asked { RunStatus::Error } else { RunStatus::Done };
    ctx.db(move |c| {
        if failed > 0 {
            let note = format!("{failed} of {asked} questions got no answer from the model.");
            EvaluationRun::add_note(c, run_id, &note)?;
        }
        if asked == 0 {
            EvaluationRun::add_note(c, run_id, "No case could be evaluated.")?;
        }
        EvaluationRun::finished(c, run_id, if asked == 0 { RunStatus::Error } else { status })?;
        Ok::<_, anyhow::Error>(())
    })
    .await?;
    tracing::info!(run = run_id, asked, failed, "evaluation run finished");
    Ok(())
}

struct Evaluation<'a> {
    ctx: &'a AppContext,
    provider: Arc<dyn LlmProvider>,
    embedder: Option<Embedder>,
    run: &'a EvaluationRun,
    set: &'a BenchmarkSet,
    questions: &'a [QuestionInfo],
}

impl Evaluation<'_> {
    async fn note(&self, note: String) -> anyhow::Result<()> {
        let run_id = self.run.id;
        self.ctx.db(move |c| Ok::<_, anyhow::Error>(EvaluationRun::add_note(c, run_id, &note)?)).await?;
        Ok(())
    }

    /// Ask every question of one case; returns (questions asked, of which failed).
    async fn item(&self, item: &BenchmarkItem) -> anyhow::Result<(usize, usize)> {
        if item.withdrawn_at.is_some() {
            self.note(format!("“{}”: its owner deleted the assay; the case was left out.", item.title)).await?;
            return Ok((0, 0));
        }
        let item_id = item.id;
        let (files, gold) = self
            .ctx
            .db(move |c| Ok::<_, anyhow::Error>((BenchmarkItem::files(c, item_id)?, BenchmarkItem::gold(c, item_id)?)))
            .await?;
        let gold: HashMap<i32, GoldAnswer> = gold.into_iter().map(|g| (g.question_id, g)).collect();
        let documents = self.read_documents(item, &files).await?;
        if documents.is_empty() {
            self.note(format!("“{}”: no document could be read; the case was left out.", item.title)).await?;
            return Ok((0, 0));
        }
        let (documents, cut) = drafting::fit_context(documents, self.provider.context_chars());
        if let Some(cut) = cut {
            self.note(format!("“{}”: {cut}", item.title)).await?;
        }
        let live = LiveDocuments::new(documents);
        let earlier_rounds = self.run.prompt_version != prompt::VERSION_WITHOUT_EARLIER_ROUNDS;
        let mut earlier = EarlierAnswers::new();
        let (mut asked, mut failed) = (0, 0);
        for round in 1..=3 {
            let batch: Vec<QuestionInfo> = self.questions.iter().filter(|q| q.row.round == round).cloned().collect();
            if batch.is_empty() {
                continue;
            }
            let earlier_now = &earlier;
            let answers: Vec<(QuestionInfo, Result<Asked, LlmError>)> = futures_util::stream::iter(batch)
                .map(|q| {
                    let live = &live;
                    async move {
                        let (documents, for_model) = match live.current(self, item).await {
                            Ok(now) => now,
                            Err(err) => return (q, Err(LlmError::Transport(err.to_string()))),
                        };
                        let asking = Asking {
                            provider: self.provider.as_ref(),
                            retry: &self.ctx.config.pipeline.retry,
                            assay_title: &item.title,
                            assay_description: &item.scope,
                            documents: &documents,
                            for_model,
                            earlier_rounds,
                        };
                        let result = asking.ask(&q, earlier_now).await;
                        (q, result)
                    }
                })
                .buffer_unordered(self.run.concurrency.max(1) as usize)
                .collect()
                .await;
            let mut rows = Vec::new();
            for (q, result) in &answers {
                let scored = self.score(item.id, q.row.id, result, gold.get(&q.row.id)).await;
                asked += 1;
                failed += usize::from(scored.failed);
                rows.push(scored);
            }
            for (q, result) in answers {
                if let Ok(a) = result {
                    earlier.entry(q.row.subsection_id).or_default().push(EarlierAnswer {
                        question_id: q.row.id,
                        subsection_title: q.row.subsection.clone(),
                        citations: a.evidence.iter().map(Into::into).collect(),
                        text: a.text,
                    });
                }
            }
            let run_id = self.run.id;
            self.ctx
                .db(move |c| {
                    write_transaction(c, |c| {
                        let (mut prompt, mut completion) = (0, 0);
                        for row in &rows {
                            EvaluationAnswer::insert(c, row)?;
                            prompt += row.prompt_tokens;
                            completion += row.completion_tokens;
                        }
                        EvaluationRun::add_usage(c, run_id, prompt, completion)?;
                        Ok::<_, anyhow::Error>(())
                    })
                })
                .await?;
        }
        Ok((asked, failed))
    }

    /// Score one answer against its gold answer (see [`super::metrics`] for how).
    async fn score(
        &self,
        item_id: i32,
        question_id: i32,
        result: &Result<Asked, LlmError>,
        gold: Option<&GoldAnswer>,
    ) -> NewEvaluationAnswer {
        let gold_abstained =
            if self.set.out_of_scope { Some(true) } else { gold.map(|g| metrics::is_abstention(&g.text)) };
        let mut row = NewEvaluationAnswer {
            run_id: self.run.id,
            item_id,
            question_id,
            text: String::new(),
            evidence: "[]".into(),
            failed: true,
            abstained: false,
            gold_abstained,
            token_f1: None,
            rouge_l: None,
            cosine: None,
            citations: 0,
            verified_citations: 0,
            cited_file_agreement: None,
            prompt_tokens: 0,
            completion_tokens: 0,
        };
        let Ok(asked) = result else { return row };
        row.failed = false;
        row.text = asked.text.clone();
        row.abstained = metrics::is_abstention(&asked.text);
        row.prompt_tokens = asked.usage.prompt_tokens;
        row.completion_tokens = asked.usage.completion_tokens;
        row.citations = asked.evidence.len() as i32;
        row.verified_citations = asked.evidence.iter().filter(|e| e.verified).count() as i32;
        let records: Vec<super::CitationRecord> = asked.evidence.iter().map(super::CitationRecord::from).collect();
        row.evidence = serde_json::to_string(&records).unwrap_or_else(|_| "[]".into());
        let Some(gold) = gold.filter(|_| !row.abstained && gold_abstained == Some(false)) else { return row };
        row.token_f1 = Some(metrics::token_f1(&asked.text, &gold.text));
        row.rouge_l = Some(metrics::rouge_l(&asked.text, &gold.text));
        let mut cited: Vec<String> = Vec::new();
        for e in asked.evidence.iter().filter(|e| e.verified) {
            if !cited.contains(&e.document_name) {
                cited.push(e.document_name.clone());
            }
        }
        row.cited_file_agreement = metrics::cited_file_agreement(&cited, &gold.cited_documents());
        if let Some(embedder) = &self.embedder {
            row.cosine = embedder.cosine(&asked.text, &gold.text).await;
        }
        row
    }

    /// Read each available file of a case back from storage (SHA-256 checked); files that are
    /// not available, unreadable or changed are left out with a note.
    async fn read_documents(&self, item: &BenchmarkItem, files: &[FileAsset]) -> anyhow::Result<Vec<RunDocument>> {
        let mut documents = Vec::new();
        for file in files {
            match drafting::read_kept(self.ctx, file).await {
                Ok(text) => documents.push(RunDocument {
                    document: Document { name: file.original_filename.clone(), passages: text.passages() },
                    file_asset_id: Some(file.id.clone()),
                }),
                Err(problem) => self.note(format!("“{}”: {problem}", item.title)).await?,
            }
        }
        Ok(documents)
    }
}

/// A case's documents as the questions see them: before each question the files' status is
/// checked, and a withdrawn file's document is dropped from the rest of the run.
struct LiveDocuments {
    now: Mutex<Snapshot>,
}

/// The documents as the run holds them, and as the model sees them.
type Snapshot = (Arc<Vec<RunDocument>>, Arc<Vec<Document>>);

impl LiveDocuments {
    fn new(documents: Vec<RunDocument>) -> Self {
        let for_model = documents.iter().map(|d| d.document.clone()).collect();
        Self { now: Mutex::new((Arc::new(documents), Arc::new(for_model))) }
    }

    async fn current(&self, evaluation: &Evaluation<'_>, item: &BenchmarkItem) -> anyhow::Result<Snapshot> {
        let snapshot = self.now.lock().map_err(|_| anyhow::anyhow!("poisoned"))?.clone();
        let ids: Vec<FileAssetId> = snapshot.0.iter().filter_map(|d| d.file_asset_id.clone()).collect();
        let gone: Vec<FileAssetId> = evaluation
            .ctx
            .db(move |c| {
                use diesel::prelude::*;
                Ok::<_, anyhow::Error>(
                    file_assets::table
                        .filter(file_assets::id.eq_any(&ids))
                        .filter(file_assets::status.ne(FileAssetStatus::Available))
                        .select(file_assets::id)
                        .load::<FileAssetId>(c)?,
                )
            })
            .await?;
        if gone.is_empty() {
            return Ok(snapshot);
        }
        let (kept, dropped): (Vec<RunDocument>, Vec<RunDocument>) =
            snapshot.0.iter().cloned().partition(|d| d.file_asset_id.as_ref().is_none_or(|id| !gone.contains(id)));
        let for_model = Arc::new(kept.iter().map(|d| d.document.clone()).collect());
        let fresh = (Arc::new(kept), for_model);
        *self.now.lock().map_err(|_| anyhow::anyhow!("poisoned"))? = fresh.clone();
        for d in dropped {
            evaluation
                .note(format!(
                    "“{}”: {} was withdrawn during the run; the remaining questions did not use it.",
                    item.title, d.document.name
                ))
                .await?;
        }
        Ok(fresh)
    }
}
