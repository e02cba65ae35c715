//! S3-compatible storage (AWS S3, MinIO, Garage) through aws-sdk-s3.
//!
//! Path-style addressing, static credentials, and checksums only when the operation requires
//! them: the SDK's default request checksums break several S3-compatible servers.
//! Large objects go up as multipart uploads with a few parts in flight; memory use is bounded
//! by `PART_SIZE × (PARTS_IN_FLIGHT + 1)` whatever the object size.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::config::{
    BehaviorVersion, Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
};
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream as SdkByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart, Delete, ObjectIdentifier};
use bytes::{Bytes, BytesMut};
use futures_util::TryStreamExt;
use tokio::task::JoinSet;

use super::{ByteStream, IncompleteUpload, ObjectMeta, ObjectStore, SourceStream, StorageError, check_key};
use crate::config::{ExposeSecret, S3Config};

/// 8 MiB parts: above S3's 5 MiB minimum, few enough requests for large files.
pub const PART_SIZE: usize = 8 * 1024 * 1024;
const PARTS_IN_FLIGHT: usize = 3;
/// A response body with no byte for this long is given up.
/// DeleteObjects takes at most 1000 keys per request.
const DELETE_BATCH: usize = 1000;

/// An S3 timestamp as a UTC time.
fn utc(at: &aws_sdk_s3::primitives::DateTime) -> Option<chrono::NaiveDateTime> {
    chrono::DateTime::from_timestamp(at.secs(), at.subsec_nanos()).map(|t| t.naive_utc())
}

pub struct S3Store {
    client: Client,
    bucket: String,
    /// Longest pause between two chunks of a download.
    body_idle: Duration,
    /// Prepended to every key (`AWS_S3_KEY_PREFIX`): several deployments (or test runs) can
    /// share a bucket without seeing each other's objects.
    prefix: String,
}

fn backend_error<E, R>(what: &str, err: SdkError<E, R>) -> StorageError
where
    E: std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    StorageError::Backend(format!("{what}: {}", DisplayErrorContext(err)))
}

/// Counts the HTTP requests the client sends (retries included), for benchmarks.
#[derive(Debug)]
struct RequestCounter(Arc<AtomicUsize>);

