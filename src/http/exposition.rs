//! The `/metrics` exposition: reads everything it shows into [`Family`]
//! values (the registry, the link states, the store, credential expiry
//! and the process). Only reads; the text comes from
//! [`crate::metrics::render`].

use std::time::UNIX_EPOCH;

use super::Backend;
use crate::metrics::render::{render, Family, Kind};
use crate::metrics::{global, process, PushResult};

fn app_label(name: &str) -> Vec<(&'static str, String)> {
    vec![("app", name.to_owned())]
}

/// The families of the push service, per app profile.
fn push_families(out: &mut Vec<Family>) {
    let apps = global().apps();
    let mut pushes = Family::new(
        "push_appserver_pushes_total",
        Kind::Counter,
        "Pushes by app profile and outcome.",
    );
    let mut latency = Family::new(
        "push_appserver_provider_latency_seconds",
        Kind::Histogram,
        "Time from handing a push to the provider to its final answer, retries included.",
    );
    let mut in_flight = Family::new(
        "push_appserver_provider_requests_in_flight",
        Kind::Gauge,
        "Pushes waiting for their provider's answer.",
    );
    let mut regs = Family::new(
        "push_appserver_registration_changes_total",
        Kind::Counter,
        "Registrations and unregistrations since the start, by push type.",
    );
    for (name, a) in &apps {
        for r in PushResult::ALL {
            let l = vec![("app", name.clone()), ("outcome", r.label().to_owned())];
            pushes = pushes.number(l, a.outcomes[r as usize].get() as f64);
        }
        latency = latency.histogram(app_label(name), a.latency.snapshot());
        in_flight = in_flight.number(app_label(name), a.in_flight.get() as f64);
        for (op, c) in [("register", &a.registered), ("unregister", &a.unregistered)] {
            let l = vec![("type", name.clone()), ("change", op.to_owned())];
            regs = regs.number(l, c.get() as f64);
        }
    }
    out.extend([pushes, latency, in_flight, regs]);
}

fn link_families(backend: &Backend, out: &mut Vec<Family>) {
    let mut up = Family::new(
        "push_appserver_component_up",
        Kind::Gauge,
        "1 while the component link's stream is up (handshake done).",
    );
    let mut connects = Family::new(
        "push_appserver_component_connects_total",
        Kind::Counter,
        "Successful handshakes of the component link; every one after the first is a reconnect.",
    );
    let mut stanzas = Family::new(
        "push_appserver_component_stanzas_total",
        Kind::Counter,
        "Stanzas received on the component link.",
    );
    for (jid, s) in &backend.links {
        let l = || vec![("component", jid.clone())];
        up = up.number(l(), if s.is_connected() { 1.0 } else { 0.0 });
        connects = connects.number(l(), s.connects() as f64);
        stanzas = stanzas.number(l(), s.stanzas() as f64);
    }
    out.extend([up, connects, stanzas]);
}

fn store_families(backend: &Backend, out: &mut Vec<Family>) {
    let m = global();
    // While the store opens after a start there is no count: the gauge
    // is left out rather than reported as 0.
    if !backend.registrations.is_opening() {
        let count = backend
            .registrations
            .count()
            .unwrap_or(backend.registrations.approximate_count() as u64);
        out.push(
            Family::new(
                "push_appserver_registrations",
                Kind::Gauge,
                "Registrations in the store, all types.",
            )
            .number(vec![], count as f64),
        );
    }
    out.push(
        Family::new(
            "push_appserver_store_write_seconds",
            Kind::Histogram,
            "Time of synced store writes (registrations, dead-token removals).",
        )
        .histogram(vec![], m.store_write.snapshot()),
    );
    out.push(
        Family::new(
            "push_appserver_store_failures_total",
            Kind::Counter,
            "Store operations that failed (reads or writes).",
        )
        .number(vec![], m.store_failures.get() as f64),
    );
    out.push(
        Family::new(
            "push_appserver_store_writes_failing",
            Kind::Gauge,
            "1 while store writes fail (e.g. a full disk) and registrations are refused.",
        )
        .number(
            vec![],
            if backend.registrations.write_error().is_some() {
                1.0
            } else {
                0.0
            },
        ),
    );
    let mut reloads = Family::new(
        "push_appserver_config_reloads_total",
        Kind::Counter,
        "SIGHUP reloads, applied or refused.",
    );
    reloads = reloads.number(
        vec![("result", "applied".into())],
        m.reloads_ok.get() as f64,
    );
    reloads = reloads.number(
        vec![("result", "refused".into())],
        m.reloads_failed.get() as f64,
    );
    out.push(reloads);
}

fn credential_families(backend: &Backend, out: &mut Vec<Family>) {
    // Only APNS client certificates expire; a .p8 key and an FCM service
    // account have no expiry date, so they have no sample here.
    let mut expiry = Family::new(
        "push_appserver_apns_certificate_expiry_timestamp_seconds",
        Kind::Gauge,
        "notAfter of the APNS client certificate as a Unix time (certificate auth only).",
    );
    let apps = backend.pushes.apps();
    let mut names: Vec<_> = apps.keys().collect();
    names.sort();
    for name in names {
        let t = apps[name].provider.certificate_expiry();
        if let Some(secs) = t.and_then(|t| t.duration_since(UNIX_EPOCH).ok()) {
            expiry = expiry.number(app_label(name), secs.as_secs() as f64);
        }
    }
    out.push(expiry);
}

fn process_families(out: &mut Vec<Family>) {
    let p = process::read();
    let mut push = |name, kind, help, v: Option<f64>| {
        if let Some(v) = v {
            out.push(Family::new(name, kind, help).number(vec![], v));
        }
    };
    push(
        "process_resident_memory_bytes",
        Kind::Gauge,
        "Resident memory size in bytes.",
        p.rss_bytes.map(|b| b as f64),
    );
    push(
        "process_cpu_seconds_total",
        Kind::Counter,
        "Total user and system CPU time spent in seconds.",
        p.cpu_seconds,
    );
    push(
        "process_open_fds",
        Kind::Gauge,
        "Number of open file descriptors.",
        p.open_fds.map(|n| n as f64),
    );
}

/// Every family, read now.
pub fn families(backend: &Backend) -> Vec<Family> {
    let mut out = Vec::new();
    push_families(&mut out);
    link_families(backend, &mut out);
    store_families(backend, &mut out);
    credential_families(backend, &mut out);
    process_families(&mut out);
    out
}

/// The `/metrics` body.
pub fn exposition(backend: &Backend) -> String {
    render(&families(backend))
}
