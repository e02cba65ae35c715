//! Accounts: changing one's password, resetting it by e-mail (an SMTP server inside the test
//! process) or through the operator's log, and the staff page `/admin/accounts` with its
//! guards — all through the real HTTP server.

use diesel::prelude::*;
use scraper::Html;
use toxtemp::auth::reset::RESET_LINK_LIFETIME;
use toxtemp::db::models::person::PersonSpec;
use toxtemp::db::models::{PasswordReset, Person};
use toxtemp::db::schema::{password_resets, persons};

use crate::helpers::{PASSWORD, TestApp, location, select_attr, select_texts};
use crate::smtp::TestSmtp;

const PUBLIC_URL: &str = "https://toxtemp.example.org";

/// An app that mails through a [`TestSmtp`] and builds links on [`PUBLIC_URL`].
async fn app_with_mail() -> (TestApp, TestSmtp) {
    let smtp = TestSmtp::start().await;
    let config = smtp.config();
    let app = TestApp::builder()
        .config(move |c| {
            c.smtp = Some(config);
            c.public_url = Some(PUBLIC_URL.into());
        })
        .spawn()
        .await;
    (app, smtp)
}

/// Log in with a client of its own and return its session cookie (another browser).
async fn other_browser(app: &TestApp, email: &str, password: &str) -> String {
    let client = crate::helpers::new_client();
    let login = client.get(app.url("/login")).send().await.unwrap();
    let cookie = login.headers().get("set-cookie").unwrap().to_str().unwrap().split(';').next().unwrap().to_owned();
    let html = Html::parse_document(&login.text().await.unwrap());
    let token = select_attr(&html, "meta[name=csrf-token]", "content");
    let resp = client
        .post(app.url("/login"))
        .header("cookie", &cookie)
        .form(&[("email", email), ("password", password), ("next", "/"), ("csrf_token", &token)])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303, "login of {email} in another browser");
    resp.headers().get("set-cookie").unwrap().to_str().unwrap().split(';').next().unwrap().to_owned()
}

/// GET `path` with exactly this cookie.
async fn replay(app: &TestApp, cookie: &str, path: &str) -> reqwest::Response {
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    client.get(app.url(path)).header("cookie", cookie).send().await.unwrap()
}

async fn html_of(resp: reqwest::Response) -> Html {
    Html::parse_document(&resp.text().await.unwrap())
}

async fn change_password(app: &TestApp, current: &str, new: &str, repeat: &str) -> reqwest::Response {
    app.post_form(
        "/account/password",
        &[("current_password", current), ("new_password", new), ("new_password_repeat", repeat)],
    )
    .await
}

fn create_superuser(app: &TestApp, email: &str) -> Person {
    let spec = PersonSpec { email, display_name: "", is_staff: true, is_superuser: true };
    toxtemp::auth::create_account(&mut app.conn(), &spec, PASSWORD).unwrap()
}

fn person(app: &TestApp, id: i32) -> Person {
    Person::find(&mut app.conn(), id).unwrap()
}

// --- changing one's password -------------------------------------------------------------

#[actix_web::test]
async fn the_account_page_is_linked_from_the_navbar_and_needs_a_login() {
    let app = TestApp::spawn().await;
    assert_eq!(location(&app.get("/account").await), "/login?next=%2Faccount");
    app.login_new("a@example.org", false).await;
    let html = app.get_html("/").await;
    assert_eq!(select_attr(&html, "[data-testid=current-user]", "href"), "/account");
    let html = app.get_html("/account").await;
    assert_eq!(select_texts(&html, "#account-email"), vec!["a@example.org"]);
    assert_eq!(select_attr(&html, "#password-form input[name=csrf_token]", "type"), "hidden");
}

