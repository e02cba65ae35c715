//! Text extraction through the real child process (`toxtemp extract-text`).

use std::path::PathBuf;
use std::time::Duration;

use toxtemp::ingest::{DocumentKind, ExtractError, ExtractLimits, Extractor};

use crate::docs;

fn extractor() -> Extractor {
    Extractor::new(PathBuf::from(env!("CARGO_BIN_EXE_toxtemp")), ExtractLimits::default())
}

async fn extract(name: &str, bytes: &[u8]) -> Result<toxtemp::ingest::Extracted, ExtractError> {
    extract_with(extractor(), name, bytes).await
}

async fn extract_with(ex: Extractor, name: &str, bytes: &[u8]) -> Result<toxtemp::ingest::Extracted, ExtractError> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).unwrap();
    let kind = DocumentKind::from_filename(name).unwrap();
    assert!(kind.matches_content(&bytes[..bytes.len().min(8192)]), "{name} sniffs as {kind:?}");
    ex.extract(&path, kind).await
}

#[tokio::test]
async fn each_format_yields_its_text() {
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("sop.pdf", docs::pdf(&["LUHMES cells are seeded at 100000 cells per well."]), "LUHMES cells are seeded"),
        (
            "paper.docx",
            docs::docx(&["Neurite outgrowth is measured.", "Rotenone & MPP+ < 1 uM"]),
            "Rotenone & MPP+ < 1 uM",
        ),
        ("slides.pptx", docs::pptx(&["Slide one: readout", "Slide two: controls"]), "Slide two: controls"),
        ("plate.xlsx", docs::xlsx(&[&["compound", "EC50"], &["rotenone", "0.1"]]), "rotenone\t0.1"),
        ("notes.txt", "Plain notes über Zellen".as_bytes().to_vec(), "über Zellen"),
        ("readme.md", b"# Protocol\n\nDay 0: thaw cells".to_vec(), "Day 0: thaw cells"),
        (
            "page.html",
            b"<html><body><h1>Assay</h1><p>Calcein staining<script>x()</script></p></body></html>".to_vec(),
            "Calcein staining",
        ),
        ("data.json", br#"{"endpoint": "neurite area", "unit": "um2"}"#.to_vec(), "neurite area"),
        ("data.csv", b"well,value\nA1,0.93\n".to_vec(), "A1,0.93"),
    ];
    for (name, bytes, expected) in cases {
        let out = extract(name, &bytes).await.unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(out.text().contains(expected), "{name}: {:?}", out.text());
        assert!(!out.truncated);
    }
    // Images carry no text of their own.
    let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";
    assert!(extract("plate.png", png).await.unwrap().is_empty());
}

#[tokio::test]
async fn each_format_locates_its_passages() {
    let located = |out: toxtemp::ingest::Extracted| -> Vec<(String, toxtemp::ingest::Location)> {
        out.passages().into_iter().map(|p| (p.text, p.location)).collect()
    };
    let slides = located(extract("s.pptx", &docs::pptx(&["Readout", "Controls"])).await.unwrap());
    assert_eq!(slides.iter().map(|(_, l)| l.slide).collect::<Vec<_>>(), [Some(1), Some(2)]);

    let rows: Vec<Vec<String>> = (1..=25).map(|i| vec![format!("compound {i}"), format!("{i}.5")]).collect();
    let rows: Vec<Vec<&str>> = rows.iter().map(|r| r.iter().map(String::as_str).collect()).collect();
    let rows: Vec<&[&str]> = rows.iter().map(Vec::as_slice).collect();
    let sheet = located(extract("plate.xlsx", &docs::xlsx(&rows)).await.unwrap());
    type Place = (Option<String>, Option<(u32, u32)>);
    let places: Vec<Place> = sheet.iter().map(|(_, l)| (l.sheet.clone(), l.rows)).collect();
    assert_eq!(places, [(Some("Data".into()), Some((1, 20))), (Some("Data".into()), Some((21, 25)))]);
    assert!(sheet[1].0.starts_with("compound 21\t21.5"));

    let html = b"<html><body><h1>Assay</h1><h2>5.2 Endpoints</h2><p>Neurite area is measured.</p></body></html>";
    let page = located(extract("page.html", html).await.unwrap());
    assert_eq!(page.len(), 1, "{page:?}");
    assert_eq!(page[0].1.heading.as_deref(), Some("5.2 Endpoints"), "{page:?}");

    let md = located(extract("sop.md", b"## Cell culture\n\nThaw cells on day 0.").await.unwrap());
    assert_eq!(md[0].1.heading.as_deref(), Some("Cell culture"));
}

