//! A real S3 wire protocol for tests: Garage when `.ci/run` provides one through TEST_S3_*,
//! else an s3s-fs server embedded on a loopback port (signatures are checked).

use std::sync::Arc;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use toxtemp::config::S3Config;
use toxtemp::storage::ObjectStore;
use toxtemp::storage::s3::S3Store;

const ACCESS_KEY: &str = "AKIATOXTEMPTEST";
const SECRET_KEY: &str = "toxtemp-test-secret-key-0123456789";

pub struct TestS3 {
    pub config: S3Config,
    _dir: Option<tempfile::TempDir>,
    server: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for TestS3 {
    fn drop(&mut self) {
        if let Some(server) = &self.server {
            server.abort();
        }
    }
}

impl TestS3 {
    /// True when the suite runs against an external S3 server (Garage in CI).
    pub fn external() -> bool {
        std::env::var("TEST_S3_ENDPOINT_URL").is_ok_and(|v| !v.is_empty())
    }

    pub async fn start() -> TestS3 {
        if Self::external() {
            let var =
                |n: &str| std::env::var(n).unwrap_or_else(|_| panic!("{n} must be set with TEST_S3_ENDPOINT_URL"));
            let config = S3Config {
                endpoint: Some(var("TEST_S3_ENDPOINT_URL")),
                bucket: var("TEST_S3_BUCKET"),
                access_key_id: var("TEST_S3_ACCESS_KEY_ID"),
                secret_access_key: var("TEST_S3_SECRET_ACCESS_KEY").into(),
                region: std::env::var("TEST_S3_REGION").unwrap_or_else(|_| "garage".into()),
                timeouts: Default::default(),
                // Tests share the bucket: each sees only its own objects.
                key_prefix: format!("test-{}/", uuid::Uuid::new_v4().simple()),
            };
            return TestS3 { config, _dir: None, server: None };
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let bucket = "toxtemp-test";
        std::fs::create_dir_all(dir.path().join(bucket)).expect("bucket dir");
        let fs = s3s_fs::FileSystem::new(dir.path()).expect("s3s-fs");
        let mut builder = s3s::service::S3ServiceBuilder::new(fs);
        builder.set_auth(s3s::auth::SimpleAuth::from_single(ACCESS_KEY, SECRET_KEY));
        let service = builder.build();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let server = tokio::spawn(async move {
            let http = ConnBuilder::new(TokioExecutor::new());
            loop {
                let Ok((socket, _)) = listener.accept().await else { continue };
                let conn = http.serve_connection(TokioIo::new(socket), service.clone()).into_owned();
                tokio::spawn(async move {
                    let _ = conn.await;
                });
            }
        });
        let config = S3Config {
            endpoint: Some(format!("http://127.0.0.1:{port}")),
            bucket: bucket.into(),
            access_key_id: ACCESS_KEY.into(),
            secret_access_key: SECRET_KEY.to_owned().into(),
            region: "us-east-1".into(),
            timeouts: Default::default(),
            key_prefix: String::new(),
        };
        TestS3 { config, _dir: Some(dir), server: Some(server) }
    }

    pub fn store(&self) -> Arc<S3Store> {
        Arc::new(S3Store::new(&self.config).expect("S3 client"))
    }

    /// Keys currently under our prefix.
    pub async fn keys(&self) -> Vec<String> {
        let mut keys: Vec<String> =
            self.store().list("fileassets/").await.expect("list").into_iter().map(|m| m.key).collect();
        keys.sort();
        keys
    }
}

/// A "storage server" that answers every request with `head` and then says nothing more.
async fn stalling_server(head: &'static [u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else { continue };
            tokio::spawn(async move {
                let mut request = [0u8; 4096];
                let _ = socket.read(&mut request).await;
                let _ = socket.write_all(head).await;
                tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
            });
        }
    });
    format!("http://127.0.0.1:{port}")
}

fn impatient(endpoint: String) -> S3Store {
    let timeouts = toxtemp::config::S3Timeouts {
        connect: std::time::Duration::from_secs(2),
        read: std::time::Duration::from_millis(300),
        operation: std::time::Duration::from_secs(2),
        body_idle: std::time::Duration::from_millis(300),
    };
    let config = S3Config {
        endpoint: Some(endpoint),
        bucket: "b".into(),
        access_key_id: "k".into(),
        secret_access_key: "s".to_owned().into(),
        region: "us-east-1".into(),
        timeouts,
        key_prefix: String::new(),
    };
    S3Store::new(&config).unwrap()
}

#[tokio::test]
async fn a_storage_server_that_stops_answering_is_given_up_on() {
    use futures_util::StreamExt;
    use toxtemp::storage::ObjectStore;
    let give_up = std::time::Duration::from_secs(30);
    // Silent after the request: no headers ever come.
    let silent = impatient(stalling_server(b"").await);
    let err = tokio::time::timeout(give_up, silent.get_stream("uploads/x")).await.expect("not stuck").err();
    assert!(err.is_some(), "an error, not a wait");
    // Headers and a few bytes, then nothing: the download stops with an error.
    let head = b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\nContent-Type: application/octet-stream\r\n\r\n0123456789";
    let stalls = impatient(stalling_server(head).await);
    let mut body = stalls.get_stream("uploads/x").await.expect("the headers arrive");
    let read = tokio::time::timeout(give_up, async {
        let mut got = Vec::new();
        while let Some(chunk) = body.next().await {
            match chunk {
                Ok(bytes) => got.extend_from_slice(&bytes),
                Err(err) => return (got, Some(err)),
            }
        }
        (got, None)
    });
    let (got, err) = read.await.expect("not stuck");
    assert_eq!(got, b"0123456789");
    assert_eq!(err.expect("a timeout error").kind(), std::io::ErrorKind::TimedOut);
}

/// Readiness asks S3 whether the bucket answers — and creates nothing when it does not.
#[tokio::test]
async fn reachability_is_asked_without_changing_anything() {
    use toxtemp::storage::ObjectStore;
    let s3 = TestS3::start().await;
    s3.store().ensure_ready().await.unwrap();
    s3.store().reachable().await.expect("the test bucket answers");
    let missing = S3Config { bucket: format!("missing-{}", uuid::Uuid::new_v4().simple()), ..s3.config.clone() };
    let missing = S3Store::new(&missing).unwrap();
    assert!(missing.reachable().await.is_err(), "no bucket: not reachable");
    assert!(missing.reachable().await.is_err(), "and asking did not create it");
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port())
    };
    assert!(impatient(closed).reachable().await.is_err(), "nobody listening");
}
