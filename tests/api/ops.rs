//! What operators' machines ask: `/healthz`, `/readyz` and `/metrics`, through the real server.

use std::time::{Duration, Instant};

use toxtemp::config::StorageConfig;
use toxtemp::fileops::{self, VerifyOptions};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::TestApp;

const TOKEN: &str = "metrics-token-for-the-tests";

/// Ask `/readyz` until it answers `status` (answers are reused for a second).
async fn readyz_becomes(app: &TestApp, status: u16) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let resp = app.get("/readyz").await;
        if resp.status() == status {
            return resp.text().await.unwrap();
        }
        assert!(Instant::now() < deadline, "/readyz stayed {} instead of {status}", resp.status());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[actix_web::test]
async fn health_and_readiness_need_no_login_and_say_nothing_more() {
    let app = TestApp::spawn().await;
    let health = app.get("/healthz").await;
    assert_eq!(health.status(), 200);
    assert_eq!(health.text().await.unwrap(), "ok");
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status(), 200);
    assert_eq!(ready.headers()["cache-control"], "no-store");
    assert_eq!(ready.text().await.unwrap(), "ready");
}

#[actix_web::test]
async fn readyz_turns_unready_when_the_database_goes_away_and_ready_when_it_is_back() {
    let app = TestApp::spawn().await;
    assert_eq!(readyz_becomes(&app, 200).await, "ready");
    app.db().take_away(true);
    let body = readyz_becomes(&app, 503).await;
    assert_eq!(body, "not ready", "no detail for anonymous callers");
    app.db().take_away(false);
    readyz_becomes(&app, 200).await;
}

#[actix_web::test]
async fn readyz_turns_unready_when_the_schema_lacks_a_migration() {
    use diesel::prelude::*;
    let app = TestApp::spawn().await;
    let newest: String =
        diesel::sql_query("SELECT version FROM __diesel_schema_migrations ORDER BY version DESC LIMIT 1")
            .get_result::<Version>(&mut *app.conn())
            .unwrap()
            .version;
    let delete = format!("DELETE FROM __diesel_schema_migrations WHERE version = '{newest}'");
    diesel::sql_query(delete).execute(&mut *app.conn()).unwrap();
    readyz_becomes(&app, 503).await;
}

#[derive(diesel::QueryableByName)]
struct Version {
    #[diesel(sql_type = diesel::sql_types::Text)]
    version: String,
}

#[actix_web::test]
async fn readyz_turns_unready_when_storage_goes_away_and_ready_when_it_is_back() {
    let app = TestApp::spawn().await;
    let StorageConfig::Local { root, bucket } = &app.ctx.config.storage else { unreachable!("local by default") };
    let (bucket, elsewhere) = (root.join(bucket), root.join("gone"));
    readyz_becomes(&app, 200).await;
    std::fs::rename(&bucket, &elsewhere).unwrap();
    readyz_becomes(&app, 503).await;
    std::fs::rename(&elsewhere, &bucket).unwrap();
    readyz_becomes(&app, 200).await;
}

#[actix_web::test]
async fn a_server_with_job_workers_is_ready_once_they_run() {
    let app = TestApp::builder().config(|c| c.jobs.workers = 2).spawn().await;
    readyz_becomes(&app, 200).await;
    assert_eq!(app.ctx.queue.workers_alive(), 2);
}

/// The value of one series in the text format (`None` if absent).
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

fn chat_reply() -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(serde_json::json!({
        "choices": [{ "message": { "role": "assistant", "content": "Answer not found in documents." } }],
        "usage": { "prompt_tokens": 100, "completion_tokens": 5 }
    }))
}

