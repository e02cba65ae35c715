//! Answers as HTML and Markdown. Everything a model or a person typed is escaped first;
//! only then do citations become badges (`[n]` → the evidence of citation n; the older
//! `_(Source: …)_` form → a plain badge).

use super::export::{Metadata, size};
use super::{AnswerSheet, EvidenceView};

pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Answer text as HTML: everything escaped first, then citation markers become badges and
/// blank lines paragraphs. A verified citation's badge links to its evidence; one that could
/// not be verified is shown as such, never as evidence.
pub fn render_answer(text: &str, question_id: i32, evidence: &[EvidenceView]) -> String {
    let escaped = escape(text.trim());
    let mut html = String::new();
    for para in escaped.split("\n\n").filter(|p| !p.trim().is_empty()) {
        let para = legacy_badges(para);
        let para = numbered_badges(&para, question_id, evidence);
        html.push_str(&format!("<p>{}</p>", para.replace('\n', "<br>")));
    }
    html
}

/// `[n]` → the badge of citation n (escaped text: `[` and `]` are not escaped).
fn numbered_badges(para: &str, question_id: i32, evidence: &[EvidenceView]) -> String {
    let mut out = String::new();
    let mut rest = para;
    while let Some(open) = rest.find('[') {
        let Some(close) = rest[open..].find(']') else { break };
        let number = rest[open + 1..open + close].parse::<i32>().ok();
        let cited = number.and_then(|n| evidence.iter().find(|e| e.number == n));
        out.push_str(&rest[..open]);
        match cited {
            Some(e) if e.verified => out.push_str(&format!(
                "<a class=\"citation badge text-bg-light\" href=\"#ev-{question_id}-{}\" data-evidence=\"ev-{question_id}-{}\">{}</a>",
                e.number,
                e.number,
                escape(&e.badge())
            )),
            Some(e) => out.push_str(&format!(
                "<span class=\"citation-unverified badge text-bg-warning\" title=\"This citation could not be verified\">[{}] unverified</span>",
                e.number
            )),
            None => out.push_str(&rest[open..=open + close]),
        }
        rest = &rest[open + close + 1..];
    }
    out.push_str(rest);
    out
}

/// Answers from before evidence was checked cite `_(Source: name)_`: a plain badge.
fn legacy_badges(para: &str) -> String {
    let mut rest = para;
    let mut out = String::new();
    while let Some(start) = rest.find("_(Source:") {
        let Some(end) = rest[start..].find(")_") else { break };
        out.push_str(&rest[..start]);
        let source = rest[start + 9..start + end].trim();
        out.push_str(&format!("<span class=\"citation badge text-bg-light\">Source: {source}</span>"));
        rest = &rest[start + end + 2..];
    }
    out.push_str(rest);
    out
}

/// The sheet as Markdown, with the export metadata under the title.
pub fn markdown(sheet: &AnswerSheet, meta: &Metadata) -> String {
    let mut md = format!("# {}\n\n", sheet.assay_title);
    if !sheet.scope.is_empty() {
        md.push_str(&format!("_Scope:_ {}\n\n", sheet.scope));
    }
    for (label, value) in meta.lines() {
        md.push_str(&format!("- **{label}:** {value}\n"));
    }
    md.push_str("\n**Kept documents**\n\n");
    if meta.documents.is_empty() {
        md.push_str("None: the documents were not kept.\n");
    }
    for d in &meta.documents {
        md.push_str(&format!("- {} ({}) · SHA-256 {}\n", d.name, size(d.size_bytes), d.sha256));
    }
    md.push('\n');
    for section in &sheet.sections {
        md.push_str(&format!("## {}\n\n", section.title));
        let mut last_subsection = "";
        for q in &section.questions {
            if q.subsection != last_subsection {
                md.push_str(&format!("### {}\n\n", q.subsection));
                last_subsection = &q.subsection;
            }
            md.push_str(&format!("**{}**{}\n\n", q.question, if q.accepted { " ✓ accepted" } else { "" }));
            match q.answer.as_deref() {
                Some(a) if !a.trim().is_empty() => md.push_str(&format!("{}\n\n", a.trim())),
                _ => md.push_str("_Not answered yet._\n\n"),
            }
            // Like every export: an unverified citation is named, never quoted as evidence.
            for e in &q.evidence {
                md.push_str(&format!("- {}", super::export::citation_line(e)));
                if e.verified {
                    md.push_str(" (verified)");
                    if let Some(sha) = &e.sha256 {
                        md.push_str(&format!(" · SHA-256 {sha}"));
                    }
                }
                md.push('\n');
            }
            if !q.evidence.is_empty() {
                md.push('\n');
            }
        }
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::Location;

    fn evidence(number: i32, verified: bool) -> EvidenceView {
        EvidenceView {
            number,
            document: "sop<1>.pdf".into(),
            sha256: None,
            location: "page 3".into(),
            place: Location { page: Some(3), ..Default::default() },
            quote: "seeded".into(),
            verified,
            passage: None,
            kept: false,
        }
    }

    #[test]
    fn citation_markers_become_evidence_badges_or_unverified_flags() {
        let html =
            render_answer("Seeded [1] and grown [2] in [3] <b>x</b>.", 7, &[evidence(1, true), evidence(2, false)]);
        assert!(html.contains("<a class=\"citation badge text-bg-light\" href=\"#ev-7-1\" data-evidence=\"ev-7-1\">sop&lt;1&gt;.pdf · page 3</a>"), "{html}");
        assert!(html.contains("[2] unverified</span>"), "{html}");
        assert!(html.contains(" in [3] &lt;b&gt;x&lt;/b&gt;."), "an unknown marker stays text: {html}");
    }

    #[test]
    fn answers_are_escaped_and_citations_become_badges() {
        let html = render_answer(
            "Cells <script>alert(1)</script> & co _(Source: sop.pdf)_.\n\nSecond _(Source: a\"b.docx)_",
            1,
            &[],
        );
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; co"));
        assert!(html.contains("<span class=\"citation badge text-bg-light\">Source: sop.pdf</span>."));
        assert!(html.contains("Source: a&quot;b.docx"));
        assert_eq!(html.matches("<p>").count(), 2);
        assert!(!html.contains("<script>"));
    }
}
