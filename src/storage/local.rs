//! Objects as files below a directory: `ROOT/BUCKET/KEY`. The embedded default.
//!
//! A put writes to a temporary file next to the target and renames it into place after an
//! fsync, so a reader never sees half an object and a failed put leaves nothing behind.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use futures_util::TryStreamExt;
use tokio::io::AsyncWriteExt;
use tokio_util::io::ReaderStream;

use super::{ByteStream, IncompleteUpload, ObjectMeta, ObjectStore, SourceStream, StorageError, check_key};

pub struct LocalStore {
    root: PathBuf,
    bucket: String,
}

impl LocalStore {
    pub fn new(root: PathBuf, bucket: String) -> Self {
        Self { root, bucket }
    }

    fn base(&self) -> PathBuf {
        self.root.join(&self.bucket)
    }

    fn path(&self, key: &str) -> Result<PathBuf, StorageError> {
        check_key(key)?;
        Ok(self.base().join(key))
    }
}

impl LocalStore {
    /// Every file below the bucket directory: (key, is a temporary file, size and age).
    async fn files(&self) -> Result<Vec<(String, bool, ObjectMeta)>, StorageError> {
        let base = self.base();
        let mut out = Vec::new();
        let mut stack = vec![base.clone()];
        while let Some(dir) = stack.pop() {
            let mut entries = match tokio::fs::read_dir(&dir).await {
                Ok(entries) => entries,
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => continue,
                Err(err) => return Err(err.into()),
            };
            while let Some(entry) = entries.next_entry().await? {
                let path = entry.path();
                if entry.file_type().await?.is_dir() {
                    stack.push(path);
                    continue;
                }
                let Ok(rel) = path.strip_prefix(&base) else { continue };
                let key = rel.to_string_lossy().replace('\\', "/");
                let partial = entry.file_name().to_string_lossy().starts_with(".partial-");
                let meta = entry.metadata().await?;
                out.push((key.clone(), partial, ObjectMeta { key, size: meta.len(), modified: modified(&meta) }));
            }
        }
        Ok(out)
    }
}

impl ObjectMeta {
    fn with_key(self, key: String) -> Self {
        Self { key, ..self }
    }
}

fn modified(meta: &std::fs::Metadata) -> Option<chrono::NaiveDateTime> {
    let at: chrono::DateTime<chrono::Utc> = meta.modified().ok()?.into();
    Some(at.naive_utc())
}

fn not_found(err: std::io::Error) -> StorageError {
    if err.kind() == std::io::ErrorKind::NotFound { StorageError::NotFound } else { StorageError::Io(err) }
}

async fn write_all(file: &mut tokio::fs::File, body: &mut SourceStream<'_>) -> Result<u64, StorageError> {
    let mut size = 0u64;
    while let Some(chunk) = body.try_next().await.map_err(StorageError::Source)? {
        file.write_all(&chunk).await?;
        size += chunk.len() as u64;
    }
    file.sync_all().await?;
    Ok(size)
}

/// Removes the temporary file when the put ends without renaming it — by error or because
/// the caller stopped waiting (after a rename there is nothing left to remove).
struct TempFile(PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[async_trait]
impl ObjectStore for LocalStore {
    fn bucket(&self) -> &str {
        &self.bucket
    }

    async fn put_stream(
        &self,
        key: &str,
        _content_type: &str,
        body: &mut SourceStream<'_>,
    ) -> Result<u64, StorageError> {
        let target = self.path(key)?;
        let dir = target.parent().unwrap_or(Path::new("."));
        tokio::fs::create_dir_all(dir).await?;
        let temp = TempFile(dir.join(format!(".partial-{}", uuid::Uuid::new_v4().simple())));
        let mut file = tokio::fs::File::create(&temp.0).await?;
        let size = write_all(&mut file, body).await?;
        drop(file);
        tokio::fs::rename(&temp.0, &target).await?;
        Ok(size)
    }

    async fn get_stream(&self, key: &str) -> Result<ByteStream, StorageError> {
        let file = tokio::fs::File::open(self.path(key)?).await.map_err(not_found)?;
        Ok(Box::pin(ReaderStream::with_capacity(file, 256 * 1024)))
    }

    async fn head(&self, key: &str) -> Result<ObjectMeta, StorageError> {
        let meta = tokio::fs::metadata(self.path(key)?).await.map_err(not_found)?;
        Ok(ObjectMeta { key: key.to_owned(), size: meta.len(), modified: modified(&meta) })
    }

    async fn delete(&self, key: &str) -> Result<(), StorageError> {
        match tokio::fs::remove_file(self.path(key)?).await.map_err(not_found) {
            Ok(()) | Err(StorageError::NotFound) => Ok(()),
            Err(err) => Err(err),
        }
    }

    async fn delete_many(&self, keys: &[String]) -> Vec<Result<(), StorageError>> {
        let mut results = Vec::with_capacity(keys.len());
        for key in keys {
            results.push(self.delete(key).await);
        }
        results
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>, StorageError> {
        let mut out: Vec<ObjectMeta> = self
            .files()
            .await?
            .into_iter()
            .filter(|(key, partial, _)| !partial && key.starts_with(prefix))
            .map(|(key, _, meta)| meta.with_key(key))
            .collect();
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    /// Temporary files of puts that never finished (the process died between writing and
    /// renaming): their key is the object they were meant to become.
    async fn incomplete_uploads(&self) -> Result<Vec<IncompleteUpload>, StorageError> {
        let base = self.base();
        Ok(self
            .files()
            .await?
            .into_iter()
            .filter(|(_, partial, _)| *partial)
            .map(|(key, _, meta)| IncompleteUpload {
                id: base.join(&key).to_string_lossy().into_owned(),
                key: key.rsplit_once('/').map_or(String::new(), |(dir, _)| format!("{dir}/")),
                initiated: meta.modified,
            })
            .collect())
    }

    async fn abort_upload(&self, upload: &IncompleteUpload) -> Result<(), StorageError> {
        let path = PathBuf::from(&upload.id);
        // Only our own temporary files, only below our directory.
        let ours = path.starts_with(self.base())
            && path.file_name().is_some_and(|n| n.to_string_lossy().starts_with(".partial-"));
        if !ours {
            return Err(StorageError::InvalidKey(upload.id.clone()));
        }
        match tokio::fs::remove_file(&path).await.map_err(not_found) {
            Ok(()) | Err(StorageError::NotFound) => Ok(()),
            Err(err) => Err(err),
        }
    }

    async fn ensure_ready(&self) -> Result<(), StorageError> {
        tokio::fs::create_dir_all(self.base()).await?;
        Ok(())
    }

    /// The bucket's directory is there (a disk that went away, or a mount missing, is not).
    async fn reachable(&self) -> Result<(), StorageError> {
        match tokio::fs::metadata(self.base()).await? {
            meta if meta.is_dir() => Ok(()),
            _ => Err(StorageError::Backend(format!("{} is not a directory", self.base().display()))),
        }
    }
}
