//! TLS client settings for the providers: rustls with the ring provider,
//! the bundled Mozilla roots (which include the USERTrust RSA root Apple's
//! servers chain to), optional extra CAs, optional client certificate, and
//! ALPN `h2`.

use std::fmt;
use std::fs::File;
use std::io::{self, BufReader};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore};

use super::x509;

/// A TLS client certificate: a PEM certificate chain and its PEM private
/// key. Both may name the same file (a combined PEM).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientIdentity {
    /// PEM file with the certificate, then any intermediates.
    pub cert: PathBuf,
    /// PEM file with the private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// Why TLS settings could not be built.
#[derive(Debug)]
#[non_exhaustive]
pub enum TlsError {
    /// A file could not be read.
    Read {
        /// Which file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// A PEM file (or folder) held no usable certificate.
    NoCertificate {
        /// Which file or folder.
        path: PathBuf,
    },
    /// A PEM file held no private key.
    NoPrivateKey {
        /// Which file.
        path: PathBuf,
    },
    /// A certificate's validity dates could not be read.
    BadCertificate {
        /// Which file.
        path: PathBuf,
    },
    /// rustls refused a certificate, a key or the settings.
    Rustls(rustls::Error),
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsError::Read { path, source } => {
                write!(f, "cannot read {}: {source}", path.display())
            }
            TlsError::NoCertificate { path } => {
                write!(f, "no PEM certificate in {}", path.display())
            }
            TlsError::NoPrivateKey { path } => {
                write!(f, "no PEM private key in {}", path.display())
            }
            TlsError::BadCertificate { path } => {
                write!(f, "cannot read the certificate dates in {}", path.display())
            }
            TlsError::Rustls(e) => write!(f, "TLS: {e}"),
        }
    }
}

impl std::error::Error for TlsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TlsError::Read { source, .. } => Some(source),
            TlsError::Rustls(e) => Some(e),
            _ => None,
        }
    }
}

impl From<rustls::Error> for TlsError {
    fn from(e: rustls::Error) -> Self {
        TlsError::Rustls(e)
    }
}

/// Builds a client configuration: Mozilla's roots (from `webpki-roots`)
/// plus the certificates in `extra_ca` (a PEM file, or a folder whose PEM
/// files are all read, like OpenSSL's `capath`), the client certificate if
/// given, and ALPN `h2`.
pub fn client_config(
    extra_ca: Option<&Path>,
    client_auth: Option<ClientIdentity>,
) -> Result<Arc<ClientConfig>, TlsError> {
    let mut roots = RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = extra_ca {
        add_extra_roots(&mut roots, path)?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots);
    let mut config = match client_auth {
        Some(id) => {
            let chain = load_certs(&id.cert)?;
            let key = load_private_key(&id.key)?;
            builder.with_client_auth_cert(chain, key)?
        }
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Arc::new(config))
}

/// All certificates of a PEM file; an error when there is none.
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = rustls_pemfile::certs(&mut open(path)?)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| read_error(path, source))?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate {
            path: path.to_path_buf(),
        });
    }
    Ok(certs)
}

/// The first private key of a PEM file (other items, such as
/// certificates in a combined PEM, are skipped).
pub fn load_private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    rustls_pemfile::private_key(&mut open(path)?)
        .map_err(|source| read_error(path, source))?
        .ok_or_else(|| TlsError::NoPrivateKey {
            path: path.to_path_buf(),
        })
}

/// When the first certificate of a PEM file expires (its `notAfter`).
pub fn certificate_expiry(path: &Path) -> Result<SystemTime, TlsError> {
    let certs = load_certs(path)?;
    x509::not_after(&certs[0]).ok_or_else(|| TlsError::BadCertificate {
        path: path.to_path_buf(),
    })
}

fn add_extra_roots(roots: &mut RootCertStore, path: &Path) -> Result<(), TlsError> {
    let meta = std::fs::metadata(path).map_err(|source| read_error(path, source))?;
    if !meta.is_dir() {
        for cert in load_certs(path)? {
            roots.add(cert)?;
        }
        return Ok(());
    }
    // A folder such as /etc/ssl/certs: every readable PEM file counts;
    // files that are not certificates are skipped.
    let entries = std::fs::read_dir(path).map_err(|source| read_error(path, source))?;
    let mut added = 0;
    for entry in entries {
        let file = entry.map_err(|source| read_error(path, source))?.path();
        if !file.is_file() {
            continue;
        }
        if let Ok(certs) = load_certs(&file) {
            added += roots.add_parsable_certificates(certs).0;
        }
    }
    if added == 0 {
        return Err(TlsError::NoCertificate {
            path: path.to_path_buf(),
        });
    }
    Ok(())
}

fn open(path: &Path) -> Result<BufReader<File>, TlsError> {
    File::open(path)
        .map(BufReader::new)
        .map_err(|source| read_error(path, source))
}

fn read_error(path: &Path, source: io::Error) -> TlsError {
    TlsError::Read {
        path: path.to_path_buf(),
        source,
    }
}

/// Why a certificate and key could not be loaded.
#[derive(Debug)]
pub enum CertError {
    /// The certificate file.
    Cert(TlsError),
    /// The key file, or a key that does not match the certificate.
    Key(TlsError),
}

impl CertError {
    /// Whether the key file is at fault (else the certificate file).
    pub fn is_key(&self) -> bool {
        matches!(self, CertError::Key(_))
    }
}

impl fmt::Display for CertError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CertError::Cert(e) | CertError::Key(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for CertError {}

/// Loads a PEM certificate chain and its PEM private key, checking that
/// they belong together.
pub fn load_certified_key(
    cert: &Path,
    key: &Path,
) -> Result<rustls::sign::CertifiedKey, CertError> {
    let chain = load_certs(cert).map_err(CertError::Cert)?;
    let der = load_private_key(key).map_err(CertError::Key)?;
    let provider = rustls::crypto::ring::default_provider();
    rustls::sign::CertifiedKey::from_der(chain, der, &provider)
        .map_err(|e| CertError::Key(TlsError::Rustls(e)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundled_roots_include_the_usertrust_rsa_root_apple_needs() {
        let found = webpki_roots::TLS_SERVER_ROOTS.iter().any(|ta| {
            let subject = ta.subject.as_ref();
            subject
                .windows(b"USERTrust RSA Certification Authority".len())
                .any(|w| w == b"USERTrust RSA Certification Authority")
        });
        assert!(found);
    }

    #[test]
    fn missing_files_are_named() {
        let err = client_config(Some(Path::new("/nonexistent/ca.pem")), None).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/ca.pem"), "{err}");
    }

    #[test]
    fn builds_without_extras_and_offers_h2() {
        let config = client_config(None, None).unwrap();
        assert_eq!(config.alpn_protocols, vec![b"h2".to_vec()]);
    }
}
