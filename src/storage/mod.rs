//! Object storage behind one small interface, with three backends: S3 (AWS, MinIO, Garage),
//! a local directory (the embedded default) and memory (unit tests).
//!
//! Objects move as streams of `Bytes` chunks both ways; no backend ever needs a whole file
//! in memory (S3 multipart parts are the largest buffer, a few MiB each).

pub mod local;
pub mod memory;
pub mod metered;
pub mod s3;

use std::io;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::stream::BoxStream;

use crate::config::StorageConfig;

/// A stream of object bytes.
pub type ByteStream = BoxStream<'static, io::Result<Bytes>>;
/// What `put_stream` reads from: any stream of chunks (an HTTP upload, a file, a test).
pub type SourceStream<'a> = dyn futures_util::Stream<Item = io::Result<Bytes>> + Send + Unpin + 'a;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("no such object")]
    NotFound,
    #[error("invalid object key {0:?}")]
    InvalidKey(String),
    /// The bytes we were given could not be read (e.g. the browser aborted the upload).
    #[error("reading the upload failed: {0}")]
    Source(io::Error),
    #[error("storage I/O failed: {0}")]
    Io(#[from] io::Error),
    #[error("storage backend failed: {0}")]
    Backend(String),
}

/// Size (and, when listed, age) of a stored object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectMeta {
    pub key: String,
    pub size: u64,
    /// When it was last written (UTC), where the backend says.
    pub modified: Option<chrono::NaiveDateTime>,
}

/// An upload that was begun and never completed or aborted (an S3 multipart upload, a local
/// temporary file): it holds space and is invisible to listings of objects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IncompleteUpload {
    pub key: String,
    /// The backend's handle for it (the S3 upload id, the local temporary file's path).
    pub id: String,
    pub initiated: Option<chrono::NaiveDateTime>,
}

#[async_trait]
pub trait ObjectStore: Send + Sync {
    /// The bucket name recorded on every FileAsset stored here.
    fn bucket(&self) -> &str;

    /// Store everything `body` yields under `key`; returns the number of bytes written. The
    /// object becomes visible only when complete; on error nothing remains under `key`.
    async fn put_stream(&self, key: &str, content_type: &str, body: &mut SourceStream<'_>)
    -> Result<u64, StorageError>;

    async fn get_stream(&self, key: &str) -> Result<ByteStream, StorageError>;

    async fn head(&self, key: &str) -> Result<ObjectMeta, StorageError>;

    /// Deleting a missing object is not an error.
    async fn delete(&self, key: &str) -> Result<(), StorageError>;

    /// Delete many objects with as few requests as the backend allows; one result per key
    /// (in the order given).
    async fn delete_many(&self, keys: &[String]) -> Vec<Result<(), StorageError>>;

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>, StorageError>;

    /// Uploads begun and never finished (none, where a backend cannot have them).
    async fn incomplete_uploads(&self) -> Result<Vec<IncompleteUpload>, StorageError> {
        Ok(Vec::new())
    }

    /// Give up an incomplete upload and free what it holds.
    async fn abort_upload(&self, _upload: &IncompleteUpload) -> Result<(), StorageError> {
        Ok(())
    }

    /// Make sure the bucket exists (S3) or the directory does (local). Called at start-up.
    async fn ensure_ready(&self) -> Result<(), StorageError> {
        Ok(())
    }

    /// Whether storage answers now, changing nothing (the readiness check asks this).
    async fn reachable(&self) -> Result<(), StorageError> {
        Ok(())
    }
}

pub type Store = Arc<dyn ObjectStore>;

/// Object keys carry no user data: a fixed prefix and a random UUID. The original filename
/// stays in the database.
pub fn new_object_key(id: &uuid::Uuid) -> String {
    format!("fileassets/{}", id.simple())
}

/// Keys we accept from the database or callers: our own shape only, nothing that could
/// escape a directory.
pub fn check_key(key: &str) -> Result<(), StorageError> {
    let ok = !key.is_empty()
        && key.len() <= 512
        && !key.starts_with('/')
        && key.split('/').all(|seg| !seg.is_empty() && seg != "." && seg != "..")
        && key.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'-' | b'_' | b'.'));
    if ok { Ok(()) } else { Err(StorageError::InvalidKey(key.to_owned())) }
}

/// Build the configured backend.
pub fn from_config(config: &StorageConfig) -> anyhow::Result<Store> {
    Ok(match config {
        StorageConfig::Local { root, bucket } => Arc::new(local::LocalStore::new(root.clone(), bucket.clone())),
        StorageConfig::S3(s3) => Arc::new(s3::S3Store::new(s3)?),
    })
}

/// Collect an object into memory — for tests and small objects only.
pub async fn read_all(store: &dyn ObjectStore, key: &str) -> Result<Vec<u8>, StorageError> {
    use futures_util::TryStreamExt;
    let mut stream = store.get_stream(key).await?;
    let mut out = Vec::new();
    while let Some(chunk) = stream.try_next().await? {
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_keys_carry_only_a_uuid() {
        let id = uuid::Uuid::new_v4();
        let key = new_object_key(&id);
        assert_eq!(key, format!("fileassets/{}", id.simple()));
        check_key(&key).unwrap();
    }

    #[test]
    fn hostile_keys_are_refused() {
        for key in ["", "/etc/passwd", "a/../b", "a//b", "..", "a b", "a\0b", "ä"] {
            assert!(check_key(key).is_err(), "{key:?}");
        }
    }
}
