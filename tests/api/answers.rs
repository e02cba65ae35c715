//! The answer page, exports, consent withdrawal and the staff pages with the ZIP download.

use std::io::Read;

use diesel::prelude::*;
use toxtemp::db::models::{Answer, FileAsset, FileDownloadLog, QuestionSet};
use toxtemp::db::schema::{file_assets, file_audit_events, jobs};
use toxtemp::fileops::compute_sha256;

use crate::docs;
use crate::helpers::{TestApp, has_attr, location, select_attr, select_texts};

pub fn files() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("sop.pdf", docs::pdf(&[docs::SEEDING])),
        ("paper.docx", docs::docx(&["Neurite outgrowth is quantified by high-content imaging."])),
    ]
}

/// Log in a new user, draft an assay from the two files (consent given), run the job.
pub async fn drafted(app: &TestApp, email: &str) -> i32 {
    app.login_new(email, false).await;
    let (_, _, assay) = app.create_tree("NeuriTox").await;
    let id = assay.to_string();
    let resp = app.post_start(&[("assay_id", &id), ("share_files_for_development", "on")], &files()).await;
    assert_eq!(resp.status(), 303);
    app.run_pending_jobs().await;
    assay
}

fn question_id(app: &TestApp, index: usize) -> i32 {
    QuestionSet::questions(&mut app.conn(), 1).unwrap()[index].id
}

#[actix_web::test]
async fn the_answer_page_shows_sections_answers_citations_and_files() {
    let app = TestApp::spawn().await;
    let assay = drafted(&app, "a@example.org").await;
    let page = app.get_html(&format!("/assays/{assay}/answers")).await;
    assert_eq!(select_texts(&page, "#section-index a").len(), 12, "11 sections and the regenerate form");
    assert_eq!(select_texts(&page, ".question").len(), 77);
    assert_eq!(select_texts(&page, "#total-count"), vec!["77"]);
    assert_eq!(select_texts(&page, "#accepted-count"), vec!["0"]);
    let citations = select_texts(&page, ".answer-html .citation");
    assert!(citations.contains(&"sop.pdf · page 1".to_owned()), "{citations:?}");
    let kept = select_texts(&page, ".kept-file");
    assert!(kept.contains(&"sop.pdf (cited)".to_owned()), "{kept:?}");
    assert!(kept.contains(&"paper.docx (context)".to_owned()), "{kept:?}");
}

#[actix_web::test]
async fn edits_and_accepts_persist_with_history_and_text_is_never_raw_html() {
    let app = TestApp::spawn().await;
    let assay = drafted(&app, "a@example.org").await;
    let q = question_id(&app, 0);
    let resp = app
        .post_form(
            &format!("/assays/{assay}/answers/{q}"),
            &[("text", "<script>alert('x')</script> Checked _(Source: sop.pdf)_"), ("accepted", "on")],
        )
        .await;
    assert_eq!(location(&resp), format!("/assays/{assay}/answers#q{q}"));
    let body = app.get(&format!("/assays/{assay}/answers")).await.text().await.unwrap();
    assert!(!body.contains("<script>alert"), "escaped");
    let page = scraper::Html::parse_document(&body);
    let card = format!("#q{q}");
    assert_eq!(select_attr(&page, &format!("{card} .accept-button"), "data-accepted"), "true", "shown as accepted");
    assert!(
        select_texts(&page, &format!("{card} .answer-html")).join("").contains("<script>alert('x')</script> Checked")
    );
    assert_eq!(select_texts(&page, "#accepted-count"), vec!["1"]);
    assert!(select_texts(&page, &format!("{card} textarea")).is_empty(), "the editor is loaded on demand");
    // The editor: the text as saved, the switch on, the history.
    let editor = app.get_html(&format!("/assays/{assay}/answers/{q}/edit")).await;
    assert_eq!(
        select_texts(&editor, "textarea[name=text]"),
        ["<script>alert('x')</script> Checked _(Source: sop.pdf)_"]
    );
    assert!(has_attr(&editor, "input[name=accepted]", "checked"));
    assert_eq!(select_texts(&editor, ".history li .fw-semibold"), vec!["a@example.org"]);
    let fragment = app.get(&format!("/assays/{assay}/answers/{q}/edit?fragment=1")).await.text().await.unwrap();
    assert!(fragment.starts_with(&format!("<div class=\"edit-body\" id=\"edit-{q}-body\">")), "{fragment}");
    // Accepting and taking it back, without touching the text.
    let resp = app.post_form(&format!("/assays/{assay}/answers/{q}/accept"), &[("accepted", "off")]).await;
    assert_eq!(resp.status(), 303);
    let answer = Answer::of_assay(&mut app.conn(), assay).unwrap().into_iter().find(|a| a.question_id == q).unwrap();
    assert!(!answer.accepted && answer.text.starts_with("<script>"));
    app.post_form(&format!("/assays/{assay}/answers/{q}/accept"), &[("accepted", "on")]).await;
    assert_eq!(select_texts(&app.get_html(&format!("/assays/{assay}/answers")).await, "#accepted-count"), ["1"]);
    let answer = Answer::of_assay(&mut app.conn(), assay).unwrap().into_iter().find(|a| a.question_id == q).unwrap();
    assert!(answer.accepted);
    // An answer can be written for a question the model did not draft, and un-accepted.
    let resp = app.post_form(&format!("/assays/{assay}/answers/{q}"), &[("text", "plain")]).await;
    assert_eq!(resp.status(), 303);
    assert!(
        !Answer::of_assay(&mut app.conn(), assay).unwrap().into_iter().find(|a| a.question_id == q).unwrap().accepted
    );
    assert_eq!(app.post_form(&format!("/assays/{assay}/answers/999999"), &[("text", "x")]).await.status(), 404);
}

