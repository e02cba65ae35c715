//! The answers as a Word document (Office Open XML), written with the `zip` crate we already
//! use: the five parts Word needs (content types, relationships, the document, its styles,
//! the core properties with title and authors). Headings use Word's built-in style names, so
//! Word's navigation pane and our own extractor see the sections.

use std::io::Write;

use zip::write::SimpleFileOptions;

use super::{AnswerSheet, Metadata, Status, answer_text, citation_line, size, title};

const CONTENT_TYPES: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/><Override PartName="/word/styles.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.styles+xml"/><Override PartName="/docProps/core.xml" ContentType="application/vnd.openxmlformats-package.core-properties+xml"/></Types>"#;

const RELS: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="word/document.xml"/><Relationship Id="rId2" Type="http://schemas.openxmlformats.org/package/2006/relationships/metadata/core-properties" Target="docProps/core.xml"/></Relationships>"#;

const DOCUMENT_RELS: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/styles" Target="styles.xml"/></Relationships>"#;

const STYLES: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<w:styles xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:docDefaults><w:rPrDefault><w:rPr><w:rFonts w:ascii="Calibri" w:hAnsi="Calibri" w:cs="Calibri"/><w:sz w:val="21"/></w:rPr></w:rPrDefault><w:pPrDefault><w:pPr><w:spacing w:after="120"/></w:pPr></w:pPrDefault></w:docDefaults><w:style w:type="paragraph" w:default="1" w:styleId="Normal"><w:name w:val="Normal"/></w:style><w:style w:type="paragraph" w:styleId="Title"><w:name w:val="Title"/><w:basedOn w:val="Normal"/><w:next w:val="Normal"/><w:rPr><w:b/><w:sz w:val="40"/></w:rPr></w:style><w:style w:type="paragraph" w:styleId="Heading1"><w:name w:val="heading 1"/><w:basedOn w:val="Normal"/><w:next w:val="Normal"/><w:pPr><w:keepNext/><w:spacing w:before="360"/><w:outlineLvl w:val="0"/></w:pPr><w:rPr><w:b/><w:sz w:val="30"/></w:rPr></w:style><w:style w:type="paragraph" w:styleId="Heading2"><w:name w:val="heading 2"/><w:basedOn w:val="Normal"/><w:next w:val="Normal"/><w:pPr><w:keepNext/><w:spacing w:before="240"/><w:outlineLvl w:val="1"/></w:pPr><w:rPr><w:b/><w:color w:val="555555"/><w:sz w:val="24"/></w:rPr></w:style><w:style w:type="paragraph" w:styleId="Question"><w:name w:val="Question"/><w:basedOn w:val="Normal"/><w:pPr><w:keepNext/></w:pPr><w:rPr><w:b/></w:rPr></w:style><w:style w:type="paragraph" w:styleId="Evidence"><w:name w:val="Evidence"/><w:basedOn w:val="Normal"/><w:pPr><w:ind w:left="360"/><w:spacing w:after="60"/></w:pPr><w:rPr><w:sz w:val="18"/></w:rPr></w:style></w:styles>"#;

/// A run of text with its look.
#[derive(Default)]
struct Run<'a> {
    text: &'a str,
    bold: bool,
    italic: bool,
    mono: bool,
}

fn run(text: &str) -> Run<'_> {
    Run { text, ..Default::default() }
}

/// Text for an XML text node or attribute: escaped, characters XML 1.0 forbids dropped.
fn xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\t' | '\n' | '\r' => out.push(' '),
            c if (c as u32) < 0x20 || matches!(c, '\u{FFFE}' | '\u{FFFF}') => {}
            c => out.push(c),
        }
    }
    out
}

