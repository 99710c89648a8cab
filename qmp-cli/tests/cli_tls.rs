//! `qmp --tcp --tls` against real QEMU 10.0.2 with a `tls-creds-x509` monitor, certificates
//! generated here: a trusted server, an untrusted one, and a client certificate for
//! `verify-peer=on`.

// Certificates are generated here, in the test: unwrapping their construction is fine.
#![allow(clippy::unwrap_used)]

use std::process::{Command, Stdio};

use qmp_tests::tls::{start_qemu, Pki};
use qmp_tests::TempDir;

const QMP: &str = env!("CARGO_BIN_EXE_qmp");

fn qmp(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(QMP)
        .args(args)
        .env_remove("QMP_SOCKET")
        .stdin(Stdio::null())
        .output()
        .expect("run qmp");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn tls_with_a_trusted_ca_an_untrusted_one_and_a_client_certificate() {
    let dir = TempDir::new();
    let authority = Pki::new("qmp test CA");
    authority.write(&["localhost", "127.0.0.1"], dir.path(), "server");
    let Some((qemu, port)) = start_qemu(dir.path(), false) else {
        return;
    };
    let addr = format!("127.0.0.1:{port}");
    let ca_file = dir.join("ca-cert.pem");
    let ca_arg = ca_file.to_str().unwrap();
    let (code, out, err) = qmp(&[
        "--tcp",
        &addr,
        "--tls",
        "--tls-ca",
        ca_arg,
        "--tls-name",
        "localhost",
        "query-status",
    ]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(out.trim(), r#"{"running":true,"status":"running"}"#);
    // The name defaults to the host of --tcp (the certificate has 127.0.0.1 too).
    let (code, _, err) = qmp(&["--tcp", &addr, "--tls", "--tls-ca", ca_arg, "query-version"]);
    assert_eq!(code, Some(0), "{err}");

    // Another CA: the handshake fails, exit status 3, with rustls' reason.
    let other = dir.join("other-ca.pem");
    std::fs::write(&other, Pki::new("another CA").ca.pem()).unwrap();
    let (code, out, err) = qmp(&[
        "--tcp",
        &addr,
        "--tls",
        "--tls-ca",
        other.to_str().unwrap(),
        "query-status",
    ]);
    assert_eq!(code, Some(3), "{err}");
    assert_eq!(out, "");
    assert!(err.contains("TLS handshake"), "{err}");
    // A CA file that is missing: named in the error.
    let (code, _, err) = qmp(&[
        "--tcp",
        &addr,
        "--tls",
        "--tls-ca",
        "/nonexistent.pem",
        "query-status",
    ]);
    assert_eq!(code, Some(3), "{err}");
    assert!(err.contains("/nonexistent.pem"), "{err}");
    drop(qemu);

    // verify-peer=on: a client certificate from the same CA.
    let dir2 = TempDir::new();
    authority.write(&["localhost"], dir2.path(), "server");
    authority.write(&["client"], dir2.path(), "client");
    let Some((_qemu, port)) = start_qemu(dir2.path(), true) else {
        return;
    };
    let addr = format!("127.0.0.1:{port}");
    let ca_file = dir2.join("ca-cert.pem");
    let cert = dir2.join("client-cert.pem");
    let key = dir2.join("client-key.pem");
    let (code, out, err) = qmp(&[
        "--tcp",
        &addr,
        "--tls",
        "--tls-ca",
        ca_file.to_str().unwrap(),
        "--tls-name",
        "localhost",
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
        "query-status",
    ]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("running"), "{out}");
}
