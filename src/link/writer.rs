//! The write side of a session: one task draining the reply queue.

use std::time::Duration;

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
    loop {
        let next = async { rx.recv().await.ok().map(Some) }
            .or(async {
                async_io::Timer::after(keepalive).await;
                Some(None)
            })
            .await;
        match next {
            None => return stream.flush().await.map_err(LinkError::Io),
            Some(None) => out.push(' '),
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
        // The in-flight slots free only now that their replies are written.
        slots.clear();
    }
}
