//! Drafting: what happens to an upload, from the StartingForm (or "regenerate selected
//! questions", or the `process` command) to saved, linked answers.
//!
//! ```text
//! web / CLI ──► submit::submit ──► (check files, target, overwrite rule; create target;
//!                                   store with consent; extract text) ──► jobs::enqueue(DraftAssay)
//! jobs::Runner ──► DraftAssay::run ──► pipeline::draft ──► provider (rounds 1–3, bounded
//!                                   concurrency) ──► Answer saved + its run's files linked
//! ```
//! The job queue knows nothing of this: `DraftAssay` is one job type among (future) others.

mod ask;
pub mod choice;
mod evidence;
mod job;
mod pipeline;
mod questions;
mod read;
pub mod runs;
mod submit;
mod target;
mod upload;

pub use ask::{Asked, Asking};
pub use evidence::{Evidence, RunDocument, quote_is_in, read_citations};
pub use job::{DraftAssay, ImageInput, PROCESS_ASSAY, assay_of, assay_subject, forget_assays};
pub use pipeline::fit_context;
pub use questions::{EarlierAnswer, EarlierAnswers, EarlierCitation, QuestionInfo, QuestionRow, load_set};
pub use read::{Budget, ReadProblem, read_kept};
pub use submit::{DraftRequest, Scope, Submitted, submit};
pub use target::{Created, NewOrId, Target};
pub use upload::{
    CheckedFile, ChunkSender, EarlyFile, EarlyStore, FileProblem, HEAD_BYTES, IncomingFile, ProblemKind, Upload,
    check_files, mib,
};

/// Why a submission was refused or failed. Refusals say what to do in their `Display` text;
/// `Internal` is never shown to people.
#[derive(Debug, thiserror::Error)]
pub enum DraftError {
    #[error("some files cannot be accepted")]
    Files(Vec<FileProblem>),
    /// The assay, study or investigation named is not there, or not the person's.
    #[error("not found")]
    NotFound,
    /// Someone else's assay, study or investigation that the person may see (staff) but not change.
    #[error("forbidden")]
    Forbidden,
    #[error("{0}")]
    Invalid(String),
    #[error("Please tick the questions to regenerate.")]
    NoQuestionsChosen,
    #[error("This assay already has answers. Tick “overwrite” to replace them with new drafts.")]
    NeedsOverwrite,
    #[error("The answers of this assay are being drafted right now. Please wait until that is done, then try again.")]
    AlreadyRunning,
    #[error("The assay was deleted.")]
    AssayGone,
    /// The language model chosen is unknown or disabled.
    #[error("That language model is not available (any more). Please choose one from the list.")]
    ModelUnavailable,
    /// Storage failed; everything written for this submission was removed.
    #[error(
        "Your files could not be stored right now, so nothing was saved and nothing was started. Please try again later (reference {reference})."
    )]
    StorageUnavailable { reference: String },
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<diesel::result::Error> for DraftError {
    fn from(err: diesel::result::Error) -> Self {
        match err {
            diesel::result::Error::NotFound => Self::NotFound,
            other => Self::Internal(other.into()),
        }
    }
}

impl From<crate::db::Unavailable> for DraftError {
    fn from(err: crate::db::Unavailable) -> Self {
        Self::Internal(err.into())
    }
}
