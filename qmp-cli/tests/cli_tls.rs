//! `qmp --tcp --tls` against real QEMU 10.0.2 with a `tls-creds-x509` monitor, certificates
//! generated here: a trusted server, an untrusted one, and a client certificate for
//! `verify-peer=on`.

// Certificates are generated here, in the test: unwrapping their construction is fine.
#![allow(clippy::unwrap_used)]

use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use qmp_tests::qemu::{Kind, Qemu};
use qmp_tests::TempDir;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};

const QMP: &str = env!("CARGO_BIN_EXE_qmp");

fn ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
}

/// Writes a certificate for `names` signed by `ca` as `{prefix}-cert.pem` and
/// `{prefix}-key.pem` in `dir`.
fn issue(ca: &CertifiedIssuer<'static, KeyPair>, names: &[&str], dir: &Path, prefix: &str) {
    let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    let mut params = CertificateParams::new(names).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, "qmp test");
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, ca).unwrap();
    std::fs::write(dir.join(format!("{prefix}-cert.pem")), cert.pem()).unwrap();
    std::fs::write(dir.join(format!("{prefix}-key.pem")), key.serialize_pem()).unwrap();
}

fn start(dir: &Path, verify_peer: bool) -> Option<(Qemu, u16)> {
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
    let authority = ca("qmp test CA");
    std::fs::write(dir.join("ca-cert.pem"), authority.pem()).unwrap();
    issue(
        &authority,
        &["localhost", "127.0.0.1"],
        dir.path(),
        "server",
    );
    let Some((qemu, port)) = start(dir.path(), false) else {
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
    std::fs::write(&other, ca("another CA").pem()).unwrap();
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
    std::fs::write(dir2.join("ca-cert.pem"), authority.pem()).unwrap();
    issue(&authority, &["localhost"], dir2.path(), "server");
    issue(&authority, &["client"], dir2.path(), "client");
    let Some((_qemu, port)) = start(dir2.path(), true) else {
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
