//! The configuration problem an app profile shows while its provider
//! rejects pushes as if the environment, topic or project were wrong: one
//! loud log line when it starts, a line on `/health` while it lasts, and one
//! line when a delivered push proves the configuration right.

use std::sync::Mutex;

/// The current configuration problem of one provider, if any.
#[derive(Debug, Default)]
pub struct ConfigProblem(Mutex<Option<String>>);

impl ConfigProblem {
    /// Records `reason`. Returns true when no problem was recorded before,
    /// i.e. when the caller should log it loudly (once per episode).
    pub fn report(&self, reason: &str) -> bool {
        let mut problem = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let first = problem.is_none();
        if first {
            *problem = Some(reason.to_owned());
        }
        first
    }

    /// A push was delivered: forgets the problem. Returns true when there
    /// was one (the caller logs that it is over).
    pub fn clear(&self) -> bool {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .is_some()
    }

    /// `"; configuration problem: ..."` for the health line, or nothing.
    pub fn health_suffix(&self) -> String {
        match self.0.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
            Some(p) => format!("; configuration problem: {p}"),
            None => String::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reported_once_per_episode_and_shown_until_cleared() {
        let p = ConfigProblem::default();
        assert_eq!(p.health_suffix(), "");
        assert!(p.report("BadDeviceToken"));
        assert!(!p.report("BadDeviceToken"));
        assert_eq!(p.health_suffix(), "; configuration problem: BadDeviceToken");
        assert!(p.clear());
        assert!(!p.clear());
        assert_eq!(p.health_suffix(), "");
        assert!(p.report("again"));
    }
}
