//! The real binary, as an operator runs it.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_toxtemp");

fn toxtemp(dir: &std::path::Path) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.current_dir(dir)
        .env_remove("DATABASE_URL")
        .env_remove("ADMIN_EMAIL")
        .env_remove("ADMIN_PASSWORD")
        .env_remove("TOXTEMP_PASSWORD")
        .env_remove("AWS_STORAGE_BUCKET_NAME")
        .env("RUST_LOG", "info");
    cmd
}

#[test]
fn help_is_available_for_every_command() {
    let commands = [
        "serve",
        "migrate",
        "create-user",
        "set-password",
        "deactivate-user",
        "delete-user",
        "import-questions",
        "cleanup-orphaned-files",
        "verify-storage",
        "evaluate",
        "bench",
    ];
    for sub in commands {
        let out = Command::new(BIN).args([sub, "--help"]).output().unwrap();
        assert!(out.status.success(), "{sub} --help");
        assert!(String::from_utf8_lossy(&out.stdout).contains("Usage"), "{sub}");
    }
}

#[test]
fn import_questions_refuses_a_label_twice() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("t.json");
    std::fs::write(&file, toxtemp::questions::TOXTEMP_V1_JSON).unwrap();
    let first = toxtemp(dir.path()).args(["import-questions", "t.json", "--label", "v9"]).output().unwrap();
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
    assert_eq!(
        String::from_utf8_lossy(&first.stdout).trim(),
        "imported question set \"v9\": 11 sections, 70 subsections, 77 questions"
    );
    let second = toxtemp(dir.path()).args(["import-questions", "t.json", "--label", "v9"]).output().unwrap();
    assert!(!second.status.success());
    assert!(String::from_utf8_lossy(&second.stderr).contains("already loaded"));
}

#[test]
fn create_user_takes_the_password_from_the_environment_only() {
    let dir = tempfile::tempdir().unwrap();
    let out = toxtemp(dir.path())
        .args(["create-user", "--email", "Admin@Example.org", "--superuser"])
        .env("TOXTEMP_PASSWORD", "long enough pw")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "created superuser account admin@example.org");
    // No terminal and no variable: a clear refusal, not a hang.
    let out =
        toxtemp(dir.path()).args(["create-user", "--email", "b@example.org"]).stdin(Stdio::null()).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("TOXTEMP_PASSWORD"));
    let dup = toxtemp(dir.path())
        .args(["create-user", "--email", "admin@example.org"])
        .env("TOXTEMP_PASSWORD", "long enough pw")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&dup.stderr).contains("exists already"));
}

/// `toxtemp` with no arguments in an empty directory: a database and data directory appear,
/// the questions are imported, ADMIN_EMAIL can log in.
#[test]
fn serve_starts_from_an_empty_directory() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = toxtemp(dir.path())
        .env("TOXTEMP_BIND", "127.0.0.1:0")
        .env("ADMIN_EMAIL", "root@example.org")
        .env("ADMIN_PASSWORD", "first admin pw")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut address = None;
    let mut seen = Vec::new();
    while address.is_none() && Instant::now() < deadline {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
            if let Some(rest) = line.split("listening on ").nth(1) {
                address = Some(rest.trim().trim_end_matches('/').to_owned());
            }
            seen.push(line);
        }
    }
    let address = address.unwrap_or_else(|| {
        let _ = child.kill();
        panic!("server did not start: {seen:#?}")
    });
    assert!(seen.iter().any(|l| l.contains("imported the ToxTemp v1 question set")), "{seen:#?}");
    assert!(seen.iter().any(|l| l.contains("SESSION_KEY is not set")), "the loud warning");
    assert!(dir.path().join("data/toxtemp.sqlite3").exists());

    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let status = rt.block_on(async {
        let client = crate::helpers::new_client();
        let page = client.get(format!("{address}/login")).send().await.unwrap().text().await.unwrap();
        let html = scraper::Html::parse_document(&page);
        let token = crate::helpers::select_attr(&html, "meta[name=csrf-token]", "content");
        let form = [("email", "root@example.org"), ("password", "first admin pw"), ("csrf_token", token.as_str())];
        client.post(format!("{address}/login")).form(&form).send().await.unwrap();
        client.get(format!("{address}/admin/")).send().await.unwrap().status()
    });
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(status, 200, "the first admin reaches the admin page");
}

