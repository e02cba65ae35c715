//! The DOCX, HTML and PDF exports, downloaded from the real server and read back: the Word
//! file's XML and the PDF through our own extractor, the HTML with CSS selectors.

use std::io::Read;

use diesel::prelude::*;
use toxtemp::answers::{self, QuestionView};
use toxtemp::db::models::{Assay, QuestionSet};
use toxtemp::db::schema::{answer_citations, answers as answer_rows};
use toxtemp::fileops::compute_sha256;
use toxtemp::ingest::DocumentKind;

use crate::answers::{drafted, files};
use crate::helpers::{TestApp, select_attr, select_texts};

/// Stored as this user's edit: markup, units and letters beyond ASCII, and a citation that
/// could not be verified.
const EDITED: &str = "<script>alert('x')</script> Cells kept at 37 °C with ≥ 5 µM α-synuclein (Müller) [9].";
const UNVERIFIED_QUOTE: &str = "a quote that no document holds";

/// What the exports must show of one drafted assay.
struct Expected {
    assay: i32,
    path: String,
    sha256: String,
    /// A verified quote of the accepted answer.
    quote: String,
    accepted: QuestionView,
}

/// Draft an assay, accept an answer with a verified citation, edit another with hostile text
/// and an unverified citation.
async fn prepared(app: &TestApp) -> Expected {
    let assay = drafted(app, "owner@example.org").await;
    let row = Assay::find(&mut app.conn(), assay).unwrap();
    let sheet = answers::load(&mut app.conn(), &row).unwrap();
    let accepted = sheet
        .sections
        .iter()
        .flat_map(|s| &s.questions)
        .find(|q| q.evidence.iter().any(|e| e.verified && e.document == "sop.pdf"))
        .expect("an answer cites the SOP")
        .clone();
    let quote = accepted.evidence.iter().find(|e| e.verified).unwrap().quote.clone();
    let resp =
        app.post_form(&format!("/assays/{assay}/answers/{}/accept", accepted.question_id), &[("accepted", "on")]).await;
    assert_eq!(resp.status(), 303);
    let edited = QuestionSet::questions(&mut app.conn(), 1).unwrap()[3].id;
    assert_ne!(edited, accepted.question_id);
    let resp = app.post_form(&format!("/assays/{assay}/answers/{edited}"), &[("text", EDITED)]).await;
    assert_eq!(resp.status(), 303);
    let answer_id: i32 = answer_rows::table
        .filter(answer_rows::assay_id.eq(assay))
        .filter(answer_rows::question_id.eq(edited))
        .select(answer_rows::id)
        .first(&mut *app.conn())
        .unwrap();
    diesel::insert_into(answer_citations::table)
        .values((
            answer_citations::answer_id.eq(answer_id),
            answer_citations::number.eq(9),
            answer_citations::document_name.eq("invented.pdf"),
            answer_citations::location.eq("page 9"),
            answer_citations::quote.eq(UNVERIFIED_QUOTE),
            answer_citations::verified.eq(false),
        ))
        .execute(&mut *app.conn())
        .unwrap();
    Expected {
        assay,
        path: "NeuriTox inv / NeuriTox study / NeuriTox".into(),
        sha256: compute_sha256(&files()[0].1[..]).unwrap(),
        quote,
        accepted,
    }
}

/// Download an export: 200, its content type, an attachment with the usual name.
async fn download(app: &TestApp, assay: i32, ext: &str, content_type: &str) -> Vec<u8> {
    let resp = app.get(&format!("/assays/{assay}/export.{ext}")).await;
    assert_eq!(resp.status(), 200, "{ext}");
    assert_eq!(resp.headers()["content-type"], content_type);
    let name = format!("toxtemp-assay-{assay}-NeuriTox.{ext}");
    assert_eq!(
        resp.headers()["content-disposition"].to_str().unwrap(),
        format!("attachment; filename=\"{name}\"; filename*=UTF-8''{name}")
    );
    resp.bytes().await.unwrap().to_vec()
}

/// White space collapsed, so text wrapped onto several lines still matches.
fn flat(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The text our own extractor reads from a file.
fn extracted(kind: DocumentKind, bytes: &[u8]) -> String {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), bytes).unwrap();
    let segments = toxtemp::ingest::extract_in_process(kind, file.path(), 10_000_000).unwrap();
    flat(&toxtemp::ingest::passages::full_text(&segments))
}

/// The parts every export must carry, in its extracted text.
fn assert_carries_everything(text: &str, expected: &Expected, format: &str) {
    for needle in [
        expected.path.as_str(),
        expected.sha256.as_str(),
        &format!("ToxTempAssistant {}", env!("CARGO_PKG_VERSION")),
        "owner@example.org",
        "offline (extractive)",
        &flat(&expected.quote),
        &flat(&expected.accepted.question),
        &flat(expected.accepted.answer.as_deref().unwrap().split("[").next().unwrap()),
        "Cells kept at 37 °C with ≥ 5 µM α-synuclein (Müller)",
        "[9] could not be verified",
        "accepted",
        "not found",
    ] {
        assert!(text.contains(needle), "{format} lacks {needle:?}");
    }
    assert!(!text.contains(UNVERIFIED_QUOTE), "{format}: an unverified quote is never shown as evidence");
}

#[actix_web::test]
async fn the_word_export_has_the_answers_metadata_and_evidence() {
    let app = TestApp::spawn().await;
    let expected = prepared(&app).await;
    let bytes = download(
        &app,
        expected.assay,
        "docx",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    )
    .await;
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes.clone())).unwrap();
    let mut xml = String::new();
    zip.by_name("word/document.xml").unwrap().read_to_string(&mut xml).unwrap();
    assert!(xml.contains(&expected.sha256) && xml.contains(&expected.path));
    assert!(xml.contains("&lt;script&gt;alert('x')&lt;/script&gt;"), "markup is text");
    assert!(!xml.contains("<script>"));
    let mut core = String::new();
    zip.by_name("docProps/core.xml").unwrap().read_to_string(&mut core).unwrap();
    assert!(core.contains("<dc:creator>owner@example.org</dc:creator>"), "{core}");
    assert_carries_everything(&extracted(DocumentKind::Docx, &bytes), &expected, "docx");
}

