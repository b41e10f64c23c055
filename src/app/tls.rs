//! TLS on the gRPC port (rustls), mutual TLS when a client CA is given, and
//! the matching options of the client commands.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tonic::transport::{Certificate, ClientTlsConfig, Identity, ServerTlsConfig};

use crate::app::error::AppError;

/// TLS for `ladder serve`. The admin port stays plain HTTP: kubelet probes
/// and Prometheus scrape it from inside the pod's network.
#[derive(Debug, Clone, Args)]
pub struct ServerTlsArgs {
    /// PEM certificate chain to serve gRPC over TLS with [default: plaintext].
    #[arg(long, env = "LADDER_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, env = "LADDER_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// PEM CA certificate(s): every client must then present a certificate
    /// signed by one of them (mutual TLS).
    #[arg(long, env = "LADDER_TLS_CLIENT_CA", requires = "tls_cert")]
    tls_client_ca: Option<PathBuf>,
}

impl ServerTlsArgs {
    /// The server's TLS configuration, or `None` for plaintext. Every file is
    /// read and parsed here, so a server with unusable TLS files refuses to
    /// start before it opens the database.
    pub fn server_config(&self) -> Result<Option<ServerTlsConfig>, AppError> {
        let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) else {
            return Ok(None);
        };
        // A client that opens a connection and never finishes its handshake
        // must not hold a socket and a task for ever.
        let mut config =
            ServerTlsConfig::new()
                .timeout(HANDSHAKE_TIMEOUT)
                .identity(Identity::from_pem(
                    certificates(cert, "--tls-cert")?,
                    private_key(key, "--tls-key")?,
                ));
        // Each file parses; what is left to fail is the pair, and then the
        // client CA, which rustls checks when tonic builds the acceptor.
        acceptor(&config, "--tls-key does not go with --tls-cert")?;
        if let Some(ca) = &self.tls_client_ca {
            config =
                config.client_ca_root(Certificate::from_pem(certificates(ca, "--tls-client-ca")?));
            acceptor(&config, "--tls-client-ca holds no usable CA certificate")?;
        }
        Ok(Some(config))
    }
}

/// How long a client has to complete its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Builds the acceptor `config` describes, as serving will: its error, if
/// any, prefixed with `problem`.
fn acceptor(config: &ServerTlsConfig, problem: &str) -> Result<(), AppError> {
    tonic::transport::Server::builder()
        .tls_config(config.clone())
        .map(drop)
        .map_err(|e| AppError::Config(format!("{problem}: {}", chain(&e))))
}

/// TLS for the client commands, used when `--server` is an `https://` URL.
#[derive(Debug, Clone, Args)]
pub struct ClientTlsArgs {
    /// PEM CA certificate(s) to trust for an https:// server [default: the
    /// system's roots].
    #[arg(long, env = "LADDER_CA_CERT")]
    ca_cert: Option<PathBuf>,
    /// PEM client certificate, for a server that requires mutual TLS.
    #[arg(long, env = "LADDER_CLIENT_CERT", requires = "client_key")]
    client_cert: Option<PathBuf>,
    /// PEM private key of --client-cert.
    #[arg(long, env = "LADDER_CLIENT_KEY", requires = "client_cert")]
    client_key: Option<PathBuf>,
}

impl ClientTlsArgs {
    /// The channel's TLS configuration for `server`, or `None` for plaintext.
    pub fn client_config(&self, server: &str) -> Result<Option<ClientTlsConfig>, AppError> {
        if !server.starts_with("https://") {
            return match (&self.ca_cert, &self.client_cert) {
                (None, None) => Ok(None),
                _ => Err(AppError::Config(format!(
                    "--ca-cert and --client-cert need an https:// --server, not {server}"
                ))),
            };
        }
        let mut config = match &self.ca_cert {
            Some(ca) => ClientTlsConfig::new()
                .ca_certificate(Certificate::from_pem(certificates(ca, "--ca-cert")?)),
            None => ClientTlsConfig::new().with_native_roots(),
        };
        if let (Some(cert), Some(key)) = (&self.client_cert, &self.client_key) {
            config = config.identity(Identity::from_pem(
                certificates(cert, "--client-cert")?,
                private_key(key, "--client-key")?,
            ));
        }
        Ok(Some(config))
    }
}

/// The PEM file behind `flag`, holding at least one certificate.
fn certificates(path: &Path, flag: &str) -> Result<Vec<u8>, AppError> {
    let pem = read_pem(path, flag)?;
    let found = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| unusable(path, flag, &e.to_string()))?;
    if found.is_empty() {
        return Err(unusable(path, flag, "no PEM certificate in it"));
    }
    Ok(pem)
}

/// The PEM file behind `flag`, holding a private key.
fn private_key(path: &Path, flag: &str) -> Result<Vec<u8>, AppError> {
    let pem = read_pem(path, flag)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| unusable(path, flag, &e.to_string()))?;
    Ok(pem)
}

fn read_pem(path: &Path, flag: &str) -> Result<Vec<u8>, AppError> {
    std::fs::read(path).map_err(|source| AppError::Io {
        context: format!("{flag} {}", path.display()),
        source,
    })
}

fn unusable(path: &Path, flag: &str, reason: &str) -> AppError {
    AppError::Config(format!("{flag} {}: {reason}", path.display()))
}

/// An error and its causes on one line: tonic's own message is only
/// "transport error", the reason is in its sources.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(inner) = cause {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        cause = inner.source();
    }
    text
}
