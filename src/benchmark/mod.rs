//! Benchmarking the assistant with the documents users agreed to keep.
//!
//! ```text
//! staff page / `toxtemp evaluate` ──► sets::freeze_from_assays | sets::import_folder ──► a set
//!   (cases: documents as FileAssets + gold answers frozen at that moment)
//! run::start ──► jobs::enqueue(EvaluateRun) ──► run: read + check + extract each case's files,
//!   ask every question like drafting does, score against gold (metrics) ──► evaluation_answers
//! report: per question / section / run summaries, runs side by side, CSV and JSON, SVG chart
//! ```
//! A run writes only its own rows: users' answers, their files' links and their assays are
//! never touched. Files stay members of a set while they are kept; a withdrawn or deleted one
//! shows the set incomplete and is never read again.

mod chart;
pub mod metrics;
mod report;
mod run;
mod sets;

use serde::{Deserialize, Serialize};

pub use chart::section_bars;
pub use report::{
    Comparison, QuestionAcrossRuns, QuestionPlace, ResultRow, RunReport, Summary, compare, csv, json, places,
    run_report,
};
pub use run::{
    EVALUATE_RUN, EvaluateRun, MAX_CONCURRENCY, PROMPT_VERSIONS, RunRequest, provider_for, run_subject, start,
};
pub use sets::{Candidate, FolderImport, GOLD_FILE, NewSet, SetError, candidates, freeze_from_assays, import_folder};

use crate::drafting::Evidence;

/// A checked citation of an evaluation answer, as stored with it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CitationRecord {
    pub number: u32,
    pub document: String,
    /// Where in the document, in words ("page 3 · “4.1 …”").
    pub location: String,
    pub quote: String,
    pub verified: bool,
}

impl From<&Evidence> for CitationRecord {
    fn from(e: &Evidence) -> Self {
        Self {
            number: e.number,
            document: e.document_name.clone(),
            location: e.location.describe(),
            quote: e.quote.clone(),
            verified: e.verified,
        }
    }
}
