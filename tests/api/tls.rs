//! `ladder serve --tls-cert --tls-key [--tls-client-ca]`: TLS and mutual TLS
//! on the gRPC port, checked with certificate authorities made by the test.

use std::path::{Path, PathBuf};
use std::process::Command;

use ladder::proto::v1::ListRolesRequest;
use ladder::proto::v1::rubric_service_client::RubricServiceClient;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

use crate::cli::{serve_url, start, stop};
use crate::harness::{TestServer, ladder_bin, traversable_temp_dir};

/// A certificate and its key, as PEM files.
pub(crate) struct Pem {
    pub(crate) cert: PathBuf,
    key: PathBuf,
}

impl Pem {
    pub(crate) fn identity(&self) -> Identity {
        Identity::from_pem(
            std::fs::read(&self.cert).unwrap(),
            std::fs::read(&self.key).unwrap(),
        )
    }
}

/// A certificate authority whose certificates are written under `dir`.
pub(crate) struct Authority {
    issuer: Issuer<'static, KeyPair>,
    pub(crate) pem: Pem,
}

impl Authority {
    fn new(dir: &Path, name: &str) -> Self {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let cert = params.self_signed(&key).unwrap();
        let pem = write(dir, name, &cert.pem(), &key.serialize_pem());
        Self {
            issuer: Issuer::new(params, key),
            pem,
        }
    }

    /// A certificate for `names` (DNS names or IP addresses) for `purpose`.
    fn issue(
        &self,
        dir: &Path,
        file: &str,
        names: &[&str],
        purpose: ExtendedKeyUsagePurpose,
    ) -> Pem {
        let key = KeyPair::generate().unwrap();
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = CertificateParams::new(names).unwrap();
        params.distinguished_name.push(DnType::CommonName, file);
        params.extended_key_usages = vec![purpose];
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        write(dir, file, &cert.pem(), &key.serialize_pem())
    }

    fn certificate(&self) -> Certificate {
        Certificate::from_pem(std::fs::read(&self.pem.cert).unwrap())
    }
}

fn write(dir: &Path, name: &str, cert: &str, key: &str) -> Pem {
    let pem = Pem {
        cert: dir.join(format!("{name}.crt")),
        key: dir.join(format!("{name}.key")),
    };
    std::fs::write(&pem.cert, cert).unwrap();
    std::fs::write(&pem.key, key).unwrap();
    pem
}

/// The company CA that signs the server's and its clients' certificates, a
/// rogue CA nobody configured, and what each issued.
pub(crate) struct Pki {
    _dir: tempfile::TempDir,
    pub(crate) ca: Authority,
    rogue: Authority,
    pub(crate) server: Pem,
    client: Pem,
    rogue_client: Pem,
}

pub(crate) fn pki() -> Pki {
    let dir = traversable_temp_dir();
    let ca = Authority::new(dir.path(), "ca");
    let rogue = Authority::new(dir.path(), "rogue");
    let server = ca.issue(
        dir.path(),
        "server",
        &["127.0.0.1", "localhost"],
        ExtendedKeyUsagePurpose::ServerAuth,
    );
    let client = ca.issue(
        dir.path(),
        "client",
        &["hris.example"],
        ExtendedKeyUsagePurpose::ClientAuth,
    );
    let rogue_client = rogue.issue(
        dir.path(),
        "rogue-client",
        &["hris.example"],
        ExtendedKeyUsagePurpose::ClientAuth,
    );
    Pki {
        _dir: dir,
        ca,
        rogue,
        server,
        client,
        rogue_client,
    }
}

/// `ladder serve --dev` on `server`'s database, serving TLS with `pki`'s
/// server certificate, and with `extra` arguments.
fn serve_tls(server: &TestServer, pki: &Pki, extra: &[&Path]) -> Command {
    let mut command = serve_url(&server.app_database_url());
    command
        .arg("--tls-cert")
        .arg(&pki.server.cert)
        .arg("--tls-key")
        .arg(&pki.server.key);
    if let [ca] = extra {
        command.arg("--tls-client-ca").arg(ca);
    }
    command
}

