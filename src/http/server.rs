//! The accept loop shared by both listeners: optional TLS, HTTP/1.1 and HTTP/2, a bound on
//! connections, a header-read timeout and a header size bound against slowloris, the peer
//! address and client certificate for handlers, a graceful drain on shutdown, and a lingering
//! close: once hyper is done with a connection, the socket is shut for writing and what the
//! client still sends is read and thrown away (up to [`LINGER_BYTES`], for up to
//! [`LINGER_TIME`]) before it is closed. A client still sending a body that was refused early
//! (413, 431, or 401 before the body is read) then reads the answer instead of a reset, which
//! closing a socket with unread data would send. HTTP/2 needs none of this: an early answer
//! ends only its stream (RST_STREAM with NO_ERROR).

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, oneshot};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use super::auth::mtls::PeerIdentity;
use crate::config::Limits;

/// How long a client may take to finish the TLS handshake.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The most a closing connection reads and throws away: more than a refused body of a few MiB
/// (the default body limit is 1 MiB), little enough not to be a sink for anyone's traffic.
pub(crate) const LINGER_BYTES: u64 = 8 * 1024 * 1024;

/// The longest a closing connection waits for the client to stop sending. The connection keeps
/// its slot (`max_connections`) meanwhile.
pub(crate) const LINGER_TIME: Duration = Duration::from_secs(5);

/// Serves `router` on `listener` until `shutdown` is cancelled, then lets in-flight requests
/// finish for up to `limits.shutdown_grace`.
pub(crate) async fn serve(
    name: &'static str,
    listener: TcpListener,
    router: Router,
    tls: Option<Arc<super::tls::Tls>>,
    limits: Limits,
    shutdown: CancellationToken,
) {
    let graceful = GracefulShutdown::new();
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    loop {
        let slot = tokio::select! {
            _ = shutdown.cancelled() => break,
            slot = slots.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
        };
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Usually out of file descriptors: back off instead of spinning.
                    tracing::warn!(listener = name, %error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let service = move |certificate: Option<Arc<PeerIdentity>>| {
            router.map_request(move |mut request: axum::http::Request<Incoming>| {
                request.extensions_mut().insert(ConnectInfo(peer));
                if let Some(certificate) = &certificate {
                    request.extensions_mut().insert(certificate.clone());
                }
                request
            })
        };
        let watcher = graceful.watcher();
        let tls = tls.clone();
        tokio::spawn(async move {
            let _slot = slot;
            match tls {
                None => serve_connection(stream, service(None), limits, watcher).await,
                Some(tls) => {
                    // The handshake, the wait for its first byte included, takes at most its timeout.
                    let started = tokio::time::Instant::now();
                    match first_byte(&stream).await {
                        FirstByte::Letter => {
                            tracing::info!(
                                listener = name,
                                %peer,
                                "a client spoke plain HTTP to this HTTPS port: it must use https://"
                            );
                            answer_plain_http(stream).await;
                            return;
                        }
                        FirstByte::None => {
                            tracing::debug!(listener = name, %peer, "TLS handshake timed out");
                            return;
                        }
                        FirstByte::Other => {}
                    }
                    // The configuration of this moment: a reload changes it for later ones.
                    let acceptor = tls.acceptor();
                    let deadline = started + TLS_HANDSHAKE_TIMEOUT;
                    match tokio::time::timeout_at(deadline, acceptor.accept(stream)).await {
                        Ok(Ok(stream)) => {
                            let certificate = stream
                                .get_ref()
                                .1
                                .peer_certificates()
                                .and_then(|chain| chain.first())
                                .and_then(|leaf| PeerIdentity::from_der(leaf.as_ref()))
                                .map(Arc::new);
                            serve_connection(stream, service(certificate), limits, watcher).await
                        }
                        Ok(Err(error)) => {
                            tracing::info!(listener = name, %peer, %error, "TLS handshake failed")
                        }
                        Err(_) => {
                            tracing::debug!(listener = name, %peer, "TLS handshake timed out")
                        }
                    }
                }
            }
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => tracing::debug!(listener = name, "all connections closed"),
        () = tokio::time::sleep(limits.shutdown_grace) => {
            tracing::warn!(listener = name, "some connections were still open after the shutdown grace period");
        }
    }
}

/// What a client on a TLS port sent first.
enum FirstByte {
    /// A capital letter, as an HTTP request's method starts: plain HTTP.
    Letter,
    /// Anything else (a TLS handshake starts with 22), an error or the end: the handshake says.
    Other,
    /// Nothing within the handshake's timeout.
    None,
}

/// Peeks at the client's first byte, waiting at most [`TLS_HANDSHAKE_TIMEOUT`].
async fn first_byte(stream: &tokio::net::TcpStream) -> FirstByte {
    let mut first = [0u8; 1];
    match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, stream.peek(&mut first)).await {
        Ok(Ok(1)) if first[0].is_ascii_uppercase() => FirstByte::Letter,
        Ok(_) => FirstByte::Other,
        Err(_) => FirstByte::None,
    }
}

/// Answers a plain HTTP request on a TLS port with a 400 that says to use HTTPS, as a client
/// such as curl shows it, and closes the connection without reading the request.
async fn answer_plain_http(mut stream: tokio::net::TcpStream) {
    const MESSAGE: &str =
        "This port speaks HTTPS: send the request to https:// instead of http://.\n";
    let answer = format!(
        "HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain; charset=utf-8\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n{MESSAGE}",
        MESSAGE.len()
    );
    if stream.write_all(answer.as_bytes()).await.is_ok() {
        linger(stream).await;
    }
}

async fn serve_connection<I, S>(
    io: I,
    service: S,
    limits: Limits,
    watcher: hyper_util::server::graceful::Watcher,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: tower::Service<
            axum::http::Request<Incoming>,
            Response = axum::response::Response,
            Error = std::convert::Infallible,
        > + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    let (io, returned) = Lent::new(io);
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(64 * 1024);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(64 * 1024)
        .max_concurrent_streams(256);
    let connection = builder.serve_connection(TokioIo::new(io), TowerToHyperService::new(service));
    if let Err(error) = watcher.watch(connection.into_owned()).await {
        tracing::debug!(%error, "connection ended with an error");
    }
    // hyper dropped the connection, and with it the lent IO, which came back here.
    if let Ok(io) = returned.await {
        linger(io).await;
    }
}

/// Shuts `io` for writing (the answer is complete), then reads and throws away what the client
/// still sends until it closes, up to [`LINGER_BYTES`] and [`LINGER_TIME`]. A client that has
/// finished closes at once, so this costs nothing on a normal close.
async fn linger<I: AsyncRead + AsyncWrite + Unpin>(mut io: I) {
    let drain = async {
        // hyper has usually shut it already; a second shutdown is harmless.
        let _ = io.shutdown().await;
        tokio::io::copy(&mut (&mut io).take(LINGER_BYTES), &mut tokio::io::sink()).await
    };
    match tokio::time::timeout(LINGER_TIME, drain).await {
        Ok(Ok(drained)) if drained >= LINGER_BYTES => {
            tracing::debug!(drained, "closing a connection whose client kept sending")
        }
        Ok(Ok(_)) => {}
        Ok(Err(error)) => tracing::debug!(%error, "lingering close ended with an error"),
        Err(_) => tracing::debug!("closing a connection whose client did not stop sending"),
    }
}

/// An IO lent to hyper: when hyper drops it, it is sent back (instead of closed) so that the
/// connection can [`linger`].
struct Lent<I> {
    io: Option<I>,
    back: Option<oneshot::Sender<I>>,
}

impl<I> Lent<I> {
    fn new(io: I) -> (Lent<I>, oneshot::Receiver<I>) {
        let (back, returned) = oneshot::channel();
        let lent = Lent {
            io: Some(io),
            back: Some(back),
        };
        (lent, returned)
    }

    /// The IO; only `Drop` takes it, so it is always there while hyper uses it.
    fn io(&mut self) -> io::Result<Pin<&mut I>>
    where
        I: Unpin,
    {
        self.io
            .as_mut()
            .map(Pin::new)
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotConnected))
    }
}

