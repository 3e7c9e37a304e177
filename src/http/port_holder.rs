//! Who listens on a port that we could not bind: read from `/proc` (the
//! socket's inode in `/proc/net/tcp*`, then the process whose descriptor
//! points at it). Without the rights to see other processes' descriptors
//! it says how to find out.

use std::net::SocketAddr;

/// Ports other XMPP software listens on by default, named in the hint.
const KNOWN: &[(u16, &str)] = &[
    (5280, "Prosody's and ejabberd's HTTP port"),
    (5281, "Prosody's HTTPS port"),
    (5347, "the XMPP server's component port"),
    (5443, "ejabberd's HTTPS port"),
];

/// A text to append to "Address already in use" for `addr`.
pub fn explain(addr: SocketAddr) -> String {
    let port = addr.port();
    let mut out = match holder(port) {
        Some((pid, name)) => format!(": port {port} is held by {name} (pid {pid})"),
        None => format!(
            ": another process holds port {port} (`ss -ltnp 'sport = :{port}'` as root names it)"
        ),
    };
    if let Some((_, what)) = KNOWN.iter().find(|(p, _)| *p == port) {
        out.push_str(&format!(", {what}"));
    }
    out
}

/// The pid and command name of the process listening on `port`.
fn holder(port: u16) -> Option<(u32, String)> {
    let inodes: Vec<u64> = ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|f| std::fs::read_to_string(f).ok())
        .flat_map(|t| listening_inodes(&t, port))
        .collect();
    if inodes.is_empty() {
        return None;
    }
    // Bounded by the system's processes and their descriptors; this runs
    // once, on a failed start.
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            let Ok(target) = std::fs::read_link(fd.path()) else {
                continue;
            };
            let target = target.to_string_lossy();
            let inode = target
                .strip_prefix("socket:[")
                .and_then(|s| s.strip_suffix(']'))
                .and_then(|s| s.parse::<u64>().ok());
            if inode.is_some_and(|i| inodes.contains(&i)) {
                let name = std::fs::read_to_string(entry.path().join("comm"))
                    .map(|s| s.trim().to_owned())
                    .unwrap_or_else(|_| "a process".to_owned());
                return Some((pid, name));
            }
        }
    }
    None
}

/// Inodes of the sockets listening on `port` in a `/proc/net/tcp` table.
fn listening_inodes(table: &str, port: u16) -> Vec<u64> {
    const LISTEN: &str = "0A";
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let local_port = f.get(1)?.rsplit_once(':')?.1;
            let ours = u16::from_str_radix(local_port, 16).ok()? == port;
            (ours && *f.get(3)? == LISTEN).then(|| f.get(9)?.parse().ok())?
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_listening_socket_of_a_port_in_the_table() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
   0: 0100007F:14A0 00000000:0000 0A 00000000:00000000 00:00000000 00000000   108        0 4242 1 0\n\
   1: 0100007F:14A0 0100007F:9C40 01 00000000:00000000 00:00000000 00000000   108        0 4343 1 0\n\
   2: 0100007F:1EB2 00000000:0000 0A 00000000:00000000 00:00000000 00000000   108        0 4444 1 0\n";
        assert_eq!(listening_inodes(table, 5280), vec![4242]);
        assert_eq!(listening_inodes(table, 7858), vec![4444]);
        assert!(listening_inodes(table, 80).is_empty());
        assert!(listening_inodes("garbage\nnot a table line", 5280).is_empty());
    }

    #[test]
    fn names_the_process_that_holds_a_port() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let text = explain(l.local_addr().unwrap());
        assert!(
            text.contains(&format!("(pid {})", std::process::id())),
            "{text}"
        );
    }
}
