//! Failed-login throttling: after `MAX_FAILURES` wrong passwords for one email within the
//! window, further attempts for it are refused (429) until the window has passed. Kept in
//! memory: a restart forgives, which is fine against online guessing.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub const MAX_FAILURES: u32 = 10;
pub const WINDOW: Duration = Duration::from_secs(15 * 60);

#[derive(Default)]
pub struct LoginThrottle {
    failures: Mutex<HashMap<String, (u32, Instant)>>,
}

impl LoginThrottle {
    /// `Some(wait)` when this email is locked out for now.
    pub fn locked(&self, email: &str) -> Option<Duration> {
        let map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let (count, since) = map.get(&key(email))?;
        let elapsed = since.elapsed();
        (*count >= MAX_FAILURES && elapsed < WINDOW).then(|| WINDOW - elapsed)
    }

    pub fn failed(&self, email: &str) {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        // Forget stale entries now and then so the map cannot grow without bound.
        if map.len() > 10_000 {
            map.retain(|_, (_, since)| since.elapsed() < WINDOW);
        }
        let entry = map.entry(key(email)).or_insert((0, Instant::now()));
        if entry.1.elapsed() >= WINDOW {
            *entry = (0, Instant::now());
        }
        entry.0 += 1;
    }

    pub fn succeeded(&self, email: &str) {
        self.failures.lock().unwrap_or_else(|p| p.into_inner()).remove(&key(email));
    }
}

fn key(email: &str) -> String {
    crate::db::models::person::normalize_email(email)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ten_failures_lock_an_email_and_a_success_clears_it() {
        let t = LoginThrottle::default();
        for _ in 0..MAX_FAILURES - 1 {
            t.failed("A@x.org");
        }
        assert!(t.locked("a@x.org").is_none());
        t.failed("a@x.org");
        assert!(t.locked(" A@X.ORG ").is_some());
        assert!(t.locked("b@x.org").is_none());
        t.succeeded("a@x.org");
        assert!(t.locked("a@x.org").is_none());
    }
}
