//! `push-appserver import-prosody`: brings mod_push_appserver's
//! registrations over from Prosody's file storage, keeping node, secret,
//! token, type and timestamps, so devices keep working without registering
//! again. The files are parsed as data ([`lua`]), never run; each one maps
//! to an item or a reason to skip it ([`entry`]); the store writes them in
//! synced batches and never overwrites a node it has
//! (`Registrations::import`), so a second run changes nothing.

pub mod entry;
pub mod lua;
pub mod ownership;

use std::collections::BTreeMap;
use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::clock::unix_millis;
use crate::config::Settings;
use crate::registrations::{
    CountLimits, ImportItem, ImportOutcome, KeyPolicy, Registrations, StoreError,
};

/// Largest file read; a registration is a few hundred bytes.
pub const MAX_FILE_BYTES: u64 = 64 * 1024;
/// Registrations written per synced batch.
const BATCH: usize = 500;
/// Files from which a progress bar is shown (on a terminal).
const PROGRESS_FROM: usize = 200;
/// Example file names kept per skip reason.
const EXAMPLES: usize = 3;

/// What to import.
#[derive(Debug, Clone)]
pub struct Options {
    /// Prosody's data directory.
    pub from: PathBuf,
    /// The component host the module served.
    pub component: String,
    /// Renames of the module's push types to app profiles (`old=new`).
    pub map_type: Vec<String>,
}

/// Why the import could not run (skips of single files are not errors).
#[derive(Debug)]
pub enum ImportError {
    /// The component is not configured here.
    UnknownComponent(String),
    /// A `--map-type` value is malformed or names no type of the component.
    BadTypeMap(String),
    /// The module's store directory cannot be read.
    Dir(PathBuf, std::io::Error),
    /// The registration store failed.
    Store(StoreError),
}

impl std::fmt::Display for ImportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ImportError::UnknownComponent(c) => write!(
                f,
                "component {c:?} is not in the configuration: add a [[component]] with this jid first"
            ),
            ImportError::BadTypeMap(m) => write!(f, "--map-type {m}"),
            ImportError::Dir(p, e) => write!(
                f,
                "{}: {e} (expected <prosody data dir>/<component, %xx-encoded>/push_appserver)",
                p.display()
            ),
            ImportError::Store(e @ StoreError::Engine(_)) => write!(
                f,
                "{e} (is push-appserver running on this data_dir? stop it for the import)"
            ),
            ImportError::Store(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for ImportError {}

impl From<StoreError> for ImportError {
    fn from(e: StoreError) -> Self {
        ImportError::Store(e)
    }
}

/// Counts of one import.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// `.dat` files found.
    pub files: usize,
    /// Registrations written.
    pub imported: usize,
    /// Found identical from an earlier run: nothing written.
    pub already: usize,
    /// The node exists here with other data: kept as it is.
    pub exists: usize,
    /// Refused by `store.max_registrations`.
    pub limit: usize,
    /// Skipped files by reason, with a few example file names.
    pub skipped: BTreeMap<String, (usize, Vec<String>)>,
    /// Other files in the directory (not `.dat`).
    pub ignored: usize,
}

impl Report {
    /// Files skipped, all reasons together.
    pub fn skipped_total(&self) -> usize {
        self.skipped.values().map(|(n, _)| n).sum()
    }

    fn skip(&mut self, reason: String, file: &str) {
        let (n, examples) = self.skipped.entry(reason).or_default();
        *n += 1;
        if examples.len() < EXAMPLES {
            examples.push(file.to_owned());
        }
    }
}

/// The module's store directory for `component` under Prosody's data dir.
pub fn store_dir(from: &Path, component: &str) -> PathBuf {
    from.join(entry::encode_name(component))
        .join("push_appserver")
}

/// The map from the module's type names to the component's app profiles.
fn type_map(types: &[String], renames: &[String]) -> Result<BTreeMap<String, String>, ImportError> {
    let mut map: BTreeMap<String, String> = types.iter().map(|t| (t.clone(), t.clone())).collect();
    for r in renames {
        let Some((old, new)) = r.split_once('=') else {
            return Err(ImportError::BadTypeMap(format!("{r:?}: expected OLD=NEW")));
        };
        if !types.iter().any(|t| t == new) {
            return Err(ImportError::BadTypeMap(format!(
                "{r:?}: {new:?} is not one of the component's types {types:?}"
            )));
        }
        map.insert(old.to_owned(), new.to_owned());
    }
    Ok(map)
}

/// Reads at most [`MAX_FILE_BYTES`]; `None` if the file is larger.
fn read_bounded(path: &Path) -> std::io::Result<Option<Vec<u8>>> {
    let mut buf = Vec::new();
    std::fs::File::open(path)?
        .take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut buf)?;
    Ok((buf.len() as u64 <= MAX_FILE_BYTES).then_some(buf))
}

