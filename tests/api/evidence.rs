//! Evidence: passages with locations, citations checked before they are saved, links that say
//! which files an answer used, evidence on the page and in the exports, and passages that
//! live and die with their files.

use std::io::Read;
use std::sync::Arc;

use diesel::prelude::*;
use scraper::Html;
use toxtemp::db::models::{Answer, AnswerCitation, AnswerFile, FileAsset, FileAssetStatus, FilePassage, QuestionSet};
use toxtemp::db::schema::file_assets;
use toxtemp::deletion::{self, Item};
use toxtemp::fileops::{self, FileAssetManager};
use toxtemp::llm::NOT_FOUND;
use wiremock::matchers::{body_string_contains, method};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::docs;
use crate::helpers::{TestApp, TestEnv, select_attr, select_texts};

const FILLED: &str = include_str!("../fixtures/filled-toxtemp.md");
const LICENCE: &str = include_str!("../fixtures/unrelated/licence-agreement.txt");

fn chat_reply(text: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(serde_json::json!({
        "choices": [{ "message": { "role": "assistant", "content": text } }],
        "usage": { "prompt_tokens": 10, "completion_tokens": 5 }
    }))
}

fn kept_files(env: &TestEnv) -> Vec<FileAsset> {
    file_assets::table.select(FileAsset::as_select()).order(file_assets::created_at).load(&mut *env.conn()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_three_page_pdf_yields_the_right_page_in_each_citation() {
    let env = TestEnv::new();
    let pdf = docs::pdf_pages(&[
        &["HepaSphere-Tox standard operating procedure", "Version 2.1, internal use."],
        &["5.6 Positive controls", "Chlorpromazine at 50 uM serves as positive control and reduces ATP to 10 to 25 %."],
        &["5.7 Negative and unspecific controls", "DMSO at 0.1 % is the solvent control and must not change ATP."],
    ]);
    env.submit(vec![env.file("sop.pdf", &pdf)], true, None).await;
    env.run_jobs().await;
    let mut conn = env.conn();
    let answers = Answer::of_assay(&mut conn, env.f.assay.id).unwrap();
    let ids: Vec<i32> = answers.iter().map(|a| a.id).collect();
    let citations = AnswerCitation::of_answers(&mut conn, &ids).unwrap();
    let page_of = |quote_start: &str| {
        let c = citations.iter().find(|c| c.quote.starts_with(quote_start)).unwrap_or_else(|| panic!("{citations:?}"));
        assert!(c.verified);
        c.location().page
    };
    assert_eq!(page_of("Chlorpromazine"), Some(2));
    assert_eq!(page_of("DMSO"), Some(3));
    let positive = citations.iter().find(|c| c.quote.starts_with("Chlorpromazine")).unwrap();
    assert_eq!(positive.location().heading.as_deref(), Some("5.6 Positive controls"));
    // The kept file's passages are stored with it, with their pages.
    let file = &kept_files(&env)[0];
    let pages: Vec<Option<u32>> =
        FilePassage::of_file(&mut conn, &file.id).unwrap().iter().map(|p| p.location().page).collect();
    assert_eq!(pages, [Some(1), Some(2), Some(3)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn word_headings_and_paragraphs_locate_passages() {
    let env = TestEnv::new();
    let docx = docs::docx_styled(&[
        (Some("Title"), "HepaSphere-Tox"),
        (Some("Heading2"), "5.6 Positive controls"),
        (None, "Chlorpromazine at 50 uM serves as positive control."),
        (Some("Heading2"), "5.7 Negative and unspecific controls"),
        (None, "DMSO at 0.1 % is the solvent control."),
    ]);
    env.submit(vec![env.file("sop.docx", &docx)], true, None).await;
    env.run_jobs().await;
    let mut conn = env.conn();
    let file = &kept_files(&env)[0];
    let passages = FilePassage::of_file(&mut conn, &file.id).unwrap();
    let located: Vec<(Option<u32>, Option<String>)> =
        passages.iter().map(|p| (p.location().paragraph, p.location().heading)).collect();
    assert_eq!(
        located,
        [
            (Some(3), Some("5.6 Positive controls".into())),
            (Some(5), Some("5.7 Negative and unspecific controls".into()))
        ]
    );
}

/// A fake OpenAI-compatible endpoint that cites one real and one fabricated quote for every
/// question.
async fn one_real_one_fabricated() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(body_string_contains("D1.P1"))
        .respond_with(chat_reply(
            "Cells are seeded at 100000 per well _(Source: D1.P1 \"seeded at 100000 cells per well\")_ \
             on Matrigel _(Source: D1.P1 \"coated with Matrigel before seeding\")_.",
        ))
        .mount(&server)
        .await;
    server
}

#[actix_web::test]
async fn only_the_real_citation_is_shown_as_evidence_and_the_fabricated_one_is_flagged() {
    let server = one_real_one_fabricated().await;
    let uri = server.uri();
    let app = TestApp::builder().config(move |c| c.llm.base_url = Some(format!("{uri}/v1"))).spawn().await;
    app.login_new("a@example.org", false).await;
    let (_, _, assay) = app.create_tree("NeuriTox").await;
    let id = assay.to_string();
    let resp = app
        .post_start(
            &[("assay_id", &id), ("share_files_for_development", "on")],
            &[("sop.pdf", docs::pdf(&[docs::SEEDING]))],
        )
        .await;
    assert_eq!(resp.status(), 303);
    app.run_pending_jobs().await;

    let q = QuestionSet::questions(&mut app.conn(), 1).unwrap()[0].id;
    let answer = Answer::of_assay(&mut app.conn(), assay).unwrap().into_iter().find(|a| a.question_id == q).unwrap();
    assert_eq!(answer.text, "Cells are seeded at 100000 per well [1] on Matrigel [2].");
    let stored = AnswerCitation::of_answers(&mut app.conn(), &[answer.id]).unwrap();
    assert_eq!(stored.iter().map(|c| c.verified).collect::<Vec<_>>(), [true, false]);
    assert_eq!(stored[1].quote, "coated with Matrigel before seeding", "the claim is kept, marked unverified");

    let page = app.get_html(&format!("/assays/{assay}/answers")).await;
    let card = format!("#q{q}");
    assert_eq!(select_texts(&page, &format!("{card} .answer-html a.citation")), ["sop.pdf · page 1"]);
    assert_eq!(select_texts(&page, &format!("{card} .citation-unverified")), ["[2] unverified"]);
    assert_eq!(
        select_texts(&page, &format!("{card} .unverified-flag")),
        ["⚠ 1 citation could not be verified against the documents."]
    );
    let evidence = select_texts(&page, &format!("{card} .evidence-item"));
    assert_eq!(evidence.len(), 1, "only the verified citation is evidence: {evidence:?}");
    assert!(select_texts(&page, &format!("{card} .evidence-item mark")).is_empty(), "passages load on demand");
    let link = select_attr(&page, &format!("{card} .evidence-item a.evidence-link"), "href");
    assert_eq!(link, format!("/assays/{assay}/answers/{q}/evidence#ev-{q}-1-body"));
    let evidence_page = app.get_html(&format!("/assays/{assay}/answers/{q}/evidence")).await;
    assert_eq!(
        select_texts(&evidence_page, "#ev-{q}-1-body mark".replace("{q}", &q.to_string()).as_str()),
        ["seeded at 100000 cells per well"]
    );
    let fragment = app.get(&format!("/assays/{assay}/answers/{q}/evidence?fragment=1")).await.text().await.unwrap();
    assert!(fragment.starts_with("<div class=\"evidence-item-body\"") && !fragment.contains("<html"), "{fragment}");
    let figure = select_texts(&page, "#evidence-figure").join("");
    assert_eq!(figure, "Evidence: 77 of 154 citations verified against the documents");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_passage_id_is_not_evidence() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(chat_reply("Made up _(Source: D9.P42 \"LUHMES cells are seeded at 100000\")_."))
        .mount(&server)
        .await;
    let config = toxtemp::config::LlmConfig { base_url: Some(format!("{}/v1", server.uri())), ..Default::default() };
    let env = TestEnv::new().with_provider(Arc::new(toxtemp::llm::openai::OpenAiCompatible::new(&config).unwrap()));
    env.submit(vec![env.file("sop.pdf", &docs::pdf(&[docs::SEEDING]))], true, None).await;
    env.run_jobs().await;
    let mut conn = env.conn();
    let answers = Answer::of_assay(&mut conn, env.f.assay.id).unwrap();
    let ids: Vec<i32> = answers.iter().map(|a| a.id).collect();
    let citations = AnswerCitation::of_answers(&mut conn, &ids).unwrap();
    assert_eq!(citations.len(), 77);
    assert!(citations.iter().all(|c| !c.verified && c.document_name == "D9.P42" && c.file_id.is_none()));
    assert!(answers.iter().all(|a| a.source_documents().is_empty()), "nothing was drafted from a document");
    for a in &answers {
        let labels: Vec<Option<String>> =
            AnswerFile::of_answer(&mut conn, a.id).unwrap().into_iter().map(|l| l.label).collect();
        assert_eq!(labels, [Some("context".to_owned())], "an unverifiable citation does not make a file cited");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abstentions_get_context_links_only() {
    let env = TestEnv::new();
    env.submit(vec![env.file("licence.txt", LICENCE.as_bytes())], true, None).await;
    env.run_jobs().await;
    let mut conn = env.conn();
    let answers = Answer::of_assay(&mut conn, env.f.assay.id).unwrap();
    let abstained: Vec<&Answer> = answers.iter().filter(|a| a.text == NOT_FOUND).collect();
    assert!(abstained.len() >= 70, "{}", abstained.len());
    for a in abstained {
        let links = AnswerFile::of_answer(&mut conn, a.id).unwrap();
        assert_eq!(links.len(), 1, "every file of the run is linked to each answer");
        assert_eq!(links[0].label.as_deref(), Some("context"));
        assert!(AnswerCitation::of_answers(&mut conn, &[a.id]).unwrap().is_empty());
    }
}

/// A drafted assay with one kept document whose passages are stored.
async fn kept_run() -> (TestEnv, FileAsset) {
    let env = TestEnv::new();
    env.submit(vec![env.file("toxtemp.md", FILLED.as_bytes())], true, None).await;
    env.run_jobs().await;
    let file = kept_files(&env).remove(0);
    assert!(FilePassage::of_file(&mut env.conn(), &file.id).unwrap().len() > 50);
    (env, file)
}

fn passages_of(env: &TestEnv, file: &FileAsset) -> usize {
    FilePassage::of_file(&mut env.conn(), &file.id).unwrap().len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn withdrawing_consent_removes_the_stored_passages_but_keeps_the_quotes() {
    let (env, file) = kept_run().await;
    let withdrawn =
        fileops::withdraw_consent(env.pool(), env.ctx.store.as_ref(), env.f.assay.id, "test").await.unwrap();
    assert_eq!(withdrawn.deleted, 1);
    assert_eq!(passages_of(&env, &file), 0);
    let mut conn = env.conn();
    assert_eq!(FileAsset::find(&mut conn, &file.id).unwrap().status, FileAssetStatus::Deleted);
    let ids: Vec<i32> = Answer::of_assay(&mut conn, env.f.assay.id).unwrap().iter().map(|a| a.id).collect();
    let citations = AnswerCitation::of_answers(&mut conn, &ids).unwrap();
    assert!(!citations.is_empty() && citations.iter().all(|c| !c.quote.is_empty() && c.location().heading.is_some()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_the_assay_deletes_its_kept_files_and_their_passages_at_once() {
    let (env, file) = kept_run().await;
    let deleted = deletion::delete(&env.ctx, Item::Assay(env.f.assay.id), "owner").await.unwrap();
    assert_eq!((deleted.files, deleted.pending), (1, 0));
    assert_eq!(passages_of(&env, &file), 0);
    assert_eq!(FileAsset::find(&mut env.conn(), &file.id).unwrap().status, FileAssetStatus::Deleted);
    assert!(env.memory.keys().is_empty(), "the object is gone");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_orphan_cleanup_removes_the_passages_with_the_file() {
    let env = TestEnv::new();
    // A run that failed after reading its kept file, before linking it to any answer.
    env.submit(vec![env.file("toxtemp.md", FILLED.as_bytes())], true, None).await;
    let file = kept_files(&env).remove(0);
    let passages = toxtemp::ingest::passages::split(&[toxtemp::ingest::Segment {
        location: Default::default(),
        text: FILLED.to_owned(),
    }]);
    FilePassage::insert_all(&mut env.conn(), &file.id, &passages).unwrap();
    assert!(passages_of(&env, &file) > 0);
    diesel::update(file_assets::table.find(&file.id))
        .set(file_assets::created_at.eq(toxtemp::db::now() - chrono::Duration::days(30)))
        .execute(&mut env.conn())
        .unwrap();
    toxtemp::jobs::delete_about(&mut env.conn(), &[toxtemp::drafting::assay_subject(env.f.assay.id)]).unwrap();
    diesel::update(toxtemp::db::schema::assays::table.find(env.f.assay.id))
        .set(toxtemp::db::schema::assays::status.eq("error"))
        .execute(&mut env.conn())
        .unwrap();
    let manager = FileAssetManager { pool: env.pool().clone(), store: env.ctx.store.clone() };
    assert_eq!(manager.cleanup_orphaned(7, "test").await.unwrap().deleted.len(), 1);
    assert_eq!(passages_of(&env, &file), 0);
}

#[actix_web::test]
async fn exports_the_zip_and_the_admin_pages_carry_the_evidence() {
    let mut app = TestApp::builder().s3().spawn().await;
    app.login_new("owner@example.org", false).await;
    let (_, _, assay) = app.create_tree("NeuriTox").await;
    let id = assay.to_string();
    let files =
        [("sop.pdf", docs::pdf(&[docs::SEEDING])), ("notes.txt", b"Unrelated notes about the lab party.".to_vec())];
    app.post_start(&[("assay_id", &id), ("share_files_for_development", "on")], &files).await;
    app.run_pending_jobs().await;
    let sop = fileops::compute_sha256(&files[0].1[..]).unwrap();

    let json: serde_json::Value = app.get(&format!("/assays/{assay}/export.json")).await.json().await.unwrap();
    let questions =
        json["sections"].as_array().unwrap().iter().flat_map(|s| s["questions"].as_array().unwrap().clone());
    let cited: Vec<serde_json::Value> = questions.flat_map(|q| q["evidence"].as_array().unwrap().clone()).collect();
    assert!(!cited.is_empty());
    let first = &cited[0];
    assert_eq!(first["document"], "sop.pdf");
    assert_eq!(first["sha256"], sop.as_str());
    assert_eq!(first["location"], "page 1");
    assert_eq!(first["location_detail"]["page"], 1);
    assert_eq!(first["verified"], true);
    assert!(first["quote"].as_str().unwrap().starts_with("Culture protocol"));

    let md = app.get(&format!("/assays/{assay}/export.md")).await.text().await.unwrap();
    assert!(md.contains("- [1] sop.pdf, page 1: “Culture protocol"), "{md}");
    assert!(md.contains(&format!("(verified) · SHA-256 {sop}")));

    app.new_browser();
    app.login_new("staff@example.org", true).await;
    let page = app.get_html(&format!("/admin/assays/{assay}")).await;
    let rows = select_texts(&page, "#file-table tr");
    let sop_row = rows.iter().find(|r| r.contains("sop.pdf")).unwrap();
    assert!(sop_row.contains("context for"), "{sop_row}");
    let cited_by: usize = Html::parse_document(&page.html())
        .select(&scraper::Selector::parse("#file-table .cited-by").unwrap())
        .map(|e| e.text().collect::<String>().trim_start_matches("cited by ").parse::<usize>().unwrap())
        .sum();
    assert!(cited_by >= 1, "the SOP is cited by at least one answer");
    assert_eq!(
        select_texts(&page, "#file-table .linked").iter().filter(|t| t.contains("section")).count(),
        0,
        "no wall of section names"
    );
    assert!(!select_texts(&page, "#verified-citations").is_empty());

    let zip = app.post_form(&format!("/admin/assays/{assay}/files.zip"), &[]).await.bytes().await.unwrap().to_vec();
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(zip)).unwrap();
    let mut index = String::new();
    zip.by_name("index.csv").unwrap().read_to_string(&mut index).unwrap();
    assert!(index.starts_with("\"subsection\",\"question\",\"file\",\"label\",\"cited_at\""), "{index}");
    assert!(index.lines().any(|l| l.contains("files/sop.pdf") && l.contains("\"cited\",\"page 1")), "{index}");
    assert!(index.lines().any(|l| l.contains("files/notes.txt") && l.contains("\"context\",\"\"")), "{index}");
}
