//! Any store, counted: every operation and how it ended, and the bytes written, go to the
//! application's [`Metrics`]. The application context wraps its store in this once, so no
//! caller has to remember to count.

use std::sync::Arc;

use async_trait::async_trait;

use super::{ByteStream, IncompleteUpload, ObjectMeta, ObjectStore, SourceStream, StorageError, Store};
use crate::telemetry::Metrics;
use crate::telemetry::metrics::StorageOutcome;

pub struct MeteredStore {
    inner: Store,
    metrics: Arc<Metrics>,
}

impl MeteredStore {
    pub fn wrap(inner: Store, metrics: Arc<Metrics>) -> Store {
        Arc::new(Self { inner, metrics })
    }

    fn count<T>(&self, operation: &str, result: &Result<T, StorageError>) {
        self.metrics.storage_operation(operation, outcome(result.as_ref().err()));
    }
}

fn outcome(error: Option<&StorageError>) -> StorageOutcome {
    match error {
        None => StorageOutcome::Ok,
        Some(StorageError::NotFound) => StorageOutcome::NotFound,
        Some(StorageError::Source(_)) => StorageOutcome::ClientAborted,
        Some(_) => StorageOutcome::Error,
    }
}

#[async_trait]
impl ObjectStore for MeteredStore {
    fn bucket(&self) -> &str {
        self.inner.bucket()
    }

    async fn put_stream(
        &self,
        key: &str,
        content_type: &str,
        body: &mut SourceStream<'_>,
    ) -> Result<u64, StorageError> {
        let result = self.inner.put_stream(key, content_type, body).await;
        self.count("put", &result);
        if let Ok(bytes) = &result {
            self.metrics.storage_bytes_written(*bytes);
        }
        result
    }

    async fn get_stream(&self, key: &str) -> Result<ByteStream, StorageError> {
        let result = self.inner.get_stream(key).await;
        self.count("get", &result);
        result
    }

    async fn head(&self, key: &str) -> Result<ObjectMeta, StorageError> {
        let result = self.inner.head(key).await;
        self.count("head", &result);
        result
    }

    async fn delete(&self, key: &str) -> Result<(), StorageError> {
        let result = self.inner.delete(key).await;
        self.count("delete", &result);
        result
    }

    async fn delete_many(&self, keys: &[String]) -> Vec<Result<(), StorageError>> {
        let results = self.inner.delete_many(keys).await;
        for result in &results {
            self.count("delete", result);
        }
        results
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>, StorageError> {
        let result = self.inner.list(prefix).await;
        self.count("list", &result);
        result
    }

    async fn incomplete_uploads(&self) -> Result<Vec<IncompleteUpload>, StorageError> {
        let result = self.inner.incomplete_uploads().await;
        self.count("list_uploads", &result);
        result
    }

    async fn abort_upload(&self, upload: &IncompleteUpload) -> Result<(), StorageError> {
        let result = self.inner.abort_upload(upload).await;
        self.count("abort_upload", &result);
        result
    }

    async fn ensure_ready(&self) -> Result<(), StorageError> {
        let result = self.inner.ensure_ready().await;
        self.count("ensure_ready", &result);
        result
    }

    async fn reachable(&self) -> Result<(), StorageError> {
        let result = self.inner.reachable().await;
        self.count("reachable", &result);
        result
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use super::*;
    use crate::storage::memory::MemoryStore;

    #[tokio::test]
    async fn operations_are_counted_by_outcome_and_missing_objects_are_not_errors() {
        let metrics = Arc::new(Metrics::new());
        let memory = Arc::new(MemoryStore::new());
        let store = MeteredStore::wrap(memory.clone(), metrics.clone());
        let mut body = futures_util::stream::iter(vec![Ok(bytes::Bytes::from_static(b"twelve bytes"))]);
        store.put_stream("fileassets/a", "text/plain", &mut body).await.unwrap();
        assert!(matches!(store.head("fileassets/missing").await, Err(StorageError::NotFound)));
        memory.fail_puts.store(true, Ordering::SeqCst);
        let mut body = futures_util::stream::iter(vec![Ok(bytes::Bytes::from_static(b"x"))]);
        assert!(store.put_stream("fileassets/b", "text/plain", &mut body).await.is_err());
        let text = metrics.scrape(0, &Default::default());
        assert!(text.contains(r#"toxtemp_storage_operations_total{operation="put",outcome="ok"} 1"#));
        assert!(text.contains(r#"toxtemp_storage_operations_total{operation="put",outcome="error"} 1"#));
        assert!(text.contains(r#"toxtemp_storage_operations_total{operation="head",outcome="not_found"} 1"#));
        assert!(text.contains("toxtemp_storage_bytes_written_total 12"));
    }
}
