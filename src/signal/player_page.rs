//! A minimal browser player for WHEP, served by the edge itself at `GET /play/{app}/{stream}`.
//!
//! Serving it from the edge keeps the WHEP `POST` same-origin (no CORS preflight) and gives
//! users and the browser end-to-end test (`tests/browser_whep.rs`) the same page. It is a
//! static document: the stream it plays is read from its own URL by the page's script, so
//! nothing from the request is reflected into the HTML.

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

/// The page (video only: browsers cannot decode the AAC the edge relays).
pub const PLAYER_HTML: &str = include_str!("player.html");

/// The `GET /play/{app}/{stream}` route.
pub fn router() -> Router {
    Router::new().route("/play/{app}/{stream}", get(page))
}

async fn page(Path((app, stream)): Path<(String, String)>) -> Response {
    if super::negotiate::stream_key(&format!("/{app}/{stream}")).is_none() {
        return (StatusCode::NOT_FOUND, "invalid stream name").into_response();
    }
    let mut r = PLAYER_HTML.into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt as _;

    async fn get_status(uri: &str) -> (StatusCode, Option<String>) {
        let r = router()
            .oneshot(Request::get(uri).body(Body::empty()).expect("request"))
            .await
            .expect("infallible");
        let ct = r
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        (r.status(), ct)
    }

    #[tokio::test]
    async fn serves_the_page_for_valid_stream_names_only() {
        let (status, ct) = get_status("/play/live/demo").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(ct.as_deref(), Some("text/html; charset=utf-8"));
        assert_eq!(get_status("/play/live/..").await.0, StatusCode::NOT_FOUND);
        assert_eq!(get_status("/play/live").await.0, StatusCode::NOT_FOUND);
    }

    #[test]
    fn page_plays_the_whep_endpoint_of_its_own_path() {
        assert!(PLAYER_HTML.contains("/whep/${path}"));
        assert!(PLAYER_HTML.contains("requestVideoFrameCallback"));
    }
}