/// Orphans on the embedded default (SQLite + local objects) as the command sees them.
struct OrphanSetup {
    dir: tempfile::TempDir,
    keys: Vec<String>,
}

/// The embedded default's database and object store in `dir`, as the commands open them.
async fn embedded(dir: &std::path::Path) -> (toxtemp::db::Pool, toxtemp::storage::local::LocalStore) {
    use toxtemp::storage::ObjectStore;
    let url = toxtemp::config::DatabaseUrl::Sqlite(dir.join("data/toxtemp.sqlite3"));
    let pool = toxtemp::db::connect(&url).unwrap();
    toxtemp::db::run_migrations(&mut pool.get().unwrap()).unwrap();
    let store = toxtemp::storage::local::LocalStore::new(dir.join("data/objects"), "toxtemp-local".into());
    store.ensure_ready().await.unwrap();
    (pool, store)
}

async fn keep_file(
    pool: &toxtemp::db::Pool,
    store: &toxtemp::storage::local::LocalStore,
    name: &str,
    uploaded_by: Option<i32>,
    assay_id: Option<i32>,
) -> toxtemp::db::models::FileAsset {
    let mut body = futures_util::stream::iter(vec![Ok(bytes::Bytes::from(format!("content of {name}")))]);
    let body: &mut toxtemp::storage::SourceStream<'_> = &mut body;
    let meta = toxtemp::fileops::UploadMeta {
        original_filename: name,
        content_type: "text/plain",
        uploaded_by,
        assay_id,
        for_a_run: false,
    };
    toxtemp::fileops::upload_file(pool, store, body, meta).await.unwrap()
}

async fn orphan_setup(n: usize) -> OrphanSetup {
    let dir = tempfile::tempdir().unwrap();
    let (pool, store) = embedded(dir.path()).await;
    let mut keys = Vec::new();
    for i in 0..n {
        let asset = keep_file(&pool, &store, &format!("old notes {i}.txt"), None, None).await;
        use diesel::prelude::*;
        use toxtemp::db::schema::file_assets;
        diesel::update(file_assets::table.find(&asset.id))
            .set(file_assets::created_at.eq(toxtemp::db::now() - chrono::Duration::days(10)))
            .execute(&mut pool.get().unwrap())
            .unwrap();
        keys.push(asset.object_key);
    }
    OrphanSetup { dir, keys }
}

fn object_path(setup: &OrphanSetup, key: &str) -> std::path::PathBuf {
    setup.dir.path().join("data/objects/toxtemp-local").join(key)
}

#[tokio::test]
async fn cleanup_orphaned_files_lists_in_a_dry_run_deletes_for_real_then_is_a_no_op() {
    let setup = orphan_setup(2).await;
    let run = |args: &[&str]| toxtemp(setup.dir.path()).arg("cleanup-orphaned-files").args(args).output().unwrap();

    let dry = run(&["--dry-run"]);
    assert!(dry.status.success());
    let out = String::from_utf8_lossy(&dry.stdout);
    assert!(out.starts_with("would delete 2 orphaned file(s) older than 7 days (dry run):"), "{out}");
    assert!(out.contains("old notes 0.txt") && out.contains("old notes 1.txt"), "{out}");
    assert!(setup.keys.iter().all(|k| object_path(&setup, k).exists()), "dry run deletes nothing");

    let younger_than_cutoff = run(&["--days", "30"]);
    assert!(String::from_utf8_lossy(&younger_than_cutoff.stdout).contains("no orphaned files older than 30 days"));

    let real = run(&[]);
    assert!(real.status.success(), "{}", String::from_utf8_lossy(&real.stderr));
    let out = String::from_utf8_lossy(&real.stdout);
    assert!(out.starts_with("deleted 2 orphaned file(s)"), "{out}");
    assert!(setup.keys.iter().all(|k| !object_path(&setup, k).exists()), "objects gone");
    assert!(String::from_utf8_lossy(&real.stderr).contains("deleted an orphaned file asset"), "audit log lines");

    let again = run(&[]);
    assert!(again.status.success());
    assert_eq!(String::from_utf8_lossy(&again.stdout).trim(), "no orphaned files older than 7 days");
}

