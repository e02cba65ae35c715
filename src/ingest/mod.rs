//! Documents in, text out. Recognises the accepted formats (by extension *and* content) and
//! extracts their text in a child process (`toxtemp extract-text`) under a time limit, a
//! memory limit and an output cap, so a broken PDF, a zip bomb or a monster spreadsheet can
//! cost at most that child, never the server.

mod formats;
pub mod passages;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncReadExt;

pub use formats::extract_in_process;
pub use passages::{Location, Passage, Segment};

/// The formats the StartingForm accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DocumentKind {
    Pdf,
    Docx,
    Txt,
    Md,
    Html,
    Json,
    Csv,
    Xlsx,
    Xls,
    Pptx,
    Png,
    Jpeg,
    Gif,
    Bmp,
    Tiff,
    Webp,
}

pub const ACCEPTED_EXTENSIONS: &str =
    ".pdf,.docx,.txt,.md,.html,.htm,.json,.csv,.xlsx,.xls,.pptx,.png,.jpg,.jpeg,.gif,.bmp,.tif,.tiff,.webp";

impl DocumentKind {
    pub fn from_filename(name: &str) -> Option<Self> {
        let ext = name.rsplit_once('.')?.1.to_ascii_lowercase();
        Some(match ext.as_str() {
            "pdf" => Self::Pdf,
            "docx" => Self::Docx,
            "txt" => Self::Txt,
            "md" | "markdown" => Self::Md,
            "html" | "htm" => Self::Html,
            "json" => Self::Json,
            "csv" => Self::Csv,
            "xlsx" => Self::Xlsx,
            "xls" => Self::Xls,
            "pptx" => Self::Pptx,
            "png" => Self::Png,
            "jpg" | "jpeg" => Self::Jpeg,
            "gif" => Self::Gif,
            "bmp" => Self::Bmp,
            "tif" | "tiff" => Self::Tiff,
            "webp" => Self::Webp,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pdf => "pdf",
            Self::Docx => "docx",
            Self::Txt => "txt",
            Self::Md => "md",
            Self::Html => "html",
            Self::Json => "json",
            Self::Csv => "csv",
            Self::Xlsx => "xlsx",
            Self::Xls => "xls",
            Self::Pptx => "pptx",
            Self::Png => "png",
            Self::Jpeg => "jpeg",
            Self::Gif => "gif",
            Self::Bmp => "bmp",
            Self::Tiff => "tiff",
            Self::Webp => "webp",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::from_filename(&format!("x.{s}"))
    }

    /// The MIME type we record (never the browser's claim).
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Pdf => "application/pdf",
            Self::Docx => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            Self::Txt => "text/plain",
            Self::Md => "text/markdown",
            Self::Html => "text/html",
            Self::Json => "application/json",
            Self::Csv => "text/csv",
            Self::Xlsx => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            Self::Xls => "application/vnd.ms-excel",
            Self::Pptx => "application/vnd.openxmlformats-officedocument.presentationml.presentation",
            Self::Png => "image/png",
            Self::Jpeg => "image/jpeg",
            Self::Gif => "image/gif",
            Self::Bmp => "image/bmp",
            Self::Tiff => "image/tiff",
            Self::Webp => "image/webp",
        }
    }

    /// Text read as it is, without a parser.
    pub fn is_plain_text(self) -> bool {
        matches!(self, Self::Txt | Self::Md | Self::Csv)
    }

    pub fn is_image(self) -> bool {
        matches!(self, Self::Png | Self::Jpeg | Self::Gif | Self::Bmp | Self::Tiff | Self::Webp)
    }