#[actix_web::test]
async fn changing_the_password_ends_every_other_session_and_keeps_this_one() {
    let app = TestApp::spawn().await;
    app.login_new("a@example.org", false).await;
    let elsewhere = other_browser(&app, "a@example.org", PASSWORD).await;
    assert_eq!(replay(&app, &elsewhere, "/").await.status(), 200);

    let resp = change_password(&app, PASSWORD, "a brand new password", "a brand new password").await;
    assert_eq!((resp.status().as_u16(), location(&resp)), (303, "/account".to_owned()));
    let html = app.get_html("/account").await;
    let flash = select_texts(&html, ".flash").join(" ");
    assert!(flash.contains("logged out everywhere else") && flash.contains("stays logged in"), "{flash}");
    assert_eq!(app.get("/").await.status(), 200, "this browser stays logged in");
    assert_eq!(replay(&app, &elsewhere, "/").await.status(), 303, "the other browser is logged out");

    let mut app = app;
    app.new_browser();
    assert_eq!(app.login("a@example.org", PASSWORD).await.status(), 401, "the old password is gone");
    assert_eq!(app.login("a@example.org", "a brand new password").await.status(), 303);
}

#[actix_web::test]
async fn a_wrong_current_password_or_a_bad_new_one_changes_nothing() {
    let app = TestApp::spawn().await;
    app.login_new("a@example.org", false).await;
    let cases = [
        ("not my password", "a brand new password", "a brand new password", "The current password is wrong."),
        (PASSWORD, "a brand new password", "another new password", "The two new passwords differ."),
        (PASSWORD, "short", "short", "The password must have at least 8 characters."),
    ];
    for (current, new, repeat, error) in cases {
        let resp = change_password(&app, current, new, repeat).await;
        assert_eq!(resp.status(), 422, "{error}");
        assert_eq!(select_texts(&html_of(resp).await, "#form-error"), vec![error]);
    }
    assert_eq!(app.get("/").await.status(), 200, "still logged in");
    let mut app = app;
    app.new_browser();
    assert_eq!(app.login("a@example.org", PASSWORD).await.status(), 303, "the password is unchanged");
}

#[actix_web::test]
async fn wrong_current_passwords_are_counted_by_the_login_throttle() {
    let app = TestApp::spawn().await;
    app.login_new("a@example.org", false).await;
    for _ in 0..toxtemp::auth::throttle::EMAIL_LIMIT {
        assert_eq!(change_password(&app, "guess", "a brand new password", "a brand new password").await.status(), 422);
    }
    let resp = change_password(&app, PASSWORD, "a brand new password", "a brand new password").await;
    assert_eq!(resp.status(), 429, "even the right password waits now");
    let mut app = app;
    app.new_browser();
    assert_eq!(app.login("a@example.org", PASSWORD).await.status(), 429, "and so does the login");
}

#[actix_web::test]
async fn the_password_forms_need_the_csrf_token() {
    let app = TestApp::spawn().await;
    app.login_new("a@example.org", false).await;
    let fields = [
        ("current_password", PASSWORD),
        ("new_password", "a brand new password"),
        ("new_password_repeat", "a brand new password"),
    ];
    assert_eq!(app.post_form_raw("/account/password", &fields).await.status(), 403);
    assert_eq!(app.post_form_raw("/password-reset", &[("email", "a@example.org")]).await.status(), 403);
    let mut app = app;
    app.new_browser();
    assert_eq!(app.login("a@example.org", PASSWORD).await.status(), 303, "the password is unchanged");
}

// --- password reset by e-mail --------------------------------------------------------------

/// Ask for a reset link and return the neutral answer's text and how it was delivered.
async fn request_reset(app: &TestApp, email: &str) -> (String, String) {
    let resp = app.post_form("/password-reset", &[("email", email)]).await;
    assert_eq!(resp.status(), 200, "reset request for {email}");
    let html = html_of(resp).await;
    (select_texts(&html, "#reset-requested").join(" "), select_attr(&html, "#reset-requested", "data-delivery"))
}

