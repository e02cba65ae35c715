//! Word-level differences between two versions of an answer, as safe HTML: what went is
//! struck through (`<del>`), what came is marked (`<ins>`), the rest is plain text. Both
//! texts are escaped first, like every other text a model or a person typed.

use similar::{ChangeTag, TextDiff};

use super::render::escape;

/// `old` → `new`, word by word (whitespace kept, so line breaks stay where they were).
/// Neighbouring changes separated only by spaces read as one change: "<del>two three</del>
/// <ins>four five</ins>", not four fragments.
pub fn word_diff_html(old: &str, new: &str) -> String {
    let diff = TextDiff::from_words(old, new);
    let mut out = Pending::default();
    for change in diff.iter_all_changes() {
        let text = change.value();
        match change.tag() {
            ChangeTag::Delete => out.change(text, ""),
            ChangeTag::Insert => out.change("", text),
            ChangeTag::Equal if text.trim().is_empty() && out.changing() => out.gap.push_str(text),
            ChangeTag::Equal => out.same(text),
        }
    }
    out.same("");
    out.html
}

/// The change being collected: what went, what came, and spaces that may belong to it.
#[derive(Default)]
struct Pending {
    html: String,
    removed: String,
    added: String,
    gap: String,
}

impl Pending {
    fn changing(&self) -> bool {
        !self.removed.is_empty() || !self.added.is_empty()
    }

    fn change(&mut self, removed: &str, added: &str) {
        // Spaces between two changes belong to both sides of the joined change.
        let gap = std::mem::take(&mut self.gap);
        if !self.removed.is_empty() || !removed.is_empty() {
            self.removed.push_str(if self.removed.is_empty() { "" } else { &gap });
        }
        if !self.added.is_empty() || !added.is_empty() {
            self.added.push_str(if self.added.is_empty() { "" } else { &gap });
        }
        self.removed.push_str(removed);
        self.added.push_str(added);
    }

    fn same(&mut self, text: &str) {
        if !self.removed.is_empty() {
            self.html.push_str(&format!("<del class=\"diff-del\">{}</del>", escape(&self.removed)));
        }
        if !self.added.is_empty() {
            self.html.push_str(&format!("<ins class=\"diff-ins\">{}</ins>", escape(&self.added)));
        }
        self.removed.clear();
        self.added.clear();
        self.html.push_str(&escape(&std::mem::take(&mut self.gap)));
        self.html.push_str(&escape(text));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changed_words_are_marked_and_the_rest_stays() {
        let html = word_diff_html("Cells are seeded at 100 cells per well.", "Cells are seeded at 200 cells per well.");
        assert_eq!(
            html,
            "Cells are seeded at <del class=\"diff-del\">100</del><ins class=\"diff-ins\">200</ins> cells per well."
        );
    }

    #[test]
    fn both_sides_are_escaped() {
        let html = word_diff_html("a <b>", "a <script>alert(1)</script>");
        assert!(!html.contains("<script>") && !html.contains("<b>"), "{html}");
        assert!(html.contains("&lt;script&gt;"));
    }

    #[test]
    fn a_run_of_changes_is_one_element() {
        let html = word_diff_html("one two three", "one four five");
        assert_eq!(html, "one <del class=\"diff-del\">two three</del><ins class=\"diff-ins\">four five</ins>");
    }

    #[test]
    fn an_insertion_between_kept_words_keeps_their_spaces() {
        assert_eq!(word_diff_html("a c", "a b c"), "a <ins class=\"diff-ins\">b </ins>c");
        assert_eq!(word_diff_html("", "new"), "<ins class=\"diff-ins\">new</ins>");
        assert_eq!(word_diff_html("same", "same"), "same");
    }
}
