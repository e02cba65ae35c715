//! How good the default (offline) provider is, measured through the real pipeline on the
//! fixtures in `tests/fixtures`: a filled ToxTemp of a made-up method (every answer should come
//! from its own section) and two unrelated documents (every question should be abstained from).
//! The figures are printed (`cargo test offline_quality -- --nocapture`) and in the README.

use std::collections::HashMap;

use diesel::prelude::*;
use toxtemp::db::models::{Answer, AnswerCitation};
use toxtemp::db::schema::{question_context_subsections, questions, subsections};
use toxtemp::ingest::passages::section_number;
use toxtemp::llm::NOT_FOUND;

use crate::helpers::TestEnv;

const FILLED: &str = include_str!("../fixtures/filled-toxtemp.md");
const LICENCE: &str = include_str!("../fixtures/unrelated/licence-agreement.txt");
const CHANGELOG: &str = include_str!("../fixtures/unrelated/changelog.md");

/// What one run drafted.
pub struct Figures {
    pub questions: usize,
    pub answered: usize,
    /// Answered questions whose verified citations all lie in the question's own subsection
    /// (or a subsection it is told to build on).
    pub own_section: usize,
    pub citations: usize,
    pub verified: usize,
    /// Answered questions not drawn from their own section: (question id, cited sections).
    pub elsewhere: Vec<(i32, Vec<String>)>,
}

impl Figures {
    pub fn completeness(&self) -> f64 {
        self.answered as f64 / self.questions as f64
    }
    pub fn own_section_share(&self) -> f64 {
        self.own_section as f64 / self.answered.max(1) as f64
    }
    pub fn abstention(&self) -> f64 {
        1.0 - self.completeness()
    }
    pub fn verified_share(&self) -> f64 {
        self.verified as f64 / self.citations.max(1) as f64
    }
}

/// Draft the fixture assay from these documents offline and measure the answers.
pub async fn figures_for(files: &[(&str, &str)]) -> Figures {
    let env = TestEnv::new();
    let files = files.iter().map(|(name, text)| env.file(name, text.as_bytes())).collect();
    env.submit(files, false, None).await;
    env.run_jobs().await;
    let mut conn = env.conn();
    let answers = Answer::of_assay(&mut conn, env.f.assay.id).unwrap();
    let own: HashMap<i32, Vec<String>> = own_sections(&mut conn);
    let ids: Vec<i32> = answers.iter().map(|a| a.id).collect();
    let mut citations: HashMap<i32, Vec<AnswerCitation>> = HashMap::new();
    for c in AnswerCitation::of_answers(&mut conn, &ids).unwrap() {
        citations.entry(c.answer_id).or_default().push(c);
    }
    let mut f =
        Figures { questions: answers.len(), answered: 0, own_section: 0, citations: 0, verified: 0, elsewhere: vec![] };
    for answer in &answers {
        let cited = citations.remove(&answer.id).unwrap_or_default();
        f.citations += cited.len();
        f.verified += cited.iter().filter(|c| c.verified).count();
        if answer.text.trim() == NOT_FOUND {
            continue;
        }
        f.answered += 1;
        let sections: Vec<String> = cited
            .iter()
            .filter(|c| c.verified)
            .filter_map(|c| c.location().heading.as_deref().and_then(section_number).map(str::to_owned))
            .collect();
        if !sections.is_empty() && sections.iter().all(|s| own[&answer.question_id].contains(s)) {
            f.own_section += 1;
        } else {
            f.elsewhere.push((answer.question_id, sections));
        }
    }
    assert_eq!(f.questions, 77, "every question got an answer row");
    f
}

/// For each question: the number of its subsection and of the subsections it builds on.
fn own_sections(conn: &mut toxtemp::db::DbConn) -> HashMap<i32, Vec<String>> {
    let titles: Vec<(i32, String)> =
        questions::table.inner_join(subsections::table).select((questions::id, subsections::title)).load(conn).unwrap();
    let context: Vec<(i32, String)> = question_context_subsections::table
        .inner_join(subsections::table.on(subsections::id.eq(question_context_subsections::subsection_id)))
        .select((question_context_subsections::question_id, subsections::title))
        .load(conn)
        .unwrap();
    let mut own: HashMap<i32, Vec<String>> = HashMap::new();
    for (q, title) in titles.into_iter().chain(context) {
        own.entry(q).or_default().extend(section_number(&title).map(str::to_owned));
    }
    own
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_filled_toxtemp_the_answers_come_from_their_own_sections() {
    let f = figures_for(&[("filled-toxtemp.md", FILLED)]).await;
    eprintln!(
        "offline provider on a filled ToxTemp: completeness {:.1} % ({}/{}), own section {:.1} % of answered ({}/{}), \
         citations verified {:.1} % ({}/{})",
        100.0 * f.completeness(),
        f.answered,
        f.questions,
        100.0 * f.own_section_share(),
        f.own_section,
        f.answered,
        100.0 * f.verified_share(),
        f.verified,
        f.citations
    );
    eprintln!("not from their own section (question id, cited sections): {:?}", f.elsewhere);
    assert!(f.completeness() >= 0.92, "completeness {:.3}", f.completeness());
    assert!(f.own_section_share() >= 0.70, "own section {:.3}", f.own_section_share());
    assert_eq!(f.verified, f.citations, "the offline provider quotes verbatim");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_unrelated_documents_the_answers_abstain() {
    let f = figures_for(&[("licence-agreement.txt", LICENCE), ("changelog.md", CHANGELOG)]).await;
    eprintln!(
        "offline provider on unrelated documents: abstentions {:.1} % ({}/{} answered)",
        100.0 * f.abstention(),
        f.answered,
        f.questions
    );
    eprintln!("answered anyway (question id, cited sections): {:?}", f.elsewhere);
    assert!(f.abstention() >= 0.90, "abstention {:.3}", f.abstention());
}
