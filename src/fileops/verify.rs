//! Proving every stored byte: each available FileAsset's object is read back and its SHA-256
//! compared with the one recorded at upload. A few at a time, streamed (never a whole object
//! in memory).

use futures_util::StreamExt;
use sha2::{Digest as _, Sha256};

use crate::db::models::{FileAsset, FileAssetStatus};
use crate::db::schema::file_assets;
use crate::db::{self, Pool};
use crate::storage::{ObjectStore, StorageError};

/// What a verification found.
#[derive(Debug, Default)]
pub struct Verification {
    pub files: usize,
    pub bytes: u64,
    /// (file, what is wrong): missing objects, other bytes, unreadable objects.
    pub problems: Vec<(FileAsset, String)>,
}

const AT_ONCE: usize = 4;

/// An object's SHA-256 (hex) and size, or why it could not be read.
type Digest = Result<(String, u64), StorageError>;

/// Read back every available file and compare its SHA-256.
pub async fn verify_storage(pool: &Pool, store: &dyn ObjectStore) -> anyhow::Result<Verification> {
    let files: Vec<FileAsset> = db::blocking(pool, |c| {
        use diesel::prelude::*;
        Ok::<_, anyhow::Error>(
            file_assets::table
                .filter(file_assets::status.eq(FileAssetStatus::Available))
                .order((file_assets::created_at, file_assets::id))
                .select(FileAsset::as_select())
                .load(c)?,
        )
    })
    .await?;
    let results: Vec<(FileAsset, Digest)> = futures_util::stream::iter(files)
        .map(|file| async move {
            let digest = digest_of(store, &file.object_key).await;
            (file, digest)
        })
        .buffer_unordered(AT_ONCE)
        .collect()
        .await;
    let mut report = Verification::default();
    for (file, result) in results {
        report.files += 1;
        match result {
            Ok((sha, size)) if sha == file.sha256 && size as i64 == file.size_bytes => report.bytes += size,
            Ok((sha, size)) => {
                let why = format!("content differs (SHA-256 {sha}, {size} bytes)");
                report.problems.push((file, why));
            }
            Err(StorageError::NotFound) => report.problems.push((file, "object missing".into())),
            Err(err) => report.problems.push((file, format!("unreadable: {err}"))),
        }
    }
    Ok(report)
}

async fn digest_of(store: &dyn ObjectStore, key: &str) -> Digest {
    let mut stream = store.get_stream(key).await?;
    let (mut hash, mut size) = (Sha256::new(), 0u64);
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(StorageError::Io)?;
        size += chunk.len() as u64;
        hash.update(&chunk);
    }
    Ok((hex::encode(hash.finalize()), size))
}
