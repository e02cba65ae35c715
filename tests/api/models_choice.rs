//! Model choice with costs: staff keep language-model configurations on `/admin/models`
//! (their keys looked up by variable name), people pick one on the StartingForm and the
//! regenerate form, runs use it and record tokens and estimated cost; the context window is
//! checked at submission. Fake OpenAI-compatible endpoints are wiremock servers.

use diesel::prelude::*;
use scraper::Html;
use serde_json::json;
use toxtemp::config::SecretLookup;
use toxtemp::db::models::{Assay, AssayStatus, DraftingRun, LlmConfiguration, models_used};
use toxtemp::db::schema::{assays, jobs};
use wiremock::matchers::{body_partial_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::docs;
use crate::helpers::{TestApp, attr, location, select_attr, select_texts};

const KEY: &str = "sk-test-model-choice-123";

/// An app whose key lookup knows `TOXTEMP_LLM_KEY_TEST` (the right key) and `TOXTEMP_LLM_KEY_WRONG`.
async fn app() -> TestApp {
    TestApp::builder()
        .config(|c| {
            c.secrets = SecretLookup::fixed([("TOXTEMP_LLM_KEY_TEST", KEY), ("TOXTEMP_LLM_KEY_WRONG", "sk-wrong")])
        })
        .spawn()
        .await
}

fn chat_reply(text: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "choices": [{ "message": { "role": "assistant", "content": text } }],
        "usage": { "prompt_tokens": 120, "completion_tokens": 8 }
    }))
}

/// A fake endpoint that answers `model` requests carrying the right key, and 401 to the rest.
async fn endpoint(model: &str) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .and(header("authorization", format!("Bearer {KEY}").as_str()))
        .and(body_partial_json(json!({ "model": model })))
        .respond_with(chat_reply("OK"))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(401)
                .set_body_json(json!({ "error": { "message": "Incorrect API key provided: sk-wr***ng" } })),
        )
        .with_priority(10)
        .mount(&server)
        .await;
    server
}

/// Create a configuration as staff (the session must be a staff one) and return its id.
async fn create_configuration(app: &TestApp, name: &str, base_url: &str, key_var: &str, window: &str) -> i32 {
    let resp = app
        .post_form(
            "/admin/models",
            &[
                ("name", name),
                ("base_url", base_url),
                ("model", "big-model"),
                ("api_key_env", key_var),
                ("context_window", window),
                ("price_prompt_per_mtok", "2"),
                ("price_completion_per_mtok", "8"),
            ],
        )
        .await;
    assert_eq!(resp.status(), 303, "created");
    assert_eq!(location(&resp), "/admin/models");
    let all = LlmConfiguration::all(&mut app.conn()).unwrap();
    all.iter().find(|c| c.name == name).expect("stored").id
}

/// `fields` with some values replaced.
fn with<'a>(fields: &[(&'a str, &'a str)], changes: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    fields.iter().map(|(k, v)| (*k, changes.iter().find(|(c, _)| c == k).map_or(*v, |(_, new)| *new))).collect()
}

fn text(html: &Html, selector: &str) -> String {
    select_texts(html, selector).join(" ")
}

async fn body(resp: reqwest::Response) -> String {
    resp.text().await.unwrap()
}

/// Log in as a fresh user and submit the StartingForm for a new assay with `choice`.
async fn start_with(app: &TestApp, choice: Option<&str>, files: &[(&str, Vec<u8>)], share: bool) -> reqwest::Response {
    let mut fields = vec![
        ("assay_id", "new"),
        ("investigation_id", "new"),
        ("new_investigation_title", "Neurotoxicity"),
        ("study_id", "new"),
        ("new_study_title", "LUHMES"),
        ("new_assay_title", "NeuriTox"),
        ("new_assay_description", "Neurite outgrowth in LUHMES cells"),
    ];
    if let Some(choice) = choice {
        fields.push(("llm_configuration", choice));
    }
    if share {
        fields.push(("share_files_for_development", "on"));
    }
    app.post_start(&fields, files).await
}

