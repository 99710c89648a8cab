//! Running a migration to its end: [`Migration`] and [`RunningMigration`].
//!
//! The state machine (`MIGRATION` events, `status` of `query-migrate`):
//!
//! ```text
//! none -> setup -> active -> [pre-switchover] -> device -> completed
//!                    |-> (wait-unplug)                  `-> failed
//!                    `-> cancelling -> cancelled  (migrate_cancel)
//! incoming side:  setup -> active -> completed | failed
//! ```
//!
//! `MIGRATION` events are only sent with the `events` capability, which the runner enables
//! (on both sides) before starting. Each `MIGRATION_PASS` event counts a pass over RAM. While a
//! progress receiver exists, `query-migrate` is polled for the byte counts; a terminal status
//! seen by a poll ends the run as the event would (so a missed event cannot hang it). At
//! `pre-switchover` (capability `pause-before-switchover`) the runner continues at once with
//! `migrate-continue`. Postcopy is not driven by the runner.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::cleanup;
use crate::stream::EventStream;
use crate::types::{
    MigrationCapability, MigrationCapabilityStatus, MigrationInfo, MigrationStatus, SocketAddress,
};
use crate::{DisconnectReason, Event, EventError, EventKind, ExecuteError, Qmp};

/// How long cancelling (after a timeout, or from a dropped handle) may take.
const CANCEL_GRACE: Duration = Duration::from_secs(30);

/// Where a migration is: its status and the RAM counters of `query-migrate` (bytes).
///
/// ```no_run
/// # async fn demo(qmp: qmp_api::Qmp) -> Result<(), Box<dyn std::error::Error>> {
/// let migration = qmp_api::workflow::Migration::new(&qmp);
/// let mut progress = migration.progress();
/// tokio::spawn(async move {
///     while progress.changed().await.is_ok() {
///         let p = progress.borrow_and_update().clone();
///         println!("{}: {} sent, {} to go, pass {}", p.status, p.transferred, p.remaining, p.passes);
///     }
/// });
/// migration.run("tcp:10.0.0.2:4444").await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct MigrationProgress {
    /// The migration status (`None` before it starts).
    pub status: MigrationStatus,
    /// RAM bytes sent so far (`ram.transferred`; outgoing side).
    pub transferred: u64,
    /// RAM bytes still to send in this pass (`ram.remaining`).
    pub remaining: u64,
    /// Guest RAM size in bytes (`ram.total`).
    pub total: u64,
    /// Passes over RAM started so far (`MIGRATION_PASS` events, or `ram.dirty-sync-count`).
    pub passes: u64,
    /// Throughput of the last interval, in megabits per second (`ram.mbps`).
    pub mbps: f64,
    /// Time since the migration started, as QEMU measures it (`total-time`).
    pub elapsed: Duration,
}

impl Default for MigrationProgress {
    fn default() -> Self {
        MigrationProgress {
            status: MigrationStatus::None,
            transferred: 0,
            remaining: 0,
            total: 0,
            passes: 0,
            mbps: 0.0,
            elapsed: Duration::ZERO,
        }
    }
}

impl MigrationProgress {
    fn update(&mut self, info: &MigrationInfo) {
        if let Some(status) = &info.status {
            self.status = status.clone();
        }
        if let Some(ram) = &info.ram {
            self.transferred = ram.transferred.max(0) as u64;
            self.remaining = ram.remaining.max(0) as u64;
            self.total = ram.total.max(0) as u64;
            self.mbps = ram.mbps;
            self.passes = self.passes.max(ram.dirty_sync_count.max(0) as u64);
        }
        if let Some(ms) = info.total_time {
            self.elapsed = Duration::from_millis(ms.max(0) as u64);
        }
    }
}

/// How a migration ended, when it ended as asked.
///
/// ```no_run
/// # async fn demo(qmp: qmp_api::Qmp) -> Result<(), qmp_api::workflow::MigrationError> {
/// let report = qmp_api::workflow::Migration::new(&qmp).run("unix:/run/vm0/mig.sock").await?;
/// println!(
///     "{} bytes in {} passes; guest stopped for {:?}",
///     report.progress.transferred, report.progress.passes, report.downtime
/// );
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct MigrationReport {
    /// True when it was cancelled on request ([`RunningMigration::cancel`]).
    pub cancelled: bool,
    /// The final counters (`query-migrate` at the end).
    pub progress: MigrationProgress,
    /// How long the guest was stopped at the switch-over (`downtime`; outgoing side).
    pub downtime: Option<Duration>,
    /// From the start command to the end, as measured here.
    pub elapsed: Duration,
}

