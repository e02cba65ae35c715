//! `verify-storage` on the local directory backend and on S3: every finding kind detected,
//! then repaired (or, for changed bytes, reported and left alone).

use std::sync::Arc;

use diesel::prelude::*;
use toxtemp::db::models::{Answer, FileAsset, FileAssetStatus, FileAuditEvent};
use toxtemp::fileops::{self, FindingKind, StorageCheck, UploadMeta, VerifyOptions};
use toxtemp::storage::{ObjectStore, SourceStream, Store, new_object_key};

use crate::helpers::TestEnv;
use crate::s3::TestS3;

async fn put(store: &dyn ObjectStore, key: &str, data: &[u8]) {
    let mut body = futures_util::stream::iter(vec![Ok(bytes::Bytes::copy_from_slice(data))]);
    let body: &mut SourceStream<'_> = &mut body;
    store.put_stream(key, "text/plain", body).await.unwrap();
}

async fn keep(env: &TestEnv, name: &str, data: &[u8]) -> FileAsset {
    let mut body = futures_util::stream::iter(vec![Ok(bytes::Bytes::copy_from_slice(data))]);
    let body: &mut SourceStream<'_> = &mut body;
    let meta = UploadMeta {
        original_filename: name,
        content_type: "text/plain",
        uploaded_by: Some(env.f.person.id),
        assay_id: Some(env.f.assay.id),
        for_a_run: false,
    };
    fileops::upload_file(env.pool(), env.ctx.store.as_ref(), body, meta).await.unwrap()
}

fn kinds(report: &toxtemp::fileops::Verification) -> Vec<(FindingKind, Option<String>)> {
    let mut kinds: Vec<_> = report.findings.iter().map(|f| (f.kind, f.name.clone())).collect();
    kinds.sort_by_key(|(k, n)| (format!("{k:?}"), n.clone()));
    kinds
}

