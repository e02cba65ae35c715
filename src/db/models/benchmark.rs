//! Benchmarks in the database: sets of cases (documents + gold answers), evaluation runs of a
//! provider configuration over a set, and each run's answers with their metrics. These rows
//! never point into users' answers; a run writes only here.

use std::fmt;
use std::str::FromStr;

use diesel::prelude::*;

use crate::db::schema::{
    benchmark_gold, benchmark_item_files, benchmark_items, benchmark_sets, evaluation_answers, evaluation_runs,
    file_assets,
};
use crate::db::{DbConn, now};

use super::{FileAsset, FileAssetId, FileAssetStatus};

#[derive(Clone, Debug, Queryable, Selectable, Identifiable, PartialEq)]
#[diesel(table_name = benchmark_sets)]
pub struct BenchmarkSet {
    pub id: i32,
    pub name: String,
    pub description: String,
    /// A negative control: the documents do not describe the method, every answer should abstain.
    pub out_of_scope: bool,
    pub question_set_id: i32,
    pub created_by: Option<i32>,
    pub created_at: chrono::NaiveDateTime,
}

/// A case of a set: one assay's documents and its gold answers.
#[derive(Clone, Debug, Queryable, Selectable, Identifiable, PartialEq)]
#[diesel(table_name = benchmark_items)]
pub struct BenchmarkItem {
    pub id: i32,
    pub set_id: i32,
    pub position: i32,
    pub title: String,
    pub scope: String,
    pub source_assay_id: Option<i32>,
    /// Its assay was deleted by its owner: the gold answers went with it.
    pub withdrawn_at: Option<chrono::NaiveDateTime>,
}

/// A gold answer: the accepted answer when the set was frozen, or one from an imported file.
#[derive(Clone, Debug, Queryable, Selectable, PartialEq)]
#[diesel(table_name = benchmark_gold)]
pub struct GoldAnswer {
    pub item_id: i32,
    pub question_id: i32,
    pub text: String,
    /// JSON array of the names of the documents the gold answer cites.
    pub cited_documents: String,
}

impl GoldAnswer {
    pub fn cited_documents(&self) -> Vec<String> {
        serde_json::from_str(&self.cited_documents).unwrap_or_default()
    }
}

impl BenchmarkSet {
    pub fn create(
        conn: &mut DbConn,
        name: &str,
        description: &str,
        out_of_scope: bool,
        question_set_id: i32,
        created_by: Option<i32>,
    ) -> QueryResult<BenchmarkSet> {
        diesel::insert_into(benchmark_sets::table)
            .values((
                benchmark_sets::name.eq(name),
                benchmark_sets::description.eq(description),
                benchmark_sets::out_of_scope.eq(out_of_scope),
                benchmark_sets::question_set_id.eq(question_set_id),
                benchmark_sets::created_by.eq(created_by),
                benchmark_sets::created_at.eq(now()),
            ))
            .get_result(conn)
    }

    pub fn find(conn: &mut DbConn, id: i32) -> QueryResult<BenchmarkSet> {
        benchmark_sets::table.find(id).select(Self::as_select()).first(conn)
    }

    pub fn all(conn: &mut DbConn) -> QueryResult<Vec<BenchmarkSet>> {
        benchmark_sets::table.order(benchmark_sets::id.desc()).select(Self::as_select()).load(conn)
    }

    pub fn items(conn: &mut DbConn, set_id: i32) -> QueryResult<Vec<BenchmarkItem>> {
        benchmark_items::table
            .filter(benchmark_items::set_id.eq(set_id))
            .order(benchmark_items::position)
            .select(BenchmarkItem::as_select())
            .load(conn)
    }

    pub fn delete(conn: &mut DbConn, id: i32) -> QueryResult<usize> {
        diesel::delete(benchmark_sets::table.find(id)).execute(conn)
    }
}

