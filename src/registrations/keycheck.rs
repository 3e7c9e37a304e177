//! The server key against the store: every secret a device holds is derived
//! from `data_dir/server.key`, so a lost or swapped key silently invalidates
//! them all (every push then answers `auth/forbidden` and the users'
//! servers disable push). The store keeps a check value of the key (an HMAC
//! of a fixed label, never the key), and the start refuses a key that does
//! not match it unless the operator asks for `--reset-secrets`.

use std::path::Path;

use fjall::{KeyspaceCreateOptions, PersistMode};

use super::secret::ServerKey;
use super::store::Store;
use super::StoreError;

/// The `meta` entry holding the key's check value.
const CHECK_KEY: &str = "server_key_check";

/// How the start treats a server key that does not match the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KeyPolicy {
    /// Refuse to start (the default).
    #[default]
    Check,
    /// Accept the key on disk (create one if missing) and record it: every
    /// secret issued under another key stops verifying (`--reset-secrets`).
    Reset,
}

/// The key file and the store, as found at start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Found {
    /// `None`: no key file; else whether it matches the stored check
    /// value (`None`: the store has no check value).
    key: Option<Option<bool>>,
    /// The store has a check value.
    has_check: bool,
    /// The store holds registrations (or any other data).
    has_data: bool,
}

/// What the start does with the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    /// The key matches: use it.
    Use,
    /// A key and a store without a check value (a fresh store, or one from
    /// before check values): record the key's.
    Adopt,
    /// A fresh data dir: make the key and record it.
    Create,
    /// Refused: the key file is gone.
    Missing,
    /// Refused: the key file is not the one the store was used with.
    Mismatch,
    /// `--reset-secrets` with a key on disk that differs: record it.
    ResetUse,
    /// `--reset-secrets` with no key on disk: make one and record it.
    ResetCreate,
}

/// Pure: what to do with what was found.
fn decide(found: Found, policy: KeyPolicy) -> Action {
    let reset = policy == KeyPolicy::Reset;
    match found.key {
        Some(Some(true)) => Action::Use,
        Some(None) => Action::Adopt,
        Some(Some(false)) if reset => Action::ResetUse,
        Some(Some(false)) => Action::Mismatch,
        None if !found.has_check && !found.has_data => Action::Create,
        None if reset => Action::ResetCreate,
        None => Action::Missing,
    }
}

/// Loads (or creates) the server key in `dir` and checks it against the
/// store, as `policy` says.
pub(super) fn load_key(dir: &Path, st: &Store, policy: KeyPolicy) -> Result<ServerKey, StoreError> {
    let path = dir.join("server.key");
    let meta = st.db.keyspace("meta", KeyspaceCreateOptions::default)?;
    let stored = meta.get(CHECK_KEY)?;
    let key = ServerKey::load(&path).map_err(StoreError::Key)?;
    let found = Found {
        key: key.as_ref().map(|k| {
            stored
                .as_ref()
                .map(|s| s.as_ref() == k.check_value().as_bytes())
        }),
        has_check: stored.is_some(),
        has_data: has_data(st)?,
    };
    let action = decide(found, policy);
    if policy == KeyPolicy::Reset && !matches!(action, Action::ResetUse | Action::ResetCreate) {
        log::warn!(
            "--reset-secrets: {} already fits the store; no secret was invalidated",
            path.display()
        );
    }
    let key = match (action, key) {
        (Action::Missing, _) => return Err(StoreError::KeyMissing(path)),
        (Action::Mismatch, _) => return Err(StoreError::KeyMismatch(path)),
        (Action::Use, Some(k)) => return Ok(k),
        (Action::Adopt | Action::ResetUse, Some(k)) => k,
        _ => ServerKey::create(&path).map_err(StoreError::Key)?,
    };
    match action {
        Action::Adopt if found.has_data => log::info!(
            "recorded the check value of {} (a store from before key checks)",
            path.display()
        ),
        Action::Create => log::info!("created a new server key {}", path.display()),
        Action::ResetUse | Action::ResetCreate => log::warn!(
            "--reset-secrets: {} the server key {}; EVERY EXISTING PUSH SECRET IS NOW \
             INVALID: devices must register again before their pushes are accepted",
            if action == Action::ResetCreate {
                "created"
            } else {
                "accepted"
            },
            path.display()
        ),
        _ => {}
    }
    meta.insert(CHECK_KEY, key.check_value())?;
    st.db.persist(PersistMode::SyncAll)?;
    Ok(key)
}

