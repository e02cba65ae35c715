//! The StartingForm through the real HTTP app.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use diesel::prelude::*;
use scraper::{Html, Selector};
use toxtemp::db::models::{Answer, Assay, AssayStatus, FileAsset};
use toxtemp::db::schema::{file_assets, jobs};
use toxtemp::drafting::DraftAssay;
use toxtemp::fileops::compute_sha256;
use toxtemp::storage::memory::MemoryStore;
use toxtemp::storage::read_all;

use crate::docs;
use crate::helpers::{TestApp, has_attr, location, select_attr, select_texts};

fn new_assay(title: &str, share: bool) -> Vec<(&str, &str)> {
    let mut fields = vec![
        ("assay_id", "new"),
        ("investigation_id", "new"),
        ("new_investigation_title", "Neurotoxicity"),
        ("study_id", "new"),
        ("new_study_title", "LUHMES"),
        ("new_assay_title", title),
        ("new_assay_description", "Neurite outgrowth in LUHMES cells"),
    ];
    if share {
        fields.push(("share_files_for_development", "on"));
    }
    fields
}

fn two_files() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("sop.pdf", docs::pdf(&["LUHMES cells are seeded at 100000 cells per well."])),
        ("paper.docx", docs::docx(&["Neurite outgrowth is quantified by high-content imaging."])),
    ]
}

fn assets(app: &TestApp) -> Vec<FileAsset> {
    file_assets::table
        .select(FileAsset::as_select())
        .order(file_assets::original_filename)
        .load(&mut *app.conn())
        .unwrap()
}

fn job_payloads(app: &TestApp) -> Vec<DraftAssay> {
    let payloads: Vec<String> = jobs::table.select(jobs::payload).load(&mut *app.conn()).unwrap();
    payloads.iter().map(|p| serde_json::from_str(p).unwrap()).collect()
}

fn only_assay(app: &TestApp) -> Assay {
    use toxtemp::db::schema::assays;
    let mut all: Vec<Assay> = assays::table.select(Assay::as_select()).load(&mut *app.conn()).unwrap();
    assert_eq!(all.len(), 1, "exactly one assay");
    all.remove(0)
}

fn assay_count(app: &TestApp) -> i64 {
    use toxtemp::db::schema::assays;
    assays::table.count().get_result(&mut *app.conn()).unwrap()
}

async fn html(resp: reqwest::Response) -> Html {
    Html::parse_document(&resp.text().await.unwrap())
}

#[actix_web::test]
async fn the_form_has_the_consent_box_checked_and_no_acknowledgement_field() {
    let app = TestApp::spawn().await;
    app.login_new("a@example.org", false).await;
    let page = app.get_html("/add/").await;
    let consent = Selector::parse("input#share_files_for_development").unwrap();
    let boxes: Vec<_> = page.select(&consent).collect();
    assert_eq!(boxes.len(), 1);
    assert_eq!(boxes[0].value().attr("type"), Some("checkbox"));
    assert!(boxes[0].value().attr("checked").is_some(), "checked by default");
    let explanation = select_texts(&page, "#consent-explanation").join(" ");
    assert!(explanation.contains("stored securely") && explanation.contains("Withdraw consent"), "{explanation}");
    let inputs = Selector::parse("input, select, textarea").unwrap();
    for input in page.select(&inputs) {
        let name = input.value().attr("name").unwrap_or_default();
        assert!(!name.contains("acknowledg"), "no acknowledgement field: {name}");
    }
    let selected = select_texts(&page, "select[name=question_set_id] option[selected]");
    assert_eq!(selected, vec!["ToxTemp v1 (Krebs et al. 2019)"], "the only question set is preselected");
    assert!(has_attr(&page, "input[name=files]", "multiple"), "several files at once");
    assert!(select_attr(&page, "input[name=files]", "accept").contains(".pdf"));
    assert!(select_attr(&page, "#start-form", "action").starts_with("/add/?csrf_token="));
    assert_eq!(select_attr(&page, "#start-form", "enctype"), "multipart/form-data");
}