/// Runs the import with `settings` (the target's configuration), writing
/// the progress bar (on a terminal) to stderr.
pub fn run(settings: &Settings, opts: &Options) -> Result<Report, ImportError> {
    let component = settings
        .components
        .iter()
        .find(|c| c.jid == opts.component)
        .ok_or_else(|| ImportError::UnknownComponent(opts.component.clone()))?;
    let types = type_map(&component.types, &opts.map_type)?;
    let dir = store_dir(&opts.from, &opts.component);
    let mut names = Vec::new();
    let mut report = Report::default();
    for e in std::fs::read_dir(&dir).map_err(|e| ImportError::Dir(dir.clone(), e))? {
        let e = e.map_err(|e| ImportError::Dir(dir.clone(), e))?;
        let name = e.file_name().to_string_lossy().into_owned();
        if name.ends_with(".dat") && e.file_type().is_ok_and(|t| t.is_file()) {
            names.push(name);
        } else {
            report.ignored += 1;
        }
    }
    names.sort();
    report.files = names.len();
    let regs = Registrations::open_with(
        &settings.data_dir,
        settings.store.cache_for(&settings.data_dir),
        KeyPolicy::Check,
    )?
    .with_limits(CountLimits {
        per_jid: settings.registrations.max_per_jid,
        per_domain: settings.registrations.max_per_domain,
        total: settings.store.max_registrations,
        // An import restores what existed: no rate of new registrations.
        new_per_minute: u32::MAX,
    });
    let now_ms = unix_millis(SystemTime::now());
    let mut progress = Progress::new(names.len());
    let mut batch: Vec<(ImportItem, String)> = Vec::with_capacity(BATCH);
    for (i, name) in names.iter().enumerate() {
        let stem = &name[..name.len() - ".dat".len()];
        match load(&dir.join(name), stem, &types, now_ms) {
            Ok(item) => batch.push((item, name.clone())),
            Err(reason) => report.skip(reason, name),
        }
        if batch.len() >= BATCH || i + 1 == names.len() {
            flush(&regs, &opts.component, &mut batch, &mut report)?;
        }
        progress.update(i + 1);
    }
    progress.finish();
    regs.sync()?;
    Ok(report)
}

fn load(
    path: &Path,
    stem: &str,
    types: &BTreeMap<String, String>,
    now_ms: u64,
) -> Result<ImportItem, String> {
    let node = entry::decode_name(stem).ok_or_else(|| entry::Skip::BadName.to_string())?;
    let bytes = match read_bounded(path) {
        Ok(Some(b)) => b,
        Ok(None) => return Err(format!("file larger than {MAX_FILE_BYTES} bytes")),
        Err(e) => return Err(format!("cannot read: {}", e.kind())),
    };
    entry::to_item(&node, &bytes, types, now_ms).map_err(|s| s.to_string())
}

fn flush(
    regs: &Registrations,
    component: &str,
    batch: &mut Vec<(ImportItem, String)>,
    report: &mut Report,
) -> Result<(), ImportError> {
    if batch.is_empty() {
        return Ok(());
    }
    let items: Vec<ImportItem> = batch.iter().map(|(i, _)| i.clone()).collect();
    let outcomes = regs.import(component, &items)?;
    for (outcome, (_, name)) in outcomes.iter().zip(batch.iter()) {
        match outcome {
            ImportOutcome::Imported => report.imported += 1,
            ImportOutcome::AlreadyImported => report.already += 1,
            ImportOutcome::Exists => {
                report.exists += 1;
                report.skip(
                    "node already registered here with other data (kept as it is)".into(),
                    name,
                );
            }
            ImportOutcome::Limit(kind) => {
                report.limit += 1;
                report.skip(format!("{kind} (store.max_registrations)"), name);
            }
        }
    }
    batch.clear();
    Ok(())
}

/// A one-line progress bar on stderr, only on a terminal and for large
/// imports (logs and pipes stay clean).
struct Progress {
    total: usize,
    shown: bool,
    last: usize,
}

impl Progress {
    fn new(total: usize) -> Self {
        Progress {
            total,
            shown: total >= PROGRESS_FROM && std::io::stderr().is_terminal(),
            last: usize::MAX,
        }
    }

    fn update(&mut self, done: usize) {
        if !self.shown {
            return;
        }
        let percent = done * 100 / self.total.max(1);
        if percent == self.last && done != self.total {
            return;
        }
        self.last = percent;
        let filled = percent * 40 / 100;
        let mut err = std::io::stderr().lock();
        let _ = write!(
            err,
            "\r[{}{}] {done}/{} files",
            "#".repeat(filled),
            ".".repeat(40 - filled),
            self.total
        );
        let _ = err.flush();
    }

    fn finish(&self) {
        if self.shown {
            let _ = writeln!(std::io::stderr());
        }
    }
}

/// The report as printed: counts, skips with reasons and examples, and
/// what `rate_limit` means here.
pub fn render(report: &Report, opts: &Options, dir: &Path, rate_limit: u32) -> String {
    let mut s = String::new();
    let mut line = |l: String| {
        s.push_str(&l);
        s.push('\n');
    };
    line(format!(
        "import from {} into component {}",
        dir.display(),
        opts.component
    ));
    line(format!("  files:            {}", report.files));
    line(format!("  imported:         {}", report.imported));
    line(format!(
        "  already imported: {} (unchanged)",
        report.already
    ));
    line(format!("  skipped:          {}", report.skipped_total()));
    for (reason, (n, examples)) in &report.skipped {
        line(format!("    {n} x {reason}: e.g. {}", examples.join(", ")));
    }
    if report.ignored > 0 {
        line(format!(
            "  ignored:          {} (not .dat files)",
            report.ignored
        ));
    }
    line(String::new());
    let throttle = match rate_limit {
        0 => "rate_limit = 0: pushes are not throttled".to_owned(),
        n => format!(
            "rate_limit = {n}: at least {n} s between two pushes to one device and priority \
             (the first goes out, one more waits to the end of the {n} s, the rest are dropped)"
        ),
    };
    line(format!(
        "note: {throttle}.\n      This is what push_appserver_rate_limit did in the module (its \
         README said \"requests per second\", its code, zthrottle, used seconds; default 5)."
    ));
    line(
        "note: imported secrets are kept only as a keyed hash under this server's server.key; \
         a device that registers again gets a new secret."
            .into(),
    );
    s
}
