//! Serving one HTTPS port: accept TCP, run the GUI HTTPS handshake with our TLS engine, then
//! HTTP/1.1 on hyper with the axum router. On stop, requests in flight are finished (a commit
//! that restarts this service still gets its answer) for a short while, then cut.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::Extension;
use axum::http::{HeaderValue, header};
use axum::response::Response;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use postern_logs::SharedLog;
use postern_tls::TlsAcceptor;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

/// The peer of a connection, for logs and login throttling.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Peer(pub(crate) SocketAddr);

/// How long a request may take to arrive once a connection is open.
const HEADER_TIMEOUT: Duration = Duration::from_secs(30);
/// How long requests in flight may finish after a stop.
const DRAIN: Duration = Duration::from_secs(5);
/// Connections served at once per port; more wait in the kernel's backlog.
const MAX_CONNECTIONS: usize = 512;

/// Headers on every answer: no caching of admin pages, no framing, scripts only from here.
pub(crate) async fn security_headers(mut response: Response) -> Response {
    // A body refused for its size was not read: the connection cannot carry another request,
    // and the client must know not to reuse it.
    if response.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    let headers = response.headers_mut();
    let set = [
        (header::CACHE_CONTROL, "no-store"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; frame-ancestors 'none'; form-action 'self'",
        ),
        (header::STRICT_TRANSPORT_SECURITY, "max-age=31536000"),
    ];
    for (name, value) in set {
        // Static assets set their own Cache-Control; everything else is never cached.
        if name == header::CACHE_CONTROL && headers.contains_key(&name) {
            continue;
        }
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

/// Serves `listener` until `stop` turns true; each connection's handshake takes the acceptor
/// `acceptor` holds when it arrives.
pub(crate) async fn serve(
    listener: TcpListener,
    acceptor: watch::Receiver<TlsAcceptor>,
    router: Router,
    mut stop: watch::Receiver<bool>,
    log: SharedLog,
) {
    let limit = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    let mut connections = JoinSet::new();
    loop {
        let permit = tokio::select! {
            permit = limit.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => break,
            },
            _ = stop.changed() => break,
        };
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                // Out of descriptors and the like: pause rather than spin.
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stop.changed() => break,
        };
        while connections.try_join_next().is_some() {}
        let acceptor = acceptor.borrow().clone();
        let router = router.clone();
        let log = log.clone();
        let stop = stop.clone();
        connections.spawn(async move {
            let _permit = permit;
            let _ = tcp.set_nodelay(true);
            let tls = match acceptor.accept(tcp).await {
                Ok((tls, _negotiated)) => tls,
                Err(failure) => {
                    log.info(&format!(
                        "HTTPS connection from {} TLS failed: {failure}",
                        peer.ip()
                    ));
                    return;
                }
            };
            connection(tls, router.layer(Extension(Peer(peer))), stop).await;
        });
    }
    // Stopping: connections finish what they serve within the drain, then are cut.
    let _ = tokio::time::timeout(DRAIN + Duration::from_secs(1), async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    connections.abort_all();
}

async fn connection<S>(stream: S, router: Router, mut stop: watch::Receiver<bool>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = TowerToHyperService::new(router);
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .max_buf_size(64 * 1024);
    let conn = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => return,
        _ = stop.wait_for(|s| *s) => {}
    }
    conn.as_mut().graceful_shutdown();
    let _ = tokio::time::timeout(DRAIN, conn).await;
}