/// Break the store in every way we look for; `incomplete` makes an unfinished upload (when the
/// backend can list them).
async fn scenario(
    env: &TestEnv,
    incomplete: Option<Box<dyn FnOnce() -> futures_util::future::BoxFuture<'static, ()>>>,
) {
    let store: Store = env.ctx.store.clone();
    let intact = keep(env, "intact.txt", b"the same bytes as at upload").await;
    let gone = keep(env, "gone.txt", b"deleted behind our back").await;
    let changed = keep(env, "changed.txt", b"these bytes will change").await;
    let linked = keep(env, "linked.txt", b"an answer links this one").await;
    let answer = Answer::save_draft(&mut env.conn(), env.f.assay.id, env.f.question_ids[0], "x", &[]).unwrap();
    fileops::link_files_to_answer(&mut env.conn(), answer.id, std::slice::from_ref(&linked.id), &[]).unwrap();
    store.delete(&gone.object_key).await.unwrap();
    store.delete(&linked.object_key).await.unwrap();
    put(store.as_ref(), &changed.object_key, b"THESE bytes will change").await; // same size
    let stray = new_object_key(&uuid::Uuid::new_v4());
    put(store.as_ref(), &stray, b"nobody knows me").await;
    let expect_incomplete = incomplete.is_some();
    if let Some(make) = incomplete {
        make().await;
    }
    let options = VerifyOptions { rehash: true, grace: chrono::Duration::zero(), ..VerifyOptions::default() };

    let report = fileops::verify_storage(env.pool(), store.as_ref(), &options).await.unwrap();
    let mut want = vec![
        (FindingKind::ContentMismatch, Some("changed.txt".to_owned())),
        (FindingKind::MissingObject, Some("gone.txt".to_owned())),
        (FindingKind::MissingObject, Some("linked.txt".to_owned())),
        (FindingKind::StrayObject, None),
    ];
    if expect_incomplete {
        want.push((FindingKind::IncompleteUpload, None));
    }
    want.sort_by_key(|(k, n)| (format!("{k:?}"), n.clone()));
    assert_eq!(kinds(&report), want);
    assert!(!report.is_clean());
    let linked_finding = report.findings.iter().find(|f| f.name.as_deref() == Some("linked.txt")).unwrap();
    assert_eq!(linked_finding.linked, 1, "the report says an answer links it");
    assert_eq!(report.rehashed, 2, "intact and changed were read back");
    assert!(
        FileAsset::find(&mut env.conn(), &gone.id).unwrap().status == FileAssetStatus::Available,
        "no repair asked"
    );

    let repaired =
        fileops::verify_storage(env.pool(), store.as_ref(), &VerifyOptions { repair: true, ..options.clone() })
            .await
            .unwrap();
    let unrepaired: Vec<_> = repaired.findings.iter().filter(|f| !f.repaired).map(|f| f.kind).collect();
    assert_eq!(unrepaired, [FindingKind::ContentMismatch], "changed bytes need a person");
    let mut conn = env.conn();
    for lost in [&gone, &linked] {
        assert_eq!(FileAsset::find(&mut conn, &lost.id).unwrap().status, FileAssetStatus::Lost);
        let events: Vec<String> =
            FileAuditEvent::of_file(&mut conn, &lost.id).unwrap().into_iter().map(|e| e.event).collect();
        assert_eq!(events, ["object_lost"]);
    }
    assert!(repaired.findings.iter().any(|f| f.detail.contains("1 answer(s) link it")));
    assert!(store.head(&stray).await.is_err(), "the stray object is deleted");
    if expect_incomplete {
        assert!(store.incomplete_uploads().await.unwrap().is_empty(), "the incomplete upload is aborted");
    }
    assert_eq!(FileAsset::find(&mut conn, &intact.id).unwrap().status, FileAssetStatus::Available);
    drop(conn);

    let after = fileops::verify_storage(env.pool(), store.as_ref(), &options).await.unwrap();
    assert_eq!(kinds(&after), [(FindingKind::ContentMismatch, Some("changed.txt".to_owned()))]);
    let last = StorageCheck::last(&mut env.conn()).unwrap().expect("the report is kept");
    assert_eq!(last.summary()["findings"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_storage_on_the_local_directory() {
    let mut env = TestEnv::new();
    let root = env.dir.path().join("objects");
    let store = Arc::new(toxtemp::storage::local::LocalStore::new(root.clone(), "toxtemp-local".into()));
    store.ensure_ready().await.unwrap();
    env.ctx = env.ctx.clone().with_store(store);
    // A put that died between writing and renaming leaves its temporary file.
    let partial = root.join("toxtemp-local/fileassets/.partial-deadbeef");
    let make: Box<dyn FnOnce() -> futures_util::future::BoxFuture<'static, ()>> = Box::new(move || {
        Box::pin(async move {
            std::fs::create_dir_all(partial.parent().unwrap()).unwrap();
            std::fs::write(&partial, b"half an object").unwrap();
        })
    });
    scenario(&env, Some(make)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_storage_on_s3() {
    let env = TestEnv::new().with_s3().await;
    // The embedded S3 server cannot list multipart uploads; Garage (in CI) can.
    let make: Option<Box<dyn FnOnce() -> futures_util::future::BoxFuture<'static, ()>>> = if TestS3::external() {
        let store = env.s3().store();
        Some(Box::new(move || {
            Box::pin(async move {
                let key = store.full(&new_object_key(&uuid::Uuid::new_v4()));
                store.client().create_multipart_upload().bucket(store.bucket()).key(key).send().await.unwrap();
            })
        }))
    } else {
        None
    };
    scenario(&env, make).await;
}

#[actix_web::test]
async fn staff_see_the_last_storage_check_on_an_admin_page() {
    use crate::helpers::{TestApp, select_texts};
    let app = TestApp::spawn().await;
    app.login_new("user@example.org", false).await;
    assert_eq!(app.get("/admin/storage").await.status(), 403);
    let mut app = app;
    app.new_browser();
    app.login_new("staff@example.org", true).await;
    assert_eq!(select_texts(&app.get_html("/admin/storage").await, "#never-checked").len(), 1);

    let fields = [
        ("assay_id", "new"),
        ("investigation_id", "new"),
        ("new_investigation_title", "I"),
        ("study_id", "new"),
        ("new_study_title", "S"),
        ("new_assay_title", "A"),
        ("share_files_for_development", "on"),
    ];
    assert_eq!(app.post_start(&fields, &[("protocol.txt", b"kept for benchmarking".to_vec())]).await.status(), 303);
    let kept: FileAsset =
        toxtemp::db::schema::file_assets::table.select(FileAsset::as_select()).first(&mut *app.conn()).unwrap();
    let options = VerifyOptions { rehash: true, ..VerifyOptions::default() };
    fileops::verify_storage(&app.ctx.pool, app.ctx.store.as_ref(), &options).await.unwrap();
    let html = app.get_html("/admin/storage").await;
    assert_eq!(select_texts(&html, "#all-good").len(), 1, "a clean check says so");

    app.ctx.store.delete(&kept.object_key).await.unwrap();
    let repair = VerifyOptions { repair: true, ..options };
    fileops::verify_storage(&app.ctx.pool, app.ctx.store.as_ref(), &repair).await.unwrap();
    let html = app.get_html("/admin/storage").await;
    assert_eq!(select_texts(&html, "#finding-count"), ["1"]);
    let row = select_texts(&html, "#findings tbody td");
    assert_eq!(row[0], "missing object");
    assert_eq!(row[1], kept.object_key);
    assert_eq!(row[2], "protocol.txt");
    assert_eq!(row[4], "yes", "marked lost");
}

/// Pointed at the wrong (empty) bucket, `--repair` would mark every file lost: it holds back
/// and says why, until forced.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repair_that_would_mark_most_files_lost_waits_for_force() {
    let env = TestEnv::new();
    let mut files = Vec::new();
    for i in 0..12 {
        files.push(keep(&env, &format!("f{i}.txt"), b"kept").await);
    }
    let wrong_bucket = toxtemp::storage::memory::MemoryStore::new();
    let repair = VerifyOptions { repair: true, ..VerifyOptions::default() };
    let report = fileops::verify_storage(env.pool(), &wrong_bucket, &repair).await.unwrap();
    assert_eq!(report.findings.len(), 12);
    assert!(report.findings.iter().all(|f| !f.repaired && f.detail.contains("--force")));
    assert!(
        files.iter().all(|f| FileAsset::find(&mut env.conn(), &f.id).unwrap().status == FileAssetStatus::Available)
    );

    let forced = VerifyOptions { force: true, ..repair };
    let report = fileops::verify_storage(env.pool(), &wrong_bucket, &forced).await.unwrap();
    assert!(report.findings.iter().all(|f| f.repaired));
    assert!(files.iter().all(|f| FileAsset::find(&mut env.conn(), &f.id).unwrap().status == FileAssetStatus::Lost));
}
