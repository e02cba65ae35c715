//! What a hostile or careless client tries: consent read loosely, staff changing others'
//! work, missing security headers, login floods, deletions that leave documents behind.

use diesel::prelude::*;
use futures_util::StreamExt;
use toxtemp::db::models::{Answer, Assay, FileAsset, FileAssetStatus, LoginFailure};
use toxtemp::db::schema::{file_assets, file_audit_events};

use crate::answers::{drafted, files};
use crate::helpers::{PASSWORD, TestApp, has_attr, location, select_attr, select_texts};

/// (study, investigation) of an assay.
fn study_of(app: &TestApp, assay: i32) -> (i32, i32) {
    use toxtemp::db::schema::{assays, studies};
    assays::table
        .inner_join(studies::table)
        .filter(assays::id.eq(assay))
        .select((studies::id, studies::investigation_id))
        .first(&mut *app.conn())
        .unwrap()
}

fn kept(app: &TestApp) -> Vec<FileAsset> {
    file_assets::table.select(FileAsset::as_select()).load(&mut *app.conn()).unwrap()
}

#[actix_web::test]
async fn only_a_real_yes_counts_as_consent() {
    let app = TestApp::spawn().await;
    app.login_new("a@example.org", false).await;
    let (_, _, assay) = app.create_tree("Strict").await;
    let id = assay.to_string();
    for (value, keeps) in [("off", false), ("false", false), ("0", false), ("no", false), ("on", true)] {
        let before = kept(&app).len();
        let fields = [("assay_id", id.as_str()), ("overwrite", "on"), ("share_files_for_development", value)];
        let resp = app.post_start(&fields, &[("notes.txt", b"Neurite outgrowth notes".to_vec())]).await;
        assert_eq!(resp.status(), 303, "{value}");
        app.run_pending_jobs().await;
        assert_eq!(kept(&app).len() > before, keeps, "share_files_for_development={value}");
    }
}

#[actix_web::test]
async fn after_a_withdrawal_the_regenerate_form_starts_unticked_and_says_why() {
    let app = TestApp::spawn().await;
    let assay = drafted(&app, "a@example.org").await;
    let answers = format!("/assays/{assay}/answers");
    let page = app.get_html(&answers).await;
    assert!(has_attr(&page, "#regen-share", "checked"), "checked by default");
    assert!(select_texts(&page, "#withdrawn-note").is_empty());
    app.post_form(&format!("/assays/{assay}/withdraw-consent"), &[]).await;
    let page = app.get_html(&answers).await;
    assert!(!has_attr(&page, "#regen-share", "checked"), "unticked after a withdrawal");
    assert!(select_texts(&page, "#withdrawn-note")[0].contains("You withdrew consent"));
}

#[actix_web::test]
async fn delete_confirmations_count_the_kept_documents_and_the_deletion_takes_them_at_once() {
    let app = TestApp::builder().s3().spawn().await;
    let assay = drafted(&app, "a@example.org").await;
    let (study, inv) = study_of(&app, assay);
    for (page, form) in [
        (format!("/assays/{assay}"), "#delete-assay"),
        (format!("/studies/{study}"), "#delete-study"),
        (format!("/investigations/{inv}"), "#delete-investigation"),
    ] {
        let html = app.get_html(&page).await;
        let question = select_attr(&html, form, "data-confirm");
        assert!(question.contains("Its 2 kept document(s) will be deleted too."), "{page}: {question}");
    }
    let before = kept(&app);
    let resp = app.post_form(&format!("/investigations/{inv}/delete"), &[]).await;
    assert_eq!(resp.status(), 303);
    let overview = app.get_html("/").await;
    assert!(select_texts(&overview, ".flash")[0].contains("Its 2 kept document(s) were deleted too."));
    for asset in before {
        assert_eq!(FileAsset::find(&mut app.conn(), &asset.id).unwrap().status, FileAssetStatus::Deleted);
        assert!(app.ctx.store.head(&asset.object_key).await.is_err(), "object gone at once, no cron needed");
    }
    let events: Vec<String> = file_audit_events::table.select(file_audit_events::event).load(&mut *app.conn()).unwrap();
    assert_eq!(events, ["assay_deleted", "assay_deleted"]);
}

