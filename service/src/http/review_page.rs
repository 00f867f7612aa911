//! The review page for QA staff (`GET /review`, `/review/app.js`, `/review/app.css`): plain HTML, JavaScript and
//! CSS compiled into the binary, so that the page needs no build step, no files beside the binary and nothing from
//! outside the server. The page itself talks to the JSON API (`/v1/review/queue`, `/v1/review/stats`,
//! `/v1/feedback`, `/v1/model`) with the API key the reviewer types in.
//!
//! The assets are answered with an `ETag` of their content and `Cache-Control: no-cache`: a browser keeps its copy
//! but asks each time whether it is still current, so that a new binary never serves a page with a stale script.
//! The page is not in `/openapi.json`, which documents the JSON API for programs; this module documents the page.

use std::sync::OnceLock;

use axum::Router;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use sha2::{Digest, Sha256};

/// The page's routes: `/review` (and `/review/`), `/review/app.js`, `/review/app.css`.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/review", get(page))
        .route("/review/", get(page))
        .route("/review/app.js", get(script))
        .route("/review/app.css", get(style))
}

/// One file of the page, with its content type.
struct Asset {
    body: &'static str,
    content_type: &'static str,
}

const PAGE: Asset = Asset {
    body: include_str!("../../assets/review/index.html"),
    content_type: "text/html; charset=utf-8",
};

const SCRIPT: Asset = Asset {
    body: include_str!("../../assets/review/app.js"),
    content_type: "text/javascript; charset=utf-8",
};

const STYLE: Asset = Asset {
    body: include_str!("../../assets/review/app.css"),
    content_type: "text/css; charset=utf-8",
};

/// Everything the page loads comes from this server, and only the API is fetched: the policy turns an injected
/// script or a foreign style sheet into an error instead of a leak of the API key the page holds.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    img-src 'self' data:; connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'";

/// A strong validator of the asset's bytes (quoted, as HTTP wants it).
fn etag(body: &str) -> String {
    let digest = Sha256::digest(body.as_bytes());
    let hex: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
    format!("\"{hex}\"")
}

/// The asset's `ETag`, computed once per asset.
fn cached_etag(asset: &Asset, cell: &'static OnceLock<String>) -> &'static str {
    cell.get_or_init(|| etag(asset.body))
}

/// Whether `If-None-Match` names `tag` (or is `*`).
fn matches(headers: &HeaderMap, tag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|v| v.trim().trim_start_matches("W/"))
        .any(|v| v == tag || v == "*")
}

fn answer(asset: &Asset, tag: &'static str, request: &HeaderMap) -> Response {
    let common = [
        (header::ETAG, HeaderValue::from_static(tag)),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        (
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ),
    ];
    if matches(request, tag) {
        return (StatusCode::NOT_MODIFIED, common).into_response();
    }
    (
        common,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static(asset.content_type),
            ),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(CONTENT_SECURITY_POLICY),
            ),
        ],
        asset.body,
    )
        .into_response()
}

/// `GET /review`: the page.
pub async fn page(headers: HeaderMap) -> Response {
    static TAG: OnceLock<String> = OnceLock::new();
    answer(&PAGE, cached_etag(&PAGE, &TAG), &headers)
}

/// `GET /review/app.js`: the page's script.
pub async fn script(headers: HeaderMap) -> Response {
    static TAG: OnceLock<String> = OnceLock::new();
    answer(&SCRIPT, cached_etag(&SCRIPT, &TAG), &headers)
}

/// `GET /review/app.css`: the page's style sheet.
pub async fn style(headers: HeaderMap) -> Response {
    static TAG: OnceLock<String> = OnceLock::new();
    answer(&STYLE, cached_etag(&STYLE, &TAG), &headers)
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::Request;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    use super::*;

    async fn fetch(path: &str, if_none_match: Option<&str>) -> (StatusCode, HeaderMap, String) {
        let mut request = Request::get(path);
        if let Some(tag) = if_none_match {
            request = request.header(header::IF_NONE_MATCH, tag);
        }
        let response = routes::<()>()
            .oneshot(request.body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, headers, String::from_utf8(body.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn every_asset_has_its_content_type_and_cache_headers() {
        for (path, content_type, asset) in [
            ("/review", "text/html; charset=utf-8", &PAGE),
            ("/review/", "text/html; charset=utf-8", &PAGE),
            ("/review/app.js", "text/javascript; charset=utf-8", &SCRIPT),
            ("/review/app.css", "text/css; charset=utf-8", &STYLE),
        ] {
            let (status, headers, body) = fetch(path, None).await;
            assert_eq!(status, StatusCode::OK, "{path}");
            assert_eq!(headers[header::CONTENT_TYPE], content_type, "{path}");
            assert_eq!(headers[header::CACHE_CONTROL], "no-cache", "{path}");
            assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff", "{path}");
            assert_eq!(headers[header::ETAG], etag(asset.body).as_str(), "{path}");
            assert!(
                headers.contains_key(header::CONTENT_SECURITY_POLICY),
                "{path}"
            );
            assert_eq!(body, asset.body, "{path}");
        }
    }

    #[tokio::test]
    async fn a_current_copy_is_answered_not_modified_and_a_stale_one_gets_the_asset() {
        let tag = etag(SCRIPT.body);
        let (status, headers, body) = fetch("/review/app.js", Some(&tag)).await;
        assert_eq!(status, StatusCode::NOT_MODIFIED);
        assert_eq!(headers[header::ETAG], tag.as_str());
        assert!(body.is_empty());

        let listed = format!("\"stale\", W/{tag}");
        let (status, _, _) = fetch("/review/app.js", Some(&listed)).await;
        assert_eq!(status, StatusCode::NOT_MODIFIED);

        let (status, _, body) = fetch("/review/app.js", Some("\"stale\"")).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body, SCRIPT.body);
    }

    #[test]
    fn the_assets_differ_so_their_tags_do() {
        let tags = [etag(PAGE.body), etag(SCRIPT.body), etag(STYLE.body)];
        assert_ne!(tags[0], tags[1]);
        assert_ne!(tags[1], tags[2]);
        assert_ne!(tags[0], tags[2]);
    }

    #[test]
    fn the_page_loads_only_its_own_files_and_is_in_spanish() {
        assert!(PAGE.body.contains("<html lang=\"es\">"));
        assert!(PAGE.body.contains("src=\"/review/app.js\""));
        assert!(PAGE.body.contains("href=\"/review/app.css\""));
        // No CDN, font service or analytics: the page must work on a network without the internet.
        for asset in [&PAGE, &SCRIPT, &STYLE] {
            assert!(
                !asset.body.contains("http://"),
                "an absolute URL in an asset"
            );
            assert!(
                !asset.body.contains("https://"),
                "an absolute URL in an asset"
            );
            assert!(!asset.body.contains("//cdn"), "a CDN in an asset");
        }
        // The content security policy forbids inline scripts and styles, so the page must not rely on them.
        assert!(!PAGE.body.contains("<script>"));
        assert!(!PAGE.body.contains(" style=\""));
        assert!(!PAGE.body.contains(" onclick="));
    }

    #[test]
    fn the_script_uses_the_review_endpoints_of_the_contract() {
        for endpoint in [
            "/v1/review/queue",
            "/v1/review/stats",
            "/v1/feedback",
            "/v1/model",
        ] {
            assert!(SCRIPT.body.contains(endpoint), "{endpoint}");
        }
        assert!(SCRIPT.body.contains("sessionStorage"));
    }
}