#[actix_web::test]
async fn with_consent_the_files_are_stored_linked_and_drafted() {
    let app = TestApp::builder().s3().spawn().await;
    app.login_new("a@example.org", false).await;
    let resp = app.post_start(&new_assay("NeuriTox", true), &two_files()).await;
    assert_eq!(resp.status(), 303);
    assert_eq!(location(&resp), "/");

    let stored = assets(&app);
    assert_eq!(stored.len(), 2);
    let files = two_files();
    let store = app.ctx.store.clone();
    for (asset, (name, bytes)) in stored.iter().zip(files.iter().rev()) {
        assert_eq!(&asset.original_filename, name);
        assert_eq!(asset.size_bytes, bytes.len() as i64);
        assert_eq!(asset.sha256, compute_sha256(&bytes[..]).unwrap());
        assert!(asset.object_key.starts_with("fileassets/") && uuid::Uuid::parse_str(&asset.object_key[11..]).is_ok());
        assert_eq!(read_all(store.as_ref(), &asset.object_key).await.unwrap(), *bytes);
    }
    assert_eq!(stored[1].content_type, "application/pdf");
    let payloads = job_payloads(&app);
    assert_eq!(payloads.len(), 1);
    let mut ids = payloads[0].file_asset_ids.clone();
    ids.sort();
    let mut want: Vec<_> = stored.iter().map(|a| a.id.clone()).collect();
    want.sort();
    assert_eq!(ids, want);
    assert!(payloads[0].read_from_storage && payloads[0].documents.is_empty(), "the job reads kept files back");

    let assay = only_assay(&app);
    assert_eq!(assay.status(), AssayStatus::Scheduled);
    let overview = app.get_html("/").await;
    let row = format!("tr[data-assay-id=\"{}\"] .badge", assay.id);
    assert_eq!(select_attr(&overview, &row, "data-status"), "scheduled");

    app.run_pending_jobs().await;
    let status: serde_json::Value = app.get("/api/assays/status").await.json().await.unwrap();
    assert_eq!(status[0]["status"], "done");
    assert_eq!(status[0]["total"], 77);
    assert!(status[0]["drafted"].as_i64().unwrap() > 0);
    let mut conn = app.conn();
    for answer in Answer::of_assay(&mut conn, assay.id).unwrap() {
        assert_eq!(toxtemp::db::models::AnswerFile::of_answer(&mut conn, answer.id).unwrap().len(), 2);
    }
}

#[actix_web::test]
async fn without_consent_nothing_is_kept_but_the_answers_are_drafted() {
    let store = Arc::new(MemoryStore::new());
    let app = TestApp::builder().store(store.clone()).spawn().await;
    app.login_new("a@example.org", false).await;
    let resp = app.post_start(&new_assay("Private", false), &two_files()).await;
    assert_eq!(resp.status(), 303);
    assert!(assets(&app).is_empty());
    assert!(store.keys().is_empty());
    assert!(job_payloads(&app)[0].file_asset_ids.is_empty());
    app.run_pending_jobs().await;
    let assay = only_assay(&app);
    assert_eq!(assay.status(), AssayStatus::Done);
    assert_eq!(Answer::of_assay(&mut app.conn(), assay.id).unwrap().len(), 77);
    assert!(store.keys().is_empty());
}

async fn refused(app: &TestApp, files: Vec<(&str, Vec<u8>)>, status: u16) -> Html {
    let resp = app.post_start(&new_assay("Kept title", true), &files).await;
    assert_eq!(resp.status(), status);
    let page = html(resp).await;
    assert!(assets(app).is_empty(), "nothing stored");
    assert!(job_payloads(app).is_empty(), "nothing scheduled");
    assert_eq!(assay_count(app), 0, "no assay created");
    assert_eq!(select_attr(&page, "input[name=new_assay_title]", "value"), "Kept title", "what was typed is kept");
    page
}

