use diesel::prelude::*;

use crate::helpers::{TestApp, has_attr, select_attr, select_texts};

#[actix_web::test]
async fn non_staff_get_403_on_admin_pages() {
    let app = TestApp::spawn().await;
    app.login_new("user@example.org", false).await;
    let resp = app.get("/admin/").await;
    assert_eq!(resp.status(), 403);
    let html = scraper::Html::parse_document(&resp.text().await.unwrap());
    assert_eq!(select_texts(&html, "h1"), vec!["Forbidden"]);
}

#[actix_web::test]
async fn anonymous_visitors_of_admin_pages_are_sent_to_log_in() {
    let app = TestApp::spawn().await;
    assert_eq!(app.get("/admin/").await.status(), 303);
}

#[actix_web::test]
async fn staff_see_the_admin_landing_page() {
    let app = TestApp::spawn().await;
    app.login_new("staff@example.org", true).await;
    let html = app.get_html("/admin/").await;
    let counts = select_texts(&html, "#admin-counts .h2");
    assert_eq!(counts, vec!["1", "0", "0"], "1 account, 0 assays, 0 files");
    let nav = select_texts(&html, "nav a.nav-link");
    assert!(nav.contains(&"Admin".to_owned()));
}

/// Fill the database directly: the lists are about reading many rows, not about creating them.
fn many_assays(app: &TestApp, n: usize) {
    use toxtemp::db::models::assay::AssayFields;
    use toxtemp::db::models::{Assay, Investigation, Study};
    let owner = app.create_person("Owner.Of.Many@example.org", false);
    let mut conn = app.conn();
    let inv = Investigation::create(&mut conn, &owner, "I", "").unwrap();
    let study = Study::create(&mut conn, inv.id, "S", "").unwrap();
    for i in 0..n {
        let title = if i == 7 { "NeuriTox 100% literal".to_owned() } else { format!("Plain assay {i}") };
        let fields = AssayFields { title: &title, description: "", question_set_id: None };
        Assay::create(&mut conn, study.id, &fields).unwrap();
    }
}

#[actix_web::test]
async fn admin_lists_come_in_pages_and_search_runs_in_the_database() {
    let app = TestApp::spawn().await;
    many_assays(&app, 120);
    app.login_new("staff@example.org", true).await;
    let first = app.get_html("/admin/assays").await;
    assert_eq!(select_texts(&first, "#admin-assays tbody tr").len(), 50);
    assert_eq!(select_texts(&first, "#admin-assays tbody tr td a")[0], "Plain assay 119", "newest first");
    assert!(select_texts(&first, ".pager a[rel=prev]").is_empty());
    let next = crate::helpers::select_attr(&first, ".pager a[rel=next]", "href");
    assert_eq!(next, "/admin/assays?page=2");
    let last = app.get_html("/admin/assays?page=3").await;
    assert_eq!(select_texts(&last, "#admin-assays tbody tr").len(), 20);
    assert!(select_texts(&last, ".pager a[rel=next]").is_empty());
    assert_eq!(crate::helpers::select_attr(&last, ".pager a[rel=prev]", "href"), "/admin/assays?page=2");
    assert_eq!(select_texts(&app.get_html("/admin/assays?page=0").await, "#admin-assays tbody tr").len(), 50);
    assert_eq!(app.get("/admin/assays?page=abc").await.status(), 400);

    // Case-insensitive on title and owner; % and _ are literal characters, not wildcards.
    let found = app.get_html("/admin/assays?q=NEURITOX").await;
    assert_eq!(select_texts(&found, "#admin-assays tbody tr td a"), vec!["NeuriTox 100% literal"]);
    assert_eq!(select_texts(&app.get_html("/admin/assays?q=100%25").await, "#admin-assays tbody tr").len(), 1);
    assert_eq!(select_texts(&app.get_html("/admin/assays?q=%25").await, "#admin-assays tbody tr").len(), 1);
    assert_eq!(select_texts(&app.get_html("/admin/assays?q=_").await, "#admin-assays tbody tr").len(), 0);
    let by_owner = app.get_html("/admin/assays?q=owner.of.MANY&page=2").await;
    assert_eq!(select_texts(&by_owner, "#admin-assays tbody tr").len(), 50);
    let prev = crate::helpers::select_attr(&by_owner, ".pager a[rel=prev]", "href");
    assert_eq!(prev, "/admin/assays?page=1&q=owner.of.MANY", "the search is kept");
}

