//! Running block jobs to their end: [`Job`].
//!
//! The state machine (QEMU's job states, `JOB_STATUS_CHANGE` events):
//!
//! ```text
//! created -> running <-> paused/standby
//!              |-> ready (mirror, active commit) --job-complete--> waiting -> pending
//!              |-> waiting -> pending --job-finalize (auto-finalize: false)--> concluded
//!              |-> aborting (error or cancel) -> concluded
//! concluded --job-dismiss (auto-dismiss: false)--> null    (auto-dismiss: straight to null)
//! ```
//!
//! The runner subscribes before the job-creating command runs, so no transition is missed, and
//! acts on the transitions that need a command: `ready` (complete, or hand the job back),
//! `pending` (finalize), `concluded` (read the error with `query-jobs`, then dismiss). A job
//! with auto-dismiss disappears at `concluded`; its error then comes from the
//! `BLOCK_JOB_COMPLETED` event that precedes it. A command that fails because the job has
//! already moved on (auto-finalize racing our `job-finalize`) is not an error.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::cleanup;
use crate::stream::EventStream;
use crate::types::{JobInfo, JobStatus};
use crate::{DisconnectReason, Event, EventError, EventKind, ExecuteError, Qmp};

/// How long cancelling (after a timeout, or from a dropped runner) may take before the runner
/// gives up waiting for `concluded`.
const CANCEL_GRACE: Duration = Duration::from_secs(30);

/// A job's progress: its state and QEMU's `current-progress` / `total-progress` (from
/// `query-jobs`; units are the job's own, bytes for the block jobs).
#[derive(Debug, Clone, PartialEq)]
pub struct JobProgress {
    /// The job's state; `Undefined` until it has reported one.
    pub status: JobStatus,
    /// Work done so far.
    pub current: u64,
    /// Estimated total work; it may change while the job runs (a mirror's source being
    /// written to).
    pub total: u64,
}

impl JobProgress {
    /// `current / total` in 0.0..=1.0, or `None` while the total is unknown (0).
    ///
    /// ```
    /// # use qmp_api::{types::JobStatus, workflow::JobProgress};
    /// let p = JobProgress { status: JobStatus::Running, current: 1 << 20, total: 4 << 20 };
    /// assert_eq!(p.fraction(), Some(0.25));
    /// ```
    pub fn fraction(&self) -> Option<f64> {
        (self.total > 0).then(|| (self.current as f64 / self.total as f64).min(1.0))
    }
}

impl Default for JobProgress {
    fn default() -> Self {
        JobProgress {
            status: JobStatus::Undefined,
            current: 0,
            total: 0,
        }
    }
}

/// How a job ended, when it ended as asked.
///
/// ```no_run
/// # async fn demo(qmp: qmp_api::Qmp) -> Result<(), qmp_api::workflow::JobError> {
/// # use qmp_api::types::MirrorSyncMode;
/// let report = qmp_api::workflow::Job::new(&qmp, "m0")
///     .run(qmp.blockdev_mirror("disk0", "copy0", MirrorSyncMode::Full).job_id("m0"))
///     .await?;
/// println!("{}: {} bytes in {:?}", report.id, report.progress.current, report.elapsed);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct JobReport {
    /// The job id.
    pub id: String,
    /// True when the job was cancelled on request ([`ReadyJob::cancel`]); false when it
    /// completed.
    pub cancelled: bool,
    /// The last progress seen: for block jobs the final numbers of `BLOCK_JOB_COMPLETED` or
    /// `BLOCK_JOB_CANCELLED`, else `query-jobs` at `concluded` (when QEMU still had the job; an
    /// auto-dismissed job of another kind keeps the numbers of the last poll).
    pub progress: JobProgress,
    /// From starting the job-creating command to the end.
    pub elapsed: Duration,
}