/// The path of the link in a mail, checked to start with the public URL.
fn link_path(link: &str) -> String {
    let path = link.strip_prefix(PUBLIC_URL).unwrap_or_else(|| panic!("{link} does not start with {PUBLIC_URL}"));
    assert!(path.starts_with("/password-reset/"), "{path}");
    path.to_owned()
}

async fn set_new_password(app: &TestApp, path: &str, password: &str) -> reqwest::Response {
    app.post_form(path, &[("new_password", password), ("new_password_repeat", password)]).await
}

#[actix_web::test]
async fn a_reset_link_by_mail_sets_a_new_password_once_and_ends_every_session() {
    let (mut app, smtp) = app_with_mail().await;
    app.create_person("Forgetful@example.org", false);
    let elsewhere = other_browser(&app, "forgetful@example.org", PASSWORD).await;

    let login = app.get_html("/login").await;
    assert_eq!(select_attr(&login, "#forgot-password", "href"), "/password-reset");
    let (answer, delivery) = request_reset(&app, "FORGETFUL@example.org").await;
    assert_eq!(delivery, "mail");
    assert!(answer.contains("If an active account exists"), "{answer}");

    let mail = smtp.wait_for(1).await.remove(0);
    assert_eq!(mail.to, vec!["<forgetful@example.org>"]);
    assert_eq!(mail.from, "<noreply@example.org>");
    assert_eq!(mail.header("Subject").as_deref(), Some("Reset your ToxTempAssistant password"));
    assert!(mail.body().contains("within 60 minutes"), "{}", mail.body());
    let path = link_path(&mail.link());
    let token = path.trim_start_matches("/password-reset/");
    assert!(token.len() >= 43, "at least 32 random bytes: {token}");
    let stored: Vec<String> =
        password_resets::table.select(password_resets::token_hash).load(&mut *app.conn()).unwrap();
    assert_eq!(stored.len(), 1);
    assert!(!stored[0].contains(token), "only the hash is stored");

    let form = app.get(&path).await;
    assert_eq!(form.status(), 200);
    assert_eq!(form.headers().get("cache-control").unwrap(), "no-store");
    let form = html_of(form).await;
    assert_eq!(select_texts(&form, "#reset-email"), vec!["forgetful@example.org"]);
    let mismatch =
        app.post_form(&path, &[("new_password", "one new password"), ("new_password_repeat", "other")]).await;
    assert_eq!(mismatch.status(), 422, "a mismatch keeps the link");

    let done = set_new_password(&app, &path, "my new password").await;
    assert_eq!((done.status().as_u16(), location(&done)), (303, "/login".to_owned()));
    let login = app.get_html("/login").await;
    assert!(select_texts(&login, ".flash").join(" ").contains("Please log in"));
    assert_eq!(replay(&app, &elsewhere, "/").await.status(), 303, "every session ended");
    assert_eq!(app.login("forgetful@example.org", PASSWORD).await.status(), 401, "the old password fails");
    assert_eq!(app.login("forgetful@example.org", "my new password").await.status(), 303);

    app.new_browser();
    assert_eq!(app.get(&path).await.status(), 410, "the link works once");
    assert_eq!(set_new_password(&app, &path, "yet another password").await.status(), 410);
    assert_eq!(app.login("forgetful@example.org", "my new password").await.status(), 303);
}

#[actix_web::test]
async fn unknown_and_deactivated_addresses_get_the_same_answer_and_no_mail() {
    let (app, smtp) = app_with_mail().await;
    let known = app.create_person("known@example.org", false);
    let gone = app.create_person("gone@example.org", false);
    toxtemp::auth::accounts::set_active(&mut app.conn(), gone.id, false).unwrap();

    let unknown_answer = request_reset(&app, "nobody@example.org").await;
    let gone_answer = request_reset(&app, "gone@example.org").await;
    let known_answer = request_reset(&app, "known@example.org").await;
    assert_eq!(unknown_answer, known_answer);
    assert_eq!(gone_answer, known_answer);

    smtp.wait_for(1).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let mails = smtp.mails();
    assert_eq!(mails.len(), 1, "only the active account got a mail");
    assert_eq!(mails[0].to, vec!["<known@example.org>"]);
    assert_eq!(PasswordReset::count_for(&mut app.conn(), known.id).unwrap(), 1);
    assert_eq!(PasswordReset::count_for(&mut app.conn(), gone.id).unwrap(), 0);
}

