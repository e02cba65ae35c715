use crate::helpers::{TestApp, select_texts};

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
