//! One row per drafting run: the assay, the language-model configuration that drafted (NULL:
//! the environment's default provider) with its name, model and prices copied at the time —
//! a configuration edited later does not rewrite history — and the tokens the run used.

use std::fmt;
use std::str::FromStr;

use diesel::prelude::*;

use crate::db::schema::drafting_runs;
use crate::db::{DbConn, now};

/// Where a drafting run is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DraftingRunStatus {
    Busy,
    Done,
    Error,
}

impl DraftingRunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Busy => "busy",
            Self::Done => "done",
            Self::Error => "error",
        }
    }
}

impl FromStr for DraftingRunStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "busy" => Self::Busy,
            "done" => Self::Done,
            "error" => Self::Error,
            other => return Err(format!("unknown drafting run status {other:?}")),
        })
    }
}

impl fmt::Display for DraftingRunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Clone, Debug, Queryable, Selectable, Identifiable, PartialEq)]
#[diesel(table_name = drafting_runs)]
pub struct DraftingRun {
    pub id: i32,
    pub assay_id: i32,
    pub job_id: Option<i32>,
    /// `None`: the environment's default provider.
    pub configuration_id: Option<i32>,
    pub configuration_name: String,
    pub model: String,
    pub price_prompt_per_mtok: Option<f64>,
    pub price_completion_per_mtok: Option<f64>,
    pub status: String,
    /// Why a run failed, in words for people.
    pub message: String,
    pub started_at: chrono::NaiveDateTime,
    pub finished_at: Option<chrono::NaiveDateTime>,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
}

/// What a new run record says about its model.
#[derive(Clone, Debug, PartialEq)]
pub struct NewDraftingRun {
    pub assay_id: i32,
    pub job_id: Option<i32>,
    pub configuration_id: Option<i32>,
    pub configuration_name: String,
    pub model: String,
    pub price_prompt_per_mtok: Option<f64>,
    pub price_completion_per_mtok: Option<f64>,
}

/// The estimated cost of `prompt` input and `completion` output tokens at these prices per
/// million tokens: tokens × price / 1e6, summed. `None` unless both prices are known.
pub fn estimated_cost(
    prompt: i64,
    completion: i64,
    price_prompt: Option<f64>,
    price_completion: Option<f64>,
) -> Option<f64> {
    Some(prompt as f64 * price_prompt? / 1e6 + completion as f64 * price_completion? / 1e6)
}

impl DraftingRun {
    pub fn status(&self) -> DraftingRunStatus {
        self.status.parse().unwrap_or(DraftingRunStatus::Error)
    }

    /// The estimated cost of the tokens used so far, when the prices were known.
    pub fn cost(&self) -> Option<f64> {
        estimated_cost(
            self.prompt_tokens,
            self.completion_tokens,
            self.price_prompt_per_mtok,
            self.price_completion_per_mtok,
        )
    }

    /// The run of this job, when one was recorded (a job resumed by another worker keeps it),
    /// else a new one, `busy`.
    pub fn start(conn: &mut DbConn, new: &NewDraftingRun) -> QueryResult<DraftingRun> {
        if let Some(job) = new.job_id {
            let existing = drafting_runs::table
                .filter(drafting_runs::job_id.eq(job))
                .select(Self::as_select())
                .first(conn)
                .optional()?;
            if let Some(run) = existing {
                diesel::update(drafting_runs::table.find(run.id))
                    .set((
                        drafting_runs::status.eq(DraftingRunStatus::Busy.as_str()),
                        drafting_runs::finished_at.eq(None::<chrono::NaiveDateTime>),
                    ))
                    .execute(conn)?;
                return Self::find(conn, run.id);
            }
        }
        diesel::insert_into(drafting_runs::table)
            .values((
                drafting_runs::assay_id.eq(new.assay_id),
                drafting_runs::job_id.eq(new.job_id),
                drafting_runs::configuration_id.eq(new.configuration_id),
                drafting_runs::configuration_name.eq(&new.configuration_name),
                drafting_runs::model.eq(&new.model),
                drafting_runs::price_prompt_per_mtok.eq(new.price_prompt_per_mtok),
                drafting_runs::price_completion_per_mtok.eq(new.price_completion_per_mtok),
                drafting_runs::status.eq(DraftingRunStatus::Busy.as_str()),
                drafting_runs::started_at.eq(now()),
            ))
            .get_result(conn)
    }

    pub fn find(conn: &mut DbConn, id: i32) -> QueryResult<DraftingRun> {
        drafting_runs::table.find(id).select(Self::as_select()).first(conn)
    }

    /// The assay's runs, newest first.
    pub fn of_assay(conn: &mut DbConn, assay_id: i32) -> QueryResult<Vec<DraftingRun>> {
        drafting_runs::table
            .filter(drafting_runs::assay_id.eq(assay_id))
            .order(drafting_runs::id.desc())
            .select(Self::as_select())
            .load(conn)
    }

    pub fn add_usage(conn: &mut DbConn, id: i32, prompt: i64, completion: i64) -> QueryResult<usize> {
        diesel::update(drafting_runs::table.find(id))
            .set((
                drafting_runs::prompt_tokens.eq(drafting_runs::prompt_tokens + prompt),
                drafting_runs::completion_tokens.eq(drafting_runs::completion_tokens + completion),
            ))
            .execute(conn)
    }

    pub fn finish(conn: &mut DbConn, id: i32, status: DraftingRunStatus, message: &str) -> QueryResult<usize> {
        diesel::update(drafting_runs::table.find(id))
            .set((
                drafting_runs::status.eq(status.as_str()),
                drafting_runs::message.eq(message),
                drafting_runs::finished_at.eq(Some(now())),
            ))
            .execute(conn)
    }

    /// The assay's runs still `busy` end as failed (their job was given up).
    pub fn fail_busy_of_assay(conn: &mut DbConn, assay_id: i32, message: &str) -> QueryResult<usize> {
        diesel::update(
            drafting_runs::table
                .filter(drafting_runs::assay_id.eq(assay_id))
                .filter(drafting_runs::status.eq(DraftingRunStatus::Busy.as_str())),
        )
        .set((
            drafting_runs::status.eq(DraftingRunStatus::Error.as_str()),
            drafting_runs::message.eq(message),
            drafting_runs::finished_at.eq(Some(now())),
        ))
        .execute(conn)
    }
}

/// The distinct models that drafted the assay's answers, in the order first used (for the
/// exports: "drafted with …").
pub fn models_used(conn: &mut DbConn, assay_id: i32) -> QueryResult<Vec<String>> {
    let models: Vec<String> = drafting_runs::table
        .filter(drafting_runs::assay_id.eq(assay_id))
        .order(drafting_runs::id)
        .select(drafting_runs::model)
        .load(conn)?;
    let mut distinct: Vec<String> = Vec::new();
    for model in models {
        if !distinct.contains(&model) {
            distinct.push(model);
        }
    }
    Ok(distinct)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cost_is_tokens_times_price_per_million() {
        assert_eq!(estimated_cost(1_000_000, 0, Some(0.15), Some(0.6)), Some(0.15));
        let cost = estimated_cost(2_000, 500, Some(2.5), Some(10.0)).unwrap();
        assert!((cost - 0.01).abs() < 1e-12, "{cost}");
        assert_eq!(estimated_cost(0, 0, Some(1.0), Some(1.0)), Some(0.0));
        assert_eq!(estimated_cost(10, 10, None, Some(1.0)), None, "an unknown price: no estimate");
        assert_eq!(estimated_cost(10, 10, Some(1.0), None), None);
    }
}
