//! What operators' machines ask: `/healthz` (the process answers), `/readyz` (it can serve:
//! database, storage, workers) and `/metrics` (Prometheus, behind a bearer token). None needs
//! a login; none says more than it must.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::{HttpRequest, HttpResponse, web};
use subtle::ConstantTimeEq;

use super::AppState;
use super::error::{AppError, AppResult};
use crate::config::ExposeSecret;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(|| async { plain(HttpResponse::Ok(), "ok") }))
        .route("/readyz", web::get().to(ready))
        .route("/metrics", web::get().to(metrics));
}

fn plain(mut builder: actix_web::HttpResponseBuilder, body: &'static str) -> HttpResponse {
    builder.insert_header((header::CACHE_CONTROL, "no-store")).content_type("text/plain; charset=utf-8").body(body)
}

/// 200 "ready" or 503 "not ready"; why is in the log.
async fn ready(state: web::Data<AppState>) -> HttpResponse {
    match state.readiness.check(&state.ctx).await.is_ready() {
        true => plain(HttpResponse::Ok(), "ready"),
        false => plain(HttpResponse::ServiceUnavailable(), "not ready"),
    }
}

/// The Prometheus text exposition. Off (404) unless `TOXTEMP_METRICS_TOKEN` is set; then
/// only for `Authorization: Bearer <token>`.
async fn metrics(req: HttpRequest, state: web::Data<AppState>) -> AppResult<HttpResponse> {
    let Some(token) = &state.config().metrics_token else { return Err(AppError::NotFound) };
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    if !bool::from(given.as_bytes().ct_eq(token.expose_secret().as_bytes())) {
        return Ok(HttpResponse::Unauthorized()
            .insert_header((header::WWW_AUTHENTICATE, r#"Bearer realm="metrics""#))
            .content_type("text/plain; charset=utf-8")
            .body("a valid bearer token is needed"));
    }
    // The database may be what is failing: this process's counters are still worth having.
    let stats = state.db(|c| Ok(crate::admin::operational_stats(c)?)).await.unwrap_or_else(|err| {
        tracing::warn!(error = %err, "metrics without the database's numbers");
        Default::default()
    });
    let text = state.ctx.metrics.scrape(state.ctx.queue.workers_alive(), &stats);
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .content_type(prometheus::TEXT_FORMAT)
        .body(text))
}

/// Count every request by its route (the pattern, not the path: ids would make each assay a
/// series of its own), method and status, and time it.
pub async fn count_requests(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let metrics = req.app_data::<web::Data<AppState>>().map(|state| state.ctx.metrics.clone());
    let method = req.method().clone();
    let route = req.match_pattern();
    let result = next.call(req).await;
    if let Some(metrics) = metrics {
        let status = match &result {
            Ok(response) => response.status(),
            Err(err) => err.as_response_error().status_code(),
        };
        let route = route.as_deref().unwrap_or("unmatched");
        metrics.http_request(route, method.as_str(), status.as_u16(), started.elapsed());
    }
    result
}
