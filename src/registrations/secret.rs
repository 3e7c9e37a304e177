//! Push secrets: `hex(HMAC-SHA256(server key, component, node, salt))`.
//!
//! The salt is 256 bits from the OS CSPRNG per registration and is stored;
//! the server key lives in its own file in the data dir (mode 0600), so a
//! copy of the store alone reveals no secret. Verification is constant time.

use std::io::Write;
use std::path::{Path, PathBuf};

use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};

/// The key secrets are derived under.
pub struct ServerKey(hmac::Key);

impl std::fmt::Debug for ServerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServerKey(********)")
    }
}

/// Why the server key could not be loaded or created.
#[derive(Debug)]
pub enum KeyError {
    /// Reading or writing the key file failed.
    Io(PathBuf, std::io::Error),
    /// The key file is not 32 bytes.
    BadLength(PathBuf, usize),
    /// The OS random generator failed.
    Random,
}

impl std::fmt::Display for KeyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyError::Io(p, e) => write!(f, "server key {}: {e}", p.display()),
            KeyError::BadLength(p, n) => {
                write!(f, "server key {} has {n} bytes, expected 32", p.display())
            }
            KeyError::Random => f.write_str("the OS random generator failed"),
        }
    }
}

impl std::error::Error for KeyError {}

/// 32 random bytes from the OS CSPRNG.
pub fn random_bytes() -> Result<[u8; 32], KeyError> {
    let mut b = [0u8; 32];
    SystemRandom::new()
        .fill(&mut b)
        .map_err(|_| KeyError::Random)?;
    Ok(b)
}

impl ServerKey {
    /// Loads `path`; `None` if the file does not exist.
    pub fn load(path: &Path) -> Result<Option<ServerKey>, KeyError> {
        match std::fs::read(path) {
            Ok(bytes) if bytes.len() == 32 => Ok(Some(ServerKey::from_bytes(&bytes))),
            Ok(bytes) => Err(KeyError::BadLength(path.to_path_buf(), bytes.len())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(KeyError::Io(path.to_path_buf(), e)),
        }
    }

    /// Creates `path` with a fresh random key (mode 0600): written to a
    /// temporary file, synced, renamed into place, and the directory
    /// synced, so a crash leaves either no key or the whole key.
    pub fn create(path: &Path) -> Result<ServerKey, KeyError> {
        let key = random_bytes()?;
        let io = |e| KeyError::Io(path.to_path_buf(), e);
        let tmp = path.with_extension("tmp");
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        let mut f = opts.open(&tmp).map_err(io)?;
        f.write_all(&key).map_err(io)?;
        f.sync_all().map_err(io)?;
        drop(f);
        std::fs::rename(&tmp, path).map_err(io)?;
        // The rename is durable only once the directory entry is.
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io)?;
        Ok(ServerKey::from_bytes(&key))
    }

    /// Loads `path`, or creates it (see [`ServerKey::create`]).
    pub fn load_or_create(path: &Path) -> Result<ServerKey, KeyError> {
        match Self::load(path)? {
            Some(k) => Ok(k),
            None => Self::create(path),
        }
    }

    /// A value that identifies the key without revealing it: an HMAC of a
    /// fixed label, stored next to the registrations so a lost or swapped
    /// key file is noticed at start.
    pub fn check_value(&self) -> String {
        hex(hmac::sign(&self.0, b"push-appserver server key check v1").as_ref())
    }

    /// A 256-bit key for another purpose, derived from this one under
    /// `label` (HMAC-SHA-256 of a versioned label): rotating the server
    /// key rotates every derived key with it.
    pub fn derive(&self, label: &str) -> [u8; 32] {
        let mut m = b"push-appserver derived key v1\0".to_vec();
        m.extend_from_slice(label.as_bytes());
        let tag = hmac::sign(&self.0, &m);
        let mut out = [0u8; 32];
        out.copy_from_slice(&tag.as_ref()[..32]);
        out
    }

    /// A key from raw bytes (tests).
    pub fn from_bytes(bytes: &[u8]) -> ServerKey {
        ServerKey(hmac::Key::new(hmac::HMAC_SHA256, bytes))
    }

    fn message(component: &str, node: &str, salt: &str) -> Vec<u8> {
        let mut m = Vec::with_capacity(component.len() + node.len() + salt.len() + 6);
        m.extend_from_slice(b"v1\0");
        for part in [component, node, salt] {
            m.extend_from_slice(part.as_bytes());
            m.push(0);
        }
        m
    }

    /// The secret of a registration, as 64 hex digits.
    pub fn secret(&self, component: &str, node: &str, salt: &str) -> String {
        let tag = hmac::sign(&self.0, &Self::message(component, node, salt));
        hex(tag.as_ref())
    }

