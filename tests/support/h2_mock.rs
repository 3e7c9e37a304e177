//! A real HTTP/2 server over TLS on 127.0.0.1 for provider tests: a server
//! certificate from the test CA in [`super::pki`], optional client
//! certificate checking, and a handler that answers each request with a
//! status, a delay, a refused stream, a dropped connection or silence. It
//! counts connections and requests, and can send GOAWAY after N requests
//! per connection.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_io::Timer;
use bytes::{Bytes, BytesMut};
use futures_lite::FutureExt;
use rustls::pki_types::CertificateDer;
use tokio_util::compat::FuturesAsyncReadCompatExt;

use super::pki::Pki;

/// One request as the mock saw it.
#[derive(Debug, Clone)]
pub struct MockRequest {
    /// 1 for the first connection, 2 for the second, ...
    pub conn: usize,
    pub method: http::Method,
    pub path: String,
    pub headers: http::HeaderMap,
    pub body: Bytes,
    /// DER of the client certificate, if one was presented.
    pub client_cert: Option<Vec<u8>>,
}

impl MockRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// What the mock does with a request.
#[derive(Debug, Clone)]
pub enum Reply {
    /// Answer with a status and body after a delay.
    Respond {
        status: u16,
        body: String,
        delay: Duration,
    },
    /// Answer at once with a status, extra headers and a body.
    WithHeaders {
        status: u16,
        headers: Vec<(&'static str, String)>,
        body: String,
    },
    /// Reset the stream with REFUSED_STREAM.
    Refuse,
    /// Close the whole connection without answering.
    DropConnection,
    /// Never answer.
    Stall,
}

impl Reply {
    pub fn status(status: u16, body: &str) -> Reply {
        Reply::Respond {
            status,
            body: body.to_owned(),
            delay: Duration::ZERO,
        }
    }

    pub fn ok() -> Reply {
        Reply::status(200, "")
    }
}

/// The handler deciding each reply.
pub type Handler = Arc<dyn Fn(&MockRequest) -> Reply + Send + Sync>;

/// Mock tuning.
#[derive(Debug, Clone)]
pub struct MockOptions {
    /// SETTINGS_MAX_CONCURRENT_STREAMS sent to the client.
    pub max_concurrent_streams: u32,
    /// Send GOAWAY (graceful) on a connection after this many requests.
    pub goaway_after: Option<usize>,
    /// Require a client certificate.
    pub client_auth: bool,
    /// Wait this long after TLS before the HTTP/2 preface (and so the
    /// server's SETTINGS) goes out.
    pub settings_delay: Duration,
}

impl Default for MockOptions {
    fn default() -> Self {
        MockOptions {
            max_concurrent_streams: 1000,
            goaway_after: None,
            client_auth: false,
            settings_delay: Duration::ZERO,
        }
    }
}

/// Counters of the mock.
#[derive(Debug, Default)]
pub struct Stats {
    pub connections: AtomicUsize,
    pub requests: AtomicUsize,
    pub in_progress: AtomicUsize,
    pub peak_in_progress: AtomicUsize,
    pub goaways: AtomicUsize,
}

impl Stats {
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    pub fn peak(&self) -> usize {
        self.peak_in_progress.load(Ordering::SeqCst)
    }
}

/// A running mock server; stops when dropped.
pub struct MockServer {
    pub addr: SocketAddr,
    pub stats: Arc<Stats>,
    /// Every request seen, in arrival order.
    pub seen: Arc<Mutex<Vec<MockRequest>>>,
    _accept: smol::Task<()>,
}

impl MockServer {
    /// `https://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.addr.port())
    }

    pub fn seen(&self) -> Vec<MockRequest> {
        self.seen.lock().unwrap().clone()
    }
}

/// Starts a mock server with `handler`.
pub async fn start(pki: &Pki, opts: MockOptions, handler: Handler) -> MockServer {
    let listener = smol::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = futures_rustls::TlsAcceptor::from(pki.server_config(opts.client_auth, b"h2"));
    let stats = Arc::new(Stats::default());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (st, sn) = (stats.clone(), seen.clone());
    let accept = smol::spawn(async move {
        let mut conns = Vec::new();
        while let Ok((tcp, _)) = listener.accept().await {
            let _ = tcp.set_nodelay(true);
            let ctx = ConnCtx {
                opts: opts.clone(),
                handler: handler.clone(),
                stats: st.clone(),
                seen: sn.clone(),
            };
            conns.retain(|t: &smol::Task<()>| !t.is_finished());
            conns.push(smol::spawn(serve(acceptor.clone(), tcp, ctx)));
        }
    });
    MockServer {
        addr,
        stats,
        seen,
        _accept: accept,
    }
}

