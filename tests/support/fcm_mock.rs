//! Google's endpoints, mocked for the FCM tests: an OAuth token endpoint
//! (HTTPS/1.1) and the FCM send endpoint (HTTP/2 over TLS), both on
//! 127.0.0.1 with certificates from the test CA in [`super::pki`], whose
//! PEM the provider trusts through `capath`. Both answer from a script,
//! falling back to success, and record what they saw. [`Google`] runs both
//! with a service account of the test key and gives the provider config
//! that points at them.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_io::Timer;
use bytes::{Bytes, BytesMut};
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use tokio_util::compat::FuturesAsyncReadCompatExt;

use super::pki::Pki;

/// The RSA key of the test service account.
pub const KEY: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/fcm-test-key.pem"
));

/// The test key's service account: project `demo-project`, key id
/// `kid-1`, Google's token URI.
pub fn service_account() -> serde_json::Value {
    serde_json::json!({
        "type": "service_account",
        "project_id": "demo-project",
        "private_key_id": "kid-1",
        "private_key": KEY,
        "client_email": "push@demo-project.iam.gserviceaccount.com",
        "token_uri": "https://oauth2.googleapis.com/token",
    })
}

/// Both mock endpoints on one test CA, and the [`service_account`] as
/// `sa.json` in the CA's folder; all stop when dropped.
pub struct Google {
    pub ca: Pki,
    pub fcm: FcmMock,
    pub tokens: TokenMock,
    pub service_account: PathBuf,
}

impl Google {
    /// Starts both endpoints; the token endpoint answers after
    /// `token_delay`.
    pub async fn start(token_delay: Duration) -> Google {
        let ca = Pki::new();
        let fcm = FcmMock::start(&ca).await;
        let tokens = TokenMock::start(&ca, token_delay).await;
        let service_account = ca.dir.write("sa.json", service_account().to_string());
        Google {
            ca,
            fcm,
            tokens,
            service_account,
        }
    }

    /// The `[app.fcm]` keys (without `provider`) that point the provider at
    /// these mocks: service account, CA and both endpoints, with absolute
    /// paths so the config file may live anywhere.
    pub fn config(&self) -> String {
        format!(
            "service_account = {:?}\ncapath = {:?}\nendpoint = \"{}\"\ntoken_endpoint = \"{}\"\n",
            self.service_account.display().to_string(),
            self.ca.ca_pem.display().to_string(),
            self.fcm.url,
            self.tokens.url
        )
    }
}

/// One FCM answer.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
    pub delay: Duration,
}

impl Answer {
    pub fn ok() -> Answer {
        Answer {
            status: 200,
            headers: vec![],
            body: r#"{"name":"projects/demo-project/messages/0:1"}"#.into(),
            delay: Duration::ZERO,
        }
    }

    /// An FCM error with `error.details[].errorCode`.
    pub fn error(status: u16, grpc_status: &str, code: Option<&str>) -> Answer {
        let details = match code {
            Some(c) => serde_json::json!([{
                "@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError",
                "errorCode": c,
            }]),
            None => serde_json::json!([]),
        };
        let body = serde_json::json!({"error": {
            "code": status,
            "message": format!("mock {grpc_status}"),
            "status": grpc_status,
            "details": details,
        }});
        Answer {
            status,
            headers: vec![],
            body: body.to_string(),
            delay: Duration::ZERO,
        }
    }

    pub fn header(mut self, name: &'static str, value: &str) -> Answer {
        self.headers.push((name, value.to_owned()));
        self
    }

    pub fn after(mut self, delay: Duration) -> Answer {
        self.delay = delay;
        self
    }
}

/// A request as the FCM mock saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub path: String,
    pub authorization: String,
    pub body: serde_json::Value,
}

type Script = Arc<Mutex<VecDeque<Answer>>>;

/// Decoded form bodies, one per token request.
type Forms = Arc<Mutex<Vec<Vec<(String, String)>>>>;

/// The FCM send endpoint; stops when dropped.
pub struct FcmMock {
    pub url: String,
    script: Script,
    seen: Arc<Mutex<Vec<Seen>>>,
    _accept: smol::Task<()>,
}

impl FcmMock {
    pub async fn start(ca: &Pki) -> FcmMock {
        let listener = smol::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("https://{}", listener.local_addr().unwrap());
        let acceptor = ca.acceptor(b"h2");
        let script = Script::default();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (sc, sn) = (script.clone(), seen.clone());
        let accept = smol::spawn(async move {
            let mut conns: Vec<smol::Task<()>> = Vec::new();
            while let Ok((tcp, _)) = listener.accept().await {
                let _ = tcp.set_nodelay(true);
                conns.retain(|t| !t.is_finished());
                conns.push(smol::spawn(serve_h2(
                    acceptor.clone(),
                    tcp,
                    sc.clone(),
                    sn.clone(),
                )));
            }
        });
        FcmMock {
            url,
            script,
            seen,
            _accept: accept,
        }
    }

