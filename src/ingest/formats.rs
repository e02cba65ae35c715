//! Per-format text extraction. Runs inside the `extract-text` child process; each reader
//! still bounds what it reads (zip entries, cells, characters), because the limits of the
//! child are the last line of defence, not the first.

use std::io::{BufReader, Read};
use std::path::Path;

use anyhow::{Context, bail};
use quick_xml::events::Event;

use super::DocumentKind;
use super::passages::{Location, Segment};

/// Largest XML part we decompress from a DOCX/PPTX (zip bombs declare small sizes and lie).
const MAX_XML_BYTES: u64 = 64 * 1024 * 1024;
/// Largest text file we read.
const MAX_TEXT_BYTES: u64 = 32 * 1024 * 1024;
/// Cells read from a spreadsheet.
const MAX_CELLS: usize = 500_000;
/// Slides read from a presentation.
const MAX_SLIDES: usize = 2000;

/// Rows of a spreadsheet that make one segment (and so at most one passage).
const ROWS_PER_SEGMENT: usize = 20;

/// The text of the document as located segments, stopping soon after `max_chars` characters.
pub fn extract_in_process(kind: DocumentKind, path: &Path, max_chars: usize) -> anyhow::Result<Vec<Segment>> {
    let whole = |text: String| vec![Segment { location: Location::default(), text }];
    Ok(match kind {
        DocumentKind::Pdf => pdf(path)?,
        DocumentKind::Docx => docx(path, max_chars)?,
        DocumentKind::Pptx => pptx(path, max_chars)?,
        DocumentKind::Xlsx | DocumentKind::Xls => spreadsheet(path)?,
        DocumentKind::Html => whole(html(path)?),
        DocumentKind::Json => whole(json(path)?),
        DocumentKind::Txt | DocumentKind::Md | DocumentKind::Csv => whole(plain(path)?),
        _ => Vec::new(),
    })
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

/// One segment per page.
fn pdf(path: &Path) -> anyhow::Result<Vec<Segment>> {
    // pdf-extract panics on some damaged files; a panic is an error here, not a crash.
    let path = path.to_owned();
    let pages = match std::panic::catch_unwind(move || pdf_extract::extract_text_by_pages(&path)) {
        Ok(result) => result.context("the PDF could not be read")?,
        Err(_) => bail!("the PDF could not be read (damaged file)"),
    };
    Ok(pages
        .into_iter()
        .enumerate()
        .map(|(i, text)| Segment { location: Location { page: Some(i as u32 + 1), ..Default::default() }, text })
        .collect())
}

/// Word heading styles (`Heading1`…`Heading9`, `Title`) as a Markdown level.
fn heading_level(style: &[u8]) -> Option<usize> {
    let style = std::str::from_utf8(style).ok()?.to_ascii_lowercase();
    if style == "title" {
        return Some(1);
    }
    style.strip_prefix("heading")?.trim().parse().ok().filter(|l| (1..=9).contains(l))
}

/// Calls `paragraph(heading level, text)` for each `para_tag` element of an Office XML part
/// (the text of its `text_tag` elements); stops once `budget` characters were read.
fn office_paragraphs(
    xml: impl Read,
    text_tag: &[u8],
    para_tag: &[u8],
    budget: &mut usize,
    mut paragraph: impl FnMut(Option<usize>, String),
) -> anyhow::Result<()> {
    let mut reader = quick_xml::Reader::from_reader(BufReader::new(xml));
    let mut buf = Vec::new();
    let (mut in_text, mut text, mut level) = (false, String::new(), None);
    loop {
        if *budget == 0 {
            return Ok(());
        }
        match reader.read_event_into(&mut buf)? {
            Event::Start(e) if e.name().as_ref() == text_tag => in_text = true,
            Event::End(e) if e.name().as_ref() == text_tag => in_text = false,
            Event::End(e) if e.name().as_ref() == para_tag => {
                *budget = budget.saturating_sub(text.len() + 1);
                paragraph(level.take(), std::mem::take(&mut text));
            }
            Event::Empty(e) if e.name().as_ref() == b"w:pStyle" => {
                level = e.try_get_attribute("w:val")?.and_then(|v| heading_level(&v.value));
            }
            Event::Empty(e) if e.name().as_ref() == b"w:tab" => text.push('\t'),
            Event::Text(t) if in_text => text.push_str(&t.decode()?),
            Event::GeneralRef(r) if in_text => {
                if let Some(ch) = r.resolve_char_ref()? {
                    text.push(ch);
                } else {
                    let name = r.decode()?;
                    text.push_str(match name.as_ref() {
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

/// One segment per paragraph (located by its number); heading styles become `#` lines.
fn docx(path: &Path, max_chars: usize) -> anyhow::Result<Vec<Segment>> {
    let mut zip = open_zip(path)?;
    let part = zip.by_name("word/document.xml").context("no word/document.xml inside")?;
    let mut segments = Vec::new();
    let mut budget = max_chars;
    let mut number = 0u32;
    office_paragraphs(part.take(MAX_XML_BYTES), b"w:t", b"w:p", &mut budget, |level, text| {
        number += 1;
        if text.trim().is_empty() {
            return;
        }
        let text = match level {
            Some(level) => format!("{} {}", "#".repeat(level), text.trim()),
            None => text,
        };
        segments.push(Segment { location: Location { paragraph: Some(number), ..Default::default() }, text });
    })?;
    Ok(segments)
}

/// One segment per slide.
fn pptx(path: &Path, max_chars: usize) -> anyhow::Result<Vec<Segment>> {
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
    let mut segments = Vec::new();
    let mut budget = max_chars;
    for (n, name) in slides.into_iter().take(MAX_SLIDES) {
        let part = zip.by_name(&name)?;
        let mut lines = Vec::new();
        office_paragraphs(part.take(MAX_XML_BYTES), b"a:t", b"a:p", &mut budget, |_, text| lines.push(text))?;
        let location = Location { slide: Some(n), ..Default::default() };
        segments.push(Segment { location, text: lines.join("\n") });
    }
    Ok(segments)
}

/// One segment per block of rows of each sheet. XLSX sheets are streamed cell by cell, so a
/// sheet that declares (or has) cells at A1 and XFD1048576 costs two cells, not the 17 billion
/// a rectangular range would allocate; XLS sheets are small by format (65 536 × 256 at most).
fn spreadsheet(path: &Path) -> anyhow::Result<Vec<Segment>> {
    use calamine::{Reader, Sheets, open_workbook_auto};
    let mut book = open_workbook_auto(path).context("the spreadsheet could not be opened")?;
    let mut sheets = Sheet::default();
    for name in book.sheet_names() {
        match &mut book {
            Sheets::Xlsx(xlsx) => {
                let Ok(mut cells) = xlsx.worksheet_cells_reader(&name) else { continue };
                while let Some(cell) = cells.next_cell().context("the spreadsheet could not be read")? {
                    let (row, col) = cell.get_position();
                    let value = calamine::Data::from(cell.get_value().clone()).to_string();
                    if !sheets.cell(&name, row, col, value) {
                        break;
                    }
                }
            }
            other => {
                let Ok(range) = other.worksheet_range(&name) else { continue };
                for (row, col, value) in range.used_cells() {
                    if !sheets.cell(&name, row as u32, col as u32, value.to_string()) {
                        break;
                    }
                }
            }
        }
        sheets.end_sheet();
        if sheets.cells >= MAX_CELLS {
            break;
        }
    }
    Ok(sheets.segments)
}

/// Cells gathered into rows (tab-separated, in column order) and rows into segments.
#[derive(Default)]
struct Sheet {
    segments: Vec<Segment>,
    name: String,
    /// (row from 1, its cells) of the rows not yet in a segment.
    rows: Vec<(u32, Vec<String>)>,
    cells: usize,
}

impl Sheet {
    /// Add a cell (rows in order, as both readers give them); false once enough were read.
    fn cell(&mut self, sheet: &str, row: u32, _col: u32, value: String) -> bool {
        if self.name != sheet {
            self.end_sheet();
            self.name = sheet.to_owned();
        }
        self.cells += 1;
        match self.rows.last_mut() {
            Some((r, cells)) if *r == row + 1 => cells.push(value),
            _ => {
                if self.rows.len() == ROWS_PER_SEGMENT {
                    self.flush();
                }
                self.rows.push((row + 1, vec![value]));
            }
        }
        self.cells < MAX_CELLS
    }

    fn flush(&mut self) {
        let (Some(first), Some(last)) = (self.rows.first().map(|r| r.0), self.rows.last().map(|r| r.0)) else { return };
        let text =
            self.rows.drain(..).map(|(_, cells)| cells.join("\t").trim_end().to_owned()).collect::<Vec<_>>().join("\n");
        let location = Location { sheet: Some(self.name.clone()), rows: Some((first, last)), ..Default::default() };
        self.segments.push(Segment { location, text });
    }

    fn end_sheet(&mut self) {
        self.flush();
    }
}