struct ConnCtx {
    opts: MockOptions,
    handler: Handler,
    stats: Arc<Stats>,
    seen: Arc<Mutex<Vec<MockRequest>>>,
}

async fn serve(acceptor: futures_rustls::TlsAcceptor, tcp: smol::net::TcpStream, ctx: ConnCtx) {
    let Ok(tls) = acceptor.accept(tcp).await else {
        return;
    };
    let client_cert = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|c: &CertificateDer| c.to_vec());
    if !ctx.opts.settings_delay.is_zero() {
        Timer::after(ctx.opts.settings_delay).await;
    }
    let Ok(mut conn) = h2::server::Builder::new()
        .max_concurrent_streams(ctx.opts.max_concurrent_streams)
        .handshake::<_, Bytes>(tls.compat())
        .await
    else {
        return;
    };
    let conn_no = ctx.stats.connections.fetch_add(1, Ordering::SeqCst) + 1;
    let (kill_tx, kill_rx) = smol::channel::bounded::<()>(1);
    let mut streams = Vec::new();
    let mut accepted = 0;
    loop {
        let next = async { conn.accept().await.map(Some) }
            .or(async {
                let _ = kill_rx.recv().await;
                Some(None)
            })
            .await;
        let Some(Some(Ok((req, respond)))) = next else {
            break;
        };
        accepted += 1;
        let stream = Stream {
            conn: conn_no,
            handler: ctx.handler.clone(),
            stats: ctx.stats.clone(),
            seen: ctx.seen.clone(),
            client_cert: client_cert.clone(),
            kill: kill_tx.clone(),
        };
        streams.push(smol::spawn(stream.handle(req, respond)));
        if ctx.opts.goaway_after == Some(accepted) {
            ctx.stats.goaways.fetch_add(1, Ordering::SeqCst);
            conn.graceful_shutdown();
        }
    }
}

struct Stream {
    conn: usize,
    handler: Handler,
    stats: Arc<Stats>,
    seen: Arc<Mutex<Vec<MockRequest>>>,
    client_cert: Option<Vec<u8>>,
    kill: smol::channel::Sender<()>,
}

impl Stream {
    async fn handle(
        self,
        req: http::Request<h2::RecvStream>,
        mut respond: h2::server::SendResponse<Bytes>,
    ) {
        let (parts, mut recv) = req.into_parts();
        let mut body = BytesMut::new();
        while let Some(Ok(chunk)) = recv.data().await {
            let _ = recv.flow_control().release_capacity(chunk.len());
            body.extend_from_slice(&chunk);
        }
        let request = MockRequest {
            conn: self.conn,
            method: parts.method,
            path: parts.uri.path().to_owned(),
            headers: parts.headers,
            body: body.freeze(),
            client_cert: self.client_cert.clone(),
        };
        self.stats.requests.fetch_add(1, Ordering::SeqCst);
        let now = self.stats.in_progress.fetch_add(1, Ordering::SeqCst) + 1;
        self.stats.peak_in_progress.fetch_max(now, Ordering::SeqCst);
        let reply = (self.handler)(&request);
        self.seen.lock().unwrap().push(request);
        match reply {
            Reply::Respond {
                status,
                body,
                delay,
            } => {
                if !delay.is_zero() {
                    Timer::after(delay).await;
                }
                let response = http::Response::builder()
                    .status(status)
                    .header("apns-id", "00000000-0000-0000-0000-000000000000")
                    .body(())
                    .unwrap();
                if let Ok(mut send) = respond.send_response(response, body.is_empty()) {
                    if !body.is_empty() {
                        let _ = send.send_data(Bytes::from(body), true);
                    }
                }
            }
            Reply::WithHeaders {
                status,
                headers,
                body,
            } => {
                let mut response = http::Response::builder().status(status);
                for (name, value) in headers {
                    response = response.header(name, value);
                }
                if let Ok(mut send) = respond.send_response(response.body(()).unwrap(), false) {
                    let _ = send.send_data(Bytes::from(body), true);
                }
            }
            Reply::Refuse => respond.send_reset(h2::Reason::REFUSED_STREAM),
            Reply::DropConnection => {
                let _ = self.kill.try_send(());
                // Keep the stream open so it is not reset before the
                // connection goes.
                std::future::pending::<()>().await
            }
            Reply::Stall => std::future::pending::<()>().await,
        }
        self.stats.in_progress.fetch_sub(1, Ordering::SeqCst);
    }
}
