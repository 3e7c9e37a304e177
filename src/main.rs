//! The `push-appserver` command line.

use std::path::PathBuf;
use std::process::ExitCode;

use argh::FromArgs;
use push_appserver::config::{Settings, SECRET_ENV};
use push_appserver::registrations::{KeyPolicy, Registrations};

/// musl's malloc costs about 45% more CPU per push than glibc's under this
/// server's many small allocations, so the static (musl) builds use
/// mimalloc. Its arena eager commit is off at build time
/// (.cargo/config.toml), which keeps idle RSS at musl's level.
#[cfg(target_env = "musl")]
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// XEP-0357 push app server for XMPP: answers pushes from Prosody, ejabberd
/// and others as an external component (XEP-0114) and sends them to Apple
/// APNS and Google FCM.
#[derive(FromArgs)]
struct Cli {
    /// print the version and exit
    #[argh(switch)]
    version: bool,
    #[argh(subcommand)]
    command: Option<Command>,
}

#[derive(FromArgs)]
#[argh(subcommand)]
enum Command {
    Run(Run),
    CheckConfig(CheckConfig),
    Doctor(Doctor),
    ImportProsody(ImportProsody),
}

/// Prove the configuration against the real world: the HTTP listeners,
/// each component's handshake with the XMPP server, and each app's
/// credentials with APNS or FCM (without reaching a device). One line per
/// check; exit 0 only when none failed.
#[derive(FromArgs)]
#[argh(subcommand, name = "doctor")]
struct Doctor {
    /// configuration file (TOML; default /etc/push-appserver/push-appserver.toml)
    #[argh(option)]
    config: Option<PathBuf>,
    /// also send one visible test push to this device token (with --app)
    #[argh(option)]
    send: Option<String>,
    /// the app profile (push type) the --send push goes through
    #[argh(option)]
    app: Option<String>,
}

/// Run the server (without --config: /etc/push-appserver/push-appserver.toml
/// if it exists, else embedded defaults).
#[derive(FromArgs)]
#[argh(subcommand, name = "run")]
struct Run {
    /// configuration file (TOML)
    #[argh(option)]
    config: Option<PathBuf>,
    /// accept the server key on disk (create one if missing) even though the
    /// store was used with another key: EVERY EXISTING PUSH SECRET BECOMES
    /// INVALID and devices must register again
    #[argh(switch)]
    reset_secrets: bool,
}

/// Validate a configuration file, report every error and what may still be
/// wrong (placeholder secrets, log-only apps, the APNS sandbox, credential
/// files the service's user cannot read), and print the effective settings
/// (secrets masked).
#[derive(FromArgs)]
#[argh(subcommand, name = "check-config")]
struct CheckConfig {
    /// configuration file (TOML; default /etc/push-appserver/push-appserver.toml)
    #[argh(option)]
    config: Option<PathBuf>,
    /// the user the service runs as, whose access to the credential files
    /// is checked (default as root: push-appserver, if that user exists)
    #[argh(option)]
    user: Option<String>,
}

/// Import mod_push_appserver's registrations from Prosody's file storage
/// (stop push-appserver first; running it twice changes nothing).
#[derive(FromArgs)]
#[argh(subcommand, name = "import-prosody")]
struct ImportProsody {
    /// configuration file (TOML) of this server (default
    /// /etc/push-appserver/push-appserver.toml)
    #[argh(option)]
    config: Option<PathBuf>,
    /// prosody's data directory (e.g. /var/lib/prosody)
    #[argh(option)]
    from: PathBuf,
    /// the component host mod_push_appserver ran on (a [[component]] jid here)
    #[argh(option)]
    component: String,
    /// OLD=NEW: import the module's push type OLD as this component's type NEW (repeatable)
    #[argh(option)]
    map_type: Vec<String>,
}

/// Where the configuration is looked for when no `--config` is given.
const DEFAULT_CONFIG: &str = "/etc/push-appserver/push-appserver.toml";