/// Why a migration did not end as asked.
///
/// ```no_run
/// # async fn demo(qmp: qmp_api::Qmp) {
/// use qmp_api::workflow::{Migration, MigrationError};
///
/// match Migration::new(&qmp).run("file:/var/lib/vm0/state").await {
///     Ok(report) => println!("saved {} bytes", report.progress.transferred),
///     // QEMU refused at once, e.g. "Could not create '...': No such file or directory"
///     Err(MigrationError::Start { error, .. }) => eprintln!("{error}"),
///     // QEMU's error-desc, e.g. "Unable to write to command: Broken pipe"
///     Err(MigrationError::Failed { error }) => eprintln!("{error}"),
///     Err(other) => eprintln!("{other}"),
/// }
/// # }
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MigrationError {
    /// `migrate-set-capabilities` failed (a migration already running, an unknown capability
    /// on this QEMU...).
    #[error("setting migration capabilities: {0}")]
    Capabilities(ExecuteError),
    /// QEMU refused to start the migration (`migrate` / `migrate-incoming` failed: a URI it
    /// cannot use, a file it cannot open...).
    #[error("starting the migration to {uri}: {error}")]
    Start {
        /// The URI.
        uri: String,
        /// QEMU's error.
        error: ExecuteError,
    },
    /// The migration failed; `error` is QEMU's `error-desc`.
    #[error("migration failed: {error}")]
    Failed {
        /// QEMU's description of the failure.
        error: String,
    },
    /// The migration was cancelled by another client.
    #[error("the migration was cancelled by another client")]
    Cancelled,
    /// The migration did not end in time. An outgoing one was cancelled (`migrate_cancel`);
    /// an incoming one cannot be, and goes on until the source stops or the process ends.
    #[error("the migration did not finish within {after:?} ({:?}, {} of {} bytes sent){}", progress.status, progress.transferred, progress.total, if *cancelled { "; it was cancelled" } else { "" })]
    Timeout {
        /// The timeout.
        after: Duration,
        /// The progress when it hit.
        progress: MigrationProgress,
        /// Whether the migration was cancelled and reached `cancelled`.
        cancelled: bool,
    },
    /// An incoming migration cannot be cancelled with this runner: stop the source, or end
    /// the destination process.
    #[error("an incoming migration cannot be cancelled from the destination; cancel it on the source or stop the destination QEMU")]
    IncomingNotCancellable,
    /// A command the runner sent (`query-migrate`, `migrate_cancel`, `migrate-continue`)
    /// failed.
    #[error("{0}")]
    Command(ExecuteError),
    /// The task following the migration was stopped before the end (its runtime is shutting
    /// down).
    #[error("the task following the migration was stopped before the end")]
    Aborted,
    /// The connection ended while the migration was followed (QEMU exited or was killed).
    #[error("the connection ended while following the migration ({0}); its outcome is unknown")]
    Disconnected(Arc<DisconnectReason>),
    /// A blocking wait ([`crate::blocking`]) inside an async task: nothing was sent.
    #[error(transparent)]
    Blocking(#[from] crate::BlockingError),
}

/// Runs a migration, outgoing ([`run`](Self::run), [`start`](Self::start)) or incoming
/// ([`run_incoming`](Self::run_incoming), [`start_incoming`](Self::start_incoming), for a
/// QEMU started with `-incoming defer`), to `completed` or `failed`.
///
/// Before starting, it enables the `events` capability (and any set with
/// [`capability`](Self::capability)); set migration *parameters* (bandwidth, downtime) with
/// `migrate-set-parameters` yourself. URIs are QEMU's: `unix:PATH`, `tcp:HOST:PORT`,
/// `exec:COMMAND`, `file:PATH` (QEMU 8.2 and later).
///
/// - **Progress**: [`progress`](Self::progress) is a `watch` receiver of
///   [`MigrationProgress`]; while one exists, `query-migrate` is polled every
///   [`progress_interval`](Self::progress_interval).
/// - **Timeout** ([`timeout`](Self::timeout), none by default): an outgoing migration is
///   cancelled; [`MigrationError::Timeout`].
/// - **Dropping** a [`RunningMigration`] (or the future of [`run`](Self::run)) before the
///   end cancels an outgoing migration (`migrate_cancel` from a task on the current runtime).
///
/// ```no_run
/// # async fn demo(source: qmp_api::Qmp, destination: qmp_api::Qmp) -> Result<(), Box<dyn std::error::Error>> {
/// use qmp_api::workflow::Migration;
///
/// // The destination was started with `-incoming defer`.
/// let incoming = Migration::new(&destination).start_incoming("unix:/run/vm0/migrate.sock").await?;
/// let report = Migration::new(&source).run("unix:/run/vm0/migrate.sock").await?;
/// incoming.wait().await?;
/// println!("{} bytes in {:?}, downtime {:?}", report.progress.transferred, report.elapsed, report.downtime);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Migration {
    qmp: Qmp,
    timeout: Option<Duration>,
    interval: Duration,
    capabilities: Vec<MigrationCapabilityStatus>,
    exit_on_error: Option<bool>,
    progress: watch::Sender<MigrationProgress>,
}