#[tokio::test]
async fn a_broken_pdf_is_an_error_not_a_crash() {
    let err = extract("broken.pdf", b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 9 0 R >>\ngarbage").await.unwrap_err();
    assert!(matches!(err, ExtractError::Failed(_)), "{err:?}");
    let err = extract("trunc.docx", b"PK\x03\x04 not really a zip").await.unwrap_err();
    assert!(err.to_string().starts_with("it could not be read"), "{err}");
}

#[tokio::test]
async fn deeply_nested_json_is_refused_cleanly() {
    let nested = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let err = extract("deep.json", nested.as_bytes()).await.unwrap_err();
    assert!(matches!(err, ExtractError::Failed(_)), "{err:?}");
}

#[tokio::test]
async fn a_docx_zip_bomb_is_cut_off_at_the_text_cap() {
    let bomb = docs::docx_bomb(24);
    assert!(bomb.len() < 1024 * 1024, "the bomb is small on disk ({} bytes)", bomb.len());
    let limits = ExtractLimits { max_chars: 100_000, ..ExtractLimits::default() };
    let out = extract_with(Extractor::new(PathBuf::from(env!("CARGO_BIN_EXE_toxtemp")), limits), "bomb.docx", &bomb)
        .await
        .unwrap();
    assert!(out.truncated);
    // The cap counts what the child wrote, location records included.
    let chars = out.text().chars().count();
    assert!((99_900..100_000).contains(&chars), "{chars}");
}

#[tokio::test]
async fn extraction_that_takes_too_long_is_stopped() {
    let limits = ExtractLimits { timeout: Duration::from_millis(1), ..ExtractLimits::default() };
    let ex = Extractor::new(PathBuf::from(env!("CARGO_BIN_EXE_toxtemp")), limits);
    let page = format!("<html><body><p>{}</p></body></html>", "a".repeat(8 * 1024 * 1024));
    let err = extract_with(ex, "big.html", page.as_bytes()).await.unwrap_err();
    assert!(matches!(err, ExtractError::Timeout(_)), "{err:?}");
}

/// The smallest address-space limit (MiB) under which the child still extracts `bytes`.
async fn baseline_mib(name: &str, bytes: &[u8]) -> u64 {
    let mut mib = 4;
    loop {
        let limits = ExtractLimits { memory_bytes: mib * 1024 * 1024, ..ExtractLimits::default() };
        let ex = Extractor::new(PathBuf::from(env!("CARGO_BIN_EXE_toxtemp")), limits);
        if extract_with(ex, name, bytes).await.is_ok() {
            return mib;
        }
        assert!(mib < 4096, "{name} never extracts");
        mib *= 2;
    }
}

#[tokio::test]
async fn a_document_that_needs_too_much_memory_fails_alone() {
    // The limit sits well above what the child needs for a small page, so it is the big
    // page's memory, not the child's own start-up, that the limit stops.
    let small = b"<html><body><h1>Assay</h1><p>Neurite outgrowth is measured.</p></body></html>";
    // The smallest power of two the child needs for a small page: above its own baseline.
    let cap = baseline_mib("small.html", small).await;
    let limits = ExtractLimits { memory_bytes: cap * 1024 * 1024, ..Default::default() };
    let ex = Extractor::new(PathBuf::from(env!("CARGO_BIN_EXE_toxtemp")), limits);
    extract_with(ex.clone(), "small.html", small).await.expect("a small page fits under the limit");
    // ~16 MB of HTML: its document tree needs several times the cap.
    let rows: Vec<String> = (0..16000).map(|i| format!("<p>row {i} {}</p>", "word ".repeat(200))).collect();
    let html = format!("<html><body>{}</body></html>", rows.concat());
    let err = extract_with(ex, "huge.html", html.as_bytes()).await.unwrap_err();
    assert!(matches!(err, ExtractError::Failed(_)), "{err:?}");
    // The same file with the normal limit (1 GiB) is fine: it was the limit, not the file.
    let out = extract("huge.html", html.as_bytes()).await.expect("fits under the normal limit");
    assert!(out.text().contains("row 100 word"));
}

#[tokio::test]
async fn a_sheet_with_cells_at_both_ends_of_the_grid_costs_two_cells() {
    let sheet = docs::xlsx_cells(&[("A1", "first cell"), ("XFD1048576", "last cell")], Some("A1:XFD1048576"));
    let out = extract("corners.xlsx", &sheet).await.expect("no 17-billion-cell allocation");
    assert!(out.text().contains("first cell") && out.text().contains("last cell"), "{:?}", out.text());
    let rows: Vec<Option<(u32, u32)>> = out.segments.iter().map(|s| s.location.rows).collect();
    assert_eq!(rows, [Some((1, 1_048_576))], "one block of two rows, located by their numbers");
}

#[tokio::test]
async fn the_extraction_child_sees_none_of_our_environment() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("print-env");
    // One record header (no location), then the environment as the text.
    std::fs::write(&script, "#!/bin/sh\nprintf '\\036{}\\n'\nexec /usr/bin/env\n").unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    assert!(std::env::var("CARGO_PKG_NAME").is_ok() && std::env::var("PATH").is_ok(), "the test process has both");
    let out = extract_with(Extractor::new(script, ExtractLimits::default()), "notes.html", b"<p>x</p>").await.unwrap();
    let env = out.text();
    assert!(env.contains("RUST_LOG=error"), "{env}");
    assert!(!env.contains("CARGO") && !env.contains("PATH="), "nothing of ours leaks: {env}");
}

#[test]
fn the_extraction_child_refuses_to_run_without_its_memory_limit() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("notes.txt");
    std::fs::write(&file, "notes").unwrap();
    // A hard limit of ~1 GB on the shell: raising it to 4 GiB in the child must fail.
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(r#"ulimit -v 1000000 && exec "$0" extract-text --kind txt --memory-mib 4096 "$1""#)
        .arg(env!("CARGO_BIN_EXE_toxtemp"))
        .arg(&file)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("memory limit"), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.stdout.is_empty(), "not a byte extracted");
}