#[actix_web::test]
async fn regenerating_selected_questions_schedules_them_with_the_new_files() {
    let app = TestApp::spawn().await;
    let assay = drafted(&app, "a@example.org").await;
    let (q1, q2) = (question_id(&app, 2).to_string(), question_id(&app, 7).to_string());
    let token = app.csrf_token().await;
    let form = reqwest::multipart::Form::new()
        .text("question_ids", q1.clone())
        .text("question_ids", q2.clone())
        .text("share_files_for_development", "on")
        .part(
            "files",
            reqwest::multipart::Part::bytes(b"New protocol: day 6 imaging.".to_vec()).file_name("update.txt"),
        );
    let resp = app
        .client
        .post(app.url(&format!("/assays/{assay}/regenerate?csrf_token={token}")))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    let payloads: Vec<String> =
        jobs::table.order(jobs::id.desc()).select(jobs::payload).load(&mut *app.conn()).unwrap();
    let job: toxtemp::drafting::DraftAssay = serde_json::from_str(&payloads[0]).unwrap();
    assert_eq!(job.question_ids, Some(vec![q1.parse().unwrap(), q2.parse().unwrap()]));
    assert_eq!(job.file_asset_ids.len(), 1);
    app.run_pending_jobs().await;
    let update = FileAsset::find(&mut app.conn(), &job.file_asset_ids[0]).unwrap();
    assert_eq!(update.original_filename, "update.txt");
    // Same validation as the StartingForm.
    let token = app.csrf_token().await;
    let bad = reqwest::multipart::Form::new()
        .text("question_ids", q1)
        .part("files", reqwest::multipart::Part::bytes(b"MZ".to_vec()).file_name("x.exe"));
    let resp = app
        .client
        .post(app.url(&format!("/assays/{assay}/regenerate?csrf_token={token}")))
        .multipart(bad)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 415);
}

#[actix_web::test]
async fn exports_are_json_and_markdown_with_safe_names() {
    let app = TestApp::spawn().await;
    let assay = drafted(&app, "a@example.org").await;
    let resp = app.get(&format!("/assays/{assay}/export.json")).await;
    assert_eq!(resp.status(), 200);
    let disposition = resp.headers()["content-disposition"].to_str().unwrap().to_owned();
    assert_eq!(
        disposition,
        format!(
            "attachment; filename=\"toxtemp-assay-{assay}-NeuriTox.json\"; filename*=UTF-8''toxtemp-assay-{assay}-NeuriTox.json"
        )
    );
    let doc: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(doc["assay"]["title"], "NeuriTox");
    assert_eq!(doc["progress"]["total"], 77);
    assert_eq!(doc["sections"].as_array().unwrap().len(), 11);
    let all: usize = doc["sections"].as_array().unwrap().iter().map(|s| s["questions"].as_array().unwrap().len()).sum();
    assert_eq!(all, 77);
    let md = app.get(&format!("/assays/{assay}/export.md")).await.text().await.unwrap();
    assert!(md.starts_with("# NeuriTox\n"));
    assert_eq!(md.matches("\n## ").count(), 11);
}