#[actix_web::test]
async fn the_download_log_and_the_file_list_come_in_pages() {
    use toxtemp::db::models::FileDownloadLog;
    let app = TestApp::spawn().await;
    let staff = app.login_new("staff@example.org", true).await;
    let mut conn = app.conn();
    let asset = crate::models::file_asset(&staff, "log.pdf");
    toxtemp::db::models::FileAsset::insert(&mut conn, &asset).unwrap();
    for _ in 0..60 {
        FileDownloadLog::record(&mut conn, &asset, Some(staff.id), &staff.email, "192.0.2.1").unwrap();
    }
    let first = app.get_html("/admin/downloads").await;
    assert_eq!(select_texts(&first, "#download-log tbody tr").len(), 50);
    let second = app.get_html("/admin/downloads?page=2").await;
    assert_eq!(select_texts(&second, "#download-log tbody tr").len(), 10);
    let files = app.get_html("/admin/files").await;
    assert_eq!(select_texts(&files, "#file-table tbody tr").len(), 1);
    assert!(select_texts(&files, ".pager").is_empty(), "one page needs no pager");
}

/// An assay of the staff member's own with `n` kept files of `size` bytes each; returns its id.
async fn assay_with_files(app: &TestApp, owner: &toxtemp::db::models::Person, n: usize, size: usize) -> i32 {
    use toxtemp::db::models::assay::AssayFields;
    use toxtemp::db::models::{Assay, Investigation, Study};
    let assay = {
        let mut conn = app.conn();
        let inv = Investigation::create(&mut conn, owner, "I", "").unwrap();
        let study = Study::create(&mut conn, inv.id, "S", "").unwrap();
        Assay::create(&mut conn, study.id, &AssayFields { title: "Zipped", description: "", question_set_id: None })
            .unwrap()
    };
    for i in 0..n {
        let data = bytes::Bytes::from(vec![b'a' + i as u8; size]);
        let mut body = futures_util::stream::iter(vec![Ok(data)]);
        let body: &mut toxtemp::storage::SourceStream<'_> = &mut body;
        let meta = toxtemp::fileops::UploadMeta {
            original_filename: &format!("part {i}.txt"),
            content_type: "text/plain",
            uploaded_by: Some(owner.id),
            assay_id: Some(assay.id),
            for_a_run: false,
        };
        toxtemp::fileops::upload_file(&app.ctx.pool, app.ctx.store.as_ref(), body, meta).await.unwrap();
    }
    assay.id
}

async fn post_zip(app: &TestApp, assay: i32, forwarded_for: &str) -> reqwest::Response {
    let token = app.csrf_token().await;
    app.client
        .post(app.url(&format!("/admin/assays/{assay}/files.zip")))
        .header("x-forwarded-for", forwarded_for)
        .form(&[("csrf_token", token.as_str())])
        .send()
        .await
        .unwrap()
}

fn logged(app: &TestApp) -> Vec<toxtemp::db::models::FileDownloadLog> {
    toxtemp::db::models::FileDownloadLog::all(&mut app.conn()).unwrap()
}