impl<I> Drop for Lent<I> {
    fn drop(&mut self) {
        if let (Some(io), Some(back)) = (self.io.take(), self.back.take()) {
            // The receiver is gone only if the connection task is: then the IO closes here.
            let _ = back.send(io);
        }
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for Lent<I> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut().io() {
            Ok(io) => io.poll_read(cx, buf),
            Err(error) => Poll::Ready(Err(error)),
        }
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Lent<I> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut().io() {
            Ok(io) => io.poll_write(cx, buf),
            Err(error) => Poll::Ready(Err(error)),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut().io() {
            Ok(io) => io.poll_write_vectored(cx, bufs),
            Err(error) => Poll::Ready(Err(error)),
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.io.as_ref().is_some_and(I::is_write_vectored)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut().io() {
            Ok(io) => io.poll_flush(cx),
            Err(error) => Poll::Ready(Err(error)),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut().io() {
            Ok(io) => io.poll_shutdown(cx),
            Err(error) => Poll::Ready(Err(error)),
        }
    }
}

/// Binds a TCP listener, with an error that says what to do when the port is taken: change
/// `setting` (`listen`, `admin_listen`), as a flag or in the config file.
pub(crate) async fn bind(
    address: SocketAddr,
    what: &str,
    setting: &str,
) -> anyhow::Result<TcpListener> {
    TcpListener::bind(address).await.map_err(|error| {
        anyhow::anyhow!(
            "cannot listen on {address} for the {what}: {error}; choose another address with \
             --{flag} or {setting} in the config file",
            flag = setting.replace('_', "-")
        )
    })
}