#[actix_web::test]
async fn an_expired_link_is_refused() {
    let (app, smtp) = app_with_mail().await;
    app.create_person("a@example.org", false);
    request_reset(&app, "a@example.org").await;
    let path = link_path(&smtp.wait_for(1).await[0].link());
    let stored: Vec<(chrono::NaiveDateTime, chrono::NaiveDateTime)> = password_resets::table
        .select((password_resets::created_at, password_resets::expires_at))
        .load(&mut *app.conn())
        .unwrap();
    assert_eq!((stored[0].1 - stored[0].0).num_seconds(), RESET_LINK_LIFETIME.as_secs() as i64, "one hour");
    let past = toxtemp::db::now() - chrono::Duration::minutes(1);
    diesel::update(password_resets::table).set(password_resets::expires_at.eq(past)).execute(&mut *app.conn()).unwrap();

    let resp = app.get(&path).await;
    assert_eq!(resp.status(), 410);
    assert!(!select_texts(&html_of(resp).await, "#reset-invalid").is_empty());
    assert_eq!(set_new_password(&app, &path, "my new password").await.status(), 410);
    assert_eq!(app.login("a@example.org", PASSWORD).await.status(), 303, "the password is unchanged");
}

#[actix_web::test]
async fn open_links_die_when_the_password_changes_by_any_route_or_a_newer_link_is_sent() {
    let (app, smtp) = app_with_mail().await;
    app.create_person("a@example.org", false);
    request_reset(&app, "a@example.org").await;
    let first = link_path(&smtp.wait_for(1).await[0].link());
    request_reset(&app, "a@example.org").await;
    let second = link_path(&smtp.wait_for(2).await[1].link());
    assert_ne!(first, second);
    assert_eq!(app.get(&first).await.status(), 410, "only the newest link works");
    assert_eq!(app.get(&second).await.status(), 200);

    toxtemp::cli::accounts::set_password(&app.ctx, "a@example.org", "set by the operator").unwrap();
    assert_eq!(app.get(&second).await.status(), 410, "the operator's new password ends it");

    request_reset(&app, "a@example.org").await;
    let third = link_path(&smtp.wait_for(3).await[2].link());
    app.login("a@example.org", "set by the operator").await;
    let resp = change_password(&app, "set by the operator", "changed on the page", "changed on the page").await;
    assert_eq!(resp.status(), 303);
    assert_eq!(app.get(&third).await.status(), 410, "a change on /account ends it");
}

#[actix_web::test]
async fn without_smtp_the_link_is_prepared_for_the_operator_and_the_page_says_so() {
    let app = TestApp::spawn().await;
    let person = app.create_person("a@example.org", false);
    let (known, delivery) = request_reset(&app, "a@example.org").await;
    assert_eq!(delivery, "operator");
    assert!(known.contains("contact its administrator"), "{known}");
    assert_eq!(request_reset(&app, "nobody@example.org").await, (known, delivery));
    assert_eq!(PasswordReset::count_for(&mut app.conn(), person.id).unwrap(), 1, "the link exists, in the log");
}

#[actix_web::test]
async fn a_failing_smtp_server_still_gets_the_neutral_answer() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let app = TestApp::builder()
        .config(move |c| {
            c.smtp = Some(toxtemp::config::SmtpConfig {
                host: "127.0.0.1".into(),
                port,
                username: None,
                password: None,
                from: "noreply@example.org".into(),
                tls: toxtemp::config::SmtpTls::None,
                timeout: std::time::Duration::from_secs(2),
            });
            c.public_url = Some(PUBLIC_URL.into());
        })
        .spawn()
        .await;
    app.create_person("a@example.org", false);
    let (known, delivery) = request_reset(&app, "a@example.org").await;
    assert_eq!(delivery, "mail");
    assert_eq!(request_reset(&app, "nobody@example.org").await, (known, delivery));
}

