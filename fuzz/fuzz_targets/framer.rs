//! Arbitrary bytes, fed in arbitrary chunks to the stream framer with a
//! small size limit (so the skip/discard path runs often); every frame is
//! then parsed the way the link parses it.
//!
//! Input: byte 0 picks the size limit, byte 1 seeds the chunk sizes, the
//! rest is the stream (see fuzz/seeds.sh for the seed layout).

#![no_main]

use libfuzzer_sys::fuzz_target;
use push_appserver::link::skipped;
use push_appserver::xml::{framer, parse_element, parse_header, Frame, FrameError, Framer};

mod common;

#[global_allocator]
static ALLOC: common::Capped = common::Capped;

/// Frames one input can yield are bounded by its length; this catches a
/// framer that stops consuming bytes.
const FRAMES_PER_BYTE: usize = 1;

fuzz_target!(|data: &[u8]| {
    let [limit, seed, stream @ ..] = data else {
        return;
    };
    let max_stanza = 16 + usize::from(*limit) * 2;
    let mut chunks = Chunks::new(*seed);
    let mut framer = Framer::new(max_stanza);
    let mut frames = 0usize;
    let mut rest = stream;
    let mut failed: Option<FrameError> = None;
    while !rest.is_empty() && failed.is_none() {
        let n = chunks.next_len().min(rest.len());
        framer.push(&rest[..n]);
        rest = &rest[n..];
        loop {
            let r = framer.next_frame();
            // What the framer holds is bounded by the limit plus one push.
            assert!(
                framer.buffered() <= max_stanza + n,
                "buffered {} > limit {max_stanza} + chunk {n}",
                framer.buffered()
            );
            match r {
                Ok(None) => {
                    // Waiting for more bytes: never more than one stanza's worth.
                    assert!(
                        framer.buffered() <= max_stanza,
                        "idle buffer over the limit"
                    );
                    break;
                }
                Ok(Some(frame)) => {
                    frames += 1;
                    assert!(frames <= stream.len() * FRAMES_PER_BYTE, "runaway framing");
                    check_frame(frame, max_stanza, n);
                }
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
    }
    if let Some(e) = failed {
        // Sticky errors: the same error whatever comes next.
        assert_eq!(framer.next_frame(), Err(e.clone()));
        framer.push(b"<iq type='get' id='after'/>");
        assert_eq!(framer.next_frame(), Err(e));
    }
});

fn check_frame(frame: Frame, max_stanza: usize, chunk: usize) {
    match frame {
        Frame::Header(h) => {
            assert!(h.len() <= max_stanza + chunk, "header of {} bytes", h.len());
            let _ = parse_header(&h);
        }
        Frame::Stanza(s) => {
            assert!(
                s.len() <= max_stanza,
                "stanza of {} bytes over the limit {max_stanza}",
                s.len()
            );
            let _ = parse_element(&s);
        }
        Frame::Skipped { head, why, size } => {
            assert!(head.as_ref().is_none_or(|h| h.len() <= framer::MAX_HEAD));
            assert!(size > 0);
            let d = skipped::decide(head.as_deref(), why, size, max_stanza, "push.example.org");
            if let Some((_, reply)) = d.reply {
                let out = reply.to_stanza_string();
                assert!(
                    parse_element(out.as_bytes()).is_ok(),
                    "skip reply does not parse: {out}"
                );
            }
        }
        Frame::End => {}
    }
}

/// Chunk lengths from a tiny xorshift: 1 to 64 bytes, sometimes 1 byte at a
/// time (the hardest case for a resumable scanner).
struct Chunks(u32);

impl Chunks {
    fn new(seed: u8) -> Self {
        Chunks(u32::from(seed).wrapping_mul(0x9e37_79b9) | 1)
    }

    fn next_len(&mut self) -> usize {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.0 = x;
        match x % 8 {
            0 => 1,
            _ => 1 + (x >> 8) as usize % 64,
        }
    }
}