/// The file `run`, `check-config` and `doctor` read: `--config`, else the
/// packaged file if there is one; `None`: the embedded defaults (with the
/// `PUSH_APPSERVER_*` variables over them, as in a container).
fn config_path(given: Option<PathBuf>) -> Option<PathBuf> {
    given.or_else(|| Some(PathBuf::from(DEFAULT_CONFIG)).filter(|p| p.exists()))
}

/// The settings from `path`, or the embedded defaults; errors are printed.
fn settings_from(path: Option<&std::path::Path>) -> Result<Settings, ExitCode> {
    let loaded = match path {
        Some(p) => Settings::load(p),
        None => Settings::defaults(),
    };
    loaded.map_err(|e| {
        if e.count() > 1 {
            eprintln!("push-appserver: {} errors:\n{e}", e.count());
        } else {
            eprintln!("push-appserver: {e}");
        }
        ExitCode::FAILURE
    })
}

/// How a config source is named in messages.
fn shown(path: Option<&std::path::Path>) -> String {
    path.map_or_else(
        || "the embedded defaults and the environment".to_owned(),
        |p| p.display().to_string(),
    )
}

/// The short options people type, as argh spells them.
fn long_options(args: &[String]) -> Vec<&str> {
    args.iter()
        .map(|a| match a.as_str() {
            "-h" => "--help",
            "-V" => "--version",
            "-c" => "--config",
            other => other,
        })
        .collect()
}

fn import_prosody(c: ImportProsody) -> ExitCode {
    let config = c.config.unwrap_or_else(|| DEFAULT_CONFIG.into());
    let settings = match Settings::load(&config) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("push-appserver: {e}");
            return ExitCode::FAILURE;
        }
    };
    push_appserver::logging::init(settings.log_level.min(log::LevelFilter::Warn));
    let opts = push_appserver::import::Options {
        from: c.from,
        component: c.component,
        map_type: c.map_type,
    };
    use push_appserver::import::ownership::{self, Ownership};
    let owner = ownership::check(&settings.data_dir, ownership::euid());
    if let Ownership::Refuse { dir, uid } = &owner {
        eprintln!(
            "push-appserver: {} belongs to user {uid}, not to you: the server could not read \
             what this import writes there. Run it as that user (e.g. sudo -u push-appserver \
             push-appserver import-prosody ...) or as root",
            dir.display()
        );
        return ExitCode::FAILURE;
    }
    let result = push_appserver::import::run(&settings, &opts);
    if let Ownership::GiveTo { uid, gid } = owner {
        match ownership::give(&settings.data_dir, uid, gid) {
            Ok(0) => {}
            Ok(n) => println!(
                "gave {n} file(s) the import created in {} to its owner (user {uid}, group {gid})",
                settings.data_dir.display()
            ),
            Err(e) => {
                eprintln!(
                    "push-appserver: could not give the files in {} to user {uid}: {e}; \
                     run: chown -R {uid}:{gid} {}",
                    settings.data_dir.display(),
                    settings.data_dir.display()
                );
                return ExitCode::FAILURE;
            }
        }
    }
    match result {
        Ok(report) => {
            let dir = push_appserver::import::store_dir(&opts.from, &opts.component);
            print!(
                "{}",
                push_appserver::import::render(&report, &opts, &dir, settings.rate_limit)
            );
            // Success means the store holds the registrations now: written
            // by this run or by an earlier one. A run that found nothing to
            // import (or could import none) is a failure a script must see.
            if report.imported + report.already == 0 {
                eprintln!(
                    "push-appserver: nothing was imported from {} ({} file(s) found)",
                    dir.display(),
                    report.files
                );
                return ExitCode::FAILURE;
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("push-appserver: import failed: {e}");
            ExitCode::FAILURE
        }
    }
}