impl BenchmarkItem {
    pub fn create(
        conn: &mut DbConn,
        set_id: i32,
        position: i32,
        title: &str,
        scope: &str,
        source_assay_id: Option<i32>,
    ) -> QueryResult<BenchmarkItem> {
        diesel::insert_into(benchmark_items::table)
            .values((
                benchmark_items::set_id.eq(set_id),
                benchmark_items::position.eq(position),
                benchmark_items::title.eq(title),
                benchmark_items::scope.eq(scope),
                benchmark_items::source_assay_id.eq(source_assay_id),
            ))
            .get_result(conn)
    }

    pub fn add_file(conn: &mut DbConn, item_id: i32, file_id: &FileAssetId) -> QueryResult<usize> {
        diesel::insert_into(benchmark_item_files::table)
            .values((benchmark_item_files::item_id.eq(item_id), benchmark_item_files::file_id.eq(file_id)))
            .execute(conn)
    }

    /// The item's files, whatever their status (a withdrawn one shows the set is incomplete).
    pub fn files(conn: &mut DbConn, item_id: i32) -> QueryResult<Vec<FileAsset>> {
        benchmark_item_files::table
            .inner_join(file_assets::table)
            .filter(benchmark_item_files::item_id.eq(item_id))
            .order((file_assets::created_at, file_assets::id))
            .select(FileAsset::as_select())
            .load(conn)
    }

    pub fn add_gold(
        conn: &mut DbConn,
        item_id: i32,
        question_id: i32,
        text: &str,
        cited: &[String],
    ) -> QueryResult<usize> {
        diesel::insert_into(benchmark_gold::table)
            .values((
                benchmark_gold::item_id.eq(item_id),
                benchmark_gold::question_id.eq(question_id),
                benchmark_gold::text.eq(text),
                benchmark_gold::cited_documents.eq(serde_json::to_string(cited).unwrap_or_else(|_| "[]".into())),
            ))
            .execute(conn)
    }

    pub fn gold(conn: &mut DbConn, item_id: i32) -> QueryResult<Vec<GoldAnswer>> {
        benchmark_gold::table.filter(benchmark_gold::item_id.eq(item_id)).select(GoldAnswer::as_select()).load(conn)
    }

    /// The owner deleted these assays: their items keep their place in the sets (so the sets
    /// show they are incomplete) but lose their gold answers, which were the owner's work.
    pub fn withdraw_of_assays(conn: &mut DbConn, assays: &[i32]) -> QueryResult<usize> {
        let items: Vec<i32> = benchmark_items::table
            .filter(benchmark_items::source_assay_id.eq_any(assays))
            .select(benchmark_items::id)
            .load(conn)?;
        diesel::delete(benchmark_gold::table.filter(benchmark_gold::item_id.eq_any(&items))).execute(conn)?;
        diesel::update(benchmark_items::table.filter(benchmark_items::id.eq_any(&items)))
            .set((benchmark_items::withdrawn_at.eq(Some(now())), benchmark_items::source_assay_id.eq(None::<i32>)))
            .execute(conn)
    }
}

/// Files some benchmark set refers to (they are not orphans while it does).
pub fn files_in_sets(conn: &mut DbConn, ids: &[FileAssetId]) -> QueryResult<Vec<FileAssetId>> {
    benchmark_item_files::table
        .filter(benchmark_item_files::file_id.eq_any(ids))
        .select(benchmark_item_files::file_id)
        .distinct()
        .load(conn)
}

/// An evaluation run's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunStatus {
    Scheduled,
    Busy,
    Done,
    Error,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Scheduled => "scheduled",
            Self::Busy => "busy",
            Self::Done => "done",
            Self::Error => "error",
        }
    }
}

impl FromStr for RunStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "scheduled" => Self::Scheduled,
            "busy" => Self::Busy,
            "done" => Self::Done,
            "error" => Self::Error,
            other => return Err(format!("unknown run status {other:?}")),
        })
    }
}