/// Every state-changing route of someone else's work, as (method, path, form fields).
fn changes(inv: i32, study: i32, assay: i32, question: i32) -> Vec<(String, Vec<(&'static str, String)>)> {
    let title = || vec![("title", "Defaced".to_owned()), ("description", String::new())];
    vec![
        (format!("/investigations/{inv}/edit"), title()),
        (format!("/investigations/{inv}/delete"), vec![]),
        (format!("/investigations/{inv}/studies/new"), title()),
        (format!("/studies/{study}/edit"), title()),
        (format!("/studies/{study}/delete"), vec![]),
        (format!("/studies/{study}/assays/new"), title()),
        (format!("/assays/{assay}/edit"), vec![("title", "Defaced".into()), ("question_set_id", "1".into())]),
        (format!("/assays/{assay}/delete"), vec![]),
        (format!("/assays/{assay}/withdraw-consent"), vec![]),
        (format!("/assays/{assay}/answers/{question}"), vec![("text", "Defaced".into()), ("accepted", "on".into())]),
        (format!("/assays/{assay}/answers/{question}/accept"), vec![("accepted", "on".into())]),
    ]
}

#[actix_web::test]
async fn staff_see_everyones_work_but_change_none_of_it() {
    let mut app = TestApp::spawn().await;
    let assay = drafted(&app, "owner@example.org").await;
    let (study, inv) = study_of(&app, assay);
    let question = toxtemp::db::models::QuestionSet::questions(&mut app.conn(), 1).unwrap()[0].id;
    let files_before = kept(&app);
    let answers_before = Answer::of_assay(&mut app.conn(), assay).unwrap();
    for staff in [("staff@example.org", true, false), ("root@example.org", true, true)] {
        app.new_browser();
        let person = app.create_person(staff.0, staff.1);
        if staff.2 {
            diesel::update(toxtemp::db::schema::persons::table.find(person.id))
                .set(toxtemp::db::schema::persons::is_superuser.eq(true))
                .execute(&mut *app.conn())
                .unwrap();
        }
        assert_eq!(app.login(staff.0, PASSWORD).await.status(), 303);
        // Seeing is allowed.
        for page in [format!("/assays/{assay}"), format!("/assays/{assay}/answers"), format!("/admin/assays/{assay}")] {
            assert_eq!(app.get(&page).await.status(), 200, "{} sees {page}", staff.0);
        }
        // Changing is not: the forms and every state-changing request.
        for form in [
            format!("/assays/{assay}/edit"),
            format!("/studies/{study}/edit"),
            format!("/assays/{assay}/answers/{question}/edit"),
        ] {
            assert_eq!(app.get(&form).await.status(), 403, "{form}");
        }
        for (path, fields) in changes(inv, study, assay, question) {
            let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let resp = app.post_form(&path, &fields).await;
            assert_eq!(resp.status(), 403, "{} POST {path}", staff.0);
        }
        let upload = [("assay_id", assay.to_string()), ("overwrite", "on".into())];
        let upload: Vec<(&str, &str)> = upload.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let resp = app.post_start(&upload, &[("notes.txt", b"Staff notes".to_vec())]).await;
        assert_eq!(resp.status(), 403, "upload into someone else's assay");
        let resp = app
            .post_multipart(
                &format!("/assays/{assay}/regenerate"),
                &[("question_ids", &question.to_string())],
                &files(),
            )
            .await;
        assert_eq!(resp.status(), 403, "regenerate someone else's answers");
    }
    // Nothing changed.
    let a_after = Assay::find(&mut app.conn(), assay).unwrap();
    assert_eq!(a_after.title, "NeuriTox");
    assert_eq!(Answer::of_assay(&mut app.conn(), assay).unwrap(), answers_before);
    assert_eq!(kept(&app), files_before);
    assert!(!toxtemp::jobs::is_pending(&mut app.conn(), &toxtemp::drafting::assay_subject(assay)).unwrap());
}

#[actix_web::test]
async fn staff_withdraw_consent_for_an_owner_only_with_a_reason_and_it_is_audited() {
    let mut app = TestApp::builder().s3().spawn().await;
    let assay = drafted(&app, "owner@example.org").await;
    let withdraw = format!("/admin/assays/{assay}/withdraw-consent");
    assert_eq!(app.post_form(&withdraw, &[("reason", "I am the owner")]).await.status(), 403, "owners use their page");
    app.new_browser();
    app.login_new("staff@example.org", true).await;
    let page = app.get_html(&format!("/admin/assays/{assay}")).await;
    assert_eq!(select_attr(&page, "#withdraw-for-owner", "action"), withdraw);
    for reason in ["", "   ", &"x".repeat(501)] {
        let resp = app.post_form(&withdraw, &[("reason", reason)]).await;
        assert_eq!(resp.status(), 422, "reason {:?}", reason.len());
    }
    assert!(kept(&app).iter().all(|f| f.status == FileAssetStatus::Available), "nothing happened without a reason");
    let resp = app.post_form(&withdraw, &[("reason", "owner asked by e-mail on 2026-11-29")]).await;
    assert_eq!((resp.status().as_u16(), location(&resp)), (303, format!("/admin/assays/{assay}")));
    assert!(kept(&app).iter().all(|f| f.status == FileAssetStatus::Deleted));
    let actors: Vec<(String, String)> = file_audit_events::table
        .select((file_audit_events::event, file_audit_events::actor))
        .load(&mut *app.conn())
        .unwrap();
    assert_eq!(actors.len(), 2);
    for (event, actor) in actors {
        assert_eq!(event, "consent_withdrawn");
        assert!(actor.contains("staff staff@example.org on behalf of owner@example.org"), "{actor}");
        assert!(actor.contains("owner asked by e-mail on 2026-11-29"), "{actor}");
    }
    assert!(Assay::find(&mut app.conn(), assay).unwrap().consent_withdrawn_at.is_some());
}

fn header(resp: &reqwest::Response, name: &str) -> String {
    resp.headers().get(name).map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default()
}

fn has_security_headers(resp: &reqwest::Response) -> bool {
    header(resp, "content-security-policy").contains("default-src")
        && header(resp, "x-frame-options") == "DENY"
        && header(resp, "x-content-type-options") == "nosniff"
}

#[actix_web::test]
async fn secure_cookies_bring_hsts_and_logged_in_pages_are_not_cached() {
    let app = TestApp::builder().config(|c| c.secure_cookies = true).spawn().await;
    let resp = app.get("/login").await;
    assert!(header(&resp, "set-cookie").contains("Secure"), "{}", header(&resp, "set-cookie"));
    assert!(header(&resp, "strict-transport-security").starts_with("max-age="));

    let plain = TestApp::spawn().await;
    assert!(!header(&plain.get("/login").await, "set-cookie").contains("Secure"));
    assert_eq!(header(&plain.get("/login").await, "strict-transport-security"), "");
    plain.login_new("a@example.org", false).await;
    let page = plain.get("/").await;
    assert_eq!(header(&page, "cache-control"), "no-store", "logged-in pages stay out of shared caches");
    assert!(header(&plain.get("/static/app.css").await, "cache-control").contains("max-age"));
}

#[actix_web::test]
async fn responses_made_by_middleware_carry_the_security_headers_too() {
    let app = TestApp::builder().config(|c| c.upload_limits.max_total_bytes = 1024).spawn().await;
    app.login_new("a@example.org", false).await;
    let forbidden = app.post_form_raw("/investigations/new", &[("title", "no token")]).await;
    assert_eq!(forbidden.status(), 403);
    assert!(has_security_headers(&forbidden), "the CSRF refusal");
    let huge = "x".repeat(300 * 1024);
    let too_large = app.post_form("/investigations/new", &[("title", huge.as_str())]).await;
    assert_eq!(too_large.status(), 413);
    assert!(has_security_headers(&too_large), "the 413 of a form");
    let upload = app.post_start(&[("assay_id", "new")], &[("big.txt", vec![b'a'; 4096])]).await;
    assert_eq!(upload.status(), 413);
    assert!(has_security_headers(&upload), "the 413 of an upload");
}

#[actix_web::test]
async fn over_long_emails_are_refused_before_any_work() {
    let app = TestApp::spawn().await;
    let long = format!("{}@example.org", "a".repeat(250));
    let resp = app.login(&long, "whatever").await;
    assert_eq!(resp.status(), 400);
    assert_eq!(LoginFailure::count(&mut app.conn()).unwrap(), 0, "nothing recorded for it");
}

#[actix_web::test]
async fn a_flood_of_failed_logins_stays_bounded_and_others_still_log_in() {
    let app = TestApp::builder().config(|c| c.trusted_proxies = vec!["127.0.0.1".parse().unwrap()]).spawn().await;
    app.create_person("real@example.org", false);
    let token = app.csrf_token().await;
    const ATTACKERS: usize = 3;
    const PER_ATTACKER: usize = 700;
    let statuses: Vec<u16> = futures_util::stream::iter(0..ATTACKERS * PER_ATTACKER)
        .map(|i| {
            let (client, url, token) = (app.client.clone(), app.url("/login"), token.clone());
            async move {
                // A distinct 240-byte address each time, from one of three machines.
                let email = format!("{i:0>226}@example.org");
                let ip = format!("203.0.113.{}", i % ATTACKERS);
                let form = [("email", email.as_str()), ("password", "guess"), ("csrf_token", token.as_str())];
                let resp = client.post(url).header("x-forwarded-for", ip).form(&form).send().await.unwrap();
                resp.status().as_u16()
            }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    let limit = toxtemp::auth::throttle::IP_LIMIT as usize;
    assert_eq!(statuses.iter().filter(|s| **s == 401).count(), ATTACKERS * limit, "each address gets {limit} tries");
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), ATTACKERS * (PER_ATTACKER - limit));
    let rows = LoginFailure::count(&mut app.conn()).unwrap() as usize;
    assert_eq!(rows, ATTACKERS * limit + ATTACKERS, "one row per tried address and per machine, no more");
    assert!(app.ctx.pool.state().connections <= app.ctx.pool.max_size());

    // Someone else, elsewhere, logs in as usual.
    let token = app.csrf_token().await;
    let form = [("email", "real@example.org"), ("password", PASSWORD), ("csrf_token", token.as_str())];
    let resp = app.client.post(app.url("/login")).header("x-forwarded-for", "198.51.100.20").form(&form).send();
    assert_eq!(resp.await.unwrap().status(), 303);
    assert_eq!(app.get("/").await.status(), 200);
}

#[test]
fn the_failed_login_table_never_grows_past_its_bound() {
    let mut db = crate::helpers::EmptyDb::new();
    let conn = &mut db.conn;
    let since = toxtemp::db::now() - chrono::Duration::minutes(15);
    for i in 0..150 {
        LoginFailure::record_bounded(conn, &format!("email:{i}@example.org"), since, 100).unwrap();
    }
    assert_eq!(LoginFailure::count(conn).unwrap(), 100);
    let newest = LoginFailure::current(conn, &["email:149@example.org".to_owned()], since).unwrap();
    assert_eq!(newest.len(), 1, "the oldest rows go first");
}

/// Eight consented submissions of three files each, drafted while `cleanup-orphaned-files
/// --days 0` runs in a loop: every kept file must end linked to its answers, its object there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_waiting_for_their_run_are_never_orphans() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use toxtemp::drafting::{self, DraftRequest, IncomingFile, Scope, Target, Upload};
    use toxtemp::fileops::FileAssetManager;
    let env = crate::helpers::TestEnv::new();
    let fixtures: Vec<_> = (0..8).map(|_| env.other_fixture()).collect();
    let stop = Arc::new(AtomicBool::new(false));
    let manager = FileAssetManager { pool: env.pool().clone(), store: env.ctx.store.clone() };
    let cleaner = {
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut deleted = 0;
            while !stop.load(Ordering::SeqCst) {
                deleted += manager.cleanup_orphaned(0, "cleanup loop").await.unwrap().deleted.len();
                tokio::task::yield_now().await;
            }
            deleted
        })
    };
    let submissions = fixtures.iter().enumerate().map(|(i, f)| {
        let files: Vec<_> = ["sop", "paper", "data"]
            .iter()
            .map(|name| {
                env.file(&format!("{name}-{i}.txt"), format!("{name} of run {i}: neurite outgrowth").as_bytes())
            })
            .collect();
        let ctx = &env.ctx;
        async move {
            let mut incoming = Vec::new();
            for (name, path) in files {
                incoming.push(IncomingFile::from_path(path, name).await.unwrap());
            }
            let request = DraftRequest {
                uploader: f.person.clone(),
                target: Target::Existing(f.assay.id),
                question_set_id: None,
                scope: Scope::All { overwrite: true },
                upload: Upload::of_files(incoming),
                keep_files: true,
                extract_images: false,
                model: drafting::choice::ModelChoice::Default,
            };
            drafting::submit(ctx, request).await.unwrap()
        }
    });
    let submitted = futures_util::future::join_all(submissions).await;
    env.run_jobs().await;
    stop.store(true, Ordering::SeqCst);
    assert_eq!(cleaner.await.unwrap(), 0, "the loop found no orphans");

    let kept: Vec<FileAsset> = submitted.iter().flat_map(|s| s.stored.clone()).collect();
    assert_eq!(kept.len(), 24);
    let mut conn = env.conn();
    for file in &kept {
        assert_eq!(FileAsset::find(&mut conn, &file.id).unwrap().status, FileAssetStatus::Available);
        let links: i64 = toxtemp::db::schema::answer_files::table
            .filter(toxtemp::db::schema::answer_files::file_id.eq(&file.id))
            .count()
            .get_result(&mut conn)
            .unwrap();
        assert_eq!(links, 77, "{} linked to every answer of its run", file.original_filename);
    }
    assert_eq!(env.memory.keys().len(), 24, "every object is there");
}

