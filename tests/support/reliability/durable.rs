//! The durability model: what was acknowledged, load threads that
//! register, renew, unregister and push over XMPP and HTTP at once while
//! tolerating a `kill -9` at any moment, and the checker that proves every
//! acknowledged state after a restart by pushing with node and secret.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use push_appserver::xml::Element;

use crate::support::harness::*;

/// What is known about one registration key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Known {
    /// Acknowledged as registered with this node and secret.
    Present(Reg),
    /// Never registered, or acknowledged as removed.
    Absent,
    /// A change was in flight at the crash: either outcome is fine.
    Unsure,
}

/// A registration key: an XMPP (owner, device) or an HTTP node.
#[derive(Debug, Clone)]
pub struct Key {
    pub owner: Option<String>,
    pub device: String,
    pub known: Known,
    /// Acknowledged since the last check.
    pub fresh: bool,
    /// An HTTP node's secret, once learnt: it proves the device when the
    /// node moves to another token, and it never changes while the node
    /// exists (forgotten once it is acknowledged as removed).
    pub secret: Option<String>,
}

/// Counts over a run.
#[derive(Debug, Default, Clone, Copy)]
pub struct Tally {
    pub acked_writes: u64,
    /// Acknowledged writes still the latest on their key at a crash, and
    /// so checked directly after the restart (the others were superseded
    /// by a later acknowledged write on the same key, checked in turn).
    pub acked_checked: u64,
    pub checked: u64,
    pub lost: u64,
    pub resurrected: u64,
    pub pushes: u64,
}

impl Tally {
    pub fn add(&mut self, o: Tally) {
        self.acked_writes += o.acked_writes;
        self.acked_checked += o.acked_checked;
        self.checked += o.checked;
        self.lost += o.lost;
        self.resurrected += o.resurrected;
        self.pushes += o.pushes;
    }
}

/// Sends an iq; its reply, or None if the link died first.
fn try_iq(c: &mut Conn, xml: &str, id: &str) -> Option<Element> {
    c.stream.write_all(xml.as_bytes()).ok()?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        let asked = Instant::now();
        match c.next_frame(Duration::from_millis(200)) {
            Some(push_appserver::xml::Frame::Stanza(b)) => {
                let el = push_appserver::xml::parse_element(&b).ok()?;
                if el.get_attr("id") == Some(id) {
                    return Some(el);
                }
            }
            Some(_) => return None,
            // A timeout returns at the deadline; earlier means EOF.
            None if asked.elapsed() < Duration::from_millis(200) => return None,
            None => {}
        }
    }
    None
}

/// An HTTP exchange: `Err(false)` = nothing was sent, `Err(true)` = sent
/// but no complete answer (the outcome is unknown).
pub fn try_http(port: u16, path: &str, body: &str) -> Result<(u16, String), bool> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).map_err(|_| false)?;
    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
    let req = format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).map_err(|_| true)?;
    let mut raw = Vec::new();
    // A reset (the server died with the answer half written) is no answer.
    s.read_to_end(&mut raw).map_err(|_| true)?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").ok_or(true)?;
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or(true)?;
    let length = head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case("content-length")
            .then(|| v.trim().parse::<usize>().ok())?
    });
    if length.is_some_and(|n| body.len() < n) {
        return Err(true);
    }
    Ok((status, body.to_owned()))
}

fn form_escape(s: &str) -> String {
    s.replace('%', "%25")
        .replace(' ', "%20")
        .replace('&', "%26")
}

/// Parses `OK\n<node>\n<secret>` (a secret is 64 hex digits).
fn ok_reg(status: u16, body: &str) -> Option<Reg> {
    let l: Vec<&str> = body.lines().collect();
    (status == 200 && l.len() >= 3 && l[0] == "OK" && l[2].len() == 64).then(|| Reg {
        node: l[1].to_owned(),
        secret: l[2].to_owned(),
    })
}

