//! `/static/{name}`: the embedded stylesheet and script, cached for a day.

use axum::extract::Path;
use axum::http::header;
use axum::response::{IntoResponse, Response};

use crate::assets;
use crate::error::PageError;

pub async fn serve(Path(name): Path<String>) -> Response {
    match assets::find(&name) {
        Some(asset) => (
            [
                (header::CONTENT_TYPE, asset.content_type),
                (header::CACHE_CONTROL, "public, max-age=86400"),
            ],
            asset.bytes,
        )
            .into_response(),
        None => PageError::NotFound.into_response(),
    }
}
