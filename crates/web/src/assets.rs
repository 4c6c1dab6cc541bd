//! The static files of the pages, built into the binary: the image needs nothing beside it.

use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

/// Name, content type, content.
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "style.css",
        "text/css; charset=utf-8",
        include_str!("../assets/style.css"),
    ),
    (
        "classic.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/classic.js"),
    ),
    (
        "ngui.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/ngui.js"),
    ),
];

/// `GET /assets/{name}`: only the names above exist; anything else (`..`, `%2f`) is 404.
pub(crate) async fn asset(Path(name): Path<String>) -> Response {
    match ASSETS.iter().find(|(n, _, _)| *n == name) {
        Some((_, kind, body)) => (
            [
                (header::CONTENT_TYPE, *kind),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            *body,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "no such file").into_response(),
    }
}
