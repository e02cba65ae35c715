//! The seed plan's file operations against a real database and a real S3 protocol.

use std::io::Read;
use std::sync::Arc;

use diesel::prelude::*;
use toxtemp::db::models::{Answer, AnswerFile, FileAsset, FileAssetId, FileAssetStatus};
use toxtemp::db::schema::{answer_files, file_assets, file_audit_events};
use toxtemp::db::{DbConn, Pool, now};
use toxtemp::fileops::{self, CleanupReport, FileAssetManager, UploadError, UploadMeta, compute_sha256};
use toxtemp::storage::{ObjectStore, SourceStream, Store, read_all};

use crate::helpers::{Fixture, TestEnv};
use crate::s3::TestS3;
use crate::storage::{chunked, failing_after, sample_bytes};

/// Store `data` for the fixture's assay through the environment's storage.
async fn upload(env: &TestEnv, name: &str, content_type: &str, data: &[u8]) -> FileAsset {
    try_upload(env, &env.f, name, content_type, data).await.expect("upload")
}

async fn try_upload(
    env: &TestEnv,
    f: &Fixture,
    name: &str,
    content_type: &str,
    data: &[u8],
) -> Result<FileAsset, UploadError> {
    let mut body = chunked(data);
    let body: &mut SourceStream<'_> = &mut body;
    let meta = UploadMeta {
        original_filename: name,
        content_type,
        uploaded_by: Some(f.person.id),
        assay_id: Some(f.assay.id),
        for_a_run: false,
    };
    fileops::upload_file(env.pool(), env.ctx.store.as_ref(), body, meta).await
}

/// The FileAssetManager's cleanup of orphans older than 7 days, as the test user.
async fn cleanup<S: ObjectStore + 'static>(pool: &Pool, store: Arc<S>) -> CleanupReport {
    let manager = FileAssetManager { pool: pool.clone(), store: store as Store };
    manager.cleanup_orphaned(7, "test").await.unwrap()
}

fn file_count(conn: &mut DbConn) -> i64 {
    file_assets::table.count().get_result(conn).unwrap()
}

/// Make an asset look `days` days old.
fn age(conn: &mut DbConn, id: &FileAssetId, days: i64) {
    diesel::update(file_assets::table.find(id))
        .set(file_assets::created_at.eq(now() - chrono::Duration::days(days)))
        .execute(conn)
        .unwrap();
}

const PDF: &[u8] = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n";
const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89";

#[tokio::test]
async fn uploads_of_each_kind_are_stored_under_uuid_keys_with_their_hash() {
    let env = TestEnv::new().with_s3().await;
    let pool = env.pool();
    let s3 = env.s3();
    let store = s3.store();
    let f = &env.f;
    let docx = b"PK\x03\x04 pretend this is word/document.xml".to_vec();
    let csv = b"compound,ec50\nrotenone,0.1\n".to_vec();
    let cases: [(&str, &str, &[u8]); 4] = [
        ("protocol.pdf", "application/pdf", PDF),
        ("SOP v2.docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document", &docx),
        ("data.csv", "text/csv", &csv),
        ("plate.png", "image/png", PNG),
    ];
    for (name, ct, data) in cases {
        let asset = upload(&env, name, ct, data).await;
        assert_eq!(asset.bucket, s3.config.bucket);
        assert_eq!(asset.object_key, format!("fileassets/{}", asset.id.uuid().unwrap().simple()));
        assert!(!asset.object_key.contains(name.split('.').next().unwrap()), "no user data in the key");
        assert_eq!(asset.original_filename, name);
        assert_eq!(asset.content_type, ct);
        assert_eq!(asset.size_bytes, data.len() as i64);
        assert_eq!(asset.sha256, compute_sha256(data).unwrap());
        assert_eq!(asset.uploaded_by, Some(f.person.id));
        let stored = read_all(store.as_ref(), &asset.object_key).await.unwrap();
        assert_eq!(compute_sha256(&stored[..]).unwrap(), asset.sha256, "the stored bytes are the uploaded ones");
        assert_eq!(FileAsset::find(&mut pool.get().unwrap(), &asset.id).unwrap(), asset);
    }
}

#[tokio::test]
async fn a_file_larger_than_two_parts_round_trips_byte_for_byte() {
    let env = TestEnv::new().with_s3().await;
    let s3 = env.s3();
    let store = s3.store();
    let data = sample_bytes(2 * toxtemp::storage::s3::PART_SIZE + 999, 42);
    let asset = upload(&env, "big.pdf", "application/pdf", &data).await;
    assert_eq!(asset.size_bytes, data.len() as i64);
    assert_eq!(asset.sha256, compute_sha256(&data[..]).unwrap());
    assert!(read_all(store.as_ref(), &asset.object_key).await.unwrap() == data);
}

