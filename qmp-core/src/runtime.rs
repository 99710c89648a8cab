//! The runtime that work started outside any tokio runtime runs on: one small background
//! thread (`qmp-blocking`), started on first use and kept for the life of the process.
//!
//! The synchronous facade (`qmp_api::blocking`) keeps its connections there, and a server
//! bound from a plain thread ([`ServerBuilder::bind_unix`](crate::server::ServerBuilder::bind_unix),
//! [`Server::listen`](crate::server::Server::listen)) serves from there, so synchronous
//! programs need no runtime of their own.
//!
//! ```
//! // From a plain thread: no runtime is current, so the shared one is used.
//! let handle = qmp_core::runtime::current_or_shared()?;
//! let answer = std::thread::spawn(move || handle.block_on(async { 6 * 7 })).join();
//! assert_eq!(answer.ok(), Some(42));
//! # Ok::<(), std::sync::Arc<std::io::Error>>(())
//! ```

use std::sync::{Arc, OnceLock};
use std::thread;

use tokio::runtime::Handle;

/// The shared background runtime, started on first use.
///
/// # Errors
///
/// The error of creating its event loop or its thread (the process is out of resources);
/// the same error on every later call.
pub fn shared() -> Result<&'static Handle, Arc<std::io::Error>> {
    static RUNTIME: OnceLock<Result<Handle, Arc<std::io::Error>>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let handle = runtime.handle().clone();
            thread::Builder::new()
                .name("qmp-blocking".into())
                .spawn(move || runtime.block_on(std::future::pending::<()>()))?;
            Ok(handle)
        })
        .as_ref()
        .map_err(Arc::clone)
}

/// The current tokio runtime if there is one, else the [shared](shared) one.
///
/// # Errors
///
/// Those of [`shared`], when there is no current runtime.
pub fn current_or_shared() -> Result<Handle, Arc<std::io::Error>> {
    match Handle::try_current() {
        Ok(handle) => Ok(handle),
        Err(_) => shared().cloned(),
    }
}
