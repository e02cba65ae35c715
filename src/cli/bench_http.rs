//! `toxtemp bench`, the phases a user takes: the real server started in this process (its own
//! threads, as `serve` runs it), the StartingForm posted by a streaming multipart client,
//! side by side with raw PutObject of the same bytes to the same bucket; the 50-file
//! submission with the server's memory; and the answer page and overview under 32
//! concurrent connections.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::context::AppContext;
use crate::db::models::person::PersonSpec;
use crate::db::models::{Assay, AssayStatus, QuestionSet};
use crate::storage::s3::S3Store;

const MIB: usize = 1024 * 1024;
const PASSWORD: &str = "bench password 1";

/// A logged-in browser of the in-process server.
struct Browser {
    base: String,
    client: reqwest::Client,
    csrf: String,
}

/// Start the app (HTTP server and job workers) on its own threads; returns its port.
fn start_server(ctx: AppContext) -> anyhow::Result<u16> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            match crate::startup::Application::build(ctx) {
                Ok(app) => {
                    let _ = tx.send(Ok(app.port()));
                    if let Err(err) = app.run_until_stopped().await {
                        tracing::error!(error = %err, "bench server stopped");
                    }
                }
                Err(err) => {
                    let _ = tx.send(Err(err));
                }
            }
        })
    });
    rx.recv().context("the bench server did not start")?
}

async fn log_in(ctx: &AppContext, port: u16) -> anyhow::Result<Browser> {
    crate::llm::install_crypto_provider();
    let spec = PersonSpec { email: "bench@example.org", display_name: "Bench", is_staff: true, is_superuser: false };
    crate::auth::create_account(&mut *ctx.pool.get()?, &spec, PASSWORD)?;
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(64)
        .build()?;
    let csrf = |html: &str| -> anyhow::Result<String> {
        let start = html.find("name=\"csrf-token\" content=\"").context("no CSRF token")? + 27;
        Ok(html[start..].split('"').next().unwrap_or_default().to_owned())
    };
    let token = csrf(&client.get(format!("{base}/login")).send().await?.text().await?)?;
    let form = [("email", "bench@example.org"), ("password", PASSWORD), ("csrf_token", token.as_str())];
    let resp = client.post(format!("{base}/login")).form(&form).send().await?;
    if resp.status() != 303 {
        bail!("bench login failed: {}", resp.status());
    }
    let csrf = csrf(&client.get(format!("{base}/add/")).send().await?.text().await?)?;
    Ok(Browser { base, client, csrf })
}

impl Browser {
    /// Submit the StartingForm for a new assay with these files (streamed from disk) and
    /// consent; returns the assay.
    async fn submit(&self, ctx: &AppContext, title: &str, files: &[PathBuf]) -> anyhow::Result<i32> {
        let mut form = reqwest::multipart::Form::new();
        for (k, v) in [
            ("assay_id", "new"),
            ("investigation_id", "new"),
            ("new_investigation_title", "Bench"),
            ("study_id", "new"),
            ("new_study_title", title),
            ("new_assay_title", title),
            ("new_assay_description", "Benchmark"),
            ("share_files_for_development", "on"),
        ] {
            form = form.text(k, v.to_owned());
        }
        for path in files {
            let file = tokio::fs::File::open(path).await?;
            let len = file.metadata().await?.len();
            let body = reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::with_capacity(file, 256 * 1024));
            let name = path.file_name().unwrap_or_default().to_string_lossy().into_owned();
            form = form.part("files", reqwest::multipart::Part::stream_with_length(body, len).file_name(name));
        }
        let url = format!("{}/add/?csrf_token={}", self.base, self.csrf);
        let resp = self.client.post(url).multipart(form).send().await?;
        if resp.status() != 303 {
            bail!("the StartingForm answered {}: {}", resp.status(), resp.text().await.unwrap_or_default());
        }
        let title = title.to_owned();
        let id = ctx
            .db(move |c| {
                use crate::db::schema::assays;
                use diesel::prelude::*;
                Ok::<_, anyhow::Error>(
                    assays::table
                        .filter(assays::title.eq(title))
                        .select(assays::id)
                        .order(assays::id.desc())
                        .first(c)?,
                )
            })
            .await?;
        Ok(id)
    }
}

