//! The answers as a PDF (A4), laid out by us and written with `lopdf` (which `pdf-extract`
//! already brings): text wrapped by the font's own glyph widths, page breaks where a page is
//! full, a title block with the metadata, a page footer.
//!
//! The text is in DejaVu Sans, embedded whole (`static/vendor/dejavu`, Bitstream Vera licence) as a
//! composite font — glyph ids as character codes (Identity-H) — with a ToUnicode map of every
//! glyph used, so µ, °, ≥, α or ü stay searchable and copyable, and our own extractor reads
//! the export back. A character the font lacks is written as `?`.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use lopdf::{Dictionary, Document, Object, Stream, StringFormat, dictionary};
use ttf_parser::{Face, GlyphId};

use super::{AnswerSheet, Metadata, Status, answer_text, citation_line, size, title};

static FONT: &[u8] = include_bytes!("../../../static/vendor/dejavu/DejaVuSans.ttf");

/// The font program, compressed once per process (it is most of every export's bytes).
static FONT_DEFLATED: LazyLock<Vec<u8>> = LazyLock::new(|| {
    let mut stream = Stream::new(Dictionary::new(), FONT.to_vec());
    match stream.compress() {
        Ok(()) if stream.dict.has(b"Filter") => stream.content,
        _ => Vec::new(),
    }
});

static FACE: LazyLock<Face<'static>> =
    LazyLock::new(|| Face::parse(FONT, 0).expect("the bundled font is a valid TrueType font"));

const PAGE_WIDTH: f32 = 595.28;
const PAGE_HEIGHT: f32 = 841.89;
const MARGIN: f32 = 56.0;
const TOP: f32 = PAGE_HEIGHT - MARGIN;
/// Text stops here; the footer is below it.
const BOTTOM: f32 = MARGIN + 14.0;
const WIDTH: f32 = PAGE_WIDTH - 2.0 * MARGIN;

/// How a block of text looks.
#[derive(Clone, Copy)]
struct Look {
    size: f32,
    /// Drawn with a thin outline as well (one font file, no separate bold).
    bold: bool,
    /// Grey level, 0 = black.
    grey: f32,
    indent: f32,
    /// Space after the block.
    after: f32,
}

const TITLE: Look = Look { size: 18.0, bold: true, grey: 0.0, indent: 0.0, after: 8.0 };
const SECTION: Look = Look { size: 14.0, bold: true, grey: 0.0, indent: 0.0, after: 4.0 };
const SUBSECTION: Look = Look { size: 11.0, bold: true, grey: 0.35, indent: 0.0, after: 2.0 };
const QUESTION: Look = Look { size: 10.0, bold: true, grey: 0.0, indent: 0.0, after: 3.0 };
const BODY: Look = Look { size: 10.0, bold: false, grey: 0.0, indent: 0.0, after: 5.0 };
const META: Look = Look { size: 9.0, bold: false, grey: 0.0, indent: 0.0, after: 2.0 };
const EVIDENCE: Look = Look { size: 8.5, bold: false, grey: 0.3, indent: 14.0, after: 2.0 };

/// Lays text out on pages and remembers the glyphs it used.
struct Layout {
    pages: Vec<String>,
    y: f32,
    /// Glyph id → (advance in font units, the text it stands for).
    glyphs: BTreeMap<u16, (u16, String)>,
}

impl Layout {
    fn new() -> Self {
        Layout { pages: vec![String::new()], y: TOP, glyphs: BTreeMap::new() }
    }

    fn new_page(&mut self) {
        self.pages.push(String::new());
        self.y = TOP;
    }

    /// Start a new page unless `height` points still fit on this one.
    fn keep(&mut self, height: f32) {
        if self.y - height < BOTTOM {
            self.new_page();
        }
    }

    fn gap(&mut self, points: f32) {
        self.y -= points;
    }

