//! CSRF protection for every state-changing request (synchronizer token pattern).
//!
//! The token lives in the (encrypted, HttpOnly) session cookie (see `page::csrf_token`) and is
//! embedded in each form.
//! One middleware checks every non-GET/HEAD/OPTIONS request, so a new handler cannot forget
//! it. The token is read from the `X-CSRF-Token` header, from the `csrf_token` field of a
//! urlencoded body, or — for multipart uploads, whose bodies we must not buffer — from the
//! `csrf_token` query parameter of the form's action.

use actix_session::SessionExt;
use actix_web::HttpMessage;
use actix_web::ResponseError;
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::web::Bytes;
use subtle::ConstantTimeEq;

use super::error::AppError;
use super::page::CSRF_SESSION_KEY;

pub const FIELD: &str = "csrf_token";
pub const HEADER: &str = "x-csrf-token";
/// Urlencoded forms here are small; a bigger body is not a form of ours.
const MAX_FORM_BYTES: usize = 256 * 1024;

/// Refusals are answered here as responses (not errors), so that the middleware outside —
/// the security headers — still applies to them.
pub async fn guard(
    mut req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    if req.method().is_safe() {
        return next.call(req).await.map(ServiceResponse::map_into_left_body);
    }
    let expected = req.get_session().get::<String>(CSRF_SESSION_KEY).ok().flatten();
    let presented = match presented_token(&mut req).await {
        Ok(token) => token,
        Err(refusal) => return Ok(req.into_response(refusal.error_response()).map_into_right_body()),
    };
    let ok = match (expected, presented) {
        (Some(e), Some(p)) => e.as_bytes().ct_eq(p.as_bytes()).into(),
        _ => false,
    };
    if !ok {
        tracing::warn!(path = %super::loggable_path(req.path()), "CSRF token missing or wrong");
        return Ok(req.into_response(AppError::CsrfRejected.error_response()).map_into_right_body());
    }
    next.call(req).await.map(ServiceResponse::map_into_left_body)
}

async fn presented_token(req: &mut ServiceRequest) -> Result<Option<String>, AppError> {
    if let Some(value) = req.headers().get(HEADER).and_then(|v| v.to_str().ok()) {
        return Ok(Some(value.to_owned()));
    }
    let content_type =
        req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_ascii_lowercase();
    if content_type.starts_with("application/x-www-form-urlencoded") {
        let body = read_body(req).await?;
        let token = field_from_urlencoded(&body);
        // Put the body back for the handler's own extractor.
        req.set_payload(Payload::from(body));
        return Ok(token);
    }
    Ok(field_from_urlencoded(req.query_string().as_bytes()))
}

async fn read_body(req: &mut ServiceRequest) -> Result<Bytes, AppError> {
    use futures_util::StreamExt;
    let mut payload = req.take_payload();
    let mut body = actix_web::web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|_| AppError::BadRequest("The form could not be read.".into()))?;
        if body.len() + chunk.len() > MAX_FORM_BYTES {
            return Err(AppError::PayloadTooLarge("This form is larger than we accept.".into()));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

fn field_from_urlencoded(body: &[u8]) -> Option<String> {
    serde_urlencoded::from_bytes::<Vec<(String, String)>>(body)
        .ok()?
        .into_iter()
        .find_map(|(k, v)| (k == FIELD).then_some(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_token_among_fields() {
        assert_eq!(field_from_urlencoded(b"a=1&csrf_token=abc%20d&b=2").as_deref(), Some("abc d"));
        assert_eq!(field_from_urlencoded(b"a=1"), None);
    }
}
