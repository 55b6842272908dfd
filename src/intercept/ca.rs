//! HandoffRail's MITM certificate authority: created in the data directory on first start (`ca.pem`, and
//! `ca.key` with mode 0600), it signs a leaf certificate for each host an agent CONNECTs to. Leaves share one
//! key and are cached per host, so only the first tunnel to a host pays for a signature.

use anyhow::Context;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};

pub const CERT_FILE: &str = "ca.pem";
pub const KEY_FILE: &str = "ca.key";
const COMMON_NAME: &str = "HandoffRail interceptor CA";
/// More distinct hosts than this start the cache over rather than grow it.
const MAX_LEAVES: usize = 10_000;

pub struct CertificateAuthority {
    pem: String,
    der: CertificateDer<'static>,
    issuer: rcgen::Certificate,
    key: KeyPair,
    leaf_key: KeyPair,
    leaves: Mutex<HashMap<String, Arc<rustls::ServerConfig>>>,
}

fn ca_params() -> anyhow::Result<CertificateParams> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, COMMON_NAME);
    name.push(DnType::OrganizationName, "HandoffRail");
    params.distinguished_name = name;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(3650);
    Ok(params)
}

fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()
}

impl CertificateAuthority {
    /// Loads the CA from `data_dir`, creating it on first start.
    pub fn load_or_create(data_dir: &Path) -> anyhow::Result<CertificateAuthority> {
        let (cert_path, key_path) = (data_dir.join(CERT_FILE), data_dir.join(KEY_FILE));
        if !key_path.exists() {
            crate::data_dir::create_private_dir(data_dir)?;
            let key = KeyPair::generate()?;
            let cert = ca_params()?.self_signed(&key)?;
            match write_private(&key_path, &key.serialize_pem()) {
                Ok(()) => std::fs::write(&cert_path, cert.pem())
                    .with_context(|| format!("writing {}", cert_path.display()))?,
                // Another process created it first: use theirs.
                Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(error) => {
                    return Err(error).with_context(|| format!("writing {}", key_path.display()))
                }
            }
        }
        let key_pem = std::fs::read_to_string(&key_path)
            .with_context(|| format!("reading {}", key_path.display()))?;
        let key = KeyPair::from_pem(&key_pem)
            .with_context(|| format!("{} is not a PEM private key", key_path.display()))?;
        // The writer may still be finishing ca.pem.
        let mut pem = String::new();
        for _ in 0..50 {
            pem = std::fs::read_to_string(&cert_path).unwrap_or_default();
            if pem.contains("END CERTIFICATE") {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let der = CertificateDer::from_pem_slice(pem.as_bytes())
            .with_context(|| format!("{} is not a PEM certificate", cert_path.display()))?;
        // Leaves are signed in the CA's name with its key; the issuer only contributes those two.
        let issuer = ca_params()?.self_signed(&key)?;
        Ok(CertificateAuthority {
            pem,
            der,
            issuer,
            key,
            leaf_key: KeyPair::generate()?,
            leaves: Mutex::new(HashMap::new()),
        })
    }

    /// The CA certificate agents must trust, PEM.
    pub fn certificate_pem(&self) -> &str {
        &self.pem
    }

    /// A leaf certificate for `host`, signed by the CA.
    fn leaf(&self, host: &str) -> anyhow::Result<CertificateDer<'static>> {
        let mut params = CertificateParams::new(vec![host.to_string()])?;
        params.distinguished_name.push(DnType::CommonName, host);
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now - time::Duration::days(1);
        params.not_after = now + time::Duration::days(365);
        params.use_authority_key_identifier_extension = true;
        Ok(params
            .signed_by(&self.leaf_key, &self.issuer, &self.key)?
            .der()
            .clone())
    }

    /// A TLS server configuration presenting a leaf certificate for `host` (a name or an IP address).
    pub fn server_config(&self, host: &str) -> anyhow::Result<Arc<rustls::ServerConfig>> {
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase();
        if let Some(config) = self
            .leaves
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(&host)
        {
            return Ok(config.clone());
        }
        let leaf = self.leaf(&host)?;
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.leaf_key.serialize_der()));
        let mut config = rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(vec![leaf, self.der.clone()], key)?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let config = Arc::new(config);
        let mut leaves = self
            .leaves
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if leaves.len() >= MAX_LEAVES {
            leaves.clear();
        }
        leaves.insert(host, config.clone());
        Ok(config)
    }
}

use rustls::pki_types::pem::PemObject;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ca_is_created_once_private_and_signs_leaves_clients_accept() {
        crate::install_crypto_provider();
        let dir = tempfile::TempDir::new().expect("dir");
        let ca = CertificateAuthority::load_or_create(dir.path()).expect("create");
        let again = CertificateAuthority::load_or_create(dir.path()).expect("reload");
        assert_eq!(ca.certificate_pem(), again.certificate_pem(), "made once");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(KEY_FILE))
                .expect("key")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // A leaf from the reloaded CA verifies against the PEM a client was given by the first.
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_slice(ca.certificate_pem().as_bytes()).expect("pem"))
            .expect("root");
        let verifier = rustls::client::WebPkiServerVerifier::builder(Arc::new(roots))
            .build()
            .expect("verifier");
        for host in ["api.example.com", "127.0.0.1"] {
            let leaf = again.leaf(host).expect("leaf");
            let name = rustls::pki_types::ServerName::try_from(host.to_string()).expect("name");
            rustls::client::danger::ServerCertVerifier::verify_server_cert(
                verifier.as_ref(),
                &leaf,
                &[],
                &name,
                &[],
                rustls::pki_types::UnixTime::now(),
            )
            .unwrap_or_else(|error| panic!("{host}: {error}"));
            let other = rustls::pki_types::ServerName::try_from("evil.example").expect("name");
            assert!(
                rustls::client::danger::ServerCertVerifier::verify_server_cert(
                    verifier.as_ref(),
                    &leaf,
                    &[],
                    &other,
                    &[],
                    rustls::pki_types::UnixTime::now(),
                )
                .is_err()
            );
        }
        assert!(Arc::ptr_eq(
            &again.server_config("API.example.com").expect("cached"),
            &again.server_config("api.example.com").expect("cached")
        ));
    }
}
