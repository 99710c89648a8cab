//! Runs the generator's independent pieces on a few threads.
//!
//! A build script runs unoptimized, and formatting QEMU's schema (about 100,000 lines) is most
//! of its run: done on two threads, it takes half the time on the critical path of a user's
//! build. Results come back in the pieces' order whatever the threads did, so the output does
//! not depend on the thread count.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use super::EmitError;

/// At most this many threads: the pieces are few, and a build has other jobs to run.
const MAX_THREADS: usize = 4;

/// Each thread's stack, as big as a main thread's: `syn` recurses on nested expressions.
const STACK_SIZE: usize = 8 << 20;

/// Calls `f` on every item, on up to `threads` threads, taking the items in the order of
/// `order` (indices into `items`; the longest first keeps the threads busy until the end).
/// Returns the results in `items` order, or the error of the first item (in `items` order)
/// that failed.
pub(crate) fn run<T, R>(
    items: &[T],
    order: &[usize],
    threads: usize,
    f: impl Fn(&T) -> Result<R, EmitError> + Sync,
) -> Result<Vec<R>, EmitError>
where
    T: Sync,
    R: Send,
{
    let results: Vec<Mutex<Option<Result<R, EmitError>>>> =
        items.iter().map(|_| Mutex::new(None)).collect();
    let next = AtomicUsize::new(0);
    let work = || {
        while let Some(&i) = order.get(next.fetch_add(1, Ordering::Relaxed)) {
            let result = f(&items[i]);
            if let Ok(mut slot) = results[i].lock() {
                *slot = Some(result);
            }
        }
    };
    let threads = threads.min(items.len());
    if threads <= 1 {
        work();
    } else {
        std::thread::scope(|s| {
            for _ in 1..threads {
                let spawned = std::thread::Builder::new()
                    .name("qmp-codegen".into())
                    .stack_size(STACK_SIZE)
                    .spawn_scoped(s, work);
                if spawned.is_err() {
                    // No thread to be had: the ones running (this one at least) do the rest.
                    break;
                }
            }
            work();
        });
    }
    let mut out = Vec::with_capacity(items.len());
    for (i, slot) in results.into_iter().enumerate() {
        let result = slot.into_inner().ok().flatten();
        match result {
            Some(r) => out.push(r?),
            // Only if `order` left an item out, which the caller does not do.
            None => return Err(EmitError::Model(format!("piece {i} was never generated"))),
        }
    }
    Ok(out)
}

/// How many threads to use: cargo's job count for build scripts (`NUM_JOBS`), else the
/// machine's parallelism; at most [`MAX_THREADS`].
pub(crate) fn threads() -> usize {
    let jobs = std::env::var("NUM_JOBS")
        .ok()
        .and_then(|n| n.parse::<usize>().ok())
        .or_else(|| std::thread::available_parallelism().ok().map(|n| n.get()))
        .unwrap_or(1);
    jobs.clamp(1, MAX_THREADS)
}