/// Why a job did not end as asked.
///
/// ```no_run
/// # async fn demo(qmp: qmp_api::Qmp, options: qmp_api::types::BlockdevCreateOptions) {
/// use qmp_api::workflow::{Job, JobError};
///
/// match Job::new(&qmp, "create0").run(qmp.blockdev_create("create0", options)).await {
///     Ok(report) => println!("created in {:?}", report.elapsed),
///     // QEMU's own text, e.g. "Cluster size must be a power of two between 512 and 2048k"
///     Err(JobError::Failed { error, .. }) => eprintln!("not created: {error}"),
///     Err(JobError::Disconnected { .. }) => eprintln!("QEMU went away"),
///     Err(other) => eprintln!("{other}"),
/// }
/// # }
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JobError {
    /// The job-creating command failed: no job was started (QEMU's error inside).
    #[error("starting job {id}: {error}")]
    Start {
        /// The job id.
        id: String,
        /// The command's error.
        error: ExecuteError,
    },
    /// The job concluded with an error; `error` is QEMU's text (`query-jobs`, or the
    /// `BLOCK_JOB_COMPLETED` event for auto-dismissed jobs). The job has been dismissed.
    #[error("job {id} failed: {error}")]
    Failed {
        /// The job id.
        id: String,
        /// QEMU's error text.
        error: String,
    },
    /// The job was cancelled by someone else (`BLOCK_JOB_CANCELLED`, or `job-cancel` from
    /// another monitor), with or without auto-dismiss. The job has been dismissed.
    #[error("job {id} was cancelled by another client")]
    Cancelled {
        /// The job id.
        id: String,
        /// How far it got (`cancelled` is true): the numbers of `BLOCK_JOB_CANCELLED`.
        report: Box<JobReport>,
    },
    /// The job did not end within the runner's timeout; the runner cancelled it
    /// (`job-cancel`) and waited for it to conclude.
    #[error("job {id} did not finish within {after:?} (at {:?}, {}/{}); it was cancelled{}", progress.status, progress.current, progress.total, if *cancelled { "" } else { ", but did not conclude in time" })]
    Timeout {
        /// The job id.
        id: String,
        /// The timeout.
        after: Duration,
        /// The progress when the timeout hit.
        progress: Box<JobProgress>,
        /// Whether the job concluded (and was dismissed) after the cancel.
        cancelled: bool,
    },
    /// A command the runner sent (`job-complete`, `job-finalize`, `job-dismiss`,
    /// `job-cancel`, `query-jobs`) failed for another reason than the job having moved on.
    #[error("job {id}: {error}")]
    Command {
        /// The job id.
        id: String,
        /// The command's error.
        error: ExecuteError,
    },
    /// The connection ended while the job was followed (QEMU exited or was killed); what
    /// became of the job is unknown.
    #[error(
        "job {id}: the connection ended while following the job ({reason}); its outcome is unknown"
    )]
    Disconnected {
        /// The job id.
        id: String,
        /// Why the connection ended.
        reason: Arc<DisconnectReason>,
    },
    /// [`Job::run_until_ready`]: the job concluded successfully without ever becoming ready
    /// (only mirrors and active commits become ready).
    #[error("job {id} concluded without becoming ready; use Job::run for jobs that do not wait in ready")]
    NotReady {
        /// The job id.
        id: String,
        /// How it ended.
        report: Box<JobReport>,
    },
    /// A blocking wait (`Job::run(..).wait()`, [`crate::blocking`]) inside an async task:
    /// nothing was sent.
    #[error(transparent)]
    Blocking(#[from] crate::BlockingError),
}

