//! What `/metrics` says, in the Prometheus text format.
//!
//! Counters of this process (HTTP requests, documents uploaded, storage operations, language
//! model calls) live in one [`Metrics`] per application context, so tests read exact numbers.
//! What other processes do — the job queue, the cleanup and `verify-storage` commands run by
//! a timer — is read from the database when scraped ([`DatabaseStats`]): every server of a
//! deployment then reports the same, true values.

use std::sync::Mutex;
use std::time::Duration;

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};

/// Seconds: a page is milliseconds, an upload of a large document may take minutes.
const HTTP_BUCKETS: &[f64] = &[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 120.0];
/// Seconds: a model answers in a second or in minutes.
const LLM_BUCKETS: &[f64] = &[0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 40.0, 80.0, 160.0, 320.0];

pub struct Metrics {
    registry: Registry,
    http_requests: IntCounterVec,
    http_seconds: HistogramVec,
    documents: IntCounterVec,
    document_bytes: IntCounterVec,
    storage_operations: IntCounterVec,
    storage_bytes_written: IntCounter,
    llm_requests: IntCounterVec,
    llm_tokens: IntCounterVec,
    llm_seconds: HistogramVec,
    job_workers: IntGauge,
    jobs: IntGaugeVec,
    files: IntGaugeVec,
    files_deleted: IntGaugeVec,
    check_finished: IntGaugeVec,
    check_findings: IntGaugeVec,
    check_unrepaired: IntGaugeVec,
    cleanup_finished: IntGaugeVec,
    cleanup_deleted: IntGaugeVec,
    cleanup_errors: IntGaugeVec,
    /// One scrape at a time: gauges are reset and refilled from the database.
    scraping: Mutex<()>,
}

/// How a storage operation ended. A missing object is an answer, not a failure; a browser
/// that stopped sending is the client's doing, not storage's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StorageOutcome {
    Ok,
    NotFound,
    ClientAborted,
    Error,
}

impl StorageOutcome {
    fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::NotFound => "not_found",
            Self::ClientAborted => "client_aborted",
            Self::Error => "error",
        }
    }
}

/// What the database says when scraped.
#[derive(Clone, Debug, Default)]
pub struct DatabaseStats {
    /// (kind, status, count) of the jobs in the queue.
    pub jobs: Vec<(String, String, i64)>,
    /// (status, count) of the FileAsset rows.
    pub files: Vec<(String, i64)>,
    /// (audit event, count): kept files deleted, by why.
    pub files_deleted: Vec<(String, i64)>,
    pub last_storage_check: Option<StorageCheckStats>,
    pub last_cleanup: Option<CleanupStats>,
}

#[derive(Clone, Debug)]
pub struct StorageCheckStats {
    pub finished_at: chrono::NaiveDateTime,
    /// (finding kind, count).
    pub findings: Vec<(String, i64)>,
    pub unrepaired: i64,
}