#[tokio::test]
async fn cleanup_orphaned_files_exits_non_zero_and_keeps_the_row_when_an_object_cannot_be_deleted() {
    let setup = orphan_setup(2).await;
    // A non-empty directory where the object should be: deleting it fails.
    let blocked = object_path(&setup, &setup.keys[0]);
    std::fs::remove_file(&blocked).unwrap();
    std::fs::create_dir_all(blocked.join("stuck")).unwrap();

    let out = toxtemp(setup.dir.path()).arg("cleanup-orphaned-files").output().unwrap();
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("deleted 1 orphaned file(s)"), "{text}");
    assert!(text.contains("1 file(s) could not be deleted; their rows are kept"), "{text}");

    // Fixed: the next run deletes it.
    std::fs::remove_dir_all(&blocked).unwrap();
    let out = toxtemp(setup.dir.path()).arg("cleanup-orphaned-files").output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("deleted 1 orphaned file(s)"));
}

#[test]
fn process_drafts_an_assay_from_a_pdf_and_a_docx_with_stored_files() {
    use diesel::prelude::*;
    let dir = tempfile::tempdir().unwrap();
    let url = toxtemp::config::DatabaseUrl::Sqlite(dir.path().join("data/toxtemp.sqlite3"));
    let pool = toxtemp::db::connect(&url).unwrap();
    let assay_id = {
        let mut conn = pool.get().unwrap();
        toxtemp::db::run_migrations(&mut conn).unwrap();
        crate::helpers::fixture(&mut conn).assay.id
    };
    std::fs::write(dir.path().join("sop.pdf"), crate::docs::pdf(&["Cells are seeded at 100000 cells per well."]))
        .unwrap();
    std::fs::write(dir.path().join("paper.docx"), crate::docs::docx(&["Neurite outgrowth is quantified by imaging."]))
        .unwrap();
    let out = toxtemp(dir.path())
        .args(["process", "--assay", &assay_id.to_string(), "--share-files", "sop.pdf", "paper.docx"])
        .env("TOXTEMP_IMPORT_DEFAULT_QUESTIONS", "false")
        .env("TOXTEMP_EXTRACTOR", BIN)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("(2 file(s) stored)"), "{stdout}");
    assert!(stdout.trim_end().ends_with("done: 77 answers"), "{stdout}");
    let mut conn = pool.get().unwrap();
    use toxtemp::db::schema::answer_files;
    let links: i64 = answer_files::table.count().get_result(&mut conn).unwrap();
    assert_eq!(links, 2 * 77);
}

