//! The built-in offline provider: no network, no model. It answers extractively — the
//! passages of the documents that best match the question (terms weighted by rarity), each
//! with its `_(Source: file)_` citation — and says `Answer not found in documents.` when
//! nothing matches well enough. Useful for trying the app and for tests, and honest about
//! what it is.

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;

use super::{AnswerRequest, Completion, LlmError, LlmProvider, NOT_FOUND};

pub struct OfflineProvider {
    /// Passages quoted per answer.
    pub max_passages: usize,
    /// Distinct question terms a passage must contain.
    pub min_terms: usize,
}

impl Default for OfflineProvider {
    fn default() -> Self {
        Self { max_passages: 2, min_terms: 2 }
    }
}

const STOPWORDS: &[&str] = &[
    "the", "and", "for", "are", "was", "were", "with", "that", "this", "which", "what", "from", "how", "your", "you",
    "have", "has", "had", "not", "but", "all", "any", "can", "may", "its", "into", "their", "there", "been", "being",
    "also", "such", "used", "use", "using", "please", "provide", "describe", "give", "list", "does", "did", "etc",
    "other", "than", "then", "when", "where", "who", "why", "will", "would", "should", "these", "those", "them",
    "they", "each", "per", "about", "method", "test",
];

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

/// Paragraphs, with long ones cut near 600 characters at a sentence end.
fn passages(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for para in text.split("\n\n").flat_map(|p| p.split("\r\n\r\n")) {
        let para = para.split_whitespace().collect::<Vec<_>>().join(" ");
        if para.is_empty() {
            continue;
        }
        let mut rest = para.as_str();
        while rest.chars().count() > 700 {
            let cut = rest.char_indices().nth(600).map(|(i, _)| i).unwrap_or(rest.len());
            let end = rest[cut..].find(". ").map(|i| cut + i + 1).unwrap_or(cut);
            out.push(rest[..end].trim().to_owned());
            rest = rest[end..].trim_start();
        }
        if !rest.is_empty() {
            out.push(rest.to_owned());
        }
    }
    out
}

impl OfflineProvider {
    fn extract(&self, request: &AnswerRequest) -> String {
        let query: HashSet<String> = terms(&request.question).into_iter().collect();
        let mut candidates: Vec<(&str, String, HashSet<String>)> = Vec::new();
        for doc in request.documents.iter() {
            for p in passages(&doc.text) {
                let t: HashSet<String> = terms(&p).into_iter().collect();
                candidates.push((doc.name.as_str(), p, t));
            }
        }
        for (title, text) in &request.earlier_answers {
            if text.trim() != NOT_FOUND {
                for p in passages(text) {
                    let t: HashSet<String> = terms(&format!("{title} {p}")).into_iter().collect();
                    candidates.push(("", p, t));
                }
            }
        }
        if candidates.is_empty() || query.is_empty() {
            return NOT_FOUND.to_owned();
        }
        let mut df: HashMap<&str, usize> = HashMap::new();
        for (_, _, t) in &candidates {
            for term in query.iter().filter(|q| t.contains(*q)) {
                *df.entry(term.as_str()).or_default() += 1;
            }
        }
        let n = candidates.len() as f64;
        let mut scored: Vec<(f64, usize)> = candidates
            .iter()
            .enumerate()
            .filter_map(|(i, (_, _, t))| {
                let hits: Vec<&String> = query.iter().filter(|q| t.contains(*q)).collect();
                if hits.len() < self.min_terms {
                    return None;
                }
                let score = hits.iter().map(|h| (1.0 + n / df[h.as_str()] as f64).ln()).sum::<f64>();
                Some((score, i))
            })
            .collect();
        if scored.is_empty() {
            return NOT_FOUND.to_owned();
        }
        scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        let mut picked: Vec<usize> = scored.iter().take(self.max_passages).map(|(_, i)| *i).collect();
        picked.sort();
        picked
            .into_iter()
            .map(|i| {
                let (source, text, _) = &candidates[i];
                // Earlier answers carry their own citations already.
                if source.is_empty() { text.clone() } else { format!("{text} _(Source: {source})_") }
            })
            .collect::<Vec<_>>()
            .join("\n\n")
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
        Ok(Completion { text: self.extract(request), usage: None })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::llm::Document;

    fn request(question: &str, docs: Vec<Document>) -> AnswerRequest {
        AnswerRequest {
            assay_title: "NeuriTox".into(),
            assay_description: String::new(),
            subsection: "4.1".into(),
            guidance: String::new(),
            question: question.into(),
            additional_instruction: String::new(),
            documents: Arc::new(docs),
            earlier_answers: vec![],
        }
    }

    #[test]
    fn it_cites_the_document_that_holds_the_answer() {
        let docs = vec![
            Document {
                name: "sop.pdf".into(),
                text: "LUHMES cells are seeded at 100,000 cells per well.\n\nMedium is changed daily.".into(),
            },
            Document {
                name: "paper.docx".into(),
                text: "Neurite outgrowth is quantified by automated high-content imaging of calcein-stained neurons."
                    .into(),
            },
        ];
        let answer = OfflineProvider::default()
            .extract(&request("How is neurite outgrowth quantified (imaging readout)?", docs.clone()));
        assert!(answer.contains("_(Source: paper.docx)_"), "{answer}");
        assert!(!answer.contains("sop.pdf"), "{answer}");
        let seeding =
            OfflineProvider::default().extract(&request("At which density are the cells seeded per well?", docs));
        assert!(seeding.contains("_(Source: sop.pdf)_"), "{seeding}");
    }

    #[test]
    fn it_says_so_when_nothing_matches() {
        let docs = vec![Document { name: "a.txt".into(), text: "Completely unrelated gardening notes.".into() }];
        assert_eq!(
            OfflineProvider::default().extract(&request("Which cryopreservation protocol is applied?", docs)),
            NOT_FOUND
        );
        assert_eq!(OfflineProvider::default().extract(&request("Anything?", vec![])), NOT_FOUND);
    }

    #[test]
    fn long_paragraphs_are_cut_into_passages() {
        let text = "Sentence number one is here. ".repeat(60);
        let parts = passages(&text);
        assert!(parts.len() >= 2);
        assert!(parts.iter().all(|p| p.chars().count() <= 700));
    }
}