#[derive(Clone, Debug)]
pub struct CleanupStats {
    pub finished_at: chrono::NaiveDateTime,
    pub deleted: i64,
    pub errors: i64,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let metrics = Self {
            http_requests: counter_vec(
                "toxtemp_http_requests_total",
                "HTTP requests answered",
                &["route", "method", "status"],
            ),
            http_seconds: histogram_vec(
                "toxtemp_http_request_duration_seconds",
                "Time until the response starts (a streamed body, like the ZIP, goes on after)",
                &["route", "method"],
                HTTP_BUCKETS,
            ),
            documents: counter_vec(
                "toxtemp_documents_uploaded_total",
                "Documents of submitted runs, by whether they were kept (consent)",
                &["kept"],
            ),
            document_bytes: counter_vec(
                "toxtemp_document_bytes_uploaded_total",
                "Bytes of the documents of submitted runs, by whether they were kept",
                &["kept"],
            ),
            storage_operations: counter_vec(
                "toxtemp_storage_operations_total",
                "Object storage operations, by how they ended",
                &["operation", "outcome"],
            ),
            storage_bytes_written: IntCounter::new("toxtemp_storage_bytes_written_total", "Bytes written to storage")
                .expect("valid metric"),
            llm_requests: counter_vec("toxtemp_llm_requests_total", "Language model requests", &["kind", "outcome"]),
            llm_tokens: counter_vec("toxtemp_llm_tokens_total", "Tokens the language model reported using", &["type"]),
            llm_seconds: histogram_vec(
                "toxtemp_llm_request_duration_seconds",
                "Time for a language model request",
                &["kind"],
                LLM_BUCKETS,
            ),
            job_workers: IntGauge::new("toxtemp_job_workers_alive", "Job workers running in this process")
                .expect("valid metric"),
            jobs: gauge_vec("toxtemp_jobs", "Jobs in the queue (all servers)", &["kind", "status"]),
            files: gauge_vec("toxtemp_file_assets", "Kept files, by status", &["status"]),
            files_deleted: gauge_vec(
                "toxtemp_file_assets_deleted",
                "Kept files deleted so far, by why (from the audit trail)",
                &["reason"],
            ),
            check_finished: gauge_vec(
                "toxtemp_storage_check_last_run_timestamp_seconds",
                "When verify-storage last finished (Unix time; absent if never)",
                &[],
            ),
            check_findings: gauge_vec(
                "toxtemp_storage_check_findings",
                "Findings of the last verify-storage run, by kind",
                &["kind"],
            ),
            check_unrepaired: gauge_vec(
                "toxtemp_storage_check_unrepaired",
                "Findings of the last verify-storage run that are not repaired",
                &[],
            ),
            cleanup_finished: gauge_vec(
                "toxtemp_cleanup_last_run_timestamp_seconds",
                "When cleanup-orphaned-files last finished (Unix time; absent if never)",
                &[],
            ),
            cleanup_deleted: gauge_vec(
                "toxtemp_cleanup_last_run_deleted",
                "Orphaned files the last cleanup deleted",
                &[],
            ),
            cleanup_errors: gauge_vec(
                "toxtemp_cleanup_last_run_errors",
                "Orphaned files the last cleanup could not delete",
                &[],
            ),
            registry,
            scraping: Mutex::new(()),
        };
        metrics.register_all();
        metrics
    }

    fn register_all(&self) {
        let collectors: Vec<Box<dyn prometheus::core::Collector>> = vec![
            Box::new(self.http_requests.clone()),
            Box::new(self.http_seconds.clone()),
            Box::new(self.documents.clone()),
            Box::new(self.document_bytes.clone()),
            Box::new(self.storage_operations.clone()),
            Box::new(self.storage_bytes_written.clone()),
            Box::new(self.llm_requests.clone()),
            Box::new(self.llm_tokens.clone()),
            Box::new(self.llm_seconds.clone()),
            Box::new(self.job_workers.clone()),
            Box::new(self.jobs.clone()),
            Box::new(self.files.clone()),
            Box::new(self.files_deleted.clone()),
            Box::new(self.check_finished.clone()),
            Box::new(self.check_findings.clone()),
            Box::new(self.check_unrepaired.clone()),
            Box::new(self.cleanup_finished.clone()),
            Box::new(self.cleanup_deleted.clone()),
            Box::new(self.cleanup_errors.clone()),
        ];
        for collector in collectors {
            self.registry.register(collector).expect("metric names are unique");
        }
        #[cfg(target_os = "linux")]
        self.registry
            .register(Box::new(prometheus::process_collector::ProcessCollector::for_self()))
            .expect("process metrics register once");
    }

    pub fn http_request(&self, route: &str, method: &str, status: u16, elapsed: Duration) {
        self.http_requests.with_label_values(&[route, method, &status.to_string()]).inc();
        self.http_seconds.with_label_values(&[route, method]).observe(elapsed.as_secs_f64());
    }

    /// The documents of a submitted run.
    pub fn documents_uploaded(&self, kept: bool, count: usize, bytes: u64) {
        let kept = if kept { "true" } else { "false" };
        self.documents.with_label_values(&[kept]).inc_by(count as u64);
        self.document_bytes.with_label_values(&[kept]).inc_by(bytes);
    }

    pub fn storage_operation(&self, operation: &str, outcome: StorageOutcome) {
        self.storage_operations.with_label_values(&[operation, outcome.as_str()]).inc();
    }

    pub fn storage_bytes_written(&self, bytes: u64) {
        self.storage_bytes_written.inc_by(bytes);
    }

    pub fn llm_request(&self, kind: &str, ok: bool, elapsed: Duration, tokens: Option<(i64, i64)>) {
        self.llm_requests.with_label_values(&[kind, if ok { "ok" } else { "error" }]).inc();
        self.llm_seconds.with_label_values(&[kind]).observe(elapsed.as_secs_f64());
        if let Some((prompt, completion)) = tokens {
            self.llm_tokens.with_label_values(&["prompt"]).inc_by(prompt.max(0) as u64);
            self.llm_tokens.with_label_values(&["completion"]).inc_by(completion.max(0) as u64);
        }
    }

    /// The text exposition: this process's counters and the database's state.
    pub fn scrape(&self, workers_alive: usize, stats: &DatabaseStats) -> String {
        let _one_at_a_time = self.scraping.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        self.job_workers.set(workers_alive as i64);
        self.observe_database(stats);
        let mut text = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut text).expect("text encoding of gathered metrics");
        String::from_utf8(text).expect("the text format is UTF-8")
    }

    fn observe_database(&self, stats: &DatabaseStats) {
        self.jobs.reset();
        for (kind, status, n) in &stats.jobs {
            self.jobs.with_label_values(&[kind, status]).set(*n);
        }
        fill(&self.files, &stats.files);
        fill(&self.files_deleted, &stats.files_deleted);
        // Gauges of a run that never happened are left out (a timestamp of 0 would say 1970).
        for gauge in [
            &self.check_finished,
            &self.check_unrepaired,
            &self.cleanup_finished,
            &self.cleanup_deleted,
            &self.cleanup_errors,
        ] {
            gauge.reset();
        }
        self.check_findings.reset();
        if let Some(check) = &stats.last_storage_check {
            self.check_finished.with_label_values(&[] as &[&str]).set(check.finished_at.and_utc().timestamp());
            fill(&self.check_findings, &check.findings);
            self.check_unrepaired.with_label_values(&[] as &[&str]).set(check.unrepaired);
        }
        if let Some(cleanup) = &stats.last_cleanup {
            self.cleanup_finished.with_label_values(&[] as &[&str]).set(cleanup.finished_at.and_utc().timestamp());
            self.cleanup_deleted.with_label_values(&[] as &[&str]).set(cleanup.deleted);
            self.cleanup_errors.with_label_values(&[] as &[&str]).set(cleanup.errors);
        }
    }
}