#[actix_web::test]
async fn reset_requests_are_throttled_per_address_whether_or_not_it_has_an_account() {
    let app = TestApp::spawn().await;
    for email in ["nobody@example.org", "Nobody@Example.org", "nobody@example.org"] {
        request_reset(&app, email).await;
    }
    let resp = app.post_form("/password-reset", &[("email", "nobody@example.org")]).await;
    assert_eq!(resp.status(), 429);
    assert!(select_texts(&html_of(resp).await, "#error-message")[0].contains("Too many requests"));
    request_reset(&app, "someone.else@example.org").await;
}

#[actix_web::test]
async fn malformed_or_unknown_tokens_get_the_invalid_link_page() {
    let app = TestApp::spawn().await;
    for path in ["/password-reset/abc", &format!("/password-reset/{}", "A".repeat(43))] {
        assert_eq!(app.get(path).await.status(), 410, "{path}");
    }
}

// --- /admin/accounts -----------------------------------------------------------------------

fn select_attr_all(html: &Html, selector: &str, name: &str) -> Vec<String> {
    let sel = scraper::Selector::parse(selector).unwrap();
    html.select(&sel).filter_map(|e| e.value().attr(name)).map(str::to_owned).collect()
}

fn row_texts(html: &Html, email: &str, column: &str) -> Vec<String> {
    select_texts(html, &format!("#admin-accounts tr[data-email=\"{email}\"] .{column}"))
}

#[actix_web::test]
async fn non_staff_get_403_on_the_accounts_pages() {
    let app = TestApp::spawn().await;
    let me = app.login_new("user@example.org", false).await;
    let other = app.create_person("other@example.org", false);
    assert_eq!(app.get("/admin/accounts").await.status(), 403);
    assert_eq!(app.post_form("/admin/accounts", &[("email", "new@example.org")]).await.status(), 403);
    for action in ["deactivate", "grant-staff", "send-link"] {
        let resp = app.post_form(&format!("/admin/accounts/{}/{action}", other.id), &[]).await;
        assert_eq!(resp.status(), 403, "{action}");
    }
    let resp = app.post_form(&format!("/admin/accounts/{}/grant-staff", me.id), &[]).await;
    assert_eq!(resp.status(), 403);
    assert!(person(&app, other.id).is_active);
    assert!(!person(&app, me.id).is_staff);
    assert!(Person::find_by_email(&mut app.conn(), "new@example.org").unwrap().is_none());
}

#[actix_web::test]
async fn staff_see_search_and_page_through_the_accounts() {
    let app = TestApp::spawn().await;
    app.login_new("staff@example.org", true).await;
    for i in 0..60 {
        app.create_person(&format!("user{i:02}@example.org"), false);
    }
    let html = app.get_html("/admin/accounts").await;
    assert!(select_texts(&html, "#admin-nav a").contains(&"Accounts".to_owned()));
    assert_eq!(select_texts(&html, "#admin-accounts tbody tr").len(), 50);
    assert!(html.select(&scraper::Selector::parse("a[rel=next]").unwrap()).next().is_some());
    assert_eq!(row_texts(&html, "staff@example.org", "account-staff"), vec!["yes"]);
    assert_ne!(row_texts(&html, "staff@example.org", "account-last-login"), vec!["—"], "the login is recorded");
    assert_eq!(row_texts(&html, "user00@example.org", "account-last-login"), vec!["—"]);
    let page2 = app.get_html("/admin/accounts?page=2").await;
    assert_eq!(select_texts(&page2, "#admin-accounts tbody tr").len(), 11);
    let found = app.get_html("/admin/accounts?q=USER4").await;
    assert_eq!(select_texts(&found, "#admin-accounts .account-email").len(), 10);
    let newest_email_first = app.get_html("/admin/accounts?sort=-email").await;
    assert_eq!(select_texts(&newest_email_first, "#admin-accounts .account-email")[0], "user59@example.org");
    let by_login = app.get_html("/admin/accounts?sort=-login").await;
    assert_eq!(select_attr(&by_login, "#admin-accounts th[data-sort=login]", "aria-sort"), "descending");
    let none = app.get_html("/admin/accounts?q=%25").await;
    assert!(select_texts(&none, "#admin-accounts .account-email").is_empty(), "% matches only itself");
}

