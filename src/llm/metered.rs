//! Any language model, counted: requests by kind and outcome, their time, and the tokens the
//! model reports. The application context wraps its provider in this once.

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;

use super::{AnswerRequest, Completion, LlmError, LlmProvider};
use crate::telemetry::Metrics;

pub struct MeteredProvider {
    inner: Arc<dyn LlmProvider>,
    metrics: Arc<Metrics>,
}

impl MeteredProvider {
    pub fn wrap(inner: Arc<dyn LlmProvider>, metrics: Arc<Metrics>) -> Arc<dyn LlmProvider> {
        Arc::new(Self { inner, metrics })
    }

    fn count(&self, kind: &str, started: Instant, result: &Result<Completion, LlmError>) {
        let tokens =
            result.as_ref().ok().and_then(|c| c.usage.as_ref()).map(|u| (u.prompt_tokens, u.completion_tokens));
        self.metrics.llm_request(kind, result.is_ok(), started.elapsed(), tokens);
    }
}

#[async_trait]
impl LlmProvider for MeteredProvider {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn context_chars(&self) -> usize {
        self.inner.context_chars()
    }

    fn supports_images(&self) -> bool {
        self.inner.supports_images()
    }

    async fn answer(&self, request: &AnswerRequest) -> Result<Completion, LlmError> {
        let started = Instant::now();
        let result = self.inner.answer(request).await;
        self.count("answer", started, &result);
        result
    }

    async fn describe_image(&self, name: &str, mime: &str, bytes: &[u8]) -> Result<Completion, LlmError> {
        let started = Instant::now();
        let result = self.inner.describe_image(name, mime, bytes).await;
        self.count("image", started, &result);
        result
    }
}
