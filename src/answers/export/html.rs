//! The answers as one self-contained HTML file: an inline stylesheet, no scripts, no images,
//! no link but in-page anchors (a citation badge jumps to its evidence). Every text a person
//! or a model wrote goes through the escaping of `answers::render`.

use super::super::render::{escape, render_answer};
use super::{AnswerSheet, Metadata, Status, answer_text, citation_line, size, title};

const STYLE: &str = "body{font-family:'DejaVu Sans',Arial,sans-serif;max-width:52rem;margin:2rem auto;padding:0 1rem;line-height:1.45;color:#222}\
h1{font-size:1.6rem}h2{font-size:1.25rem;border-bottom:1px solid #ccc;padding-bottom:.2rem;margin-top:2rem}\
h3{font-size:1rem;color:#555;margin-bottom:.3rem}table{border-collapse:collapse;margin:.5rem 0}\
th,td{text-align:left;vertical-align:top;padding:.2rem .6rem .2rem 0}.sha256{font-family:'DejaVu Sans Mono',monospace,monospace;font-size:.85em;word-break:break-all}#contents ul{list-style:none;padding-left:0}\
.question{border:1px solid #ddd;border-radius:4px;padding:.6rem .8rem;margin:.8rem 0}.question.accepted{border-color:#198754}\
.question-text{font-weight:600}.status{font-size:.8em;padding:.05rem .4rem;border-radius:3px;background:#eee;margin-left:.4rem}\
.status.accepted{background:#d1e7dd}.status.not-found{background:#f8d7da}.citation{font-size:.8em;background:#eef;padding:0 .3rem;border-radius:3px;text-decoration:none}\
.citation-unverified{font-size:.8em;background:#fff3cd;padding:0 .3rem;border-radius:3px}\
.evidence{font-size:.9em;margin:.4rem 0 0;padding-left:1.2rem}.evidence .quote{font-style:italic}.unverified{color:#856404}";

/// The whole file.
pub fn render(sheet: &AnswerSheet, meta: &Metadata) -> String {
    let mut out = String::with_capacity(64 * 1024);
    out.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    out.push_str(&format!("<title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n", escape(&title(sheet))));
    out.push_str(&format!("<h1>{}</h1>\n", escape(&sheet.assay_title)));
    if !sheet.scope.is_empty() {
        out.push_str(&format!("<p id=\"scope\"><em>Scope:</em> {}</p>\n", escape(&sheet.scope)));
    }
    metadata(&mut out, meta);
    out.push_str(&format!(
        "<p id=\"progress\">{} accepted · {} drafted · {} questions · {} of {} citations verified</p>\n",
        sheet.accepted(),
        sheet.drafted(),
        sheet.total(),
        sheet.verified_citations(),
        sheet.citations()
    ));
    out.push_str("<nav id=\"contents\"><ul>\n");
    for s in &sheet.sections {
        out.push_str(&format!("<li><a href=\"#s{}\">{}</a></li>\n", s.position, escape(&s.title)));
    }
    out.push_str("</ul></nav>\n");
    for section in &sheet.sections {
        out.push_str(&format!("<section>\n<h2 id=\"s{}\">{}</h2>\n", section.position, escape(&section.title)));
        for q in &section.questions {
            let status = Status::of(q);
            let class = status.label().replace(' ', "-");
            out.push_str(&format!(
                "<div class=\"question {class}\" id=\"q{}\" data-status=\"{class}\">\n",
                q.question_id
            ));
            if !q.is_subquestion {
                out.push_str(&format!("<h3>{}</h3>\n", escape(&q.subsection)));
            }
            out.push_str(&format!(
                "<p class=\"question-text\">{}<span class=\"status {class}\">{}</span></p>\n",
                escape(&q.question),
                status.label()
            ));
            let answer = match q.answer.as_deref() {
                Some(a) if !a.trim().is_empty() => render_answer(a, q.question_id, &q.evidence),
                _ => format!("<p><em>{}</em></p>", answer_text(q)),
            };
            out.push_str(&format!("<div class=\"answer\">{answer}</div>\n"));
            if !q.evidence.is_empty() {
                out.push_str("<ul class=\"evidence\">\n");
                for e in &q.evidence {
                    if e.verified {
                        out.push_str(&format!(
                            "<li class=\"verified\" id=\"ev-{}-{}\">{}</li>\n",
                            q.question_id,
                            e.number,
                            evidence_html(e)
                        ));
                    } else {
                        out.push_str(&format!("<li class=\"unverified\">{}</li>\n", escape(&citation_line(e))));
                    }
                }
                out.push_str("</ul>\n");
            }
            out.push_str("</div>\n");
        }
        out.push_str("</section>\n");
    }
    out.push_str("</body>\n</html>\n");
    out
}