#[actix_web::test]
async fn bad_files_are_refused_by_name_and_reason_and_nothing_happens() {
    let app = TestApp::builder()
        .config(|c| {
            c.upload_limits.max_file_bytes = 4096;
            c.upload_limits.max_files = 3;
        })
        .spawn()
        .await;
    app.login_new("a@example.org", false).await;
    let pdf = docs::pdf(&["ok"]);

    let page = refused(&app, vec![("tool.exe", b"MZ\x90\x00".to_vec()), ("sop.pdf", pdf.clone())], 415).await;
    assert_eq!(select_texts(&page, ".file-problem strong"), vec!["tool.exe"]);
    assert!(select_texts(&page, ".file-problem")[0].contains("not supported"));

    let page = refused(&app, vec![("fake.pdf", b"\x89PNG\r\n\x1a\n".to_vec())], 415).await;
    assert!(select_texts(&page, ".file-problem")[0].contains("fake.pdf: the content is not a valid PDF file"));

    let page = refused(&app, vec![("empty.txt", vec![])], 422).await;
    assert!(select_texts(&page, ".file-problem")[0].contains("empty.txt: the file is empty"));

    let page = refused(&app, vec![("big.txt", vec![b'a'; 5000]), ("sop.pdf", pdf.clone())], 413).await;
    assert!(select_texts(&page, ".file-problem")[0].contains("big.txt: the file is larger than"));

    let four =
        vec![("a.txt", b"a".to_vec()), ("b.txt", b"b".to_vec()), ("c.txt", b"c".to_vec()), ("d.txt", b"d".to_vec())];
    let page = refused(&app, four, 422).await;
    assert!(select_texts(&page, ".file-problem")[0].contains("At most 3 files"));

    let page = refused(&app, vec![], 422).await;
    assert!(select_texts(&page, ".file-problem")[0].contains("at least one document"));
    // The consent choice is kept as the person left it.
    let resp = app.post_start(&new_assay("x", false), &[("empty.txt", vec![])]).await;
    let page = html(resp).await;
    assert!(has_attr(&page, "#share_files_for_development", "type"), "the box is there");
    assert!(!has_attr(&page, "#share_files_for_development", "checked"), "unchecked stays unchecked");
}

#[actix_web::test]
async fn hostile_file_names_are_cleaned_wherever_they_are_stored_shown_or_sent() {
    let app = TestApp::builder().s3().spawn().await;
    app.login_new("a@example.org", false).await;
    let long = format!("{}.pdf", "x".repeat(256));
    let files = [
        ("../../etc/passwd.txt", b"notes".to_vec()),
        ("invoice\u{202E}fdp.txt", b"bidi".to_vec()),
        (long.as_str(), crate::docs::pdf(&["Neurite outgrowth assay"])),
    ];
    let resp = app.post_start(&new_assay("T", true), &files).await;
    assert_eq!(resp.status(), 303, "a 256-character .pdf is a PDF, not an unsupported type");
    let mut names: Vec<String> = assets(&app).into_iter().map(|a| a.original_filename).collect();
    names.sort();
    assert_eq!(names[0], "invoicefdp.txt", "no right-to-left override");
    assert_eq!(names[1], "passwd.txt", "the last path component only");
    assert_eq!(names[2].chars().count(), toxtemp::filenames::MAX_CHARS);
    assert!(names[2].ends_with(".pdf"));
    assert!(assets(&app).iter().all(|a| !a.object_key.contains("passwd")));
}