    /// Wrapped text, one paragraph per `\n`-separated line, with page breaks as needed.
    fn block(&mut self, text: &str, look: Look) {
        let leading = look.size * 1.3;
        for line in text.split('\n') {
            for wrapped in wrap(line, look.size, WIDTH - look.indent) {
                self.keep(leading);
                self.y -= leading;
                let (x, y) = (MARGIN + look.indent, self.y + leading * 0.25);
                let hex = self.encode(&wrapped);
                let page = self.pages.last_mut().expect("a page");
                let mode = if look.bold { "2 Tr 0.25 w" } else { "0 Tr" };
                let grey = look.grey;
                page.push_str(&format!(
                    "BT /F1 {} Tf {mode} {grey} g {grey} G {x:.2} {y:.2} Td <{hex}> Tj ET\n",
                    look.size
                ));
            }
        }
        self.y -= look.after;
    }

    /// The text as glyph ids in hex (two bytes each), recording each glyph used.
    fn encode(&mut self, text: &str) -> String {
        let mut hex = String::with_capacity(text.len() * 4);
        for c in text.chars() {
            let (id, c) = glyph(c);
            let advance = FACE.glyph_hor_advance(id).unwrap_or(0);
            self.glyphs.entry(id.0).or_insert_with(|| (advance, c.to_string()));
            hex.push_str(&format!("{:04X}", id.0));
        }
        hex
    }
}

/// The glyph for a character, or `?`'s when the font has none; control characters are spaces.
fn glyph(c: char) -> (GlyphId, char) {
    let c = if c.is_control() { ' ' } else { c };
    match FACE.glyph_index(c) {
        Some(id) if id.0 != 0 => (id, c),
        _ => (FACE.glyph_index('?').unwrap_or(GlyphId(0)), '?'),
    }
}

/// Width of a text in points at a font size.
fn text_width(text: &str, size: f32) -> f32 {
    let units: u32 = text.chars().map(|c| FACE.glyph_hor_advance(glyph(c).0).unwrap_or(0) as u32).sum();
    units as f32 * size / FACE.units_per_em() as f32
}

/// Greedy wrapping at spaces; a word wider than the line is cut where it must be. An empty
/// line stays one (empty) line.
fn wrap(line: &str, size: f32, width: f32) -> Vec<String> {
    let mut lines = Vec::new();
    let mut current = String::new();
    for word in line.split_whitespace() {
        let candidate = if current.is_empty() { word.to_owned() } else { format!("{current} {word}") };
        if text_width(&candidate, size) <= width {
            current = candidate;
            continue;
        }
        if !current.is_empty() {
            lines.push(std::mem::take(&mut current));
        }
        for c in word.chars() {
            current.push(c);
            if text_width(&current, size) > width && current.chars().count() > 1 {
                current.pop();
                lines.push(std::mem::take(&mut current));
                current.push(c);
            }
        }
    }
    if !current.is_empty() || lines.is_empty() {
        lines.push(current);
    }
    lines
}

/// A PDF text string (UTF-16BE with its byte-order mark), for the document information.
fn text_string(text: &str) -> Object {
    let mut bytes = vec![0xFE, 0xFF];
    for unit in text.encode_utf16() {
        bytes.extend_from_slice(&unit.to_be_bytes());
    }
    Object::String(bytes, StringFormat::Hexadecimal)
}

fn lay_out(sheet: &AnswerSheet, meta: &Metadata) -> Layout {
    let mut layout = Layout::new();
    layout.block(&sheet.assay_title, TITLE);
    if !sheet.scope.is_empty() {
        layout.block(&format!("Scope: {}", sheet.scope), BODY);
    }
    for (label, value) in meta.lines() {
        layout.block(&format!("{label}: {value}"), META);
    }
    layout.block(
        &format!(
            "{} accepted · {} drafted · {} questions · {} of {} citations verified",
            sheet.accepted(),
            sheet.drafted(),
            sheet.total(),
            sheet.verified_citations(),
            sheet.citations()
        ),
        META,
    );
    layout.gap(6.0);
    layout.block("Kept documents", SUBSECTION);
    if meta.documents.is_empty() {
        layout.block("None: the documents were not kept.", META);
    }
    for d in &meta.documents {
        layout.block(&format!("{} ({})\nSHA-256 {}", d.name, size(d.size_bytes), d.sha256), META);
    }
    for section in &sheet.sections {
        layout.gap(8.0);
        layout.keep(60.0);
        layout.block(&section.title, SECTION);
        for q in &section.questions {
            layout.keep(45.0);
            if !q.is_subquestion {
                layout.block(&q.subsection, SUBSECTION);
            }
            layout.block(&format!("{}  [{}]", q.question, Status::of(q).label()), QUESTION);
            for para in answer_text(q).split("\n\n").filter(|p| !p.trim().is_empty()) {
                layout.block(para.trim(), BODY);
            }
            for e in &q.evidence {
                layout.block(&citation_line(e), EVIDENCE);
            }
            layout.gap(4.0);
        }
    }
    layout
}

