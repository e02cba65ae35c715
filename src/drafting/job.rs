//! The drafting job (the seed's `process_llm_async` role) as it sits in the queue: the
//! documents' text and the files kept for this run. Its subject is the assay (`assay:ID`), so
//! deleting an assay removes its queued work. What the job does is in `pipeline`.

use serde::{Deserialize, Serialize};

use super::evidence::RunDocument;
use crate::db::DbConn;
use crate::db::models::FileAssetId;
use crate::jobs;

/// The job's name in the queue (kept from the first release: queued jobs must stay readable).
pub const PROCESS_ASSAY: &str = "process_assay";

/// Draft the answers of an assay from these documents.
#[doc(alias = "process_llm_async")]
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DraftAssay {
    pub assay_id: i32,
    /// The documents' passages; a kept document names its FileAsset.
    pub documents: Vec<RunDocument>,
    /// The FileAssets kept for this run (with consent), linked to every answer it saves.
    #[serde(default)]
    pub file_asset_ids: Vec<FileAssetId>,
    /// Regenerate only these questions; `None` answers all of them.
    #[serde(default)]
    pub question_ids: Option<Vec<i32>>,
    /// Images to be described by the model first (`extract_images`), base64.
    #[serde(default)]
    pub images: Vec<ImageInput>,
    /// The kept files' text is read by the job, from storage, not carried in `documents`
    /// (so a submission with consent costs only its upload).
    #[serde(default)]
    pub read_from_storage: bool,
    /// The staff's language-model configuration chosen for this run; absent (older jobs
    /// too): the environment's default provider.
    #[serde(default)]
    pub configuration_id: Option<i32>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ImageInput {
    pub name: String,
    pub mime: String,
    pub base64: String,
    /// The image's FileAsset, when it was kept.
    #[serde(default)]
    pub file_asset_id: Option<FileAssetId>,
}

/// The queue subject of an assay's drafting jobs.
pub fn assay_subject(assay_id: i32) -> String {
    format!("assay:{assay_id}")
}

/// The assay a job is about, if it is a drafting job's subject.
pub fn assay_of(subject: Option<&str>) -> Option<i32> {
    subject?.strip_prefix("assay:")?.parse().ok()
}

/// Remove the drafting jobs of these assays (they are being deleted; the payloads hold their
/// documents' text).
pub fn forget_assays(conn: &mut DbConn, assay_ids: &[i32]) -> diesel::QueryResult<usize> {
    let subjects: Vec<String> = assay_ids.iter().map(|id| assay_subject(*id)).collect();
    jobs::delete_about(conn, &subjects)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_name_the_assay() {
        assert_eq!(assay_subject(12), "assay:12");
        assert_eq!(assay_of(Some("assay:12")), Some(12));
        assert_eq!(assay_of(Some("set:12")), None);
        assert_eq!(assay_of(None), None);
    }

    #[test]
    fn payloads_without_a_model_choice_use_the_default() {
        let old = r#"{"assay_id": 3, "documents": []}"#;
        let job: DraftAssay = serde_json::from_str(old).unwrap();
        assert_eq!(job.configuration_id, None);
    }
}
