//! The evidence of answers as people see it: each citation with its document, where in it,
//! the quote, whether it was verified, and — while the document is kept — the passage around
//! the quote with the quote marked.

use std::collections::HashMap;

use diesel::prelude::*;
use serde::Serialize;

use crate::db::DbConn;
use crate::db::models::{AnswerCitation, FileAsset, FileAssetId, FilePassage};
use crate::db::schema::file_assets;
use crate::ingest::Location;
use crate::quotes;

/// One citation of an answer.
#[derive(Clone, Debug, Serialize)]
pub struct EvidenceView {
    /// The `[n]` in the answer text.
    pub number: i32,
    pub document: String,
    /// The document's SHA-256, while it is kept.
    pub sha256: Option<String>,
    /// Where in the document, in words ("page 3 · “4.1 …”").
    pub location: String,
    #[serde(rename = "location_detail")]
    pub place: Location,
    pub quote: String,
    pub verified: bool,
    /// The passage with the quote marked, while the document is kept and the quote found
    /// (loaded only where it is shown).
    #[serde(skip)]
    pub passage: Option<Highlight>,
    /// The cited document is kept: its passage can be shown.
    #[serde(skip)]
    pub kept: bool,
}

impl EvidenceView {
    /// A short label for the citation badge: the document and its page, slide or sheet.
    pub fn badge(&self) -> String {
        let place = Location { heading: None, paragraph: None, ..self.place.clone() }.describe();
        if place.is_empty() { self.document.clone() } else { format!("{} · {place}", self.document) }
    }
}

/// A passage split around the quote, for `<mark>`ing it (every part is escaped when shown).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Highlight {
    pub before: String,
    pub quote: String,
    pub after: String,
}

/// The evidence of each of these answers, by answer id and citation number; with
/// `passages`, each verified citation of a kept document with its passage, the quote marked
/// (the answer page loads those on demand: finding a quote in its passage is the costly part).
pub fn of_answers(
    conn: &mut DbConn,
    answer_ids: &[i32],
    passages: bool,
) -> QueryResult<HashMap<i32, Vec<EvidenceView>>> {
    let citations = AnswerCitation::of_answers(conn, answer_ids)?;
    let file_ids: Vec<FileAssetId> = citations.iter().filter_map(|c| c.file_id.clone()).collect();
    let kept: HashMap<FileAssetId, FileAsset> = file_assets::table
        .filter(file_assets::id.eq_any(&file_ids))
        .select(FileAsset::as_select())
        .load(conn)?
        .into_iter()
        .filter(FileAsset::is_available)
        .map(|a| (a.id.clone(), a))
        .collect();
    let wanted: Vec<(FileAssetId, i32)> = citations
        .iter()
        .filter(|_| passages)
        .filter_map(|c| Some((c.file_id.clone().filter(|f| kept.contains_key(f))?, c.passage_position?)))
        .collect();
    let passages: HashMap<(FileAssetId, i32), FilePassage> =
        FilePassage::at(conn, &wanted)?.into_iter().map(|p| ((p.file_id.clone(), p.position), p)).collect();
    let mut out: HashMap<i32, Vec<EvidenceView>> = HashMap::new();
    for c in citations {
        let file = c.file_id.as_ref().and_then(|f| kept.get(f));
        let passage = c
            .file_id
            .clone()
            .zip(c.passage_position)
            .and_then(|key| passages.get(&key))
            .filter(|_| c.verified)
            .and_then(|p| highlight(&p.text, &c.quote));
        let place = c.location();
        out.entry(c.answer_id).or_default().push(EvidenceView {
            number: c.number,
            kept: file.is_some() && c.passage_position.is_some(),
            sha256: file.map(|f| f.sha256.clone()),
            location: place.describe(),
            place,
            passage,
            document: c.document_name,
            quote: c.quote,
            verified: c.verified,
        });
    }
    Ok(out)
}

/// The passage cut around where the quote is in it.
fn highlight(passage: &str, quote: &str) -> Option<Highlight> {
    let (start, end) = quotes::locate(quote, passage)?;
    let chars: Vec<char> = passage.chars().collect();
    let part = |from: usize, to: usize| chars[from..to].iter().collect::<String>();
    Some(Highlight { before: part(0, start), quote: part(start, end), after: part(end, chars.len()) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_quote_is_cut_out_of_its_passage() {
        let h = highlight("LUHMES cells are seeded at 100,000 cells per well on day 0.", "seeded at 100,000 cells")
            .unwrap();
        assert_eq!(h.before, "LUHMES cells are ");
        assert_eq!(h.quote, "seeded at 100,000 cells");
        assert_eq!(h.after, " per well on day 0.");
        assert!(highlight("Short.", "something else entirely").is_none());
    }
}