/// Whether any keyspace but `meta` holds an entry.
fn has_data(st: &Store) -> Result<bool, StoreError> {
    for name in st.db.list_keyspace_names() {
        if &*name == "meta" {
            continue;
        }
        let ks = st.db.keyspace(&name, KeyspaceCreateOptions::default)?;
        if ks.first_key_value().is_some() {
            return Ok(true);
        }
    }
    Ok(false)
}

/// What went wrong with the key, and how to recover, for the error text.
pub(super) fn explain(
    f: &mut std::fmt::Formatter<'_>,
    path: &Path,
    missing: bool,
) -> std::fmt::Result {
    let what = if missing {
        format!("the server key {} is missing", path.display())
    } else {
        format!(
            "the server key {} is not the key this store was used with",
            path.display()
        )
    };
    write!(
        f,
        "{what}, but the store next to it was used with the original key: the push \
         secrets the devices hold were derived from it, and starting with another key would make every push \
         answer auth/forbidden and the users' servers disable push. Refusing to start. \
         To recover: restore the original server.key from a backup (same directory, mode \
         0600), or, to give up the old secrets, start once with \
         `push-appserver run --reset-secrets` (every device must then register again)"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// HTTP registrations that may change a node's token, as the module let them.
    const OPEN: crate::registrations::TokenChange = crate::registrations::TokenChange {
        secret: None,
        open: true,
    };

    fn found(key: Option<Option<bool>>, has_check: bool, has_data: bool) -> Found {
        Found {
            key,
            has_check,
            has_data,
        }
    }

    #[test]
    fn the_decision_table() {
        use Action::*;
        use KeyPolicy::*;
        let rows = [
            // key file, check value, data => normal start, --reset-secrets
            (found(Some(Some(true)), true, true), Use, Use),
            (found(Some(None), false, false), Adopt, Adopt),
            (found(Some(None), false, true), Adopt, Adopt),
            (found(Some(Some(false)), true, false), Mismatch, ResetUse),
            (found(Some(Some(false)), true, true), Mismatch, ResetUse),
            (found(None, false, false), Create, Create),
            (found(None, true, false), Missing, ResetCreate),
            (found(None, false, true), Missing, ResetCreate),
            (found(None, true, true), Missing, ResetCreate),
        ];
        for (f, normal, reset) in rows {
            assert_eq!(decide(f, Check), normal, "{f:?}");
            assert_eq!(decide(f, Reset), reset, "{f:?} with --reset-secrets");
        }
    }

    #[test]
    fn a_store_from_before_check_values_adopts_its_key_then_guards_it() {
        use crate::registrations::Registrations;
        use std::time::{Duration, UNIX_EPOCH};
        let dir = std::env::temp_dir().join(format!("pa-keycheck-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let at = UNIX_EPOCH + Duration::from_secs(1);
        let secret = {
            let s = Registrations::open(&dir, 1 << 20).unwrap();
            let r = s.register("push.x", "fcm", "n1", "tok", OPEN, at).unwrap();
            // As a store written before check values existed.
            let st = s.store().unwrap();
            let meta = st
                .db
                .keyspace("meta", KeyspaceCreateOptions::default)
                .unwrap();
            meta.remove(CHECK_KEY).unwrap();
            st.db.persist(PersistMode::SyncAll).unwrap();
            r.secret
        };
        let s = Registrations::open(&dir, 1 << 20).unwrap();
        let r = s.lookup("push.x", "n1").unwrap().unwrap();
        assert!(s.verify_secret(&r, &secret), "the key on disk was adopted");
        drop(s);
        std::fs::write(dir.join("server.key"), [3u8; 32]).unwrap();
        assert!(matches!(
            Registrations::open(&dir, 1 << 20),
            Err(StoreError::KeyMismatch(_))
        ));
        std::fs::remove_file(dir.join("server.key")).unwrap();
        let e = Registrations::open(&dir, 1 << 20).unwrap_err();
        assert!(matches!(e, StoreError::KeyMissing(_)));
        assert!(e.to_string().contains("--reset-secrets"), "{e}");
        assert!(!dir.join("server.key").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
