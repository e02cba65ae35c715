//! File names as people typed them are not safe to store, show, zip or send back: they can
//! carry paths (`../../etc/passwd`), control characters, bidirectional overrides that disguise
//! an extension (`invoice\u{202E}fdp.exe` shows as `invoiceexe.pdf`), invisible format
//! characters, decomposed accents, or be longer than any file system allows. One cleaning for
//! every place a name goes:
//!
//! - [`clean`] — the name we store and show: the last path component only, control and
//!   Unicode format characters (general category Cf: bidi overrides, zero-width characters,
//!   the BOM, soft hyphens …) removed, NFC-normalised, trimmed, at most [`MAX_CHARS`]
//!   characters with its extension kept;
//! - [`zip_entry`] — additionally safe as a file name on Windows, macOS and Linux;
//! - [`content_disposition`] — an RFC 6266 header value with an ASCII fallback and the
//!   UTF-8 name in `filename*`.

use unicode_normalization::UnicodeNormalization;
use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};

pub const MAX_CHARS: usize = 200;
/// Longest extension kept when a name is shortened.
const MAX_EXTENSION: usize = 16;
const ZIP_MAX_CHARS: usize = 120;

/// The name to store and show for an uploaded file.
pub fn clean(raw: &str) -> String {
    let last = raw.rsplit(['/', '\\']).next().unwrap_or_default();
    let kept: String = last
        .chars()
        .filter(|c| !c.is_control() && c.general_category() != GeneralCategory::Format)
        .collect::<String>()
        .nfc()
        .collect();
    let trimmed = kept.trim();
    if trimmed.is_empty() || trimmed.chars().all(|c| c == '.') {
        return "unnamed".to_owned();
    }
    shorten(trimmed, MAX_CHARS)
}

/// At most `max` characters, the extension kept.
fn shorten(name: &str, max: usize) -> String {
    if name.chars().count() <= max {
        return name.to_owned();
    }
    let (stem, ext) = split_extension(name);
    let ext: String = if ext.chars().count() <= MAX_EXTENSION { ext.to_owned() } else { String::new() };
    let keep = max - ext.chars().count();
    format!("{}{ext}", stem.chars().take(keep).collect::<String>().trim_end())
}

/// (stem, ".ext"); a leading dot is part of the stem.
pub fn split_extension(name: &str) -> (&str, &str) {
    match name.rfind('.') {
        Some(i) if i > 0 => (&name[..i], &name[i..]),
        _ => (name, ""),
    }
}

/// A name that is a safe file name inside an archive on any system.
pub fn zip_entry(raw: &str) -> String {
    let cleaned: String = clean(raw).chars().map(|c| if "<>:\"|?*".contains(c) { '_' } else { c }).collect();
    let trimmed = cleaned.trim_start_matches(['.', ' ']).trim_end_matches(['.', ' ']);
    let mut name = if trimmed.is_empty() { "file".to_owned() } else { shorten(trimmed, ZIP_MAX_CHARS) };
    let (stem, _) = split_extension(&name);
    if is_windows_reserved(stem) {
        name.insert(0, '_');
    }
    name
}

/// CON, PRN, AUX, NUL, COM1–COM9, LPT1–LPT9: Windows refuses them as file names, with any
/// extension.
fn is_windows_reserved(stem: &str) -> bool {
    let stem = stem.trim().to_ascii_uppercase();
    matches!(stem.as_str(), "CON" | "PRN" | "AUX" | "NUL")
        || ((stem.starts_with("COM") || stem.starts_with("LPT"))
            && stem.len() == 4
            && stem.as_bytes()[3].is_ascii_digit()
            && stem.as_bytes()[3] != b'0')
}

/// `attachment; filename="…"; filename*=UTF-8''…` (RFC 6266 / RFC 5987): old clients read the
/// ASCII fallback, current ones the exact UTF-8 name.
pub fn content_disposition(name: &str) -> String {
    let name = zip_entry(name);
    let fallback: String =
        name.chars().map(|c| if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' { c } else { '_' }).collect();
    let mut encoded = String::new();
    for byte in name.bytes() {
        if byte.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&byte) {
            encoded.push(byte as char);
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    format!("attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_controls_bidi_and_format_characters_go() {
        assert_eq!(clean("../../etc/passwd.txt"), "passwd.txt");
        assert_eq!(clean("C:\\Users\\me\\report.pdf"), "report.pdf");
        assert_eq!(clean("a\0b\n.pdf"), "ab.pdf");
        assert_eq!(clean("invoice\u{202E}fdp.exe"), "invoicefdp.exe", "no right-to-left override");
        assert_eq!(clean("zero\u{200B}width\u{FEFF}.pdf"), "zerowidth.pdf");
        assert_eq!(clean("  "), "unnamed");
        assert_eq!(clean(".."), "unnamed");
    }

    #[test]
    fn names_are_nfc_and_shortened_keeping_the_extension() {
        assert_eq!(clean("Zellkultur-Prot\u{006F}\u{0308}koll.pdf"), "Zellkultur-Protökoll.pdf");
        let long = format!("{}.pdf", "x".repeat(300));
        let short = clean(&long);
        assert_eq!(short.chars().count(), MAX_CHARS);
        assert!(short.ends_with(".pdf"));
        assert_eq!(crate::ingest::DocumentKind::from_filename(&short), Some(crate::ingest::DocumentKind::Pdf));
    }

    #[test]
    fn zip_entries_are_safe_everywhere() {
        assert_eq!(zip_entry("../../x"), "x");
        assert_eq!(zip_entry("what?.csv"), "what_.csv");
        assert_eq!(zip_entry(".hidden"), "hidden");
        assert_eq!(zip_entry("CON.txt"), "_CON.txt");
        assert_eq!(zip_entry("lpt1"), "_lpt1");
        assert_eq!(zip_entry("COM0.txt"), "COM0.txt");
        assert_eq!(zip_entry("console.txt"), "console.txt");
        assert_eq!(zip_entry(&format!("{}.pdf", "y".repeat(300))).chars().count(), ZIP_MAX_CHARS);
    }

    #[test]
    fn downloads_name_the_file_in_ascii_and_utf8() {
        assert_eq!(
            content_disposition("Zellkultur \"Protokoll\" ö.pdf"),
            "attachment; filename=\"Zellkultur _Protokoll_ _.pdf\"; filename*=UTF-8''Zellkultur%20_Protokoll_%20%C3%B6.pdf"
        );
    }
}
