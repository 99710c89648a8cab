//! Following jobs to their end (`qmp job wait ID`, `--wait`), with a progress bar on a
//! terminal (indicatif draws on stderr and hides itself elsewhere).

use std::io::IsTerminal;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use qmp_api::types::JobStatus;
use qmp_api::workflow::{Job, JobProgress, JobReport, Migration};
use qmp_api::Qmp;
use serde_json::{json, Value};
use tokio::sync::watch;

use crate::app::{print_value, Failure};
use crate::args::Request;
use crate::output::{Log, Style};

fn bar() -> ProgressBar {
    let target = if std::io::stderr().is_terminal() {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    };
    let bar = ProgressBar::with_draw_target(Some(0), target);
    if let Ok(style) = ProgressStyle::with_template(
        "{prefix} {msg:10} [{bar:30}] {bytes}/{total_bytes} ({bytes_per_sec}, {eta})",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

/// The job's state as `query-jobs` gave it before following (`job wait`): shown until the
/// job's first state change.
type Before = Arc<Mutex<Option<String>>>;

/// Mirrors a job's progress onto a bar until the sender goes away.
fn follow(
    mut rx: watch::Receiver<JobProgress>,
    id: &str,
    before: Before,
) -> tokio::task::JoinHandle<()> {
    let bar = bar();
    bar.set_prefix(id.to_string());
    bar.enable_steady_tick(Duration::from_millis(200));
    tokio::spawn(async move {
        let mut counting = false;
        loop {
            {
                let p = rx.borrow_and_update().clone();
                bar.set_length(p.total);
                bar.set_position(p.current);
                // The rate counts from the first numbers seen, not from 0: a job followed
                // midway has done that much before.
                if !counting && p.current > 0 {
                    bar.reset_eta();
                    counting = true;
                }
                let status = match p.status {
                    JobStatus::Undefined => before
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .clone()
                        .unwrap_or_default(),
                    s => s.to_string(),
                };
                bar.set_message(status);
            }
            if rx.changed().await.is_err() {
                break;
            }
        }
        bar.finish_and_clear();
    })
}

/// Logs every event until the returned guard is dropped (the job's and the migration's
/// events, in `--log`, as in the other modes).
fn log_events(qmp: &Qmp, log: &Arc<Log>) -> AbortOnDrop {
    let mut stream = qmp.raw().subscribe();
    let log = log.clone();
    AbortOnDrop(tokio::spawn(async move {
        while let Some(ev) = stream.next().await {
            if let Ok(ev) = ev {
                log.event(&crate::output::event_json(&ev));
            }
        }
    }))
}

/// Aborts its task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl AbortOnDrop {
    /// Gives the logger a moment for the events that ended the job (received together with
    /// the runner's), then stops it.
    async fn finish(self) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn report_json(r: &JobReport) -> Value {
    json!({
        "id": r.id,
        // Ended as asked; QEMU has dismissed it since (its state is then `null`).
        "status": "concluded",
        "cancelled": r.cancelled,
        "current-progress": r.progress.current,
        "total-progress": r.progress.total,
        "elapsed-ms": u64::try_from(r.elapsed.as_millis()).unwrap_or(u64::MAX),
    })
}

/// Runs `migrate` or `migrate-incoming` (with only `uri`) through `workflow::Migration`, to
/// `completed`, with a progress bar on a terminal; prints the report.
///
/// # Errors
///
/// A usage failure for other arguments; the migration's failure (status 1) otherwise.
pub async fn run_migration(
    qmp: &Qmp,
    request: &Request,
    style: Style,
    log: &Arc<Log>,
) -> Result<(), Failure> {
    let args = request.arguments.clone().unwrap_or_default();
    let uri = match (args.get("uri").and_then(Value::as_str), args.len()) {
        (Some(uri), 1) => uri.to_string(),
        _ => {
            return Err(Failure::usage(format!(
                "--wait runs {} with a single uri argument (uri=tcp:HOST:PORT); without --wait, any arguments",
                request.command
            )))
        }
    };
    // The command as asked (Migration sends it, with its capabilities), then the events.
    log.request(&request.command, request.arguments_value().as_ref());
    let events = log_events(qmp, log);
    let migration = Migration::new(qmp);
    let mut rx = migration.progress();
    let bar = bar();
    bar.set_prefix(request.command.clone());
    bar.enable_steady_tick(Duration::from_millis(200));
    let shown = bar.clone();
    let follower = tokio::spawn(async move {
        loop {
            {
                let p = rx.borrow_and_update();
                shown.set_length(p.total);
                shown.set_position(p.transferred);
                shown.set_message(p.status.to_string());
            }
            if rx.changed().await.is_err() {
                break;
            }
        }
    });
    let result = if request.command == "migrate-incoming" {
        migration.run_incoming(uri).await
    } else {
        migration.run(uri).await
    };
    follower.abort();
    bar.finish_and_clear();
    events.finish().await;
    match result {
        Ok(r) => {
            let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
            print_value(
                style,
                &json!({
                    "status": r.progress.status.to_string(),
                    "transferred": r.progress.transferred,
                    "total": r.progress.total,
                    "passes": r.progress.passes,
                    "downtime-ms": r.downtime.map(ms),
                    "elapsed-ms": ms(r.elapsed),
                }),
            );
            Ok(())
        }
        Err(e) => Err(Failure {
            code: crate::app::EXIT_QMP_ERROR,
            message: e.to_string(),
        }),
    }
}

/// Runs a job-creating command (its `job-id` argument names the job) and follows the job to
/// its end; prints the job's report.
///
/// # Errors
///
/// A usage failure without `job-id`; the job's failure (status 1) otherwise.
pub async fn run_job_command(
    qmp: &Qmp,
    request: &Request,
    style: Style,
    log: &Arc<Log>,
) -> Result<(), Failure> {
    let Some(id) = request
        .arguments
        .as_ref()
        .and_then(|a| a.get("job-id"))
        .and_then(Value::as_str)
        .map(str::to_string)
    else {
        return Err(Failure::usage(format!(
            "--wait follows the job named by the 'job-id' argument; {} has none (add job-id=NAME)",
            request.command
        )));
    };
    let job = Job::new(qmp, id.clone());
    let bar = follow(job.progress(), &id, Before::default());
    let events = log_events(qmp, log);
    let start = crate::app::execute(qmp, log, &request.command, request.arguments_value());
    let result = job.run(start).await;
    let _ = bar.await;
    events.finish().await;
    finish(result, style)
}

fn finish(
    result: Result<JobReport, qmp_api::workflow::JobError>,
    style: Style,
) -> Result<(), Failure> {
    match result {
        Ok(report) => {
            print_value(style, &report_json(&report));
            Ok(())
        }
        // Cancelled from elsewhere: the report says so (`cancelled: true`) and the exit status
        // is 1, as for a failed job.
        Err(e @ qmp_api::workflow::JobError::Cancelled { .. }) => {
            if let qmp_api::workflow::JobError::Cancelled { report, .. } = &e {
                print_value(style, &report_json(report));
            }
            Err(Failure {
                code: crate::app::EXIT_QMP_ERROR,
                message: e.to_string(),
            })
        }
        Err(e) => Err(Failure {
            code: crate::app::EXIT_QMP_ERROR,
            message: e.to_string(),
        }),
    }
}

/// A job found not running when `job wait` looked: its `query-jobs` entry (`null` when
/// there is none) and the ids of the jobs there are.
type NotRunning = (Value, Vec<String>);

/// Follows the existing job `id` to its end and prints its report: a `ready` job is
/// completed, a `pending` one finalized, a `concluded` one reported (with its error) and
/// dismissed, as [`Job`] does for the jobs it starts.
///
/// # Errors
///
/// A usage failure when no job has that id (naming the ones that exist); the job's failure
/// (status 1) otherwise.
pub async fn wait_existing(
    qmp: &Qmp,
    id: &str,
    style: Style,
    log: &Arc<Log>,
) -> Result<(), Failure> {
    let events = log_events(qmp, log);
    let job = Job::new(qmp, id);
    let before = Before::default();
    let bar = follow(job.progress(), id, before.clone());
    // The runner subscribes to the job's events before running this step, so reading the
    // job's state here misses no transition: later ones arrive as events.
    let seen: Arc<Mutex<Option<NotRunning>>> = Arc::default();
    let step = {
        let seen = seen.clone();
        let qmp = qmp.clone();
        let id = id.to_string();
        let log = log.clone();
        let before = before.clone();
        async move {
            let jobs = crate::app::execute(&qmp, &log, "query-jobs", None).await?;
            let list = jobs.as_array().cloned().unwrap_or_default();
            let ids = list
                .iter()
                .filter_map(|j| j.get("id").and_then(Value::as_str).map(str::to_string))
                .collect();
            let info = list
                .into_iter()
                .find(|j| j.get("id").and_then(Value::as_str) == Some(&id));
            let status = info
                .as_ref()
                .and_then(|j| j.get("status"))
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            *before.lock().unwrap_or_else(|e| e.into_inner()) = Some(status.clone());
            let args = json!({ "id": id });
            match status.as_str() {
                "ready" => crate::app::execute(&qmp, &log, "job-complete", Some(args))
                    .await
                    .map(drop),
                "pending" => crate::app::execute(&qmp, &log, "job-finalize", Some(args))
                    .await
                    .map(drop),
                "" | "concluded" | "null" => {
                    // Nothing to follow: handled below, without the runner.
                    *seen.lock().unwrap_or_else(|p| p.into_inner()) =
                        Some((info.unwrap_or(Value::Null), ids));
                    Err(qmp_api::ExecuteError::Qmp {
                        command: "query-jobs".into(),
                        error: qmp_api::QmpError::new("GenericError", "job not running"),
                    })
                }
                _ => Ok(()),
            }
        }
    };
    let result = job.run(step).await;
    let _ = bar.await;
    events.finish().await;
    let state = seen.lock().unwrap_or_else(|p| p.into_inner()).take();
    let Some((info, ids)) = state else {
        return finish(result, style);
    };
    if info.is_null() {
        let known = if ids.is_empty() {
            "there are no jobs".to_string()
        } else {
            format!("jobs: {}", ids.join(", "))
        };
        let hint = crate::schema::nearest(id, ids.iter().map(String::as_str))
            .map(|n| format!("; did you mean '{n}'?"))
            .unwrap_or_default();
        return Err(Failure::usage(format!("no job '{id}' ({known}){hint}")));
    }
    // Concluded before we came: its error (if any), then dismiss it.
    let _ = crate::app::execute(qmp, log, "job-dismiss", Some(json!({ "id": id }))).await;
    if let Some(error) = info.get("error").and_then(Value::as_str) {
        return Err(Failure {
            code: crate::app::EXIT_QMP_ERROR,
            message: format!("job {id} failed: {error}"),
        });
    }
    let mut report = serde_json::Map::new();
    report.insert("id".into(), json!(id));
    report.insert("status".into(), json!("concluded"));
    report.insert("cancelled".into(), json!(false));
    for key in ["current-progress", "total-progress"] {
        report.insert(key.into(), info.get(key).cloned().unwrap_or(json!(0)));
    }
    print_value(style, &Value::Object(report));
    Ok(())
}
