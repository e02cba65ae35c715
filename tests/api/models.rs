//! Row round-trips: the same values come back on SQLite and PostgreSQL.

use diesel::prelude::*;
use toxtemp::db::models::{
    Answer, AnswerFile, Assay, AssayStatus, FileAsset, FileAssetId, FileAssetStatus, FileDownloadLog, Person,
};
use toxtemp::db::schema::{answer_files, persons};
use toxtemp::db::{DbConn, now};

use crate::helpers::{EmptyDb, TestEnv};

pub fn file_asset(person: &Person, name: &str) -> FileAsset {
    let id = FileAssetId::new();
    FileAsset {
        object_key: format!("uploads/{id}"),
        id,
        bucket: "toxtemp".into(),
        original_filename: name.into(),
        content_type: "application/pdf".into(),
        size_bytes: 5_000_000_000, // > 2^32: needs a real 64-bit column
        sha256: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855".into(),
        status: FileAssetStatus::Available,
        uploaded_by: Some(person.id),
        assay_id: None,
        created_at: now(),
        deleted_at: None,
    }
}

#[test]
fn people_round_trip_with_lower_cased_email_booleans_and_time() {
    let env = TestEnv::new();
    let (mut conn, f) = (env.conn(), &env.f);
    let back = Person::find(&mut conn, f.person.id).unwrap();
    assert_eq!(back, f.person);
    assert!(back.email.ends_with("@trip.org"));
    assert!(back.is_active && !back.is_staff && !back.is_superuser);
    assert_eq!(Person::find_by_email(&mut conn, &back.email.to_uppercase()).unwrap(), Some(back));
}

#[test]
fn assays_round_trip_with_status_and_alerts() {
    let env = TestEnv::new();
    let (mut conn, f) = (env.conn(), &env.f);
    assert_eq!(Assay::find(&mut conn, f.assay.id).unwrap(), f.assay);
    Assay::set_status(&mut conn, f.assay.id, AssayStatus::Scheduled).unwrap();
    Assay::push_alert(&mut conn, f.assay.id, "notes.pdf gave no text").unwrap();
    Assay::push_alert(&mut conn, f.assay.id, "second").unwrap();
    let back = Assay::find(&mut conn, f.assay.id).unwrap();
    assert_eq!(back.status(), AssayStatus::Scheduled);
    assert_eq!(back.alerts(), vec!["notes.pdf gave no text", "second"]);
}

#[test]
fn one_answer_per_assay_and_question_with_edit_history() {
    let env = TestEnv::new();
    let (mut conn, f) = (env.conn(), &env.f);
    let q = f.question_ids[0];
    let first = Answer::save_draft(&mut conn, f.assay.id, q, "draft 1", &["a.pdf".into()]).unwrap();
    let second = Answer::save_draft(&mut conn, f.assay.id, q, "draft 2", &["b.docx".into()]).unwrap();
    assert_eq!(first.id, second.id, "the same row is updated");
    assert_eq!(second.source_documents(), vec!["b.docx"]);
    assert_eq!(Answer::of_assay(&mut conn, f.assay.id).unwrap().len(), 1);

    // The database itself refuses a second row for the pair.
    let dup = diesel::insert_into(toxtemp::db::schema::answers::table)
        .values((
            toxtemp::db::schema::answers::assay_id.eq(f.assay.id),
            toxtemp::db::schema::answers::question_id.eq(q),
            toxtemp::db::schema::answers::created_at.eq(now()),
            toxtemp::db::schema::answers::updated_at.eq(now()),
        ))
        .execute(&mut conn);
    assert!(dup.is_err());

    Answer::edit(&mut conn, &second, f.person.id, "edited", true).unwrap();
    let history = Answer::history(&mut conn, second.id).unwrap();
    assert_eq!(history.len(), 2, "the redraft and the person's edit");
    assert_eq!((history[0].old_text.as_str(), history[0].new_text.as_str()), ("draft 2", "edited"));
    assert_eq!(history[0].editor_id, Some(f.person.id));
    assert_eq!((history[1].old_text.as_str(), history[1].editor_id), ("draft 1", None));
    let overview = Assay::overview_for(&mut conn, &f.person).unwrap();
    assert_eq!((overview[0].accepted, overview[0].drafted, overview[0].total), (1, 1, 77));
}

#[test]
fn file_assets_and_links_round_trip_and_links_are_unique() {
    let env = TestEnv::new();
    let (mut conn, f) = (env.conn(), &env.f);
    let asset = file_asset(&f.person, "protocol.pdf");
    FileAsset::insert(&mut conn, &asset).unwrap();
    assert_eq!(FileAsset::find(&mut conn, &asset.id).unwrap(), asset);

    let answer = Answer::save_draft(&mut conn, f.assay.id, f.question_ids[0], "x", &[]).unwrap();
    let link = (
        answer_files::answer_id.eq(answer.id),
        answer_files::file_id.eq(&asset.id),
        answer_files::created_at.eq(now()),
    );
    diesel::insert_into(answer_files::table).values(link).execute(&mut conn).unwrap();
    assert!(diesel::insert_into(answer_files::table).values(link).execute(&mut conn).is_err());
    let links = AnswerFile::of_answer(&mut conn, answer.id).unwrap();
    assert_eq!(links.len(), 1);
    assert_eq!(links[0].file_id, asset.id);
    assert_eq!(links[0].label, None);
}

