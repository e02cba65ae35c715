use toxtemp::db::models::{Assay, Investigation, Study};

use crate::helpers::{TestApp, id_from_location, location, select_attr, select_texts};

#[actix_web::test]
async fn a_user_creates_an_investigation_a_study_and_an_assay() {
    let app = TestApp::spawn().await;
    app.login_new("a@example.org", false).await;
    let (inv, study, assay) = app.create_tree("NeuriTox").await;

    let html = app.get_html(&format!("/investigations/{inv}")).await;
    assert_eq!(select_texts(&html, "h1"), vec!["NeuriTox inv"]);
    assert_eq!(select_texts(&html, ".card h3 a"), vec!["NeuriTox study"]);

    let html = app.get_html(&format!("/studies/{study}")).await;
    assert_eq!(select_texts(&html, "#assay-list a"), vec!["NeuriTox"]);

    let html = app.get_html(&format!("/assays/{assay}")).await;
    assert_eq!(select_texts(&html, "h1"), vec!["NeuriTox"]);
    assert_eq!(select_attr(&html, "#assay-status", "data-status"), "none");

    let html = app.get_html("/").await;
    let row = format!("#assay-table tr[data-assay-id=\"{assay}\"] td");
    let cells = select_texts(&html, &row);
    assert_eq!(cells, vec!["NeuriTox", "NeuriTox study", "NeuriTox inv", "not started", "0", "0 / 77"]);
}

#[actix_web::test]
async fn the_assay_form_preselects_the_only_question_set() {
    let app = TestApp::spawn().await;
    app.login_new("a@example.org", false).await;
    let inv = app.post_form("/investigations/new", &[("title", "I")]).await;
    let inv = id_from_location(&inv, "/investigations/");
    let study = app.post_form(&format!("/investigations/{inv}/studies/new"), &[("title", "S")]).await;
    let study = id_from_location(&study, "/studies/");
    let html = app.get_html(&format!("/studies/{study}/assays/new")).await;
    let selected = select_texts(&html, "select[name=question_set_id] option[selected]");
    assert_eq!(selected, vec!["ToxTemp v1 (Krebs et al. 2019) (v1)"]);
}

#[actix_web::test]
async fn invalid_forms_are_shown_again_with_the_reason_and_what_was_typed() {
    let app = TestApp::spawn().await;
    app.login_new("a@example.org", false).await;
    let resp = app.post_form("/investigations/new", &[("title", "   "), ("description", "kept text")]).await;
    assert_eq!(resp.status(), 422);
    let html = scraper::Html::parse_document(&resp.text().await.unwrap());
    assert_eq!(select_texts(&html, "#form-error"), vec!["Please give a title."]);
    assert_eq!(select_texts(&html, "textarea[name=description]"), vec!["kept text"]);

    let (_, study, _) = app.create_tree("T").await;
    let resp =
        app.post_form(&format!("/studies/{study}/assays/new"), &[("title", "X"), ("question_set_id", "99999")]).await;
    assert_eq!(resp.status(), 422);
}

#[actix_web::test]
async fn edits_and_deletes_are_persisted() {
    let app = TestApp::spawn().await;
    app.login_new("a@example.org", false).await;
    let (inv, study, assay) = app.create_tree("Old").await;

    let resp =
        app.post_form(&format!("/assays/{assay}/edit"), &[("title", "New assay"), ("description", "scope")]).await;
    assert_eq!(location(&resp), format!("/assays/{assay}"));
    let resp = app.post_form(&format!("/studies/{study}/edit"), &[("title", "New study")]).await;
    assert_eq!(resp.status(), 303);
    let resp = app.post_form(&format!("/investigations/{inv}/edit"), &[("title", "New inv")]).await;
    assert_eq!(resp.status(), 303);
    {
        let mut conn = app.conn();
        let person = toxtemp::db::models::Person::find_by_email(&mut conn, "a@example.org").unwrap().unwrap();
        let (a, s, i) = Assay::find_for(&mut conn, assay, &person).unwrap();
        assert_eq!((a.title.as_str(), a.description.as_str(), a.question_set_id), ("New assay", "scope", None));
        assert_eq!(s.title, "New study");
        assert_eq!(i.title, "New inv");
    }

    let resp = app.post_form(&format!("/assays/{assay}/delete"), &[]).await;
    assert_eq!(location(&resp), format!("/studies/{study}"));
    assert_eq!(app.get(&format!("/assays/{assay}")).await.status(), 404);

    let (_, study2, assay2) = app.create_tree("Second").await;
    let resp = app.post_form(&format!("/investigations/{inv}/delete"), &[]).await;
    assert_eq!(location(&resp), "/");
    assert!(Study::of_investigation(&mut app.conn(), inv).unwrap().is_empty(), "studies cascade");
    // The other tree is untouched.
    assert_eq!(app.get(&format!("/studies/{study2}")).await.status(), 200);
    assert_eq!(app.get(&format!("/assays/{assay2}")).await.status(), 200);
}

