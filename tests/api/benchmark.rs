//! Benchmarks: sets from kept data and from a folder, evaluation runs with the offline
//! provider and a fake OpenAI-compatible endpoint, metrics checked by hand, consent during runs.

use std::path::PathBuf;

use std::sync::Arc;

use diesel::prelude::*;
use toxtemp::benchmark::{self, FolderImport, NewSet, RunRequest};
use toxtemp::context::AppContext;
use toxtemp::db::models::{Answer, Assay, BenchmarkItem, FileAsset, FileAssetStatus, QuestionSet, RunStatus};
use wiremock::matchers::{body_string_contains, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::TestEnv;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/benchmark")
}

/// The four-question template of the fixtures, loaded once per database.
fn mini_questions(env: &TestEnv) -> i32 {
    let mut conn = env.conn();
    if let Some(set) = QuestionSet::find_by_label(&mut conn, "mini").unwrap() {
        return set.id;
    }
    let json = std::fs::read_to_string(fixtures().join("mini-toxtemp.json")).unwrap();
    toxtemp::questions::import(&mut conn, &json, "mini", "Mini ToxTemp").unwrap();
    QuestionSet::find_by_label(&mut conn, "mini").unwrap().unwrap().id
}

async fn import(env: &TestEnv, folder: &str, out_of_scope: bool) -> i32 {
    let question_set_id = mini_questions(env);
    let new = NewSet { name: folder.into(), description: String::new(), out_of_scope, created_by: None };
    let import = FolderImport { new, dir: fixtures().join(folder), question_set_id };
    benchmark::import_folder(&env.ctx, import).await.expect("imported").id
}

async fn evaluate(env: &TestEnv, set: i32, request: RunRequest) -> benchmark::RunReport {
    let run = benchmark::start(&env.ctx, set, request, None).await.expect("started");
    env.run_jobs().await;
    benchmark::run_report(&mut env.conn(), run.id).unwrap()
}

fn offline() -> RunRequest {
    RunRequest { concurrency: 2, ..RunRequest::default() }
}

fn close(a: Option<f64>, b: f64) -> bool {
    a.is_some_and(|a| (a - b).abs() < 1e-9)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_offline_provider_on_the_fixture_set_scores_as_computed_by_hand() {
    let env = TestEnv::new();
    let set = import(&env, "neuritox", false).await;
    let report = evaluate(&env, set, offline()).await;
    assert_eq!(report.run.status(), RunStatus::Done, "{:?}", report.run.notes());
    // 1.1: the answer is the gold sentence (F1 1); 1.2: "Dr. Jane Roe, jane.roe@lab.example.org"
    // has 8 tokens, the gold "Jane Roe" 2, both shared: P 2/8, R 1 → F1 = ROUGE-L = 0.4;
    // 2.1: the gold abstains, the answer does not; 2.2: the answer abstains, the gold does not.
    let f1: Vec<Option<f64>> = report.rows.iter().map(|r| r.answer.token_f1).collect();
    assert_eq!(f1, [Some(1.0), Some(0.4), None, None]);
    let s = &report.overall;
    assert_eq!((s.questions, s.failed, s.answered), (4, 0, 3));
    assert!(close(s.completeness, 0.75));
    assert!(close(s.abstention_agreement, 0.5));
    assert!(close(s.specificity, 0.0));
    assert!(close(s.token_f1, 0.7));
    assert!(close(s.rouge_l, 0.7));
    assert!(close(s.citation_verification, 1.0));
    assert!(close(s.cited_file_agreement, 1.0));
}

/// A context whose app endpoint is `server` with an embeddings model, for cosine similarity.
fn with_embeddings(env: &TestEnv, server: &MockServer) -> AppContext {
    let mut ctx = env.ctx.clone();
    let mut config = (*ctx.config).clone();
    config.llm.base_url = Some(format!("{}/v1", server.uri()));
    config.llm.api_key = Some("app-key".to_owned().into());
    config.llm.embeddings_model = Some("embedder".into());
    ctx.config = Arc::new(config);
    ctx
}

fn reply(text: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(serde_json::json!({
        "choices": [{ "message": { "role": "assistant", "content": text } }],
        "usage": { "prompt_tokens": 100, "completion_tokens": 10 }
    }))
}

fn vectors(pair: [[f32; 2]; 2]) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(serde_json::json!({
        "data": [{ "index": 0, "embedding": pair[0] }, { "index": 1, "embedding": pair[1] }]
    }))
}

