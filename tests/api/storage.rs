//! The storage contract, run against every backend: memory, a local directory and a real S3
//! protocol (embedded s3s-fs, or Garage in CI).

use std::io;
use std::sync::Arc;

use bytes::Bytes;
use toxtemp::storage::local::LocalStore;
use toxtemp::storage::memory::MemoryStore;
use toxtemp::storage::s3::{PART_SIZE, S3Store};
use toxtemp::storage::{ObjectStore, SourceStream, StorageError, new_object_key, read_all};

use crate::s3::TestS3;

/// Deterministic pseudo-random bytes.
pub fn sample_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// The bytes as a stream of uneven chunks, the way an HTTP body arrives.
pub fn chunked(data: &[u8]) -> impl futures_util::Stream<Item = io::Result<Bytes>> + Send + Unpin + 'static {
    let sizes = [1usize, 7, 4096, 65_536, 1_000_003, 333];
    let mut chunks = Vec::new();
    let (mut at, mut i) = (0, 0);
    while at < data.len() {
        let n = sizes[i % sizes.len()].min(data.len() - at);
        chunks.push(Ok(Bytes::copy_from_slice(&data[at..at + n])));
        at += n;
        i += 1;
    }
    futures_util::stream::iter(chunks)
}

/// A stream that yields `good` bytes, then fails (an aborted upload).
pub fn failing_after(good: usize) -> impl futures_util::Stream<Item = io::Result<Bytes>> + Send + Unpin + 'static {
    let data = sample_bytes(good, 9);
    let mut items: Vec<io::Result<Bytes>> = data.chunks(1024 * 1024).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
    items.push(Err(io::Error::new(io::ErrorKind::ConnectionAborted, "client went away")));
    futures_util::stream::iter(items)
}

fn key() -> String {
    new_object_key(&uuid::Uuid::new_v4())
}

async fn put(store: &dyn ObjectStore, key: &str, data: &[u8]) -> u64 {
    let mut body = chunked(data);
    let body: &mut SourceStream<'_> = &mut body;
    store.put_stream(key, "application/octet-stream", body).await.expect("put")
}

async fn contract(store: &dyn ObjectStore) {
    // Small objects round-trip.
    let small_key = key();
    let small = sample_bytes(10_000, 1);
    assert_eq!(put(store, &small_key, &small).await, 10_000);
    assert_eq!(read_all(store, &small_key).await.unwrap(), small);
    assert_eq!(store.head(&small_key).await.unwrap().size, 10_000);

    // Empty objects too.
    let empty_key = key();
    assert_eq!(put(store, &empty_key, &[]).await, 0);
    assert_eq!(read_all(store, &empty_key).await.unwrap(), Vec::<u8>::new());

    // Larger than two multipart parts, with an odd tail, byte for byte.
    let big_key = key();
    let big = sample_bytes(2 * PART_SIZE + 123_457, 2);
    assert_eq!(put(store, &big_key, &big).await, big.len() as u64);
    let back = read_all(store, &big_key).await.unwrap();
    assert_eq!(back.len(), big.len());
    assert!(back == big, "large object differs after the round trip");

    // Missing objects are our own NotFound.
    let missing = key();
    assert!(matches!(store.get_stream(&missing).await, Err(StorageError::NotFound)));
    assert!(matches!(store.head(&missing).await, Err(StorageError::NotFound)));
    store.delete(&missing).await.expect("deleting a missing object is fine");

    // Listing by prefix sees ours.
    let listed: Vec<String> = store.list("fileassets/").await.unwrap().into_iter().map(|m| m.key).collect();
    for k in [&small_key, &empty_key, &big_key] {
        assert!(listed.contains(k), "{k} listed");
    }

    // Batch delete: one result per key, in order; the objects are gone.
    let keys = vec![small_key.clone(), big_key.clone(), missing.clone(), empty_key.clone()];
    let results = store.delete_many(&keys).await;
    assert_eq!(results.len(), 4);
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    for k in &keys {
        assert!(matches!(store.head(k).await, Err(StorageError::NotFound)), "{k} deleted");
    }

    // Hostile keys never reach the backend.
    let mut body = chunked(b"x");
    let body: &mut SourceStream<'_> = &mut body;
    assert!(matches!(store.put_stream("../escape", "text/plain", body).await, Err(StorageError::InvalidKey(_))));
    assert!(matches!(store.get_stream("/etc/passwd").await, Err(StorageError::InvalidKey(_))));

    // An upload that fails half-way leaves nothing behind — small or multipart.
    for good in [1000, PART_SIZE + 10] {
        let k = key();
        let mut body = failing_after(good);
        let body: &mut SourceStream<'_> = &mut body;
        let err = store.put_stream(&k, "application/pdf", body).await.unwrap_err();
        assert!(matches!(err, StorageError::Source(_)), "{err:?}");
        assert!(matches!(store.head(&k).await, Err(StorageError::NotFound)), "no partial object");
    }
}

#[tokio::test]
async fn the_memory_store_keeps_the_contract() {
    contract(&MemoryStore::new()).await;
}

#[tokio::test]
async fn the_local_store_keeps_the_contract_and_leaves_no_temp_files() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::new(dir.path().to_path_buf(), "bucket".into());
    store.ensure_ready().await.unwrap();
    contract(&store).await;
    let leftovers: Vec<_> = walk(dir.path()).into_iter().filter(|p| p.is_file()).collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        }
        out.push(p);
    }
    out
}

#[tokio::test]
async fn the_s3_store_keeps_the_contract_over_the_wire() {
    let s3 = TestS3::start().await;
    let store = s3.store();
    store.ensure_ready().await.unwrap();
    contract(store.as_ref()).await;
}

#[tokio::test]
async fn wrong_s3_credentials_are_refused() {
    let s3 = TestS3::start().await;
    let mut config = s3.config.clone();
    config.secret_access_key = "wrong-secret".into();
    let store = S3Store::new(&config).unwrap();
    let mut body = chunked(b"secret");
    let body: &mut SourceStream<'_> = &mut body;
    let err = store.put_stream(&key(), "text/plain", body).await.unwrap_err();
    assert!(matches!(err, StorageError::Backend(_)), "{err:?}");
}

#[tokio::test]
async fn an_unreachable_s3_server_is_a_backend_error_not_a_hang() {
    let s3 = TestS3::start().await;
    let mut config = s3.config.clone();
    config.endpoint = Some("http://127.0.0.1:9".into());
    let store = Arc::new(S3Store::new(&config).unwrap());
    assert!(matches!(store.head(&key()).await, Err(StorageError::Backend(_))));
    assert!(store.ensure_ready().await.is_err());
}
