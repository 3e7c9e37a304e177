//! The HTTPS listener's certificate: loaded at start, and re-read when
//! the files change on disk (checked at most every few seconds, on new
//! handshakes), so a renewed certificate is served without a restart. A
//! bad new file keeps the previous certificate and logs an error.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;

use crate::h2client::tls::{load_certified_key, CertError, TlsError};

/// How often the files' modification times are checked at most.
pub const CHECK_EVERY: Duration = Duration::from_secs(2);

/// Modification time and length of a file, to notice a rewrite.
type Stamp = Option<(SystemTime, u64)>;

fn stamp(p: &Path) -> Stamp {
    let m = std::fs::metadata(p).ok()?;
    Some((m.modified().ok()?, m.len()))
}

#[derive(Debug)]
struct State {
    current: Arc<CertifiedKey>,
    stamps: (Stamp, Stamp),
    checked: Instant,
}

/// A certificate resolver that reloads its files when they change.
#[derive(Debug)]
pub struct ReloadingCert {
    cert: PathBuf,
    key: PathBuf,
    state: Mutex<State>,
}

impl ReloadingCert {
    /// Loads the files now.
    pub fn new(cert: &Path, key: &Path) -> Result<Self, CertError> {
        let stamps = (stamp(cert), stamp(key));
        let current = Arc::new(load_certified_key(cert, key)?);
        Ok(ReloadingCert {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            state: Mutex::new(State {
                current,
                stamps,
                checked: Instant::now(),
            }),
        })
    }

    /// The certificate to serve, reloaded first if due and changed.
    pub fn current(&self) -> Arc<CertifiedKey> {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if s.checked.elapsed() >= CHECK_EVERY {
            s.checked = Instant::now();
            let stamps = (stamp(&self.cert), stamp(&self.key));
            if stamps != s.stamps {
                // Remember the stamps even on failure: one error per change,
                // and a later fix (a new stamp) is picked up.
                s.stamps = stamps;
                match load_certified_key(&self.cert, &self.key) {
                    Ok(k) => {
                        log::info!("HTTPS: reloaded {}", self.cert.display());
                        s.current = Arc::new(k);
                    }
                    Err(e) => log::error!(
                        "HTTPS: keeping the previous certificate; cannot reload {}: {e}",
                        if e.is_key() { &self.key } else { &self.cert }.display()
                    ),
                }
            }
        }
        Arc::clone(&s.current)
    }
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

/// TLS settings of the HTTPS listener (ring, HTTP/1.1 only).
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, CertError> {
    let resolver = Arc::new(ReloadingCert::new(cert, key)?);
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| CertError::Cert(TlsError::Rustls(e)))?
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