    /// Answers for the next requests, in order; then success.
    pub fn script(&self, answers: impl IntoIterator<Item = Answer>) {
        self.script.lock().unwrap().extend(answers);
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    pub fn requests(&self) -> usize {
        self.seen.lock().unwrap().len()
    }
}

async fn serve_h2(
    acceptor: futures_rustls::TlsAcceptor,
    tcp: smol::net::TcpStream,
    script: Script,
    seen: Arc<Mutex<Vec<Seen>>>,
) {
    let Ok(tls) = acceptor.accept(tcp).await else {
        return;
    };
    let Ok(mut conn) = h2::server::handshake(tls.compat()).await else {
        return;
    };
    let mut streams = Vec::new();
    while let Some(Ok((req, respond))) = conn.accept().await {
        streams.push(smol::spawn(answer_h2(
            req,
            respond,
            script.clone(),
            seen.clone(),
        )));
    }
}

async fn answer_h2(
    req: http::Request<h2::RecvStream>,
    mut respond: h2::server::SendResponse<Bytes>,
    script: Script,
    seen: Arc<Mutex<Vec<Seen>>>,
) {
    let (parts, mut recv) = req.into_parts();
    let mut body = BytesMut::new();
    while let Some(Ok(chunk)) = recv.data().await {
        let _ = recv.flow_control().release_capacity(chunk.len());
        body.extend_from_slice(&chunk);
    }
    let authorization = parts
        .headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    seen.lock().unwrap().push(Seen {
        path: parts.uri.path().to_owned(),
        authorization,
        body: serde_json::from_slice(&body).unwrap_or_default(),
    });
    let answer = script
        .lock()
        .unwrap()
        .pop_front()
        .unwrap_or_else(Answer::ok);
    if !answer.delay.is_zero() {
        Timer::after(answer.delay).await;
    }
    let mut res = http::Response::builder()
        .status(answer.status)
        .header("content-type", "application/json; charset=UTF-8");
    for (name, value) in &answer.headers {
        res = res.header(*name, value.as_str());
    }
    if let Ok(mut send) = respond.send_response(res.body(()).unwrap(), false) {
        let _ = send.send_data(Bytes::from(answer.body), true);
    }
}

/// The OAuth token endpoint; stops when dropped.
pub struct TokenMock {
    pub url: String,
    /// `(status, body)` answers for the next requests; then a fresh token.
    script: Arc<Mutex<VecDeque<(u16, String)>>>,
    /// Decoded form bodies received.
    forms: Forms,
    count: Arc<AtomicUsize>,
    _accept: smol::Task<()>,
}

impl TokenMock {
    /// Answers each request after `delay`, with `at-N` for the N-th request
    /// unless scripted otherwise.
    pub async fn start(ca: &Pki, delay: Duration) -> TokenMock {
        let listener = smol::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("https://{}/token", listener.local_addr().unwrap());
        let acceptor = ca.acceptor(b"http/1.1");
        let script = Arc::new(Mutex::new(VecDeque::new()));
        let forms = Forms::default();
        let count = Arc::new(AtomicUsize::new(0));
        let (sc, fo, co) = (script.clone(), forms.clone(), count.clone());
        let accept = smol::spawn(async move {
            let mut conns: Vec<smol::Task<()>> = Vec::new();
            while let Ok((tcp, _)) = listener.accept().await {
                let _ = tcp.set_nodelay(true);
                let (acceptor, sc, fo, co) = (acceptor.clone(), sc.clone(), fo.clone(), co.clone());
                conns.retain(|t| !t.is_finished());
                conns.push(smol::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let Some(form) = read_form(&mut tls).await else {
                        return;
                    };
                    let n = co.fetch_add(1, Ordering::SeqCst) + 1;
                    fo.lock().unwrap().push(form);
                    let (status, body) = sc.lock().unwrap().pop_front().unwrap_or_else(|| {
                        let token = serde_json::json!({
                            "access_token": format!("at-{n}"),
                            "expires_in": 3600,
                            "token_type": "Bearer",
                        });
                        (200, token.to_string())
                    });
                    Timer::after(delay).await;
                    let head = format!(
                        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\n\
                         content-length: {}\r\nconnection: close\r\n\r\n",
                        body.len()
                    );
                    let _ = tls.write_all(head.as_bytes()).await;
                    let _ = tls.write_all(body.as_bytes()).await;
                    let _ = tls.flush().await;
                    let _ = tls.close().await;
                }));
            }
        });
        TokenMock {
            url,
            script,
            forms,
            count,
            _accept: accept,
        }
    }

    pub fn script(&self, answers: impl IntoIterator<Item = (u16, String)>) {
        self.script.lock().unwrap().extend(answers);
    }

    pub fn requests(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }

    pub fn forms(&self) -> Vec<Vec<(String, String)>> {
        self.forms.lock().unwrap().clone()
    }
}

/// Reads one HTTP/1.1 request and returns its urlencoded form body.
async fn read_form(
    tls: &mut futures_rustls::server::TlsStream<smol::net::TcpStream>,
) -> Option<Vec<(String, String)>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        let n = tls.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > 64 * 1024 {
            return None;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())?;
    while buf.len() < head_end + len {
        let n = tls.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let body = String::from_utf8(buf[head_end..head_end + len].to_vec()).ok()?;
    Some(
        body.split('&')
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (percent_decode(k), percent_decode(v)))
            .collect(),
    )
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(v) => out.push(v),
                    Err(_) => out.extend_from_slice(&b[i..i + 3]),
                }
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