#[actix_web::test]
async fn a_file_is_logged_as_downloaded_only_once_its_entry_was_streamed() {
    use toxtemp::storage::ObjectStore;
    let store = std::sync::Arc::new(toxtemp::storage::memory::MemoryStore::new());
    let app = TestApp::builder().store(store.clone()).spawn().await;
    let staff = app.login_new("staff@example.org", true).await;

    // One object gone from storage: the archive says so in errors.txt and the file is not logged.
    let assay = assay_with_files(&app, &staff, 3, 1000).await;
    let missing = toxtemp::db::models::FileAsset::of_assay(&mut app.conn(), assay, toxtemp::db::models::Which::All)
        .unwrap()
        .remove(1);
    store.delete(&missing.object_key).await.unwrap();
    let resp = post_zip(&app, assay, "198.51.100.7").await;
    assert_eq!(resp.status(), 200);
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(resp.bytes().await.unwrap().to_vec())).unwrap();
    assert!(zip.by_name("errors.txt").is_ok());
    let logs = logged(&app);
    let mut files: Vec<&str> = logs.iter().map(|l| l.original_filename.as_str()).collect();
    files.sort();
    assert_eq!(files, ["part 0.txt", "part 2.txt"]);
    assert!(logs.iter().all(|l| l.ip_address == "127.0.0.1"), "X-Forwarded-For from an untrusted peer is ignored");

    // A download cancelled after its first chunk logs fewer files than the archive holds.
    let big = assay_with_files(&app, &staff, 8, 8 << 20).await;
    let before = logged(&app).len();
    let mut resp = post_zip(&app, big, "198.51.100.7").await;
    assert_eq!(resp.status(), 200);
    assert!(resp.chunk().await.unwrap().is_some());
    drop(resp);
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    let cancelled = logged(&app).len() - before;
    assert!(cancelled < 8, "{cancelled} of 8 files logged for a download cancelled at its start");
}

#[actix_web::test]
async fn behind_a_trusted_proxy_the_client_address_is_logged() {
    let app = TestApp::builder().config(|c| c.trusted_proxies = vec!["127.0.0.1".parse().unwrap()]).spawn().await;
    let staff = app.login_new("staff@example.org", true).await;
    let assay = assay_with_files(&app, &staff, 1, 10).await;
    let resp = post_zip(&app, assay, "10.9.9.9, 203.0.113.5").await;
    assert_eq!(resp.status(), 200);
    resp.bytes().await.unwrap();
    let ips: Vec<String> = logged(&app).into_iter().map(|l| l.ip_address).collect();
    assert_eq!(ips, ["203.0.113.5"], "the nearest address the proxy saw, not one the client could forge");
}

/// An owner's drafted assay (77 questions, offline) with ten answers accepted: the ones that
/// found something, then some that did not.
async fn accepted_assay(app: &mut TestApp) -> i32 {
    use toxtemp::db::models::Answer;
    let assay = crate::answers::drafted(app, "owner@example.org").await;
    let owner = toxtemp::db::models::Person::find_by_email(&mut app.conn(), "owner@example.org").unwrap().unwrap();
    let mut conn = app.conn();
    let mut answers = Answer::of_assay(&mut conn, assay).unwrap();
    answers.sort_by_key(|a| a.text == toxtemp::llm::NOT_FOUND);
    assert!(answers[0].text != toxtemp::llm::NOT_FOUND, "the documents answer something");
    for answer in answers.into_iter().take(10) {
        Answer::edit(&mut conn, &answer, owner.id, &answer.text, true).unwrap();
    }
    drop(conn);
    app.new_browser();
    assay
}