fn sop() -> Vec<(&'static str, Vec<u8>)> {
    vec![("sop.txt", b"LUHMES cells are seeded at 100000 cells per well and imaged on day 6.".to_vec())]
}

fn assay_ids(app: &TestApp) -> Vec<i32> {
    assays::table.order(assays::id).select(assays::id).load(&mut *app.conn()).unwrap()
}

fn job_count(app: &TestApp) -> i64 {
    jobs::table.count().get_result(&mut *app.conn()).unwrap()
}

#[actix_web::test]
async fn non_staff_get_403_on_the_models_pages() {
    let app = app().await;
    app.login_new("user@example.org", false).await;
    assert_eq!(app.get("/admin/models").await.status(), 403);
    assert_eq!(app.get("/admin/models/new").await.status(), 403);
    let resp = app.post_form("/admin/models", &[("name", "x"), ("base_url", "http://x/v1")]).await;
    assert_eq!(resp.status(), 403);
    assert!(LlmConfiguration::all(&mut app.conn()).unwrap().is_empty());
}

#[actix_web::test]
async fn staff_keep_configurations_and_test_their_connection_plainly() {
    let server = endpoint("big-model").await;
    let app = app().await;
    app.login_superuser("staff@example.org").await;
    let base = format!("{}/v1", server.uri());
    let id = create_configuration(&app, "Big", &base, "TOXTEMP_LLM_KEY_TEST", "128000").await;

    // The default entry comes first and cannot be edited; the new one is listed with its key
    // variable (set) and is offered.
    let page = app.get_html("/admin/models").await;
    let choices: Vec<String> = {
        let sel = scraper::Selector::parse("tr.model-entry").unwrap();
        page.select(&sel).map(|e| e.value().attr("data-choice").unwrap_or_default().to_owned()).collect()
    };
    assert_eq!(choices, vec!["default".to_owned(), id.to_string()]);
    assert!(attr(&page, "tr[data-choice=default] a[href$='/edit']", "href").is_none(), "the default is not editable");
    assert_eq!(text(&page, &format!("tr[data-choice='{id}'] .key-state")), "set");
    assert!(select_texts(&page, "#admin-nav a").contains(&"Language models".to_owned()));

    // Test connection: ok, with the latency and the model's reply.
    let resp = app.post_form(&format!("/admin/models/{id}/test"), &[]).await;
    assert_eq!(resp.status(), 200);
    let html = Html::parse_document(&body(resp).await);
    assert_eq!(select_attr(&html, "#test-result", "data-ok"), "true", "{}", text(&html, "#test-result"));
    assert_eq!(text(&html, "#test-reply"), "OK");
    assert!(text(&html, "#test-latency").parse::<u64>().is_ok());
    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 1, "one tiny request");
    assert_eq!(requests[0].headers.get("authorization").unwrap(), &format!("Bearer {KEY}"));

    // A wrong key: the 401 is said plainly, without the server's text or any key.
    let edit = [
        ("name", "Big"),
        ("base_url", base.as_str()),
        ("model", "big-model"),
        ("api_key_env", "TOXTEMP_LLM_KEY_WRONG"),
        ("context_window", "128000"),
    ];
    assert_eq!(app.post_form(&format!("/admin/models/{id}"), &edit).await.status(), 303);
    let resp = app.post_form(&format!("/admin/models/{id}/test"), &[]).await;
    let raw = body(resp).await;
    let html = Html::parse_document(&raw);
    assert_eq!(select_attr(&html, "#test-result", "data-ok"), "false");
    let problem = text(&html, "#test-problem");
    assert!(problem.contains("HTTP 401") && problem.contains("TOXTEMP_LLM_KEY_WRONG"), "{problem}");
    for secret in ["sk-wrong", KEY, "Incorrect API key", "sk-wr"] {
        assert!(!raw.contains(secret), "{secret} shown");
    }

    // A variable that is not set.
    let unset = with(&edit, &[("api_key_env", "TOXTEMP_LLM_KEY_NOT_SET")]);
    assert_eq!(app.post_form(&format!("/admin/models/{id}"), &unset).await.status(), 303);
    assert_eq!(LlmConfiguration::find(&mut app.conn(), id).unwrap().api_key_env, "TOXTEMP_LLM_KEY_NOT_SET");
    let html = Html::parse_document(&body(app.post_form(&format!("/admin/models/{id}/test"), &[]).await).await);
    assert!(text(&html, "#test-problem").contains("TOXTEMP_LLM_KEY_NOT_SET is not set on the server"));
    let page = app.get_html("/admin/models").await;
    assert_eq!(text(&page, &format!("tr[data-choice='{id}'] .key-state")), "not set");

    // An unreachable server.
    let nowhere = create_configuration(&app, "Nowhere", "http://127.0.0.1:9/v1", "TOXTEMP_LLM_KEY_TEST", "8000").await;
    let html = Html::parse_document(&body(app.post_form(&format!("/admin/models/{nowhere}/test"), &[]).await).await);
    assert!(text(&html, "#test-problem").contains("could not be reached"), "{}", text(&html, "#test-problem"));

    // A key typed where its variable's name belongs is refused, and nothing is stored.
    let fields = with(&edit, &[("api_key_env", "sk-proj-abcdef123"), ("name", "Leaky")]);
    let resp = app.post_form("/admin/models", &fields).await;
    assert_eq!(resp.status(), 422);
    assert!(text(&Html::parse_document(&body(resp).await), "#form-error").contains("NAME"));
    assert!(!LlmConfiguration::all(&mut app.conn()).unwrap().iter().any(|c| c.name == "Leaky"));

    // So is any variable of the server's own: its key would go to whatever base URL is typed.
    for own in ["SESSION_KEY", "AWS_SECRET_ACCESS_KEY", "DATABASE_URL", "LLM_API_KEY", "TOXTEMP_LLM_KEY_"] {
        let fields = with(&edit, &[("api_key_env", own), ("name", "Thief")]);
        let resp = app.post_form("/admin/models", &fields).await;
        assert_eq!(resp.status(), 422, "{own}");
        assert!(text(&Html::parse_document(&body(resp).await), "#form-error").contains("TOXTEMP_LLM_KEY_"));
    }
    assert!(!LlmConfiguration::all(&mut app.conn()).unwrap().iter().any(|c| c.name == "Thief"));
}

