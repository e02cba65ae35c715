use crate::helpers::{PASSWORD, TestApp, location, select_attr, select_texts};

#[actix_web::test]
async fn anonymous_visitors_are_sent_to_the_login_page() {
    let app = TestApp::spawn().await;
    let resp = app.get("/assays/1?x=1").await;
    assert_eq!(resp.status(), 303);
    assert_eq!(location(&resp), "/login?next=%2Fassays%2F1%3Fx%3D1");
    let html = app.get_html("/login").await;
    assert_eq!(select_attr(&html, "input[name=email]", "type"), "email");
    assert_eq!(select_attr(&html, "input[name=password]", "type"), "password");
}

#[actix_web::test]
async fn login_succeeds_with_any_case_of_the_email_and_lands_on_next() {
    let app = TestApp::spawn().await;
    app.create_person("Tox.Person@Example.org", false);
    let resp = app
        .post_form(
            "/login",
            &[("email", "TOX.person@example.ORG"), ("password", PASSWORD), ("next", "/investigations/new")],
        )
        .await;
    assert_eq!(resp.status(), 303);
    assert_eq!(location(&resp), "/investigations/new");
    let html = app.get_html("/").await;
    assert_eq!(select_texts(&html, "[data-testid=current-user]"), vec!["tox.person@example.org"]);
}

#[actix_web::test]
async fn login_fails_with_a_wrong_password_or_unknown_email() {
    let app = TestApp::spawn().await;
    app.create_person("a@example.org", false);
    for (email, password) in [("a@example.org", "wrong password"), ("nobody@example.org", PASSWORD)] {
        let resp = app.login(email, password).await;
        assert_eq!(resp.status(), 401);
        let html = scraper::Html::parse_document(&resp.text().await.unwrap());
        assert_eq!(select_texts(&html, "#login-error"), vec!["Unknown email or wrong password."]);
        assert_eq!(select_attr(&html, "input[name=email]", "value"), email, "the typed email is kept");
    }
    assert_eq!(app.get("/").await.status(), 303, "still anonymous");
}

#[actix_web::test]
async fn login_does_not_follow_an_offsite_next() {
    let app = TestApp::spawn().await;
    app.create_person("a@example.org", false);
    let resp = app
        .post_form("/login", &[("email", "a@example.org"), ("password", PASSWORD), ("next", "//evil.example/")])
        .await;
    assert_eq!(location(&resp), "/");
}

#[actix_web::test]
async fn an_inactive_account_cannot_log_in() {
    use diesel::prelude::*;
    use toxtemp::db::schema::persons;
    let app = TestApp::spawn().await;
    let p = app.create_person("gone@example.org", false);
    diesel::update(persons::table.find(p.id)).set(persons::is_active.eq(false)).execute(&mut *app.conn()).unwrap();
    assert_eq!(app.login("gone@example.org", PASSWORD).await.status(), 401);
}

/// Log in and return the session cookie the server set, as an attacker who copied it would.
async fn login_cookie(app: &TestApp, email: &str) -> String {
    let resp = app.login(email, PASSWORD).await;
    assert_eq!(resp.status(), 303);
    let set = resp.headers().get("set-cookie").expect("a session cookie").to_str().unwrap();
    set.split(';').next().unwrap().to_owned()
}

/// GET `path` with exactly this cookie, from a client that keeps no cookies of its own.
async fn replay(app: &TestApp, cookie: &str, path: &str) -> reqwest::Response {
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    client.get(app.url(path)).header("cookie", cookie).send().await.unwrap()
}

#[actix_web::test]
async fn an_old_cookie_replayed_after_logout_gets_the_login_page() {
    let app = TestApp::spawn().await;
    app.create_person("a@example.org", false);
    let cookie = login_cookie(&app, "a@example.org").await;
    assert_eq!(replay(&app, &cookie, "/").await.status(), 200, "the copied cookie works while logged in");
    let resp = app.post_form("/logout", &[]).await;
    assert_eq!((resp.status().as_u16(), location(&resp)), (303, "/login".to_owned()));
    let replayed = replay(&app, &cookie, "/investigations/new").await;
    assert_eq!(replayed.status(), 303);
    assert_eq!(location(&replayed), "/login?next=%2Finvestigations%2Fnew");
}