impl fmt::Display for RunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Clone, Debug, Queryable, Selectable, Identifiable, PartialEq)]
#[diesel(table_name = evaluation_runs)]
pub struct EvaluationRun {
    pub id: i32,
    pub set_id: i32,
    pub label: String,
    /// `None`: the offline provider.
    pub base_url: Option<String>,
    pub model: String,
    pub prompt_version: String,
    pub concurrency: i32,
    pub price_prompt_per_mtok: Option<f64>,
    pub price_completion_per_mtok: Option<f64>,
    pub status: String,
    pub notes: String,
    pub created_by: Option<i32>,
    pub created_at: chrono::NaiveDateTime,
    pub started_at: Option<chrono::NaiveDateTime>,
    pub finished_at: Option<chrono::NaiveDateTime>,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
}

/// What a new run asks for.
#[derive(Clone, Debug, PartialEq)]
pub struct NewRun {
    pub label: String,
    pub base_url: Option<String>,
    pub model: String,
    pub prompt_version: String,
    pub concurrency: i32,
    pub price_prompt_per_mtok: Option<f64>,
    pub price_completion_per_mtok: Option<f64>,
}

impl EvaluationRun {
    pub fn status(&self) -> RunStatus {
        self.status.parse().unwrap_or(RunStatus::Error)
    }

    pub fn notes(&self) -> Vec<String> {
        serde_json::from_str(&self.notes).unwrap_or_default()
    }

    /// The provider, for people: "offline" or "model at host".
    pub fn provider(&self) -> String {
        match &self.base_url {
            None => "offline (built in)".to_owned(),
            Some(url) => format!("{} at {url}", self.model),
        }
    }

    /// Wall time from start to end, when it ended.
    pub fn wall_seconds(&self) -> Option<f64> {
        Some((self.finished_at? - self.started_at?).num_milliseconds() as f64 / 1000.0)
    }

    /// USD, when the prices are known.
    pub fn cost(&self) -> Option<f64> {
        let prompt = self.price_prompt_per_mtok? * self.prompt_tokens as f64 / 1e6;
        let completion = self.price_completion_per_mtok? * self.completion_tokens as f64 / 1e6;
        Some(prompt + completion)
    }

    pub fn create(conn: &mut DbConn, set_id: i32, new: &NewRun, created_by: Option<i32>) -> QueryResult<EvaluationRun> {
        diesel::insert_into(evaluation_runs::table)
            .values((
                evaluation_runs::set_id.eq(set_id),
                evaluation_runs::label.eq(&new.label),
                evaluation_runs::base_url.eq(&new.base_url),
                evaluation_runs::model.eq(&new.model),
                evaluation_runs::prompt_version.eq(&new.prompt_version),
                evaluation_runs::concurrency.eq(new.concurrency),
                evaluation_runs::price_prompt_per_mtok.eq(new.price_prompt_per_mtok),
                evaluation_runs::price_completion_per_mtok.eq(new.price_completion_per_mtok),
                evaluation_runs::status.eq(RunStatus::Scheduled.as_str()),
                evaluation_runs::created_by.eq(created_by),
                evaluation_runs::created_at.eq(now()),
            ))
            .get_result(conn)
    }

    pub fn find(conn: &mut DbConn, id: i32) -> QueryResult<EvaluationRun> {
        evaluation_runs::table.find(id).select(Self::as_select()).first(conn)
    }

    pub fn of_set(conn: &mut DbConn, set_id: i32) -> QueryResult<Vec<EvaluationRun>> {
        evaluation_runs::table
            .filter(evaluation_runs::set_id.eq(set_id))
            .order(evaluation_runs::id)
            .select(Self::as_select())
            .load(conn)
    }

    pub fn started(conn: &mut DbConn, id: i32) -> QueryResult<usize> {
        diesel::update(evaluation_runs::table.find(id))
            .set((evaluation_runs::status.eq(RunStatus::Busy.as_str()), evaluation_runs::started_at.eq(Some(now()))))
            .execute(conn)
    }

