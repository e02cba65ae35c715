//! Documents as passages a person can find again: the extractor reads a document into
//! [`Segment`]s (a PDF page, a slide, a Word paragraph, a block of spreadsheet rows, a whole
//! text file), each with its [`Location`]; [`split`] turns them into [`Passage`]s of a few
//! hundred characters that never straddle a heading, each knowing its heading (the nearest
//! one above it: "a heading belongs to the text below it") and its character span in the
//! document's text.
//!
//! Headings are recognised by shape, the same for every format: Markdown `#` lines (the
//! extractor writes Word heading styles and HTML `<h1>`–`<h6>` that way too) and short
//! numbered lines without a final full stop (`4.1 Principles of the culture protocol`).
//! Everything here runs in time linear in the text.

use serde::{Deserialize, Serialize};

/// Where a piece of text is in its document. Empty fields are not known for that format.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Location {
    /// PDF page, from 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page: Option<u32>,
    /// PPTX slide, from 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slide: Option<u32>,
    /// Spreadsheet sheet name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sheet: Option<String>,
    /// Spreadsheet rows (first, last), from 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows: Option<(u32, u32)>,
    /// Word paragraph, from 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paragraph: Option<u32>,
    /// The heading the text stands under.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heading: Option<String>,
}

impl Location {
    /// In words, e.g. "page 3 · 4.1 Principles of the culture protocol".
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(p) = self.page {
            parts.push(format!("page {p}"));
        }
        if let Some(s) = self.slide {
            parts.push(format!("slide {s}"));
        }
        if let Some(sheet) = &self.sheet {
            parts.push(format!("sheet {sheet}"));
        }
        if let Some((a, b)) = self.rows {
            parts.push(if a == b { format!("row {a}") } else { format!("rows {a}–{b}") });
        }
        if let Some(p) = self.paragraph {
            parts.push(format!("paragraph {p}"));
        }
        if let Some(h) = &self.heading {
            parts.push(format!("“{h}”"));
        }
        parts.join(" · ")
    }
}

/// A block of text as the extractor read it, with where it was.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Segment {
    pub location: Location,
    pub text: String,
}

/// A passage: the unit that is searched, given to the model and cited.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Passage {
    /// Its number in the document, from 1: stable for the same extraction.
    pub position: u32,
    pub location: Location,
    /// Character span in the document's text (segments joined by a blank line).
    pub start: usize,
    pub end: usize,
    pub text: String,
}

/// Passages aim at this many characters and are cut at a sentence end near it.
const TARGET_CHARS: usize = 700;
/// A passage without a sentence end is cut here at the latest.
const MAX_CHARS: usize = 1000;
/// A numbered heading has at most this many characters.
const MAX_HEADING_CHARS: usize = 120;

/// The heading text of a line, if the line is a heading.
pub fn heading_of(line: &str) -> Option<String> {
    let line = line.trim();
    if let Some(rest) = line.strip_prefix('#') {
        let title = rest.trim_start_matches('#').trim();
        return (!title.is_empty()).then(|| title.to_owned());
    }
    if line.chars().count() > MAX_HEADING_CHARS || line.ends_with(['.', ':', ';', ',']) {
        return None;
    }
    let (number, title) = line.split_once(char::is_whitespace)?;
    let numbered = number
        .trim_end_matches('.')
        .split('.')
        .all(|n| !n.is_empty() && n.len() <= 3 && n.bytes().all(|b| b.is_ascii_digit()));
    let title = title.trim();
    let words = title.split_whitespace().count();
    (numbered && (1..=16).contains(&words) && title.chars().next().is_some_and(|c| c.is_alphabetic() || c == '('))
        .then(|| format!("{} {title}", number.trim_end_matches('.')))
}

/// The section number at the start of a heading ("4.1" of "4.1 Principles …").
pub fn section_number(heading: &str) -> Option<&str> {
    let first = heading.split_whitespace().next()?.trim_end_matches('.');
    (!first.is_empty() && first.split('.').all(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())))
        .then_some(first)
}

