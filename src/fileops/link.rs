//! Linking stored files to the answers they helped draft.

use diesel::prelude::*;

use crate::db::models::{AnswerFile, FileAssetStatus};
use crate::db::schema::{answer_files, file_assets};
use crate::db::{DbConn, now};

/// Link each FileAsset to the answer. Idempotent: an existing link is returned as is. A
/// FileAsset that no longer exists (or is being deleted) is logged and skipped.
///
/// Each link first takes a row lock on its FileAsset (an UPDATE that changes nothing) and
/// only goes ahead if the asset is still `available`; the orphan cleanup claims assets with
/// the same kind of update, so the two can never both win for one file.
pub fn link_files_to_answer(
    conn: &mut DbConn,
    answer_id: i32,
    file_asset_ids: &[String],
) -> QueryResult<Vec<AnswerFile>> {
    let available = FileAssetStatus::Available.as_str();
    conn.transaction(|conn| {
        let mut links = Vec::with_capacity(file_asset_ids.len());
        for file_id in file_asset_ids {
            let locked = diesel::update(
                file_assets::table.filter(file_assets::id.eq(file_id)).filter(file_assets::status.eq(available)),
            )
            .set(file_assets::status.eq(available))
            .execute(conn)?;
            if locked == 0 {
                tracing::warn!(file = %file_id, answer = answer_id, "file asset no longer available; not linked");
                continue;
            }
            let existing = answer_files::table
                .filter(answer_files::answer_id.eq(answer_id))
                .filter(answer_files::file_id.eq(file_id))
                .select(AnswerFile::as_select())
                .first(conn)
                .optional()?;
            let link = match existing {
                Some(link) => link,
                None => {
                    let id: i32 = diesel::insert_into(answer_files::table)
                        .values((
                            answer_files::answer_id.eq(answer_id),
                            answer_files::file_id.eq(file_id),
                            answer_files::created_at.eq(now()),
                        ))
                        .returning(answer_files::id)
                        .get_result(conn)?;
                    answer_files::table.find(id).select(AnswerFile::as_select()).first(conn)?
                }
            };
            links.push(link);
        }
        Ok(links)
    })
}