#[test]
fn download_logs_survive_the_deletion_of_the_account() {
    let env = TestEnv::new();
    let (mut conn, f) = (env.conn(), &env.f);
    let asset = file_asset(&f.person, "sop.docx");
    FileAsset::insert(&mut conn, &asset).unwrap();
    FileDownloadLog::record(&mut conn, &asset, Some(f.person.id), &f.person.email, "127.0.0.1").unwrap();

    diesel::delete(persons::table.find(f.person.id)).execute(&mut conn).unwrap();
    let logs = FileDownloadLog::all(&mut conn).unwrap();
    assert_eq!(logs.len(), 1);
    assert_eq!(logs[0].person_id, None);
    assert_eq!(logs[0].person_email, f.person.email);
    assert_eq!(logs[0].original_filename, "sop.docx");
    // The investigation went with its owner; the file row stays for the orphan cleanup.
    assert!(Assay::find(&mut conn, f.assay.id).is_err());
    assert_eq!(FileAsset::find(&mut conn, &asset.id).unwrap().uploaded_by, None);
}

#[test]
fn timestamps_compare_the_same_on_both_backends() {
    use toxtemp::db::schema::file_assets;
    let env = TestEnv::new();
    let (mut conn, f) = (env.conn(), &env.f);
    let mut old = file_asset(&f.person, "old.pdf");
    old.created_at = now() - chrono::Duration::days(8);
    let new = file_asset(&f.person, "new.pdf");
    FileAsset::insert(&mut conn, &old).unwrap();
    FileAsset::insert(&mut conn, &new).unwrap();
    let cutoff = now() - chrono::Duration::days(7);
    let older: Vec<String> = file_assets::table
        .filter(file_assets::created_at.lt(cutoff))
        .select(file_assets::original_filename)
        .load(&mut conn)
        .unwrap();
    assert_eq!(older, vec!["old.pdf"]);
}

#[test]
fn the_suite_runs_on_the_backend_it_was_asked_for() {
    let db = EmptyDb::new();
    let conn = &db.conn;
    let want_pg = std::env::var("TEST_DATABASE_URL").is_ok_and(|u| !u.is_empty());
    assert_eq!(matches!(conn, DbConn::Postgres(_)), want_pg);
}

#[derive(diesel::QueryableByName, Debug, PartialEq, Eq, PartialOrd, Ord, Clone)]
struct TableColumn {
    #[diesel(sql_type = diesel::sql_types::Text)]
    table_name: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    column_name: String,
}

/// Every foreign-key column leads an index (or the primary key): lookups by owner, study,
/// assay, file … and the cascades of deletions never scan a whole table.
#[test]
fn every_foreign_key_column_is_indexed() {
    let mut db = EmptyDb::new();
    let conn = &mut db.conn;
    let (fks, leading) = match conn {
        DbConn::Sqlite(_) => (
            r#"SELECT m.name AS table_name, p."from" AS column_name
               FROM sqlite_master m JOIN pragma_foreign_key_list(m.name) p WHERE m.type = 'table'"#,
            r#"SELECT m.name AS table_name, ii.name AS column_name
               FROM sqlite_master m JOIN pragma_index_list(m.name) il JOIN pragma_index_info(il.name) ii
               WHERE m.type = 'table' AND ii.seqno = 0 AND ii.name IS NOT NULL"#,
        ),
        DbConn::Postgres(_) => (
            "SELECT kcu.table_name::text AS table_name, kcu.column_name::text AS column_name
             FROM information_schema.table_constraints tc
             JOIN information_schema.key_column_usage kcu
               ON tc.constraint_name = kcu.constraint_name AND tc.table_schema = kcu.table_schema
             WHERE tc.constraint_type = 'FOREIGN KEY' AND tc.table_schema = current_schema()",
            "SELECT t.relname::text AS table_name, a.attname::text AS column_name
             FROM pg_index i JOIN pg_class t ON t.oid = i.indrelid
             JOIN pg_namespace n ON n.oid = t.relnamespace
             JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = i.indkey[0]
             WHERE n.nspname = current_schema()",
        ),
    };
    let fks: Vec<TableColumn> = diesel::sql_query(fks).load(conn).unwrap();
    let indexed: Vec<TableColumn> = diesel::sql_query(leading).load(conn).unwrap();
    assert!(fks.len() >= 15, "the foreign keys were found: {fks:?}");
    let mut missing: Vec<&TableColumn> = fks.iter().filter(|fk| !indexed.contains(fk)).collect();
    missing.sort();
    missing.dedup();
    assert!(missing.is_empty(), "foreign keys without an index: {missing:?}");
}