#[actix_web::test]
async fn logout_password_change_and_deactivation_end_every_session_of_the_person() {
    let mut app = TestApp::spawn().await;
    app.create_person("a@example.org", false);
    let other_browser = login_cookie(&app, "a@example.org").await;
    app.new_browser();
    let _ = login_cookie(&app, "a@example.org").await;
    app.post_form("/logout", &[]).await;
    assert_eq!(replay(&app, &other_browser, "/").await.status(), 303, "logout ends the other browser's session too");

    let before = login_cookie(&app, "a@example.org").await;
    toxtemp::cli::accounts::set_password(&app.ctx, "a@example.org", "a brand new password").unwrap();
    assert_eq!(replay(&app, &before, "/").await.status(), 303, "a new password ends old sessions");
    assert_eq!(app.login("a@example.org", "a brand new password").await.status(), 303);
    assert_eq!(app.get("/").await.status(), 200, "and the new one works");

    toxtemp::cli::accounts::set_active(&app.ctx, "a@example.org", false).unwrap();
    assert_eq!(app.get("/").await.status(), 303, "deactivation ends the session at once");
    assert_eq!(app.login("a@example.org", "a brand new password").await.status(), 401);
}

#[actix_web::test]
async fn the_server_ends_a_login_after_its_lifetime_whatever_the_cookie_says() {
    let app = TestApp::builder().config(|c| c.session_lifetime = std::time::Duration::ZERO).spawn().await;
    app.create_person("a@example.org", false);
    let cookie = login_cookie(&app, "a@example.org").await;
    assert_eq!(replay(&app, &cookie, "/").await.status(), 303, "a login older than the lifetime is over");
}

#[actix_web::test]
async fn the_session_cookie_is_http_only_and_same_site() {
    let app = TestApp::spawn().await;
    let resp = app.get("/login").await;
    let cookie = resp.headers().get("set-cookie").expect("a session cookie").to_str().unwrap().to_owned();
    assert!(cookie.starts_with("toxtemp_session="), "{cookie}");
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Lax"), "{cookie}");
}

#[actix_web::test]
async fn state_changing_requests_without_the_csrf_token_are_refused() {
    let app = TestApp::spawn().await;
    app.login_new("a@example.org", false).await;
    let missing = app.post_form_raw("/investigations/new", &[("title", "no token")]).await;
    assert_eq!(missing.status(), 403);
    let wrong = app.post_form_raw("/investigations/new", &[("title", "bad token"), ("csrf_token", "0000")]).await;
    assert_eq!(wrong.status(), 403);
    let html = scraper::Html::parse_document(&wrong.text().await.unwrap());
    assert_eq!(select_texts(&html, "h1"), vec!["Form expired"]);
    // Logout is state-changing too.
    assert_eq!(app.post_form_raw("/logout", &[]).await.status(), 403);
    let html = app.get_html("/").await;
    assert!(select_texts(&html, "#investigation-list a").is_empty(), "nothing was created");
    // The header form of the token is accepted.
    let token = app.csrf_token().await;
    let ok = app
        .client
        .post(app.url("/investigations/new"))
        .header("X-CSRF-Token", token)
        .form(&[("title", "with header")])
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 303);
}

#[actix_web::test]
async fn the_login_form_itself_needs_the_csrf_token() {
    let app = TestApp::spawn().await;
    app.create_person("a@example.org", false);
    let resp = app.post_form_raw("/login", &[("email", "a@example.org"), ("password", PASSWORD)]).await;
    assert_eq!(resp.status(), 403);
}

#[actix_web::test]
async fn repeated_wrong_passwords_lock_the_account_for_a_while() {
    let app = TestApp::spawn().await;
    app.create_person("target@example.org", false);
    for _ in 0..toxtemp::auth::throttle::EMAIL_LIMIT {
        assert_eq!(app.login("target@example.org", "guess").await.status(), 401);
    }
    // Even the right password is refused now, with a clear message.
    let resp = app.login("TARGET@example.org", PASSWORD).await;
    assert_eq!(resp.status(), 429);
    let html = scraper::Html::parse_document(&resp.text().await.unwrap());
    assert!(select_texts(&html, "#error-message")[0].contains("Too many failed attempts"));
    // Other accounts are unaffected.
    app.create_person("other@example.org", false);
    assert_eq!(app.login("other@example.org", PASSWORD).await.status(), 303);
}