fn check_config(c: CheckConfig) -> ExitCode {
    use push_appserver::config::warnings::{self, User};
    let config = config_path(c.config);
    let settings = match settings_from(config.as_deref()) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let user = match c.user.as_deref() {
        Some(name) => match User::lookup(name) {
            Some(u) => Some(u),
            None => {
                eprintln!("push-appserver: no user {name:?} in /etc/passwd");
                return ExitCode::FAILURE;
            }
        },
        None if push_appserver::import::ownership::euid() == 0 => User::lookup("push-appserver"),
        None => None,
    };
    let mut all = warnings::warnings(&settings);
    let unreadable = user
        .as_ref()
        .map(|u| warnings::unreadable(&settings, u))
        .unwrap_or_default();
    let checked = match &user {
        Some(u) if unreadable.is_empty() => {
            format!(", credential files readable by user {}", u.name)
        }
        Some(u) => format!(
            ", but {} credential file(s) NOT readable by user {}",
            unreadable.len(),
            u.name
        ),
        None => String::new(),
    };
    all.extend(unreadable);
    print!("{settings}");
    for w in &all {
        eprintln!("warning: {w}");
    }
    println!(
        "\n# {}: configuration is valid{checked}; {} warning(s)",
        shown(config.as_deref()),
        all.len()
    );
    ExitCode::SUCCESS
}