/// The document's text as passages are counted in: segments joined by a blank line.
pub fn full_text(segments: &[Segment]) -> String {
    segments.iter().map(|s| s.text.as_str()).collect::<Vec<_>>().join("\n\n")
}

/// Cut the segments into passages; each passage's text is exactly its span of [`full_text`].
pub fn split(segments: &[Segment]) -> Vec<Passage> {
    let full = full_text(segments);
    let mut out = Splitter { full: &full, passages: Vec::new(), heading: None, current: None };
    let mut at = Offset::default();
    for (i, segment) in segments.iter().enumerate() {
        if i > 0 {
            at = at.advance("\n\n"); // the blank line that joins segments in `full_text`
        }
        out.segment(segment, at);
        at = at.advance(&segment.text);
    }
    out.flush();
    out.passages
}

/// A position in the full text, in bytes (for slicing) and characters (for spans).
#[derive(Clone, Copy, Debug, Default)]
struct Offset {
    byte: usize,
    char: usize,
}

impl Offset {
    fn advance(self, text: &str) -> Self {
        Self { byte: self.byte + text.len(), char: self.char + text.chars().count() }
    }
}

/// The passage being built: where it is and where it starts and (so far) ends.
struct Current {
    location: Location,
    start: Offset,
    end: Offset,
}

struct Splitter<'a> {
    full: &'a str,
    passages: Vec<Passage>,
    heading: Option<String>,
    current: Option<Current>,
}

impl Splitter<'_> {
    fn segment(&mut self, segment: &Segment, start: Offset) {
        // A new page, slide or block of rows always starts a new passage, so that a passage's
        // location is exact; Word paragraphs are gathered (a passage names its first one).
        let loc = &segment.location;
        let same = |c: &Location| (c.page, c.slide, &c.sheet, c.rows) == (loc.page, loc.slide, &loc.sheet, loc.rows);
        if self.current.as_ref().is_some_and(|c| !same(&c.location)) {
            self.flush();
        }
        let mut at = start;
        for line in segment.text.split('\n') {
            if let Some(heading) = heading_of(line) {
                self.flush();
                self.heading = Some(heading);
            } else if line.trim().is_empty() {
                if self.current.as_ref().is_some_and(|c| c.end.char - c.start.char >= TARGET_CHARS / 2) {
                    self.flush();
                }
            } else {
                self.push_line(line, at, loc);
            }
            at = at.advance(line).advance("\n");
        }
    }

    /// Add a line (at `at` in the full text) to the passage, cutting as often as needed.
    fn push_line(&mut self, line: &str, mut at: Offset, location: &Location) {
        let mut rest = line.trim_end();
        loop {
            let skipped = rest.len() - rest.trim_start().len();
            at = at.advance(&rest[..skipped]);
            rest = &rest[skipped..];
            if rest.is_empty() {
                return;
            }
            let heading = self.heading.clone();
            let current = self.current.get_or_insert_with(|| Current {
                location: Location { heading, ..location.clone() },
                start: at,
                end: at,
            });
            let (bytes, chars) = cut_point(rest, current.end.char.max(at.char) - current.start.char);
            let taken = &rest[..bytes];
            at = at.advance(taken);
            if chars > 0 {
                current.end = at;
            }
            rest = &rest[bytes..];
            if !rest.is_empty() || current.end.char - current.start.char >= MAX_CHARS {
                self.flush();
            }
        }
    }

    fn flush(&mut self) {
        let Some(current) = self.current.take() else { return };
        let text = self.full[current.start.byte..current.end.byte].trim_end();
        if text.trim().is_empty() {
            return;
        }
        let position = self.passages.len() as u32 + 1;
        let start = current.start.char;
        let end = start + text.chars().count();
        self.passages.push(Passage { position, location: current.location, start, end, text: text.to_owned() });
    }
}