#[actix_web::test]
async fn staff_create_an_account_whose_owner_chooses_the_password_through_the_invitation() {
    let (mut app, smtp) = app_with_mail().await;
    app.login_new("staff@example.org", true).await;
    let resp =
        app.post_form("/admin/accounts", &[("email", "New.Person@example.org"), ("display_name", "New Person")]).await;
    assert_eq!(resp.status(), 303);
    let html = app.get_html(&location(&resp)).await;
    let flash = select_texts(&html, ".flash").join(" ");
    assert!(flash.contains("Account created for new.person@example.org") && flash.contains("e-mailed"), "{flash}");
    assert_eq!(row_texts(&html, "new.person@example.org", "account-active"), vec!["yes"]);
    assert_eq!(row_texts(&html, "new.person@example.org", "account-staff"), vec!["no"]);

    let again = app.post_form("/admin/accounts", &[("email", "new.person@example.org")]).await;
    assert_eq!(again.status(), 409);
    let bad = app.post_form("/admin/accounts", &[("email", "not an email")]).await;
    assert_eq!(bad.status(), 422);

    let mail = smtp.wait_for(1).await.remove(0);
    assert_eq!(mail.to, vec!["<new.person@example.org>"]);
    assert!(mail.body().contains("staff@example.org set up a ToxTempAssistant account"), "{}", mail.body());
    let path = link_path(&mail.link());
    app.new_browser();
    assert_eq!(set_new_password(&app, &path, "chosen by me").await.status(), 303);
    assert_eq!(app.login("new.person@example.org", "chosen by me").await.status(), 303);

    // Once they have logged in, a link staff send is a password reset, valid for an hour.
    let person = Person::find_by_email(&mut app.conn(), "new.person@example.org").unwrap().unwrap();
    app.new_browser();
    app.login_new("other.staff@example.org", true).await;
    let resp = app.post_form(&format!("/admin/accounts/{}/send-link", person.id), &[]).await;
    assert_eq!(resp.status(), 303);
    let mail = smtp.wait_for(2).await.remove(1);
    assert!(mail.body().contains("asked to reset the password"), "{}", mail.body());
    assert!(!mail.body().contains("set up a ToxTempAssistant account"));
    let expires = toxtemp::db::schema::password_resets::table
        .filter(toxtemp::db::schema::password_resets::person_id.eq(person.id))
        .select(toxtemp::db::schema::password_resets::expires_at)
        .first::<chrono::NaiveDateTime>(&mut app.conn())
        .unwrap();
    assert!(expires <= toxtemp::db::now() + chrono::Duration::minutes(61), "an hour, not the invitation's 72");
}

#[actix_web::test]
async fn without_smtp_the_invitation_goes_to_the_operator() {
    let app = TestApp::spawn().await;
    app.login_new("staff@example.org", true).await;
    let resp = app.post_form("/admin/accounts", &[("email", "new@example.org")]).await;
    let html = app.get_html(&location(&resp)).await;
    assert!(select_texts(&html, ".flash").join(" ").contains("ask the operator"));
    let new = Person::find_by_email(&mut app.conn(), "new@example.org").unwrap().unwrap();
    assert_eq!(PasswordReset::count_for(&mut app.conn(), new.id).unwrap(), 1);
    let resp = app.post_form(&format!("/admin/accounts/{}/send-link", new.id), &[]).await;
    assert_eq!(resp.status(), 303);
    assert_eq!(PasswordReset::count_for(&mut app.conn(), new.id).unwrap(), 1, "the newer link replaced it");
}

