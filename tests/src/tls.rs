//! TLS fixtures: a certificate authority that issues certificates (rcgen), and QEMU 10.0.2
//! with a TLS-protected QMP monitor (`tls-creds-x509`) on a free loopback port.

use std::net::TcpListener;
use std::path::Path;
use std::time::{Duration, Instant};

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};

use crate::qemu::{Kind, Qemu};

/// A certificate authority made for one test.
pub struct Pki {
    /// The CA: its certificate (`ca.pem()`, `ca.der()`) and signing key.
    pub ca: CertifiedIssuer<'static, KeyPair>,
}

/// A certificate the [`Pki`] signed, with its key, in PEM and DER.
pub struct Issued {
    /// The certificate, PEM.
    pub cert_pem: String,
    /// Its private key, PEM.
    pub key_pem: String,
    /// The certificate, DER.
    pub cert_der: Vec<u8>,
    /// Its private key, DER (PKCS#8).
    pub key_der: Vec<u8>,
}

impl Pki {
    /// A self-signed CA with common name `name`.
    pub fn new(name: &str) -> Pki {
        let mut params =
            CertificateParams::new(Vec::<String>::new()).expect("CA certificate parameters");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let key = KeyPair::generate().expect("CA key");
        let ca = CertifiedIssuer::self_signed(params, key).expect("self-signed CA");
        Pki { ca }
    }

    /// A certificate for `names` (DNS names or IP addresses), signed by the CA.
    pub fn issue(&self, names: &[&str]) -> Issued {
        let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        let mut params = CertificateParams::new(names).expect("certificate parameters");
        params
            .distinguished_name
            .push(DnType::CommonName, "qmp test");
        let key = KeyPair::generate().expect("key");
        let cert = params
            .signed_by(&key, &self.ca)
            .expect("signed certificate");
        Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            cert_der: cert.der().to_vec(),
            key_der: key.serialize_der(),
        }
    }

    /// Writes, as QEMU's `tls-creds-x509` reads a directory: the CA as `ca-cert.pem`, and a
    /// certificate for `names` as `{prefix}-cert.pem` and `{prefix}-key.pem` (`server`, or
    /// `client` for a client's credentials).
    pub fn write(&self, names: &[&str], dir: &Path, prefix: &str) {
        let issued = self.issue(names);
        let write = |file: String, text: &str| {
            let path = dir.join(file);
            std::fs::write(&path, text)
                .unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
        };
        write("ca-cert.pem".into(), &self.ca.pem());
        write(format!("{prefix}-cert.pem"), &issued.cert_pem);
        write(format!("{prefix}-key.pem"), &issued.key_pem);
    }
}

/// Starts QEMU 10.0.2 with a QMP monitor behind TLS on a free loopback port, its credentials
/// read from `dir` (see [`Pki::write`]); `verify_peer` asks clients for a certificate. Waits
/// until the port accepts connections. `None` when QEMU is not installed (after the skip
/// message, or a failure under `CI=true`).
pub fn start_qemu(dir: &Path, verify_peer: bool) -> Option<(Qemu, u16)> {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
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