/// Runs a job-creating command and follows the job to its end.
///
/// Give it the job id and the command's future (any typed call: `blockdev-create`,
/// `blockdev-backup`, `blockdev-mirror`, `block-commit`, `block-stream`, `drive-backup`,
/// `drive-mirror`...). Block jobs started without `job-id` use the device name as their id.
///
/// - [`run`](Self::run) completes the job when it becomes ready (`job-complete`: a mirror
///   switches to its target), finalizes it when it waits in `pending`, reads its error and
///   dismisses it at `concluded`. A job that concluded with an error is
///   [`JobError::Failed`] with QEMU's text.
/// - [`run_until_ready`](Self::run_until_ready) hands a job that became ready back as a
///   [`ReadyJob`] (a mirror that should keep running), to complete or cancel later.
/// - [`progress`](Self::progress) is a `watch` receiver of [`JobProgress`]; while any receiver
///   exists, `query-jobs` is polled every [`progress_interval`](Self::progress_interval).
/// - **Timeout** ([`timeout`](Self::timeout), none by default): the job is cancelled and
///   [`JobError::Timeout`] returned.
/// - **Dropping** the future before the end cancels the job: a task on the current runtime
///   sends `job-cancel`, waits (at most 30 s) for `concluded` and dismisses the job. Outside a
///   runtime nothing can be sent and the job keeps running.
///
/// Works the same on QEMU 7.2 and 10.0 and on qemu-storage-daemon.
///
/// ```no_run
/// # async fn demo(qmp: qmp_api::Qmp) -> Result<(), Box<dyn std::error::Error>> {
/// use std::time::Duration;
/// use qmp_api::types::MirrorSyncMode;
/// use qmp_api::workflow::Job;
///
/// // Copy disk0 to the node copy0, then switch disk0's users over to it.
/// let job = Job::new(&qmp, "mirror0").timeout(Duration::from_secs(3600));
/// let mut progress = job.progress();
/// tokio::spawn(async move {
///     while progress.changed().await.is_ok() {
///         let p = progress.borrow_and_update().clone();
///         println!("{}: {}/{} bytes", p.status, p.current, p.total);
///     }
/// });
/// let report = job
///     .run(qmp.blockdev_mirror("disk0", "copy0", MirrorSyncMode::Full).job_id("mirror0"))
///     .await?;
/// println!("mirrored and switched over in {:?}", report.elapsed);
///
/// // Any future of a job-creating command works, typed or not:
/// let backup = serde_json::json!({
///     "job-id": "backup0", "device": "disk0", "target": "backup0", "sync": "full",
/// });
/// Job::new(&qmp, "backup0").run(qmp.raw().execute("blockdev-backup", backup)).await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Job {
    qmp: Qmp,
    id: String,
    timeout: Option<Duration>,
    interval: Duration,
    progress: watch::Sender<JobProgress>,
}

impl Job {
    /// A runner for the job `id` on this connection.
    pub fn new(qmp: &Qmp, id: impl Into<String>) -> Job {
        Job {
            qmp: qmp.clone(),
            id: id.into(),
            timeout: None,
            interval: Duration::from_millis(500),
            progress: watch::Sender::new(JobProgress::default()),
        }
    }

    /// Gives up (cancelling the job) when the job has not ended this long after it started
    /// (default: no limit). With [`run_until_ready`](Self::run_until_ready) it bounds the
    /// time to `ready`; each [`ReadyJob`] step gets the same time again.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// How often `query-jobs` is polled for progress while a receiver from
    /// [`progress`](Self::progress) exists (default 500 ms, at least 10 ms).
    pub fn progress_interval(mut self, interval: Duration) -> Self {
        self.interval = interval.max(Duration::from_millis(10));
        self
    }

    /// A receiver of the job's progress: updated at each state change and at each poll. It is a
    /// `tokio::sync::watch` receiver, so it holds the latest value: a reader that is slower
    /// than the job sees only the state it is in when it looks, not every state it passed.
    /// The sender is dropped when the run ends, so `changed()` then returns an error.
    pub fn progress(&self) -> watch::Receiver<JobProgress> {
        self.progress.subscribe()
    }

    /// The job id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Starts the job with `start` and runs it to its end, completing it if it becomes
    /// ready. See the type's documentation.
    ///
    /// # Errors
    ///
    /// [`JobError`]: the command failed (`Start`), the job failed (`Failed`, with QEMU's
    /// error) or was cancelled by someone else (`Cancelled`), the timeout hit (`Timeout`),
    /// QEMU went away (`Disconnected`), or a follow-up command failed (`Command`).
    pub async fn run<F, T>(self, start: F) -> Result<JobReport, JobError>
    where
        F: Future<Output = Result<T, ExecuteError>>,
    {
        let timeout = self.timeout;
        let mut follower = self.start(start).await?;
        let step = follower.follow_within(false, timeout).await?;
        follower.finish(step)
    }

