//! Prints the effective configuration for `check-config`, secrets masked.

use std::fmt;

use super::Settings;

impl fmt::Display for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "data_dir = {:?}", self.data_dir.display().to_string())?;
        writeln!(f, "debugging = {}", self.debugging)?;
        writeln!(f, "rate_limit = {}", self.rate_limit)?;
        writeln!(
            f,
            "log_level = {:?}",
            self.log_level.as_str().to_lowercase()
        )?;
        writeln!(f, "\n[http]")?;
        match self.http.listen {
            Some(a) => writeln!(f, "listen = \"{a}\"")?,
            None => writeln!(f, "listen = \"off\"")?,
        }
        writeln!(f, "threads = {}", self.http.threads)?;
        writeln!(f, "requests_per_second = {}", self.http.requests_per_second)?;
        writeln!(f, "open_unregister = {}", self.http.open_unregister)?;
        writeln!(
            f,
            "\n[store]\ncache_mb = {}\nmax_registrations = {}",
            self.store.cache_bytes / (1024 * 1024),
            self.store.max_registrations
        )?;
        let r = &self.registrations;
        writeln!(
            f,
            "\n[registrations]\nmax_per_jid = {}\nmax_per_domain = {}\n\
             commands_per_minute_per_jid = {}\ncommands_per_minute_per_domain = {}",
            r.max_per_jid,
            r.max_per_domain,
            r.commands_per_minute_per_jid,
            r.commands_per_minute_per_domain
        )?;
        writeln!(
            f,
            "\n[limits]\nmax_stanza_bytes = {}\nmax_in_flight = {}\npush_timeout_secs = {}\nkeepalive_secs = {}",
            self.limits.max_stanza_bytes,
            self.limits.max_in_flight,
            self.limits.push_timeout_secs,
            self.limits.keepalive_secs
        )?;
        writeln!(
            f,
            "ping_after_secs = {}\nping_timeout_secs = {}\nshutdown_grace_secs = {}",
            self.limits.ping_after_secs,
            self.limits.ping_timeout_secs,
            self.limits.shutdown_grace_secs
        )?;
        for c in &self.components {
            writeln!(f, "\n[[component]]")?;
            writeln!(f, "jid = {:?}", c.jid)?;
            writeln!(f, "server = {:?}", c.server)?;
            let masked = if c.secret.expose().is_empty() {
                "(unset)"
            } else {
                "********"
            };
            writeln!(f, "secret = \"{masked}\"")?;
            writeln!(f, "types = {:?}", c.types)?;
            writeln!(f, "ping_to = {:?}", c.ping_to)?;
        }
        for (name, app) in &self.apps {
            writeln!(f, "\n[app.{name}]")?;
            for (k, v) in app.describe() {
                writeln!(f, "{k} = {v}")?;
            }
        }
        Ok(())
    }
}