/// Wait until the assay's run has ended.
async fn drafted(ctx: &AppContext, assay: i32) -> anyhow::Result<()> {
    loop {
        let status = ctx.db(move |c| Ok::<_, anyhow::Error>(Assay::find(c, assay)?.status())).await?;
        match status {
            AssayStatus::Done => return Ok(()),
            AssayStatus::Error => bail!("the bench assay's run failed"),
            _ => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

/// A PDF-looking file of random bytes: accepted by type, unreadable as text, so the request
/// costs storing it, not reading it.
fn write_pdf_like(path: &Path, len: usize) -> anyhow::Result<()> {
    super::bench::write_random_file(path, len)?;
    use std::io::{Seek, Write};
    let mut f = std::fs::OpenOptions::new().write(true).open(path)?;
    f.seek(std::io::SeekFrom::Start(0))?;
    f.write_all(b"%PDF-1.4\n")?;
    Ok(())
}

/// Text files that answer every question of the template (a section per subsection) and
/// fill up to `len` bytes with more prose: the offline provider then drafts real answers,
/// with citations, as a user's run would have them.
fn write_documents(dir: &Path, ctx: &AppContext, count: usize, len: usize) -> anyhow::Result<Vec<PathBuf>> {
    let subsections = {
        let mut conn = ctx.pool.get()?;
        let set = QuestionSet::all(&mut conn)?.into_iter().next().context("no question set")?;
        QuestionSet::subsections(&mut conn, set.id)?
    };
    let prose = "LUHMES cells are seeded at 100,000 cells per well and differentiated for six days; neurite \
                 area is quantified by high-content imaging after calcein staining, and viability by resazurin \
                 reduction. ";
    let mut paths = Vec::new();
    for i in 0..count {
        let mut text = String::with_capacity(len);
        for s in subsections.iter().skip(i % 3).step_by(3) {
            text.push_str(&format!(
                "## {}\n\n{} {}\n\n",
                s.title,
                s.guidance.chars().take(200).collect::<String>(),
                prose
            ));
        }
        let mut n = 0;
        while text.len() < len {
            text.push_str(&format!("Observation {i}.{n}: {prose}\n\n"));
            n += 1;
        }
        text.truncate(len);
        let path = dir.join(format!("document-{i:02}.txt"));
        std::fs::write(&path, text)?;
        paths.push(path);
    }
    Ok(paths)
}

/// Resident memory now (VmRSS) and the peak since the last reset (VmHWM), in MiB.
fn rss_mib() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .map_or(0.0, |kib| kib / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Latencies of `connections` clients GETting `path` for `duration`.
async fn load(
    browser: &Browser,
    path: &str,
    connections: usize,
    duration: Duration,
) -> anyhow::Result<(Vec<Duration>, f64)> {
    let url = format!("{}{path}", browser.base);
    let started = Instant::now();
    let tasks: Vec<_> = (0..connections)
        .map(|_| {
            let (client, url) = (browser.client.clone(), url.clone());
            tokio::spawn(async move {
                let mut seen = Vec::new();
                while started.elapsed() < duration {
                    let at = Instant::now();
                    let resp = client.get(&url).send().await?;
                    if !resp.status().is_success() {
                        bail!("{url}: {}", resp.status());
                    }
                    resp.bytes().await?;
                    seen.push(at.elapsed());
                }
                Ok::<_, anyhow::Error>(seen)
            })
        })
        .collect();
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await??);
    }
    let rate = all.len() as f64 / started.elapsed().as_secs_f64();
    all.sort();
    Ok((all, rate))
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i).map_or(0.0, |d| d.as_secs_f64() * 1e3)
}

pub async fn run(
    config: &crate::config::Config,
    store: Arc<S3Store>,
    dir: &Path,
    args: &super::bench::BenchArgs,
) -> anyhow::Result<()> {
    let mut config = config.clone();
    config.bind = "127.0.0.1:0".parse()?;
    config.llm = crate::config::LlmConfig::default(); // the offline provider: no network in the bench
    config.secure_cookies = false;
    // Room for the large uploads measured here (the defaults are 30 MiB per file, 200 MiB in all).
    config.upload_limits.max_file_bytes = 4 * (args.big_mib as u64) * MIB as u64;
    config.upload_limits.max_total_bytes = 4 * (args.big_mib as u64) * MIB as u64;
    config.upload_limits.max_files = args.form_files.max(20);
    let ctx = super::bench::throwaway_context(&config, dir)?.with_store(store.clone());
    crate::questions::ensure_default(&mut *ctx.pool.get()?)?;
    let port = start_server(ctx.clone())?;
    let browser = log_in(&ctx, port).await?;
    println!();
    println!(
        "through HTTP (the StartingForm, consent on, streaming multipart client) vs raw PutObject of the same bytes"
    );
    println!("{:<34} {:>10} {:>10} {:>7}", "phase", "ours MB/s", "raw MB/s", "ratio");
    for mib in [args.big_mib / 4, args.big_mib] {
        let file = dir.join(format!("form-{mib}.pdf"));
        write_pdf_like(&file, mib * MIB)?;
        let raw = super::bench::timed(|| super::bench::raw_put_file(&store, &file)).await?;
        let title = format!("form {mib}");
        let mut assay = 0;
        let ours = super::bench::timed(|| async {
            assay = browser.submit(&ctx, &title, std::slice::from_ref(&file)).await?;
            Ok(())
        })
        .await?;
        super::bench::report(&format!("form 1 x {mib} MiB"), (mib * MIB) as f64, ours, raw, None);
        std::fs::remove_file(&file)?;
        drafted(&ctx, assay).await?; // its run ends before the next phase starts
    }

    let files = write_documents(dir, &ctx, args.form_files, MIB)?;
    let raw = super::bench::timed(|| async {
        for f in &files {
            super::bench::raw_put_file(&store, f).await?;
        }
        Ok(())
    })
    .await?;
    tokio::time::sleep(Duration::from_millis(500)).await; // earlier runs settle
    let (idle, _) = rss_mib();
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let mut assay = 0;
    let ours = super::bench::timed(|| async {
        assay = browser.submit(&ctx, "form many", &files).await?;
        Ok(())
    })
    .await?;
    super::bench::report(&format!("form {} x 1 MiB text", files.len()), (files.len() * MIB) as f64, ours, raw, None);
    drafted(&ctx, assay).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (after, peak) = rss_mib();
    println!(
        "  process RSS: idle {idle:.0} MiB → {after:.0} MiB after the submission and its run (+{:.0}), peak {peak:.0} MiB",
        after - idle
    );

    println!();
    println!(
        "pages at {} connections for {} s (the load generator runs in this process too)",
        args.connections, args.load_secs
    );
    for (name, path) in [("answer page (77 answers)", format!("/assays/{assay}/answers")), ("overview", "/".to_owned())]
    {
        let bytes = browser.client.get(format!("{}{path}", browser.base)).send().await?.bytes().await?.len();
        let (latencies, rate) = load(&browser, &path, args.connections, Duration::from_secs(args.load_secs)).await?;
        println!(
            "{name:<28} {:>7.0} KB  p50 {:>6.1} ms  p99 {:>6.1} ms  {:>7.0} req/s",
            bytes as f64 / 1e3,
            percentile(&latencies, 0.5),
            percentile(&latencies, 0.99),
            rate
        );
    }
    Ok(())
}