    /// Starts the job with `start` and follows it until it is ready, then hands it back: the
    /// job keeps running (a mirror keeps the target in sync) until you
    /// [`complete`](ReadyJob::complete) or [`cancel`](ReadyJob::cancel) it.
    ///
    /// # Errors
    ///
    /// As [`run`](Self::run), and [`JobError::NotReady`] when the job concluded successfully
    /// without becoming ready.
    pub async fn run_until_ready<F, T>(self, start: F) -> Result<ReadyJob, JobError>
    where
        F: Future<Output = Result<T, ExecuteError>>,
    {
        let timeout = self.timeout;
        let mut follower = self.start(start).await?;
        match follower.follow_within(true, timeout).await? {
            Step::Ready => Ok(ReadyJob { follower, timeout }),
            step @ Step::Concluded { .. } => {
                let report = follower.finish(step)?;
                Err(JobError::NotReady {
                    id: report.id.clone(),
                    report: Box::new(report),
                })
            }
        }
    }

    /// Subscribes, arms the cancel-on-drop guard, then runs the job-creating command.
    async fn start<F, T>(self, start: F) -> Result<Follower, JobError>
    where
        F: Future<Output = Result<T, ExecuteError>>,
    {
        // Before the command: every event of the job reaches this stream.
        let events = self.qmp.subscribe([
            EventKind::JobStatusChange,
            EventKind::BlockJobCompleted,
            EventKind::BlockJobCancelled,
        ]);
        let mut follower = Follower {
            guard: CancelGuard {
                qmp: self.qmp.clone(),
                id: self.id.clone(),
                armed: true,
            },
            qmp: self.qmp,
            id: self.id,
            events,
            progress: self.progress,
            interval: self.interval,
            started: Instant::now(),
            completed_error: None,
            cancelled_event: false,
            cancel_requested: false,
            complete_sent: false,
        };
        if let Err(error) = start.await {
            // No job was created (or the id belongs to another job): nothing to cancel.
            follower.guard.armed = false;
            return Err(JobError::Start {
                id: follower.id.clone(),
                error,
            });
        }
        Ok(follower)
    }
}

/// A job that became ready, handed back by [`Job::run_until_ready`]. It keeps running until
/// you [`complete`](Self::complete) or [`cancel`](Self::cancel) it.
///
/// Dropping it cancels the job, as a dropped runner does; [`detach`](Self::detach) leaves
/// the job running instead.
///
/// ```no_run
/// # async fn demo(qmp: qmp_api::Qmp) -> Result<(), Box<dyn std::error::Error>> {
/// use qmp_api::types::MirrorSyncMode;
/// use qmp_api::workflow::Job;
///
/// let mirror = Job::new(&qmp, "mirror0")
///     .run_until_ready(qmp.blockdev_mirror("disk0", "copy0", MirrorSyncMode::Full).job_id("mirror0"))
///     .await?;
/// // The copy is in sync and stays in sync; switch the guest over to it:
/// mirror.complete().await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct ReadyJob {
    follower: Follower,
    timeout: Option<Duration>,
}

impl ReadyJob {
    /// The job id.
    pub fn id(&self) -> &str {
        &self.follower.id
    }

    /// A receiver of the job's progress (see [`Job::progress`]); it is updated while
    /// [`complete`](Self::complete) or [`cancel`](Self::cancel) runs.
    pub fn progress(&self) -> watch::Receiver<JobProgress> {
        self.follower.progress.subscribe()
    }

    /// Completes the job (`job-complete`: a mirror switches the device to its target) and
    /// follows it to the end.
    ///
    /// # Errors
    ///
    /// As [`Job::run`].
    pub async fn complete(mut self) -> Result<JobReport, JobError> {
        let result = self.follower.qmp.job_complete(&self.follower.id).await;
        match result {
            Ok(()) => self.follower.complete_sent = true,
            Err(error) => self.follower.tolerate(error, &JobStatus::Ready).await?,
        }
        let step = self.follower.follow_within(false, self.timeout).await?;
        self.follower.finish(step)
    }

