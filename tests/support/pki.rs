//! Files and certificates for tests: a temp folder removed on drop, and a
//! test CA made with rcgen (its PEM written to a temp folder for the
//! client's `capath`) that signs server certificates for 127.0.0.1 and
//! client certificates.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};

/// A folder under the system temp dir, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!(
            "pa-test-{tag}-{}-{}",
            std::process::id(),
            fastrand::u64(..)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    /// The path of `name` in this folder.
    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    /// Writes `name` in this folder and returns its path.
    pub fn write(&self, name: &str, data: impl AsRef<[u8]>) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, data).unwrap();
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A test CA, its PEM file, and certificates it signs.
pub struct Pki {
    pub dir: TempDir,
    /// The CA certificate as PEM (`ca.pem` in `dir`), for the client's
    /// extra-CA option.
    pub ca_pem: PathBuf,
    ca: rcgen::Certificate,
    ca_key: KeyPair,
}

impl Pki {
    pub fn new() -> Pki {
        let dir = TempDir::new("pki");
        let ca_key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "push-appserver test CA");
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca = params.self_signed(&ca_key).unwrap();
        let ca_pem = dir.write("ca.pem", ca.pem());
        Pki {
            dir,
            ca_pem,
            ca,
            ca_key,
        }
    }

    /// TLS settings of a server for 127.0.0.1, offering the ALPN protocol
    /// `alpn`; with `client_auth` it requires a client certificate from
    /// this CA.
    pub fn server_config(&self, client_auth: bool, alpn: &[u8]) -> Arc<ServerConfig> {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap();
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let cert = params.signed_by(&key, &self.ca, &self.ca_key).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .unwrap();
        let builder = if client_auth {
            let mut roots = RootCertStore::empty();
            roots.add(self.ca.der().clone()).unwrap();
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .unwrap();
            builder.with_client_cert_verifier(verifier)
        } else {
            builder.with_no_client_auth()
        };
        let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let mut config = builder
            .with_single_cert(vec![cert.der().clone()], key_der)
            .unwrap();
        config.alpn_protocols = vec![alpn.to_vec()];
        Arc::new(config)
    }

    /// A TLS acceptor for [`Pki::server_config`] without client
    /// certificates.
    pub fn acceptor(&self, alpn: &[u8]) -> futures_rustls::TlsAcceptor {
        futures_rustls::TlsAcceptor::from(self.server_config(false, alpn))
    }

    /// A client certificate signed by this CA, valid until `not_after`,
    /// written with its key as one combined PEM; returns the path and the
    /// certificate's DER.
    pub fn client_pem(&self, name: &str, not_after: SystemTime) -> (PathBuf, Vec<u8>) {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.not_after = not_after.into();
        let cert = params.signed_by(&key, &self.ca, &self.ca_key).unwrap();
        let pem = format!("{}\n{}", cert.pem(), key.serialize_pem());
        (
            self.dir.write(&format!("{name}.pem"), pem),
            cert.der().to_vec(),
        )
    }
}
