//! Static assets compiled into the binary, so the app runs from any directory and never
//! loads anything from the internet.

use actix_web::http::header;
use actix_web::{HttpResponse, web};

use super::error::AppError;

struct Asset {
    path: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

macro_rules! asset {
    ($path:literal, $ct:literal) => {
        Asset { path: $path, content_type: $ct, body: include_bytes!(concat!("../../static/", $path)) }
    };
}

const ASSETS: &[Asset] = &[
    asset!("vendor/bootstrap/bootstrap.min.css", "text/css; charset=utf-8"),
    asset!("vendor/bootstrap/bootstrap.bundle.min.js", "text/javascript; charset=utf-8"),
    asset!("app.css", "text/css; charset=utf-8"),
    asset!("app.js", "text/javascript; charset=utf-8"),
];

pub async fn serve(path: web::Path<String>) -> Result<HttpResponse, AppError> {
    let asset = ASSETS.iter().find(|a| a.path == path.as_str()).ok_or(AppError::NotFound)?;
    Ok(HttpResponse::Ok()
        .content_type(asset.content_type)
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .body(asset.body))
}
