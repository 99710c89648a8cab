//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The shared directory with the real QEMU schemas (`$QMP_SHARED_DIR`, else `../shared`
/// relative to the workspace root). `None` (after printing a skip line) when it is absent,
/// except under `CI=true`, where absence fails the test.
pub fn shared_dir(test: &str) -> Option<PathBuf> {
    let dir = match std::env::var_os("QMP_SHARED_DIR") {
        Some(d) => PathBuf::from(d),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared"),
    };
    if dir.join("qapi").is_dir() {
        return Some(dir);
    }
    let msg = format!("{}/qapi not found", dir.display());
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{test}: {msg} (required when CI=true; set QMP_SHARED_DIR)");
    }
    eprintln!("skipping {test}: {msg} (set QMP_SHARED_DIR to run it)");
    None
}

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A fresh temporary directory holding `files` (path relative to it, contents); removed on
/// drop.
pub struct TempTree {
    pub dir: PathBuf,
}

impl TempTree {
    pub fn new(files: &[(&str, &str)]) -> TempTree {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("qmp-codegen-test-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for (p, text) in files {
            let path = dir.join(p);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).expect("create temp dir");
            }
            std::fs::write(&path, text).expect("write temp file");
        }
        TempTree { dir }
    }

    pub fn path(&self, p: &str) -> PathBuf {
        self.dir.join(p)
    }
}

impl Drop for TempTree {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
