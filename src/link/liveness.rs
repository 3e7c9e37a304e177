//! Finding a dead link: after a silent period the link pings the XMPP
//! server (XEP-0199) and gives up when nothing arrives in time. A pure
//! policy fed with the time, plus the ping stanza.

use std::time::{Duration, Instant};

use crate::xml::{Element, NS_COMPONENT};

/// Prefix of the ids of our own pings, so their answers are recognized.
pub const PING_ID_PREFIX: &str = "pas-live-";

/// What to do when the liveness deadline passes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tick {
    /// Not yet: wait for the next deadline.
    Wait,
    /// Silent for too long: send a ping.
    Ping,
    /// The ping went unanswered: the link is dead.
    Dead,
}

/// Tracks when the server last sent anything. Any bytes count as alive.
#[derive(Debug, Clone)]
pub struct Liveness {
    ping_after: Duration,
    timeout: Duration,
    last_rx: Instant,
    ping_sent: Option<Instant>,
}

impl Liveness {
    /// Pings after `ping_after` of silence, dead `timeout` after the ping.
    pub fn new(now: Instant, ping_after: Duration, timeout: Duration) -> Self {
        Liveness {
            ping_after,
            timeout,
            last_rx: now,
            ping_sent: None,
        }
    }

    /// Bytes arrived.
    pub fn received(&mut self, now: Instant) {
        self.last_rx = now;
        self.ping_sent = None;
    }

    /// When [`Liveness::tick`] has something to do.
    pub fn deadline(&self) -> Instant {
        match self.ping_sent {
            Some(t) => t + self.timeout,
            None => self.last_rx + self.ping_after,
        }
    }

    /// What to do at `now`; a `Ping` is recorded as sent.
    pub fn tick(&mut self, now: Instant) -> Tick {
        if now < self.deadline() {
            return Tick::Wait;
        }
        if self.ping_sent.is_some() {
            Tick::Dead
        } else {
            self.ping_sent = Some(now);
            Tick::Ping
        }
    }
}

/// The domain a component pings: its JID without the first label
/// (`push.example.org` pings `example.org`); a single label pings itself.
pub fn default_ping_to(jid: &str) -> &str {
    match jid.split_once('.') {
        Some((_, rest)) if !rest.is_empty() => rest,
        _ => jid,
    }
}

/// `<iq type='get' id=... from=jid to=server><ping xmlns='urn:xmpp:ping'/></iq>`.
pub fn ping(jid: &str, to: &str, n: u64) -> Element {
    Element::new("iq", NS_COMPONENT)
        .attr("type", "get")
        .attr("id", &format!("{PING_ID_PREFIX}{n}"))
        .attr("from", jid)
        .attr("to", to)
        .child(Element::new("ping", "urn:xmpp:ping"))
}

/// Whether a stanza answers one of our pings (it must not reach the handler).
pub fn is_ping_answer(stanza: &Element) -> bool {
    stanza.name == "iq"
        && matches!(stanza.get_attr("type"), Some("result" | "error"))
        && stanza
            .get_attr("id")
            .is_some_and(|id| id.starts_with(PING_ID_PREFIX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pings_after_silence_and_dies_without_an_answer() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut l = Liveness::new(t0, s(30), s(20));
        assert_eq!(l.deadline(), t0 + s(30));
        assert_eq!(l.tick(t0 + s(29)), Tick::Wait);
        l.received(t0 + s(10));
        assert_eq!(l.tick(t0 + s(39)), Tick::Wait);
        assert_eq!(l.tick(t0 + s(40)), Tick::Ping);
        assert_eq!(l.deadline(), t0 + s(60));
        assert_eq!(l.tick(t0 + s(50)), Tick::Wait);
        assert_eq!(l.tick(t0 + s(60)), Tick::Dead);
        // Any bytes after the ping count as the answer.
        let mut l = Liveness::new(t0, s(30), s(20));
        assert_eq!(l.tick(t0 + s(30)), Tick::Ping);
        l.received(t0 + s(45));
        assert_eq!(l.tick(t0 + s(60)), Tick::Wait);
        assert_eq!(l.tick(t0 + s(75)), Tick::Ping);
    }

    #[test]
    fn ping_target_and_answers() {
        assert_eq!(default_ping_to("push.example.org"), "example.org");
        assert_eq!(default_ping_to("localhost"), "localhost");
        let p = ping("push.example.org", "example.org", 7).to_stanza_string();
        assert_eq!(
            p,
            "<iq type='get' id='pas-live-7' from='push.example.org' to='example.org'>\
             <ping xmlns='urn:xmpp:ping'/></iq>"
        );
        let answer =
            |xml: &str| is_ping_answer(&crate::xml::parse_element(xml.as_bytes()).unwrap());
        assert!(answer("<iq type='result' id='pas-live-7'/>"));
        assert!(answer("<iq type='error' id='pas-live-7'/>"));
        assert!(!answer("<iq type='get' id='pas-live-7'/>"));
        assert!(!answer("<iq type='result' id='other'/>"));
    }
}