    /// Whether `given` is the secret, in constant time.
    pub fn verify(&self, component: &str, node: &str, salt: &str, given: &str) -> bool {
        let Some(tag) = unhex(given.trim()) else {
            return false;
        };
        hmac::verify(&self.0, &Self::message(component, node, salt), &tag).is_ok()
    }
}

impl ServerKey {
    fn imported_message(component: &str, node: &str, secret: &str) -> Vec<u8> {
        let mut m = Vec::with_capacity(component.len() + node.len() + secret.len() + 12);
        m.extend_from_slice(b"imported-v1\0");
        for part in [component, node, secret] {
            m.extend_from_slice(part.as_bytes());
            m.push(0);
        }
        m
    }

    /// Keyed hash of a secret imported from mod_push_appserver (which chose
    /// it and stored it in plain text), as 64 hex digits: stored instead of
    /// the secret, so a copy of the store without the server key reveals
    /// nothing. The secret is high-entropy (the module's HMAC output), so a
    /// keyed hash needs no slow KDF.
    pub fn imported_hash(&self, component: &str, node: &str, secret: &str) -> String {
        hex(hmac::sign(&self.0, &Self::imported_message(component, node, secret)).as_ref())
    }

    /// Whether `given` is the imported secret whose hash is `hash`, in
    /// constant time. Compared exactly, as the module did.
    pub fn verify_imported(&self, component: &str, node: &str, hash: &str, given: &str) -> bool {
        let Some(tag) = unhex(hash) else {
            return false;
        };
        hmac::verify(
            &self.0,
            &Self::imported_message(component, node, given),
            &tag,
        )
        .is_ok()
    }
}

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

/// Decodes hex (either case); `None` if malformed.
pub fn unhex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 {
        return None;
    }
    let digit = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    s.as_bytes()
        .chunks(2)
        .map(|p| Some(digit(p[0])? << 4 | digit(p[1])?))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_verifies_and_depends_on_every_input() {
        let k = ServerKey::from_bytes(&[7; 32]);
        let s = k.secret("push.a", "node1", "00ff");
        assert_eq!(s.len(), 64);
        assert!(k.verify("push.a", "node1", "00ff", &s));
        assert!(k.verify("push.a", "node1", "00ff", &s.to_uppercase()));
        assert!(!k.verify("push.b", "node1", "00ff", &s));
        assert!(!k.verify("push.a", "node2", "00ff", &s));
        assert!(!k.verify("push.a", "node1", "00fe", &s));
        assert!(!k.verify("push.a", "node1", "00ff", "zz"));
        assert_ne!(
            ServerKey::from_bytes(&[8; 32]).secret("push.a", "node1", "00ff"),
            s
        );
    }

    #[test]
    fn imported_secrets_verify_exactly_and_only_under_their_key() {
        let k = ServerKey::from_bytes(&[7; 32]);
        let old = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
        let h = k.imported_hash("push.a", "node/1", old);
        assert_eq!(h.len(), 64);
        assert_ne!(h, old, "the secret itself is never the stored value");
        assert!(k.verify_imported("push.a", "node/1", &h, old));
        assert!(!k.verify_imported("push.a", "node/1", &h, &old.to_uppercase()));
        assert!(!k.verify_imported("push.a", "node/1", &h, &old[1..]));
        assert!(!k.verify_imported("push.a", "node/2", &h, old));
        assert!(!k.verify_imported("push.b", "node/1", &h, old));
        assert!(!k.verify_imported("push.a", "node/1", "zz", old));
        assert!(!ServerKey::from_bytes(&[8; 32]).verify_imported("push.a", "node/1", &h, old));
        // Not the same domain as derived secrets: a salt equal to the old
        // secret does not make the two interchangeable.
        assert_ne!(h, k.secret("push.a", "node/1", old));
    }

    #[test]
    fn key_file_is_created_once_and_reused() {
        let dir = std::env::temp_dir().join(format!("pa-key-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("server.key");
        let _ = std::fs::remove_file(&path);
        let a = ServerKey::load_or_create(&path)
            .unwrap()
            .secret("c", "n", "s");
        let b = ServerKey::load_or_create(&path)
            .unwrap()
            .secret("c", "n", "s");
        assert_eq!(a, b);
        let k = ServerKey::load(&path).unwrap().unwrap();
        assert_eq!(k.check_value().len(), 64);
        assert_ne!(
            k.check_value(),
            ServerKey::from_bytes(&[1; 32]).check_value()
        );
        assert!(!dir.join("server.tmp").exists());
        std::fs::write(&path, b"short").unwrap();
        assert!(matches!(
            ServerKey::load_or_create(&path),
            Err(KeyError::BadLength(_, 5))
        ));
        std::fs::remove_file(&path).unwrap();
        assert!(ServerKey::load(&path).unwrap().is_none());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