#[actix_web::test]
async fn metrics_are_off_without_a_token_and_refused_without_the_right_one() {
    let off = TestApp::spawn().await;
    assert_eq!(off.get("/metrics").await.status(), 404);
    let on = TestApp::builder().config(|c| c.metrics_token = Some(TOKEN.to_owned().into())).spawn().await;
    let bare = on.get("/metrics").await;
    assert_eq!(bare.status(), 401);
    assert_eq!(bare.headers()["www-authenticate"], r#"Bearer realm="metrics""#);
    let wrong = on.client.get(on.url("/metrics")).bearer_auth("metrics-token-for-the-test").send().await.unwrap();
    assert_eq!(wrong.status(), 401);
    assert!(!wrong.text().await.unwrap().contains("toxtemp_"));
}

#[actix_web::test]
async fn metrics_count_an_upload_a_run_and_the_maintenance_commands() {
    let llm = MockServer::start().await;
    Mock::given(method("POST")).and(path("/v1/chat/completions")).respond_with(chat_reply()).mount(&llm).await;
    let uri = llm.uri();
    let app = TestApp::builder()
        .config(move |c| {
            c.metrics_token = Some(TOKEN.to_owned().into());
            c.llm.base_url = Some(format!("{uri}/v1"));
            c.llm.api_key = Some("test-key".to_owned().into());
        })
        .spawn()
        .await;
    app.login_new("user@example.org", false).await;
    let document = b"LUHMES cells are seeded at 100000 cells per well.".to_vec();
    let fields = [
        ("assay_id", "new"),
        ("investigation_id", "new"),
        ("new_investigation_title", "I"),
        ("study_id", "new"),
        ("new_study_title", "S"),
        ("new_assay_title", "A"),
        ("share_files_for_development", "on"),
    ];
    assert_eq!(app.post_start(&fields, &[("sop.txt", document.clone())]).await.status(), 303);
    assert_eq!(app.run_pending_jobs().await, 1);
    let mut out = Vec::new();
    toxtemp::cli::cleanup::run(&app.ctx, 7, false, &mut out).await.unwrap();
    fileops::verify_storage(&app.ctx.pool, app.ctx.store.as_ref(), &VerifyOptions::default()).await.unwrap();

    let resp = app.client.get(app.url("/metrics")).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"].to_str().unwrap().starts_with("text/plain; version=0.0.4"));
    let text = resp.text().await.unwrap();
    let size = document.len() as f64;
    let expect = [
        (r#"toxtemp_http_requests_total{method="POST",route="/add/",status="303"}"#, 1.0),
        (r#"toxtemp_http_request_duration_seconds_count{method="POST",route="/add/"}"#, 1.0),
        (r#"toxtemp_documents_uploaded_total{kept="true"}"#, 1.0),
        (r#"toxtemp_document_bytes_uploaded_total{kept="true"}"#, size),
        (r#"toxtemp_storage_operations_total{operation="put",outcome="ok"}"#, 1.0),
        ("toxtemp_storage_bytes_written_total", size),
        (r#"toxtemp_llm_requests_total{kind="answer",outcome="ok"}"#, 77.0),
        (r#"toxtemp_llm_tokens_total{type="prompt"}"#, 7700.0),
        (r#"toxtemp_llm_tokens_total{type="completion"}"#, 385.0),
        (r#"toxtemp_llm_request_duration_seconds_count{kind="answer"}"#, 77.0),
        (r#"toxtemp_jobs{kind="process_assay",status="done"}"#, 1.0),
        (r#"toxtemp_file_assets{status="available"}"#, 1.0),
        ("toxtemp_cleanup_last_run_deleted", 0.0),
        ("toxtemp_cleanup_last_run_errors", 0.0),
        ("toxtemp_storage_check_unrepaired", 0.0),
        ("toxtemp_job_workers_alive", 0.0),
    ];
    for (series, want) in expect {
        assert_eq!(value(&text, series), Some(want), "{series} in\n{text}");
    }
    let now = chrono::Utc::now().timestamp() as f64;
    for finished in ["toxtemp_cleanup_last_run_timestamp_seconds", "toxtemp_storage_check_last_run_timestamp_seconds"] {
        let at = value(&text, finished).unwrap_or_else(|| panic!("{finished} in\n{text}"));
        assert!((now - at).abs() < 600.0, "{finished} = {at}, now {now}");
    }
    assert!(value(&text, "process_resident_memory_bytes").is_some_and(|rss| rss > 0.0));
}

#[actix_web::test]
async fn storage_errors_are_counted() {
    use std::sync::Arc;
    use std::sync::atomic::Ordering;
    let memory = Arc::new(toxtemp::storage::memory::MemoryStore::new());
    let app = TestApp::builder()
        .store(memory.clone())
        .config(|c| c.metrics_token = Some(TOKEN.to_owned().into()))
        .spawn()
        .await;
    app.login_new("user@example.org", false).await;
    memory.fail_puts.store(true, Ordering::SeqCst);
    let fields = [
        ("assay_id", "new"),
        ("investigation_id", "new"),
        ("new_investigation_title", "I"),
        ("study_id", "new"),
        ("new_study_title", "S"),
        ("new_assay_title", "A"),
        ("share_files_for_development", "on"),
    ];
    assert_eq!(app.post_start(&fields, &[("sop.txt", b"some text".to_vec())]).await.status(), 503);
    let text = app.client.get(app.url("/metrics")).bearer_auth(TOKEN).send().await.unwrap().text().await.unwrap();
    assert!(
        value(&text, r#"toxtemp_storage_operations_total{operation="put",outcome="error"}"#).is_some_and(|n| n >= 1.0),
        "{text}"
    );
    assert_eq!(value(&text, r#"toxtemp_http_requests_total{method="POST",route="/add/",status="503"}"#), Some(1.0));
    assert_eq!(value(&text, r#"toxtemp_documents_uploaded_total{kept="true"}"#), None, "nothing was submitted");
}

/// A database that hangs (here: a lock nobody releases) is given up on: the probe answers
/// 503 in bounded time, and a hung check is not started twice.
#[actix_web::test]
async fn readyz_gives_up_on_a_database_that_does_not_answer() {
    use diesel::connection::SimpleConnection;
    use diesel::r2d2::ManageConnection;
    let app = TestApp::spawn().await;
    if !app.db().url.is_postgres() {
        return; // SQLite readers are never blocked (WAL): the PostgreSQL run covers this.
    }
    readyz_becomes(&app, 200).await;
    let mut locker = toxtemp::db::ConnectionManager::new(app.db().url.clone()).connect().unwrap();
    locker.batch_execute("BEGIN; LOCK TABLE __diesel_schema_migrations IN ACCESS EXCLUSIVE MODE").unwrap();
    readyz_becomes(&app, 503).await;
    assert_eq!(app.get("/readyz").await.status(), 503, "still not ready while the check hangs");
    locker.batch_execute("ROLLBACK").unwrap();
    readyz_becomes(&app, 200).await;
}