#[actix_web::test]
async fn storage_down_answers_503_with_a_reference_and_leaves_nothing_behind() {
    let store = Arc::new(MemoryStore::new());
    store.fail_after_puts.store(1, Ordering::SeqCst);
    let app = TestApp::builder().store(store.clone()).spawn().await;
    app.login_new("a@example.org", false).await;
    let resp = app.post_start(&new_assay("Down", true), &two_files()).await;
    assert_eq!(resp.status(), 503);
    let page = html(resp).await;
    let errors = select_texts(&page, "#form-errors li").join(" ");
    assert!(errors.contains("could not be stored") && errors.contains("reference"), "{errors}");
    assert!(!errors.contains("injected"), "no internal text: {errors}");
    assert_eq!(store.puts(), 2, "the first file was stored, the second failed");
    assert!(store.keys().is_empty(), "the object written first was removed");
    assert!(assets(&app).is_empty());
    assert!(job_payloads(&app).is_empty());
    assert_eq!(assay_count(&app), 0, "the assay created for this submission was removed too");
    use toxtemp::db::schema::{investigations, studies};
    let invs: i64 = investigations::table.count().get_result(&mut *app.conn()).unwrap();
    let studs: i64 = studies::table.count().get_result(&mut *app.conn()).unwrap();
    assert_eq!((invs, studs), (0, 0), "and its new investigation and study");
}

#[actix_web::test]
async fn an_assay_being_drafted_refuses_a_second_run() {
    let app = TestApp::spawn().await;
    app.login_new("a@example.org", false).await;
    let (_, _, assay) = app.create_tree("Busy").await;
    toxtemp::db::models::Assay::set_status(&mut app.conn(), assay, AssayStatus::Busy).unwrap();
    let id = assay.to_string();
    let resp = app.post_start(&[("assay_id", &id), ("share_files_for_development", "on")], &two_files()).await;
    assert_eq!(resp.status(), 409);
    let page = html(resp).await;
    assert!(select_texts(&page, "#form-errors li")[0].contains("being drafted right now"));
    assert!(job_payloads(&app).is_empty());
    assert!(assets(&app).is_empty(), "the files stored before the refusal were removed");
}

#[actix_web::test]
async fn an_assay_with_answers_needs_overwrite() {
    let app = TestApp::spawn().await;
    app.login_new("a@example.org", false).await;
    let (_, _, assay) = app.create_tree("Answered").await;
    let q = toxtemp::db::models::QuestionSet::questions(&mut app.conn(), 1).unwrap()[0].id;
    Answer::save_draft(&mut app.conn(), assay, q, "old text", &[]).unwrap();
    let id = assay.to_string();
    let resp = app.post_start(&[("assay_id", &id), ("share_files_for_development", "on")], &two_files()).await;
    assert_eq!(resp.status(), 409);
    let page = html(resp).await;
    assert!(select_texts(&page, "#form-errors li")[0].contains("overwrite"));
    assert!(job_payloads(&app).is_empty());
    let resp = app.post_start(&[("assay_id", &id), ("overwrite", "on")], &two_files()).await;
    assert_eq!(resp.status(), 303);
    assert_eq!(job_payloads(&app).len(), 1);
}

#[actix_web::test]
async fn another_users_assay_or_study_is_refused() {
    let mut app = TestApp::spawn().await;
    app.login_new("owner@example.org", false).await;
    let (inv, study, assay) = app.create_tree("Theirs").await;
    app.new_browser();
    app.login_new("intruder@example.org", false).await;
    let id = assay.to_string();
    let resp = app.post_start(&[("assay_id", &id), ("share_files_for_development", "on")], &two_files()).await;
    assert_eq!(resp.status(), 404);
    let (study, inv) = (study.to_string(), inv.to_string());
    let fields = [
        ("assay_id", "new"),
        ("study_id", study.as_str()),
        ("investigation_id", inv.as_str()),
        ("new_assay_title", "sneaky"),
    ];
    assert_eq!(app.post_start(&fields, &two_files()).await.status(), 404);
    assert!(assets(&app).is_empty());
    assert!(job_payloads(&app).is_empty());
}

#[actix_web::test]
async fn the_upload_needs_the_csrf_token() {
    let app = TestApp::spawn().await;
    app.login_new("a@example.org", false).await;
    let form = reqwest::multipart::Form::new()
        .text("assay_id", "new")
        .part("files", reqwest::multipart::Part::bytes(b"x".to_vec()).file_name("a.txt"));
    let resp = app.client.post(app.url("/add/")).multipart(form).send().await.unwrap();
    assert_eq!(resp.status(), 403);
    assert_eq!(assay_count(&app), 0);
}