#[actix_web::test]
async fn staff_freeze_a_set_run_it_twice_and_compare_the_runs() {
    let mut app = TestApp::spawn().await;
    let assay = accepted_assay(&mut app).await;
    app.login_new("staff@example.org", true).await;
    let page = app.get_html("/admin/benchmarks").await;
    assert_eq!(select_texts(&page, "#candidates tbody tr").len(), 1);
    assert!(select_texts(&page, "#candidates td")[4].contains("10"), "accepted answers counted");

    // Refusals keep the page, say why.
    let resp = app.post_form("/admin/benchmarks", &[("name", "No assays")]).await;
    assert_eq!(resp.status(), 422);
    let html = scraper::Html::parse_document(&resp.text().await.unwrap());
    assert!(select_texts(&html, "#form-error")[0].contains("at least one assay"));

    let resp = app.post_form("/admin/benchmarks", &[("name", "NeuriTox kept"), ("assay", &assay.to_string())]).await;
    assert_eq!(resp.status(), 303);
    let set_url = crate::helpers::location(&resp);
    let set_page = app.get_html(&set_url).await;
    assert_eq!(select_texts(&set_page, "#cases tbody tr td:nth-child(3)"), vec!["10"], "ten gold answers");
    assert!(select_texts(&set_page, "#set-incomplete").is_empty());

    let run_form = format!("{set_url}/runs");
    let resp = app.post_form(&run_form, &[("label", "too many"), ("concurrency", "99")]).await;
    assert_eq!(resp.status(), 422);
    let first = app.post_form(&run_form, &[("label", "offline A"), ("concurrency", "4")]).await;
    assert_eq!(first.status(), 303);
    let first_url = crate::helpers::location(&first);
    let variant = toxtemp::llm::prompt::VERSION_WITHOUT_EARLIER_ROUNDS;
    let second =
        app.post_form(&run_form, &[("label", "offline B"), ("prompt_version", variant), ("concurrency", "2")]).await;
    let second_url = crate::helpers::location(&second);
    let running = app.get_html(&first_url).await;
    assert_eq!(select_attr(&running, "#run-status", "data-status"), "scheduled");
    assert!(has_attr(&running, "meta[http-equiv=refresh]", "content"), "the page follows the run");
    app.run_pending_jobs().await;

    let done = app.get_html(&first_url).await;
    assert_eq!(select_attr(&done, "#run-status", "data-status"), "done");
    assert!(!has_attr(&done, "meta[http-equiv=refresh]", "content"));
    assert_eq!(select_texts(&done, "#overall .questions")[0], "77");
    assert_eq!(select_texts(&done, "#questions tbody tr").len(), 77);
    // The gold is the accepted answers, and the offline provider drafts them again: they agree.
    let f1 = select_texts(&done, "#overall .token-f1")[0].clone();
    assert_eq!(f1, "1.000", "the same provider on the same documents drafts the gold again");
    assert_eq!(select_texts(&done, "#overall .abstention-agreement")[0], "100.0 %");

    let run_id = |url: &str| url.rsplit('/').next().unwrap().to_owned();
    let (a, b) = (run_id(&first_url), run_id(&second_url));
    let compare = app.get_html(&format!("{set_url}/compare?run={a}&run={b}")).await;
    assert_eq!(select_texts(&compare, "#comparison thead th").len(), 3, "metric column and two runs");
    assert_eq!(select_texts(&compare, "#charts svg").len(), 2);
    assert!(compare.html().matches("class=\"bar\"").count() >= 2, "bars drawn on the server");
    let drill = select_attr(&compare, "a.drill-down", "href");
    let question = app.get_html(&drill).await;
    assert_eq!(select_texts(&question, ".run-answer").len(), 2);
    assert!(!select_texts(&question, "#gold .pre-wrap")[0].is_empty());

    let csv = app.get(&format!("{first_url}/results.csv")).await;
    assert_eq!(csv.headers()["content-type"], "text/csv; charset=utf-8");
    assert_eq!(csv.text().await.unwrap().lines().count(), 78);
    let json: serde_json::Value = app.get(&format!("{first_url}/results.json")).await.json().await.unwrap();
    assert_eq!(json["questions"].as_array().unwrap().len(), 77);
    assert_eq!(json["run"]["label"], "offline A");

    // A run of another set, or too many runs, are refused.
    assert_eq!(app.get(&format!("/admin/benchmarks/999/runs/{a}")).await.status(), 404);
    assert_eq!(app.get(&format!("{set_url}/compare")).await.status(), 422);
}

#[actix_web::test]
async fn only_staff_reach_the_benchmark_pages() {
    let mut app = TestApp::spawn().await;
    let assay = accepted_assay(&mut app).await;
    let new = toxtemp::benchmark::NewSet {
        name: "s".into(),
        description: String::new(),
        out_of_scope: false,
        created_by: None,
    };
    let set = toxtemp::benchmark::freeze_from_assays(&app.ctx, new, vec![assay]).await.unwrap();
    app.login_new("user@example.org", false).await;
    for path in [
        "/admin/benchmarks".to_owned(),
        format!("/admin/benchmarks/{}", set.id),
        format!("/admin/benchmarks/{}/compare?run=1", set.id),
    ] {
        assert_eq!(app.get(&path).await.status(), 403, "{path}");
    }
    for path in [
        "/admin/benchmarks".to_owned(),
        format!("/admin/benchmarks/{}/runs", set.id),
        format!("/admin/benchmarks/{}/delete", set.id),
    ] {
        assert_eq!(app.post_form(&path, &[("name", "x"), ("assay", &assay.to_string())]).await.status(), 403, "{path}");
    }
    assert_eq!(toxtemp::db::models::EvaluationRun::of_set(&mut app.conn(), set.id).unwrap().len(), 0);
}