#[actix_web::test]
async fn deleted_files_keep_no_name_after_the_retention_period() {
    use toxtemp::db::models::{FileAuditEvent, FileDownloadLog};
    let app = TestApp::builder().s3().spawn().await;
    let assay = drafted(&app, "owner@example.org").await;
    let files = kept(&app);
    let staff = app.create_person("staff@example.org", true);
    for f in &files {
        FileDownloadLog::record(&mut app.conn(), f, Some(staff.id), &staff.email, "192.0.2.1").unwrap();
    }
    app.post_form(&format!("/assays/{assay}/withdraw-consent"), &[]).await;
    // One deletion is 31 days old, the other 5.
    let (old, recent) = (&files[0], &files[1]);
    for (file, days) in [(old, 31), (recent, 5)] {
        diesel::update(file_assets::table.find(&file.id))
            .set(file_assets::deleted_at.eq(Some(toxtemp::db::now() - chrono::Duration::days(days))))
            .execute(&mut *app.conn())
            .unwrap();
    }
    let mut out = Vec::new();
    toxtemp::cli::cleanup::run(&app.ctx, 7, false, &mut out).await.unwrap();
    let out = String::from_utf8(out).unwrap();
    assert!(out.contains("removed the original names of 1 file(s) deleted more than 30 days ago"), "{out}");

    let mut conn = app.conn();
    let forgotten = FileAsset::find(&mut conn, &old.id).unwrap();
    assert_eq!(forgotten.original_filename, "");
    assert_eq!(
        (forgotten.sha256.as_str(), forgotten.size_bytes),
        (old.sha256.as_str(), old.size_bytes),
        "the rest stays"
    );
    assert_eq!(FileAsset::find(&mut conn, &recent.id).unwrap().original_filename, recent.original_filename);
    let events = FileAuditEvent::of_file(&mut conn, &old.id).unwrap();
    assert_eq!(events.len(), 1, "the audit trail stays");
    assert!(!events[0].detail.contains(&old.original_filename), "{}", events[0].detail);
    assert!(events[0].detail.contains(&old.sha256));
    let logs = FileDownloadLog::all(&mut conn).unwrap();
    let names: Vec<&str> = logs.iter().map(|l| l.original_filename.as_str()).collect();
    assert!(names.contains(&"") && names.contains(&recent.original_filename.as_str()), "{names:?}");
    drop(conn);

    let mut staff_app = app;
    staff_app.new_browser();
    assert_eq!(staff_app.login("staff@example.org", PASSWORD).await.status(), 303);
    let page = staff_app.get_html(&format!("/admin/assays/{assay}")).await;
    let shown = select_texts(&page, "#file-table .file-name");
    assert!(shown.contains(&"(name removed)".to_owned()), "{shown:?}");
    let log = staff_app.get_html("/admin/downloads").await;
    assert!(select_texts(&log, "#download-log td").contains(&"(name removed)".to_owned()));
}