fn doctor(d: Doctor) -> ExitCode {
    use push_appserver::doctor::{self, Level, SendTo};
    let send = match (d.send, d.app) {
        (Some(token), Some(app)) => Some(SendTo { app, token }),
        (None, None) => None,
        _ => {
            eprintln!("push-appserver: --send and --app go together");
            return ExitCode::from(2);
        }
    };
    let config = config_path(d.config);
    let settings = match settings_from(config.as_deref()) {
        Ok(s) => s,
        Err(code) => return code,
    };
    // The providers' own log lines would repeat the report's.
    push_appserver::logging::init(log::LevelFilter::Off);
    println!("ok    config: {} is valid", shown(config.as_deref()));
    let checks = doctor::run(&settings, send.as_ref(), |c| println!("{c}"));
    let failed = checks.iter().filter(|c| c.level == Level::Fail).count();
    if failed == 0 {
        println!("# all checks passed");
        ExitCode::SUCCESS
    } else {
        println!("# {failed} check(s) failed");
        ExitCode::FAILURE
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let name = ["push-appserver"];
    let rest = long_options(args.get(1..).unwrap_or_default());
    // Help is asked for (exit 0); a usage error exits 2, as the man page says.
    let cli = match Cli::from_args(&name, &rest) {
        Ok(cli) => cli,
        Err(early) => {
            return match early.status {
                Ok(()) => {
                    print!("{}", early.output);
                    ExitCode::SUCCESS
                }
                Err(()) => {
                    eprint!("{}", early.output);
                    eprintln!("see `push-appserver --help`");
                    ExitCode::from(2)
                }
            };
        }
    };
    if cli.version {
        println!("push-appserver {}", env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
    match cli.command {
        None => {
            let usage = Cli::from_args(&name, &["--help"])
                .err()
                .map(|e| e.output)
                .unwrap_or_default();
            eprintln!("push-appserver: a command is required\n\n{usage}");
            ExitCode::from(2)
        }
        Some(Command::ImportProsody(c)) => import_prosody(c),
        Some(Command::Doctor(d)) => doctor(d),
        Some(Command::CheckConfig(c)) => check_config(c),
        Some(Command::Run(r)) => {
            // Without --config: the packaged file if there is one, else the
            // embedded defaults.
            let config = config_path(r.config.clone());
            let settings = match settings_from(config.as_deref()) {
                Ok(s) => s,
                Err(code) => return code,
            };
            push_appserver::logging::init_with(settings.log_level, settings.log_format);
            warn_about(&settings);
            if r.reset_secrets {
                // Records the key on disk as the store's key; the start
                // below then opens the store as usual.
                // Flushed before it is closed, so the open below has
                // nothing to replay.
                let opened = Registrations::open_with(
                    &settings.data_dir,
                    settings.store.cache_for(&settings.data_dir),
                    KeyPolicy::Reset,
                )
                .and_then(|regs| regs.sync());
                if let Err(e) = opened {
                    log::error!("cannot start: {e}");
                    return ExitCode::FAILURE;
                }
            }
            let running = match push_appserver::server::start(settings) {
                Ok(r) => r,
                Err(e) => {
                    log::error!("cannot start: {e}");
                    return ExitCode::FAILURE;
                }
            };
            let services = std::sync::Arc::clone(&running.services);
            let grace =
                std::time::Duration::from_secs(services.settings.limits.shutdown_grace_secs);
            // Not smol::block_on: that would make this mostly idle thread
            // compete for the reactor with the executor thread, and an I/O
            // event it took was handed over with a futex wake (measured
            // through Prosody: 1.3 futex calls per push, 0.5 parked).
            // Parked here, the executor thread polls I/O itself and runs
            // what it wakes on the spot.
            let mut store_failed = false;
            futures_lite::future::block_on(async {
                use futures_lite::{FutureExt, StreamExt};
                let mut signals = match async_signal::Signals::new([
                    async_signal::Signal::Term,
                    async_signal::Signal::Int,
                    async_signal::Signal::Hup,
                ]) {
                    Ok(s) => s,
                    Err(e) => {
                        log::warn!("cannot watch for SIGTERM/SIGINT: {e}");
                        let failed = async {
                            log::error!(
                                "cannot start: {}",
                                services.registrations.open_failure().await
                            );
                            store_failed = true;
                        };
                        running.wait().or(failed).await;
                        return;
                    }
                };
                // SIGHUP reloads the config file and waits on; the others
                // stop, and so does a store that fails to open (it opens
                // after the listeners, see `registrations::opening`).
                let sig = loop {
                    let next = async { Ok(signals.next().await) }
                        .or(async { Err(services.registrations.open_failure().await) });
                    match next.await {
                        Ok(Some(Ok(async_signal::Signal::Hup))) => match &config {
                            Some(path) => {
                                let _ = services.reload(path);
                            }
                            None => log::warn!("SIGHUP: no --config file to reload"),
                        },
                        Ok(Some(Ok(sig))) => break Some(sig),
                        Ok(Some(Err(_)) | None) => break None,
                        Err(e) => {
                            log::error!("cannot start: {e}");
                            store_failed = true;
                            break None;
                        }
                    }
                };
                if let Some(sig) = sig {
                    let name = match sig {
                        async_signal::Signal::Int => "SIGINT",
                        _ => "SIGTERM",
                    };
                    log::info!(
                        "{name}: shutting down (up to {}s for pushes in flight)",
                        grace.as_secs()
                    );
                }
                // A second SIGTERM/SIGINT skips the wait for work in flight.
                running
                    .shutdown(grace)
                    .or(async {
                        while let Some(s) = signals.next().await {
                            if !matches!(s, Ok(async_signal::Signal::Hup)) {
                                break;
                            }
                        }
                        log::warn!("second signal: exiting without waiting");
                    })
                    .await;
            });
            if store_failed {
                return ExitCode::FAILURE;
            }
            // Registrations are synced as they are made; this flushes push results too.
            if let Err(e) = services.registrations.sync() {
                log::error!("final store sync failed: {e}");
                return ExitCode::FAILURE;
            }
            ExitCode::SUCCESS
        }
    }
}

fn warn_about(settings: &Settings) {
    if !settings.from_environment.is_empty() {
        log::info!(
            "settings from the environment: {}",
            settings.from_environment.join(", ")
        );
    }
    if settings.from_defaults {
        log::warn!("no --config given: running on embedded defaults");
        if settings
            .components
            .iter()
            .any(|c| c.secret.expose().is_empty())
        {
            log::warn!("{SECRET_ENV} is not set");
        }
    }
    for w in push_appserver::config::warnings::warnings(settings) {
        log::warn!("{w}");
    }
}
