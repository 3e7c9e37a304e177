//! The write side of a session: one task draining the reply queue.

use std::time::{Duration, Instant};

use futures_lite::{AsyncWriteExt, FutureExt};
use smol::channel::Receiver;
use smol::net::TcpStream;

use super::connect::timeout;
use super::replier::Outgoing;
use super::LinkError;

/// Writes queued stanzas, batching what is ready into one write, and a
/// whitespace keepalive after `keepalive` of silence. A write that takes
/// longer than `write_timeout` ends the session (the server stopped reading).
pub(super) async fn write_loop(
    mut stream: TcpStream,
    rx: Receiver<Outgoing>,
    keepalive: Duration,
    write_timeout: Duration,
) -> Result<(), LinkError> {
    let mut out = String::with_capacity(16 * 1024);
    let mut slots = Vec::new();
    // Armed once and re-armed only when it fires, not per write: a new
    // timer per write costs a reactor notification per reply.
    let mut last_write = Instant::now();
    let mut silence = async_io::Timer::at(last_write + keepalive);
    loop {
        let next = async { rx.recv().await.ok().map(Some) }
            .or(async {
                (&mut silence).await;
                Some(None)
            })
            .await;
        match next {
            None => return stream.flush().await.map_err(LinkError::Io),
            Some(None) => {
                let due = last_write + keepalive;
                let now = Instant::now();
                if now < due {
                    // Writes since it was armed moved the deadline on.
                    silence.set_at(due);
                    continue;
                }
                silence.set_at(now + keepalive);
                out.push(' ');
            }
            Some(Some(o)) => {
                out.push_str(&o.text);
                slots.extend(o.permit);
                while out.len() < 64 * 1024 {
                    match rx.try_recv() {
                        Ok(o) => {
                            out.push_str(&o.text);
                            slots.extend(o.permit);
                        }
                        Err(_) => break,
                    }
                }
            }
        }
        timeout(write_timeout, "writing to the server", async {
            stream
                .write_all(out.as_bytes())
                .await
                .map_err(LinkError::Io)
        })
        .await?;
        out.clear();
        last_write = Instant::now();
        // The in-flight slots free only now that their replies are written.
        slots.clear();
    }
}
