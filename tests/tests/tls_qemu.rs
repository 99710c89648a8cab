//! QMP over TLS (qmp-core feature `tls`) against real QEMU with a `tls-creds-x509` object, with
//! certificates generated here: a trusted server, an untrusted one, and client certificates.

// Certificates are generated here, in the test: unwrapping their construction is fine.
#![allow(clippy::unwrap_used)]

use std::net::TcpListener;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use qmp_core::tls::rustls;
use qmp_core::{Client, ConnectError};
use qmp_tests::qemu::{Kind, Qemu};
use qmp_tests::{within, TempDir};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};

/// A CA, and certificates it signs.
struct Pki {
    ca: CertifiedIssuer<'static, KeyPair>,
}

impl Pki {
    fn new(name: &str) -> Pki {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        Pki { ca }
    }

    /// A certificate for `names`, as (cert PEM, key PEM, cert DER, key DER).
    fn issue(&self, names: &[&str]) -> (String, String, Vec<u8>, Vec<u8>) {
        let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        let mut params = CertificateParams::new(names).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "qmp test");
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.ca).unwrap();
        (
            cert.pem(),
            key.serialize_pem(),
            cert.der().to_vec(),
            key.serialize_der(),
        )
    }

    fn client_config(&self, client_cert: Option<(Vec<u8>, Vec<u8>)>) -> Arc<rustls::ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.ca.der().clone()).unwrap();
        let builder = rustls::ClientConfig::builder().with_root_certificates(roots);
        let config = match client_cert {
            None => builder.with_no_client_auth(),
            Some((cert, key)) => builder
                .with_client_auth_cert(
                    vec![rustls::pki_types::CertificateDer::from(cert)],
                    rustls::pki_types::PrivateKeyDer::try_from(key).unwrap(),
                )
                .unwrap(),
        };
        Arc::new(config)
    }
}

/// Starts QEMU with a TLS-protected QMP monitor on a free loopback port; the credentials
/// directory gets the CA and server certificate QEMU expects.
fn start_tls_qemu(pki: &Pki, dir: &Path, verify_peer: bool) -> Option<(Qemu, u16)> {
    let (cert, key, _, _) = pki.issue(&["localhost", "127.0.0.1"]);
    std::fs::write(dir.join("ca-cert.pem"), pki.ca.pem()).unwrap();
    std::fs::write(dir.join("server-cert.pem"), cert).unwrap();
    std::fs::write(dir.join("server-key.pem"), key).unwrap();
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let args = vec![
        "-object".to_string(),
        format!(
            "tls-creds-x509,id=tls0,dir={},endpoint=server,verify-peer={}",
            dir.display(),
            if verify_peer { "on" } else { "off" }
        ),
        "-chardev".into(),
        format!("socket,id=qmp0,host=127.0.0.1,port={port},server=on,wait=off,tls-creds=tls0"),
        "-mon".into(),
        "chardev=qmp0,mode=control".into(),
    ];
    let qemu = Qemu::start_bare(Kind::System10, &args)?;
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "QEMU did not listen on {port}");
        std::thread::sleep(Duration::from_millis(10));
    }
    Some((qemu, port))
}

#[tokio::test]
async fn qmp_over_tls_with_a_trusted_certificate() {
    let dir = TempDir::new();
    let pki = Pki::new("qmp test CA");
    let Some((_qemu, port)) = start_tls_qemu(&pki, dir.path(), false) else {
        return;
    };
    within(30, async {
        let client = Client::builder()
            .connect_tls(("127.0.0.1", port), "localhost", pki.client_config(None))
            .await
            .unwrap();
        assert_eq!(client.greeting().version.major, 10);
        let status = client.execute("query-status", ()).await.unwrap();
        assert_eq!(status["running"], serde_json::json!(true));
        let mut stops = client.subscribe_to(["STOP"]);
        client.execute("stop", ()).await.unwrap();
        assert_eq!(stops.next().await.unwrap().unwrap().name(), "STOP");
        client.close().await;
    })
    .await;
}

#[tokio::test]
async fn untrusted_or_mismatched_certificates_are_rejected() {
    let dir = TempDir::new();
    let pki = Pki::new("qmp test CA");
    let Some((_qemu, port)) = start_tls_qemu(&pki, dir.path(), false) else {
        return;
    };
    within(30, async {
        // A client that trusts another CA refuses QEMU's certificate.
        let stranger = Pki::new("some other CA");
        let res = Client::builder()
            .connect_tls(
                ("127.0.0.1", port),
                "localhost",
                stranger.client_config(None),
            )
            .await;
        match res {
            Err(ConnectError::Tls { error, .. }) => {
                let msg = error.to_string();
                assert!(
                    msg.contains("UnknownIssuer") || msg.contains("certificate"),
                    "{msg}"
                );
            }
            other => panic!("expected a TLS error, got {other:?}"),
        }
        // The right CA but the wrong name is refused too.
        let res = Client::builder()
            .connect_tls(
                ("127.0.0.1", port),
                "not-this-host",
                pki.client_config(None),
            )
            .await;
        assert!(matches!(res, Err(ConnectError::Tls { .. })), "{res:?}");
        // The monitor still serves a proper client afterwards.
        let ok = Client::builder()
            .connect_tls(("127.0.0.1", port), "127.0.0.1", pki.client_config(None))
            .await
            .unwrap();
        ok.execute("query-version", ()).await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn qemu_requiring_client_certificates() {
    let dir = TempDir::new();
    let pki = Pki::new("qmp test CA");
    let Some((_qemu, port)) = start_tls_qemu(&pki, dir.path(), true) else {
        return;
    };
    within(30, async {
        // Without a client certificate QEMU ends the handshake.
        let res = Client::builder()
            .timeout(Some(Duration::from_secs(5)))
            .connect_tls(("127.0.0.1", port), "localhost", pki.client_config(None))
            .await;
        assert!(res.is_err(), "QEMU accepted a client without a certificate");
        // With one signed by the CA it serves.
        let (_, _, cert, key) = pki.issue(&["qmp-client"]);
        let client = Client::builder()
            .connect_tls(
                ("127.0.0.1", port),
                "localhost",
                pki.client_config(Some((cert, key))),
            )
            .await
            .unwrap();
        client.execute("query-status", ()).await.unwrap();
    })
    .await;
}
