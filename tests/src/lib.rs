//! Shared fixtures for the integration tests: a QEMU launcher ([`qemu`]), a scripted mock QMP
//! server ([`mock`]), a raw byte-level QMP peer for server tests ([`wire`]), memory measurement
//! ([`memory`]), and small helpers every test uses.
//!
//! Tests that need QEMU or the shared schema corpus skip (with a message) when it is missing,
//! except under `CI=true`, where a missing dependency fails the test: CI must never pass
//! without having run them.

pub mod memory;
pub mod mock;
pub mod qemu;
pub mod wire;

use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// True when running in CI (`CI=true`), where skipping is not allowed.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Skips the current test with a message, or fails it in CI.
pub fn skip_or_fail(what: &str) {
    if in_ci() {
        panic!("{what} (required under CI=true)");
    }
    eprintln!("skipping: {what}");
}

/// Runs `fut` under a deadline; a test that hangs fails with a clear message instead.
pub async fn within<T>(secs: u64, fut: impl Future<Output = T>) -> T {
    match tokio::time::timeout(Duration::from_secs(secs), fut).await {
        Ok(v) => v,
        Err(_) => panic!("test step did not finish within {secs} s"),
    }
}

/// The shared test data directory (`../shared` next to the workspace, or `$QMP_SHARED_DIR`).
/// `None` (after a skip message, or a CI failure) when absent.
pub fn shared_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("QMP_SHARED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared"));
    if dir.join("qapi").is_dir() {
        Some(dir)
    } else {
        skip_or_fail(&format!("shared test data not found at {}", dir.display()));
        None
    }
}

/// A temporary directory removed on drop. Socket paths must stay short (108 bytes), so it
/// lives directly under the system temp dir.
pub struct TempDir(PathBuf);

impl TempDir {
    /// Creates a fresh directory, private to this user.
    pub fn new() -> TempDir {
        static N: AtomicU64 = AtomicU64::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("qmpt-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create temp dir");
        TempDir(path)
    }

    /// A path inside the directory.
    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    /// The directory.
    pub fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Default for TempDir {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
