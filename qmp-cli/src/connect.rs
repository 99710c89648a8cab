//! Reaching the server: unix socket, TCP (with TLS), accept mode, or a QEMU of our own.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use qmp_api::workflow::{Launcher, QemuProcess};
use qmp_api::{Listener, Qmp};
use qmp_core::tls::rustls;
use qmp_core::ClientBuilder;

use crate::cli::ConnectOpts;

/// A connection, and the QEMU we started for it (with `--spawn`), stopped by
/// [`Session::close`] or, failing that, killed on drop.
pub struct Session {
    /// The connection.
    pub qmp: Qmp,
    /// Our own QEMU, with `--spawn`.
    pub process: Option<QemuProcess>,
    /// Keeps the `--listen` socket's listener (and so its file) until the end.
    _listener: Option<Listener>,
}

impl Session {
    /// Ends the session: quits our own QEMU (killing it if it does not exit), or closes the
    /// connection.
    pub async fn close(mut self) {
        match self.process.as_mut() {
            Some(p) => {
                if p.quit_and_wait().await.is_err() {
                    let _ = p.kill().await;
                }
            }
            None => self.qmp.close().await,
        }
    }
}

/// Why no connection could be made.
#[derive(Debug, thiserror::Error)]
pub enum ConnectFailure {
    /// Nothing says where the server is.
    #[error("no server given: pass -s SOCKET (or set QMP_SOCKET), --tcp HOST:PORT, --listen PATH or --spawn")]
    NoTarget,
    /// The connection or handshake failed (the message names the target and what to try,
    /// in `qmp`'s options).
    #[error("{}", cli_message(target, error))]
    Connect {
        /// What was tried.
        target: String,
        /// Why it failed.
        #[source]
        error: qmp_api::ConnectError,
    },
    /// Starting QEMU failed.
    #[error("cannot start QEMU: {0}")]
    Launch(#[source] qmp_api::workflow::LaunchError),
    /// A bad TLS setting or file.
    #[error("TLS: {0}")]
    Tls(String),
    /// Creating the listening socket failed.
    #[error("cannot listen on {path}: {error}")]
    Listen {
        /// The socket path.
        path: String,
        /// Why.
        error: String,
    },
}

fn timeout(opts: &ConnectOpts) -> Option<Duration> {
    (opts.timeout > 0.0 && opts.timeout.is_finite()).then(|| Duration::from_secs_f64(opts.timeout))
}

/// The client settings all connections share: the timeouts, and guest-agent mode.
pub fn client_builder(opts: &ConnectOpts) -> ClientBuilder {
    ClientBuilder::new()
        .timeout(timeout(opts))
        .command_timeout(timeout(opts))
        .guest_agent(opts.agent)
}

/// Connects as `opts` say; `qemu_args` are for `--spawn`.
///
/// # Errors
///
/// [`ConnectFailure`], naming the target and why.
pub async fn connect(opts: &ConnectOpts, qemu_args: &[String]) -> Result<Session, ConnectFailure> {
    let builder = qmp_api::QmpBuilder::from(client_builder(opts));
    let session = |qmp| Session {
        qmp,
        process: None,
        _listener: None,
    };
    if opts.spawn {
        let mut cmd = std::process::Command::new(&opts.qemu);
        let is_qsd = opts
            .qemu
            .file_name()
            .is_some_and(|n| n.to_string_lossy().contains("storage-daemon"));
        if qemu_args.is_empty() && !is_qsd {
            cmd.args(["-machine", "none", "-nodefaults", "-display", "none"]);
        } else {
            cmd.args(qemu_args);
        }
        let mut launcher = Launcher::new(cmd).client(client_builder(opts).guest_agent(false));
        if let Some(t) = timeout(opts) {
            launcher = launcher.connect_timeout(t).quit_timeout(t);
        }
        let (qmp, process) = launcher.launch().await.map_err(ConnectFailure::Launch)?;
        return Ok(Session {
            qmp,
            process: Some(process),
            _listener: None,
        });
    }
    if let Some(path) = &opts.listen {
        let listener = Listener::bind_unix(path).map_err(|e| ConnectFailure::Listen {
            path: path.display().to_string(),
            error: e.to_string(),
        })?;
        eprintln!(
            "waiting for QEMU to connect: -qmp {}",
            listener.qemu_qmp_arg()
        );
        let qmp = builder
            .accept(&listener)
            .await
            .map_err(|error| ConnectFailure::Connect {
                target: format!("QEMU connecting to {}", path.display()),
                error,
            })?;
        return Ok(Session {
            qmp,
            process: None,
            _listener: Some(listener),
        });
    }
    if let Some(addr) = &opts.tcp {
        let failed = |error| ConnectFailure::Connect {
            target: addr.clone(),
            error,
        };
        if opts.tls {
            let host = addr
                .rsplit_once(':')
                .map(|(h, _)| h.trim_matches(['[', ']']))
                .unwrap_or(addr);
            let name = opts.tls_name.clone().unwrap_or_else(|| host.to_string());
            let config = tls_config(opts)?;
            let qmp = builder
                .connect_tls(addr.as_str(), &name, config)
                .await
                .map_err(failed)?;
            return Ok(session(qmp));
        }
        let qmp = busy_note(builder.connect_tcp(addr.as_str()))
            .await
            .map_err(failed)?;
        return Ok(session(qmp));
    }
    if let Some(path) = &opts.socket {
        let qmp = busy_note(builder.connect_unix(path))
            .await
            .map_err(|error| ConnectFailure::Connect {
                target: path.display().to_string(),
                error,
            })?;
        return Ok(session(qmp));
    }
    Err(ConnectFailure::NoTarget)
}

fn tls_config(opts: &ConnectOpts) -> Result<Arc<rustls::ClientConfig>, ConnectFailure> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let bad = |what: &Path, e: &dyn std::fmt::Display| {
        ConnectFailure::Tls(format!("{}: {e}", what.display()))
    };
    let mut roots = rustls::RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(&opts.tls_ca).map_err(|e| bad(&opts.tls_ca, &e))?;
    for cert in certs {
        let cert = cert.map_err(|e| bad(&opts.tls_ca, &e))?;
        roots.add(cert).map_err(|e| bad(&opts.tls_ca, &e))?;
    }
    let builder = rustls::ClientConfig::builder().with_root_certificates(roots);
    let config = match (&opts.tls_cert, &opts.tls_key) {
        (Some(cert), Some(key)) => {
            let chain = CertificateDer::pem_file_iter(cert)
                .map_err(|e| bad(cert, &e))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| bad(cert, &e))?;
            let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| bad(key, &e))?;
            builder
                .with_client_auth_cert(chain, key_der)
                .map_err(|e| bad(cert, &e))?
        }
        _ => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

