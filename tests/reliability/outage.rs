//! Reliability: APNS and FCM down. Mock providers (HTTP/2 + TLS on
//! 127.0.0.1) sit behind a fault proxy; an outage cycles through refused
//! connections, connections accepted and never answered, requests accepted
//! and never answered (HTTP/2 stall), 503 without and with `Retry-After`.
//!
//! Two forms. In process, the providers run on a [`ManualClock`]: 10
//! minutes of outage in 10-30 s steps plus a 50-minute jump (so the APNS
//! JWT and the FCM OAuth token are renewed during the outage), about 15 s
//! of real time: what the clock drives (token lifetimes, FCM's retry
//! budget) is simulated, the retry waits and request timeouts (async_io
//! timers) are real and shortened. Through the binary, in real time (10 s,
//! 60 s with `PUSH_RELIABILITY_FULL=1`): publishes pipelined from a fake
//! XMPP server all get answers, only `wait` errors (never cancel, auth or
//! modify, which make an XMPP server disable push), no registration is
//! deleted, delivery resumes by itself, RSS stays bounded.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support::apple::{Apple, KEY_ID, TEAM_ID, TOPIC};
use crate::support::fcm_mock::Google;
use crate::support::h2_mock;
use crate::support::h2_mock::{MockOptions, MockServer, Reply};
use crate::support::harness::*;
use crate::support::reliability::proxy::{Fault, FaultProxy};
use crate::support::reliability::{full, mib, ms, proc_kib};
use futures_lite::FutureExt;
use push_appserver::clock::ManualClock;
use push_appserver::config::ConfigContext;
use push_appserver::providers::apns::{ApnsProvider, ApnsSettings};
use push_appserver::providers::fcm::retry::RetryPolicy;
use push_appserver::providers::fcm::{FcmProvider, FcmSettings};
use push_appserver::providers::{FailureKind, Outcome, Priority, Push, Summary};

/// One state of the providers.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Phase {
    Up,
    Refuse,
    TcpHang,
    Stall,
    Unavailable,
    RetryAfter(u32),
}

const OUTAGE: [Phase; 5] = [
    Phase::Refuse,
    Phase::TcpHang,
    Phase::Stall,
    Phase::Unavailable,
    Phase::RetryAfter(1),
];

fn apns_reply(p: Phase) -> Reply {
    let body = r#"{"reason":"ServiceUnavailable"}"#;
    match p {
        Phase::Stall => Reply::Stall,
        Phase::Unavailable => Reply::status(503, body),
        Phase::RetryAfter(s) => Reply::WithHeaders {
            status: 503,
            headers: vec![("retry-after", s.to_string())],
            body: body.into(),
        },
        _ => Reply::ok(),
    }
}