#[actix_web::test]
async fn another_users_answers_are_404() {
    let mut app = TestApp::spawn().await;
    let assay = drafted(&app, "owner@example.org").await;
    app.new_browser();
    app.login_new("other@example.org", false).await;
    let q = question_id(&app, 0);
    for path in [
        format!("/assays/{assay}/answers"),
        format!("/assays/{assay}/export.json"),
        format!("/assays/{assay}/export.md"),
    ] {
        assert_eq!(app.get(&path).await.status(), 404, "{path}");
    }
    assert_eq!(app.post_form(&format!("/assays/{assay}/answers/{q}"), &[("text", "defaced")]).await.status(), 404);
    assert_eq!(app.post_form(&format!("/assays/{assay}/withdraw-consent"), &[]).await.status(), 404);
}

#[actix_web::test]
async fn staff_download_all_files_as_a_zip_and_each_download_is_logged() {
    let mut app = TestApp::builder().s3().spawn().await;
    let assay = drafted(&app, "owner@example.org").await;
    app.new_browser();
    app.login_new("staff@example.org", true).await;

    let list = app.get_html("/admin/assays?q=neuri").await;
    assert_eq!(select_texts(&list, &format!("tr[data-assay-id=\"{assay}\"] .file-count")), vec!["2"]);
    let none = app.get_html("/admin/assays?q=nothing-like-this").await;
    assert!(select_texts(&none, "#admin-assays tbody tr").is_empty());

    let page = app.get_html(&format!("/admin/assays/{assay}")).await;
    let mut names = select_texts(&page, "#file-table .file-name");
    names.sort();
    assert_eq!(names, vec!["paper.docx", "sop.pdf"]);
    let shas: Vec<String> = page
        .select(&scraper::Selector::parse("#file-table .sha256").unwrap())
        .map(|e| e.value().attr("data-sha256").unwrap().to_owned())
        .collect();
    for (_, bytes) in files() {
        let sha = compute_sha256(&bytes[..]).unwrap();
        assert!(shas.contains(&sha));
        assert!(select_texts(&page, "#file-table .sha256").contains(&sha[..12].to_owned()), "short in the table");
    }
    let zip_url = format!("/admin/assays/{assay}/files.zip");
    assert_eq!(select_attr(&page, "#download-zip", "action"), zip_url);
    assert_eq!(select_attr(&page, "#download-zip", "method"), "post");

    // Another site cannot start a download: a GET only leads to the page, a POST needs the token.
    let resp = app.get(&zip_url).await;
    assert_eq!((resp.status().as_u16(), location(&resp)), (303, format!("/admin/assays/{assay}")));
    assert_eq!(app.post_form_raw(&zip_url, &[]).await.status(), 403);
    assert!(FileDownloadLog::all(&mut app.conn()).unwrap().is_empty(), "nothing logged for refused requests");

    let resp = app.post_form(&zip_url, &[]).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/zip");
    let bytes = resp.bytes().await.unwrap().to_vec();
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
    for (name, original) in files() {
        let mut got = Vec::new();
        zip.by_name(&format!("files/{name}")).unwrap().read_to_end(&mut got).unwrap();
        assert_eq!(compute_sha256(&got[..]).unwrap(), compute_sha256(&original[..]).unwrap());
    }
    let logs = FileDownloadLog::all(&mut app.conn()).unwrap();
    assert_eq!(logs.len(), 2);
    assert!(logs.iter().all(|l| l.person_email == "staff@example.org" && l.ip_address == "127.0.0.1"));
    let log_page = app.get_html("/admin/downloads").await;
    assert_eq!(select_texts(&log_page, "#download-log tbody tr").len(), 2);
}

#[actix_web::test]
async fn non_staff_cannot_reach_any_admin_page_or_the_zip() {
    let app = TestApp::spawn().await;
    let assay = drafted(&app, "owner@example.org").await;
    for path in [
        "/admin/assays".to_owned(),
        format!("/admin/assays/{assay}"),
        format!("/admin/assays/{assay}/files.zip"),
        "/admin/files".into(),
        "/admin/downloads".into(),
    ] {
        assert_eq!(app.get(&path).await.status(), 403, "{path}");
    }
    assert_eq!(app.post_form(&format!("/admin/assays/{assay}/files.zip"), &[]).await.status(), 403);
    assert!(FileDownloadLog::all(&mut app.conn()).unwrap().is_empty());
}