    /// Cancels the job (`job-cancel`: a mirror stops without switching; the target is left
    /// as it is) and follows it to the end. Returns a report with `cancelled: true`.
    ///
    /// # Errors
    ///
    /// As [`Job::run`] (a job that failed on its own meanwhile is [`JobError::Failed`]).
    pub async fn cancel(mut self) -> Result<JobReport, JobError> {
        self.follower.cancel_requested = true;
        let result = self.follower.qmp.job_cancel(&self.follower.id).await;
        if let Err(error) = result {
            self.follower.tolerate(error, &JobStatus::Ready).await?;
        }
        let step = self.follower.follow_within(false, self.timeout).await?;
        self.follower.finish(step)
    }

    /// Leaves the job running and returns its id; nothing follows it any more.
    pub fn detach(mut self) -> String {
        self.follower.guard.armed = false;
        self.follower.id.clone()
    }
}

/// Where following a job stopped.
enum Step {
    Ready,
    Concluded { error: Option<String> },
}

/// The state of one followed job.
#[derive(Debug)]
struct Follower {
    qmp: Qmp,
    id: String,
    events: EventStream,
    progress: watch::Sender<JobProgress>,
    interval: Duration,
    started: Instant,
    /// The error of the job's `BLOCK_JOB_COMPLETED` event (block jobs only).
    completed_error: Option<String>,
    /// A `BLOCK_JOB_CANCELLED` event was seen.
    cancelled_event: bool,
    /// This runner cancelled the job.
    cancel_requested: bool,
    /// `job-complete` was accepted.
    complete_sent: bool,
    guard: CancelGuard,
}

impl Follower {
    fn status(&self) -> JobStatus {
        self.progress.borrow().status.clone()
    }

    /// [`follow`](Self::follow) under an optional timeout; on timeout, cancels the job.
    async fn follow_within(
        &mut self,
        stop_at_ready: bool,
        timeout: Option<Duration>,
    ) -> Result<Step, JobError> {
        let Some(after) = timeout else {
            return self.follow(stop_at_ready).await;
        };
        match tokio::time::timeout(after, self.follow(stop_at_ready)).await {
            Ok(step) => step,
            Err(_) => {
                let progress = Box::new(self.progress.borrow().clone());
                tracing::warn!(job = %self.id, ?after, "job timed out; cancelling it");
                let cancelled = self.cancel_and_conclude().await;
                Err(JobError::Timeout {
                    id: self.id.clone(),
                    after,
                    progress,
                    cancelled,
                })
            }
        }
    }

    /// Cancels the job and follows it to `concluded` (dismissing it), within the grace time.
    /// True when it concluded.
    async fn cancel_and_conclude(&mut self) -> bool {
        self.cancel_requested = true;
        if let Err(error) = self.qmp.job_cancel(&self.id).await {
            if self.tolerate(error, &JobStatus::Running).await.is_err() {
                return false;
            }
        }
        matches!(
            tokio::time::timeout(CANCEL_GRACE, self.follow(false)).await,
            Ok(Ok(Step::Concluded { .. }))
        )
    }