#[tokio::test]
async fn delete_user_says_what_would_go_then_deletes_the_account_and_its_kept_documents_at_once() {
    use toxtemp::db::models::assay::AssayFields;
    use toxtemp::db::models::person::{self, PersonSpec};
    use toxtemp::db::models::{Assay, FileAsset, FileAssetStatus, Investigation, Person, Study};
    let dir = tempfile::tempdir().unwrap();
    let (pool, store) = embedded(dir.path()).await;
    let (leaver, stays, assay) = {
        let mut conn = pool.get().unwrap();
        let spec = |email| PersonSpec { email, display_name: "", is_staff: false, is_superuser: false };
        let leaver = person::create(&mut conn, &spec("leaver@example.org"), "hash").unwrap();
        let stays = person::create(&mut conn, &spec("stays@example.org"), "hash").unwrap();
        let inv = Investigation::create(&mut conn, &leaver, "I", "").unwrap();
        let study = Study::create(&mut conn, inv.id, "S", "").unwrap();
        let fields = AssayFields { title: "A", description: "", question_set_id: None };
        (leaver, stays, Assay::create(&mut conn, study.id, &fields).unwrap())
    };
    let mine = vec![
        keep_file(&pool, &store, "sop.txt", Some(leaver.id), Some(assay.id)).await,
        keep_file(&pool, &store, "paper.txt", Some(leaver.id), Some(assay.id)).await,
        keep_file(&pool, &store, "from a failed run.txt", Some(leaver.id), None).await,
    ];
    let theirs = keep_file(&pool, &store, "other.txt", Some(stays.id), None).await;
    let object = |a: &FileAsset| dir.path().join("data/objects/toxtemp-local").join(&a.object_key);

    let asked = toxtemp(dir.path()).args(["delete-user", "--email", "Leaver@example.org"]).output().unwrap();
    assert!(!asked.status.success(), "without --yes nothing is deleted");
    let out = String::from_utf8_lossy(&asked.stdout);
    assert!(out.contains("would delete leaver@example.org with 1 assay(s) and 3 kept document(s)"), "{out}");
    assert!(mine.iter().all(|a| object(a).exists()));

    let done = toxtemp(dir.path()).args(["delete-user", "--email", "leaver@example.org", "--yes"]).output().unwrap();
    assert!(done.status.success(), "{}", String::from_utf8_lossy(&done.stderr));
    assert!(String::from_utf8_lossy(&done.stdout).contains("deleted leaver@example.org with 1 assay(s) and 3 kept"));
    let mut conn = pool.get().unwrap();
    assert!(Person::find_by_email(&mut conn, "leaver@example.org").unwrap().is_none());
    assert!(Assay::find(&mut conn, assay.id).is_err(), "the work goes with the account");
    for asset in &mine {
        assert!(!object(asset).exists(), "{} deleted from storage at once", asset.original_filename);
        assert_eq!(FileAsset::find(&mut conn, &asset.id).unwrap().status, FileAssetStatus::Deleted);
    }
    for asset in &mine {
        let events = toxtemp::db::models::FileAuditEvent::of_file(&mut conn, &asset.id).unwrap();
        assert_eq!(events.len(), 1, "an audit event per file");
        assert!(events[0].actor.contains("account deletion of leaver@example.org"), "{:?}", events[0]);
    }
    assert!(object(&theirs).exists(), "another person's files stay");
    assert_eq!(FileAsset::find(&mut conn, &theirs.id).unwrap().status, FileAssetStatus::Available);
}

#[test]
fn evaluate_imports_a_folder_runs_it_and_fails_the_build_when_questions_go_unanswered() {
    let dir = tempfile::tempdir().unwrap();
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/benchmark");
    let run = |args: &[&str]| toxtemp(dir.path()).env("LLM_MAX_ATTEMPTS", "1").args(args).output().unwrap();
    let text = |out: &std::process::Output| String::from_utf8_lossy(&out.stdout).into_owned();
    let mini = fixtures.join("mini-toxtemp.json");
    assert!(run(&["import-questions", mini.to_str().unwrap(), "--label", "mini"]).status.success());
    let folder = fixtures.join("neuritox");
    let imported = run(&[
        "evaluate",
        "import-set",
        "--name",
        "NeuriTox",
        "--dir",
        folder.to_str().unwrap(),
        "--question-set",
        "mini",
    ]);
    assert!(imported.status.success(), "{}", String::from_utf8_lossy(&imported.stderr));
    assert_eq!(text(&imported).trim(), "created benchmark set 1 “NeuriTox”");

    let offline = run(&["evaluate", "run", "--set", "1", "--label", "offline"]);
    assert!(offline.status.success(), "{}{}", text(&offline), String::from_utf8_lossy(&offline.stderr));
    let table = text(&offline);
    assert!(table.contains("run 1 started"), "{table}");
    for line in [
        "completeness                  75.0 %",
        "token F1                       0.700",
        "citations verified           100.0 %",
    ] {
        assert!(table.contains(line), "{line:?} in\n{table}");
    }

    let csv = run(&["evaluate", "show", "--run", "1", "--csv"]);
    assert_eq!(text(&csv).lines().count(), 5);
    // An endpoint that is not there: every question fails, and so does the command.
    let broken = run(&["evaluate", "run", "--set", "1", "--base-url", "http://127.0.0.1:9/v1", "--model", "none"]);
    assert!(!broken.status.success());
    assert!(text(&broken).contains("note: 4 of 4 questions got no answer from the model."), "{}", text(&broken));
    let compared = run(&["evaluate", "compare", "--run", "1", "--run", "2"]);
    assert!(compared.status.success());
    assert!(
        text(&compared).lines().any(|l| l.starts_with("completeness") && l.contains("75.0 %") && l.contains("0.0 %"))
    );
    let listed = run(&["evaluate", "list"]);
    assert!(text(&listed).contains("set 1 “NeuriTox” (gold)") && text(&listed).contains("run 2 none"));
    let refused = run(&["evaluate", "run", "--set", "1", "--concurrency", "0"]);
    assert!(!refused.status.success());
    assert!(text(&refused).contains("refused: Concurrency"));
}

