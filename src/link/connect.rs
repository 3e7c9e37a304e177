//! Opening a session: TCP connect and the XEP-0114 handshake, each bounded
//! by the connect timeout.

use std::time::Duration;

use futures_lite::{AsyncReadExt, AsyncWriteExt, FutureExt};
use smol::net::TcpStream;

use super::{handshake, LinkConfig, LinkError};
use crate::xml::{parse_element, parse_header, Frame, FrameError, Framer, NS_STREAM};

/// `f`, or `LinkError::Timeout(what)` after `d`.
pub(super) async fn timeout<T>(
    d: Duration,
    what: &'static str,
    f: impl std::future::Future<Output = Result<T, LinkError>>,
) -> Result<T, LinkError> {
    f.or(async {
        async_io::Timer::after(d).await;
        Err(LinkError::Timeout(what))
    })
    .await
}

/// Connects and completes the XEP-0114 handshake.
pub(super) async fn open(cfg: &LinkConfig) -> Result<(TcpStream, Framer), LinkError> {
    let mut stream = timeout(cfg.connect_timeout, "connecting", async {
        TcpStream::connect(cfg.server.as_str())
            .await
            .map_err(LinkError::Connect)
    })
    .await?;
    let _ = stream.set_nodelay(true);
    let mut framer = Framer::new(cfg.max_stanza);
    let mut buf = vec![0u8; 4096];
    timeout(cfg.connect_timeout, "during the handshake", async {
        stream
            .write_all(handshake::stream_header(&cfg.jid).as_bytes())
            .await
            .map_err(LinkError::Io)?;
        let header = match read_frame(&mut stream, &mut framer, &mut buf).await? {
            Frame::Header(h) => parse_header(&h).map_err(|e| LinkError::Protocol(e.to_string()))?,
            _ => return Err(LinkError::Protocol("expected a stream header".into())),
        };
        let id = header
            .get_attr("id")
            .ok_or_else(|| LinkError::Protocol("stream header without an id".into()))?
            .to_owned();
        stream
            .write_all(handshake::handshake(&id, cfg.secret.expose()).as_bytes())
            .await
            .map_err(LinkError::Io)?;
        match read_frame(&mut stream, &mut framer, &mut buf).await? {
            Frame::Stanza(b) => {
                let el = parse_element(&b).map_err(|e| LinkError::Protocol(e.to_string()))?;
                if el.name == "handshake" {
                    Ok(())
                } else if el.is("error", NS_STREAM) {
                    Err(LinkError::Rejected(handshake::error_condition(&el)))
                } else {
                    Err(LinkError::Protocol(format!(
                        "expected <handshake/>, got <{}>",
                        el.name
                    )))
                }
            }
            Frame::End => Err(LinkError::Rejected("stream closed".into())),
            Frame::Header(_) | Frame::Skipped { .. } => Err(LinkError::Protocol(
                "unexpected answer to the handshake".into(),
            )),
        }
    })
    .await?;
    Ok((stream, framer))
}

/// Reads until the framer yields a frame (handshake only: no liveness).
async fn read_frame(
    stream: &mut TcpStream,
    framer: &mut Framer,
    buf: &mut [u8],
) -> Result<Frame, LinkError> {
    loop {
        match framer.next_frame() {
            Ok(Some(f)) => return Ok(f),
            Ok(None) => {}
            Err(e) => return Err(protocol_error(stream, &e).await),
        }
        let n = stream.read(buf).await.map_err(LinkError::Io)?;
        if n == 0 {
            return Err(LinkError::Closed);
        }
        framer.push(&buf[..n]);
    }
}

/// Tells the server why we give up on its stream, then reports it.
async fn protocol_error(stream: &mut TcpStream, e: &FrameError) -> LinkError {
    let msg = handshake::stream_error(e.condition(), e.reason());
    let _ = stream.write_all(msg.as_bytes()).await;
    let _ = stream.flush().await;
    LinkError::Protocol(e.to_string())
}