#[actix_web::test]
async fn a_chosen_configuration_drafts_with_its_model_and_key_and_its_cost_is_shown() {
    let server = endpoint("big-model").await;
    let mut app = app().await;
    app.login_superuser("staff@example.org").await;
    let id = create_configuration(&app, "Big", &format!("{}/v1", server.uri()), "TOXTEMP_LLM_KEY_TEST", "128000").await;
    app.new_browser();
    app.login_new("user@example.org", false).await;

    // The StartingForm offers the default first (selected) and the configuration.
    let form = app.get_html("/add/").await;
    let options = select_texts(&form, "select[name=llm_configuration] option");
    assert_eq!(options.len(), 2, "{options:?}");
    assert!(options[0].starts_with("Default"), "{options:?}");
    assert_eq!(select_attr(&form, "select[name=llm_configuration] option[selected]", "value"), "default");

    let resp = start_with(&app, Some(&id.to_string()), &sop(), true).await;
    assert_eq!(resp.status(), 303);
    let payload: String = jobs::table.select(jobs::payload).first(&mut *app.conn()).unwrap();
    assert!(payload.contains(&format!("\"configuration_id\":{id}")), "{payload}");
    app.run_pending_jobs().await;

    let assay_id = assay_ids(&app)[0];
    let assay = Assay::find(&mut app.conn(), assay_id).unwrap();
    assert_eq!(assay.status(), AssayStatus::Done, "{:?}", assay.alerts());
    let requests = server.received_requests().await.unwrap();
    assert!(requests.len() >= 77, "every question asked the chosen endpoint: {}", requests.len());
    for r in &requests {
        assert_eq!(r.headers.get("authorization").unwrap(), &format!("Bearer {KEY}"));
        let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(body["model"], "big-model");
    }

    // One run, recorded with its configuration, tokens and cost.
    let runs = DraftingRun::of_assay(&mut app.conn(), assay_id).unwrap();
    assert_eq!(runs.len(), 1);
    let run = &runs[0];
    let n = requests.len() as i64;
    assert_eq!((run.configuration_id, run.model.as_str(), run.status.as_str()), (Some(id), "big-model", "done"));
    assert_eq!((run.prompt_tokens, run.completion_tokens), (120 * n, 8 * n));
    let cost = (120 * n) as f64 * 2.0 / 1e6 + (8 * n) as f64 * 8.0 / 1e6;
    assert_eq!(models_used(&mut app.conn(), assay_id).unwrap(), vec!["big-model".to_owned()]);

    let page = app.get_html(&format!("/assays/{assay_id}")).await;
    assert_eq!(text(&page, "#runs .run-configuration"), "Big");
    assert_eq!(text(&page, "#runs .run-model"), "big-model");
    assert_eq!(text(&page, "#runs .run-prompt-tokens"), (120 * n).to_string());
    assert_eq!(text(&page, "#runs .run-completion-tokens"), (8 * n).to_string());
    assert_eq!(text(&page, "#runs .run-cost"), format!("{cost:.4}"));
    assert_eq!(text(&page, "#total-cost"), format!("{cost:.4}"));

    // Staff see the same runs on the admin assay page.
    app.new_browser();
    app.login("staff@example.org", crate::helpers::PASSWORD).await;
    let admin = app.get_html(&format!("/admin/assays/{assay_id}")).await;
    assert_eq!(text(&admin, "#runs .run-cost"), format!("{cost:.4}"));
}

