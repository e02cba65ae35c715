//! The built-in offline provider: no network, no model. It answers extractively, citing each
//! passage it uses with a verbatim quote, and abstains (`Answer not found in documents.`)
//! when nothing fits well enough.
//!
//! How it picks:
//! 1. **The question's own section.** Passages know their heading. A section whose heading
//!    names the question's subsection — the same number and some of its title words, or most
//!    of the title words — is the answer, as many of its passages as fit (a filled ToxTemp,
//!    a SOP organised like the template).
//! 2. **Otherwise, BM25** over all passages with the question and the subsection title as the
//!    query (title words count double; a passage's heading counts as part of it). The best
//!    passage is used only if it matches enough of the query (`min_coverage` of its idf-weighted
//!    words, and `min_terms` distinct words); passages of the same section that also match
//!    well follow it.
//! 3. Questions answered from earlier answers only get the best earlier answers, which carry
//!    their own citations.
//!
//! The thresholds were calibrated on the fixtures in `tests/fixtures` (a filled ToxTemp and
//! two unrelated documents); the README gives the figures.

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;

use super::{AnswerRequest, Completion, Document, LlmError, LlmProvider, NOT_FOUND, PassageId, prompt};
use crate::ingest::Passage;
use crate::ingest::passages::section_number;

pub struct OfflineProvider {
    /// Characters of passage text per answer, at most.
    pub max_chars: usize,
    /// Share of the question's idf-weighted terms the best passage must contain …
    pub min_coverage: f64,
    /// … with at least this many distinct query terms;
    pub min_terms: usize,
    /// or share of the subsection title's words (two at least).
    pub min_title_coverage: f64,
}

impl Default for OfflineProvider {
    fn default() -> Self {
        Self { max_chars: 1500, min_coverage: 0.25, min_terms: 3, min_title_coverage: 0.5 }
    }
}

const STOPWORDS: &[&str] = &[
    "the",
    "and",
    "for",
    "are",
    "was",
    "were",
    "with",
    "that",
    "this",
    "which",
    "what",
    "from",
    "how",
    "your",
    "you",
    "have",
    "has",
    "had",
    "not",
    "but",
    "all",
    "any",
    "can",
    "may",
    "its",
    "into",
    "their",
    "there",
    "been",
    "being",
    "also",
    "such",
    "used",
    "use",
    "using",
    "please",
    "provide",
    "describe",
    "give",
    "list",
    "does",
    "did",
    "etc",
    "other",
    "than",
    "then",
    "when",
    "where",
    "who",
    "why",
    "will",
    "would",
    "should",
    "these",
    "those",
    "them",
    "they",
    "each",
    "per",
    "about",
    "method",
    "test",
    "indicate",
    "information",
    "e.g",
    "i.e",
    "here",
    "whether",
    "known",
    "particular",
    "specific",
    "briefly",
    "name",
    "names",
    "only",
    "state",
    "applies",
    "relevant",
    "data",
];

/// Lower-cased words of three or more characters, plural `s` stripped, stopwords dropped.
fn terms(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.chars().count() >= 3)
        .map(|w| {
            let w = w.to_lowercase();
            match w.strip_suffix('s') {
                Some(stem) if stem.chars().count() >= 4 && !stem.ends_with('s') => stem.to_owned(),
                _ => w,
            }
        })
        .filter(|w| !STOPWORDS.contains(&w.as_str()))
        .collect()
}

/// The title of a subsection without its number ("Principles of the culture protocol").
fn title_words(subsection: &str) -> HashSet<String> {
    let title = match section_number(subsection) {
        Some(number) => subsection[number.len()..].trim_start_matches('.'),
        None => subsection,
    };
    terms(title).into_iter().collect()
}

/// How well a heading names this subsection: `None` when it does not; else (same section
/// number, share of the title's words), to be compared — the same number wins, so that
/// "5.9 Acceptance criteria for the test method" is not answered from "3.4 Acceptance criteria
/// for source cell population".
fn heading_match(heading: &str, subsection: &str) -> Option<(bool, f64)> {
    let want = title_words(subsection);
    let have: HashSet<String> = title_words(heading);
    let shared = want.intersection(&have).count();
    let containment = if want.is_empty() { 0.0 } else { shared as f64 / want.len() as f64 };
    let same_number = section_number(subsection).is_some_and(|n| section_number(heading) == Some(n));
    let names_it = (same_number && (containment >= 0.3 || want.is_empty())) || (want.len() >= 2 && containment >= 0.75);
    names_it.then_some((same_number, containment))
}

