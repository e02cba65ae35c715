//! Finding a quote in a passage — how citations are verified, and where the answer page
//! highlights them. Both texts are compared after normalising them:
//!
//! - Unicode NFKC (ligatures such as `ﬁ` become `fi`, full-width forms plain), lower case;
//! - typographic quotes and dashes as their ASCII forms, soft hyphens removed;
//! - a hyphen and the white space after it removed, so a word hyphenated at a line break
//!   (`neuro-⏎toxicity`) matches the whole word (`neurotoxicity`), and `cell-based` matches
//!   `cellbased` and `cell- based` alike;
//! - runs of white space as one space.
//!
//! A quote matches when its normalised form occurs in the normalised passage; failing that,
//! when it matches a stretch of the passage with at most one character edit (insertion,
//! deletion, substitution) per [`CHARS_PER_EDIT`] characters of the quote — OCR slips and a
//! model's small normalisations pass, a changed number in a short quote does not. A quote
//! with an ellipsis (`…` or `...`) matches when each of its parts does, in order. A quote
//! shorter than [`MIN_QUOTE_CHARS`] normalised characters matches only if it is the whole
//! passage: a word or two proves nothing.

use unicode_normalization::UnicodeNormalization;

pub const MIN_QUOTE_CHARS: usize = 10;
pub const CHARS_PER_EDIT: usize = 20;

/// Where the quote is in `passage`, as a character range of `passage` (from the start of its
/// first part to the end of its last), or `None` when it does not match.
pub fn locate(quote: &str, passage: &str) -> Option<(usize, usize)> {
    let (hay, origin) = normalize_mapped(passage);
    let parts: Vec<Vec<char>> =
        quote.replace('…', "...").split("...").map(|p| normalize_mapped(p).0).filter(|p| !p.is_empty()).collect();
    let quoted: usize = parts.iter().map(Vec::len).sum();
    if parts.is_empty() || (quoted < MIN_QUOTE_CHARS && quoted < hay.len()) {
        return None;
    }
    let (mut from, mut first) = (0, None);
    for part in &parts {
        let (start, end) = find(part, &hay[from..], part.len() / CHARS_PER_EDIT)?;
        first.get_or_insert(from + start);
        from += end;
    }
    let start = origin[first?];
    let end = origin[from - 1] + 1;
    Some((start, end))
}

/// Is the quote in the passage?
pub fn is_in(quote: &str, passage: &str) -> bool {
    locate(quote, passage).is_some()
}

/// Text as quotes are compared.
pub fn normalize(text: &str) -> String {
    normalize_mapped(text).0.into_iter().collect()
}

/// The normalised characters, and for each the index of the character of `text` it came from.
fn normalize_mapped(text: &str) -> (Vec<char>, Vec<usize>) {
    let mut out = Vec::with_capacity(text.len());
    let mut origin = Vec::with_capacity(text.len());
    let mut space = false;
    let mut after_hyphen = false;
    for (i, original) in text.chars().enumerate() {
        for c in std::iter::once(original).nfkc().flat_map(char::to_lowercase) {
            let c = match c {
                '\u{ad}' => continue,
                '‘' | '’' | '‚' | '′' | '`' => '\'',
                '“' | '”' | '„' | '″' => '"',
                '‐' | '‑' | '‒' | '–' | '—' | '−' => '-',
                c => c,
            };
            if c == '-' {
                after_hyphen = true;
            } else if c.is_whitespace() {
                space = !after_hyphen && !out.is_empty();
            } else {
                if space {
                    out.push(' ');
                    origin.push(i);
                }
                space = false;
                after_hyphen = false;
                out.push(c);
                origin.push(i);
            }
        }
    }
    (out, origin)
}

/// Where `needle` is in `hay` as (start, end), allowing `max_edits` character edits: exact
/// search first, then approximate matching (Sellers' algorithm; the start is estimated from
/// the end and the needle's length).
fn find(needle: &[char], hay: &[char], max_edits: usize) -> Option<(usize, usize)> {
    if needle.len() > hay.len() + max_edits {
        return None;
    }
    if let Some(at) = hay.windows(needle.len()).position(|w| w == needle) {
        return Some((at, at + needle.len()));
    }
    if max_edits == 0 {
        return None;
    }
    // column[i] = fewest edits to match needle[..i] ending at the current hay position.
    let mut column: Vec<usize> = (0..=needle.len()).collect();
    for (j, h) in hay.iter().enumerate() {
        let mut diagonal = column[0];
        column[0] = 0; // a match may start anywhere in the hay
        for i in 1..=needle.len() {
            let substitute = diagonal + usize::from(needle[i - 1] != *h);
            diagonal = column[i];
            column[i] = substitute.min(column[i] + 1).min(column[i - 1] + 1);
        }
        if column[needle.len()] <= max_edits {
            let end = j + 1;
            return Some((end.saturating_sub(needle.len()), end));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fabricated_quote_is_rejected_and_a_real_one_accepted() {
        let p = "LUHMES cells are seeded at 100,000 cells per well on day 0.";
        assert!(is_in("seeded at 100,000 cells per well", p));
        assert!(!is_in("seeded at 250,000 cells per well", p), "a changed number in a short quote");
        assert!(!is_in("cells are cultured on Matrigel", p));
        assert!(!is_in("cells", p), "too short to prove anything");
    }

    #[test]
    fn whitespace_line_breaks_hyphenation_ligatures_and_case_do_not_matter() {
        let p = "The  assay   detects neuro-\ntoxicity\nof com-\npounds; the ﬁnal “readout” is\nNEURITE area.";
        assert!(is_in("detects neurotoxicity of compounds", p));
        assert!(is_in("the final \"readout\" is neurite area", p));
        assert!(is_in("assay detects neuro- toxicity", p));
        assert!(is_in("detects neurotoxicity … neurite area", p), "parts in order");
        assert!(!is_in("neurite area … detects neurotoxicity", p), "parts out of order");
    }

    #[test]
    fn a_small_slip_in_a_long_quote_is_tolerated() {
        let p = "Spheroids mature for 14 days with half-medium changes every 48 hours before exposure starts.";
        assert!(is_in("Spheroids mature for 14 days with half medium changes every 48 hour before exposure", p));
        assert!(!is_in("Spheroids mature for 21 days with full medium changes every 24 hours before", p));
    }

    #[test]
    fn the_quote_is_located_in_the_original_text_for_highlighting() {
        let passage = "Spheroids ﬁrst mature for 14 days.\nThen the com-\npounds are added.";
        let (start, end) = locate("the compounds are added", passage).unwrap();
        let marked: String = passage.chars().skip(start).take(end - start).collect();
        assert_eq!(marked, "the com-\npounds are added");
        let (start, end) = locate("spheroids first mature", passage).unwrap();
        assert_eq!(passage.chars().skip(start).take(end - start).collect::<String>(), "Spheroids ﬁrst mature");
    }
}