#[actix_web::test]
async fn deactivation_ends_the_persons_sessions_at_once_and_reactivation_lets_them_back() {
    let app = TestApp::spawn().await;
    let user = app.create_person("user@example.org", false);
    let their_browser = other_browser(&app, "user@example.org", PASSWORD).await;
    assert_eq!(replay(&app, &their_browser, "/").await.status(), 200);
    app.login_new("staff@example.org", true).await;

    let resp = app.post_form(&format!("/admin/accounts/{}/deactivate", user.id), &[]).await;
    assert_eq!(resp.status(), 303);
    let html = app.get_html("/admin/accounts").await;
    assert!(select_texts(&html, ".flash").join(" ").contains("user@example.org is deactivated"));
    assert_eq!(row_texts(&html, "user@example.org", "account-active"), vec!["deactivated"]);
    assert_eq!(replay(&app, &their_browser, "/").await.status(), 303, "their session ended at once");
    assert!(!person(&app, user.id).is_active);

    let resp = app.post_form(&format!("/admin/accounts/{}/reactivate", user.id), &[]).await;
    assert_eq!(resp.status(), 303);
    other_browser(&app, "user@example.org", PASSWORD).await;
}

#[actix_web::test]
async fn a_deactivated_person_cannot_log_in_or_get_a_link() {
    let mut app = TestApp::spawn().await;
    let user = app.create_person("user@example.org", false);
    app.login_new("staff@example.org", true).await;
    app.post_form(&format!("/admin/accounts/{}/deactivate", user.id), &[]).await;
    let link = app.post_form(&format!("/admin/accounts/{}/send-link", user.id), &[]).await;
    assert_eq!(link.status(), 409);
    app.new_browser();
    assert_eq!(app.login("user@example.org", PASSWORD).await.status(), 401);
    request_reset(&app, "user@example.org").await;
    assert_eq!(PasswordReset::count_for(&mut app.conn(), user.id).unwrap(), 0);
}

#[actix_web::test]
async fn staff_cannot_lock_themselves_out_or_touch_privileged_accounts() {
    let app = TestApp::spawn().await;
    let me = app.login_new("staff@example.org", true).await;
    let colleague = app.create_person("colleague@example.org", true);
    let root = create_superuser(&app, "root@example.org");
    let user = app.create_person("user@example.org", false);
    let html = app.get_html("/admin/accounts").await;
    let forms =
        |email: &str| select_attr_all(&html, &format!("#admin-accounts tr[data-email=\"{email}\"] form"), "action");
    assert_eq!(
        forms("user@example.org"),
        vec![format!("/admin/accounts/{}/deactivate", user.id), format!("/admin/accounts/{}/send-link", user.id)]
    );
    assert!(forms("colleague@example.org").is_empty() && forms("root@example.org").is_empty());
    assert!(forms("staff@example.org").is_empty(), "no buttons against oneself");
    assert!(html.select(&scraper::Selector::parse("#new-staff").unwrap()).next().is_none(), "no staff box");

    let refused = [
        (me.id, "deactivate", "You cannot deactivate your own account."),
        (me.id, "revoke-staff", "You cannot remove your own staff flag."),
        (colleague.id, "deactivate", "Only a superuser may change a staff or superuser account."),
        (root.id, "deactivate", "Only a superuser may change a staff or superuser account."),
        (colleague.id, "revoke-staff", "Only a superuser may grant or remove the staff flag."),
        (user.id, "grant-staff", "Only a superuser may grant or remove the staff flag."),
    ];
    for (id, action, message) in refused {
        let resp = app.post_form(&format!("/admin/accounts/{id}/{action}"), &[]).await;
        assert_eq!(resp.status(), 403, "{action} {id}");
        assert_eq!(select_texts(&html_of(resp).await, "#error-message"), vec![message]);
    }
    let staff_account = app.post_form("/admin/accounts", &[("email", "new@example.org"), ("staff", "on")]).await;
    assert_eq!(staff_account.status(), 403, "only superusers create staff accounts");
    assert!(Person::find_by_email(&mut app.conn(), "new@example.org").unwrap().is_none());
    assert!(person(&app, me.id).is_active && person(&app, me.id).is_staff);
    assert!(person(&app, colleague.id).is_active && person(&app, colleague.id).is_staff);
    assert!(!person(&app, user.id).is_staff);
    assert_eq!(app.post_form(&format!("/admin/accounts/{}/promote", user.id), &[]).await.status(), 404);

    // Ordinary accounts are theirs to (de)activate.
    assert_eq!(app.post_form(&format!("/admin/accounts/{}/deactivate", user.id), &[]).await.status(), 303);
    assert_eq!(app.post_form(&format!("/admin/accounts/{}/reactivate", user.id), &[]).await.status(), 303);
    assert!(person(&app, user.id).is_active);
}