fn fcm_reply(p: Phase) -> Reply {
    let body = r#"{"error":{"code":503,"message":"down","status":"UNAVAILABLE","details":[]}}"#;
    match p {
        Phase::Stall => Reply::Stall,
        Phase::Unavailable => Reply::status(503, body),
        Phase::RetryAfter(s) => Reply::WithHeaders {
            status: 503,
            headers: vec![("retry-after", s.to_string())],
            body: body.into(),
        },
        _ => Reply::status(200, r#"{"name":"projects/demo-project/messages/1"}"#),
    }
}

/// Both mock providers, each behind a fault proxy, switched together.
struct Outage {
    phase: Arc<Mutex<Phase>>,
    apple: Apple,
    apns_proxy: FaultProxy,
    google: Google,
    _fcm: MockServer,
    fcm_proxy: FaultProxy,
}

impl Outage {
    async fn start() -> Outage {
        let phase = Arc::new(Mutex::new(Phase::Up));
        let p = phase.clone();
        let apple = Apple::token(
            MockOptions::default(),
            Arc::new(move |_| apns_reply(*p.lock().unwrap())),
        )
        .await;
        let google = Google::start(Duration::ZERO).await;
        let p = phase.clone();
        let fcm = h2_mock::start(
            &google.ca,
            MockOptions::default(),
            Arc::new(move |_| fcm_reply(*p.lock().unwrap())),
        )
        .await;
        Outage {
            phase,
            apns_proxy: FaultProxy::start(apple.server.addr),
            apple,
            fcm_proxy: FaultProxy::start(fcm.addr),
            google,
            _fcm: fcm,
        }
    }

    fn set(&self, p: Phase) {
        *self.phase.lock().unwrap() = p;
        let fault = match p {
            Phase::Refuse => Fault::Refuse,
            Phase::TcpHang => Fault::Hang,
            _ => Fault::None,
        };
        self.apns_proxy.set(fault);
        self.fcm_proxy.set(fault);
    }

    /// `[app.apns]` keys (without `provider`), endpoint at the proxy.
    fn apns_keys(&self) -> String {
        format!(
            "topic = \"{TOPIC}\"\nendpoint = \"{}\"\ncapath = {:?}\nauth_key = {:?}\n\
             key_id = \"{KEY_ID}\"\nteam_id = \"{TEAM_ID}\"\n",
            self.apns_proxy.url(),
            self.apple.pki.ca_pem.display().to_string(),
            self.apple.files.0.join("AuthKey.p8").display().to_string(),
        )
    }

    /// `[app.fcm]` keys (without `provider`), endpoint at the proxy.
    fn fcm_keys(&self) -> String {
        self.google
            .config()
            .replace(&self.google.fcm.url, &self.fcm_proxy.url())
    }
}

fn run<F: Future>(f: F) -> F::Output {
    smol::block_on(f.or(async {
        async_io::Timer::after(Duration::from_secs(90)).await;
        panic!("test timed out")
    }))
}

fn push(ty: &str, i: usize) -> Push {
    Push {
        component: "push.example.org".into(),
        push_type: ty.into(),
        node: format!("node-{i}"),
        token: format!("{i:064x}"),
        priority: Priority::High,
        summary: Summary::default(),
        encrypted: None,
        flavour: push_appserver::providers::Flavour::Standard,
    }
}

/// What a batch of pushes came to: outcome name -> count.
type Outcomes = HashMap<String, u64>;

fn name(o: &Outcome) -> String {
    match o {
        Outcome::Delivered => "delivered".into(),
        Outcome::DeadToken { .. } => "dead-token".into(),
        Outcome::Failed(f) if f.kind == FailureKind::Timeout => "failed/timeout".into(),
        Outcome::Failed(_) => "failed/unavailable".into(),
    }
}

async fn batch(apns: &Arc<ApnsProvider>, fcm: &Arc<FcmProvider>, n: usize) -> Outcomes {
    let mut tasks = Vec::new();
    for i in 0..n {
        let (a, f) = (apns.clone(), fcm.clone());
        tasks.push(smol::spawn(async move { a.send(&push("apns", i)).await }));
        tasks.push(smol::spawn(async move { f.send(&push("fcm", i)).await }));
    }
    let mut out = Outcomes::new();
    for t in tasks {
        *out.entry(name(&t.await)).or_default() += 1;
    }
    out
}

#[test]
fn provider_outage_in_simulated_time_fails_temporarily_and_recovers() {
    run(async {
        let outage = Outage::start().await;
        let clock = Arc::new(ManualClock::new());
        let dir = TempDir::new("outage-sim");
        let ctx = ConfigContext::for_file(&dir.0.join("appserver.toml"));
        let mut s = ApnsSettings::from_table(
            "app.apns",
            toml::from_str(&outage.apns_keys()).unwrap(),
            &ctx,
        )
        .unwrap();
        s.tuning.backoff = Duration::from_millis(10);
        s.tuning.max_backoff = Duration::from_millis(40);
        s.tuning.request_timeout = Duration::from_millis(300);
        let apns = Arc::new(ApnsProvider::with_clock(&s, clock.clone()).unwrap());
        let mut f =
            FcmSettings::from_table("app.fcm", toml::from_str(&outage.fcm_keys()).unwrap(), &ctx)
                .unwrap();
        f.retry = RetryPolicy {
            attempts: 3,
            base_delay: Duration::from_millis(10),
            max_delay: Duration::from_secs(2),
            request_timeout: Duration::from_millis(300),
            budget: Duration::from_secs(3),
        };
        let fcm = Arc::new(FcmProvider::with_clock(&f, clock.clone()).unwrap());

        let up = batch(&apns, &fcm, 5).await;
        assert_eq!(up.get("delivered"), Some(&10), "{up:?}");

        // (phase, simulated length, step): 10 minutes in steps, then a
        // 50-minute jump past the JWT's and OAuth token's lifetimes.
        let plan = [
            (Phase::Refuse, 120, 10),
            (Phase::TcpHang, 120, 30),
            (Phase::Stall, 120, 30),
            (Phase::Unavailable, 120, 10),
            (Phase::RetryAfter(120), 60, 10),
            (Phase::RetryAfter(1), 60, 30),
            (Phase::Unavailable, 3000, 3000),
        ];
        let real = Instant::now();
        let (mut simulated, mut total) = (0u64, Outcomes::new());
        for (phase, length, step) in plan {
            outage.set(phase);
            let mut seen = Outcomes::new();
            for _ in 0..length / step {
                clock.advance(Duration::from_secs(step));
                simulated += step;
                for (k, v) in batch(&apns, &fcm, 5).await {
                    *seen.entry(k).or_default() += v;
                }
            }
            eprintln!("[outage] {phase:?} for {length} s simulated: {seen:?}");
            for (k, v) in seen {
                *total.entry(k).or_default() += v;
            }
        }
        let outage_real = real.elapsed();
        assert!(
            total
                .keys()
                .all(|k| k == "failed/timeout" || k == "failed/unavailable"),
            "during the outage every push must fail temporarily: {total:?}"
        );

        // Recovery: no restart, no intervention.
        outage.set(Phase::Up);
        let recovered = Instant::now();
        let mut first = None;
        while recovered.elapsed() < Duration::from_secs(30) {
            if batch(&apns, &fcm, 1).await.get("delivered") == Some(&2) {
                first = Some(recovered.elapsed());
                break;
            }
        }
        let first = first.expect("delivery resumed within 30 s of recovery");
        let after = batch(&apns, &fcm, 20).await;
        assert_eq!(after.get("delivered"), Some(&40), "{after:?}");
        assert!(outage.apple.jwt_count() >= 2, "a new JWT during the outage");
        for h in [apns.health(), fcm.health()] {
            eprintln!("[outage] health: {h}");
        }
        eprintln!(
            "[outage] FIGURES simulated: {simulated} s simulated in {:.1} s real; outcomes {total:?}; \
             first delivery {} after recovery; connections accepted by the proxies: apns {} fcm {}",
            outage_real.as_secs_f64(),
            ms(first),
            outage.apns_proxy.accepted(),
            outage.fcm_proxy.accepted(),
        );
    });
}

// ---- through the binary ---------------------------------------------------

const DEVICES: usize = 10;
const WINDOW: usize = 64;

#[test]
fn provider_outage_through_the_binary_answers_wait_only_and_recovers() {
    let secs = if full() { 60 } else { 10 };
    let outage = smol::block_on(Outage::start());
    let dir = TempDir::new("outage-bin");
    let x = FakeXmpp::new();
    let cfg = format!(
        "data_dir = \"{}\"\nrate_limit = 0\nlog_level = \"info\"\n[limits]\npush_timeout_secs = 2\n\
         [http]\nlisten = \"off\"\n[[component]]\njid = \"push.example.org\"\n\
         server = \"127.0.0.1:{}\"\nsecret = \"{SECRET}\"\ntypes = [\"apns\", \"fcm\"]\n\
         [app.apns]\nprovider = \"apns\"\n{}[app.fcm]\nprovider = \"fcm\"\n{}",
        dir.0.join("data").display(),
        x.port,
        outage.apns_keys(),
        outage.fcm_keys()
    );
    let app = AppServer::start(&dir.0, &cfg, 0);
    let pid = app.child.id();
    let mut c = x.accept(Duration::from_secs(10));
    let mut regs = Vec::new();
    for i in 0..DEVICES {
        regs.push(register(
            &mut c,
            "apns",
            &format!("a{i}"),
            &format!("{i:064x}"),
        ));
        regs.push(register(
            &mut c,
            "fcm",
            &format!("f{i}"),
            &format!("fcm-token-{i}"),
        ));
    }
    // Every device delivers before the outage.
    for (i, r) in regs.iter().enumerate() {
        let reply = c.iq(&publish_iq(&format!("pre{i}"), &r.node, &r.secret, None));
        assert_eq!(outcome(&reply).0, "result", "{reply:?}");
    }
    let rss_before = proc_kib(pid, "VmRSS").unwrap();

    // Pipelined publishes while the providers go through the outage.
    let mut answers: HashMap<u64, u32> = HashMap::new();
    let mut kinds: HashMap<String, u64> = HashMap::new();
    let (mut next, mut outstanding) = (0u64, 0usize);
    let started = Instant::now();
    let phase_len = Duration::from_secs(secs) / OUTAGE.len() as u32;
    let mut current = Phase::Up;
    let mut max_rss = rss_before;
    // Outage, then up to 10 s for the last answers (push_timeout_secs = 2).
    while started.elapsed() < Duration::from_secs(secs + 10) {
        let at = started.elapsed();
        let phase = OUTAGE
            .get((at.as_millis() / phase_len.as_millis()) as usize)
            .copied()
            .unwrap_or(Phase::Up);
        if phase != current {
            outage.set(phase);
            current = phase;
        }
        if phase == Phase::Up && outstanding == 0 {
            break;
        }
        while phase != Phase::Up && outstanding < WINDOW {
            let r = &regs[next as usize % regs.len()];
            c.send(&publish_iq(&format!("o{next}"), &r.node, &r.secret, None));
            next += 1;
            outstanding += 1;
        }
        if let Some(el) = c.recv(Duration::from_millis(20)) {
            let id = el.get_attr("id").and_then(|i| i.strip_prefix('o'));
            let id: u64 = id.and_then(|i| i.parse().ok()).expect("a publish's id");
            *answers.entry(id).or_default() += 1;
            outstanding = outstanding.saturating_sub(1);
            let (ty, cond) = outcome(&el);
            *kinds.entry(format!("{ty}/{cond}")).or_default() += 1;
        }
        max_rss = max_rss.max(proc_kib(pid, "VmRSS").unwrap_or(0));
    }
    let outage_end = Instant::now();
    outage.set(Phase::Up);

    // Delivery resumes by itself, for every registration (none deleted).
    let mut first = None;
    while first.is_none() && outage_end.elapsed() < Duration::from_secs(30) {
        let r = &regs[0];
        let reply = c.iq(&publish_iq("probe", &r.node, &r.secret, None));
        if outcome(&reply).0 == "result" {
            first = Some(outage_end.elapsed());
        } else {
            eprintln!(
                "[outage] probe at {}: {:?}",
                ms(outage_end.elapsed()),
                outcome(&reply)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    let first = first.expect("delivery resumed within 30 s");
    if first > Duration::from_secs(1) {
        let log = app.stderr();
        let lines: Vec<&str> = log.lines().collect();
        eprintln!("{}", lines[lines.len().saturating_sub(40)..].join("\n"));
    }
    for (i, r) in regs.iter().enumerate() {
        let reply = c.iq(&publish_iq(&format!("post{i}"), &r.node, &r.secret, None));
        assert_eq!(
            outcome(&reply).0,
            "result",
            "device {i} after recovery: {reply:?}"
        );
    }
    let rss_after = proc_kib(pid, "VmRSS").unwrap();
    let peak = proc_kib(pid, "VmHWM").unwrap_or(0);
    let dup = answers.values().filter(|n| **n > 1).count();
    eprintln!(
        "[outage] FIGURES binary: {secs} s outage; publishes sent={next} answered={} \
         duplicates={dup} outcomes={kinds:?}; delivery resumed {} after recovery; \
         RSS before={} max sampled={} peak={} after={}; connections accepted: apns {} fcm {}",
        answers.len(),
        ms(first),
        mib(rss_before),
        mib(max_rss),
        mib(peak),
        mib(rss_after),
        outage.apns_proxy.accepted(),
        outage.fcm_proxy.accepted(),
    );
    assert_eq!(answers.len() as u64, next, "every publish answered");
    assert_eq!(dup, 0, "no publish answered twice");
    for k in kinds.keys() {
        assert!(
            k.starts_with("wait/") || k == "result/",
            "an error that disables push: {k} ({kinds:?})"
        );
    }
    assert!(kinds.keys().any(|k| k.starts_with("wait/")), "{kinds:?}");
    assert!(peak < 64 * 1024, "RSS peak {} over 64 MiB", mib(peak));
    assert!(
        rss_after < rss_before + 16 * 1024,
        "RSS after {} vs before {}",
        mib(rss_after),
        mib(rss_before)
    );
}