impl aws_sdk_s3::config::Intercept for RequestCounter {
    fn name(&self) -> &'static str {
        "RequestCounter"
    }

    fn read_before_transmit(
        &self,
        _ctx: &aws_sdk_s3::config::interceptors::BeforeTransmitInterceptorContextRef<'_>,
        _rc: &aws_sdk_s3::config::RuntimeComponents,
        _cfg: &mut aws_sdk_s3::config::ConfigBag,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        self.0.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

impl S3Store {
    pub fn new(config: &S3Config) -> anyhow::Result<Self> {
        Self::build(config, None)
    }

    /// Like `new`, counting every HTTP request into `counter`.
    pub fn with_request_counter(config: &S3Config, counter: Arc<AtomicUsize>) -> anyhow::Result<Self> {
        Self::build(config, Some(counter))
    }

    fn build(config: &S3Config, counter: Option<Arc<AtomicUsize>>) -> anyhow::Result<Self> {
        use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
        let http = match &config.endpoint {
            Some(url) if url.starts_with("http://") => aws_smithy_http_client::Builder::new().build_http(),
            _ => aws_smithy_http_client::Builder::new().tls_provider(Provider::Rustls(CryptoMode::Ring)).build_https(),
        };
        let credentials = Credentials::new(
            &config.access_key_id,
            config.secret_access_key.expose_secret(),
            None,
            None,
            "toxtemp-env",
        );
        let t = config.timeouts;
        let timeouts = aws_sdk_s3::config::timeout::TimeoutConfig::builder()
            .connect_timeout(t.connect)
            .read_timeout(t.read)
            .operation_attempt_timeout(t.operation.min(Duration::from_secs(300)))
            .operation_timeout(t.operation)
            .build();
        let mut builder = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .http_client(http)
            .region(Region::new(config.region.clone()))
            .credentials_provider(credentials)
            .force_path_style(true)
            .timeout_config(timeouts)
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired);
        if let Some(url) = &config.endpoint {
            builder = builder.endpoint_url(url);
        }
        if let Some(counter) = counter {
            builder = builder.interceptor(RequestCounter(counter));
        }
        Ok(Self {
            client: Client::from_conf(builder.build()),
            bucket: config.bucket.clone(),
            body_idle: t.body_idle,
            prefix: config.key_prefix.clone(),
        })
    }

    /// The key in the bucket (with the configured prefix).
    pub fn full(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    /// Our key of a key in the bucket (`None` outside our prefix).
    fn ours(&self, full: &str) -> Option<String> {
        full.strip_prefix(self.prefix.as_str()).map(str::to_owned)
    }

    /// The raw SDK client, for benchmarks that compare against plain PutObject/GetObject.
    pub fn client(&self) -> &Client {
        &self.client
    }

    async fn put_single(&self, key: &str, content_type: &str, data: Bytes) -> Result<(), StorageError> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .content_length(data.len() as i64)
            .body(SdkByteStream::from(data))
            .send()
            .await
            .map_err(|e| backend_error("PutObject", e))?;
        Ok(())
    }

    async fn put_multipart(
        &self,
        key: &str,
        content_type: &str,
        reader: &mut PartReader<'_, '_>,
        first: Bytes,
    ) -> Result<u64, StorageError> {
        let created = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .send()
            .await
            .map_err(|e| backend_error("CreateMultipartUpload", e))?;
        let upload_id = created
            .upload_id()
            .ok_or_else(|| StorageError::Backend("CreateMultipartUpload returned no upload id".into()))?
            .to_owned();
        match self.upload_parts(key, &upload_id, reader, first).await {
            Ok((size, parts)) => {
                let done = CompletedMultipartUpload::builder().set_parts(Some(parts)).build();
                let completed = self
                    .client
                    .complete_multipart_upload()
                    .bucket(&self.bucket)
                    .key(key)
                    .upload_id(&upload_id)
                    .multipart_upload(done)
                    .send()
                    .await
                    .map_err(|e| backend_error("CompleteMultipartUpload", e));
                match completed {
                    Ok(_) => Ok(size),
                    Err(err) => {
                        self.abort(key, &upload_id).await;
                        Err(err)
                    }
                }
            }
            Err(err) => {
                self.abort(key, &upload_id).await;
                Err(err)
            }
        }
    }

    async fn upload_parts(
        &self,
        key: &str,
        upload_id: &str,
        reader: &mut PartReader<'_, '_>,
        first: Bytes,
    ) -> Result<(u64, Vec<CompletedPart>), StorageError> {
        let mut in_flight: JoinSet<Result<CompletedPart, StorageError>> = JoinSet::new();
        let mut parts = Vec::new();
        let mut size = 0u64;
        let mut next = Some(first);
        let mut number = 0i32;
        while let Some(data) = next.take() {
            number += 1;
            size += data.len() as u64;
            if in_flight.len() >= PARTS_IN_FLIGHT
                && let Some(done) = in_flight.join_next().await
            {
                parts.push(joined(done)?);
            }
            let request = self
                .client
                .upload_part()
                .bucket(&self.bucket)
                .key(key)
                .upload_id(upload_id)
                .part_number(number)
                .content_length(data.len() as i64)
                .body(SdkByteStream::from(data));
            in_flight.spawn(async move {
                let out = request.send().await.map_err(|e| backend_error("UploadPart", e))?;
                Ok(CompletedPart::builder().part_number(number).set_e_tag(out.e_tag().map(str::to_owned)).build())
            });
            let part = reader.next_part().await?;
            if !part.is_empty() {
                next = Some(part);
            }
        }
        while let Some(done) = in_flight.join_next().await {
            parts.push(joined(done)?);
        }
        parts.sort_by_key(|p| p.part_number());
        Ok((size, parts))
    }

    async fn abort(&self, key: &str, upload_id: &str) {
        let result =
            self.client.abort_multipart_upload().bucket(&self.bucket).key(key).upload_id(upload_id).send().await;
        if let Err(err) = result {
            tracing::warn!(key, error = %DisplayErrorContext(err), "aborting a multipart upload failed");
        }
    }

    async fn delete_batch(&self, keys: &[String]) -> Vec<Result<(), StorageError>> {
        let objects: Result<Vec<ObjectIdentifier>, _> =
            keys.iter().map(|k| ObjectIdentifier::builder().key(k).build()).collect();
        let delete = objects.and_then(|o| Delete::builder().set_objects(Some(o)).quiet(true).build());
        let delete = match delete {
            Ok(d) => d,
            Err(err) => return keys.iter().map(|_| Err(StorageError::Backend(err.to_string()))).collect(),
        };
        match self.client.delete_objects().bucket(&self.bucket).delete(delete).send().await {
            Ok(out) => {
                let failed: std::collections::HashMap<&str, String> = out
                    .errors()
                    .iter()
                    .filter_map(|e| {
                        Some((e.key()?, format!("{}: {}", e.code().unwrap_or("error"), e.message().unwrap_or(""))))
                    })
                    .collect();
                keys.iter()
                    .map(|k| match failed.get(k.as_str()) {
                        Some(msg) => Err(StorageError::Backend(format!("DeleteObjects: {msg}"))),
                        None => Ok(()),
                    })
                    .collect()
            }
            Err(err) => {
                let msg = format!("DeleteObjects: {}", DisplayErrorContext(err));
                keys.iter().map(|_| Err(StorageError::Backend(msg.clone()))).collect()
            }
        }
    }
}