/// A multipart part, written out by hand so that the test controls when bytes are sent.
fn part_head(boundary: &str, name: &str, filename: Option<&str>) -> Vec<u8> {
    let file = filename.map(|f| format!("; filename=\"{f}\"\r\nContent-Type: text/plain")).unwrap_or_default();
    format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"{file}\r\n\r\n").into_bytes()
}

fn bytes_under(dir: &std::path::Path) -> u64 {
    walk(dir).iter().map(|p| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)).sum()
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else { return vec![] };
    entries.flatten().flat_map(|e| if e.path().is_dir() { walk(&e.path()) } else { vec![e.path()] }).collect()
}

#[actix_web::test]
async fn an_upload_never_puts_more_than_the_total_limit_on_disk() {
    const LIMIT: u64 = 1024 * 1024;
    let app = TestApp::builder().config(|c| c.upload_limits.max_total_bytes = LIMIT).spawn().await;
    app.login_new("a@example.org", false).await;
    let token = app.csrf_token().await;
    let spool = app.ctx.config.spool_dir();
    let boundary = "hardening-boundary";
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(4);
    let body = reqwest::Body::wrap_stream(futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|chunk| (chunk, rx))
    }));
    let request = app
        .client
        .post(app.url(&format!("/add/?csrf_token={token}")))
        .header("content-type", format!("multipart/form-data; boundary={boundary}"))
        .body(body)
        .send();
    let response = tokio::spawn(request);
    let chunk = vec![b'n'; 64 * 1024];
    let send = |data: Vec<u8>| {
        let tx = tx.clone();
        async move { tx.send(Ok(data)).await.unwrap() }
    };
    send(part_head(boundary, "files", Some("first.txt"))).await;
    for _ in 0..14 {
        send(chunk.clone()).await; // 896 KiB
    }
    send(b"\r\n".to_vec()).await;
    send(part_head(boundary, "files", Some("second.txt"))).await;
    // 1.5 MiB sent in all: the server has read past the limit; see what it wrote.
    let mut most = 0;
    for _ in 0..10 {
        send(chunk.clone()).await;
        for _ in 0..5 {
            most = most.max(bytes_under(&spool));
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }
    send(b"\r\n".to_vec()).await;
    send(format!("--{boundary}--\r\n").into_bytes()).await;
    drop(tx);
    let resp = response.await.unwrap().unwrap();
    assert_eq!(resp.status(), 413);
    assert!(most > 0, "the spool was watched while the upload arrived");
    assert!(most <= LIMIT, "{most} bytes on disk for a {LIMIT}-byte limit");
    assert_eq!(bytes_under(&spool), 0, "and nothing is left behind");
}