fn to_unicode(glyphs: &BTreeMap<u16, (u16, String)>) -> Vec<u8> {
    let mut cmap = String::from(
        "/CIDInit /ProcSet findresource begin\n12 dict begin\nbegincmap\n/CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def\n/CMapName /Adobe-Identity-UCS def\n/CMapType 2 def\n1 begincodespacerange\n<0000> <FFFF>\nendcodespacerange\n",
    );
    let entries: Vec<(&u16, &(u16, String))> = glyphs.iter().collect();
    // At most 100 entries per block (the CMap format's limit).
    for chunk in entries.chunks(100) {
        cmap.push_str(&format!("{} beginbfchar\n", chunk.len()));
        for (id, (_, text)) in chunk {
            let utf16: String = text.encode_utf16().map(|u| format!("{u:04X}")).collect();
            cmap.push_str(&format!("<{id:04X}> <{utf16}>\n"));
        }
        cmap.push_str("endbfchar\n");
    }
    cmap.push_str("endcmap\nCMapName currentdict /CMap defineresource pop\nend\nend\n");
    cmap.into_bytes()
}

/// The font resource: Type0 → CIDFontType2 → the embedded TrueType program.
fn font(doc: &mut Document, glyphs: &BTreeMap<u16, (u16, String)>) -> Object {
    let face = &*FACE;
    let scale = |v: i16| (v as f32 * 1000.0 / face.units_per_em() as f32).round() as i64;
    let file = if FONT_DEFLATED.is_empty() {
        Stream::new(dictionary! { "Length1" => FONT.len() as i64 }, FONT.to_vec())
    } else {
        Stream::new(dictionary! { "Length1" => FONT.len() as i64, "Filter" => "FlateDecode" }, FONT_DEFLATED.clone())
    };
    let file = doc.add_object(file.with_compression(false));
    let bbox = face.global_bounding_box();
    let descriptor = doc.add_object(dictionary! {
        "Type" => "FontDescriptor",
        "FontName" => "DejaVuSans",
        "Flags" => 32,
        "FontBBox" => vec![scale(bbox.x_min).into(), scale(bbox.y_min).into(), scale(bbox.x_max).into(), scale(bbox.y_max).into()],
        "ItalicAngle" => 0,
        "Ascent" => scale(face.ascender()),
        "Descent" => scale(face.descender()),
        "CapHeight" => scale(face.capital_height().unwrap_or(face.ascender())),
        "StemV" => 80,
        "FontFile2" => file,
    });
    let mut widths: Vec<Object> = Vec::new();
    for (id, (advance, _)) in glyphs {
        widths.push((*id as i64).into());
        widths.push(vec![Object::from(scale(*advance as i16))].into());
    }
    let cid_font = doc.add_object(dictionary! {
        "Type" => "Font",
        "Subtype" => "CIDFontType2",
        "BaseFont" => "DejaVuSans",
        "CIDSystemInfo" => dictionary! {
            "Registry" => Object::string_literal("Adobe"),
            "Ordering" => Object::string_literal("Identity"),
            "Supplement" => 0,
        },
        "FontDescriptor" => descriptor,
        "DW" => 600,
        "W" => widths,
        "CIDToGIDMap" => "Identity",
    });
    let mut unicode = Stream::new(Dictionary::new(), to_unicode(glyphs));
    let _ = unicode.compress();
    let unicode = doc.add_object(unicode);
    doc.add_object(dictionary! {
        "Type" => "Font",
        "Subtype" => "Type0",
        "BaseFont" => "DejaVuSans",
        "Encoding" => "Identity-H",
        "DescendantFonts" => vec![cid_font.into()],
        "ToUnicode" => unicode,
    })
    .into()
}