    pub fn finished(conn: &mut DbConn, id: i32, status: RunStatus) -> QueryResult<usize> {
        diesel::update(evaluation_runs::table.find(id))
            .set((evaluation_runs::status.eq(status.as_str()), evaluation_runs::finished_at.eq(Some(now()))))
            .execute(conn)
    }

    pub fn add_note(conn: &mut DbConn, id: i32, note: &str) -> QueryResult<usize> {
        let run = Self::find(conn, id)?;
        let mut notes = run.notes();
        if notes.iter().any(|n| n == note) {
            return Ok(0);
        }
        notes.push(note.to_owned());
        diesel::update(evaluation_runs::table.find(id))
            .set(evaluation_runs::notes.eq(serde_json::to_string(&notes).unwrap_or_else(|_| "[]".into())))
            .execute(conn)
    }

    pub fn add_usage(conn: &mut DbConn, id: i32, prompt: i64, completion: i64) -> QueryResult<usize> {
        diesel::update(evaluation_runs::table.find(id))
            .set((
                evaluation_runs::prompt_tokens.eq(evaluation_runs::prompt_tokens + prompt),
                evaluation_runs::completion_tokens.eq(evaluation_runs::completion_tokens + completion),
            ))
            .execute(conn)
    }

    /// Forget the answers of an earlier attempt of this run (it starts again from scratch).
    pub fn clear_answers(conn: &mut DbConn, id: i32) -> QueryResult<usize> {
        diesel::update(evaluation_runs::table.find(id))
            .set((evaluation_runs::prompt_tokens.eq(0), evaluation_runs::completion_tokens.eq(0)))
            .execute(conn)?;
        diesel::delete(evaluation_answers::table.filter(evaluation_answers::run_id.eq(id))).execute(conn)
    }
}

/// One answer of an evaluation run with its metrics.
#[derive(Clone, Debug, Queryable, Selectable, Identifiable, PartialEq)]
#[diesel(table_name = evaluation_answers)]
pub struct EvaluationAnswer {
    pub id: i32,
    pub run_id: i32,
    pub item_id: i32,
    pub question_id: i32,
    pub text: String,
    /// JSON array of the checked citations (see `benchmark::CitationRecord`).
    pub evidence: String,
    pub failed: bool,
    pub abstained: bool,
    pub gold_abstained: Option<bool>,
    pub token_f1: Option<f64>,
    pub rouge_l: Option<f64>,
    pub cosine: Option<f64>,
    pub citations: i32,
    pub verified_citations: i32,
    pub cited_file_agreement: Option<f64>,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
}

/// An answer to store (everything but the id).
#[derive(Clone, Debug, PartialEq, Insertable)]
#[diesel(table_name = evaluation_answers)]
pub struct NewEvaluationAnswer {
    pub run_id: i32,
    pub item_id: i32,
    pub question_id: i32,
    pub text: String,
    pub evidence: String,
    pub failed: bool,
    pub abstained: bool,
    pub gold_abstained: Option<bool>,
    pub token_f1: Option<f64>,
    pub rouge_l: Option<f64>,
    pub cosine: Option<f64>,
    pub citations: i32,
    pub verified_citations: i32,
    pub cited_file_agreement: Option<f64>,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
}

impl EvaluationAnswer {
    pub fn insert(conn: &mut DbConn, answer: &NewEvaluationAnswer) -> QueryResult<usize> {
        diesel::insert_into(evaluation_answers::table).values(answer).execute(conn)
    }

    pub fn of_run(conn: &mut DbConn, run_id: i32) -> QueryResult<Vec<EvaluationAnswer>> {
        evaluation_answers::table
            .filter(evaluation_answers::run_id.eq(run_id))
            .order(evaluation_answers::id)
            .select(Self::as_select())
            .load(conn)
    }
}

/// How many of an item's files are no longer available (withdrawn, deleted).
pub fn missing_files(files: &[FileAsset]) -> usize {
    files.iter().filter(|f| f.status != FileAssetStatus::Available).count()
}