impl Migration {
    /// A runner on this connection.
    pub fn new(qmp: &Qmp) -> Migration {
        Migration {
            qmp: qmp.clone(),
            timeout: None,
            interval: Duration::from_millis(500),
            capabilities: Vec::new(),
            exit_on_error: None,
            progress: watch::Sender::new(MigrationProgress::default()),
        }
    }

    /// Sets a migration capability before starting (besides `events`, always enabled). Both
    /// sides usually need the same capabilities.
    pub fn capability(mut self, capability: MigrationCapability, state: bool) -> Self {
        self.capabilities
            .push(MigrationCapabilityStatus::new(capability, state));
        self
    }

    /// Incoming side, QEMU 9.1 and later: whether the destination QEMU exits when the
    /// migration fails (`exit-on-error` of `migrate-incoming`; QEMU's default: it exits, and
    /// the runner may then only see the connection end). Not sent unless set: older QEMU
    /// refuses the argument.
    pub fn exit_on_error(mut self, exit: bool) -> Self {
        self.exit_on_error = Some(exit);
        self
    }

    /// Gives up when the migration has not ended this long after it started (default: no
    /// limit); see [`MigrationError::Timeout`].
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// How often `query-migrate` is polled while a progress receiver exists (default 500 ms,
    /// at least 10 ms).
    pub fn progress_interval(mut self, interval: Duration) -> Self {
        self.interval = interval.max(Duration::from_millis(10));
        self
    }

    /// A receiver of the migration's progress. The sender is dropped when the run ends.
    pub fn progress(&self) -> watch::Receiver<MigrationProgress> {
        self.progress.subscribe()
    }

    /// Starts an outgoing migration to `uri` and follows it to the end.
    ///
    /// # Errors
    ///
    /// [`MigrationError`]: capabilities or start refused, the migration failed (with QEMU's
    /// `error-desc`), was cancelled elsewhere, timed out, or QEMU went away.
    pub async fn run(self, uri: impl Into<String>) -> Result<MigrationReport, MigrationError> {
        self.start(uri).await?.wait().await
    }

    /// Starts an outgoing migration to `uri` and returns once QEMU accepted it.
    ///
    /// # Errors
    ///
    /// [`MigrationError::Capabilities`] or [`MigrationError::Start`].
    pub async fn start(self, uri: impl Into<String>) -> Result<RunningMigration, MigrationError> {
        let uri = uri.into();
        let mut follower = self.prepare(Direction::Outgoing).await?;
        if let Err(error) = follower.qmp.migrate().uri(&uri).await {
            follower.guard.armed = false;
            return Err(MigrationError::Start { uri, error });
        }
        Ok(follower.spawn(Vec::new()))
    }