/// A passage with where it came from and its terms.
struct Candidate<'a> {
    document: usize,
    passage: &'a Passage,
    terms: HashMap<String, usize>,
    length: usize,
}

impl OfflineProvider {
    fn extract(&self, request: &AnswerRequest) -> String {
        if let Some(answer) = self.own_section(request) {
            return answer;
        }
        if let Some(answer) = self.by_relevance(request) {
            return answer;
        }
        self.earlier_answers(request).unwrap_or_else(|| NOT_FOUND.to_owned())
    }

    /// The passages of the section whose heading names the question's subsection best.
    fn own_section(&self, request: &AnswerRequest) -> Option<String> {
        let heading = |p: &Passage| p.location.heading.clone().unwrap_or_default();
        let mut best: Option<((bool, f64), usize, String)> = None;
        for (d, doc) in request.documents.iter().enumerate() {
            for p in &doc.passages {
                let Some(fit) = heading_match(&heading(p), &request.subsection) else { continue };
                if best.as_ref().is_none_or(|(b, ..)| fit > *b) {
                    best = Some((fit, d, heading(p)));
                }
            }
        }
        let (_, d, title) = best?;
        let section: Vec<&Passage> = request.documents[d].passages.iter().filter(|p| heading(p) == title).collect();
        Some(self.compose(d, &section))
    }

    /// BM25 over all passages; the best one and its section's other good ones.
    fn by_relevance(&self, request: &AnswerRequest) -> Option<String> {
        let candidates: Vec<Candidate> = candidates(&request.documents);
        if candidates.is_empty() {
            return None;
        }
        let question: HashSet<String> = terms(&request.question).into_iter().collect();
        let title = title_words(&request.subsection);
        let mut query: HashMap<String, f64> = question.iter().map(|t| (t.clone(), 1.0)).collect();
        for t in &title {
            query.insert(t.clone(), 2.0);
        }
        let scorer = Bm25::new(&candidates);
        let mut scored: Vec<(f64, usize)> =
            candidates.iter().enumerate().map(|(i, c)| (scorer.score(c, &query), i)).collect();
        scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        let (best_score, best) = *scored.first()?;
        let best = &candidates[best];
        let matched = query.keys().filter(|t| best.terms.contains_key(*t)).count();
        let covers_question = scorer.coverage(best, &question) >= self.min_coverage && matched >= self.min_terms;
        let title_found = title.iter().filter(|t| best.terms.contains_key(*t)).count();
        let covers_title = title_found as f64 >= self.min_title_coverage * title.len() as f64 && title_found >= 2;
        if best_score <= 0.0 || !(covers_question || covers_title) {
            return None;
        }
        // Further passages of the same section that score at least half as well.
        let heading = &best.passage.location.heading;
        let mut picked: Vec<&Passage> = scored
            .iter()
            .map(|(s, i)| (s, &candidates[*i]))
            .filter(|(s, c)| {
                c.document == best.document && &c.passage.location.heading == heading && **s >= best_score / 2.0
            })
            .map(|(_, c)| c.passage)
            .collect();
        picked.sort_by_key(|p| p.position);
        Some(self.compose(best.document, &picked))
    }

    /// The earlier answers the question builds on (they carry their own citations): all of
    /// them when the question is answered from them alone, else those sharing its words.
    fn earlier_answers(&self, request: &AnswerRequest) -> Option<String> {
        let query: HashSet<String> = terms(&request.question).into_iter().collect();
        let only_these = request.documents.is_empty();
        let mut useful: Vec<(usize, &str)> = request
            .earlier_answers
            .iter()
            .filter(|a| a.text.trim() != NOT_FOUND && !a.text.trim().is_empty())
            .map(|a| {
                let words: HashSet<String> = terms(&format!("{} {}", a.subsection, a.text)).into_iter().collect();
                (query.intersection(&words).count(), a.text.as_str())
            })
            .filter(|(hits, _)| only_these || *hits > 0)
            .collect();
        useful.sort_by_key(|u| std::cmp::Reverse(u.0));
        let mut out = String::new();
        for (_, text) in useful {
            if out.chars().count() + text.chars().count() > self.max_chars && !out.is_empty() {
                break;
            }
            if !out.is_empty() {
                out.push_str("\n\n");
            }
            out.push_str(text.trim());
        }
        (!out.is_empty()).then_some(out)
    }

