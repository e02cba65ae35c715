//! Streaming a document into storage while computing its SHA-256 and size, then recording
//! its FileAsset. The row is written only after the whole object is stored; on any failure
//! neither a row nor an object remains.

use std::io::{self, Read};
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::Stream;
use sha2::{Digest, Sha256};

use crate::db::models::{FileAsset, FileAssetId, FileAssetStatus};
use crate::db::{self, Pool, now};
use crate::storage::{ObjectStore, SourceStream, StorageError, new_object_key};

/// SHA-256 (lower-case hex) of everything `reader` yields, read in chunks.
pub fn compute_sha256(mut reader: impl Read) -> io::Result<String> {
    copy_hashing(&mut reader, &mut io::sink())
}

/// Copy `reader` into `out` in 256 KiB chunks and return the SHA-256 of what passed.
pub(crate) fn copy_hashing(reader: &mut impl Read, out: &mut impl io::Write) -> io::Result<String> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            return Ok(hex::encode(hasher.finalize()));
        }
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n])?;
    }
}

/// What we know about an upload besides its bytes.
#[derive(Clone, Debug)]
pub struct UploadMeta<'a> {
    pub original_filename: &'a str,
    pub content_type: &'a str,
    pub uploaded_by: Option<i32>,
    /// The assay the upload was made for, so consent withdrawal finds files not yet linked.
    pub assay_id: Option<i32>,
    /// Stored for a run that is not scheduled yet: the file starts `pending` (neither
    /// linkable nor an orphan) and becomes `available` when its run is scheduled.
    pub for_a_run: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    /// The incoming bytes could not be read (aborted upload, size limit hit).
    #[error("reading the upload failed: {0}")]
    Source(io::Error),
    #[error(transparent)]
    Storage(StorageError),
    #[error("recording the file failed: {0}")]
    Database(anyhow::Error),
}

/// Passes chunks through unchanged while hashing and counting them: one pass over the bytes,
/// so the upload never sees a stream that hashing already consumed.
struct Hashing<'s, 'a> {
    inner: &'s mut SourceStream<'a>,
    hasher: Sha256,
    size: u64,
}

impl Stream for Hashing<'_, '_> {
    type Item = io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        let polled = Pin::new(&mut *this.inner).poll_next(cx);
        if let Poll::Ready(Some(Ok(chunk))) = &polled {
            this.hasher.update(chunk);
            this.size += chunk.len() as u64;
        }
        polled
    }
}

/// Store `body` under a fresh UUID key and record its FileAsset.
#[doc(alias = "upload_file_to_s3")]
pub async fn upload_file(
    pool: &Pool,
    store: &dyn ObjectStore,
    body: &mut SourceStream<'_>,
    meta: UploadMeta<'_>,
) -> Result<FileAsset, UploadError> {
    let uuid = uuid::Uuid::new_v4();
    let (id, key) = (FileAssetId::from(uuid), new_object_key(&uuid));
    let mut hashing = Hashing { inner: body, hasher: Sha256::new(), size: 0 };
    let stored = store.put_stream(&key, meta.content_type, &mut hashing).await.map_err(|err| match err {
        StorageError::Source(e) => UploadError::Source(e),
        other => UploadError::Storage(other),
    })?;
    let Hashing { hasher, size, .. } = hashing;
    if stored != size {
        remove_object(store, &key).await;
        return Err(UploadError::Storage(StorageError::Backend(format!(
            "storage reports {stored} bytes written, {size} were sent"
        ))));
    }
    let asset = FileAsset {
        id,
        bucket: store.bucket().to_owned(),
        object_key: key.clone(),
        original_filename: crate::filenames::clean(meta.original_filename),
        content_type: meta.content_type.to_owned(),
        size_bytes: size as i64,
        sha256: hex::encode(hasher.finalize()),
        status: if meta.for_a_run { FileAssetStatus::Pending } else { FileAssetStatus::Available },
        uploaded_by: meta.uploaded_by,
        assay_id: meta.assay_id,
        created_at: now(),
        deleted_at: None,
    };
    let row = asset.clone();
    let inserted = db::blocking(pool, move |c| Ok::<_, anyhow::Error>(FileAsset::insert(c, &row)?)).await;
    if let Err(err) = inserted {
        remove_object(store, &key).await;
        return Err(UploadError::Database(err));
    }
    tracing::info!(file = %asset.id, size, bucket = %asset.bucket, "stored a file asset");
    Ok(asset)
}

/// Best-effort removal of an object whose row could not be written.
pub(crate) async fn remove_object(store: &dyn ObjectStore, key: &str) {
    if let Err(err) = store.delete(key).await {
        tracing::error!(key, error = %err, "could not remove an object after a failed upload; the orphan listing will not see it");
    }
}

/// Take back files stored for something that then failed (a submission, an import): objects
/// first, then rows. An object that cannot be removed leaves its row to the orphan cleanup,
/// which retries.
pub async fn discard(pool: &crate::db::Pool, store: &dyn ObjectStore, stored: &[FileAsset]) {
    if stored.is_empty() {
        return;
    }
    let keys: Vec<String> = stored.iter().map(|a| a.object_key.clone()).collect();
    let results = store.delete_many(&keys).await;
    let (removed, stuck): (Vec<_>, Vec<_>) = stored.iter().zip(results).partition(|(_, r)| r.is_ok());
    let removed: Vec<_> = removed.into_iter().map(|(a, _)| a.id.clone()).collect();
    let stuck: Vec<_> = stuck.into_iter().map(|(a, _)| a.id.clone()).collect();
    let cleared = crate::db::blocking(pool, move |c| {
        FileAsset::delete_unlinked_rows(c, &removed)?;
        FileAsset::abandon(c, &stuck)?;
        Ok::<_, anyhow::Error>(())
    })
    .await;
    if let Err(err) = cleared {
        tracing::error!(error = %err, "could not remove the rows of discarded files");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_matches_known_vectors() {
        assert_eq!(
            compute_sha256(&b""[..]).unwrap(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            compute_sha256(&b"abc"[..]).unwrap(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let million_a = vec![b'a'; 1_000_000];
        assert_eq!(
            compute_sha256(&million_a[..]).unwrap(),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"
        );
    }
}
