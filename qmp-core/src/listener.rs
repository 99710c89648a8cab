//! Accept mode: we listen, QEMU connects to us (`-qmp unix:PATH,server=off`).
//!
//! Bind the listener first, then start QEMU: the socket exists before QEMU looks for it, so
//! there is no start-up race and no polling for a socket file to appear.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use tokio::net::{TcpListener, UnixListener};

use crate::client::{Client, ClientBuilder};
use crate::error::{ConnectError, ListenError};
use crate::transport::Transport;

/// A socket QEMU connects to. Pass it to [`ClientBuilder::accept`] (or call
/// [`Listener::accept`]) to wait for the connection.
///
/// The same secure binding serves the other side of the wire: a
/// [`Server`](crate::server::Server) accepts QMP clients on it with
/// [`Server::listen`](crate::server::Server::listen).
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use qmp_core::Listener;
///
/// let listener = Listener::bind_unix("/run/vm0/qmp.sock")?;
/// let mut qemu = std::process::Command::new("qemu-system-x86_64")
///     .args(["-machine", "none", "-display", "none", "-qmp", &listener.qemu_qmp_arg()])
///     .spawn()?;
/// let client = listener.accept().await?;
/// println!("QEMU {} connected", client.greeting().version);
/// # qemu.kill()?; Ok(()) }
/// ```
pub struct Listener {
    kind: Kind,
}

enum Kind {
    Unix {
        /// A std listener until first used, so binding works outside a tokio runtime.
        std: Mutex<Option<std::os::unix::net::UnixListener>>,
        tokio: tokio::sync::OnceCell<UnixListener>,
        path: PathBuf,
    },
    Tcp(TcpListener),
}

impl Listener {
    /// Creates a unix socket at `path`, readable and writable by this user only (mode 0600).
    ///
    /// A stale socket at `path` is replaced; any other kind of file is never touched
    /// ([`ListenError::PathExists`]). The socket is created under a temporary name, restricted,
    /// then renamed into place, so it is never reachable with looser permissions. The socket
    /// file is removed when the listener is dropped.
    pub fn bind_unix(path: impl AsRef<Path>) -> Result<Listener, ListenError> {
        let path = path.as_ref().to_path_buf();
        let io_err = |source| ListenError::Io {
            target: path.display().to_string(),
            error: source,
        };
        match std::fs::symlink_metadata(&path) {
            Ok(meta) if meta.file_type().is_socket() => {
                std::fs::remove_file(&path).map_err(io_err)?
            }
            Ok(_) => {
                return Err(ListenError::PathExists {
                    path: path.display().to_string(),
                })
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(e)),
        }
        let tmp = temp_name(&path);
        let listener = std::os::unix::net::UnixListener::bind(&tmp).map_err(io_err)?;
        let placed = std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))
            .and_then(|()| std::fs::rename(&tmp, &path));
        if let Err(e) = placed {
            let _ = std::fs::remove_file(&tmp);
            return Err(io_err(e));
        }
        listener.set_nonblocking(true).map_err(io_err)?;
        Ok(Listener {
            kind: Kind::Unix {
                std: Mutex::new(Some(listener)),
                tokio: tokio::sync::OnceCell::new(),
                path,
            },
        })
    }

    /// Listens on a TCP address (QEMU: `-qmp tcp:HOST:PORT,server=off`). Use port 0 for any
    /// free port and read it back with [`local_addr`](Self::local_addr). Plain TCP has no
    /// authentication: bind to loopback.
    pub async fn bind_tcp(addr: impl tokio::net::ToSocketAddrs) -> Result<Listener, ListenError> {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| ListenError::Io {
                target: "TCP address".into(),
                error: source,
            })?;
        Ok(Listener {
            kind: Kind::Tcp(listener),
        })
    }

    /// The socket path, for unix listeners.
    pub fn path(&self) -> Option<&Path> {
        match &self.kind {
            Kind::Unix { path, .. } => Some(path),
            Kind::Tcp(_) => None,
        }
    }

    /// The bound address, for TCP listeners.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        match &self.kind {
            Kind::Unix { .. } => None,
            Kind::Tcp(l) => l.local_addr().ok(),
        }
    }

    /// The value for QEMU's `-qmp` option that makes it connect here, e.g.
    /// `unix:/run/vm0/qmp.sock,server=off`.
    pub fn qemu_qmp_arg(&self) -> String {
        match &self.kind {
            Kind::Unix { path, .. } => format!("unix:{},server=off", path.display()),
            Kind::Tcp(l) => match l.local_addr() {
                Ok(a) => format!("tcp:{}:{},server=off", a.ip(), a.port()),
                Err(_) => String::new(),
            },
        }
    }

    /// Waits for one connection and performs the handshake, with the default
    /// [`ClientBuilder`] settings.
    pub async fn accept(&self) -> Result<Client, ConnectError> {
        ClientBuilder::default().accept(self).await
    }

    pub(crate) async fn accept_transport(&self) -> Result<Transport, ConnectError> {
        self.accept_with_peer()
            .await
            .map(|(transport, _)| transport)
    }

    /// Waits for one connection; returns it with a description of the peer (the peer's
    /// process id on a unix socket, its address on TCP), for logs and for the server side.
    pub(crate) async fn accept_with_peer(&self) -> Result<(Transport, String), ConnectError> {
        let err = |source| ConnectError::Accept {
            target: self.to_string(),
            error: source,
        };
        match &self.kind {
            Kind::Unix { std, tokio, .. } => {
                let listener = tokio
                    .get_or_try_init(|| async {
                        let taken = std.lock().unwrap_or_else(|p| p.into_inner()).take();
                        match taken {
                            Some(l) => UnixListener::from_std(l),
                            None => Err(io::Error::other("listener lost")),
                        }
                    })
                    .await
                    .map_err(err)?;
                let (stream, _) = listener.accept().await.map_err(err)?;
                let peer = match stream.peer_cred().ok().and_then(|c| c.pid()) {
                    Some(pid) => format!("unix socket, pid {pid}"),
                    None => "unix socket".to_string(),
                };
                Ok((Transport::Unix(stream), peer))
            }
            Kind::Tcp(l) => {
                let (stream, addr) = l.accept().await.map_err(err)?;
                stream.set_nodelay(true).map_err(err)?;
                Ok((Transport::Tcp(stream), addr.to_string()))
            }
        }
    }
}

/// Accept mode lives here, next to the listener, so that the client module need not know it.
impl ClientBuilder {
    /// Waits for the server to connect to `listener` (QEMU: `-qmp unix:PATH,server=off`), then
    /// performs the handshake. The timeout covers the wait.
    pub async fn accept(self, listener: &Listener) -> Result<Client, ConnectError> {
        self.within_timeout("waiting for the server to connect", async {
            let transport = listener.accept_transport().await?;
            Ok((transport, listener.to_string()))
        })
        .await
    }
}

impl fmt::Display for Listener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::Unix { path, .. } => write!(f, "{}", path.display()),
            Kind::Tcp(l) => match l.local_addr() {
                Ok(a) => write!(f, "{a}"),
                Err(_) => f.write_str("TCP listener"),
            },
        }
    }
}

impl fmt::Debug for Listener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Listener({self})")
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Kind::Unix { path, .. } = &self.kind {
            if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_socket()) {
                let _ = std::fs::remove_file(path);
            }
        }
    }
}

/// A unique name next to `path` to bind before renaming into place.
fn temp_name(path: &Path) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let name = format!(".qmp-{}-{n}.tmp", std::process::id());
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.join(name),
        _ => PathBuf::from(name),
    }
}