#[actix_web::test]
async fn the_default_entry_still_drafts_and_has_no_price() {
    let app = app().await;
    app.login_new("user@example.org", false).await;
    let resp = start_with(&app, None, &sop(), false).await;
    assert_eq!(resp.status(), 303);
    app.run_pending_jobs().await;
    let assay_id = assay_ids(&app)[0];
    assert_eq!(Assay::find(&mut app.conn(), assay_id).unwrap().status(), AssayStatus::Done);
    let runs = DraftingRun::of_assay(&mut app.conn(), assay_id).unwrap();
    assert_eq!((runs[0].configuration_id, runs[0].model.as_str()), (None, "offline (extractive)"));
    let page = app.get_html(&format!("/assays/{assay_id}")).await;
    assert_eq!(text(&page, "#runs .run-configuration"), "Default");
    assert_eq!(text(&page, "#runs .run-cost"), "—");
    assert_eq!(text(&page, "#total-cost"), "—");
}

#[actix_web::test]
async fn unknown_and_disabled_configurations_are_refused_and_nothing_is_created() {
    let server = endpoint("big-model").await;
    let mut app = app().await;
    app.login_superuser("staff@example.org").await;
    let id = create_configuration(&app, "Big", &format!("{}/v1", server.uri()), "TOXTEMP_LLM_KEY_TEST", "128000").await;
    let resp = app.post_form(&format!("/admin/models/{id}/enabled"), &[("enabled", "off")]).await;
    assert_eq!(resp.status(), 303);
    assert!(!LlmConfiguration::find(&mut app.conn(), id).unwrap().enabled);
    app.new_browser();
    app.login_new("user@example.org", false).await;

    let form = app.get_html("/add/").await;
    assert_eq!(select_texts(&form, "select[name=llm_configuration] option").len(), 1, "a disabled one is not offered");
    for choice in [id.to_string(), "999999".to_owned()] {
        let resp = start_with(&app, Some(&choice), &sop(), true).await;
        assert_eq!(resp.status(), 400, "{choice}");
        let page = Html::parse_document(&body(resp).await);
        assert!(text(&page, "#form-errors").contains("language model is not available"));
        assert!(assay_ids(&app).is_empty(), "no assay created");
        assert_eq!(job_count(&app), 0, "nothing scheduled");
    }
    assert!(server.received_requests().await.unwrap().is_empty());
}