#[tokio::test]
async fn a_failed_upload_leaves_neither_row_nor_object() {
    let env = TestEnv::new().with_s3().await;
    let pool = env.pool();
    let s3 = env.s3();
    let store = s3.store();
    let f = &env.f;
    let before = s3.keys().await;
    let mut body = failing_after(toxtemp::storage::s3::PART_SIZE + 5);
    let body: &mut SourceStream<'_> = &mut body;
    let meta = UploadMeta {
        original_filename: "x.pdf",
        content_type: "application/pdf",
        uploaded_by: None,
        assay_id: None,
        for_a_run: false,
    };
    let err = fileops::upload_file(pool, store.as_ref(), body, meta).await.unwrap_err();
    assert!(matches!(err, UploadError::Source(_)), "{err:?}");
    assert_eq!(file_count(&mut pool.get().unwrap()), 0);
    // The embedded server belongs to this test alone, so its listing is exact; a shared
    // Garage bucket sees other tests' uploads (the storage contract covers it per key).
    if !TestS3::external() {
        assert_eq!(s3.keys().await, before);
    }
    let _ = f;
}

#[tokio::test]
async fn storage_being_down_records_nothing() {
    let env = TestEnv::new();
    let pool = env.pool();
    let store = env.memory.clone();
    store.fail_puts.store(true, std::sync::atomic::Ordering::SeqCst);
    let err = try_upload(&env, &env.f, "a.pdf", "application/pdf", PDF).await.unwrap_err();
    assert!(matches!(err, UploadError::Storage(_)), "{err:?}");
    assert_eq!(file_count(&mut pool.get().unwrap()), 0);
    assert!(store.keys().is_empty());
}

#[tokio::test]
async fn a_database_failure_after_the_put_removes_the_object() {
    let env = TestEnv::new();
    let pool = env.pool();
    let store = env.memory.clone();
    {
        use diesel::connection::SimpleConnection;
        let mut conn = pool.get().unwrap();
        let sql = match &*conn {
            DbConn::Sqlite(_) => {
                "CREATE TRIGGER no_files BEFORE INSERT ON file_assets BEGIN SELECT RAISE(ABORT, 'refused'); END;"
            }
            DbConn::Postgres(_) => {
                "CREATE FUNCTION refuse() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'refused'; END $$ LANGUAGE plpgsql; \
                 CREATE TRIGGER no_files BEFORE INSERT ON file_assets FOR EACH ROW EXECUTE FUNCTION refuse();"
            }
        };
        conn.batch_execute(sql).unwrap();
    }
    let err = try_upload(&env, &env.f, "a.pdf", "application/pdf", PDF).await.unwrap_err();
    assert!(matches!(err, UploadError::Database(_)), "{err:?}");
    assert!(store.keys().is_empty(), "the object went with the failed row");
}

#[tokio::test]
async fn files_link_to_many_answers_and_answers_to_many_files_idempotently() {
    let env = TestEnv::new();
    let pool = env.pool();
    let mut conn = pool.get().unwrap();
    let f = &env.f;
    let a = upload(&env, "a.pdf", "application/pdf", PDF).await;
    let b = upload(&env, "b.png", "image/png", PNG).await;
    let ids = vec![a.id.clone(), b.id.clone()];
    let answers: Vec<Answer> =
        f.question_ids[..3].iter().map(|q| Answer::save_draft(&mut conn, f.assay.id, *q, "x", &[]).unwrap()).collect();

    let links = fileops::link_files_to_answer(&mut conn, answers[0].id, &ids, &[]).unwrap();
    assert_eq!(links.len(), 2);
    for answer in &answers[1..] {
        fileops::link_files_to_answer(&mut conn, answer.id, &ids[..1], &[]).unwrap();
    }
    // Linking again is fine and returns the same rows.
    let again = fileops::link_files_to_answer(&mut conn, answers[0].id, &ids, &[]).unwrap();
    assert_eq!(again.iter().map(|l| l.id).collect::<Vec<_>>(), links.iter().map(|l| l.id).collect::<Vec<_>>());

    let total: i64 = answer_files::table.count().get_result(&mut conn).unwrap();
    assert_eq!(total, 4);
    let of_a: i64 = answer_files::table.filter(answer_files::file_id.eq(&a.id)).count().get_result(&mut conn).unwrap();
    assert_eq!(of_a, 3, "one file, many answers");
    assert_eq!(AnswerFile::of_answer(&mut conn, answers[0].id).unwrap().len(), 2, "one answer, many files");
}