/// The `.pdf` file.
pub fn render(sheet: &AnswerSheet, meta: &Metadata) -> anyhow::Result<Vec<u8>> {
    let mut layout = lay_out(sheet, meta);
    let total = layout.pages.len();
    let footers: Vec<String> = (1..=total)
        .map(|n| {
            let text = format!("{} · page {n} of {total}", sheet.assay_title);
            let text: String = text.chars().take(110).collect();
            let hex = layout.encode(&text);
            format!("BT /F1 7.5 Tf 0 Tr 0.45 g {MARGIN:.2} {:.2} Td <{hex}> Tj ET\n", MARGIN - 10.0)
        })
        .collect();
    let mut doc = Document::with_version("1.7");
    let pages_id = doc.new_object_id();
    let font = font(&mut doc, &layout.glyphs);
    let resources = doc.add_object(dictionary! { "Font" => dictionary! { "F1" => font } });
    let mut kids: Vec<Object> = Vec::with_capacity(total);
    for (content, footer) in layout.pages.iter().zip(&footers) {
        let mut stream = Stream::new(Dictionary::new(), format!("{content}{footer}").into_bytes());
        stream.compress()?;
        let contents = doc.add_object(stream);
        let page = doc.add_object(dictionary! {
            "Type" => "Page",
            "Parent" => pages_id,
            "MediaBox" => vec![0.into(), 0.into(), PAGE_WIDTH.into(), PAGE_HEIGHT.into()],
            "Contents" => contents,
            "Resources" => resources,
        });
        kids.push(page.into());
    }
    doc.objects.insert(
        pages_id,
        Object::Dictionary(dictionary! { "Type" => "Pages", "Kids" => kids, "Count" => total as i64 }),
    );
    let catalog = doc.add_object(dictionary! { "Type" => "Catalog", "Pages" => pages_id });
    let authors: Vec<String> = meta.authors.iter().map(|a| a.label()).collect();
    let info = doc.add_object(dictionary! {
        "Title" => text_string(&title(sheet)),
        "Subject" => text_string(&meta.assay_path()),
        "Author" => text_string(&authors.join("; ")),
        "Creator" => text_string(&format!("ToxTempAssistant {}", meta.app_version)),
        "Producer" => text_string(&format!("ToxTempAssistant {}", meta.app_version)),
    });
    doc.trailer.set("Root", catalog);
    doc.trailer.set("Info", info);
    let mut out = Vec::new();
    doc.save_to(&mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_wrap_at_spaces_within_the_width_and_long_words_are_cut() {
        let text = "LUHMES cells are seeded at 100 000 cells per well on day 0 and differentiated for six days.";
        let lines = wrap(text, 10.0, 120.0);
        assert!(lines.len() > 2, "{lines:?}");
        assert!(lines.iter().all(|l| text_width(l, 10.0) <= 120.0), "{lines:?}");
        assert_eq!(lines.join(" "), text, "nothing lost, spaces only at the breaks");
        let sha = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        let cut = wrap(sha, 10.0, 100.0);
        assert!(cut.len() > 1 && cut.concat() == sha, "{cut:?}");
        assert_eq!(wrap("", 10.0, 100.0), vec![String::new()]);
    }

    #[test]
    fn every_glyph_used_maps_back_to_its_character() {
        let mut layout = Layout::new();
        layout.block("37 °C, ≥ 5 µM, α-synuclein, Müller, 🧪", BODY);
        let cmap = String::from_utf8(to_unicode(&layout.glyphs)).unwrap();
        for c in ['°', '≥', 'µ', 'α', 'ü'] {
            let (id, _) = glyph(c);
            assert!(id.0 != 0, "{c} is in the font");
            assert!(cmap.contains(&format!("<{:04X}> <{:04X}>", id.0, c as u32)), "{c}: {cmap}");
        }
        assert!(layout.glyphs.values().any(|(_, t)| t == "?"), "a character the font lacks becomes ?");
    }

    #[test]
    fn a_long_text_breaks_onto_new_pages() {
        let mut layout = Layout::new();
        let long = "A sentence of an answer that goes on. ".repeat(400);
        layout.block(&long, BODY);
        assert!(layout.pages.len() >= 3, "{}", layout.pages.len());
        assert!(layout.y >= BOTTOM - BODY.after);
    }
}
