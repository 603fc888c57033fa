//! The public HTTP API: one router per area, merged by `app()` with the
//! layers every route shares (body limit, error shape, panics, access log).
//!
//! Handlers here only parse, call one domain function and map the result.

pub mod client_ip;
pub mod diagnostics;
pub mod error;
pub mod extract;
pub mod flow_cookie;
mod health;
mod openapi;
pub mod recovery;
pub mod serve;
pub mod session;
pub mod v2;

use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;

use self::error::ApiError;
use self::extract::locale_of;
use crate::error::Error;
use crate::services::Services;

/// Largest request body accepted on any route.
pub const BODY_LIMIT: usize = 16 * 1024;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

pub fn app(services: Services) -> anyhow::Result<Router> {
    let policy = std::sync::Arc::new(client_ip::ClientPolicy::from_settings(&services)?);
    // One stack, applied once: each `Router::layer` call wraps every route
    // in a boxed service of its own, and a request clones every box of its
    // route (and each `from_fn` layer clones those below it again). The
    // order is the same as ten separate calls, outermost first.
    let stack = ServiceBuilder::new()
        .layer(SetRequestIdLayer::new(REQUEST_ID, RequestUuids))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(request_span)
                .on_request(())
                .on_response(log_response),
        )
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(axum::middleware::from_fn_with_state(
            (policy, services.clone()),
            client_ip::middleware,
        ))
        .layer(axum::middleware::from_fn_with_state(
            services.latency.clone(),
            crate::observe::track,
        ))
        .layer(axum::middleware::from_fn_with_state(
            services.clone(),
            serve::request_deadline,
        ))
        .layer(DefaultBodyLimit::max(BODY_LIMIT));
    let router = Router::new()
        .merge(recovery::router().layer(no_store()))
        .merge(session::router().layer(no_store()))
        .merge(v2::router().layer(no_store()))
        .merge(crate::ui::router(&services.settings))
        .merge(health::router())
        .merge(diagnostics::router())
        .merge(openapi::router())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(stack)
        .with_state(services);
    Ok(router)
}

/// A random (v4) UUID for each request without a usable `X-Request-Id`.
/// Its bytes come from the OS, read 256 ids at a time per thread:
/// `tower_http`'s `MakeRequestUuid` made one `getrandom` call per request,
/// about 2 % of a session check's CPU. An id is not a secret (a client may
/// choose its own), but it is random rather than counted, so it tells
/// nobody how many requests came between two of theirs.
#[derive(Clone, Copy)]
struct RequestUuids;

impl MakeRequestId for RequestUuids {
    fn make_request_id<B>(&mut self, _: &axum::http::Request<B>) -> Option<RequestId> {
        const IDS: usize = 256;
        thread_local! {
            static POOL: std::cell::RefCell<([u8; 16 * IDS], usize)> =
                const { std::cell::RefCell::new(([0; 16 * IDS], IDS)) };
        }
        let bytes = POOL.with_borrow_mut(|(pool, next)| {
            if *next == IDS {
                crate::random::fill(pool);
                *next = 0;
            }
            let mut bytes = [0u8; 16];
            bytes.copy_from_slice(&pool[16 * *next..16 * (*next + 1)]);
            *next += 1;
            bytes
        });
        let uuid = uuid::Builder::from_random_bytes(bytes).into_uuid();
        let mut text = [0u8; uuid::fmt::Hyphenated::LENGTH];
        HeaderValue::from_str(uuid.hyphenated().encode_lower(&mut text))
            .ok()
            .map(RequestId::new)
    }
}

/// Responses that may carry a credential (session token, JWT, refresh or
/// recovery token) must not be stored by any cache (RFC 6749 §5.1).
pub(crate) fn no_store() -> SetResponseHeaderLayer<HeaderValue> {
    SetResponseHeaderLayer::overriding(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))
}

/// One span per request naming the route *template*, never the raw path, so
/// a token in a path segment cannot reach a log line.
fn request_span(request: &Request) -> tracing::Span {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("<unmatched>", |p| p.as_str())
        .to_owned();
    let request_id = request
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    tracing::info_span!("request", method = %request.method(), %route, %request_id)
}

fn log_response<B>(response: &axum::http::Response<B>, latency: Duration, _span: &tracing::Span) {
    tracing::info!(
        status = response.status().as_u16(),
        latency_ms = latency.as_secs_f64() * 1000.0,
        "answered"
    );
}

async fn not_found(axum::extract::State(services): axum::extract::State<Services>, request: Request) -> ApiError {
    ApiError::new(Error::NotFound, locale_of(request.headers(), &services))
}

async fn method_not_allowed(
    axum::extract::State(services): axum::extract::State<Services>,
    request: Request,
) -> ApiError {
    ApiError::new(Error::MethodNotAllowed, locale_of(request.headers(), &services))
}

fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("handler panicked");
    let body = error::AuthError {
        error: "internal_error".into(),
        message: crate::i18n::text(crate::i18n::Locale::En, "error.internal", &[]),
        status: 500,
    };
    (StatusCode::INTERNAL_SERVER_ERROR, axum::Json(body)).into_response()
}

#[cfg(test)]
mod tests {
    use tower_http::request_id::MakeRequestId;

    /// Across refills of the pool, every id is a distinct v4 UUID.
    #[test]
    fn request_ids_are_distinct_random_uuids() {
        let request = axum::http::Request::new(());
        let ids: std::collections::HashSet<String> = (0..600)
            .filter_map(|_| super::RequestUuids.make_request_id(&request))
            .filter_map(|id| id.header_value().to_str().ok().map(str::to_owned))
            .collect();
        assert_eq!(ids.len(), 600);
        assert!(
            ids.iter()
                .all(|id| uuid::Uuid::parse_str(id).is_ok_and(|u| u.get_version_num() == 4))
        );
    }
}