fn evidence_html(e: &super::EvidenceView) -> String {
    let mut html = format!("[{}] <span class=\"document\">{}</span>", e.number, escape(&e.document));
    if !e.location.is_empty() {
        html.push_str(&format!(", <span class=\"location\">{}</span>", escape(&e.location)));
    }
    if !e.quote.is_empty() {
        html.push_str(&format!(": <span class=\"quote\">“{}”</span>", escape(&e.quote)));
    }
    html
}

fn metadata(out: &mut String, meta: &Metadata) {
    out.push_str("<table id=\"metadata\">\n");
    for (label, value) in meta.lines() {
        out.push_str(&format!("<tr><th>{label}</th><td>{}</td></tr>\n", escape(&value)));
    }
    out.push_str("</table>\n");
    out.push_str("<h2 id=\"documents\">Kept documents</h2>\n");
    if meta.documents.is_empty() {
        out.push_str("<p>None: the documents were not kept.</p>\n");
        return;
    }
    out.push_str("<table id=\"kept-documents\">\n<tr><th>Document</th><th>Size</th><th>SHA-256</th></tr>\n");
    for d in &meta.documents {
        out.push_str(&format!(
            "<tr><td class=\"name\">{}</td><td>{}</td><td class=\"sha256\">{}</td></tr>\n",
            escape(&d.name),
            size(d.size_bytes),
            escape(&d.sha256)
        ));
    }
    out.push_str("</table>\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::answers::export::{Author, KeptDocument};
    use crate::answers::{EvidenceView, QuestionView, SectionView};

    const HOSTILE: &str = "<script>x()</script>\"><img src=x>";

    #[test]
    fn every_text_of_people_models_and_documents_is_escaped() {
        let evidence = |number, verified| EvidenceView {
            number,
            document: HOSTILE.into(),
            sha256: None,
            location: HOSTILE.into(),
            place: Default::default(),
            quote: HOSTILE.into(),
            verified,
            passage: None,
            kept: false,
        };
        let sheet = AnswerSheet {
            assay_id: 1,
            assay_title: HOSTILE.into(),
            scope: HOSTILE.into(),
            question_set: Some(HOSTILE.into()),
            sections: vec![SectionView {
                position: 1,
                title: HOSTILE.into(),
                questions: vec![QuestionView {
                    question_id: 7,
                    subsection: HOSTILE.into(),
                    guidance: String::new(),
                    question: HOSTILE.into(),
                    is_subquestion: false,
                    answer: Some(format!("{HOSTILE} [1] [2]")),
                    accepted: false,
                    sources: Vec::new(),
                    files: Vec::new(),
                    evidence: vec![evidence(1, true), evidence(2, false)],
                    history: Vec::new(),
                }],
            }],
        };
        let meta = Metadata {
            investigation: HOSTILE.into(),
            study: HOSTILE.into(),
            assay: HOSTILE.into(),
            question_set: Some(HOSTILE.into()),
            authors: vec![Author { name: HOSTILE.into(), email: HOSTILE.into(), role: "owner" }],
            models: vec![HOSTILE.into()],
            app_version: "0",
            exported_at: HOSTILE.into(),
            documents: vec![KeptDocument { name: HOSTILE.into(), size_bytes: 1, sha256: HOSTILE.into() }],
        };
        let html = render(&sheet, &meta);
        assert!(!html.contains("<script") && !html.contains("<img"), "{html}");
        assert!(html.contains("&lt;script&gt;x()&lt;/script&gt;&quot;&gt;&lt;img src=x&gt;"));
        assert!(html.contains("<li class=\"verified\" id=\"ev-7-1\">"), "the badge of [1] lands here");
        assert!(html.contains("<li class=\"unverified\">[2] could not be verified</li>"));
    }
}