    /// Does the start of the file look like this format? `head` is up to the first 8 KiB.
    pub fn matches_content(self, head: &[u8]) -> bool {
        match self {
            Self::Pdf => find(head, b"%PDF-").is_some_and(|at| at < 1024),
            Self::Docx | Self::Xlsx | Self::Pptx => head.starts_with(b"PK\x03\x04"),
            Self::Xls => head.starts_with(&[0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1]),
            Self::Png => head.starts_with(b"\x89PNG\r\n\x1a\n"),
            Self::Jpeg => head.starts_with(&[0xFF, 0xD8, 0xFF]),
            Self::Gif => head.starts_with(b"GIF87a") || head.starts_with(b"GIF89a"),
            Self::Bmp => head.starts_with(b"BM"),
            Self::Tiff => head.starts_with(b"II*\0") || head.starts_with(b"MM\0*"),
            Self::Webp => head.len() >= 12 && &head[..4] == b"RIFF" && &head[8..12] == b"WEBP",
            Self::Json => looks_like_text(head) && matches!(first_non_space(head), Some(b'{' | b'[')),
            Self::Txt | Self::Md | Self::Html | Self::Csv => looks_like_text(head),
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn first_non_space(head: &[u8]) -> Option<u8> {
    let head = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
    head.iter().copied().find(|b| !b.is_ascii_whitespace())
}

/// UTF-8 (a character cut at the end of the sample is fine) without NUL bytes.
fn looks_like_text(head: &[u8]) -> bool {
    if head.contains(&0) {
        return false;
    }
    match std::str::from_utf8(head) {
        Ok(_) => true,
        Err(e) => e.error_len().is_none() && head.len() - e.valid_up_to() < 4,
    }
}

/// Limits for one extraction.
#[derive(Clone, Debug)]
pub struct ExtractLimits {
    pub timeout: Duration,
    pub memory_bytes: u64,
    /// Characters of text kept per document; the rest is dropped with a warning.
    pub max_chars: usize,
}

impl Default for ExtractLimits {
    fn default() -> Self {
        Self { timeout: Duration::from_secs(60), memory_bytes: 1024 * 1024 * 1024, max_chars: 2_000_000 }
    }
}

/// The text of one document as located segments, or why there is none.
#[derive(Clone, Debug, PartialEq)]
pub struct Extracted {
    pub segments: Vec<Segment>,
    pub truncated: bool,
}

impl Extracted {
    /// The whole text (segments joined by a blank line; passage spans count in it).
    pub fn text(&self) -> String {
        passages::full_text(&self.segments)
    }

    pub fn is_empty(&self) -> bool {
        self.segments.iter().all(|s| s.text.trim().is_empty())
    }

    pub fn passages(&self) -> Vec<Passage> {
        passages::split(&self.segments)
    }
}

/// Separates segments in the child's output: a record separator, the location as JSON on the
/// rest of that line, then the text. Extracted text never contains it (see [`clean`]).
const RECORD: char = '\u{1e}';

/// The child's output for these segments.
fn encode(segments: &[Segment]) -> String {
    let mut out = String::new();
    for segment in segments {
        out.push(RECORD);
        out.push_str(&serde_json::to_string(&segment.location).unwrap_or_else(|_| "{}".into()));
        out.push('\n');
        out.push_str(&clean(&segment.text));
        out.push('\n');
    }
    out
}

/// Text without control characters other than newlines and tabs (and with `\n` line ends).
fn clean(text: &str) -> String {
    text.replace("\r\n", "\n").chars().filter(|c| !c.is_control() || matches!(c, '\n' | '\t')).collect()
}

/// Segments back from the child's output (which may have been cut anywhere).
fn decode(output: &str) -> Vec<Segment> {
    output
        .split(RECORD)
        .filter(|record| !record.is_empty())
        .map(|record| {
            let (head, text) = record.split_once('\n').unwrap_or((record, ""));
            let location = serde_json::from_str(head).unwrap_or_default();
            Segment { location, text: text.strip_suffix('\n').unwrap_or(text).to_owned() }
        })
        .collect()
}

#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    #[error("it took longer than {0:?} to read")]
    Timeout(Duration),
    /// The detail is for the log; people see a fixed sentence.
    #[error("it could not be read (damaged, protected or unsupported content)")]
    Failed(String),
}

/// Runs `toxtemp extract-text` as a child process, a few at a time for the whole process.
#[derive(Clone, Debug)]
pub struct Extractor {
    exe: PathBuf,
    pub limits: ExtractLimits,
    /// Extractions running at once (each may take a core and `memory_bytes`).
    permits: std::sync::Arc<tokio::sync::Semaphore>,
}

impl Extractor {
    /// `exe` is the toxtemp binary (the running one in production; tests pass Cargo's).
    pub fn new(exe: PathBuf, limits: ExtractLimits) -> Self {
        let parallel = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2).max(1);
        Self { exe, limits, permits: std::sync::Arc::new(tokio::sync::Semaphore::new(parallel)) }
    }

    pub async fn extract(&self, path: &Path, kind: DocumentKind) -> Result<Extracted, ExtractError> {
        if kind.is_image() {
            return Ok(Extracted { segments: Vec::new(), truncated: false });
        }
        if kind.is_plain_text() {
            // Plain text needs no parser: read it here, capped as the child would, without
            // the cost of a process (there is no parser for a hostile file to blow up).
            let (path, max_chars) = (path.to_owned(), self.limits.max_chars);
            return tokio::task::spawn_blocking(move || plain_text(&path, max_chars))
                .await
                .map_err(|e| ExtractError::Failed(e.to_string()))?;
        }
        let _permit = self.permits.acquire().await.map_err(|e| ExtractError::Failed(e.to_string()))?;
        // The child gets an empty environment: it needs none, and must not see our secrets.
        let mut command = tokio::process::Command::new(&self.exe);
        let limit = self.limits.memory_bytes;
        // The memory limit holds from the child's first instruction: set after start-up, it
        // would not cover the address space the allocator reserved while starting.
        // SAFETY: between fork and exec only setrlimit(2) runs, which is async-signal-safe.
        unsafe {
            command.pre_exec(move || rlimit::setrlimit(rlimit::Resource::AS, limit, limit));
        }
        let mut child = command
            .env_clear()
            .arg("extract-text")
            .arg("--kind")
            .arg(kind.as_str())
            .arg("--memory-mib")
            .arg((self.limits.memory_bytes / (1024 * 1024)).to_string())
            .arg("--max-chars")
            .arg((self.limits.max_chars + 1).to_string())
            .arg(path)
            .env("RUST_LOG", "error")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| ExtractError::Failed(format!("could not start the extractor: {e}")))?;
        let mut stdout = child.stdout.take().expect("piped stdout");
        let mut stderr = child.stderr.take().expect("piped stderr");
        // A UTF-8 char is at most 4 bytes: read a little more than the cap, never unbounded.
        let cap = (self.limits.max_chars as u64) * 4 + 4;
        let work = async {
            // stderr is drained on its own, so a child blocked on a full stdout pipe can be
            // stopped below instead of waiting for both streams to end.
            let err_task = tokio::spawn(async move {
                let mut err = Vec::new();
                let _ = (&mut stderr).take(64 * 1024).read_to_end(&mut err).await;
                err
            });
            let mut out = Vec::new();
            (&mut stdout).take(cap).read_to_end(&mut out).await.map_err(|e| ExtractError::Failed(e.to_string()))?;
            if out.len() as u64 >= cap {
                // More text than we keep: stop the child instead of waiting for it.
                let _ = child.start_kill();
                let _ = child.wait().await;
                return Ok::<_, ExtractError>((None, out, Vec::new()));
            }
            let status = child.wait().await.map_err(|e| ExtractError::Failed(e.to_string()))?;
            let err = err_task.await.unwrap_or_default();
            Ok((Some(status), out, err))
        };
        let (status, out, err) = match tokio::time::timeout(self.limits.timeout, work).await {
            Ok(result) => result?,
            Err(_) => return Err(ExtractError::Timeout(self.limits.timeout)),
        };
        if status.is_some_and(|s| !s.success()) {
            let detail = String::from_utf8_lossy(&err).lines().last().unwrap_or("no detail").to_owned();
            return Err(ExtractError::Failed(detail));
        }
        let text = String::from_utf8_lossy(&out);
        let truncated = text.chars().count() > self.limits.max_chars;
        let text: String =
            if truncated { text.chars().take(self.limits.max_chars).collect() } else { text.into_owned() };
        Ok(Extracted { segments: decode(&text), truncated })
    }
}