#[actix_web::test]
async fn another_users_assay_is_404_for_reading_and_changing() {
    let mut app = TestApp::spawn().await;
    app.login_new("owner@example.org", false).await;
    let (inv, study, assay) = app.create_tree("Private").await;

    app.new_browser();
    app.login_new("other@example.org", false).await;
    for path in [
        format!("/assays/{assay}"),
        format!("/assays/{assay}/edit"),
        format!("/studies/{study}"),
        format!("/studies/{study}/assays/new"),
        format!("/investigations/{inv}"),
        format!("/investigations/{inv}/edit"),
    ] {
        assert_eq!(app.get(&path).await.status(), 404, "GET {path}");
    }
    for path in [
        format!("/assays/{assay}/edit"),
        format!("/assays/{assay}/delete"),
        format!("/studies/{study}/delete"),
        format!("/studies/{study}/assays/new"),
        format!("/investigations/{inv}/delete"),
        format!("/investigations/{inv}/studies/new"),
    ] {
        let resp = app.post_form(&path, &[("title", "hijacked")]).await;
        assert_eq!(resp.status(), 404, "POST {path}");
    }
    let html = app.get_html("/").await;
    assert!(select_texts(&html, "#assay-table tr[data-assay-id]").is_empty(), "not on their overview");

    let mut conn = app.conn();
    let owner = toxtemp::db::models::Person::find_by_email(&mut conn, "owner@example.org").unwrap().unwrap();
    let inv_row = Investigation::owned_by(&mut conn, &owner).unwrap();
    assert_eq!(inv_row[0].title, "Private inv");
    assert_eq!(Assay::find(&mut conn, assay).unwrap().title, "Private", "unchanged");
    assert_eq!(Study::of_investigation(&mut conn, inv).unwrap().len(), 1);
}

#[actix_web::test]
async fn staff_may_look_at_anyones_assay() {
    let mut app = TestApp::spawn().await;
    app.login_new("owner@example.org", false).await;
    let (_, _, assay) = app.create_tree("Shared").await;
    app.new_browser();
    app.login_new("staff@example.org", true).await;
    assert_eq!(app.get(&format!("/assays/{assay}")).await.status(), 200);
}

#[actix_web::test]
async fn unknown_pages_are_404_and_static_assets_are_served_locally() {
    let app = TestApp::spawn().await;
    assert_eq!(app.get("/no/such/page").await.status(), 404);
    let css = app.get("/static/vendor/bootstrap/bootstrap.min.css").await;
    assert_eq!(css.status(), 200);
    assert!(css.headers()["content-type"].to_str().unwrap().starts_with("text/css"));
    assert_eq!(app.get("/static/../Cargo.toml").await.status(), 404);
    let html = app.get_html("/login").await;
    for (sel, attr) in [("link[rel=stylesheet]", "href"), ("script", "src")] {
        let s = scraper::Selector::parse(sel).unwrap();
        for el in html.select(&s) {
            let url = el.value().attr(attr).unwrap_or("/");
            assert!(url.starts_with('/') && !url.starts_with("//"), "{url} must be local");
        }
    }
}