/// One paragraph; a line break inside a run becomes `<w:br/>`.
fn paragraph(body: &mut String, style: Option<&str>, runs: &[Run<'_>]) {
    body.push_str("<w:p>");
    if let Some(style) = style {
        body.push_str(&format!("<w:pPr><w:pStyle w:val=\"{style}\"/></w:pPr>"));
    }
    for r in runs {
        let mut props = String::new();
        if r.bold {
            props.push_str("<w:b/>");
        }
        if r.italic {
            props.push_str("<w:i/>");
        }
        if r.mono {
            props.push_str("<w:rFonts w:ascii=\"Consolas\" w:hAnsi=\"Consolas\"/><w:sz w:val=\"18\"/>");
        }
        body.push_str("<w:r>");
        if !props.is_empty() {
            body.push_str(&format!("<w:rPr>{props}</w:rPr>"));
        }
        for (i, line) in r.text.split('\n').enumerate() {
            if i > 0 {
                body.push_str("<w:br/>");
            }
            body.push_str(&format!("<w:t xml:space=\"preserve\">{}</w:t>", xml(line)));
        }
        body.push_str("</w:r>");
    }
    body.push_str("</w:p>");
}

fn document_xml(sheet: &AnswerSheet, meta: &Metadata) -> String {
    let mut body = String::with_capacity(128 * 1024);
    paragraph(&mut body, Some("Title"), &[run(&sheet.assay_title)]);
    if !sheet.scope.is_empty() {
        paragraph(&mut body, None, &[Run { text: "Scope: ", italic: true, ..run("") }, run(&sheet.scope)]);
    }
    for (label, value) in meta.lines() {
        let label = format!("{label}: ");
        paragraph(&mut body, None, &[Run { text: &label, bold: true, ..run("") }, run(&value)]);
    }
    paragraph(&mut body, Some("Heading1"), &[run("Kept documents")]);
    if meta.documents.is_empty() {
        paragraph(&mut body, None, &[run("None: the documents were not kept.")]);
    }
    for d in &meta.documents {
        let size = format!(" ({}) — SHA-256 ", size(d.size_bytes));
        paragraph(
            &mut body,
            None,
            &[Run { text: &d.name, bold: true, ..run("") }, run(&size), Run { text: &d.sha256, mono: true, ..run("") }],
        );
    }
    for section in &sheet.sections {
        paragraph(&mut body, Some("Heading1"), &[run(&section.title)]);
        for q in &section.questions {
            if !q.is_subquestion {
                paragraph(&mut body, Some("Heading2"), &[run(&q.subsection)]);
            }
            let status = format!("  [{}]", Status::of(q).label());
            paragraph(&mut body, Some("Question"), &[run(&q.question), Run { text: &status, italic: true, ..run("") }]);
            for para in answer_text(q).split("\n\n").filter(|p| !p.trim().is_empty()) {
                paragraph(&mut body, None, &[run(para.trim())]);
            }
            for e in &q.evidence {
                let line = citation_line(e);
                paragraph(&mut body, Some("Evidence"), &[Run { text: &line, italic: !e.verified, ..run("") }]);
            }
        }
    }
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n<w:document xmlns:w=\"http://schemas.openxmlformats.org/wordprocessingml/2006/main\"><w:body>{body}<w:sectPr><w:pgSz w:w=\"11906\" w:h=\"16838\"/><w:pgMar w:top=\"1134\" w:right=\"1134\" w:bottom=\"1134\" w:left=\"1134\" w:header=\"567\" w:footer=\"567\" w:gutter=\"0\"/></w:sectPr></w:body></w:document>"
    )
}

fn core_xml(sheet: &AnswerSheet, meta: &Metadata) -> String {
    let authors: Vec<String> = meta.authors.iter().map(|a| a.label()).collect();
    let created = crate::db::now().format("%Y-%m-%dT%H:%M:%SZ");
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n<cp:coreProperties xmlns:cp=\"http://schemas.openxmlformats.org/package/2006/metadata/core-properties\" xmlns:dc=\"http://purl.org/dc/elements/1.1/\" xmlns:dcterms=\"http://purl.org/dc/terms/\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\"><dc:title>{}</dc:title><dc:subject>{}</dc:subject><dc:creator>{}</dc:creator><dc:description>{}</dc:description><dcterms:created xsi:type=\"dcterms:W3CDTF\">{created}</dcterms:created></cp:coreProperties>",
        xml(&title(sheet)),
        xml(&meta.assay_path()),
        xml(&authors.join("; ")),
        xml(&format!("Exported by ToxTempAssistant {}; model(s): {}", meta.app_version, meta.models.join(", "))),
    )
}

/// The `.docx` file.
pub fn render(sheet: &AnswerSheet, meta: &Metadata) -> anyhow::Result<Vec<u8>> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    let parts = [
        ("[Content_Types].xml", CONTENT_TYPES.to_owned()),
        ("_rels/.rels", RELS.to_owned()),
        ("docProps/core.xml", core_xml(sheet, meta)),
        ("word/_rels/document.xml.rels", DOCUMENT_RELS.to_owned()),
        ("word/styles.xml", STYLES.to_owned()),
        ("word/document.xml", document_xml(sheet, meta)),
    ];
    for (name, body) in parts {
        zip.start_file(name, options)?;
        zip.write_all(body.as_bytes())?;
    }
    Ok(zip.finish()?.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_and_characters_xml_forbids_are_dropped() {
        assert_eq!(xml("a<b>&\"c\u{1}\u{FFFF}µ≥"), "a&lt;b&gt;&amp;&quot;cµ≥");
        let mut body = String::new();
        paragraph(&mut body, Some("Evidence"), &[run("one\ntwo")]);
        assert_eq!(
            body,
            "<w:p><w:pPr><w:pStyle w:val=\"Evidence\"/></w:pPr><w:r><w:t xml:space=\"preserve\">one</w:t><w:br/><w:t xml:space=\"preserve\">two</w:t></w:r></w:p>"
        );
    }
}
