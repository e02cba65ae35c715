//! Language-model providers and the prompt rules: an OpenAI-compatible chat-completions
//! client (OpenAI, Azure OpenAI, vLLM, Ollama, llama.cpp server) and a built-in offline
//! provider that needs no network (the default).

pub mod offline;
pub mod openai;
pub mod pipeline;
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

/// LLM settings from the environment.
#[derive(Clone, Debug)]
pub struct LlmConfig {
    /// `LLM_BASE_URL` — e.g. `https://api.openai.com/v1`, `http://127.0.0.1:11434/v1` (Ollama).
    /// Unset: the offline provider.
    pub base_url: Option<String>,
    /// `LLM_API_KEY`.
    pub api_key: Option<String>,
    /// `LLM_MODEL`.
    pub model: String,
    /// `LLM_AZURE_API_VERSION` — set for Azure OpenAI (`api-key` header, `?api-version=`).
    pub azure_api_version: Option<String>,
    /// `LLM_CONTEXT_CHARS` — document characters per prompt.
    pub context_chars: usize,
    /// `LLM_TIMEOUT_SECS` — per request.
    pub timeout: Duration,
    /// `LLM_CONCURRENCY` — questions answered at once per assay.
    pub concurrency: usize,
    /// `LLM_MAX_ATTEMPTS` — tries per question (429/5xx/timeouts are retried).
    pub max_attempts: u32,
    /// `LLM_SUPPORTS_IMAGES` — the model accepts images (for `extract_images`).
    pub supports_images: bool,
}

impl Default for LlmConfig {
    fn default() -> Self {
        Self {
            base_url: None,
            api_key: None,
            model: "gpt-4o-mini".into(),
            azure_api_version: None,
            context_chars: 400_000,
            timeout: Duration::from_secs(120),
            concurrency: 4,
            max_attempts: 5,
            supports_images: false,
        }
    }
}

/// rustls needs one process-wide crypto provider before any HTTPS client is built (we use
/// ring, as the S3 client does). Safe to call more than once.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The provider the configuration asks for.
pub fn provider_from_config(config: &LlmConfig) -> anyhow::Result<Arc<dyn LlmProvider>> {
    Ok(match &config.base_url {
        Some(_) => Arc::new(openai::OpenAiCompatible::new(config)?),
        None => Arc::new(offline::OfflineProvider::default()),
    })
}
