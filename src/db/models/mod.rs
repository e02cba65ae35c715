//! Row types and their queries, one file per part of the domain (SPEC §2).

pub mod answer;
pub mod assay;
pub mod file_asset;
pub mod investigation;
pub mod person;
pub mod question;
pub mod study;

pub use answer::{Answer, AnswerEdit};
pub use assay::{Assay, AssayStatus};
pub use file_asset::{AnswerFile, FileAsset, FileAssetStatus, FileDownloadLog};
pub use investigation::Investigation;
pub use person::Person;
pub use question::{Question, QuestionSet, Section, Subsection};
pub use study::Study;