/// Lists the roles over a TLS channel that trusts `trusted` and presents
/// `identity`; the call's outcome, or the connection's failure as a string.
async fn list_roles(
    addr: &str,
    trusted: Certificate,
    identity: Option<Identity>,
) -> Result<usize, String> {
    let mut tls = ClientTlsConfig::new().ca_certificate(trusted);
    if let Some(identity) = identity {
        tls = tls.identity(identity);
    }
    let channel = Channel::from_shared(format!("https://{addr}"))
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect()
        .await
        .map_err(|e| format!("connect: {e:?}"))?;
    RubricServiceClient::new(channel)
        .list_roles(ListRolesRequest::default())
        .await
        .map(|r| r.into_inner().roles.len())
        .map_err(|status| format!("call: {status:?}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn tls_serves_clients_that_trust_its_authority_and_nobody_in_plaintext() {
    let server = TestServer::start().await;
    let pki = pki();
    let (serving, addr) = start(serve_tls(&server, &pki, &[]));

    let roles = list_roles(&addr, pki.ca.certificate(), None).await;
    assert!(roles.as_ref().is_ok_and(|n| *n > 0), "{roles:?}");
    // Without mutual TLS a client certificate is not needed, and not refused.
    let with_identity = list_roles(&addr, pki.ca.certificate(), Some(pki.client.identity())).await;
    assert_eq!(with_identity, roles);

    let distrusting = list_roles(&addr, pki.rogue.certificate(), None).await;
    assert!(
        distrusting.is_err(),
        "a client that does not trust the server's CA connected"
    );
    let plaintext = async {
        let channel = Channel::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect()
            .await
            .map_err(|e| e.to_string())?;
        RubricServiceClient::new(channel)
            .list_roles(ListRolesRequest::default())
            .await
            .map_err(|e| e.to_string())
    }
    .await;
    assert!(
        plaintext.is_err(),
        "a plaintext call was answered: {plaintext:?}"
    );
    stop(serving).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn mutual_tls_admits_only_clients_with_a_certificate_from_the_client_ca() {
    let server = TestServer::start().await;
    let pki = pki();
    let (serving, addr) = start(serve_tls(&server, &pki, &[&pki.ca.pem.cert]));

    let anonymous = list_roles(&addr, pki.ca.certificate(), None).await;
    assert!(
        anonymous.is_err(),
        "a client without a certificate was answered"
    );
    let rogue = list_roles(
        &addr,
        pki.ca.certificate(),
        Some(pki.rogue_client.identity()),
    )
    .await;
    assert!(
        rogue.is_err(),
        "a client certificate from another CA was accepted"
    );
    let admitted = list_roles(&addr, pki.ca.certificate(), Some(pki.client.identity())).await;
    assert!(admitted.as_ref().is_ok_and(|n| *n > 0), "{admitted:?}");

    // The client commands speak mutual TLS too.
    let ladder = |args: &[&str], identity: Option<&Pem>| {
        let mut command = Command::new(ladder_bin());
        command
            .args(args)
            .args(["--server", &format!("https://{addr}")])
            .arg("--ca-cert")
            .arg(&pki.ca.pem.cert)
            .env_remove("LADDER_TOKEN");
        if let Some(pem) = identity {
            command
                .arg("--client-cert")
                .arg(&pem.cert)
                .arg("--client-key")
                .arg(&pem.key);
        }
        command.output().unwrap()
    };
    let recommend = |identity: Option<&Pem>| {
        ladder(
            &[
                "recommend",
                "--subject",
                "emp-1",
                "--role",
                "senior_engineer",
            ],
            identity,
        )
    };
    let recorded = ladder(
        &[
            "subject",
            "set-role",
            "--subject",
            "emp-1",
            "--role",
            "senior_engineer",
        ],
        Some(&pki.client),
    );
    assert!(
        recorded.status.success(),
        "{}",
        String::from_utf8_lossy(&recorded.stderr)
    );
    let out = recommend(Some(&pki.client));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("\n1. "), "{text}");
    for refused in [recommend(None), recommend(Some(&pki.rogue_client))] {
        assert!(
            !refused.status.success(),
            "recommend without an admitted certificate succeeded"
        );
    }
    stop(serving).await;
}

/// Unusable TLS settings stop `serve` before it opens the database (whose
/// URL here points nowhere), naming the flag and what is wrong.
#[test]
fn serve_refuses_tls_files_it_cannot_use() {
    let pki = pki();
    let dir = traversable_temp_dir();
    let not_pem = dir.path().join("not.pem");
    std::fs::write(&not_pem, "not a certificate").unwrap();
    let missing = dir.path().join("missing.pem");
    // PEM armour around bytes that are no certificate.
    let not_a_certificate = dir.path().join("not-a-certificate.pem");
    std::fs::write(
        &not_a_certificate,
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let (cert, key, ca) = (&pki.server.cert, &pki.server.key, &pki.ca.pem.cert);
    let named =
        |flag: &str, path: &Path, reason: &str| format!("{flag} {}: {reason}", path.display());
    let cases: Vec<(Vec<(&str, &Path)>, String)> = vec![
        (vec![("--tls-key", key)], "--tls-cert".into()),
        (vec![("--tls-client-ca", ca)], "--tls-cert".into()),
        (
            vec![("--tls-cert", &missing), ("--tls-key", key)],
            named("--tls-cert", &missing, "No such file"),
        ),
        (
            vec![("--tls-cert", &not_pem), ("--tls-key", key)],
            named("--tls-cert", &not_pem, "no PEM certificate in it"),
        ),
        (
            vec![("--tls-cert", cert), ("--tls-key", &not_pem)],
            named("--tls-key", &not_pem, ""),
        ),
        (
            vec![
                ("--tls-cert", cert),
                ("--tls-key", key),
                ("--tls-client-ca", &not_pem),
            ],
            named("--tls-client-ca", &not_pem, "no PEM certificate in it"),
        ),
        (
            vec![("--tls-cert", cert), ("--tls-key", &pki.client.key)],
            "--tls-key does not go with --tls-cert".into(),
        ),
        (
            vec![
                ("--tls-cert", cert),
                ("--tls-key", key),
                ("--tls-client-ca", &not_a_certificate),
            ],
            "--tls-client-ca holds no usable CA certificate".into(),
        ),
    ];
    for (args, expected) in cases {
        let mut command = Command::new(ladder_bin());
        command
            .args([
                "serve",
                "--dev",
                "--listen",
                "127.0.0.1:0",
                "--log-format",
                "text",
            ])
            .args(["--database-url", "postgres://nobody@127.0.0.1:1/none"]);
        for (flag, path) in &args {
            command.arg(flag).arg(path);
        }
        let out = command.output().unwrap();
        let message = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} served");
        assert!(message.contains(&expected), "{args:?}: {message}");
        assert!(
            !message.contains("database is unavailable"),
            "{args:?} reached the database: {message}"
        );
    }
}
