//! QMP over TLS (qmp-core feature `tls`) against real QEMU with a `tls-creds-x509` object, with
//! certificates generated here: a trusted server, an untrusted one, and client certificates.

// Certificates are generated here, in the test: unwrapping their construction is fine.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use qmp_core::tls::rustls;
use qmp_core::{Client, ConnectError};
use qmp_tests::qemu::Qemu;
use qmp_tests::tls::{self, Pki};
use qmp_tests::{within, TempDir};

/// A client configuration trusting `pki`'s CA, with a client certificate (DER) if given.
fn client_config(pki: &Pki, client_cert: Option<(Vec<u8>, Vec<u8>)>) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(pki.ca.der().clone()).unwrap();
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

/// Starts QEMU with a TLS-protected QMP monitor; the credentials directory gets the CA and a
/// server certificate for `localhost` and `127.0.0.1`.
fn start_tls_qemu(pki: &Pki, dir: &Path, verify_peer: bool) -> Option<(Qemu, u16)> {
    pki.write(&["localhost", "127.0.0.1"], dir, "server");
    tls::start_qemu(dir, verify_peer)
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
            .connect_tls(("127.0.0.1", port), "localhost", client_config(&pki, None))
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
                client_config(&stranger, None),
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
                client_config(&pki, None),
            )
            .await;
        assert!(matches!(res, Err(ConnectError::Tls { .. })), "{res:?}");
        // The monitor still serves a proper client afterwards.
        let ok = Client::builder()
            .connect_tls(("127.0.0.1", port), "127.0.0.1", client_config(&pki, None))
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
            .connect_tls(("127.0.0.1", port), "localhost", client_config(&pki, None))
            .await;
        assert!(res.is_err(), "QEMU accepted a client without a certificate");
        // With one signed by the CA it serves.
        let issued = pki.issue(&["qmp-client"]);
        let client = Client::builder()
            .connect_tls(
                ("127.0.0.1", port),
                "localhost",
                client_config(&pki, Some((issued.cert_der, issued.key_der))),
            )
            .await
            .unwrap();
        client.execute("query-status", ()).await.unwrap();
    })
    .await;
}
