//! TLS for TCP connections (cargo feature `tls`), for QEMU monitors whose chardev has
//! `tls-creds=...` (a `tls-creds-x509` object).
//!
//! QMP itself has no authentication: over TCP, TLS is what keeps others from driving the VM.
//! Build a [`rustls::ClientConfig`] that trusts the CA that signed QEMU's server certificate
//! (and, if QEMU runs with `verify-peer=on`, carries a client certificate), then call
//! [`ClientBuilder::connect_tls`].
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use qmp_core::tls::rustls;
//! use rustls::pki_types::pem::PemObject;
//!
//! let mut roots = rustls::RootCertStore::empty();
//! for cert in rustls::pki_types::CertificateDer::pem_file_iter("/etc/pki/qemu/ca-cert.pem")? {
//!     roots.add(cert?)?;
//! }
//! let config = rustls::ClientConfig::builder()
//!     .with_root_certificates(roots)
//!     .with_no_client_auth();
//! let client = qmp_core::Client::builder()
//!     .connect_tls("vmhost.example:4444", "vmhost.example", Arc::new(config))
//!     .await?;
//! # Ok(()) }
//! ```

use std::sync::Arc;

use tokio::net::ToSocketAddrs;
pub use tokio_rustls::rustls;
use tokio_rustls::TlsConnector;

use crate::client::{Client, ClientBuilder};
use crate::error::ConnectError;
use crate::transport::Transport;

impl ClientBuilder {
    /// Connects over TCP, performs the TLS handshake (verifying the server's certificate for
    /// `server_name` against `config`'s roots), then the QMP handshake, all under the
    /// configured timeout. File descriptors cannot be passed over TLS.
    pub async fn connect_tls(
        self,
        addr: impl ToSocketAddrs,
        server_name: &str,
        config: Arc<rustls::ClientConfig>,
    ) -> Result<Client, ConnectError> {
        let name =
            rustls::pki_types::ServerName::try_from(server_name.to_string()).map_err(|e| {
                ConnectError::Tls {
                    target: server_name.to_string(),
                    error: std::io::Error::new(std::io::ErrorKind::InvalidInput, e),
                }
            })?;
        let wait = self.wait_for_server;
        self.within_timeout("connecting (TLS)", async move {
            let (tcp, target) = crate::client::connect_tcp(addr, wait).await?;
            let tls = TlsConnector::from(config)
                .connect(name, tcp)
                .await
                .map_err(|source| ConnectError::Tls {
                    target: target.clone(),
                    error: source,
                })?;
            tracing::debug!(peer = %target, "TLS established");
            Ok((Transport::Stream(Box::new(tls)), target))
        })
        .await
    }
}