    /// The passages as an answer, each followed by its citation with a verbatim quote.
    fn compose(&self, document: usize, passages: &[&Passage]) -> String {
        let mut out = String::new();
        for p in passages {
            if !out.is_empty() && out.chars().count() + p.text.chars().count() > self.max_chars {
                break;
            }
            let id = PassageId { document: document + 1, passage: p.position };
            let text = p.text.split_whitespace().collect::<Vec<_>>().join(" ");
            if !out.is_empty() {
                out.push_str("\n\n");
            }
            out.push_str(&format!("{text} _(Source: {id} \"{}\")_", quote_of(&text)));
        }
        out
    }
}

/// The passage's first words, as the quote that cites it.
fn quote_of(text: &str) -> String {
    let words: Vec<&str> = text.split_whitespace().take(prompt::MAX_QUOTE_WORDS.min(12)).collect();
    words.join(" ").trim_end_matches(['.', ',', ';', ':']).replace('"', "'")
}

fn candidates(documents: &[Document]) -> Vec<Candidate<'_>> {
    let mut out = Vec::new();
    for (d, doc) in documents.iter().enumerate() {
        for passage in &doc.passages {
            let heading = passage.location.heading.as_deref().unwrap_or_default();
            let words = terms(&format!("{heading} {}", passage.text));
            let length = words.len();
            let mut counts: HashMap<String, usize> = HashMap::new();
            for w in words {
                *counts.entry(w).or_default() += 1;
            }
            out.push(Candidate { document: d, passage, terms: counts, length });
        }
    }
    out
}

/// Okapi BM25 over the candidates (k1 = 1.2, b = 0.75).
struct Bm25 {
    df: HashMap<String, usize>,
    n: f64,
    avg_length: f64,
}

impl Bm25 {
    fn new(candidates: &[Candidate]) -> Self {
        let mut df: HashMap<String, usize> = HashMap::new();
        for c in candidates {
            for t in c.terms.keys() {
                *df.entry(t.clone()).or_default() += 1;
            }
        }
        let n = candidates.len() as f64;
        let avg_length = candidates.iter().map(|c| c.length).sum::<usize>() as f64 / n.max(1.0);
        Self { df, n, avg_length }
    }

    fn idf(&self, term: &str) -> f64 {
        let df = self.df.get(term).copied().unwrap_or(0) as f64;
        (1.0 + (self.n - df + 0.5) / (df + 0.5)).ln()
    }

    /// The share of the terms' idf the candidate contains.
    fn coverage(&self, c: &Candidate, terms: &HashSet<String>) -> f64 {
        let total: f64 = terms.iter().map(|t| self.idf(t)).sum();
        let found: f64 = terms.iter().filter(|t| c.terms.contains_key(*t)).map(|t| self.idf(t)).sum();
        if total > 0.0 { found / total } else { 0.0 }
    }

    fn score(&self, c: &Candidate, query: &HashMap<String, f64>) -> f64 {
        let (k1, b) = (1.2, 0.75);
        query
            .iter()
            .filter_map(|(t, w)| {
                let tf = *c.terms.get(t)? as f64;
                let norm = tf * (k1 + 1.0) / (tf + k1 * (1.0 - b + b * c.length as f64 / self.avg_length.max(1.0)));
                Some(w * self.idf(t) * norm)
            })
            .sum()
    }
}

#[async_trait]
impl LlmProvider for OfflineProvider {
    fn name(&self) -> &str {
        "offline (extractive)"
    }

    fn context_chars(&self) -> usize {
        20_000_000
    }