    /// Follows events until the job is ready (if asked) or concluded and dismissed.
    async fn follow(&mut self, stop_at_ready: bool) -> Result<Step, JobError> {
        let mut ticker = tokio::time::interval(self.interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let watched = self.progress.receiver_count() > 0;
            tokio::select! {
                biased;
                item = self.events.next() => {
                    let status = match item {
                        Some(Ok(received)) => match received.event {
                            Event::JobStatusChange(change) if change.id == self.id => change.status,
                            // A block job's last numbers: with auto-dismiss (the default)
                            // `query-jobs` no longer knows the job once it concluded.
                            Event::BlockJobCompleted(done) if done.device == self.id => {
                                self.set_numbers(done.offset, done.len);
                                self.completed_error = done.error;
                                continue;
                            }
                            Event::BlockJobCancelled(c) if c.device == self.id => {
                                self.set_numbers(c.offset, c.len);
                                self.cancelled_event = true;
                                continue;
                            }
                            _ => continue,
                        },
                        Some(Err(EventError::Missed { count })) => {
                            // The transition we wait for may be among them: ask QEMU.
                            tracing::warn!(job = %self.id, count, "job events missed; reading the job's state");
                            match self.query().await? {
                                Some(info) => info.status,
                                None => JobStatus::Null,
                            }
                        }
                        Some(Err(EventError::Decode(error))) => {
                            tracing::warn!(job = %self.id, %error, "undecodable job event skipped");
                            continue;
                        }
                        Some(Err(EventError::Disconnected(reason))) => {
                            return Err(self.disconnected(Some(reason)));
                        }
                        Some(Err(_)) | None => return Err(self.disconnected(None)),
                    };
                    if status == self.status() {
                        continue;
                    }
                    if let Some(step) = self.on_status(status, stop_at_ready).await? {
                        return Ok(step);
                    }
                }
                _ = ticker.tick(), if watched => {
                    if let Some(info) = self.query().await? {
                        // Only the numbers: transitions come from events, in order.
                        self.set_numbers(info.current_progress, info.total_progress);
                    }
                }
            }
        }
    }

    /// Records the job's progress numbers (bytes for block jobs; negative values read as 0).
    fn set_numbers(&self, current: i64, total: i64) {
        self.progress.send_modify(|p| {
            p.current = current.max(0) as u64;
            p.total = total.max(0) as u64;
        });
    }

    /// Acts on a state the job entered; `Some` when following stops here.
    async fn on_status(
        &mut self,
        status: JobStatus,
        stop_at_ready: bool,
    ) -> Result<Option<Step>, JobError> {
        tracing::debug!(job = %self.id, %status, "job state");
        self.progress.send_modify(|p| p.status = status.clone());
        match status {
            JobStatus::Ready if stop_at_ready => return Ok(Some(Step::Ready)),
            JobStatus::Ready if !self.complete_sent && !self.cancel_requested => {
                match self.qmp.job_complete(&self.id).await {
                    Ok(()) => self.complete_sent = true,
                    Err(error) => self.tolerate(error, &JobStatus::Ready).await?,
                }
            }
            JobStatus::Pending => {
                // Needed with auto-finalize: false; with true, QEMU has usually moved on and
                // refuses, which `tolerate` accepts.
                if let Err(error) = self.qmp.job_finalize(&self.id).await {
                    self.tolerate(error, &JobStatus::Pending).await?;
                }
            }
            JobStatus::Concluded => return self.conclude().await.map(Some),
            // Dismissed: auto-dismiss, or another client.
            JobStatus::Null => {
                self.guard.armed = false;
                return Ok(Some(Step::Concluded {
                    error: self.completed_error.clone(),
                }));
            }
            _ => {}
        }
        Ok(None)
    }

    /// Reads the concluded job's error and dismisses it.
    async fn conclude(&mut self) -> Result<Step, JobError> {
        let error = match self.query().await? {
            Some(info) => {
                self.set_numbers(info.current_progress, info.total_progress);
                if info.status == JobStatus::Concluded {
                    if let Err(error) = self.qmp.job_dismiss(&self.id).await {
                        self.tolerate(error, &JobStatus::Concluded).await?;
                    }
                    self.progress.send_modify(|p| p.status = JobStatus::Null);
                }
                info.error.or_else(|| self.completed_error.clone())
            }
            // Already dismissed (auto-dismiss): the event had the error.
            None => {
                self.progress.send_modify(|p| p.status = JobStatus::Null);
                self.completed_error.clone()
            }
        };
        self.guard.armed = false;
        Ok(Step::Concluded { error })
    }

