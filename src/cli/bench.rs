//! `toxtemp bench`: throughput of our storage paths against the raw S3 client, measured in
//! the same run on the same server, with peak memory per phase. Build with `--release`.
//!
//! Uses the configured S3 (AWS_* variables) and a throw-away SQLite database in a temp dir.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use aws_sdk_s3::primitives::ByteStream as SdkByteStream;
use diesel::prelude::*;
use futures_util::{StreamExt, TryStreamExt};
use tokio_util::io::ReaderStream;

use crate::config::{Config, DatabaseUrl, StorageConfig};
use crate::context::AppContext;
use crate::db::models::{FileAsset, FileAssetId, FileAssetStatus};
use crate::db::schema::file_assets;
use crate::db::{self, Pool, write_transaction};
use crate::fileops::{self, FileAssetManager, UploadMeta};
use crate::storage::s3::S3Store;
use crate::storage::{ObjectStore, SourceStream, new_object_key};

const MIB: usize = 1024 * 1024;

#[derive(clap::Args, Debug, Clone)]
pub struct BenchArgs {
    /// Size of the large upload in MiB (also measured at a quarter of it, to show memory
    /// stays flat as the size grows).
    #[arg(long, default_value_t = 256)]
    pub big_mib: usize,
    /// Number of 1 MiB files for the many-files upload and the ZIP.
    #[arg(long, default_value_t = 200)]
    pub files: usize,
    /// Number of orphans to clean up.
    #[arg(long, default_value_t = 10_000)]
    pub orphans: usize,
    /// Number of 1 MiB text files in the one StartingForm submission measured through HTTP.
    #[arg(long, default_value_t = 50)]
    pub form_files: usize,
    /// Concurrent connections for the page load test.
    #[arg(long, default_value_t = 32)]
    pub connections: usize,
    /// Seconds of load per page.
    #[arg(long, default_value_t = 5)]
    pub load_secs: u64,
    /// Only the phases through HTTP.
    #[arg(long)]
    pub http_only: bool,
}

/// What every phase measures against: the raw S3 client (counting its requests) and a
/// scratch directory for files and throw-away databases.
pub struct Bench {
    pub store: Arc<S3Store>,
    pub dir: tempfile::TempDir,
    requests: Arc<AtomicUsize>,
}

pub async fn prepare(config: &Config) -> anyhow::Result<Bench> {
    let StorageConfig::S3(s3) = &config.storage else {
        bail!("the benchmark compares against a raw S3 client: set AWS_STORAGE_BUCKET_NAME and friends");
    };
    let requests = Arc::new(AtomicUsize::new(0));
    let store = Arc::new(S3Store::with_request_counter(s3, requests.clone())?);
    store.ensure_ready().await?;
    println!("storage: S3 bucket {:?} at {}", s3.bucket, s3.endpoint.as_deref().unwrap_or("AWS"));
    Ok(Bench { store, dir: tempfile::tempdir()?, requests })
}

/// The storage phases: uploads big and small, the ZIP, the orphan cleanup (the phases
/// through HTTP are `bench_http`).
pub async fn storage_phases(config: &Config, bench: &Bench, args: &BenchArgs) -> anyhow::Result<()> {
    let (store, dir, requests) = (&bench.store, &bench.dir, &bench.requests);
    let ctx = throwaway_context(config, dir.path())?.with_store(store.clone());
    let pool = ctx.pool.clone();
    println!("{:<34} {:>10} {:>10} {:>7} {:>12}", "phase", "ours MB/s", "raw MB/s", "ratio", "peak RSS MiB");
    for mib in [args.big_mib / 4, args.big_mib] {
        let file = dir.path().join(format!("big-{mib}.bin"));
        write_random_file(&file, mib * MIB)?;
        let raw = timed(|| raw_put_file(store, &file)).await?;
        let (ours, rss) = measure_rss(|| upload_path(&pool, store, &file)).await?;
        report(&format!("upload 1 x {mib} MiB"), (mib * MIB) as f64, ours, raw, rss);
        std::fs::remove_file(&file)?;
    }

    let small = dir.path().join("one-mib.bin");
    write_random_file(&small, MIB)?;
    let raw = timed(|| async {
        for _ in 0..args.files {
            raw_put_file(store, &small).await?;
        }
        Ok(())
    })
    .await?;
    let mut ids = Vec::new();
    let (ours, rss) = measure_rss(|| async {
        for _ in 0..args.files {
            ids.push(upload_path_asset(&pool, store, &small).await?.id);
        }
        Ok(())
    })
    .await?;
    report(&format!("upload {} x 1 MiB", args.files), (args.files * MIB) as f64, ours, raw, rss);

    zip_phase(&pool, store, &ids).await?;
    cleanup_phase(&pool, store, args.orphans, requests).await
}

