//! Retries around a provider call: honour 429 + Retry-After, back off exponentially (with
//! jitter) on 5xx, timeouts and connection failures, give up at once on other refusals.

use std::time::Duration;

use rand::Rng;

use super::{AnswerRequest, Completion, LlmError, LlmProvider};
pub use crate::config::RetryPolicy;

impl RetryPolicy {
    /// The wait before attempt `attempt + 1` (attempt counts from 1).
    pub fn delay(&self, attempt: u32, err: &LlmError) -> Duration {
        if let LlmError::RateLimited { retry_after: Some(wait) } = err {
            return (*wait).min(self.max_delay);
        }
        let exp = self.base_delay.saturating_mul(1u32 << (attempt - 1).min(16));
        let jitter = rand::rng().random_range(0.0..0.25);
        exp.mul_f64(1.0 + jitter).min(self.max_delay)
    }
}

/// Ask until an answer comes back, a refusal arrives or the attempts are used up.
pub async fn answer_with_retries(
    provider: &dyn LlmProvider,
    request: &AnswerRequest,
    policy: &RetryPolicy,
) -> Result<Completion, LlmError> {
    let mut attempt = 1;
    loop {
        match provider.answer(request).await {
            Ok(done) => return Ok(done),
            Err(err) if err.is_retryable() && attempt < policy.max_attempts => {
                let wait = policy.delay(attempt, &err);
                tracing::warn!(attempt, error = %err, wait_ms = wait.as_millis() as u64, "LLM call failed; retrying");
                tokio::time::sleep(wait).await;
                attempt += 1;
            }
            Err(err) => return Err(err),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_wins_and_backoff_grows_but_is_capped() {
        let p =
            RetryPolicy { max_attempts: 5, base_delay: Duration::from_millis(100), max_delay: Duration::from_secs(2) };
        let limited = LlmError::RateLimited { retry_after: Some(Duration::from_millis(1500)) };
        assert_eq!(p.delay(1, &limited), Duration::from_millis(1500));
        let server = LlmError::Server(503);
        let first = p.delay(1, &server);
        assert!(first >= Duration::from_millis(100) && first <= Duration::from_millis(125));
        let third = p.delay(3, &server);
        assert!(third >= Duration::from_millis(400) && third <= Duration::from_millis(500));
        assert_eq!(p.delay(30, &server), Duration::from_secs(2));
        assert!(!LlmError::Refused("bad key".into()).is_retryable());
    }
}