#[actix_web::test]
async fn a_too_small_context_window_is_flagged_at_submission() {
    let server = endpoint("big-model").await;
    let mut app = app().await;
    app.login_superuser("staff@example.org").await;
    // 1000 tokens: 500 for documents, i.e. about 2000 characters.
    let id = create_configuration(&app, "Tiny", &format!("{}/v1", server.uri()), "TOXTEMP_LLM_KEY_TEST", "1000").await;
    app.new_browser();
    app.login_new("user@example.org", false).await;
    let long: String =
        (0..120).map(|i| format!("Paragraph {i}: LUHMES cells are differentiated for six days.\n\n")).collect();
    let resp = start_with(&app, Some(&id.to_string()), &[("long.txt", long.into_bytes())], false).await;
    assert_eq!(resp.status(), 303, "the run still goes ahead");
    let overview = app.get_html(&location(&resp)).await;
    let warning = text(&overview, ".flash.alert-warning");
    assert!(warning.contains("context window of Tiny") && warning.contains("1000 tokens"), "{warning}");
    let assay_id = assay_ids(&app)[0];
    let page = app.get_html(&format!("/assays/{assay_id}")).await;
    assert!(text(&page, ".alert-warning").contains("context window of Tiny"), "the assay shows it");
    assert_eq!(job_count(&app), 1, "scheduled");

    // A small document fits: no flag.
    let resp = start_with(&app, Some(&id.to_string()), &sop(), false).await;
    let overview = app.get_html(&location(&resp)).await;
    assert!(text(&overview, ".flash.alert-warning").is_empty());
}

#[actix_web::test]
async fn kept_documents_are_checked_against_the_window_before_the_first_question() {
    let server = endpoint("big-model").await;
    let mut app = app().await;
    app.login_superuser("staff@example.org").await;
    let id = create_configuration(&app, "Tiny", &format!("{}/v1", server.uri()), "TOXTEMP_LLM_KEY_TEST", "1000").await;
    app.new_browser();
    app.login_new("user@example.org", false).await;
    let long: String =
        (0..120).map(|i| format!("Paragraph {i}: LUHMES cells are differentiated for six days.\n\n")).collect();
    let resp = start_with(&app, Some(&id.to_string()), &[("long.txt", long.into_bytes())], true).await;
    assert_eq!(resp.status(), 303);
    app.run_pending_jobs().await;
    let assay = Assay::find(&mut app.conn(), assay_ids(&app)[0]).unwrap();
    assert!(assay.alerts().iter().any(|a| a.contains("context window of Tiny")), "{:?}", assay.alerts());
}

#[actix_web::test]
async fn a_run_whose_key_variable_is_not_set_fails_with_a_clear_message() {
    let server = endpoint("big-model").await;
    let mut app = app().await;
    app.login_superuser("staff@example.org").await;
    let id =
        create_configuration(&app, "Keyless", &format!("{}/v1", server.uri()), "TOXTEMP_LLM_KEY_UNSET", "128000").await;
    app.new_browser();
    app.login_new("user@example.org", false).await;
    assert_eq!(start_with(&app, Some(&id.to_string()), &sop(), false).await.status(), 303);
    app.run_pending_jobs().await;
    let assay = Assay::find(&mut app.conn(), assay_ids(&app)[0]).unwrap();
    assert_eq!(assay.status(), AssayStatus::Error);
    assert!(
        assay.alerts().iter().any(|a| a.contains("TOXTEMP_LLM_KEY_UNSET") && a.contains("not set")),
        "{:?}",
        assay.alerts()
    );
    let runs = DraftingRun::of_assay(&mut app.conn(), assay.id).unwrap();
    assert_eq!(runs[0].status, "error");
    assert!(server.received_requests().await.unwrap().is_empty());
    let page = app.get_html(&format!("/assays/{}", assay.id)).await;
    assert!(text(&page, "#runs .run-message").contains("TOXTEMP_LLM_KEY_UNSET"));
}

