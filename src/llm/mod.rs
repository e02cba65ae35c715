//! Language-model providers and the prompt rules: an OpenAI-compatible chat-completions
//! client (OpenAI, Azure OpenAI, vLLM, Ollama, llama.cpp server), a built-in offline provider
//! that needs no network (the default), the prompt, and retries. What is asked when, and
//! what is done with the answers, is the drafting module's business.

pub mod offline;
pub mod openai;
pub mod prompt;
pub mod retry;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

/// One document's text as the model sees it.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Document {
    pub name: String,
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
    /// (subsection title, answer text) of earlier rounds this question builds on.
    pub earlier_answers: Vec<(String, String)>,
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
