//! Row types and their queries, one file per part of the domain (SPEC §2).

pub mod answer;
pub mod assay;
pub mod benchmark;
pub mod drafting_run;
pub mod evidence;
pub mod file_asset;
pub mod file_audit;
pub mod investigation;
pub mod llm_configuration;
pub mod login_failure;
pub mod password_reset;
pub mod person;
pub mod question;
pub mod study;
pub mod workspace;

pub use answer::{Answer, AnswerEdit};
pub use assay::{Assay, AssayStatus};
pub use benchmark::{
    BenchmarkItem, BenchmarkSet, EvaluationAnswer, EvaluationRun, GoldAnswer, NewEvaluationAnswer, NewRun, RunStatus,
};
pub use drafting_run::{DraftingRun, DraftingRunStatus, NewDraftingRun, estimated_cost, models_used};
pub use evidence::{AnswerCitation, FilePassage, NewCitation};
pub use file_asset::{AnswerFile, FileAsset, FileAssetId, FileAssetStatus, FileDownloadLog, LinkLabel, Which};
pub use file_audit::{FileAuditEvent, FileEvent};
pub use investigation::{Access, Denied, Investigation, Standing};
pub use llm_configuration::{ConfigurationFields, LlmConfiguration};
pub use login_failure::LoginFailure;
pub use password_reset::PasswordReset;
pub use person::Person;
pub use question::{Question, QuestionSet, Section, Subsection};
pub use study::Study;
pub use workspace::{Role, Workspace, WorkspaceEvent};

/// Store a Rust type in a `Text` column on both backends, through its `as_str()` and its
/// `FromStr` implementation.
macro_rules! text_sql_type {
    ($ty:ty) => {
        impl<DB> diesel::serialize::ToSql<diesel::sql_types::Text, DB> for $ty
        where
            DB: diesel::backend::Backend,
            str: diesel::serialize::ToSql<diesel::sql_types::Text, DB>,
        {
            fn to_sql<'b>(&'b self, out: &mut diesel::serialize::Output<'b, '_, DB>) -> diesel::serialize::Result {
                self.as_str().to_sql(out)
            }
        }

        impl<DB> diesel::deserialize::FromSql<diesel::sql_types::Text, DB> for $ty
        where
            DB: diesel::backend::Backend,
            String: diesel::deserialize::FromSql<diesel::sql_types::Text, DB>,
        {
            fn from_sql(bytes: DB::RawValue<'_>) -> diesel::deserialize::Result<Self> {
                let text = <String as diesel::deserialize::FromSql<diesel::sql_types::Text, DB>>::from_sql(bytes)?;
                text.parse::<$ty>().map_err(|e| e.to_string().into())
            }
        }
    };
}
pub(crate) use text_sql_type;