#[tokio::test]
async fn a_missing_or_deleted_file_asset_is_skipped_when_linking() {
    let env = TestEnv::new();
    let pool = env.pool();
    let mut conn = pool.get().unwrap();
    let f = &env.f;
    let kept = upload(&env, "kept.pdf", "application/pdf", PDF).await;
    let gone = upload(&env, "gone.pdf", "application/pdf", PDF).await;
    diesel::update(file_assets::table.find(&gone.id))
        .set(file_assets::status.eq("deleted"))
        .execute(&mut conn)
        .unwrap();
    let answer = Answer::save_draft(&mut conn, f.assay.id, f.question_ids[0], "x", &[]).unwrap();
    let ids = vec![FileAssetId::new(), gone.id.clone(), kept.id.clone()];
    let links = fileops::link_files_to_answer(&mut conn, answer.id, &ids, &[]).unwrap();
    assert_eq!(links.len(), 1);
    assert_eq!(links[0].file_id, kept.id);
}

#[tokio::test]
async fn orphans_are_old_and_unlinked_files_only() {
    let env = TestEnv::new();
    let pool = env.pool();
    let mut conn = pool.get().unwrap();
    let f = &env.f;
    let old_unlinked = upload(&env, "old.pdf", "application/pdf", PDF).await;
    let new_unlinked = upload(&env, "new.pdf", "application/pdf", PDF).await;
    let old_linked = upload(&env, "linked.pdf", "application/pdf", PDF).await;
    let old_deleted = upload(&env, "withdrawn.pdf", "application/pdf", PDF).await;
    for id in [&old_unlinked.id, &old_linked.id, &old_deleted.id] {
        age(&mut conn, id, 8);
    }
    age(&mut conn, &new_unlinked.id, 6);
    diesel::update(file_assets::table.find(&old_deleted.id))
        .set(file_assets::status.eq("deleted"))
        .execute(&mut conn)
        .unwrap();
    let answer = Answer::save_draft(&mut conn, f.assay.id, f.question_ids[0], "x", &[]).unwrap();
    fileops::link_files_to_answer(&mut conn, answer.id, std::slice::from_ref(&old_linked.id), &[]).unwrap();

    let ids = |v: Vec<FileAsset>| v.into_iter().map(|a| a.id).collect::<Vec<_>>();
    assert_eq!(ids(fileops::get_orphaned_file_assets(&mut conn, 7).unwrap()), vec![old_unlinked.id.clone()]);
    assert_eq!(
        ids(toxtemp::fileops::get_orphaned_file_assets(&mut conn, 5).unwrap()).len(),
        2,
        "a younger cut-off includes the 6-day-old"
    );
    // A file whose deletion could not finish is an orphan whatever its age: the cleanup
    // finishes the job.
    diesel::update(file_assets::table.find(&new_unlinked.id))
        .set(file_assets::status.eq("deleting"))
        .execute(&mut conn)
        .unwrap();
    let mut orphans = ids(fileops::get_orphaned_file_assets(&mut conn, 7).unwrap());
    orphans.sort();
    let mut want = vec![old_unlinked.id, new_unlinked.id];
    want.sort();
    assert_eq!(orphans, want);
}

#[tokio::test]
async fn cleanup_deletes_objects_then_rows_and_keeps_an_audit_trail() {
    let env = TestEnv::new().with_s3().await;
    let pool = env.pool();
    let s3 = env.s3();
    let store = s3.store();
    let orphan = upload(&env, "orphan.pdf", "application/pdf", PDF).await;
    let young = upload(&env, "young.pdf", "application/pdf", PDF).await;
    age(&mut pool.get().unwrap(), &orphan.id, 30);

    let report = cleanup(pool, store.clone()).await;
    let (count, errors) = report.summary();
    assert_eq!((count, errors.len()), (1, 0));
    assert!(matches!(store.head(&orphan.object_key).await, Err(toxtemp::storage::StorageError::NotFound)));
    let mut conn = pool.get().unwrap();
    assert!(FileAsset::find(&mut conn, &orphan.id).is_err(), "row deleted");
    assert!(FileAsset::find(&mut conn, &young.id).is_ok(), "young file kept");
    assert!(store.head(&young.object_key).await.is_ok());
    let audit: Vec<(FileAssetId, String, String)> = file_audit_events::table
        .select((file_audit_events::file_id, file_audit_events::event, file_audit_events::actor))
        .load(&mut conn)
        .unwrap();
    assert_eq!(audit, vec![(orphan.id.clone(), "orphan_deleted".into(), "test".into())]);

    // Right after, a second run has nothing to do.
    let again = cleanup(pool, store.clone()).await;
    assert_eq!(again.summary().0, 0);
}