fn fill(gauges: &IntGaugeVec, values: &[(String, i64)]) {
    gauges.reset();
    for (label, n) in values {
        gauges.with_label_values(&[label]).set(*n);
    }
}

fn counter_vec(name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric")
}

fn gauge_vec(name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric")
}

fn histogram_vec(name: &str, help: &str, labels: &[&str], buckets: &[f64]) -> HistogramVec {
    HistogramVec::new(HistogramOpts::new(name, help).buckets(buckets.to_vec()), labels).expect("valid metric")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
        text.lines().find(|l| l.starts_with(prefix))
    }

    #[test]
    fn counters_and_database_state_come_out_in_the_text_format() {
        let metrics = Metrics::new();
        metrics.http_request("/assays/{id}", "GET", 200, Duration::from_millis(30));
        metrics.documents_uploaded(true, 2, 2048);
        metrics.storage_operation("put", StorageOutcome::Error);
        metrics.llm_request("answer", true, Duration::from_secs(2), Some((1200, 80)));
        let at = chrono::NaiveDate::from_ymd_opt(2026, 11, 30).unwrap().and_hms_opt(3, 0, 0).unwrap();
        let stats = DatabaseStats {
            jobs: vec![("draft_assay".into(), "failed".into(), 3)],
            last_storage_check: Some(StorageCheckStats {
                finished_at: at,
                findings: vec![("missing_object".into(), 2)],
                unrepaired: 1,
            }),
            ..DatabaseStats::default()
        };
        let text = metrics.scrape(2, &stats);
        assert!(text.contains(r#"toxtemp_http_requests_total{method="GET",route="/assays/{id}",status="200"} 1"#));
        assert!(text.contains(
            r#"toxtemp_http_request_duration_seconds_bucket{method="GET",route="/assays/{id}",le="0.05"} 1"#
        ));
        assert!(text.contains(r#"toxtemp_documents_uploaded_total{kept="true"} 2"#));
        assert!(text.contains(r#"toxtemp_storage_operations_total{operation="put",outcome="error"} 1"#));
        assert!(text.contains(r#"toxtemp_llm_tokens_total{type="prompt"} 1200"#));
        assert!(text.contains(r#"toxtemp_jobs{kind="draft_assay",status="failed"} 3"#));
        assert!(text.contains("toxtemp_job_workers_alive 2"));
        assert_eq!(
            line(&text, "toxtemp_storage_check_last_run_timestamp_seconds "),
            Some("toxtemp_storage_check_last_run_timestamp_seconds 1796007600")
        );
        assert!(text.contains(r#"toxtemp_storage_check_findings{kind="missing_object"} 2"#));
        assert!(line(&text, "toxtemp_cleanup_last_run_timestamp_seconds").is_none(), "never ran: no 1970");

        let text = metrics.scrape(2, &DatabaseStats::default());
        assert!(!text.contains("toxtemp_jobs{"), "jobs that left the queue leave the gauge");
        assert!(line(&text, "toxtemp_storage_check_last_run_timestamp_seconds").is_none());
    }
}
