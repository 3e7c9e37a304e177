//! The benchmark's child processes (XMPP server, app server), killed on
//! every path: on drop, on `kill`, and from the panic hook (release builds
//! abort on panic, so no destructor would run).
//! (`#[path = "support/kids.rs"] mod kids;`)
#![allow(dead_code)]

use std::process::Child;
use std::sync::Mutex;

/// Pids of every live child of every `Kids`, for the panic hook.
static PIDS: Mutex<Vec<u32>> = Mutex::new(Vec::new());

/// Children killed and reaped when dropped.
#[derive(Default)]
pub struct Kids(Vec<Child>);

impl Kids {
    /// Takes ownership of `c`; returns its pid.
    pub fn push(&mut self, c: Child) -> u32 {
        let pid = c.id();
        if let Ok(mut p) = PIDS.lock() {
            p.push(pid);
        }
        self.0.push(c);
        pid
    }

    /// Whether the child `pid` still runs (false once it exited or is not ours).
    pub fn alive(&mut self, pid: u32) -> bool {
        self.0
            .iter_mut()
            .find(|c| c.id() == pid)
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Asks the child `pid` to stop (SIGTERM), waits up to `grace` for it
    /// to exit, then kills it; reaps it either way.
    pub fn terminate(&mut self, pid: u32, grace: std::time::Duration) {
        let Some(c) = self.0.iter_mut().find(|c| c.id() == pid) else {
            return;
        };
        if matches!(c.try_wait(), Ok(None)) {
            // SAFETY: kill(2) with the pid of our child, not reaped yet.
            unsafe { libc::kill(pid as i32, libc::SIGTERM) };
            let t0 = std::time::Instant::now();
            while matches!(c.try_wait(), Ok(None)) && t0.elapsed() < grace {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
        }
        self.kill(pid);
    }

    /// Kills and reaps the child `pid`, if it is ours.
    pub fn kill(&mut self, pid: u32) {
        if let Some(i) = self.0.iter().position(|c| c.id() == pid) {
            let mut c = self.0.swap_remove(i);
            reap(&mut c);
        }
    }
}

fn reap(c: &mut Child) {
    let _ = c.kill();
    let _ = c.wait();
    // Reaped: the pid may be reused, so the panic hook must forget it.
    if let Ok(mut p) = PIDS.lock() {
        p.retain(|&x| x != c.id());
    }
}

impl Drop for Kids {
    fn drop(&mut self) {
        for c in &mut self.0 {
            reap(c);
        }
    }
}

/// Installs a panic hook that SIGKILLs every live child, then panics as before.
pub fn kill_kids_on_panic() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if let Ok(pids) = PIDS.lock() {
            for &pid in pids.iter() {
                // SAFETY: kill(2) with a pid this process spawned and has
                // not reaped yet (reaped pids are removed above).
                unsafe { libc::kill(pid as i32, libc::SIGKILL) };
            }
        }
        default(info);
    }));
}