#[actix_web::test]
async fn the_assay_list_sorts_by_its_columns_and_its_links_keep_the_search_and_the_order() {
    let app = TestApp::spawn().await;
    many_assays(&app, 60);
    app.login_new("staff@example.org", true).await;
    let titles = |html: &scraper::Html| select_texts(html, "#admin-assays tbody tr td a");

    let by_title = app.get_html("/admin/assays?sort=title").await;
    assert_eq!(titles(&by_title)[0], "NeuriTox 100% literal", "case-insensitive, ascending");
    assert_eq!(select_attr(&by_title, "th[data-sort=title]", "aria-sort"), "ascending");
    assert_eq!(select_attr(&by_title, "th[data-sort=title] a", "href"), "/admin/assays?sort=-title", "toggles");
    assert_eq!(select_attr(&by_title, "th[data-sort=owner]", "aria-sort"), "none");
    assert_eq!(select_attr(&by_title, ".pager a[rel=next]", "href"), "/admin/assays?page=2&sort=title");
    let descending = app.get_html("/admin/assays?sort=-title").await;
    assert_eq!(titles(&descending)[0], "Plain assay 9");
    assert_eq!(select_attr(&descending, "th[data-sort=title]", "aria-sort"), "descending");

    // The default order (newest first) needs no parameter; unknown ones fall back to it.
    let default = app.get_html("/admin/assays").await;
    assert_eq!(select_attr(&default, "th[data-sort=created]", "aria-sort"), "descending");
    assert_eq!(titles(&app.get_html("/admin/assays?sort=;drop").await), titles(&default));
    let searched = app.get_html("/admin/assays?q=plain&sort=-title").await;
    assert_eq!(select_attr(&searched, "th[data-sort=owner] a", "href"), "/admin/assays?q=plain&sort=owner");
    assert_eq!(select_attr(&searched, ".pager a[rel=next]", "href"), "/admin/assays?page=2&q=plain&sort=-title");
}

#[actix_web::test]
async fn stored_files_and_downloads_are_searched_and_sorted() {
    use toxtemp::db::models::{FileAsset, FileDownloadLog};
    let app = TestApp::spawn().await;
    let staff = app.login_new("staff@example.org", true).await;
    let mut conn = app.conn();
    let mut small = crate::models::file_asset(&staff, "Small protocol.pdf");
    small.size_bytes = 10;
    small.sha256 = format!("abc123{}", "0".repeat(58));
    let big = crate::models::file_asset(&staff, "big_100%.docx");
    for asset in [&small, &big] {
        FileAsset::insert(&mut conn, asset).unwrap();
    }
    FileDownloadLog::record(&mut conn, &small, Some(staff.id), "first@example.org", "192.0.2.1").unwrap();
    FileDownloadLog::record(&mut conn, &big, Some(staff.id), "second@example.org", "192.0.2.2").unwrap();
    let names = |html: &scraper::Html| select_texts(html, "#file-table .file-name");

    assert_eq!(names(&app.get_html("/admin/files?sort=size").await), ["Small protocol.pdf", "big_100%.docx"]);
    assert_eq!(names(&app.get_html("/admin/files?sort=-size").await), ["big_100%.docx", "Small protocol.pdf"]);
    assert_eq!(names(&app.get_html("/admin/files?q=PROTOCOL").await), ["Small protocol.pdf"]);
    assert_eq!(names(&app.get_html("/admin/files?q=abc123").await), ["Small protocol.pdf"], "by the SHA-256's start");
    assert_eq!(names(&app.get_html("/admin/files?q=100%25").await), ["big_100%.docx"]);
    let nothing = app.get_html("/admin/files?q=nothing").await;
    assert_eq!(select_texts(&nothing, "#no-files"), ["No stored file matches “nothing”."]);
    let listed = app.get_html("/admin/files").await;
    assert_eq!(select_texts(&listed, ".file-size"), ["4.7 GiB", "10 B"]);
    assert_eq!(
        select_attr(&listed, &format!("tr[data-file-id=\"{}\"] .file-name a", small.id), "href"),
        format!("/admin/files/{}", small.id)
    );

    let who = |html: &scraper::Html| select_texts(html, "#download-log tbody td:nth-child(2)");
    assert_eq!(who(&app.get_html("/admin/downloads").await), ["second@example.org", "first@example.org"]);
    assert_eq!(who(&app.get_html("/admin/downloads?sort=who").await), ["first@example.org", "second@example.org"]);
    assert_eq!(who(&app.get_html("/admin/downloads?q=192.0.2.2").await), ["second@example.org"]);
    assert_eq!(who(&app.get_html("/admin/downloads?q=small").await), ["first@example.org"]);
}