/// How long a connect may wait for the greeting before `qmp` says why it waits.
const BUSY_NOTE_AFTER: Duration = Duration::from_secs(2);

/// What a monitor held by another client means, in `qmp`'s terms.
const BUSY: &str = "the monitor is busy with another client (QEMU serves one client per -qmp \
                    socket): add a second -qmp socket (-qmp unix:PATH2,server=on,wait=off; \
                    qemu-storage-daemon: a second --chardev socket,... --monitor chardev=...) \
                    and point qmp at it, or close the other client";

/// Awaits a connect, saying on stderr (once) when the greeting is slow to come: QEMU queues
/// a second client silently until the first leaves.
async fn busy_note<T>(connect: impl std::future::Future<Output = T>) -> T {
    tokio::pin!(connect);
    tokio::select! {
        done = &mut connect => return done,
        _ = tokio::time::sleep(BUSY_NOTE_AFTER) => {
            eprintln!("qmp: no greeting yet; the monitor may be busy with another client (waiting until the timeout, --timeout SECONDS)");
        }
    }
    connect.await
}

/// A connect error in the command line's terms (its options, not the library's builder).
fn cli_message(target: &str, error: &qmp_api::ConnectError) -> String {
    use qmp_api::ConnectError as E;
    match error {
        E::Connect { target, error } if error.kind() == std::io::ErrorKind::WouldBlock => {
            format!("cannot connect to {target}: {BUSY}")
        }
        E::Connect { target, error } => format!(
            "cannot connect to {target}: {error}; is QEMU running with -qmp unix:PATH,server=on,wait=off \
             (or tcp:HOST:PORT,server=on,wait=off for --tcp)? For QEMU connecting to you use --listen PATH, \
             for a QEMU of your own --spawn"
        ),
        // The library's stage text speaks of its own API: say it in qmp's terms.
        E::Timeout { stage, after } if stage.starts_with("waiting for the QMP greeting") => {
            format!(
                "{target}: no QMP greeting within {after:?}: {BUSY} (a guest agent sends no \
                 greeting: use --agent)"
            )
        }
        E::Timeout { stage, after } => format!("{target}: timed out after {after:?} while {stage}"),
        E::ClosedBeforeGreeting => format!(
            "{target}: the server closed the connection before its greeting; {BUSY} (a guest \
             agent sends no greeting: use --agent)"
        ),
        other => format!("{target}: {other}"),
    }
}