#[actix_web::test]
async fn the_regenerate_form_drafts_with_the_chosen_configuration() {
    let server = endpoint("big-model").await;
    let mut app = app().await;
    app.login_superuser("staff@example.org").await;
    let id = create_configuration(&app, "Big", &format!("{}/v1", server.uri()), "TOXTEMP_LLM_KEY_TEST", "128000").await;
    app.new_browser();
    app.login_new("user@example.org", false).await;
    assert_eq!(start_with(&app, None, &sop(), false).await.status(), 303);
    app.run_pending_jobs().await;
    let assay_id = assay_ids(&app)[0];
    assert!(server.received_requests().await.unwrap().is_empty(), "the first run was offline");

    let page = app.get_html(&format!("/assays/{assay_id}/answers")).await;
    let offered = select_texts(&page, "#regenerate-form select[name=llm_configuration] option");
    assert_eq!(offered.len(), 2, "{offered:?}");
    let question: i32 = select_attr(&page, "input[name=question_ids]", "value").parse().unwrap();
    let token = app.csrf_token().await;
    let form = reqwest::multipart::Form::new()
        .text("question_ids", question.to_string())
        .text("llm_configuration", id.to_string())
        .part("files", reqwest::multipart::Part::bytes(docs::pdf(&["Day 6 imaging."])).file_name("update.pdf"));
    let resp = app
        .client
        .post(app.url(&format!("/assays/{assay_id}/regenerate?csrf_token={token}")))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    app.run_pending_jobs().await;
    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 1, "the one ticked question asked the chosen model");
    let runs = DraftingRun::of_assay(&mut app.conn(), assay_id).unwrap();
    assert_eq!(runs.len(), 2);
    assert_eq!((runs[0].configuration_id, runs[0].model.as_str()), (Some(id), "big-model"));
    assert_eq!(
        models_used(&mut app.conn(), assay_id).unwrap(),
        vec!["offline (extractive)".to_owned(), "big-model".to_owned()]
    );
    // The exports name both.
    let doc: serde_json::Value = app.get(&format!("/assays/{assay_id}/export.json")).await.json().await.unwrap();
    assert_eq!(doc["metadata"]["models"], json!(["offline (extractive)", "big-model"]));
    // The next regenerate form starts with the model of the last run.
    let page = app.get_html(&format!("/assays/{assay_id}/answers")).await;
    assert_eq!(select_attr(&page, "#regenerate-form select option[selected]", "value"), id.to_string());
}

#[actix_web::test]
async fn staff_who_are_not_superusers_see_and_test_configurations_but_change_none() {
    let mut app = app().await;
    let server = endpoint("big-model").await;
    app.login_superuser("root@example.org").await;
    let id = create_configuration(&app, "Big", &format!("{}/v1", server.uri()), "TOXTEMP_LLM_KEY_TEST", "128000").await;
    app.new_browser();
    app.login_new("staff@example.org", true).await;
    let list = app.get_html("/admin/models").await;
    assert!(select_texts(&list, "#new-model").is_empty());
    assert_eq!(select_texts(&list, "#superuser-note").len(), 1);
    assert_eq!(app.get("/admin/models/new").await.status(), 403);
    assert_eq!(app.get(&format!("/admin/models/{id}/edit")).await.status(), 403);
    let fields = [("name", "Mine"), ("base_url", "http://10.0.0.1/v1"), ("model", "m"), ("context_window", "8000")];
    assert_eq!(app.post_form("/admin/models", &fields).await.status(), 403);
    assert_eq!(app.post_form(&format!("/admin/models/{id}"), &fields).await.status(), 403);
    assert_eq!(app.post_form(&format!("/admin/models/{id}/enabled"), &[("enabled", "off")]).await.status(), 403);
    assert!(LlmConfiguration::find(&mut app.conn(), id).unwrap().enabled, "unchanged");
    assert_eq!(LlmConfiguration::all(&mut app.conn()).unwrap().len(), 1);
    // Testing a configuration a superuser made is fine.
    assert_eq!(app.post_form(&format!("/admin/models/{id}/test"), &[]).await.status(), 200);
}
