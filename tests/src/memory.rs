//! Memory measurement for fault tests: the process's resident set (RSS), and its peak since a
//! reset, read from `/proc/self/status`. Tests that measure run one at a time (see
//! [`exclusive`]) so that their figures are not mixed.

use tokio::sync::{Mutex, MutexGuard};

static EXCLUSIVE: Mutex<()> = Mutex::const_new(());

/// Holds the measurement lock: other measuring tests in this process wait. (An async lock:
/// each test has its own runtime, and the guard lives across its awaits.)
pub async fn exclusive() -> MutexGuard<'static, ()> {
    EXCLUSIVE.lock().await
}

fn status_kib(field: &str) -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<usize>().ok())
        .unwrap_or(0)
}

/// Resident memory now, in bytes.
pub fn rss() -> usize {
    status_kib("VmRSS:") * 1024
}

/// Peak resident memory since the last [`reset_peak`], in bytes.
pub fn peak() -> usize {
    status_kib("VmHWM:") * 1024
}

/// Restarts the peak measurement at the current resident size (Linux `clear_refs` value 5).
pub fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// Formats bytes as MiB with one decimal.
pub fn mib(bytes: usize) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}