/// The fake endpoint's known answers, one per question, and embeddings for each answered one.
async fn known_answers() -> MockServer {
    let server = MockServer::start().await;
    let chat = |question: &str, answer: &str| {
        Mock::given(method("POST"))
            .and(path("/v1/chat/completions"))
            .and(body_string_contains(question))
            .respond_with(reply(answer))
    };
    chat(
        "Provide a descriptive title",
        "A neurite outgrowth test _(Source: D1.P1 \"Neurite outgrowth assay in LUHMES cells\")_",
    )
    .mount(&server)
    .await;
    chat("Name the contact person", "Jane Roe _(Source: D1.P9 \"a quote that is nowhere\")_").mount(&server).await;
    chat("Which cells are used", "Answer not found in documents.").mount(&server).await;
    chat("Which readout is measured", "Calcein staining.").mount(&server).await;
    let embed = |answer: &str, pair| {
        Mock::given(method("POST"))
            .and(path("/v1/embeddings"))
            .and(body_string_contains(answer))
            .respond_with(vectors(pair))
    };
    embed("A neurite outgrowth test", [[1.0, 0.0], [1.0, 1.0]]).mount(&server).await;
    embed("Jane Roe", [[1.0, 0.0], [2.0, 0.0]]).mount(&server).await;
    embed("Calcein staining", [[0.0, 1.0], [1.0, 0.0]]).mount(&server).await;
    server
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn known_answers_from_an_endpoint_score_as_computed_by_hand() {
    let env = TestEnv::new();
    let server = known_answers().await;
    let ctx = with_embeddings(&env, &server);
    let set = import(&env, "neuritox", false).await;
    let request = RunRequest {
        base_url: format!("{}/v1", server.uri()),
        model: "known".into(),
        concurrency: 2,
        price_prompt_per_mtok: Some(1.0),
        price_completion_per_mtok: Some(2.0),
        ..RunRequest::default()
    };
    let run = benchmark::start(&ctx, set, request, None).await.unwrap();
    toxtemp::startup::run_pending_jobs(&ctx).await.unwrap();
    let report = benchmark::run_report(&mut env.conn(), run.id).unwrap();
    assert_eq!(report.run.status(), RunStatus::Done, "{:?}", report.run.notes());
    let s = &report.overall;
    // 1.1 "a neurite outgrowth test" vs the 6-token gold: 2 shared, P 1/2, R 1/3 → 0.4;
    // 1.2 "Jane Roe" = gold → 1; 2.1 abstains with the gold; 2.2 "calcein staining" vs
    // 8 gold tokens: P 1, R 1/4 → 0.4. Mean (0.4 + 1 + 0.4) / 3 = 0.6, ROUGE-L the same.
    assert_eq!((s.questions, s.answered, s.with_gold, s.negatives), (4, 3, 4, 1));
    assert!(close(s.completeness, 0.75));
    assert!(close(s.abstention_agreement, 1.0));
    assert!(close(s.specificity, 1.0));
    assert!(close(s.token_f1, 0.6));
    assert!(close(s.rouge_l, 0.6));
    // One citation checks out, the invented one does not.
    assert_eq!((s.citations, s.verified_citations), (2, 1));
    assert!(close(s.citation_verification, 0.5));
    // Cited files: 1.1 cites sop.md = gold (1); 1.2 cites nothing verified (0); 2.2 nothing vs paper.md (0).
    assert!(close(s.cited_file_agreement, 1.0 / 3.0));
    // Cosines: 1/√2, 1, 0 → mean 0.569…; two of three reach 0.6 and 0.7.
    assert!(close(s.cosine, (1.0 / 2f64.sqrt() + 1.0) / 3.0));
    assert!(close(s.cosine_at_0_6, 2.0 / 3.0) && close(s.cosine_at_0_7, 2.0 / 3.0));
    // Tokens and cost: 4 × (100 + 10) at 1 and 2 USD per million.
    assert_eq!((report.run.prompt_tokens, report.run.completion_tokens), (400, 40));
    assert!(close(report.run.cost(), 400.0 / 1e6 + 80.0 / 1e6));
    assert!(report.run.wall_seconds().is_some());
    // The app's key goes to the app's endpoint (the run asked the same one).
    let requests = server.received_requests().await.unwrap();
    assert!(requests.iter().all(|r| r.headers.get("authorization").is_some_and(|v| v == "Bearer app-key")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_endpoint_never_gets_the_apps_key() {
    let env = TestEnv::new();
    let (app, other) = (MockServer::start().await, known_answers().await);
    let ctx = with_embeddings(&env, &app);
    let set = import(&env, "neuritox", false).await;
    let request = RunRequest {
        base_url: format!("{}/v1", other.uri()),
        model: "m".into(),
        concurrency: 1,
        ..RunRequest::default()
    };
    benchmark::start(&ctx, set, request, None).await.unwrap();
    toxtemp::startup::run_pending_jobs(&ctx).await.unwrap();
    let asked = other.received_requests().await.unwrap();
    assert_eq!(asked.len(), 4);
    assert!(asked.iter().all(|r| r.headers.get("authorization").is_none()), "no key for a foreign host");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_out_of_scope_set_measures_specificity() {
    let env = TestEnv::new();
    let set = import(&env, "unrelated", true).await;
    let report = evaluate(&env, set, offline()).await;
    let s = &report.overall;
    assert_eq!((s.questions, s.with_gold, s.negatives), (4, 4, 4), "every question should abstain");
    assert!(close(s.specificity, 1.0), "the offline provider finds nothing in a licence: {:?}", report.rows);
    assert!(close(s.completeness, 0.0));
    assert_eq!(s.token_f1, None);
}

/// An assay drafted offline from `sop.md` with consent, its answers edited into the gold and
/// accepted by its owner.
async fn accepted_assay(env: &TestEnv) -> i32 {
    let set_id = mini_questions(env);
    diesel::update(toxtemp::db::schema::assays::table.find(env.f.assay.id))
        .set(toxtemp::db::schema::assays::question_set_id.eq(Some(set_id)))
        .execute(&mut env.conn())
        .unwrap();
    let sop = std::fs::read(fixtures().join("neuritox/sop.md")).unwrap();
    env.submit(vec![env.file("sop.md", &sop)], true, None).await;
    env.run_jobs().await;
    let mut conn = env.conn();
    for answer in Answer::of_assay(&mut conn, env.f.assay.id).unwrap() {
        Answer::edit(&mut conn, &answer, env.f.person.id, &answer.text, true).unwrap();
    }
    env.f.assay.id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_set_frozen_from_kept_data_keeps_its_gold_and_a_run_changes_nothing_of_the_users() {
    use toxtemp::db::schema::{answer_edits, answer_files, assays};
    let env = TestEnv::new();
    let assay = accepted_assay(&env).await;
    let new = NewSet { name: "kept".into(), description: String::new(), out_of_scope: false, created_by: None };
    let set = benchmark::freeze_from_assays(&env.ctx, new, vec![assay]).await.unwrap();
    // Later edits do not move the target.
    let mut conn = env.conn();
    let first = Answer::of_assay(&mut conn, assay).unwrap().remove(0);
    Answer::edit(&mut conn, &first, env.f.person.id, "Changed after freezing.", true).unwrap();
    let item = toxtemp::db::models::BenchmarkSet::items(&mut conn, set.id).unwrap().remove(0);
    let gold = BenchmarkItem::gold(&mut conn, item.id).unwrap();
    assert_eq!(gold.len(), 4);
    assert_eq!(gold.iter().find(|g| g.question_id == first.question_id).unwrap().text, first.text);
    assert_eq!(BenchmarkItem::files(&mut conn, item.id).unwrap().len(), 1);

    let answers_before = Answer::of_assay(&mut conn, assay).unwrap();
    let links_before: Vec<(i32, String)> = answer_files::table
        .select((answer_files::answer_id, answer_files::file_id))
        .order((answer_files::answer_id, answer_files::file_id))
        .load(&mut conn)
        .unwrap();
    let edits_before: i64 = answer_edits::table.count().get_result(&mut conn).unwrap();
    let assay_before = Assay::find(&mut conn, assay).unwrap();
    drop(conn);
    let report = evaluate(&env, set.id, offline()).await;
    assert_eq!(report.run.status(), RunStatus::Done);
    assert_eq!(report.overall.questions, 4);
    let mut conn = env.conn();
    assert_eq!(Answer::of_assay(&mut conn, assay).unwrap(), answers_before, "no user answer changed");
    let links_after: Vec<(i32, String)> = answer_files::table
        .select((answer_files::answer_id, answer_files::file_id))
        .order((answer_files::answer_id, answer_files::file_id))
        .load(&mut conn)
        .unwrap();
    assert_eq!(links_after, links_before, "no file linked");
    assert_eq!(answer_edits::table.count().get_result::<i64>(&mut conn).unwrap(), edits_before);
    assert_eq!(Assay::find(&mut conn, assay).unwrap(), assay_before, "status, log and usage as they were");
    let _ = assays::table;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_withdrawn_file_is_never_read_and_the_set_says_it_is_incomplete() {
    let env = TestEnv::new();
    let assay = accepted_assay(&env).await;
    let new = NewSet { name: "kept".into(), description: String::new(), out_of_scope: false, created_by: None };
    let set = benchmark::freeze_from_assays(&env.ctx, new, vec![assay]).await.unwrap();
    toxtemp::fileops::withdraw_consent(env.pool(), env.ctx.store.as_ref(), assay, "owner").await.unwrap();
    let reads = env.memory.gets();
    let report = evaluate(&env, set.id, offline()).await;
    assert_eq!(env.memory.gets(), reads, "not a byte read");
    assert_eq!(report.run.status(), RunStatus::Error, "nothing left to evaluate");
    let notes = report.run.notes().join(" ");
    assert!(notes.contains("sop.md was withdrawn or deleted"), "{notes}");
    let files = BenchmarkItem::files(
        &mut env.conn(),
        report.rows.first().map_or_else(
            || toxtemp::db::models::BenchmarkSet::items(&mut env.conn(), set.id).unwrap()[0].id,
            |r| r.item_id,
        ),
    )
    .unwrap();
    assert_eq!(toxtemp::db::models::benchmark::missing_files(&files), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_withdrawn_during_a_run_is_left_out_of_the_remaining_questions() {
    let env = TestEnv::new();
    let assay = accepted_assay(&env).await;
    let new = NewSet { name: "kept".into(), description: String::new(), out_of_scope: false, created_by: None };
    let set = benchmark::freeze_from_assays(&env.ctx, new, vec![assay]).await.unwrap();
    // One question at a time, each answer taking a moment: the withdrawal lands mid-run.
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(reply("Answer not found in documents.").set_delay(std::time::Duration::from_millis(300)))
        .mount(&server)
        .await;
    let request = RunRequest { base_url: server.uri(), model: "slow".into(), concurrency: 1, ..RunRequest::default() };
    let run = benchmark::start(&env.ctx, set.id, request, None).await.unwrap();
    let ctx = env.ctx.clone();
    let running = tokio::spawn(async move { toxtemp::startup::run_pending_jobs(&ctx).await });
    while server.received_requests().await.unwrap().is_empty() {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    toxtemp::fileops::withdraw_consent(env.pool(), env.ctx.store.as_ref(), assay, "owner").await.unwrap();
    let reads = env.memory.gets();
    running.await.unwrap().unwrap();
    assert_eq!(env.memory.gets(), reads, "nothing read from storage after the withdrawal");
    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 4);
    let with_document: Vec<bool> =
        requests.iter().map(|r| String::from_utf8_lossy(&r.body).contains("seeded at 100,000")).collect();
    assert!(with_document[0], "the first question saw the document");
    assert!(!with_document[3], "the last question, asked after the withdrawal, did not");
    let report = benchmark::run_report(&mut env.conn(), run.id).unwrap();
    let notes = report.run.notes().join(" ");
    assert!(notes.contains("sop.md was withdrawn during the run"), "{notes}");
    let files = BenchmarkItem::files(&mut env.conn(), report.rows[0].item_id).unwrap();
    assert_eq!(toxtemp::db::models::benchmark::missing_files(&files), 1, "the set shows it");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_document_changed_in_storage_is_not_used() {
    let env = TestEnv::new();
    let set = import(&env, "neuritox", false).await;
    let file = BenchmarkItem::files(
        &mut env.conn(),
        toxtemp::db::models::BenchmarkSet::items(&mut env.conn(), set).unwrap()[0].id,
    )
    .unwrap()
    .remove(0);
    let mut tampered =
        futures_util::stream::iter(vec![Ok(bytes::Bytes::from_static(b"# 1.1 Title\n\nSomething else."))]);
    let body: &mut toxtemp::storage::SourceStream<'_> = &mut tampered;
    env.ctx.store.put_stream(&file.object_key, "text/markdown", body).await.unwrap();
    let report = evaluate(&env, set, offline()).await;
    let notes = report.run.notes().join(" ");
    assert!(notes.contains("sop.md no longer matches its SHA-256"), "{notes}");
    assert_eq!(report.overall.questions, 0, "the case had nothing left to read");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_the_assay_takes_the_gold_out_of_its_sets() {
    let env = TestEnv::new();
    let assay = accepted_assay(&env).await;
    let new = NewSet { name: "kept".into(), description: String::new(), out_of_scope: false, created_by: None };
    let set = benchmark::freeze_from_assays(&env.ctx, new, vec![assay]).await.unwrap();
    toxtemp::deletion::delete(&env.ctx, toxtemp::deletion::Item::Assay(assay), "owner").await.unwrap();
    let mut conn = env.conn();
    let item = toxtemp::db::models::BenchmarkSet::items(&mut conn, set.id).unwrap().remove(0);
    assert!(item.withdrawn_at.is_some() && item.source_assay_id.is_none());
    assert!(BenchmarkItem::gold(&mut conn, item.id).unwrap().is_empty(), "the owner's answers went");
    assert!(BenchmarkItem::files(&mut conn, item.id).unwrap().iter().all(|f| f.status == FileAssetStatus::Deleted));
    drop(conn);
    let report = evaluate(&env, set.id, offline()).await;
    assert!(report.run.notes().join(" ").contains("its owner deleted the assay"));
    assert_eq!(report.overall.questions, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imported_documents_are_kept_while_their_set_exists() {
    let env = TestEnv::new();
    let set = import(&env, "neuritox", false).await;
    let mut conn = env.conn();
    let item = toxtemp::db::models::BenchmarkSet::items(&mut conn, set).unwrap().remove(0);
    let files = BenchmarkItem::files(&mut conn, item.id).unwrap();
    assert_eq!(files.len(), 1, "gold.json is not a document");
    assert_eq!(
        files[0].sha256,
        toxtemp::fileops::compute_sha256(&std::fs::read(fixtures().join("neuritox/sop.md")).unwrap()[..]).unwrap()
    );
    diesel::update(toxtemp::db::schema::file_assets::table.find(&files[0].id))
        .set(toxtemp::db::schema::file_assets::created_at.eq(toxtemp::db::now() - chrono::Duration::days(30)))
        .execute(&mut conn)
        .unwrap();
    assert!(toxtemp::fileops::get_orphaned_file_assets(&mut conn, 7).unwrap().is_empty(), "not an orphan");
    toxtemp::db::models::BenchmarkSet::delete(&mut conn, set).unwrap();
    assert_eq!(
        toxtemp::fileops::get_orphaned_file_assets(&mut conn, 7).unwrap().len(),
        1,
        "an orphan once the set is gone"
    );
    let _ = FileAsset::find(&mut conn, &files[0].id).unwrap();
}

fn refused<T>(result: Result<T, benchmark::SetError>) -> String {
    match result {
        Err(benchmark::SetError::Invalid(message)) => message,
        Err(other) => panic!("expected a refusal, got {other:?}"),
        Ok(_) => panic!("expected a refusal"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_sets_and_runs_are_refused_with_reasons() {
    let env = TestEnv::new();
    let new =
        |name: &str| NewSet { name: name.into(), description: String::new(), out_of_scope: false, created_by: None };
    // The fixture assay has no kept files and no accepted answers.
    let message = refused(benchmark::freeze_from_assays(&env.ctx, new("x"), vec![env.f.assay.id]).await);
    assert!(message.contains("no kept documents"), "{message}");
    assert!(refused(benchmark::freeze_from_assays(&env.ctx, new(" "), vec![1]).await).contains("name"));
    assert!(refused(benchmark::freeze_from_assays(&env.ctx, new("x"), vec![]).await).contains("at least one"));
    let question_set_id = mini_questions(&env);
    let folder = FolderImport { new: new("x"), dir: fixtures().join("unrelated"), question_set_id };
    assert!(refused(benchmark::import_folder(&env.ctx, folder).await).contains("no accepted answers"), "gold required");
    assert!(env.memory.keys().is_empty(), "nothing stored for a refused import");
    let set = import(&env, "neuritox", false).await;
    for (request, why) in [
        (RunRequest { concurrency: 0, ..RunRequest::default() }, "Concurrency"),
        (RunRequest { concurrency: 1, base_url: "ftp://x".into(), ..RunRequest::default() }, "http"),
        (RunRequest { concurrency: 1, base_url: "http://x".into(), ..RunRequest::default() }, "model"),
        (RunRequest { concurrency: 1, prompt_version: "v0".into(), ..RunRequest::default() }, "prompt"),
        (RunRequest { concurrency: 1, price_prompt_per_mtok: Some(-1.0), ..RunRequest::default() }, "Prices"),
    ] {
        assert!(refused(benchmark::start(&env.ctx, set, request, None).await).contains(why), "{why}");
    }
    assert!(refused(benchmark::start(&env.ctx, 999, offline(), None).await).contains("does not exist"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_earlier_rounds_the_prompt_variant_is_recorded_and_runs() {
    let env = TestEnv::new();
    let set = import(&env, "neuritox", false).await;
    let request =
        RunRequest { prompt_version: toxtemp::llm::prompt::VERSION_WITHOUT_EARLIER_ROUNDS.into(), ..offline() };
    let report = evaluate(&env, set, request).await;
    assert_eq!(report.run.prompt_version, toxtemp::llm::prompt::VERSION_WITHOUT_EARLIER_ROUNDS);
    assert_eq!(report.overall.questions, 4);
    let csv = benchmark::csv(&report);
    assert_eq!(csv.lines().count(), 5, "a header and a line per question");
    assert!(csv.lines().next().unwrap().starts_with("\"run\",\"label\",\"case\""));
    let json = benchmark::json(&report);
    assert_eq!(json["questions"].as_array().unwrap().len(), 4);
    assert_eq!(json["overall"]["questions"], 4);
}