/// One write on `key` over XMPP; updates the model. False: the link died.
pub fn xmpp_write(c: &mut Conn, key: &mut Key, t: &mut Tally) -> bool {
    let owner = key.owner.clone().unwrap_or_default();
    let from = format!("{owner}/res");
    let id = format!("w{}", fastrand::u64(..));
    let remove = matches!(key.known, Known::Present(_)) && fastrand::u8(..4) == 0;
    let xml = if remove {
        unregister_iq(&id, &from, "fcm", &key.device)
    } else {
        register_iq(
            &id,
            "fcm",
            &key.device,
            &format!("tok-{}", fastrand::u32(..)),
        )
        .replace("from='user@example.com/res'", &format!("from='{from}'"))
    };
    let before = std::mem::replace(&mut key.known, Known::Unsure);
    key.fresh = false;
    let Some(reply) = try_iq(c, &xml, &id) else {
        return false;
    };
    assert_eq!(outcome(&reply).0, "result", "{reply:?}");
    t.acked_writes += 1;
    key.fresh = true;
    key.known = if remove {
        Known::Absent
    } else {
        let cmd = reply.get_child("command", NS_COMMANDS).expect("command");
        assert_eq!(cmd.get_attr("status"), Some("completed"));
        let form = cmd.get_child("x", "jabber:x:data").expect("form");
        let field = |var: &str| {
            form.children_named("field", "jabber:x:data")
                .find(|f| f.get_attr("var") == Some(var))
                .and_then(|f| f.get_child("value", "jabber:x:data"))
                .map(|v| v.text_content())
                .expect("field")
        };
        let reg = Reg {
            node: field("node"),
            secret: field("secret"),
        };
        // A renewal by the owner keeps node and secret.
        if let Known::Present(old) = &before {
            assert_eq!(&reg, old, "renewal changed node or secret");
        }
        Known::Present(reg)
    };
    true
}

/// One write on `key` over HTTP; updates the model. False: server gone.
pub fn http_write(port: u16, key: &mut Key, t: &mut Tally) -> bool {
    let remove = matches!(key.known, Known::Present(_)) && fastrand::u8(..3) == 0;
    let dev = form_escape(&key.device);
    let (path, body) = match &key.known {
        Known::Present(r) if remove => (
            "/push_appserver/v1/unregister",
            format!("type=fcm&node={dev}&secret={}", r.secret),
        ),
        // A new token needs the secret; without one known, the node is
        // absent or was made by a register whose answer was lost, which
        // the same token renews.
        _ => match &key.secret {
            Some(secret) => (
                "/push_appserver/v1/register",
                format!(
                    "type=fcm&node={dev}&token=tok-{}&secret={secret}",
                    fastrand::u32(..)
                ),
            ),
            None => (
                "/push_appserver/v1/register",
                format!("type=fcm&node={dev}&token=tok-{dev}"),
            ),
        },
    };
    let before = std::mem::replace(&mut key.known, Known::Unsure);
    let was_fresh = std::mem::replace(&mut key.fresh, false);
    match try_http(port, path, &body) {
        Err(false) => {
            key.known = before;
            key.fresh = was_fresh;
            false
        }
        Err(true) => false,
        Ok((status, text)) => {
            let reg = ok_reg(status, &text).unwrap_or_else(|| panic!("{path}: {status} {text}"));
            t.acked_writes += 1;
            key.fresh = true;
            key.secret = (!remove).then(|| reg.secret.clone());
            key.known = if remove {
                Known::Absent
            } else {
                Known::Present(reg)
            };
            true
        }
    }
}

/// Load on a key set until the server dies or `stop` is set: mostly
/// writes, with pushes to registered keys in between; `acked` counts the
/// acknowledged writes as they happen.
pub fn load(
    mut keys: Vec<Key>,
    mut conn: Option<Conn>,
    http_port: u16,
    stop: Arc<AtomicBool>,
    acked: Arc<AtomicU64>,
) -> (Vec<Key>, Tally) {
    let mut t = Tally::default();
    while !stop.load(Ordering::Relaxed) {
        let before = t.acked_writes;
        let i = fastrand::usize(..keys.len());
        let key = &mut keys[i];
        let push = matches!(key.known, Known::Present(_)) && fastrand::u8(..3) == 0;
        let alive = match (&mut conn, push) {
            (Some(c), false) => xmpp_write(c, key, &mut t),
            (None, false) => http_write(http_port, key, &mut t),
            (Some(c), true) => {
                let Known::Present(r) = &key.known else {
                    unreachable!()
                };
                let id = format!("p{}", fastrand::u64(..));
                let iq = publish_iq(&id, &r.node, &r.secret, Some("hi"))
                    .replace("from='user@example.com'", "from='example.com'");
                t.pushes += 1;
                try_iq(c, &iq, &id).is_some()
            }
            (None, true) => {
                let Known::Present(r) = &key.known else {
                    unreachable!()
                };
                t.pushes += 1;
                let body = format!("node={}&secret={}", form_escape(&r.node), r.secret);
                try_http(http_port, "/push_appserver/v1/push", &body).is_ok()
            }
        };
        acked.fetch_add(t.acked_writes - before, Ordering::Relaxed);
        if !alive {
            break;
        }
    }
    (keys, t)
}