#[actix_web::test]
async fn an_existing_assay_can_be_preselected_from_its_page() {
    let app = TestApp::spawn().await;
    app.login_new("a@example.org", false).await;
    let (_, _, assay) = app.create_tree("Mine").await;
    let page = app.get_html(&format!("/add/?assay={assay}")).await;
    assert_eq!(select_attr(&page, "select[name=assay_id] option[selected]", "value"), assay.to_string());
}

#[actix_web::test]
async fn the_upload_script_gets_where_to_go_and_the_success_message_waits_for_the_page() {
    let app = TestApp::spawn().await;
    app.login_new("a@example.org", false).await;
    let token = app.csrf_token().await;
    let mut form = reqwest::multipart::Form::new();
    for (k, v) in new_assay("Scripted", true) {
        form = form.text(k.to_owned(), v.to_owned());
    }
    for (name, bytes) in two_files() {
        form = form.part("files", reqwest::multipart::Part::bytes(bytes).file_name(name));
    }
    let resp = app
        .client
        .post(app.url("/add/"))
        .header("x-csrf-token", &token)
        .header("accept", "application/json, text/html;q=0.9")
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "no redirect for the script to follow");
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["redirect"], "/");
    let page = app.get_html("/").await;
    let flashes = select_texts(&page, ".flash.alert-success");
    assert!(flashes[0].contains("2 file(s) kept with your consent"), "{flashes:?}");
    // Refusals still come back as the page with the reasons, for the script to show.
    let resp = app.post_start(&new_assay("Empty", true), &[]).await;
    assert_eq!(resp.status(), 422);
}

#[actix_web::test]
async fn with_consent_first_each_file_is_stored_while_the_rest_of_the_form_still_arrives() {
    let app = TestApp::spawn().await;
    app.login_new("a@example.org", false).await;
    let token = app.csrf_token().await;
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(4);
    let body = reqwest::Body::wrap_stream(futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|chunk| (chunk, rx))
    }));
    let request = app
        .client
        .post(app.url(&format!("/add/?csrf_token={token}")))
        .header("content-type", "multipart/form-data; boundary=b")
        .body(body)
        .send();
    let response = tokio::spawn(request);
    let mut head = Vec::new();
    for (k, v) in new_assay("Streamed", true) {
        head.extend(format!("--b\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n").bytes());
    }
    head.extend(b"--b\r\nContent-Disposition: form-data; name=\"files\"; filename=\"first.txt\"\r\n\r\n");
    head.extend(b"LUHMES cells are seeded at 100,000 cells per well.\r\n");
    head.extend(b"--b\r\nContent-Disposition: form-data; name=\"files\"; filename=\"second.txt\"\r\n\r\nNeurite ");
    tx.send(Ok(head)).await.unwrap();
    // The second file is still arriving: the first is already stored, pending its run.
    let mut stored = Vec::new();
    for _ in 0..200 {
        stored = assets(&app);
        if !stored.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(stored.len(), 1, "stored before the form ended");
    assert_eq!(
        (stored[0].original_filename.as_str(), stored[0].status),
        ("first.txt", toxtemp::db::models::FileAssetStatus::Pending)
    );
    assert_eq!(stored[0].assay_id, None, "its assay is not known yet");
    tx.send(Ok(b"outgrowth is measured.\r\n--b--\r\n".to_vec())).await.unwrap();
    drop(tx);
    assert_eq!(response.await.unwrap().unwrap().status(), 303);
    let assay = only_assay(&app);
    let stored = assets(&app);
    assert_eq!(stored.len(), 2);
    assert!(
        stored
            .iter()
            .all(|a| a.assay_id == Some(assay.id) && a.status == toxtemp::db::models::FileAssetStatus::Available)
    );
}
