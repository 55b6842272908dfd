//! The upstream leg: one pooled HTTP/1.1 client for plain and TLS upstreams. TLS is verified against the webpki
//! roots plus `--upstream-ca`; nothing is decompressed or rewritten on the way.

use super::capture::RequestTee;
use anyhow::Context;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use std::path::Path;
use std::time::Duration;

pub type UpstreamClient = Client<HttpsConnector<HttpConnector>, RequestTee>;

/// The roots upstream TLS is verified against.
pub fn roots(extra_ca: Option<&Path>) -> anyhow::Result<rustls::RootCertStore> {
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    if let Some(path) = extra_ca {
        let certificates = CertificateDer::pem_file_iter(path)
            .with_context(|| format!("reading --upstream-ca {}", path.display()))?
            .collect::<Result<Vec<_>, _>>()
            .with_context(|| format!("--upstream-ca {} is not PEM", path.display()))?;
        anyhow::ensure!(
            !certificates.is_empty(),
            "--upstream-ca {} holds no certificate",
            path.display()
        );
        for certificate in certificates {
            roots
                .add(certificate)
                .with_context(|| format!("--upstream-ca {}", path.display()))?;
        }
    }
    Ok(roots)
}

pub fn client(roots: rustls::RootCertStore, connect_timeout: Duration) -> UpstreamClient {
    let tls = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(connect_timeout));
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(90))
        .http1_preserve_header_case(true)
        .build(connector)
}