#[tokio::test]
async fn verify_storage_reads_every_kept_file_back_and_names_what_differs() {
    let dir = tempfile::tempdir().unwrap();
    let (pool, store) = embedded(dir.path()).await;
    let files = [
        keep_file(&pool, &store, "sop.txt", None, None).await,
        keep_file(&pool, &store, "paper.txt", None, None).await,
        keep_file(&pool, &store, "data.txt", None, None).await,
    ];
    let run = |args: &[&str]| toxtemp(dir.path()).arg("verify-storage").args(args).output().unwrap();
    let out = run(&["--rehash"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let bytes: i64 = files.iter().map(|f| f.size_bytes).sum();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("checked 3 file(s) and 3 object(s), {bytes} bytes, 3 rehashed: all good")
    );
    let object = |f: &toxtemp::db::models::FileAsset| dir.path().join("data/objects/toxtemp-local").join(&f.object_key);
    std::fs::write(object(&files[0]), b"changed behind our back").unwrap();
    std::fs::remove_file(object(&files[1])).unwrap();
    let out = run(&["--rehash"]);
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("size mismatch") && text.contains("sop.txt"), "{text}");
    assert!(text.contains("missing object") && text.contains("paper.txt"), "{text}");
    assert!(text.contains("2 finding(s), 2 unrepaired"), "{text}");
    let json = run(&["--json"]);
    let report: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(report["findings"].as_array().unwrap().len(), 2);
    // Repairing marks the missing one lost; the changed one stays for a person to look at.
    let out = run(&["--repair"]);
    assert!(!out.status.success(), "a size mismatch is not repaired");
    assert!(String::from_utf8_lossy(&out.stdout).contains("[repaired]"));
}

#[test]
fn logs_are_json_lines_when_asked_for() {
    let dir = tempfile::tempdir().unwrap();
    let plain = toxtemp(dir.path()).arg("migrate").output().unwrap();
    assert!(plain.status.success());
    let plain = String::from_utf8_lossy(&plain.stderr);
    assert!(plain.contains("INFO") && plain.contains("database migrations applied"), "{plain}");

    let other = tempfile::tempdir().unwrap();
    let out = toxtemp(other.path()).arg("migrate").env("TOXTEMP_LOG_FORMAT", "json").output().unwrap();
    assert!(out.status.success());
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stderr)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}")))
        .collect();
    let applied = lines.iter().find(|l| l["message"] == "database migrations applied").expect("the migration line");
    assert_eq!(applied["level"], "INFO");
    assert!(applied["applied"].as_u64().is_some_and(|n| n > 0), "fields at the top level: {applied}");
    assert!(applied["timestamp"].is_string());
}
