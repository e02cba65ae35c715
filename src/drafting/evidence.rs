//! Evidence: the citations of an answer, read from the model's markup and checked against the
//! passages of this run before anything is saved. A citation is evidence only when it names
//! a passage (`D1.P3`) that exists among this run's documents and its quote occurs in that
//! passage ([`crate::quotes`] says exactly how quotes are compared).
//!
//! The saved answer text carries `[n]` where the model's markup stood; citation `n` is stored
//! with its document, location, quote (at most [`MAX_QUOTE_CHARS`]) and whether it was verified.

use crate::db::models::FileAssetId;
use crate::ingest::{Location, Passage};
use crate::llm::prompt::{self, CitationMark, Piece};
use crate::llm::{Document, NOT_FOUND};
use crate::quotes;

pub const MAX_QUOTE_CHARS: usize = 300;

/// A document of a run: what the model saw, and the FileAsset when the file was kept.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RunDocument {
    #[serde(flatten)]
    pub document: Document,
    #[serde(default)]
    pub file_asset_id: Option<FileAssetId>,
}

/// One checked citation of an answer.
#[derive(Clone, Debug, PartialEq)]
pub struct Evidence {
    /// The `[n]` in the saved text, from 1.
    pub number: u32,
    /// Index into the run's documents, when the citation named one of them.
    pub document: Option<usize>,
    pub document_name: String,
    pub passage: Option<u32>,
    pub location: Location,
    pub quote: String,
    pub verified: bool,
    /// The cited passage's character span in its document.
    pub span: Option<(usize, usize)>,
}

/// The answer as it is saved and its checked citations.
pub fn read_citations(answer: &str, documents: &[RunDocument]) -> (String, Vec<Evidence>) {
    if answer.trim() == NOT_FOUND {
        return (NOT_FOUND.to_owned(), Vec::new());
    }
    let mut text = String::new();
    let mut found = Vec::new();
    for piece in prompt::pieces(answer) {
        match piece {
            Piece::Text(t) => text.push_str(&t),
            Piece::Citations(marks) => {
                for mark in marks {
                    let evidence = check(&mark, found.len() as u32 + 1, documents);
                    text.push_str(&format!("[{}]", evidence.number));
                    found.push(evidence);
                }
            }
        }
    }
    (text.trim().to_owned(), found)
}

fn check(mark: &CitationMark, number: u32, documents: &[RunDocument]) -> Evidence {
    let quote = shorten(&mark.quote);
    let cited = mark.passage.and_then(|id| {
        let doc = documents.get(id.document.checked_sub(1)?)?;
        let passage = doc.document.passages.iter().find(|p| p.position == id.passage)?;
        Some((id.document - 1, doc, passage))
    });
    match cited {
        Some((index, doc, passage)) => Evidence {
            number,
            document: Some(index),
            document_name: doc.document.name.clone(),
            passage: Some(passage.position),
            location: passage.location.clone(),
            verified: quote_is_in(&mark.quote, passage),
            span: Some((passage.start, passage.end)),
            quote,
        },
        None => {
            // No such passage, or a file name instead of an id: kept as a claim, not evidence.
            let named = documents.iter().position(|d| d.document.name.eq_ignore_ascii_case(mark.source.trim()));
            let document_name = match (named, mark.passage) {
                (Some(i), _) => documents[i].document.name.clone(),
                (None, Some(id)) => id.to_string(),
                (None, None) => mark.source.clone(),
            };
            Evidence {
                number,
                document: named,
                document_name,
                passage: None,
                location: Location::default(),
                quote,
                verified: false,
                span: None,
            }
        }
    }
}

/// At most [`MAX_QUOTE_CHARS`] characters, cut with an ellipsis.
fn shorten(quote: &str) -> String {
    let quote = quote.trim();
    if quote.chars().count() <= MAX_QUOTE_CHARS {
        return quote.to_owned();
    }
    let cut: String = quote.chars().take(MAX_QUOTE_CHARS - 1).collect();
    format!("{}…", cut.trim_end())
}

/// Does the quote occur in the passage? (See [`crate::quotes`] for the rules.)
pub fn quote_is_in(quote: &str, passage: &Passage) -> bool {
    quotes::locate(quote, &passage.text).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(name: &str, text: &str) -> RunDocument {
        RunDocument { document: Document::from_text(name, text), file_asset_id: None }
    }

    #[test]
    fn citations_become_numbered_markers_and_are_checked() {
        let docs = vec![
            doc("sop.pdf", "LUHMES cells are seeded at 100,000 cells per well on day 0."),
            doc("b.docx", "Other."),
        ];
        let answer = "Seeded at 100,000 cells _(Source: D1.P1 \"seeded at 100,000 cells per well\")_ in \
                      Matrigel _(Source: D1.P1 \"cultured on Matrigel-coated plates\"; D7.P1 \"anything at all here\")_ \
                      as stated _(Source: sop.pdf)_.";
        let (text, found) = read_citations(answer, &docs);
        assert_eq!(text, "Seeded at 100,000 cells [1] in Matrigel [2][3] as stated [4].");
        let verified: Vec<bool> = found.iter().map(|e| e.verified).collect();
        assert_eq!(verified, [true, false, false, false]);
        assert_eq!(found[0].document_name, "sop.pdf");
        assert_eq!(found[0].passage, Some(1));
        assert_eq!(found[2].document, None, "an unknown passage id names no document");
        assert_eq!(found[3].document, Some(0), "a file name is a claim about that document");
        assert_eq!(read_citations(NOT_FOUND, &docs), (NOT_FOUND.to_owned(), vec![]));
    }

    #[test]
    fn long_quotes_are_stored_shortened() {
        let long = "word ".repeat(100);
        assert_eq!(shorten(&long).chars().count(), MAX_QUOTE_CHARS);
    }
}
