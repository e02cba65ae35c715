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