    async fn answer(&self, request: &AnswerRequest) -> Result<Completion, LlmError> {
        // The scoring is CPU work: off the async threads, which also drive the heartbeats.
        let (request, me) = (request.clone(), Self { ..*self });
        let text = tokio::task::spawn_blocking(move || me.extract(&request))
            .await
            .map_err(|e| LlmError::Refused(format!("the offline provider failed: {e}")))?;
        Ok(Completion { text, usage: None })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::llm::EarlierAnswer;

    fn request(subsection: &str, question: &str, docs: Vec<Document>) -> AnswerRequest {
        AnswerRequest {
            assay_title: "NeuriTox".into(),
            assay_description: String::new(),
            subsection: subsection.into(),
            guidance: String::new(),
            question: question.into(),
            additional_instruction: String::new(),
            documents: Arc::new(docs),
            earlier_answers: vec![],
        }
    }

    #[test]
    fn a_section_named_like_the_subsection_is_the_answer_whatever_its_words() {
        let doc = Document::from_text(
            "toxtemp.md",
            "## 2.6 Name and email of contact person\nDr. Jane Roe, jane.roe@lab.example.org\n\n\
             ## 2.7 Name of further persons involved\nProf. Max Muster (PI).",
        );
        let answer = OfflineProvider::default().extract(&request(
            "2.6 Name and email of contact person",
            "Provide the details of the principal contact person.",
            vec![doc],
        ));
        assert_eq!(
            answer,
            "Dr. Jane Roe, jane.roe@lab.example.org _(Source: D1.P1 \"Dr. Jane Roe, jane.roe@lab.example.org\")_"
        );
    }

    #[test]
    fn the_best_passage_is_cited_with_a_verbatim_quote() {
        let docs = vec![
            Document::from_text(
                "sop.pdf",
                "LUHMES cells are seeded at 100,000 cells per well.\n\nMedium is changed daily.",
            ),
            Document::from_text(
                "paper.docx",
                "Neurite outgrowth is quantified by automated high-content imaging of calcein-stained neurons.",
            ),
        ];
        let answer = OfflineProvider::default().extract(&request(
            "5.3 Overview of analytical method(s)",
            "How is neurite outgrowth quantified (imaging readout of stained neurons)?",
            docs,
        ));
        assert!(answer.starts_with("Neurite outgrowth is quantified"), "{answer}");
        assert!(answer.contains("_(Source: D2.P1 \"Neurite outgrowth is quantified by automated"), "{answer}");
    }

    #[test]
    fn it_says_so_when_nothing_matches() {
        let docs = vec![Document::from_text("a.txt", "Completely unrelated gardening notes about tomatoes.")];
        let p = OfflineProvider::default();
        assert_eq!(
            p.extract(&request("3.1 Supply of source cells", "Which cryopreservation protocol is applied?", docs)),
            NOT_FOUND
        );
        assert_eq!(p.extract(&request("1.1 Title", "Anything?", vec![])), NOT_FOUND);
    }

    #[test]
    fn questions_on_earlier_answers_use_those_answers_with_their_citations() {
        let mut req = request("1.2 Abstract", "Which test system and readout(s) are used?", vec![]);
        req.earlier_answers = vec![EarlierAnswer {
            subsection: "4.1 Principles of the culture protocol".into(),
            text: "Spheroids of HepaRG cells _(Source: D1.P4 \"Spheroids of HepaRG cells\")_".into(),
        }];
        let answer = OfflineProvider::default().extract(&req);
        assert!(answer.contains("_(Source: D1.P4"), "{answer}");
    }

    fn heading_matches(heading: &str, subsection: &str) -> bool {
        heading_match(heading, subsection).is_some()
    }

    #[test]
    fn headings_match_by_number_and_title_words() {
        assert!(heading_matches("4.1 Principles of the culture protocol", "4.1 Principles of the culture protocol"));
        assert!(heading_matches("4.1 Culture protocol principles", "4.1 Principles of the culture protocol"));
        assert!(
            !heading_matches("4.1 Licence Fees", "4.1 Principles of the culture protocol"),
            "a number alone is not enough"
        );
        assert!(heading_matches("Positive controls", "5.6 Positive controls"));
        assert!(!heading_matches("Controls", "5.6 Positive controls"));
        let exact =
            heading_match("5.9 Acceptance criteria for the test method", "5.9 Acceptance criteria for the test method");
        let other = heading_match(
            "3.4 Acceptance criteria for source cell population",
            "5.9 Acceptance criteria for the test method",
        );
        assert!(exact.unwrap() > other.unwrap(), "the same section number wins");
    }

    /// On a single-threaded runtime, other tasks (the workers' heartbeats) get to run while
    /// the offline provider scores: its CPU work does not happen on the async thread.
    #[test]
    fn answering_leaves_the_async_thread_free() {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let doc = Document::from_text("sop.txt", "LUHMES cells are seeded at 100,000 cells per well.");
            let ticks = Arc::new(std::sync::atomic::AtomicUsize::new(0));
            let ticker = {
                let ticks = ticks.clone();
                tokio::spawn(async move {
                    loop {
                        ticks.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        tokio::task::yield_now().await;
                    }
                })
            };
            let req = request("4.1 Cell seeding", "How many cells are seeded per well?", vec![doc]);
            OfflineProvider::default().answer(&req).await.unwrap();
            assert!(ticks.load(std::sync::atomic::Ordering::SeqCst) > 0, "the other task ran meanwhile");
            ticker.abort();
        });
    }
}
