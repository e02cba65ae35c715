//! Per-format text extraction. Runs inside the `extract-text` child process; each reader
//! still bounds what it reads (zip entries, cells, characters), because the limits of the
//! child are the last line of defence, not the first.

use std::io::{BufReader, Read};
use std::path::Path;

use anyhow::{Context, bail};
use quick_xml::events::Event;

use super::DocumentKind;

/// Largest XML part we decompress from a DOCX/PPTX (zip bombs declare small sizes and lie).
const MAX_XML_BYTES: u64 = 64 * 1024 * 1024;
/// Largest text file we read.
const MAX_TEXT_BYTES: u64 = 32 * 1024 * 1024;
/// Cells read from a spreadsheet.
const MAX_CELLS: usize = 500_000;
/// Slides read from a presentation.
const MAX_SLIDES: usize = 2000;

/// The text of the document, stopping soon after `max_chars` characters.
pub fn extract_in_process(kind: DocumentKind, path: &Path, max_chars: usize) -> anyhow::Result<String> {
    match kind {
        DocumentKind::Pdf => pdf(path),
        DocumentKind::Docx => docx(path, max_chars),
        DocumentKind::Pptx => pptx(path, max_chars),
        DocumentKind::Xlsx | DocumentKind::Xls => spreadsheet(path),
        DocumentKind::Html => html(path),
        DocumentKind::Json => json(path),
        DocumentKind::Txt | DocumentKind::Md | DocumentKind::Csv => plain(path),
        _ => Ok(String::new()),
    }
}

fn read_limited(path: &Path, limit: u64) -> anyhow::Result<Vec<u8>> {
    let mut data = Vec::new();
    std::fs::File::open(path)?.take(limit).read_to_end(&mut data)?;
    Ok(data)
}

fn plain(path: &Path) -> anyhow::Result<String> {
    let data = read_limited(path, MAX_TEXT_BYTES)?;
    let text = String::from_utf8_lossy(&data);
    Ok(text.strip_prefix('\u{feff}').unwrap_or(&text).to_owned())
}

fn json(path: &Path) -> anyhow::Result<String> {
    let text = plain(path)?;
    // serde_json refuses nesting deeper than 128 levels instead of overflowing the stack.
    serde_json::from_str::<serde_json::Value>(&text).context("the JSON is not valid")?;
    Ok(text)
}

fn html(path: &Path) -> anyhow::Result<String> {
    let data = read_limited(path, MAX_TEXT_BYTES)?;
    html2text::from_read(&data[..], 100).context("the HTML could not be read")
}

fn pdf(path: &Path) -> anyhow::Result<String> {
    // pdf-extract panics on some damaged files; a panic is an error here, not a crash.
    let path = path.to_owned();
    match std::panic::catch_unwind(move || pdf_extract::extract_text(&path)) {
        Ok(result) => Ok(result.context("the PDF could not be read")?),
        Err(_) => bail!("the PDF could not be read (damaged file)"),
    }
}

/// Concatenated text of the `text_tag` elements of an Office XML part, a line per
/// `para_tag` element; stops once `out` holds `max_chars` bytes.
fn office_xml_text(
    xml: impl Read,
    text_tag: &[u8],
    para_tag: &[u8],
    out: &mut String,
    max_chars: usize,
) -> anyhow::Result<()> {
    let mut reader = quick_xml::Reader::from_reader(BufReader::new(xml));
    let mut buf = Vec::new();
    let mut in_text = false;
    loop {
        if out.len() >= max_chars {
            return Ok(());
        }
        match reader.read_event_into(&mut buf)? {
            Event::Start(e) if e.name().as_ref() == text_tag => in_text = true,
            Event::End(e) if e.name().as_ref() == text_tag => in_text = false,
            Event::End(e) if e.name().as_ref() == para_tag => out.push('\n'),
            Event::Empty(e) if e.name().as_ref() == b"w:tab" => out.push('\t'),
            Event::Text(t) if in_text => out.push_str(&t.decode()?),
            Event::GeneralRef(r) if in_text => {
                if let Some(ch) = r.resolve_char_ref()? {
                    out.push(ch);
                } else {
                    let name = r.decode()?;
                    out.push_str(match name.as_ref() {
                        "amp" => "&",
                        "lt" => "<",
                        "gt" => ">",
                        "quot" => "\"",
                        "apos" => "'",
                        _ => "",
                    });
                }
            }
            Event::Eof => return Ok(()),
            _ => {}
        }
        buf.clear();
    }
}

fn open_zip(path: &Path) -> anyhow::Result<zip::ZipArchive<std::fs::File>> {
    zip::ZipArchive::new(std::fs::File::open(path)?).context("not a valid Office file (zip)")
}

fn docx(path: &Path, max_chars: usize) -> anyhow::Result<String> {
    let mut zip = open_zip(path)?;
    let part = zip.by_name("word/document.xml").context("no word/document.xml inside")?;
    let mut text = String::new();
    office_xml_text(part.take(MAX_XML_BYTES), b"w:t", b"w:p", &mut text, max_chars)?;
    Ok(text)
}

fn pptx(path: &Path, max_chars: usize) -> anyhow::Result<String> {
    let mut zip = open_zip(path)?;
    let mut slides: Vec<(u32, String)> = zip
        .file_names()
        .filter_map(|name| {
            let name = name.ok()?;
            let n = name.strip_prefix("ppt/slides/slide")?.strip_suffix(".xml")?.parse().ok()?;
            Some((n, name.into_owned()))
        })
        .collect();
    slides.sort();
    let mut text = String::new();
    for (n, name) in slides.into_iter().take(MAX_SLIDES) {
        text.push_str(&format!("--- slide {n} ---\n"));
        let part = zip.by_name(&name)?;
        office_xml_text(part.take(MAX_XML_BYTES), b"a:t", b"a:p", &mut text, max_chars)?;
    }
    Ok(text)
}

fn spreadsheet(path: &Path) -> anyhow::Result<String> {
    use calamine::{Reader, open_workbook_auto};
    let mut book = open_workbook_auto(path).context("the spreadsheet could not be opened")?;
    let mut text = String::new();
    let mut cells = 0usize;
    for name in book.sheet_names() {
        let Ok(range) = book.worksheet_range(&name) else { continue };
        text.push_str(&format!("--- sheet {name} ---\n"));
        for row in range.rows() {
            let line: Vec<String> = row.iter().map(|c| c.to_string()).collect();
            cells += line.len();
            text.push_str(line.join("\t").trim_end());
            text.push('\n');
            if cells >= MAX_CELLS {
                text.push_str("[… spreadsheet truncated]\n");
                return Ok(text);
            }
        }
    }
    Ok(text)
}
