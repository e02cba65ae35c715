//! How an answer is scored against its gold answer, exactly:
//!
//! - **Text compared**: citation markup is removed first (`[n]` markers and
//!   `_(Source: …)_`), then the text is lower-cased and cut into **tokens**, the maximal runs
//!   of letters and digits (Unicode `is_alphanumeric`); everything else separates tokens.
//!   "EC50 = 0.1 µM" → `ec50`, `0`, `1`, `µm`.
//! - **Abstention**: an answer abstains when it is empty or says "Answer not found in
//!   documents." (case and the final full stop do not matter). Gold answers abstain the same way.
//! - **Token F1** (as in SQuAD): the tokens both texts share, counted as multisets
//!   (`overlap`); precision = overlap / answer tokens, recall = overlap / gold tokens,
//!   F1 = 2·P·R / (P + R), 0 when nothing is shared.
//! - **ROUGE-L**: the longest common subsequence (LCS) of the two token sequences;
//!   P = LCS / answer tokens, R = LCS / gold tokens, F = 2·P·R / (P + R) (β = 1). At most
//!   [`MAX_TOKENS`] tokens of each text are compared.
//! - **Cited-file agreement**: the Jaccard index of the document names the answer cites
//!   (verified citations) and those the gold answer cites: |A ∩ G| / |A ∪ G|; only where the
//!   gold cites something.
//! - **Cosine** (when an embeddings endpoint is configured): the cosine of the two texts'
//!   embedding vectors.
//!
//! Token F1, ROUGE-L and cosine are computed only when both the answer and the gold answer
//! say something (neither abstains).

use std::collections::HashMap;

/// Longest token sequence compared by ROUGE-L (the LCS table grows with the square).
pub const MAX_TOKENS: usize = 2000;

/// The text without citation markup: `[n]` markers and `_(Source: …)_` groups.
pub fn without_citations(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix("_(Source:") {
            match after.find(")_") {
                Some(end) => {
                    rest = &after[end + 2..];
                    continue;
                }
                None => break,
            }
        }
        if rest.starts_with('[')
            && let Some(end) = rest.find(']')
            && end > 1
            && rest[1..end].chars().all(|c| c.is_ascii_digit())
        {
            rest = &rest[end + 1..];
            continue;
        }
        let c = rest.chars().next().unwrap_or_default();
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

pub fn tokens(text: &str) -> Vec<String> {
    without_citations(text)
        .to_lowercase()
        .split(|c: char| !c.is_alphanumeric())
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect()
}

pub fn is_abstention(text: &str) -> bool {
    let t = without_citations(text);
    let t = t.trim().trim_end_matches('.').trim();
    t.is_empty() || crate::llm::is_not_found(t)
}

fn f1(overlap: usize, answer: usize, gold: usize) -> f64 {
    if overlap == 0 || answer == 0 || gold == 0 {
        return 0.0;
    }
    let (p, r) = (overlap as f64 / answer as f64, overlap as f64 / gold as f64);
    2.0 * p * r / (p + r)
}

pub fn token_f1(answer: &str, gold: &str) -> f64 {
    let (a, g) = (tokens(answer), tokens(gold));
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for t in &g {
        *counts.entry(t).or_default() += 1;
    }
    let mut overlap = 0;
    for t in &a {
        if let Some(n) = counts.get_mut(t.as_str())
            && *n > 0
        {
            *n -= 1;
            overlap += 1;
        }
    }
    f1(overlap, a.len(), g.len())
}

pub fn rouge_l(answer: &str, gold: &str) -> f64 {
    let mut a = tokens(answer);
    let mut g = tokens(gold);
    a.truncate(MAX_TOKENS);
    g.truncate(MAX_TOKENS);
    f1(lcs(&a, &g), a.len(), g.len())
}

/// Length of the longest common subsequence, in O(|a|·|b|) time and O(|b|) memory.
fn lcs(a: &[String], b: &[String]) -> usize {
    let mut previous = vec![0usize; b.len() + 1];
    let mut current = vec![0usize; b.len() + 1];
    for x in a {
        for (j, y) in b.iter().enumerate() {
            current[j + 1] = if x == y { previous[j] + 1 } else { previous[j + 1].max(current[j]) };
        }
        std::mem::swap(&mut previous, &mut current);
    }
    previous[b.len()]
}

pub fn cosine(a: &[f32], b: &[f32]) -> Option<f64> {
    if a.len() != b.len() || a.is_empty() {
        return None;
    }
    let dot: f64 = a.iter().zip(b).map(|(x, y)| f64::from(*x) * f64::from(*y)).sum();
    let norm = |v: &[f32]| v.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    let (na, nb) = (norm(a), norm(b));
    (na > 0.0 && nb > 0.0).then(|| dot / (na * nb))
}

/// Jaccard index of two name sets; `None` when the gold set is empty (nothing to agree with).
pub fn cited_file_agreement(answer: &[String], gold: &[String]) -> Option<f64> {
    if gold.is_empty() {
        return None;
    }
    let a: std::collections::BTreeSet<&String> = answer.iter().collect();
    let g: std::collections::BTreeSet<&String> = gold.iter().collect();
    Some(a.intersection(&g).count() as f64 / a.union(&g).count() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn citation_markup_is_not_part_of_the_compared_text() {
        assert_eq!(
            without_citations("Seeded at 100,000 cells [1] per well _(Source: D1.P3 \"seeded\")_."),
            "Seeded at 100,000 cells  per well ."
        );
        assert_eq!(without_citations("See [a] and [12]"), "See [a] and ");
        assert_eq!(tokens("EC50 = 0.1 µM [2]"), ["ec50", "0", "1", "µm"]);
    }

    #[test]
    fn abstentions_are_recognised_whatever_the_case_and_full_stop() {
        assert!(is_abstention("Answer not found in documents."));
        assert!(is_abstention("  answer NOT found in documents "));
        assert!(is_abstention(""));
        assert!(!is_abstention("Not found in the SOP, but the paper says 37 °C."));
    }

    #[test]
    fn token_f1_counts_shared_tokens_as_multisets() {
        // answer: the cells the cells (4 tokens); gold: the cells grow (3 tokens).
        // overlap: "the" once (gold has one), "cells" once → 2. P = 2/4, R = 2/3, F1 = 4/7.
        assert!(close(token_f1("the cells the cells", "the cells grow"), 4.0 / 7.0));
        assert!(close(token_f1("LUHMES cells", "luhmes CELLS"), 1.0));
        assert!(close(token_f1("rotenone", "MPP+"), 0.0));
    }

    #[test]
    fn rouge_l_uses_the_longest_common_subsequence() {
        // answer: a b c d e; gold: a c e f. LCS = a c e = 3; P = 3/5, R = 3/4, F = 2/3.
        assert!(close(rouge_l("a b c d e", "a c e f"), 2.0 / 3.0));
        // Order matters: same tokens reversed share an LCS of 1.
        assert!(close(rouge_l("x y z", "z y x"), 1.0 / 3.0));
    }

    #[test]
    fn cosine_and_agreement() {
        assert!(close(cosine(&[1.0, 0.0], &[1.0, 1.0]).unwrap(), 1.0 / 2f64.sqrt()));
        assert_eq!(cosine(&[0.0, 0.0], &[1.0, 0.0]), None);
        let (a, g) = (vec!["sop.pdf".to_owned(), "paper.docx".to_owned()], vec!["sop.pdf".to_owned()]);
        assert_eq!(cited_file_agreement(&a, &g), Some(0.5));
        assert_eq!(cited_file_agreement(&a, &[]), None);
    }
}
