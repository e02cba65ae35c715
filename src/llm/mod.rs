//! Language-model providers and the prompt rules: an OpenAI-compatible chat-completions
//! client (OpenAI, Azure OpenAI, vLLM, Ollama, llama.cpp server), a built-in offline provider
//! that needs no network (the default), the prompt, and retries. What is asked when, and
//! what is done with the answers, is the drafting module's business.

pub mod metered;
pub mod offline;
pub mod openai;
pub mod prompt;
pub mod retry;

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::ingest::Passage;

/// One document as the model sees it: its name and its passages.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Document {
    pub name: String,
    pub passages: Vec<Passage>,
}

impl Document {
    /// A document of one passage (an image description, a test).
    pub fn from_text(name: impl Into<String>, text: &str) -> Self {
        let segment = crate::ingest::Segment { location: Default::default(), text: text.to_owned() };
        Self { name: name.into(), passages: crate::ingest::passages::split(&[segment]) }
    }

    pub fn chars(&self) -> usize {
        self.passages.iter().map(|p| p.text.chars().count()).sum()
    }
}

/// A passage's id within one request: `D2.P14` is passage 14 of the request's second document.
/// Models cite these ids; they mean nothing outside the request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PassageId {
    /// From 1, in the order of `AnswerRequest::documents`.
    pub document: usize,
    /// `Passage::position`.
    pub passage: u32,
}

impl fmt::Display for PassageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "D{}.P{}", self.document, self.passage)
    }
}

impl FromStr for PassageId {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        let (d, p) = s.trim().strip_prefix(['D', 'd']).ok_or(())?.split_once('.').ok_or(())?;
        let p = p.strip_prefix(['P', 'p']).ok_or(())?;
        Ok(Self { document: d.parse().map_err(|_| ())?, passage: p.parse().map_err(|_| ())? })
    }
}

/// An answer of an earlier round a question builds on; its citations are written with the
/// passage ids of this request (`_(Source: D1.P3 "…")_`) where the passage is part of it.
#[derive(Clone, Debug, PartialEq)]
pub struct EarlierAnswer {
    pub subsection: String,
    pub text: String,
}

/// Everything needed to answer one question.
#[derive(Clone, Debug)]
pub struct AnswerRequest {
    pub assay_title: String,
    pub assay_description: String,
    /// Subsection title and guidance, then the question itself.
    pub subsection: String,
    pub guidance: String,
    pub question: String,
    pub additional_instruction: String,
    /// The documents, already cut to the context budget. Empty when the question is answered
    /// only from earlier answers.
    pub documents: Arc<Vec<Document>>,
    /// Answers of earlier rounds this question builds on.
    pub earlier_answers: Vec<EarlierAnswer>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
}

#[derive(Clone, Debug)]
pub struct Completion {
    pub text: String,
    pub usage: Option<Usage>,
}

#[derive(Debug, thiserror::Error)]
pub enum LlmError {
    #[error("rate limited")]
    RateLimited { retry_after: Option<Duration> },
    #[error("server error {0}")]
    Server(u16),
    #[error("timed out")]
    Timeout,
    #[error("connection failed: {0}")]
    Transport(String),
    /// A 4xx other than 429, or an answer we cannot read: retrying will not help.
    #[error("request refused: {0}")]
    Refused(String),
}

impl LlmError {
    pub fn is_retryable(&self) -> bool {
        !matches!(self, Self::Refused(_))
    }
}

#[async_trait]
pub trait LlmProvider: Send + Sync {
    fn name(&self) -> &str;
    /// How many characters of document context fit the model (prompt overhead excluded).
    fn context_chars(&self) -> usize;
    fn supports_images(&self) -> bool {
        false
    }
    async fn answer(&self, request: &AnswerRequest) -> Result<Completion, LlmError>;
    /// Describe an image for the document context (only when `supports_images`).
    async fn describe_image(&self, _name: &str, _mime: &str, _bytes: &[u8]) -> Result<Completion, LlmError> {
        Err(LlmError::Refused("this provider does not read images".into()))
    }
}

/// The exact reply when the documents do not answer a question.
pub const NOT_FOUND: &str = "Answer not found in documents.";

/// The reply is [`NOT_FOUND`] (whatever the case, spacing or final full stop).
pub fn is_not_found(text: &str) -> bool {
    text.trim().trim_end_matches('.').trim().eq_ignore_ascii_case(NOT_FOUND.trim_end_matches('.'))
}

/// rustls needs one process-wide crypto provider before any HTTPS client is built (we use
/// ring, as the S3 client does). Safe to call more than once.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The provider the configuration asks for.
pub fn provider_from_config(config: &crate::config::LlmConfig) -> anyhow::Result<Arc<dyn LlmProvider>> {
    Ok(match &config.base_url {
        Some(_) => Arc::new(openai::OpenAiCompatible::new(config)?),
        None => Arc::new(offline::OfflineProvider::default()),
    })
}
