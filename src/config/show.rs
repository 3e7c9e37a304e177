//! Prints the effective configuration for `check-config`, secrets masked.

use std::fmt;

use super::Settings;

impl fmt::Display for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.from_environment.is_empty() {
            writeln!(
                f,
                "# set by the environment: {}",
                self.from_environment.join(", ")
            )?;
        }
        writeln!(f, "data_dir = {:?}", self.data_dir.display().to_string())?;
        writeln!(f, "debugging = {}", self.debugging)?;
        writeln!(f, "rate_limit = {}", self.rate_limit)?;
        writeln!(
            f,
            "log_level = {:?}",
            self.log_level.as_str().to_lowercase()
        )?;
        writeln!(f, "log_format = \"{}\"", self.log_format.name())?;
        writeln!(f, "\n[metrics]\nenabled = {}", self.metrics.enabled)?;
        match self.metrics.listen {
            Some(a) => writeln!(f, "listen = \"{a}\"")?,
            None => writeln!(f, "listen = \"\"  # on the HTTP API")?,
        }
        writeln!(f, "\n[http]")?;
        match self.http.listen {
            Some(a) => writeln!(f, "listen = \"{a}\"")?,
            None => writeln!(f, "listen = \"off\"")?,
        }
        let h = &self.http;
        writeln!(f, "requests_per_second = {}", h.requests_per_second)?;
        writeln!(
            f,
            "new_registrations_per_hour_per_client = {}",
            h.new_registrations_per_hour_per_client
        )?;
        writeln!(f, "open_unregister = {}", h.open_unregister)?;
        writeln!(f, "open_register = {}", h.open_register)?;
        writeln!(f, "max_connections = {}", h.max_connections)?;
        writeln!(
            f,
            "request_timeout_secs = {}\nidle_timeout_secs = {}\nwrite_timeout_secs = {}",
            h.request_timeout.as_secs(),
            h.idle_timeout.as_secs(),
            h.write_timeout.as_secs()
        )?;
        let proxies: Vec<String> = h.trusted_proxies.0.iter().map(|c| c.to_string()).collect();
        writeln!(f, "trusted_proxies = {proxies:?}")?;
        let status_from: Vec<String> = h.status_from.iter().map(|c| c.to_string()).collect();
        writeln!(f, "status_from = {status_from:?}")?;
        match &h.tls {
            Some(t) => writeln!(
                f,
                "tls_listen = \"{}\"\ntls_cert = {:?}\ntls_key = {:?}",
                t.listen,
                t.cert.display().to_string(),
                t.key.display().to_string()
            )?,
            None => writeln!(f, "tls_listen = \"off\"")?,
        }
        if h.threads_ignored {
            writeln!(
                f,
                "# threads is set but ignored: the API runs on the async executor"
            )?;
        }
        let cache = match self.store.cache_bytes {
            Some(b) => format!("{}", b / (1024 * 1024)),
            None => format!(
                "\"auto\"  # {} MiB for the store as it is now, at most cache_max_mb",
                self.store.cache_for(&self.data_dir) / (1024 * 1024)
            ),
        };
        writeln!(
            f,
            "\n[store]\ncache_mb = {cache}\ncache_max_mb = {}\nmax_registrations = {}\noutcome_flush_secs = {}\nrecord_cache = {}",
            self.store.cache_max_bytes / (1024 * 1024),
            self.store.max_registrations,
            self.store.outcome_flush_secs,
            self.store.record_cache
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
            super::dialects::show(f, &c.dialects)?;
            if let Some(m) = &c.monal {
                writeln!(f, "monal = {}", m.describe())?;
            }
            if let Some(u) = &c.unifiedpush {
                writeln!(f, "unifiedpush = {}", u.describe())?;
            }
            if let Some(p) = &c.push2 {
                writeln!(f, "push2 = {}", p.describe())?;
            }
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
