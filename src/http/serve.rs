//! The accept loop both listeners run: HTTP/1.1 from hyper with a deadline
//! for the request header (`http.header_timeout`), at most
//! `http.max_connections` open connections (further ones wait in the
//! kernel's backlog), and a graceful stop that lets open requests finish.
//!
//! `axum::serve` has no header deadline: a client trickling one byte a
//! second would hold a connection and a file descriptor for ever.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tower::Service;

use crate::config::HttpSettings;

/// How long a stop waits for open connections before closing them.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

pub async fn serve(
    listener: TcpListener,
    app: Router,
    http: HttpSettings,
    mut stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let mut make_service = app.into_make_service_with_connect_info::<SocketAddr>();
    let connections = Arc::new(Semaphore::new(http.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(Some(http.header_timeout).filter(|t| !t.is_zero()));
    loop {
        let permit = tokio::select! {
            permit = connections.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            _ = stopped(&mut stop) => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors, or a connection reset before accept: try again shortly.
                    tracing::warn!(%error, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            },
            _ = stopped(&mut stop) => break,
        };
        let _ = stream.set_nodelay(true);
        let tower_service = match make_service.call(peer).await {
            Ok(service) => service,
            Err(infallible) => match infallible {},
        };
        let tower_service = tower::util::MapRequest::new(tower_service, drop_odd_request_id);
        let connection = builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(tower_service));
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            // Errors here are a client's doing (reset, timeout, bad framing).
            let _ = connection.await;
            drop(permit);
        });
    }
    drop(listener);
    let _ = tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown()).await;
    Ok(())
}

/// Longest `X-Request-Id` a client may choose.
const MAX_REQUEST_ID: usize = 64;

/// A client's own `X-Request-Id` is kept (logged and echoed) only when it
/// looks like one: a single value of at most 64 letters, digits, `.`, `_`
/// and `-`. Any other is dropped before the app sees it, so the request gets
/// a fresh UUID and a header of hundreds of kilobytes is never copied into
/// its log lines. Done here, around the whole app, rather than as one more
/// router layer, which every request would pay for in boxed clones.
fn drop_odd_request_id<B>(mut request: axum::http::Request<B>) -> axum::http::Request<B> {
    let mut ids = request.headers().get_all(super::REQUEST_ID).iter();
    let sane = match (ids.next(), ids.next()) {
        (None, _) => true,
        (Some(id), None) => {
            let id = id.as_bytes();
            !id.is_empty()
                && id.len() <= MAX_REQUEST_ID
                && id
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        }
        (Some(_), Some(_)) => false,
    };
    if !sane {
        request.headers_mut().remove(super::REQUEST_ID);
    }
    request
}

async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stopped| *stopped).await;
}

/// Answers 503 `overloaded` to a request the app has not answered within
/// `http.request_timeout` (including a body that arrives too slowly).
pub async fn request_deadline(
    axum::extract::State(services): axum::extract::State<crate::services::Services>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let timeout = services.settings.http.request_timeout;
    if timeout.is_zero() {
        return next.run(request).await;
    }
    let locale = super::extract::locale_of(request.headers(), &services);
    match tokio::time::timeout(timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            let error = crate::error::Error::Overloaded { retry_after_secs: 1 };
            super::error::ApiError::new(error, locale).into_response()
        }
    }
}