/// A plain-text file (TXT, Markdown, CSV) as one segment, cut after `max_chars` characters.
fn plain_text(path: &Path, max_chars: usize) -> Result<Extracted, ExtractError> {
    use std::io::Read;
    let failed = |e: std::io::Error| ExtractError::Failed(e.to_string());
    let limit = (max_chars as u64).saturating_mul(4).saturating_add(4);
    let mut data = Vec::new();
    std::fs::File::open(path).map_err(failed)?.take(limit).read_to_end(&mut data).map_err(failed)?;
    let text = String::from_utf8_lossy(&data);
    let text = clean(text.strip_prefix('\u{feff}').unwrap_or(&text));
    let truncated = text.chars().count() > max_chars;
    let text = if truncated { text.chars().take(max_chars).collect() } else { text };
    Ok(Extracted { segments: vec![Segment { location: Location::default(), text }], truncated })
}

/// The `extract-text` subcommand: limit our own memory, extract, print.
pub fn run_child(kind: &str, path: &Path, memory_mib: u64, max_chars: usize) -> anyhow::Result<()> {
    use std::io::Write;
    let kind = DocumentKind::parse(kind).ok_or_else(|| anyhow::anyhow!("unknown kind {kind}"))?;
    let bytes = memory_mib * 1024 * 1024;
    // Without a memory limit a document could take the machine: refuse to read it then.
    rlimit::setrlimit(rlimit::Resource::AS, bytes, bytes)
        .map_err(|e| anyhow::anyhow!("the memory limit for text extraction could not be set: {e}"))?;
    let text = encode(&extract_in_process(kind, path, max_chars.saturating_mul(4))?);
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_survive_the_trip_through_the_child_output() {
        let segments = vec![
            Segment { location: Location { page: Some(1), ..Default::default() }, text: "Page one\nline two".into() },
            Segment { location: Location { page: Some(2), ..Default::default() }, text: "a\u{1e}b\r\nc".into() },
        ];
        let back = decode(&encode(&segments));
        assert_eq!(back[0], segments[0]);
        assert_eq!(back[1].text, "ab\nc", "control characters are dropped");
        assert_eq!(back[1].location.page, Some(2));
        // Output cut in the middle still yields what came before the cut.
        let out = encode(&segments);
        let cut: String = out.chars().take(20).collect();
        assert_eq!(decode(&cut)[0].location.page, Some(1));
    }

    #[test]
    fn kinds_come_from_extensions_case_insensitively() {
        assert_eq!(DocumentKind::from_filename("Report.PDF"), Some(DocumentKind::Pdf));
        assert_eq!(DocumentKind::from_filename("a.tar.gz"), None);
        assert_eq!(DocumentKind::from_filename("noext"), None);
        assert_eq!(DocumentKind::from_filename("x.JPG"), Some(DocumentKind::Jpeg));
    }

    #[test]
    fn content_must_match_the_extension() {
        assert!(DocumentKind::Pdf.matches_content(b"%PDF-1.7\n..."));
        assert!(!DocumentKind::Pdf.matches_content(b"MZ\x90\0 an exe"));
        assert!(DocumentKind::Docx.matches_content(b"PK\x03\x04rest"));
        assert!(!DocumentKind::Png.matches_content(b"%PDF-"));
        assert!(DocumentKind::Txt.matches_content("Zellkultur – Protokoll".as_bytes()));
        assert!(!DocumentKind::Txt.matches_content(b"\x7fELF\x02\x01\x01\0\0"));
        assert!(DocumentKind::Json.matches_content(b"  {\"a\": 1}"));
        assert!(!DocumentKind::Json.matches_content(b"hello"));
        // A multi-byte character cut by the 8 KiB sample is still text.
        let cut = &"ä".as_bytes()[..1];
        assert!(DocumentKind::Csv.matches_content(&[b"a,b\n".as_slice(), cut].concat()));
    }
}