/// The configured app on a throw-away SQLite database in `dir`.
pub(super) fn throwaway_context(config: &Config, dir: &Path) -> anyhow::Result<AppContext> {
    let mut config = config.clone();
    config.data_dir = dir.to_path_buf();
    config.database = DatabaseUrl::Sqlite(dir.join("bench.sqlite3"));
    AppContext::build(config)
}

async fn zip_phase(pool: &Pool, store: &Arc<S3Store>, ids: &[FileAssetId]) -> anyhow::Result<()> {
    let assets: Vec<FileAsset> = {
        let mut conn = pool.get()?;
        file_assets::table.filter(file_assets::id.eq_any(ids)).select(FileAsset::as_select()).load(&mut conn)?
    };
    let bytes: i64 = assets.iter().map(|a| a.size_bytes).sum();
    let raw = timed(|| async {
        for a in &assets {
            let out = store.client().get_object().bucket(store.bucket()).key(store.full(&a.object_key)).send().await?;
            let mut body = out.body;
            while let Some(chunk) = body.try_next().await? {
                std::hint::black_box(chunk);
            }
        }
        Ok(())
    })
    .await?;
    let plan = fileops::AssayZip {
        assay_id: 0,
        assay_title: "bench".into(),
        entries: assets
            .iter()
            .enumerate()
            .map(|(i, a)| fileops::ZipEntry { asset: a.clone(), path: format!("files/{i}.bin"), questions: vec![] })
            .collect(),
    };
    let shared: crate::storage::Store = store.clone();
    let mut first_byte = None;
    let started = Instant::now();
    let (ours, rss) = measure_rss(|| async {
        let mut stream = fileops::stream_assay_zip(plan.clone(), shared.clone(), Box::new(|_| {}));
        let mut total = 0usize;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk?;
            first_byte.get_or_insert_with(|| started.elapsed());
            total += chunk.len();
        }
        anyhow::ensure!(total as i64 > bytes, "archive shorter than its files");
        Ok(())
    })
    .await?;
    report(&format!("ZIP of {} x 1 MiB vs GETs", assets.len()), bytes as f64, ours, raw, rss);
    if let Some(ttfb) = first_byte {
        println!(
            "  first ZIP byte after {:.0} ms ({:.1} % of the total)",
            ttfb.as_secs_f64() * 1e3,
            100.0 * ttfb.as_secs_f64() / ours.as_secs_f64()
        );
    }
    Ok(())
}

