//! Linking stored files to the answers they helped draft.

use diesel::prelude::*;

use crate::db::DbConn;
use crate::db::models::{AnswerFile, FileAsset, FileAssetId, LinkLabel};

/// Link each FileAsset to the answer: labelled `cited` when it is among `cited` (the answer
/// cites a passage of it), `context` otherwise. Idempotent: an existing link keeps its row
/// and gets the new label. A FileAsset that no longer exists (or is being deleted) is logged
/// and skipped.
///
/// Each link first takes the row lock of its FileAsset and only goes ahead while the asset is
/// still `available`; deletions claim assets under the same lock, so linking and deleting can
/// never both win for one file.
pub fn link_files_to_answer(
    conn: &mut DbConn,
    answer_id: i32,
    file_asset_ids: &[FileAssetId],
    cited: &[FileAssetId],
) -> QueryResult<Vec<AnswerFile>> {
    conn.transaction(|conn| {
        let mut links = Vec::with_capacity(file_asset_ids.len());
        for file_id in file_asset_ids {
            if !FileAsset::lock_if_available(conn, file_id)? {
                tracing::warn!(file = %file_id, answer = answer_id, "file asset no longer available; not linked");
                continue;
            }
            let label = if cited.contains(file_id) { LinkLabel::Cited } else { LinkLabel::Context };
            links.push(AnswerFile::ensure(conn, answer_id, file_id, label)?);
        }
        Ok(links)
    })
}