/// How much of `text` goes into a passage that holds `used` characters already: all of it
/// while that stays under the target, else up to the first sentence end past the target, and
/// never more than the maximum. It looks at most `MAX_CHARS` characters ahead, so splitting is
/// linear in the text. Returns (bytes, chars).
fn cut_point(text: &str, used: usize) -> (usize, usize) {
    let mut chars = 0;
    let mut prev_end = false;
    for (i, c) in text.char_indices() {
        let len = used + chars;
        if len >= MAX_CHARS || (prev_end && c == ' ' && len >= TARGET_CHARS) {
            return (i, chars);
        }
        prev_end = matches!(c, '.' | '!' | '?' | ';');
        chars += 1;
    }
    (text.len(), chars)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(text: &str) -> Segment {
        Segment { location: Location::default(), text: text.into() }
    }

    #[test]
    fn headings_are_recognised_by_shape() {
        assert_eq!(heading_of("## Cell culture").as_deref(), Some("Cell culture"));
        assert_eq!(
            heading_of("4.1 Principles of the culture protocol").as_deref(),
            Some("4.1 Principles of the culture protocol")
        );
        assert_eq!(heading_of("2. Grant of Licence").as_deref(), Some("2 Grant of Licence"));
        assert_eq!(heading_of("1. Add 5 ml of medium to each well."), None, "a numbered step, not a heading");
        assert_eq!(heading_of("100000 cells per well"), None);
        assert_eq!(heading_of("2024 was a good year for the lab and its people, said everyone"), None);
        assert_eq!(section_number("4.1 Principles"), Some("4.1"));
        assert_eq!(section_number("Principles"), None);
    }

    #[test]
    fn a_heading_belongs_to_the_text_below_it_and_is_not_a_passage() {
        let text =
            "# Methods\n\n## 4.1 Test system\nLUHMES cells are used.\n\n## 4.2 Readout\nNeurite area.\n## 4.3 Empty\n";
        let passages = split(&[seg(text)]);
        let got: Vec<(&str, Option<&str>)> =
            passages.iter().map(|p| (p.text.as_str(), p.location.heading.as_deref())).collect();
        assert_eq!(got, [("LUHMES cells are used.", Some("4.1 Test system")), ("Neurite area.", Some("4.2 Readout"))]);
        let full = full_text(&[seg(text)]);
        for p in &passages {
            let span: String = full.chars().skip(p.start).take(p.end - p.start).collect();
            assert_eq!(span, p.text, "the span points at the passage");
        }
    }

    #[test]
    fn locations_follow_the_segments_and_spans_count_the_joins() {
        let page =
            |n, text: &str| Segment { location: Location { page: Some(n), ..Default::default() }, text: text.into() };
        let segments = [page(1, "First page text."), page(2, "Second page text."), page(3, "Third.")];
        let passages = split(&segments);
        let pages: Vec<Option<u32>> = passages.iter().map(|p| p.location.page).collect();
        assert_eq!(pages, [Some(1), Some(2), Some(3)], "a page boundary ends a passage");
        let full = full_text(&segments);
        for p in &passages {
            let span: String = full.chars().skip(p.start).take(p.end - p.start).collect();
            assert_eq!(span, p.text);
        }
    }

    #[test]
    fn long_text_is_cut_at_sentence_ends_in_linear_time() {
        let text = "Sentence number one is here. ".repeat(200);
        let passages = split(&[seg(&text)]);
        assert!(passages.len() >= 5);
        assert!(passages.iter().all(|p| p.text.chars().count() <= MAX_CHARS));
        assert!(passages.iter().all(|p| p.text.ends_with('.')), "cut after a full stop");
        // 2 MB without a blank line or a full stop is still split, quickly.
        let wall = "word ".repeat(400_000);
        let passages = split(&[seg(&wall)]);
        assert!(passages.iter().all(|p| p.text.chars().count() <= MAX_CHARS));
        assert!(passages.len() >= 2_000);
    }

    #[test]
    fn locations_read_as_words() {
        let loc = Location { page: Some(3), heading: Some("4.1 Test system".into()), ..Default::default() };
        assert_eq!(loc.describe(), "page 3 · “4.1 Test system”");
        let rows = Location { sheet: Some("Plate".into()), rows: Some((2, 9)), ..Default::default() };
        assert_eq!(rows.describe(), "sheet Plate · rows 2–9");
    }
}
