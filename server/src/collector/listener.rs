//! The collector port: one axum router over HTTP/1.1 and h2c, at most `max_connections`
//! connections served at once (the rest wait in the accept queue), stopped with the server.
//! A collector key in the path (`/k/<key>/...`) is moved into its header before routing,
//! so every door takes it either way.

use std::sync::Arc;

use axum::extract::connect_info::Connected;
use axum::extract::Request;
use axum::http::{HeaderValue, Uri};
use axum::serve::IncomingStream;
use axum::{Router, ServiceExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

use super::land::{Doors, Peer};

/// Serves the doors on `listener` until `shutdown`, letting requests under way finish.
pub async fn serve(
    listener: TcpListener,
    doors: Doors,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let limit = doors.settings.max_connections.max(1);
    let app: Router = Router::new()
        .merge(super::otlp::routes())
        .merge(super::cloudevents::routes())
        .merge(super::snowplow::routes())
        .with_state(doors);
    let app = tower::util::MapRequest::new(app, key_from_path);
    let listener = Bounded {
        inner: listener,
        slots: Arc::new(Semaphore::new(limit)),
    };
    axum::serve(
        listener,
        ServiceExt::<Request>::into_make_service_with_connect_info::<Peer>(app),
    )
    .with_graceful_shutdown(shutdown.cancelled_owned())
    .await
}

impl Connected<IncomingStream<'_, Bounded>> for Peer {
    fn connect_info(stream: IncomingStream<'_, Bounded>) -> Self {
        Peer(*stream.remote_addr())
    }
}

/// `/k/<key>/rest` becomes `/rest` with the key in `x-lakeport-key`: browsers' trackers
/// can set an endpoint but no header.
fn key_from_path(mut request: Request) -> Request {
    let Some(rest) = request.uri().path().strip_prefix("/k/") else {
        return request;
    };
    let (key, path) = rest.split_once('/').unwrap_or((rest, ""));
    let (Ok(key), Ok(uri)) = (
        HeaderValue::from_str(key),
        format!(
            "/{path}{}",
            request
                .uri()
                .query()
                .map(|q| format!("?{q}"))
                .unwrap_or_default()
        )
        .parse::<Uri>(),
    ) else {
        return request;
    };
    request.headers_mut().insert(super::land::KEY_HEADER, key);
    *request.uri_mut() = uri;
    request
}

/// A listener that accepts a connection only while fewer than its slots are open.
pub(super) struct Bounded {
    inner: TcpListener,
    slots: Arc<Semaphore>,
}

/// A connection holding its slot until it closes.
pub(super) struct Slotted {
    stream: TcpStream,
    _slot: OwnedSemaphorePermit,
}

impl axum::serve::Listener for Bounded {
    type Io = Slotted;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let slot = self
            .slots
            .clone()
            .acquire_owned()
            .await
            .expect("the slots are never closed");
        loop {
            match self.inner.accept().await {
                Ok((stream, addr)) => {
                    let _ = stream.set_nodelay(true);
                    return (
                        Slotted {
                            stream,
                            _slot: slot,
                        },
                        addr,
                    );
                }
                // Out of descriptors or a connection reset before accept: wait, try again.
                Err(e) => {
                    tracing::debug!(error = %e, "collector accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

impl tokio::io::AsyncRead for Slotted {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for Slotted {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}