#[actix_web::test]
async fn an_assay_without_files_gets_a_message_not_an_empty_zip() {
    let app = TestApp::spawn().await;
    app.login_new("staff@example.org", true).await;
    let (_, _, assay) = app.create_tree("Empty").await;
    let resp = app.post_form(&format!("/admin/assays/{assay}/files.zip"), &[]).await;
    assert_eq!(resp.status(), 404);
    let page = scraper::Html::parse_document(&resp.text().await.unwrap());
    assert!(select_texts(&page, "#error-message")[0].contains("no stored files"));
    let admin_page = app.get_html(&format!("/admin/assays/{assay}")).await;
    assert_eq!(select_texts(&admin_page, "#download-all").len(), 0);
}

#[actix_web::test]
async fn the_file_list_marks_orphans() {
    let app = TestApp::spawn().await;
    let assay = drafted(&app, "owner@example.org").await;
    let mut conn = app.conn();
    let stored = toxtemp::fileops::get_orphaned_file_assets(&mut conn, 0).unwrap();
    assert!(stored.is_empty(), "all linked");
    toxtemp::db::models::Assay::delete(&mut conn, assay).unwrap();
    diesel::update(file_assets::table)
        .set(file_assets::created_at.eq(toxtemp::db::now() - chrono::Duration::days(9)))
        .execute(&mut conn)
        .unwrap();
    drop(conn);
    let mut staff = app;
    staff.new_browser();
    staff.login_new("staff@example.org", true).await;
    let page = staff.get_html("/admin/files").await;
    assert_eq!(select_texts(&page, "#file-table tr.orphan").len(), 2);
}

#[actix_web::test]
async fn withdrawing_consent_deletes_the_stored_files_and_records_it() {
    let app = TestApp::builder().s3().spawn().await;
    let assay = drafted(&app, "owner@example.org").await;
    let before: Vec<FileAsset> = file_assets::table.select(FileAsset::as_select()).load(&mut *app.conn()).unwrap();
    assert_eq!(before.len(), 2);
    let page = app.get_html(&format!("/assays/{assay}")).await;
    assert_eq!(select_texts(&page, "#withdraw-consent").len(), 1);
    let resp = app.post_form(&format!("/assays/{assay}/withdraw-consent"), &[]).await;
    assert_eq!(location(&resp), format!("/assays/{assay}"));
    let store = app.ctx.store.clone();
    let mut conn = app.conn();
    for asset in &before {
        assert_eq!(
            FileAsset::find(&mut conn, &asset.id).unwrap().status,
            toxtemp::db::models::FileAssetStatus::Deleted
        );
        assert!(matches!(store.head(&asset.object_key).await, Err(toxtemp::storage::StorageError::NotFound)));
    }
    let events: Vec<String> = file_audit_events::table.select(file_audit_events::event).load(&mut conn).unwrap();
    assert_eq!(events, vec!["consent_withdrawn", "consent_withdrawn"]);
    drop(conn);
    let page = app.get_html(&format!("/assays/{assay}")).await;
    assert_eq!(select_texts(&page, "#stored-files"), vec!["none"]);
    assert!(
        toxtemp::fileops::plan_assay_zip(&mut app.conn(), assay).unwrap().is_empty(),
        "deleted files leave the ZIP"
    );
}