/// Checks every key whose state is known against the restarted server:
/// a registration acknowledged as present must accept a push with its node
/// and secret, one acknowledged as removed must be unknown. Keys in doubt
/// are not checked. Failures are counted (lost / resurrected) and listed.
pub fn check(
    conn: &mut Conn,
    http_port: u16,
    keys: &mut [Key],
    t: &mut Tally,
    failures: &mut Vec<String>,
) {
    let mut pending: HashMap<String, usize> = HashMap::new();
    for i in 0..keys.len() {
        let key = &keys[i];
        match (&key.owner, &key.known) {
            (_, Known::Unsure) => {}
            (Some(owner), known) => {
                let node = match known {
                    Known::Present(r) => r.clone(),
                    _ => Reg {
                        node: node_of(owner, &key.device),
                        secret: "0".repeat(64),
                    },
                };
                let id = format!("c{}", fastrand::u64(..));
                let iq = publish_iq(&id, &node.node, &node.secret, None)
                    .replace("from='user@example.com'", "from='example.com'");
                conn.send(&iq);
                pending.insert(id, i);
                if pending.len() >= 64 {
                    collect(conn, keys, &mut pending, t, failures);
                }
            }
            (None, known) => {
                let (node, secret) = match known {
                    Known::Present(r) => (r.node.clone(), r.secret.clone()),
                    _ => (key.device.clone(), "0".repeat(64)),
                };
                let body = format!("node={}&secret={secret}", form_escape(&node));
                let (status, _) = try_http(http_port, "/push_appserver/v1/push", &body)
                    .expect("the restarted server answers");
                verdict(&mut keys[i], status == 200, status != 404, t, failures);
            }
        }
    }
    collect(conn, keys, &mut pending, t, failures);
}

/// Reads the answers to the checks in flight.
fn collect(
    conn: &mut Conn,
    keys: &mut [Key],
    pending: &mut HashMap<String, usize>,
    t: &mut Tally,
    failures: &mut Vec<String>,
) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !pending.is_empty() && Instant::now() < deadline {
        let Some(el) = conn.recv(Duration::from_millis(200)) else {
            continue;
        };
        let Some(i) = el.get_attr("id").and_then(|id| pending.remove(id)) else {
            continue;
        };
        let (ty, cond) = outcome(&el);
        let exists = (ty.as_str(), cond.as_str()) != ("cancel", "item-not-found");
        verdict(&mut keys[i], ty == "result", exists, t, failures);
    }
    assert!(pending.is_empty(), "no answer to {} checks", pending.len());
}

/// `accepted`: a push with the acknowledged node and secret went through;
/// `exists`: the server knows the node at all.
fn verdict(key: &mut Key, accepted: bool, exists: bool, t: &mut Tally, failures: &mut Vec<String>) {
    t.checked += 1;
    if std::mem::take(&mut key.fresh) {
        t.acked_checked += 1;
    }
    match (&key.known, accepted, exists) {
        (Known::Present(_), false, _) => {
            t.lost += 1;
            failures.push(format!("lost: {key:?}"));
        }
        (Known::Absent, _, true) => {
            t.resurrected += 1;
            failures.push(format!("came back: {key:?}"));
        }
        _ => {}
    }
}

/// `n` XMPP keys (owners o0..o9 at example.com) and `n` HTTP keys.
pub fn keys(n: usize, tag: &str) -> (Vec<Key>, Vec<Key>) {
    let xmpp = (0..n)
        .map(|i| Key {
            owner: Some(format!("o{}@example.com", i % 10)),
            device: format!("{tag}-dev-{i}"),
            known: Known::Absent,
            fresh: false,
            secret: None,
        })
        .collect();
    let http = (0..n)
        .map(|i| Key {
            owner: None,
            device: format!("{tag}-node {i}"),
            known: Known::Absent,
            fresh: false,
            secret: None,
        })
        .collect();
    (xmpp, http)
}