    /// Starts listening for an incoming migration on `uri` (`migrate-incoming`; the QEMU must
    /// have been started with `-incoming defer`) and follows it to the end.
    ///
    /// # Errors
    ///
    /// As [`run`](Self::run).
    pub async fn run_incoming(
        self,
        uri: impl Into<String>,
    ) -> Result<MigrationReport, MigrationError> {
        self.start_incoming(uri).await?.wait().await
    }

    /// Starts listening for an incoming migration on `uri` and returns once QEMU listens, so
    /// the source can be started. With `tcp:HOST:0`, read the port QEMU chose from
    /// [`RunningMigration::listening_on`].
    ///
    /// # Errors
    ///
    /// [`MigrationError::Capabilities`] or [`MigrationError::Start`] (e.g. a QEMU not started
    /// with `-incoming defer`).
    pub async fn start_incoming(
        self,
        uri: impl Into<String>,
    ) -> Result<RunningMigration, MigrationError> {
        let uri = uri.into();
        let exit_on_error = self.exit_on_error;
        let follower = self.prepare(Direction::Incoming).await?;
        let mut call = follower.qmp.migrate_incoming().uri(&uri);
        if let Some(exit) = exit_on_error {
            call = call.exit_on_error(exit);
        }
        if let Err(error) = call.await {
            return Err(MigrationError::Start { uri, error });
        }
        let info = follower.query().await?;
        follower.progress.send_modify(|p| p.update(&info));
        Ok(follower.spawn(info.socket_address.unwrap_or_default()))
    }

