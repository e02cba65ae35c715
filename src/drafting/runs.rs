//! The drafting runs of an assay as people see them: when, which model, how it ended, the
//! tokens it used and their estimated cost (tokens × the configuration's price per million
//! tokens, with the prices copied when the run started), and the totals.

use crate::db::DbConn;
use crate::db::models::DraftingRun;

use super::choice::format_cost;

/// One row of the "Runs" table.
#[derive(Clone, Debug, PartialEq)]
pub struct RunRow {
    pub started: String,
    pub configuration: String,
    pub model: String,
    pub status: String,
    pub message: String,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    /// "—" when the configuration had no price.
    pub cost: String,
}

/// The runs of an assay, newest first, with their totals.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RunsSummary {
    pub runs: Vec<RunRow>,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    /// The sum of the runs' known costs; "—" when none is known.
    pub cost: String,
    /// Some run had no price: the total leaves its tokens out.
    pub cost_partial: bool,
}

impl RunsSummary {
    pub fn from_runs(runs: &[DraftingRun]) -> Self {
        let costs: Vec<Option<f64>> = runs.iter().map(DraftingRun::cost).collect();
        let known: Vec<f64> = costs.iter().flatten().copied().collect();
        Self {
            runs: runs
                .iter()
                .zip(&costs)
                .map(|(r, cost)| RunRow {
                    started: r.started_at.format("%Y-%m-%d %H:%M").to_string(),
                    configuration: r.configuration_name.clone(),
                    model: r.model.clone(),
                    status: r.status().to_string(),
                    message: r.message.clone(),
                    prompt_tokens: r.prompt_tokens,
                    completion_tokens: r.completion_tokens,
                    cost: format_cost(*cost),
                })
                .collect(),
            prompt_tokens: runs.iter().map(|r| r.prompt_tokens).sum(),
            completion_tokens: runs.iter().map(|r| r.completion_tokens).sum(),
            cost: format_cost((!known.is_empty()).then(|| known.iter().sum())),
            cost_partial: !known.is_empty() && known.len() < runs.len(),
        }
    }
}

/// The assay's runs and totals.
pub fn summary(conn: &mut DbConn, assay_id: i32) -> diesel::QueryResult<RunsSummary> {
    Ok(RunsSummary::from_runs(&DraftingRun::of_assay(conn, assay_id)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(model: &str, tokens: (i64, i64), prices: (Option<f64>, Option<f64>)) -> DraftingRun {
        DraftingRun {
            id: 1,
            assay_id: 1,
            job_id: None,
            configuration_id: None,
            configuration_name: "Default".into(),
            model: model.into(),
            price_prompt_per_mtok: prices.0,
            price_completion_per_mtok: prices.1,
            status: "done".into(),
            message: String::new(),
            started_at: chrono::NaiveDate::from_ymd_opt(2026, 11, 30).unwrap().and_hms_opt(6, 0, 0).unwrap(),
            finished_at: None,
            prompt_tokens: tokens.0,
            completion_tokens: tokens.1,
        }
    }

    #[test]
    fn totals_add_tokens_and_known_costs() {
        let runs = [run("gpt-4o", (1_000_000, 100_000), (Some(2.5), Some(10.0))), run("offline", (0, 0), (None, None))];
        let summary = RunsSummary::from_runs(&runs);
        assert_eq!(summary.runs[0].cost, "3.50");
        assert_eq!(summary.runs[1].cost, "—");
        assert_eq!((summary.prompt_tokens, summary.completion_tokens), (1_000_000, 100_000));
        assert_eq!(summary.cost, "3.50");
        assert!(summary.cost_partial);
        assert_eq!(RunsSummary::from_runs(&[]).cost, "—");
    }
}