#[actix_web::test]
async fn a_file_page_shows_its_answers_downloads_and_audit_trail() {
    use toxtemp::db::models::{FileAsset, FileDownloadLog, Which};
    let mut app = TestApp::spawn().await;
    let assay = crate::answers::drafted(&app, "owner@example.org").await;
    let sop = FileAsset::of_assay(&mut app.conn(), assay, Which::All)
        .unwrap()
        .into_iter()
        .find(|f| f.original_filename == "sop.pdf")
        .unwrap();
    assert_eq!(app.get(&format!("/admin/files/{}", sop.id)).await.status(), 403, "not for the owner");
    app.new_browser();
    let staff = app.login_new("staff@example.org", true).await;
    FileDownloadLog::record(&mut app.conn(), &sop, Some(staff.id), &staff.email, "192.0.2.9").unwrap();
    use toxtemp::db::models::{FileAuditEvent, FileEvent};
    FileAuditEvent::record(&mut app.conn(), &sop, FileEvent::ObjectLost, "verify-storage").unwrap();

    let page = app.get_html(&format!("/admin/files/{}", sop.id)).await;
    assert_eq!(select_texts(&page, "#file-title"), ["sop.pdf"]);
    assert_eq!(select_texts(&page, "#file-sha256")[0], sop.sha256);
    assert!(select_texts(&page, "#file-assay")[0].ends_with("NeuriTox"), "the assay's path");
    let linked = toxtemp::db::schema::answer_files::table
        .filter(toxtemp::db::schema::answer_files::file_id.eq(&sop.id))
        .count()
        .get_result::<i64>(&mut app.conn())
        .unwrap();
    assert!(linked > 0);
    assert_eq!(select_texts(&page, "#file-answers li").len() as i64, linked, "every linked answer");
    assert_eq!(select_texts(&page, "#answer-count"), [linked.to_string()]);
    assert_eq!(select_texts(&page, "#file-downloads tbody tr td:nth-child(3)"), ["192.0.2.9"]);
    assert_eq!(select_texts(&page, "#file-events .event-name"), ["object_lost"]);

    // From the assay's table, the file's row leads here; the linked answers open on demand.
    let table = app.get_html(&format!("/admin/assays/{assay}")).await;
    let row = format!("tr[data-file-id=\"{}\"]", sop.id);
    assert_eq!(select_attr(&table, &format!("{row} .file-name a"), "href"), format!("/admin/files/{}", sop.id));
    assert!(!has_attr(&table, &format!("{row} details.linked-answers"), "open"));
    assert_eq!(select_texts(&table, &format!("{row} details.linked-answers li")).len() as i64, linked);
    assert_eq!(select_attr(&table, &format!("{row} .copy-button"), "data-copy"), sop.sha256);

    assert_eq!(app.get(&format!("/admin/files/{}", uuid::Uuid::new_v4())).await.status(), 404);
    assert_eq!(app.get("/admin/files/not-a-file").await.status(), 404);
}
