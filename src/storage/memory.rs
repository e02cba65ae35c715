//! In-memory storage for tests, with switches to make operations fail on purpose.

use std::collections::{BTreeMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::TryStreamExt;

use super::{ByteStream, ObjectMeta, ObjectStore, SourceStream, StorageError, check_key};

#[derive(Default)]
pub struct MemoryStore {
    objects: Mutex<BTreeMap<String, Bytes>>,
    /// Every put fails (after reading its input) while set: "storage is down".
    pub fail_puts: AtomicBool,
    /// When set to n > 0, puts after the first n fail (storage goes down mid-submission).
    pub fail_after_puts: AtomicUsize,
    puts: AtomicUsize,
    gets: AtomicUsize,
    /// Deletes of these keys fail.
    pub fail_deletes: Mutex<HashSet<String>>,
    /// Number of delete requests (single or batch) made.
    pub delete_requests: AtomicUsize,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Objects read so far.
    pub fn gets(&self) -> usize {
        self.gets.load(Ordering::SeqCst)
    }

    /// Puts attempted so far (failed ones included).
    pub fn puts(&self) -> usize {
        self.puts.load(Ordering::SeqCst)
    }

    pub fn keys(&self) -> Vec<String> {
        self.objects.lock().expect("lock").keys().cloned().collect()
    }

    fn remove(&self, key: &str) -> Result<(), StorageError> {
        check_key(key)?;
        if self.fail_deletes.lock().expect("lock").contains(key) {
            return Err(StorageError::Backend("injected delete failure".into()));
        }
        self.objects.lock().expect("lock").remove(key);
        Ok(())
    }
}

#[async_trait]
impl ObjectStore for MemoryStore {
    fn bucket(&self) -> &str {
        "memory"
    }

    async fn put_stream(
        &self,
        key: &str,
        _content_type: &str,
        body: &mut SourceStream<'_>,
    ) -> Result<u64, StorageError> {
        check_key(key)?;
        let mut data = Vec::new();
        while let Some(chunk) = body.try_next().await.map_err(StorageError::Source)? {
            data.extend_from_slice(&chunk);
        }
        let n = self.puts.fetch_add(1, Ordering::SeqCst);
        let limit = self.fail_after_puts.load(Ordering::SeqCst);
        if self.fail_puts.load(Ordering::SeqCst) || (limit > 0 && n >= limit) {
            return Err(StorageError::Backend("injected put failure".into()));
        }
        let size = data.len() as u64;
        self.objects.lock().expect("lock").insert(key.to_owned(), Bytes::from(data));
        Ok(size)
    }

    async fn get_stream(&self, key: &str) -> Result<ByteStream, StorageError> {
        check_key(key)?;
        self.gets.fetch_add(1, Ordering::SeqCst);
        let data = self.objects.lock().expect("lock").get(key).cloned().ok_or(StorageError::NotFound)?;
        // Hand it out in chunks, like a real backend.
        let chunks: Vec<std::io::Result<Bytes>> =
            (0..data.len()).step_by(64 * 1024).map(|i| Ok(data.slice(i..(i + 64 * 1024).min(data.len())))).collect();
        Ok(Box::pin(futures_util::stream::iter(chunks)))
    }

    async fn head(&self, key: &str) -> Result<ObjectMeta, StorageError> {
        check_key(key)?;
        let objects = self.objects.lock().expect("lock");
        let data = objects.get(key).ok_or(StorageError::NotFound)?;
        Ok(ObjectMeta { key: key.to_owned(), size: data.len() as u64, modified: None })
    }

    async fn delete(&self, key: &str) -> Result<(), StorageError> {
        self.delete_requests.fetch_add(1, Ordering::SeqCst);
        self.remove(key)
    }

    async fn delete_many(&self, keys: &[String]) -> Vec<Result<(), StorageError>> {
        self.delete_requests.fetch_add(keys.len().div_ceil(1000), Ordering::SeqCst);
        keys.iter().map(|k| self.remove(k)).collect()
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>, StorageError> {
        let objects = self.objects.lock().expect("lock");
        Ok(objects
            .iter()
            .filter(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| ObjectMeta { key: k.clone(), size: v.len() as u64, modified: None })
            .collect())
    }

    async fn reachable(&self) -> Result<(), StorageError> {
        if self.fail_puts.load(Ordering::SeqCst) {
            return Err(StorageError::Backend("injected: storage is down".into()));
        }
        Ok(())
    }
}
