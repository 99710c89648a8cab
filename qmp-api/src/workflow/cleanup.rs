//! Best-effort clean-up from `Drop`: runs async work on the current tokio runtime.

use std::future::Future;

/// Spawns `work` on the current runtime. Returns false (after a warning) when there is none,
/// e.g. a handle dropped outside any runtime: the work then does not happen.
pub(crate) fn spawn(what: &str, work: impl Future<Output = ()> + Send + 'static) -> bool {
    match tokio::runtime::Handle::try_current() {
        Ok(runtime) => {
            runtime.spawn(work);
            true
        }
        Err(_) => {
            tracing::warn!(
                "{what}: dropped outside a tokio runtime, the clean-up could not be started"
            );
            false
        }
    }
}