    /// Maps the end of the job to the result.
    // JobError carries an ExecuteError whole, as every command error in this crate does; it
    // is built once per job.
    #[allow(clippy::result_large_err)]
    fn finish(&self, step: Step) -> Result<JobReport, JobError> {
        let report = JobReport {
            id: self.id.clone(),
            cancelled: self.cancel_requested,
            progress: self.progress.borrow().clone(),
            elapsed: self.started.elapsed(),
        };
        match step {
            Step::Concluded { .. } if self.cancel_requested => Ok(report),
            // Cancelled by another client: with auto-dismiss the job is gone before we can
            // read its error, so the event is what tells, not the error.
            Step::Concluded { .. } if self.cancelled_event => Err(JobError::Cancelled {
                id: self.id.clone(),
                report: Box::new(JobReport {
                    cancelled: true,
                    ..report
                }),
            }),
            Step::Concluded { error: None } => Ok(report),
            Step::Concluded { error: Some(error) } => Err(JobError::Failed {
                id: self.id.clone(),
                error,
            }),
            // A ready job handed back is not finished; not reached from `run`.
            Step::Ready => Ok(report),
        }
    }

    /// Accepts the error of a command sent for state `for_status` when the job has left that
    /// state meanwhile (or is gone); otherwise returns it.
    async fn tolerate(
        &mut self,
        error: ExecuteError,
        for_status: &JobStatus,
    ) -> Result<(), JobError> {
        if let ExecuteError::Disconnected { reason, .. } = &error {
            return Err(self.disconnected(Some(reason.clone())));
        }
        if error.qmp_error().is_none() {
            return Err(JobError::Command {
                id: self.id.clone(),
                error,
            });
        }
        match self.query().await? {
            Some(info) if &info.status == for_status => Err(JobError::Command {
                id: self.id.clone(),
                error,
            }),
            _ => {
                tracing::debug!(job = %self.id, %error, "command refused after the job moved on");
                Ok(())
            }
        }
    }

    /// The job's entry in `query-jobs`, if QEMU still has it.
    async fn query(&self) -> Result<Option<JobInfo>, JobError> {
        match self.qmp.query_jobs().await {
            Ok(jobs) => Ok(jobs.into_iter().find(|j| j.id == self.id)),
            Err(ExecuteError::Disconnected { reason, .. }) => Err(self.disconnected(Some(reason))),
            Err(error) => Err(JobError::Command {
                id: self.id.clone(),
                error,
            }),
        }
    }

    fn disconnected(&self, reason: Option<Arc<DisconnectReason>>) -> JobError {
        let reason = reason
            .or_else(|| self.qmp.raw().disconnect_reason())
            .unwrap_or_else(|| Arc::new(DisconnectReason::ClientClosed));
        JobError::Disconnected {
            id: self.id.clone(),
            reason,
        }
    }
}

/// Cancels and dismisses the job when dropped while armed.
#[derive(Debug)]
struct CancelGuard {
    qmp: Qmp,
    id: String,
    armed: bool,
}

impl Drop for CancelGuard {
    fn drop(&mut self) {
        if !self.armed || self.qmp.raw().disconnect_reason().is_some() {
            return;
        }
        let qmp = self.qmp.clone();
        let id = std::mem::take(&mut self.id);
        tracing::debug!(job = %id, "job runner dropped; cancelling the job");
        cleanup::spawn("job runner", async move {
            let _ = tokio::time::timeout(CANCEL_GRACE, cancel_and_dismiss(&qmp, &id)).await;
        });
    }
}

/// `job-cancel`, then waits for `concluded` and dismisses the job (best effort).
async fn cancel_and_dismiss(qmp: &Qmp, id: &str) {
    let mut events = qmp.subscribe([EventKind::JobStatusChange]);
    // Refused when the job has already concluded: it is dismissed below all the same.
    let _ = qmp.job_cancel(id).await;
    loop {
        let Ok(jobs) = qmp.query_jobs().await else {
            return;
        };
        match jobs.into_iter().find(|j| j.id == id) {
            None => return,
            Some(job) if job.status == JobStatus::Concluded => {
                let _ = qmp.job_dismiss(id).await;
                return;
            }
            Some(_) => {}
        }
        // The next change of any job, or a while: then look again.
        let next = tokio::time::timeout(Duration::from_millis(500), events.next()).await;
        if let Ok(None) = next {
            return;
        }
    }
}