async fn cleanup_phase(pool: &Pool, store: &Arc<S3Store>, count: usize, requests: &AtomicUsize) -> anyhow::Result<()> {
    let old = db::now() - chrono::Duration::days(30);
    let assets: Vec<FileAsset> = (0..count)
        .map(|i| {
            let id = uuid::Uuid::new_v4();
            FileAsset {
                id: id.into(),
                bucket: store.bucket().to_owned(),
                object_key: new_object_key(&id),
                original_filename: format!("orphan-{i}.txt"),
                content_type: "text/plain".into(),
                size_bytes: 16,
                sha256: String::new(),
                status: FileAssetStatus::Available,
                uploaded_by: None,
                assay_id: None,
                created_at: old,
                deleted_at: None,
            }
        })
        .collect();
    futures_util::stream::iter(assets.iter().map(|a| {
        store
            .client()
            .put_object()
            .bucket(store.bucket())
            .key(store.full(&a.object_key))
            .body(SdkByteStream::from_static(b"orphan 0123456789"))
            .send()
    }))
    .buffer_unordered(32)
    .try_collect::<Vec<_>>()
    .await
    .context("creating the orphan objects")?;
    {
        let mut conn = pool.get()?;
        write_transaction(&mut conn, |conn| -> QueryResult<()> {
            // One by one: batch inserts are not in the SQL both backends share.
            for asset in &assets {
                FileAsset::insert(conn, asset)?;
            }
            Ok(())
        })?;
    }
    let before = requests.load(Ordering::Relaxed);
    let started = Instant::now();
    let manager = FileAssetManager { pool: pool.clone(), store: store.clone() };
    let report = manager.cleanup_orphaned(7, "bench").await?;
    let took = started.elapsed();
    let used = requests.load(Ordering::Relaxed) - before;
    anyhow::ensure!(
        report.deleted.len() >= count && report.errors.is_empty(),
        "cleanup incomplete: {:?}",
        report.summary()
    );
    println!(
        "cleanup of {count} orphans: {:.2} s, {used} S3 requests ({:.0} orphans/s)",
        took.as_secs_f64(),
        count as f64 / took.as_secs_f64()
    );
    Ok(())
}

pub(super) async fn raw_put_file(store: &S3Store, path: &Path) -> anyhow::Result<()> {
    let body = SdkByteStream::from_path(path).await?;
    let key = new_object_key(&uuid::Uuid::new_v4());
    store.client().put_object().bucket(store.bucket()).key(store.full(&key)).body(body).send().await?;
    store.delete(&key).await?;
    Ok(())
}

async fn upload_path(pool: &Pool, store: &S3Store, path: &Path) -> anyhow::Result<()> {
    upload_path_asset(pool, store, path).await.map(|_| ())
}

async fn upload_path_asset(pool: &Pool, store: &S3Store, path: &Path) -> anyhow::Result<FileAsset> {
    let file = tokio::fs::File::open(path).await?;
    let mut stream = ReaderStream::with_capacity(file, 64 * 1024);
    let body: &mut SourceStream<'_> = &mut stream;
    let meta = UploadMeta {
        original_filename: "bench.bin",
        content_type: "application/octet-stream",
        uploaded_by: None,
        assay_id: None,
        for_a_run: false,
    };
    Ok(fileops::upload_file(pool, store, body, meta).await?)
}

pub(super) fn write_random_file(path: &Path, len: usize) -> std::io::Result<()> {
    use std::io::Write;
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15 ^ len as u64;
    let mut buf = vec![0u8; MIB];
    for _ in 0..len.div_ceil(MIB) {
        for word in buf.chunks_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            word.copy_from_slice(&x.to_le_bytes()[..word.len()]);
        }
        out.write_all(&buf)?;
    }
    out.flush()
}

pub(super) async fn timed<F, Fut>(f: F) -> anyhow::Result<Duration>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let started = Instant::now();
    f().await?;
    Ok(started.elapsed())
}

/// Time `f` and the process's peak resident memory while it ran (Linux: the high-water mark
/// is reset through /proc/self/clear_refs first).
async fn measure_rss<F, Fut>(f: F) -> anyhow::Result<(Duration, Option<u64>)>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let took = timed(f).await?;
    Ok((took, peak_rss_kib()))
}

fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

pub(super) fn report(phase: &str, bytes: f64, ours: Duration, raw: Duration, rss_kib: Option<u64>) {
    let mbps = |d: Duration| bytes / 1e6 / d.as_secs_f64();
    let rss = rss_kib.map(|k| format!("{:.0}", k as f64 / 1024.0)).unwrap_or_else(|| "n/a".into());
    println!(
        "{phase:<34} {:>10.1} {:>10.1} {:>7.2} {rss:>12}",
        mbps(ours),
        mbps(raw),
        raw.as_secs_f64() / ours.as_secs_f64()
    );
}