fn joined(
    done: Result<Result<CompletedPart, StorageError>, tokio::task::JoinError>,
) -> Result<CompletedPart, StorageError> {
    done.map_err(|e| StorageError::Backend(format!("upload task failed: {e}")))?
}

/// Cuts a stream of arbitrary chunks into parts of `PART_SIZE` bytes (the last may be short).
struct PartReader<'s, 'a> {
    body: &'s mut SourceStream<'a>,
    leftover: Option<Bytes>,
}

impl PartReader<'_, '_> {
    /// The next part; empty at the end of the stream.
    async fn next_part(&mut self) -> Result<Bytes, StorageError> {
        let mut buf = BytesMut::new();
        loop {
            let chunk = match self.leftover.take() {
                Some(c) => c,
                None => match self.body.try_next().await.map_err(StorageError::Source)? {
                    Some(c) => c,
                    None => return Ok(buf.freeze()),
                },
            };
            let room = PART_SIZE - buf.len();
            if chunk.len() >= room {
                if buf.is_empty() && chunk.len() == room {
                    return Ok(chunk);
                }
                buf.extend_from_slice(&chunk[..room]);
                if chunk.len() > room {
                    self.leftover = Some(chunk.slice(room..));
                }
                return Ok(buf.freeze());
            }
            // Grown as the bytes come (not reserved up front): a small file costs its size.
            buf.extend_from_slice(&chunk);
        }
    }
}

#[async_trait]
impl ObjectStore for S3Store {
    fn bucket(&self) -> &str {
        &self.bucket
    }

    async fn put_stream(
        &self,
        key: &str,
        content_type: &str,
        body: &mut SourceStream<'_>,
    ) -> Result<u64, StorageError> {
        check_key(key)?;
        let key = &self.full(key);
        let mut reader = PartReader { body, leftover: None };
        let first = reader.next_part().await?;
        if first.len() < PART_SIZE {
            let size = first.len() as u64;
            self.put_single(key, content_type, first).await?;
            return Ok(size);
        }
        self.put_multipart(key, content_type, &mut reader, first).await
    }

