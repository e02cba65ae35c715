//! The answer page as a toxicologist works through it: progress per section, the filter,
//! "next unaccepted", the template's guidance and the word-level history of an answer.

use toxtemp::db::models::{Answer, QuestionSet};

use crate::answers::drafted;
use crate::helpers::{TestApp, select_attr, select_texts};

fn question_ids(app: &TestApp) -> Vec<i32> {
    QuestionSet::questions(&mut app.conn(), 1).unwrap().iter().map(|q| q.id).collect()
}

async fn accept(app: &TestApp, assay: i32, question: i32) {
    let resp = app.post_form(&format!("/assays/{assay}/answers/{question}/accept"), &[("accepted", "on")]).await;
    assert_eq!(resp.status(), 303);
}

#[actix_web::test]
async fn sections_show_their_progress_and_each_answer_leads_to_the_next_open_one() {
    let app = TestApp::spawn().await;
    let assay = drafted(&app, "a@example.org").await;
    let ids = question_ids(&app);
    accept(&app, assay, ids[0]).await;
    accept(&app, assay, ids[2]).await;
    let page = app.get_html(&format!("/assays/{assay}/answers")).await;

    let first_section = select_texts(&page, ".sheet-section:first-of-type .section-accepted");
    let in_first = select_texts(&page, ".sheet-section:first-of-type .question").len();
    assert_eq!(first_section, [format!("2 of {in_first} accepted")]);
    assert_eq!(select_texts(&page, "#section-index .section-count")[0], format!("2/{in_first}"));
    let bar = select_attr(&page, ".sheet-section:first-of-type .progress", "aria-valuenow");
    assert_eq!(bar, (200 / in_first).to_string());

    assert_eq!(select_attr(&page, "#first-unaccepted", "href"), format!("#q{}", ids[1]));
    // From the first (accepted) answer to the second; from the second past the accepted third.
    assert_eq!(select_attr(&page, &format!("#q{} .next-unaccepted", ids[0]), "href"), format!("#q{}", ids[1]));
    assert_eq!(select_attr(&page, &format!("#q{} .next-unaccepted", ids[1]), "href"), format!("#q{}", ids[3]));
    // The last one wraps round to the first still open.
    let last = ids.last().unwrap();
    assert_eq!(select_attr(&page, &format!("#q{last} .next-unaccepted"), "href"), format!("#q{}", ids[1]));
    assert_eq!(select_attr(&page, &format!("#q{}", ids[0]), "data-accepted"), "true");
    assert_eq!(select_attr(&page, &format!("#q{}", ids[1]), "data-accepted"), "false");
}

#[actix_web::test]
async fn the_filter_shows_all_the_open_or_the_not_found_answers() {
    let app = TestApp::spawn().await;
    let assay = drafted(&app, "a@example.org").await;
    let page = app.get_html(&format!("/assays/{assay}/answers")).await;
    assert_eq!(select_attr(&page, "#answer-sheet", "class"), "answer-sheet show-all");
    for (asked, shown) in [("open", "open"), ("not-found", "not-found"), ("all", "all"), ("<b>", "all")] {
        let page = app.get_html(&format!("/assays/{assay}/answers?show={}", urlencoding(asked))).await;
        assert_eq!(select_attr(&page, "#answer-sheet", "class"), format!("answer-sheet show-{shown}"), "{asked}");
    }
    // The cards say what the filter needs, and it agrees with the stored answers.
    let answers = Answer::of_assay(&mut app.conn(), assay).unwrap();
    let not_found: Vec<String> =
        answers.iter().filter(|a| toxtemp::llm::is_not_found(&a.text)).map(|a| a.question_id.to_string()).collect();
    assert!(!not_found.is_empty() && not_found.len() < 77, "the offline provider answers some, abstains on others");
    let marked = select_attrs(&page, ".question[data-not-found=true]", "data-question-id");
    assert_eq!(sorted(marked), sorted(not_found));
    assert_eq!(select_texts(&page, ".question[data-accepted=false]").len(), 77);
}

#[actix_web::test]
async fn guidance_from_the_template_is_shown_with_its_questions() {
    let app = TestApp::spawn().await;
    let assay = drafted(&app, "a@example.org").await;
    let page = app.get_html(&format!("/assays/{assay}/answers")).await;
    let guidance = select_texts(&page, ".question .guidance > div");
    let expected: usize = {
        let set: serde_json::Value = serde_json::from_str(toxtemp::questions::TOXTEMP_V1_JSON).unwrap();
        set["sections"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|s| s["subsections"].as_array().unwrap())
            .filter(|sub| !sub["guidance"].as_str().unwrap_or("").trim().is_empty())
            .count()
    };
    assert!(expected > 0);
    assert_eq!(guidance.len(), expected, "one per subsection that has guidance");
    assert!(guidance.iter().all(|g| !g.is_empty()));
}

#[actix_web::test]
async fn the_history_shows_what_each_edit_changed_word_by_word() {
    let app = TestApp::spawn().await;
    let assay = drafted(&app, "a@example.org").await;
    let q = question_ids(&app)[0];
    let path = format!("/assays/{assay}/answers/{q}");
    app.post_form(&path, &[("text", "Cells are seeded at 100 cells per well.")]).await;
    app.post_form(&path, &[("text", "Cells are seeded at <b>200</b> cells per well.")]).await;
    let editor = app.get_html(&format!("{path}/edit")).await;
    let newest = select_texts(&editor, ".history-entry:first-child .word-diff del");
    assert_eq!(newest, ["100"]);
    assert_eq!(select_texts(&editor, ".history-entry:first-child .word-diff ins"), ["<b>200</b>"], "escaped, as text");
    assert!(select_texts(&editor, ".history-entry:first-child .word-diff b").is_empty(), "no markup from the text");
    assert_eq!(select_attr(&editor, "textarea.answer-text", "aria-describedby"), format!("save-keys-{q}"));
}

fn select_attrs(html: &scraper::Html, selector: &str, name: &str) -> Vec<String> {
    let sel = scraper::Selector::parse(selector).unwrap();
    html.select(&sel).filter_map(|e| e.value().attr(name).map(str::to_owned)).collect()
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

fn urlencoding(s: &str) -> String {
    serde_urlencoded::to_string([("v", s)]).unwrap().trim_start_matches("v=").to_owned()
}