/// `toxtemp bench-llm`: the whole pipeline (77 questions, rounds and all) against a fake
/// OpenAI-compatible endpoint that answers after a fixed latency, compared with the ideal
/// for the configured concurrency: Σ over rounds of ⌈questions/concurrency⌉ × latency.
pub async fn llm(config: &Config, latency: Duration) -> anyhow::Result<()> {
    use crate::db::models::assay::AssayFields;
    use crate::db::models::person::{self, PersonSpec};
    use crate::db::models::{Assay, Investigation, QuestionSet, Study};
    use crate::drafting::DraftAssay;
    use crate::llm::Document;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let endpoint = format!("http://{}/v1", listener.local_addr()?);
    tokio::spawn(fake_chat_server(listener, latency));

    let dir = tempfile::tempdir()?;
    let mut config = config.clone();
    config.llm.base_url = Some(endpoint);
    config.llm.api_key = Some("bench".to_owned().into());
    config.storage = StorageConfig::Local { root: dir.path().join("objects"), bucket: "bench".into() };
    let ctx = throwaway_context(&config, dir.path())?;
    let (assay_id, rounds) = {
        let mut conn = ctx.pool.get()?;
        let summary = crate::questions::ensure_default(&mut conn)?.context("questions")?;
        let spec = PersonSpec { email: "bench@example.org", display_name: "", is_staff: false, is_superuser: false };
        let who = person::create(&mut conn, &spec, "x")?;
        let inv = Investigation::create(&mut conn, &who, "bench", "")?;
        let study = Study::create(&mut conn, inv.id, "bench", "")?;
        let fields = AssayFields { title: "bench", description: "", question_set_id: Some(summary.question_set_id) };
        let assay = Assay::create(&mut conn, study.id, &fields)?;
        let questions = QuestionSet::questions(&mut conn, summary.question_set_id)?;
        let rounds: Vec<usize> = (1..=3).map(|r| questions.iter().filter(|q| q.answering_round == r).count()).collect();
        let document = Document::from_text("sop.pdf", "LUHMES cells are differentiated for 6 days.");
        let document = crate::drafting::RunDocument { document, file_asset_id: None };
        let job = DraftAssay {
            assay_id: assay.id,
            documents: vec![document],
            file_asset_ids: vec![],
            question_ids: None,
            images: vec![],
            read_from_storage: false,
            configuration_id: None,
        };
        crate::jobs::enqueue(&mut conn, &job)?;
        (assay.id, rounds)
    };
    let started = Instant::now();
    crate::startup::run_pending_jobs(&ctx).await?;
    let wall = started.elapsed();
    let answers = crate::db::models::Answer::of_assay(&mut *ctx.pool.get()?, assay_id)?.len();
    let c = ctx.config.pipeline.concurrency;
    let ideal = latency * rounds.iter().map(|n| n.div_ceil(c) as u32).sum::<u32>();
    println!(
        "{answers} questions (rounds {rounds:?}), concurrency {c}, latency {} ms: wall {:.2} s, ideal {:.2} s, ratio ideal/wall {:.2}",
        latency.as_millis(),
        wall.as_secs_f64(),
        ideal.as_secs_f64(),
        ideal.as_secs_f64() / wall.as_secs_f64()
    );
    Ok(())
}

/// A minimal HTTP/1.1 chat-completions stand-in: waits `latency`, answers with a citation.
async fn fake_chat_server(listener: tokio::net::TcpListener, latency: Duration) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    loop {
        let Ok((mut socket, _)) = listener.accept().await else { continue };
        tokio::spawn(async move {
            let mut buf = Vec::new();
            loop {
                // Read one request: headers, then Content-Length bytes of body.
                let header_end = loop {
                    if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        break i + 4;
                    }
                    let mut chunk = [0u8; 8192];
                    match socket.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                };
                let head = String::from_utf8_lossy(&buf[..header_end]).to_ascii_lowercase();
                let length: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0);
                while buf.len() < header_end + length {
                    let mut chunk = [0u8; 65536];
                    match socket.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                buf.drain(..header_end + length);
                tokio::time::sleep(latency).await;
                let body = r#"{"choices":[{"message":{"role":"assistant","content":"Differentiated for 6 days _(Source: D1.P1 \"LUHMES cells are differentiated for 6 days\")_."}}],"usage":{"prompt_tokens":100,"completion_tokens":10}}"#;
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                    body.len()
                );
                if socket.write_all(response.as_bytes()).await.is_err() {
                    return;
                }
            }
        });
    }
}