    async fn prepare(self, direction: Direction) -> Result<Follower, MigrationError> {
        // Before anything: every event of this migration reaches the stream.
        let events = self
            .qmp
            .subscribe([EventKind::Migration, EventKind::MigrationPass]);
        let mut capabilities = vec![MigrationCapabilityStatus::new(
            MigrationCapability::Events,
            true,
        )];
        capabilities.extend(self.capabilities);
        self.qmp
            .migrate_set_capabilities(capabilities)
            .await
            .map_err(MigrationError::Capabilities)?;
        Ok(Follower {
            guard: CancelGuard {
                qmp: self.qmp.clone(),
                armed: direction == Direction::Outgoing,
            },
            qmp: self.qmp,
            events,
            direction,
            timeout: self.timeout,
            interval: self.interval,
            progress: Arc::new(self.progress),
            started: Instant::now(),
            cancel_requested: Arc::new(AtomicBool::new(false)),
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    Outgoing,
    Incoming,
}

/// A migration QEMU has accepted; [`wait`](RunningMigration::wait) for its end or
/// [`cancel`](RunningMigration::cancel) it.
///
/// A task on the current runtime follows the migration from the start, so
/// [`progress`](Self::progress) moves whether or not anyone waits yet. Dropped before the end,
/// the handle stops that task and an outgoing migration is cancelled.
///
/// ```no_run
/// # async fn demo(qmp: qmp_api::Qmp) -> Result<(), Box<dyn std::error::Error>> {
/// use qmp_api::workflow::Migration;
///
/// let migration = Migration::new(&qmp).start("exec:gzip -c > /var/lib/vm0/state.gz").await?;
/// let mut progress = migration.progress();
/// progress.changed().await?;
/// if progress.borrow().passes > 10 {
///     migration.cancel().await?; // not converging
/// } else {
///     migration.wait().await?;
/// }
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct RunningMigration {
    qmp: Qmp,
    direction: Direction,
    progress: Arc<watch::Sender<MigrationProgress>>,
    cancel_requested: Arc<AtomicBool>,
    listening_on: Vec<SocketAddress>,
    task: Option<tokio::task::JoinHandle<Result<MigrationReport, MigrationError>>>,
}

impl RunningMigration {
    /// A receiver of the migration's progress (see [`Migration::progress`]). It closes when
    /// the migration has ended and this handle is gone.
    pub fn progress(&self) -> watch::Receiver<MigrationProgress> {
        self.progress.subscribe()
    }

    /// For an incoming migration: the addresses QEMU listens on (`socket-address` of
    /// `query-migrate`; with `tcp:HOST:0`, the port it chose). Empty for outgoing
    /// migrations and for URIs without a socket (`exec:`, `file:`).
    pub fn listening_on(&self) -> &[SocketAddress] {
        &self.listening_on
    }

    /// Waits for the end: `completed` is a report, anything else an error.
    ///
    /// # Errors
    ///
    /// As [`Migration::run`].
    pub async fn wait(mut self) -> Result<MigrationReport, MigrationError> {
        let Some(task) = self.task.take() else {
            return Err(MigrationError::Aborted);
        };
        match task.await {
            Ok(result) => result,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => Err(MigrationError::Aborted),
        }
    }

    /// Cancels an outgoing migration (`migrate_cancel`) and waits for it to end. Returns a
    /// report with `cancelled: true`, or `false` when it completed before the cancel took
    /// effect.
    ///
    /// # Errors
    ///
    /// [`MigrationError::IncomingNotCancellable`] on the destination; otherwise as
    /// [`wait`](Self::wait) (a migration that failed meanwhile is
    /// [`MigrationError::Failed`]).
    pub async fn cancel(self) -> Result<MigrationReport, MigrationError> {
        if self.direction == Direction::Incoming {
            return Err(MigrationError::IncomingNotCancellable);
        }
        self.cancel_requested.store(true, Ordering::Relaxed);
        if let Err(error) = self.qmp.migrate_cancel().await {
            return Err(command_error(error));
        }
        self.wait().await
    }
}

impl Drop for RunningMigration {
    fn drop(&mut self) {
        // Dropping the follower (in its task) arms the cancel of an outgoing migration.
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Follows one migration, in a task of its own.
#[derive(Debug)]
struct Follower {
    qmp: Qmp,
    events: EventStream,
    direction: Direction,
    timeout: Option<Duration>,
    interval: Duration,
    progress: Arc<watch::Sender<MigrationProgress>>,
    started: Instant,
    cancel_requested: Arc<AtomicBool>,
    guard: CancelGuard,
}

impl Follower {
    fn spawn(self, listening_on: Vec<SocketAddress>) -> RunningMigration {
        let qmp = self.qmp.clone();
        let direction = self.direction;
        let progress = self.progress.clone();
        let cancel_requested = self.cancel_requested.clone();
        RunningMigration {
            qmp,
            direction,
            progress,
            cancel_requested,
            listening_on,
            task: Some(tokio::spawn(self.run())),
        }
    }

    fn cancel_requested(&self) -> bool {
        self.cancel_requested.load(Ordering::Relaxed)
    }

    /// Follows to the end, under the timeout.
    async fn run(mut self) -> Result<MigrationReport, MigrationError> {
        let Some(after) = self.timeout else {
            return self.follow().await;
        };
        match tokio::time::timeout(after, self.follow()).await {
            Ok(result) => result,
            Err(_) => {
                let progress = self.progress.borrow().clone();
                let cancelled = match self.direction {
                    Direction::Incoming => false,
                    Direction::Outgoing => {
                        tracing::warn!(?after, "migration timed out; cancelling it");
                        self.cancel_requested.store(true, Ordering::Relaxed);
                        self.qmp.migrate_cancel().await.is_ok()
                            && matches!(
                                tokio::time::timeout(CANCEL_GRACE, self.follow()).await,
                                Ok(Ok(MigrationReport {
                                    cancelled: true,
                                    ..
                                }))
                            )
                    }
                };
                Err(MigrationError::Timeout {
                    after,
                    progress,
                    cancelled,
                })
            }
        }
    }

    async fn follow(&mut self) -> Result<MigrationReport, MigrationError> {
        let mut ticker = tokio::time::interval(self.interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let watched = self.progress.receiver_count() > 0;
            let status = tokio::select! {
                biased;
                item = self.events.next() => match item {
                    Some(Ok(received)) => match received.event {
                        Event::Migration(m) => m.status,
                        Event::MigrationPass(pass) => {
                            let n = pass.pass.max(0) as u64;
                            self.progress.send_modify(|p| p.passes = p.passes.max(n));
                            continue;
                        }
                        _ => continue,
                    },
                    Some(Err(EventError::Missed { count })) => {
                        tracing::warn!(count, "migration events missed; reading the status");
                        match self.query().await?.status {
                            Some(status) => status,
                            None => continue,
                        }
                    }
                    Some(Err(EventError::Decode(error))) => {
                        tracing::warn!(%error, "undecodable migration event skipped");
                        continue;
                    }
                    Some(Err(EventError::Disconnected(reason))) => {
                        return Err(MigrationError::Disconnected(reason));
                    }
                    Some(Err(_)) | None => return Err(self.disconnected(None)),
                },
                _ = ticker.tick(), if watched => {
                    let info = self.query().await?;
                    self.progress.send_modify(|p| p.update(&info));
                    match info.status {
                        Some(status) if is_terminal(&status) => status,
                        _ => continue,
                    }
                }
            };
            tracing::debug!(%status, "migration status");
            self.progress.send_modify(|p| p.status = status.clone());
            match status {
                MigrationStatus::Completed => {
                    let info = self.query().await?;
                    self.progress.send_modify(|p| p.update(&info));
                    self.guard.armed = false;
                    return Ok(self.report(false, &info));
                }
                MigrationStatus::Failed => {
                    self.guard.armed = false;
                    let error = match self.query().await {
                        Ok(info) => {
                            self.progress.send_modify(|p| p.update(&info));
                            info.error_desc.unwrap_or_else(|| {
                                "QEMU gave no error description (query-migrate has no error-desc)"
                                    .into()
                            })
                        }
                        // A destination exits right after a failed incoming migration
                        // (unless exit-on-error is false).
                        Err(MigrationError::Disconnected(reason)) => format!(
                            "QEMU ended the connection before saying why ({reason}); see its stderr"
                        ),
                        Err(other) => return Err(other),
                    };
                    return Err(MigrationError::Failed { error });
                }
                MigrationStatus::Cancelled => {
                    self.guard.armed = false;
                    if !self.cancel_requested() {
                        return Err(MigrationError::Cancelled);
                    }
                    let info = self.query().await?;
                    self.progress.send_modify(|p| p.update(&info));
                    return Ok(self.report(true, &info));
                }
                MigrationStatus::PreSwitchover => {
                    if let Err(error) = self
                        .qmp
                        .migrate_continue(MigrationStatus::PreSwitchover)
                        .await
                    {
                        return Err(command_error(error));
                    }
                }
                _ => {}
            }
        }
    }

    fn report(&self, cancelled: bool, info: &MigrationInfo) -> MigrationReport {
        MigrationReport {
            cancelled,
            progress: self.progress.borrow().clone(),
            downtime: info
                .downtime
                .map(|ms| Duration::from_millis(ms.max(0) as u64)),
            elapsed: self.started.elapsed(),
        }
    }

    async fn query(&self) -> Result<MigrationInfo, MigrationError> {
        self.qmp.query_migrate().await.map_err(command_error)
    }

    fn disconnected(&self, reason: Option<Arc<DisconnectReason>>) -> MigrationError {
        MigrationError::Disconnected(
            reason
                .or_else(|| self.qmp.raw().disconnect_reason())
                .unwrap_or_else(|| Arc::new(DisconnectReason::ClientClosed)),
        )
    }
}

fn command_error(error: ExecuteError) -> MigrationError {
    match error {
        ExecuteError::Disconnected { reason, .. } => MigrationError::Disconnected(reason),
        other => MigrationError::Command(other),
    }
}

fn is_terminal(status: &MigrationStatus) -> bool {
    matches!(
        status,
        MigrationStatus::Completed | MigrationStatus::Failed | MigrationStatus::Cancelled
    )
}

/// Cancels an outgoing migration when dropped while armed.
#[derive(Debug)]
struct CancelGuard {
    qmp: Qmp,
    armed: bool,
}

impl Drop for CancelGuard {
    fn drop(&mut self) {
        if !self.armed || self.qmp.raw().disconnect_reason().is_some() {
            return;
        }
        let qmp = self.qmp.clone();
        tracing::debug!("migration dropped before its end; cancelling it");
        cleanup::spawn("migration", async move {
            let _ = tokio::time::timeout(CANCEL_GRACE, qmp.migrate_cancel()).await;
        });
    }
}