#[actix_web::test]
async fn a_superuser_grants_and_removes_the_staff_flag_but_not_their_own() {
    let app = TestApp::spawn().await;
    let root = create_superuser(&app, "root@example.org");
    assert_eq!(app.login("root@example.org", PASSWORD).await.status(), 303);
    let user = app.create_person("user@example.org", false);
    let other_root = create_superuser(&app, "root2@example.org");

    assert_eq!(app.post_form(&format!("/admin/accounts/{}/grant-staff", user.id), &[]).await.status(), 303);
    assert!(person(&app, user.id).is_staff);
    let html = app.get_html("/admin/accounts").await;
    assert!(select_texts(&html, ".flash").join(" ").contains("user@example.org is staff now"));
    assert_eq!(app.post_form(&format!("/admin/accounts/{}/revoke-staff", user.id), &[]).await.status(), 303);
    assert!(!person(&app, user.id).is_staff);

    assert_eq!(app.post_form(&format!("/admin/accounts/{}/revoke-staff", root.id), &[]).await.status(), 403);
    assert_eq!(app.post_form(&format!("/admin/accounts/{}/deactivate", root.id), &[]).await.status(), 403);
    assert_eq!(app.post_form(&format!("/admin/accounts/{}/revoke-staff", other_root.id), &[]).await.status(), 403);
    assert_eq!(app.post_form(&format!("/admin/accounts/{}/deactivate", other_root.id), &[]).await.status(), 303);
    assert!(!person(&app, other_root.id).is_active);

    let resp = app.post_form("/admin/accounts", &[("email", "colleague@example.org"), ("staff", "on")]).await;
    assert_eq!(resp.status(), 303);
    assert!(Person::find_by_email(&mut app.conn(), "colleague@example.org").unwrap().unwrap().is_staff);
    let superuser_flag: bool =
        persons::table.find(root.id).select(persons::is_superuser).first(&mut *app.conn()).unwrap();
    assert!(superuser_flag);
}

#[actix_web::test]
async fn account_changes_need_the_csrf_token() {
    let app = TestApp::spawn().await;
    let user = app.create_person("user@example.org", false);
    app.login_new("staff@example.org", true).await;
    let resp = app.post_form_raw(&format!("/admin/accounts/{}/deactivate", user.id), &[]).await;
    assert_eq!(resp.status(), 403);
    let wrong = app.post_form_raw(&format!("/admin/accounts/{}/deactivate", user.id), &[("csrf_token", "0000")]).await;
    assert_eq!(wrong.status(), 403);
    assert!(person(&app, user.id).is_active);
    assert_eq!(app.post_form_raw("/admin/accounts", &[("email", "new@example.org")]).await.status(), 403);
    assert!(Person::find_by_email(&mut app.conn(), "new@example.org").unwrap().is_none());
}