#[actix_web::test]
async fn an_assay_with_answers_keeps_its_question_set() {
    let app = TestApp::spawn().await;
    let assay = drafted(&app, "a@example.org").await;
    toxtemp::questions::import(&mut app.conn(), toxtemp::questions::TOXTEMP_V1_JSON, "v2", "v2").unwrap();
    let other_set = QuestionSet::find_by_label(&mut app.conn(), "v2").unwrap().unwrap().id.to_string();
    let edit = format!("/assays/{assay}/edit");

    let form = app.get_html(&edit).await;
    assert!(has_attr(&form, "#question_set_id", "disabled"), "the select says so before anyone tries");
    assert!(select_texts(&form, "#question-set-locked")[0].contains("has answers"));

    let resp =
        app.post_form(&edit, &[("title", "Renamed"), ("description", ""), ("question_set_id", &other_set)]).await;
    assert_eq!(resp.status(), 409);
    let page = scraper::Html::parse_document(&resp.text().await.unwrap());
    assert!(select_texts(&page, "#form-error")[0].contains("cannot be changed"));
    let stored = toxtemp::db::models::Assay::find(&mut app.conn(), assay).unwrap();
    assert_eq!((stored.title.as_str(), stored.question_set_id), ("NeuriTox", Some(1)), "nothing saved");

    // The rest of the form still saves.
    let resp = app.post_form(&edit, &[("title", "Renamed"), ("description", ""), ("question_set_id", "1")]).await;
    assert_eq!(resp.status(), 303);
    assert_eq!(toxtemp::db::models::Assay::find(&mut app.conn(), assay).unwrap().title, "Renamed");

    // An assay without answers may still change its set.
    let (_, _, fresh) = app.create_tree("Fresh").await;
    let fresh_edit = format!("/assays/{fresh}/edit");
    let resp =
        app.post_form(&fresh_edit, &[("title", "Fresh"), ("description", ""), ("question_set_id", &other_set)]).await;
    assert_eq!(resp.status(), 303);
}

#[actix_web::test]
async fn the_answer_page_is_rendered_again_only_when_something_on_it_changed() {
    let mut app = TestApp::spawn().await;
    let assay = drafted(&app, "a@example.org").await;
    let url = format!("/assays/{assay}/answers");
    app.get(&url).await; // shows (and so ends) the flash message of the submission
    let first = app.get(&url).await.text().await.unwrap();
    assert!(app.get(&url).await.text().await.unwrap() == first, "the same page twice");
    // An edit shows at once, with this session's own form token in every form.
    let q = question_id(&app, 0);
    let resp = app
        .post_form(&format!("/assays/{assay}/answers/{q}"), &[("text", "Changed by hand."), ("accepted", "on")])
        .await;
    assert_eq!(resp.status(), 303);
    let page = app.get_html(&url).await;
    assert_eq!(select_texts(&page, &format!("#q{q} .answer-html")), ["Changed by hand."]);
    assert_eq!(select_texts(&page, "#accepted-count"), ["1"]);
    let token = app.csrf_token().await;
    let tokens: Vec<String> = {
        let sel = scraper::Selector::parse("input[name=csrf_token]").unwrap();
        page.select(&sel).map(|e| e.value().attr("value").unwrap_or_default().to_owned()).collect()
    };
    assert!(tokens.len() > 77 && tokens.iter().all(|t| *t == token), "every form carries this session's token");
    // A withdrawal changes what is shown of the files.
    assert!(!select_texts(&page, ".kept-file").is_empty());
    app.post_form(&format!("/assays/{assay}/withdraw-consent"), &[]).await;
    assert!(select_texts(&app.get_html(&url).await, ".kept-file").is_empty(), "withdrawn files are gone from the page");
    // Another browser gets its own token in the same cached page.
    let mine = app.get(&url).await.text().await.unwrap();
    app.new_browser();
    app.login("a@example.org", crate::helpers::PASSWORD).await;
    let theirs = app.get(&url).await.text().await.unwrap();
    assert!(mine != theirs, "another token");
    assert_eq!(mine.len(), theirs.len(), "the same page but for the token");
}

#[actix_web::test]
async fn many_files_of_a_run_are_counted_not_listed_on_every_answer() {
    let app = TestApp::spawn().await;
    app.login_new("a@example.org", false).await;
    let (_, _, assay) = app.create_tree("Many").await;
    let files: Vec<(String, Vec<u8>)> =
        (1..=5).map(|i| (format!("notes-{i}.txt"), format!("Unrelated note number {i}.").into_bytes())).collect();
    let files: Vec<(&str, Vec<u8>)> = files.iter().map(|(n, b)| (n.as_str(), b.clone())).collect();
    let resp = app.post_start(&[("assay_id", &assay.to_string()), ("share_files_for_development", "on")], &files).await;
    assert_eq!(resp.status(), 303);
    app.run_pending_jobs().await;
    let page = app.get_html(&format!("/assays/{assay}/answers")).await;
    let q = question_id(&app, 0);
    assert!(select_texts(&page, &format!("#q{q} .kept-file")).is_empty(), "no file cited, five as context");
    assert_eq!(select_texts(&page, &format!("#q{q} .more-files")), ["5 more as context"]);
    assert_eq!(select_attr(&page, &format!("#q{q} .more-files"), "href"), format!("/assays/{assay}#stored-files"));
}