#[actix_web::test]
async fn the_pdf_export_reads_back_through_our_extractor() {
    let app = TestApp::spawn().await;
    let expected = prepared(&app).await;
    let bytes = download(&app, expected.assay, "pdf", "application/pdf").await;
    assert!(bytes.starts_with(b"%PDF-"));
    let text = extracted(DocumentKind::Pdf, &bytes);
    assert_carries_everything(&text, &expected, "pdf");
    assert!(text.contains("<script>alert('x')</script>"), "the text as typed");
    // 77 questions do not fit on one page: the footer counts the pages.
    let pages = text.matches("NeuriTox · page ").count();
    assert!(pages > 3 && text.contains(&format!("page {pages} of {pages}")), "{pages} pages");
}

#[actix_web::test]
async fn the_html_export_is_self_contained_and_escaped() {
    let app = TestApp::spawn().await;
    let expected = prepared(&app).await;
    let bytes = download(&app, expected.assay, "html", "text/html; charset=utf-8").await;
    let body = String::from_utf8(bytes).unwrap();
    let page = scraper::Html::parse_document(&body);
    assert_carries_everything(&flat(&page.root_element().text().collect::<String>()), &expected, "html");
    assert!(select_texts(&page, "#metadata td").contains(&expected.path));
    assert!(select_texts(&page, "#kept-documents .sha256").contains(&expected.sha256));
    assert_eq!(select_texts(&page, ".question").len(), 77);
    let accepted = format!("#q{}", expected.accepted.question_id);
    assert_eq!(select_attr(&page, &accepted, "data-status"), "accepted");
    let quotes = select_texts(&page, &format!("{accepted} .evidence .verified .quote"));
    assert!(quotes.iter().any(|q| q.contains(&expected.quote)), "{quotes:?}");
    // Nothing outside the file: no script, no external source or link; anchors land.
    assert!(select_texts(&page, "script").is_empty() && !body.contains("<script"));
    assert!(select_texts(&page, "[src], link, iframe, object, img").is_empty());
    let anchors = scraper::Selector::parse("[href]").unwrap();
    let targets: Vec<&str> = page.select(&anchors).map(|a| a.value().attr("href").unwrap()).collect();
    assert!(!targets.is_empty());
    for target in targets {
        assert!(target.starts_with('#') || target.starts_with("data:"), "{target}");
        let id = scraper::Selector::parse(&format!("[id=\"{}\"]", &target[1..])).unwrap();
        assert_eq!(page.select(&id).count(), 1, "{target} lands");
    }
    assert!(!body.contains("url("), "the style loads nothing");
}

#[actix_web::test]
async fn the_answer_page_offers_every_export_and_strangers_get_404() {
    let mut app = TestApp::spawn().await;
    let assay = drafted(&app, "owner@example.org").await;
    let page = app.get_html(&format!("/assays/{assay}/answers")).await;
    for ext in ["json", "md", "docx", "html", "pdf"] {
        assert_eq!(select_attr(&page, &format!("#export-{ext}"), "href"), format!("/assays/{assay}/export.{ext}"));
    }
    app.new_browser();
    app.login_new("other@example.org", false).await;
    for ext in ["docx", "html", "pdf"] {
        assert_eq!(app.get(&format!("/assays/{assay}/export.{ext}")).await.status(), 404, "{ext}");
    }
    app.new_browser();
    app.login_new("staff@example.org", true).await;
    for ext in ["docx", "html", "pdf"] {
        assert_eq!(app.get(&format!("/assays/{assay}/export.{ext}")).await.status(), 200, "staff read {ext}");
    }
}

#[actix_web::test]
async fn the_json_and_markdown_exports_carry_the_same_metadata() {
    let app = TestApp::spawn().await;
    let expected = prepared(&app).await;
    let assay = expected.assay;
    let doc: serde_json::Value = app.get(&format!("/assays/{assay}/export.json")).await.json().await.unwrap();
    let meta = &doc["metadata"];
    assert_eq!(meta["investigation"], "NeuriTox inv");
    assert_eq!(meta["authors"][0]["email"], "owner@example.org");
    assert_eq!(meta["models"][0], "offline (extractive)");
    assert_eq!(meta["app_version"], env!("CARGO_PKG_VERSION"));
    let shas: Vec<&str> = meta["documents"].as_array().unwrap().iter().map(|d| d["sha256"].as_str().unwrap()).collect();
    assert!(shas.contains(&expected.sha256.as_str()), "{shas:?}");
    let md = app.get(&format!("/assays/{assay}/export.md")).await.text().await.unwrap();
    assert!(md.starts_with("# NeuriTox\n"));
    for needle in [
        format!("- **Assay:** {}", expected.path),
        "- **Authors:** owner@example.org".to_owned(),
        format!("sop.pdf ({} bytes) · SHA-256 {}", files()[0].1.len(), expected.sha256),
        format!("ToxTempAssistant {}", env!("CARGO_PKG_VERSION")),
    ] {
        assert!(md.contains(&needle), "{needle}");
    }
    assert_eq!(md.matches("\n## ").count(), 11, "the metadata adds no section");
    assert!(md.contains("- [9] could not be verified\n"), "named");
    assert!(!md.contains(UNVERIFIED_QUOTE), "an unverified quote is never shown as evidence, in Markdown either");
}