#[actix_web::test]
async fn nameless_file_parts_and_text_fields_count_towards_the_limits() {
    let app = TestApp::builder().config(|c| c.upload_limits.max_total_bytes = 64 * 1024).spawn().await;
    app.login_new("a@example.org", false).await;
    let (_, _, assay) = app.create_tree("Limits").await;
    let token = app.csrf_token().await;
    let post = |body: Vec<u8>| {
        app.client
            .post(app.url(&format!("/add/?csrf_token={token}")))
            .header("content-type", "multipart/form-data; boundary=b")
            .body(body)
            .send()
    };
    // A part of the file field without a file name (an empty file input) is still counted.
    let mut body = part_head("b", "assay_id", None);
    body.extend(format!("{assay}\r\n").bytes());
    body.extend(part_head("b", "files", Some("")));
    body.extend(vec![b'x'; 100 * 1024]);
    body.extend(b"\r\n--b--\r\n");
    assert_eq!(post(body).await.unwrap().status(), 413);
    // Text fields have a total cap, each field below its own.
    let mut body = Vec::new();
    for i in 0..5 {
        body.extend(part_head("b", &format!("note{i}"), None));
        body.extend(vec![b'y'; 60 * 1024]);
        body.extend(b"\r\n");
    }
    body.extend(b"--b--\r\n");
    assert_eq!(post(body).await.unwrap().status(), 413);
}