#[tokio::test]
async fn a_failed_object_delete_keeps_the_row_and_is_reported() {
    let env = TestEnv::new();
    let pool = env.pool();
    let store = env.memory.clone();
    let stuck = upload(&env, "stuck.pdf", "application/pdf", PDF).await;
    let fine = upload(&env, "fine.pdf", "application/pdf", PDF).await;
    for a in [&stuck, &fine] {
        age(&mut pool.get().unwrap(), &a.id, 10);
    }
    store.fail_deletes.lock().unwrap().insert(stuck.object_key.clone());
    let report = cleanup(pool, store.clone()).await;
    assert_eq!(report.deleted.iter().map(|a| a.id.clone()).collect::<Vec<_>>(), vec![fine.id.clone()]);
    assert!(report.errors.contains_key(&stuck.id), "{:?}", report.errors);
    let row = FileAsset::find(&mut pool.get().unwrap(), &stuck.id).unwrap();
    assert_eq!(row.status, FileAssetStatus::Available, "kept, and still linkable");
    assert!(store.keys().contains(&stuck.object_key));

    // Fixed storage: the next run finishes the job.
    store.fail_deletes.lock().unwrap().clear();
    let report = cleanup(pool, store.clone()).await;
    assert_eq!(report.summary().0, 1);
    assert!(store.keys().is_empty());
}

#[tokio::test]
async fn a_file_linked_after_listing_is_never_deleted() {
    let env = TestEnv::new();
    let pool = env.pool();
    let store = env.memory.clone();
    let mut conn = pool.get().unwrap();
    let f = &env.f;
    let asset = upload(&env, "late.pdf", "application/pdf", PDF).await;
    age(&mut conn, &asset.id, 10);
    let listed = fileops::get_orphaned_file_assets(&mut conn, 7).unwrap();
    assert_eq!(listed.len(), 1);
    // The LLM run links it between listing and deleting.
    let answer = Answer::save_draft(&mut conn, f.assay.id, f.question_ids[0], "x", &[]).unwrap();
    fileops::link_files_to_answer(&mut conn, answer.id, std::slice::from_ref(&asset.id), &[]).unwrap();
    drop(conn);

    let report = fileops::delete_orphaned_file_assets(pool, &*store, listed, "test").await.unwrap();
    assert!(report.deleted.is_empty());
    assert_eq!(report.skipped, vec![asset.id.clone()]);
    assert_eq!(FileAsset::find(&mut pool.get().unwrap(), &asset.id).unwrap().status, FileAssetStatus::Available);
    assert_eq!(store.keys(), vec![asset.object_key]);
}

#[tokio::test]
async fn cleanup_of_many_orphans_uses_batched_deletes() {
    let env = TestEnv::new();
    let pool = env.pool();
    let store = env.memory.clone();
    for i in 0..1200 {
        let a = upload(&env, &format!("o{i}.txt"), "text/plain", b"x").await;
        age(&mut pool.get().unwrap(), &a.id, 9);
    }
    let report = cleanup(pool, store.clone()).await;
    assert_eq!(report.summary().0, 1200);
    assert!(store.keys().is_empty());
    // 500 per claim chunk → 3 chunks → 3 batch requests, not 1200.
    assert_eq!(store.delete_requests.load(std::sync::atomic::Ordering::SeqCst), 3);
}

fn read_zip(bytes: Vec<u8>) -> zip::ZipArchive<std::io::Cursor<Vec<u8>>> {
    zip::ZipArchive::new(std::io::Cursor::new(bytes)).expect("a valid ZIP")
}