    async fn get_stream(&self, key: &str) -> Result<ByteStream, StorageError> {
        check_key(key)?;
        let out =
            self.client.get_object().bucket(&self.bucket).key(self.full(key)).send().await.map_err(|err| match err
                .as_service_error()
            {
                Some(e) if e.is_no_such_key() => StorageError::NotFound,
                _ => backend_error("GetObject", err),
            })?;
        let (body, body_idle) = (out.body, self.body_idle);
        // The SDK's timeouts end with the response headers; a body that stalls is cut here.
        let stream = futures_util::stream::try_unfold(body, move |mut body| async move {
            match tokio::time::timeout(body_idle, body.next()).await {
                Ok(Some(Ok(chunk))) => Ok(Some((chunk, body))),
                Ok(Some(Err(err))) => Err(std::io::Error::other(err)),
                Ok(None) => Ok(None),
                Err(_) => Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "the storage server stopped sending")),
            }
        });
        Ok(Box::pin(stream))
    }

    async fn head(&self, key: &str) -> Result<ObjectMeta, StorageError> {
        check_key(key)?;
        let out =
            self.client.head_object().bucket(&self.bucket).key(self.full(key)).send().await.map_err(|err| match err
                .as_service_error()
            {
                Some(e) if e.is_not_found() => StorageError::NotFound,
                _ => backend_error("HeadObject", err),
            })?;
        Ok(ObjectMeta {
            key: key.to_owned(),
            size: out.content_length().unwrap_or(0).max(0) as u64,
            modified: out.last_modified().and_then(utc),
        })
    }

    async fn delete(&self, key: &str) -> Result<(), StorageError> {
        check_key(key)?;
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(self.full(key))
            .send()
            .await
            .map_err(|e| backend_error("DeleteObject", e))?;
        Ok(())
    }

    async fn delete_many(&self, keys: &[String]) -> Vec<Result<(), StorageError>> {
        let mut results = Vec::with_capacity(keys.len());
        for batch in keys.chunks(DELETE_BATCH) {
            let (valid, invalid): (Vec<_>, Vec<_>) = batch.iter().partition(|k| check_key(k).is_ok());
            let valid: Vec<String> = valid.into_iter().cloned().collect();
            let mut outcome: std::collections::HashMap<&str, Result<(), StorageError>> =
                std::collections::HashMap::new();
            if !valid.is_empty() {
                let full: Vec<String> = valid.iter().map(|k| self.full(k)).collect();
                for (key, result) in valid.iter().zip(self.delete_batch(&full).await) {
                    outcome.insert(key.as_str(), result);
                }
            }
            for key in invalid {
                outcome.insert(key.as_str(), Err(StorageError::InvalidKey(key.clone())));
            }
            for key in batch {
                results.push(outcome.remove(key.as_str()).unwrap_or(Ok(())));
            }
        }
        results
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>, StorageError> {
        let mut out = Vec::new();
        let mut pages =
            self.client.list_objects_v2().bucket(&self.bucket).prefix(self.full(prefix)).into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| backend_error("ListObjectsV2", e))?;
            for obj in page.contents() {
                if let Some(key) = obj.key().and_then(|k| self.ours(k)) {
                    out.push(ObjectMeta {
                        key,
                        size: obj.size().unwrap_or(0).max(0) as u64,
                        modified: obj.last_modified().and_then(utc),
                    });
                }
            }
        }
        Ok(out)
    }

    async fn incomplete_uploads(&self) -> Result<Vec<IncompleteUpload>, StorageError> {
        let mut out = Vec::new();
        let (mut key_marker, mut id_marker) = (None::<String>, None::<String>);
        loop {
            let page = self
                .client
                .list_multipart_uploads()
                .bucket(&self.bucket)
                .prefix(self.full(""))
                .set_key_marker(key_marker.clone())
                .set_upload_id_marker(id_marker.clone())
                .send()
                .await
                .map_err(|e| backend_error("ListMultipartUploads", e))?;
            for upload in page.uploads() {
                if let (Some(key), Some(id)) = (upload.key().and_then(|k| self.ours(k)), upload.upload_id()) {
                    out.push(IncompleteUpload { key, id: id.to_owned(), initiated: upload.initiated().and_then(utc) });
                }
            }
            if !page.is_truncated().unwrap_or(false) {
                return Ok(out);
            }
            key_marker = page.next_key_marker().map(str::to_owned);
            id_marker = page.next_upload_id_marker().map(str::to_owned);
        }
    }

    async fn abort_upload(&self, upload: &IncompleteUpload) -> Result<(), StorageError> {
        self.client
            .abort_multipart_upload()
            .bucket(&self.bucket)
            .key(self.full(&upload.key))
            .upload_id(&upload.id)
            .send()
            .await
            .map_err(|e| backend_error("AbortMultipartUpload", e))?;
        Ok(())
    }

    async fn reachable(&self) -> Result<(), StorageError> {
        self.client.head_bucket().bucket(&self.bucket).send().await.map_err(|e| backend_error("HeadBucket", e))?;
        Ok(())
    }

    async fn ensure_ready(&self) -> Result<(), StorageError> {
        match self.client.head_bucket().bucket(&self.bucket).send().await {
            Ok(_) => Ok(()),
            Err(err) if err.as_service_error().is_some_and(|e| e.is_not_found()) => {
                self.client
                    .create_bucket()
                    .bucket(&self.bucket)
                    .send()
                    .await
                    .map_err(|e| backend_error("CreateBucket", e))?;
                tracing::info!(bucket = %self.bucket, "created the storage bucket");
                Ok(())
            }
            Err(err) => Err(StorageError::Backend(format!(
                "HeadBucket {}: {} ({})",
                self.bucket,
                err.code().unwrap_or("unreachable"),
                DisplayErrorContext(&err)
            ))),
        }
    }
}