fn entry(zip: &mut zip::ZipArchive<std::io::Cursor<Vec<u8>>>, name: &str) -> Vec<u8> {
    let mut out = Vec::new();
    zip.by_name(name).unwrap_or_else(|_| panic!("{name} in the ZIP")).read_to_end(&mut out).unwrap();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_assay_zip_has_safe_unique_names_the_bytes_and_an_index_by_question() {
    let env = TestEnv::new().with_s3().await;
    let pool = env.pool();
    let s3 = env.s3();
    let store = s3.store();
    let mut conn = pool.get().unwrap();
    let f = &env.f;
    let other = env.other_fixture();
    let a1 = upload(&env, "report.pdf", "application/pdf", PDF).await;
    let a2 = upload(&env, "Report.pdf", "application/pdf", b"%PDF-1.4 second").await;
    let evil1 = upload(&env, "../../x", "text/plain", b"one").await;
    let evil2 = upload(&env, "/etc/passwd", "text/plain", b"two").await;
    let evil3 = upload(&env, "a\0b", "text/plain", b"three").await;
    let withdrawn = upload(&env, "withdrawn.pdf", "application/pdf", PDF).await;
    let foreign = try_upload(&env, &other, "other-assay.pdf", "application/pdf", PDF).await.unwrap();
    diesel::update(file_assets::table.find(&withdrawn.id))
        .set(file_assets::status.eq("deleted"))
        .execute(&mut conn)
        .unwrap();
    let q1 = Answer::save_draft(&mut conn, f.assay.id, f.question_ids[0], "x", &[]).unwrap();
    let q2 = Answer::save_draft(&mut conn, f.assay.id, f.question_ids[1], "y", &[]).unwrap();
    fileops::link_files_to_answer(&mut conn, q1.id, &[a1.id.clone(), a2.id.clone(), withdrawn.id.clone()], &[])
        .unwrap();
    fileops::link_files_to_answer(&mut conn, q2.id, std::slice::from_ref(&a1.id), &[]).unwrap();

    let plan = fileops::plan_assay_zip(&mut conn, f.assay.id).unwrap();
    drop(conn);
    let names: Vec<&str> = plan.entries.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(names, vec!["files/report.pdf", "files/Report (2).pdf", "files/x", "files/passwd", "files/ab"]);

    let handle = tokio::runtime::Handle::current();
    let store_for_zip = store.clone();
    let plan_for_zip = plan.clone();
    let bytes = tokio::task::spawn_blocking(move || {
        let mut out = Vec::new();
        fileops::write_assay_zip(&plan_for_zip, store_for_zip.as_ref(), &mut out, &handle, Box::new(|_| {})).unwrap();
        out
    })
    .await
    .unwrap();
    let mut zip = read_zip(bytes);
    let mut all: Vec<String> = zip.file_names().map(|n| n.expect("entry name").into_owned()).collect();
    all.sort();
    assert_eq!(
        all,
        vec![
            "README.txt",
            "files/Report (2).pdf",
            "files/ab",
            "files/passwd",
            "files/report.pdf",
            "files/x",
            "index.csv",
            "manifest.csv"
        ]
    );
    for name in all.iter() {
        assert!(!name.contains("..") && !name.starts_with('/') && !name.chars().any(char::is_control), "{name}");
    }
    assert_eq!(entry(&mut zip, "files/report.pdf"), PDF);
    assert_eq!(entry(&mut zip, "files/Report (2).pdf"), b"%PDF-1.4 second");
    assert_eq!(entry(&mut zip, "files/x"), b"one");
    assert_eq!(entry(&mut zip, "files/passwd"), b"two");
    assert_eq!(entry(&mut zip, "files/ab"), b"three");
    let index = String::from_utf8(entry(&mut zip, "index.csv")).unwrap();
    assert_eq!(index.lines().filter(|l| l.contains("files/report.pdf")).count(), 2, "{index}");
    assert!(index.contains("1.1 Descriptive full-text title"), "{index}");
    assert!(index.contains("(not linked to an answer yet)"));
    assert!(!index.contains("withdrawn") && !index.contains("other-assay"));
    let manifest = String::from_utf8(entry(&mut zip, "manifest.csv")).unwrap();
    assert!(manifest.contains(&a1.sha256) && manifest.contains(&evil3.sha256));
    assert!(!manifest.contains(".."), "names are stored cleaned, the manifest shows them so");
    let _ = (evil1, evil2, foreign);

    // The streamed form yields the same archive.
    let reported = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let on_streamed = {
        let reported = reported.clone();
        Box::new(move |asset: &toxtemp::db::models::FileAsset| reported.lock().unwrap().push(asset.id.clone()))
    };
    let every_entry: Vec<_> = plan.entries.iter().map(|e| e.asset.id.clone()).collect();
    let mut stream = fileops::stream_assay_zip(plan, store, on_streamed);
    let mut streamed = Vec::new();
    use futures_util::StreamExt;
    while let Some(chunk) = stream.next().await {
        streamed.extend_from_slice(&chunk.unwrap());
    }
    let mut zip = read_zip(streamed);
    assert_eq!(entry(&mut zip, "files/report.pdf"), PDF);
    assert_eq!(*reported.lock().unwrap(), every_entry, "each file reported once, in order, when streamed");
}

#[tokio::test]
async fn an_assay_without_files_has_an_empty_plan() {
    let env = TestEnv::new();
    let pool = env.pool();
    let mut conn = pool.get().unwrap();
    let f = &env.f;
    assert!(fileops::plan_assay_zip(&mut conn, f.assay.id).unwrap().is_empty());
}
