//! Starts client processes: this binary re-executed as `qmp-bench child ...` for the Rust
//! clients, the virtualenv's Python running `python/driver.py` for `qemu.qmp`.

use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::measure::Sample;
use crate::workload::{Client, Job};

/// How long one client process may run before it is killed and the run fails.
const CHILD_TIMEOUT: Duration = Duration::from_secs(600);

/// Runs jobs in client processes.
#[derive(Debug, Clone)]
pub struct Runner {
    /// This executable.
    pub exe: PathBuf,
    /// The virtualenv's Python, when the Python client is measured.
    pub python: Option<PathBuf>,
    /// The Python driver script.
    pub driver: PathBuf,
}

impl Runner {
    /// Runs `job` in a new process and returns the sample it printed.
    pub fn run(&self, job: &Job) -> Result<Sample, String> {
        let mut cmd = match job.client {
            Client::Python => {
                let python = self
                    .python
                    .as_ref()
                    .ok_or("the Python client is not set up")?;
                let mut c = Command::new(python);
                c.arg(&self.driver);
                c
            }
            _ => {
                let mut c = Command::new(&self.exe);
                c.arg("child");
                c
            }
        };
        cmd.args(job.to_args())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().map_err(|e| format!("starting {cmd:?}: {e}"))?;
        let mut stdout = child.stdout.take().ok_or("no stdout")?;
        let mut stderr = child.stderr.take().ok_or("no stderr")?;
        let out_reader = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = stdout.read_to_string(&mut s);
            s
        });
        let err_reader = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = stderr.read_to_string(&mut s);
            s
        });
        let deadline = Instant::now() + CHILD_TIMEOUT;
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(5))
                }
                Ok(None) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(format!(
                        "{} {} timed out after {CHILD_TIMEOUT:?}",
                        job.client,
                        job.workload.arg()
                    ));
                }
                Err(e) => return Err(e.to_string()),
            }
        };
        let out = out_reader.join().unwrap_or_default();
        let err = err_reader.join().unwrap_or_default();
        if !status.success() {
            return Err(format!(
                "{} {} failed ({status}): {}",
                job.client,
                job.workload.arg(),
                err.trim()
            ));
        }
        let line = out.lines().last().unwrap_or("");
        serde_json::from_str(line).map_err(|e| {
            format!(
                "{} {}: bad output {line:?}: {e}; stderr: {}",
                job.client,
                job.workload.arg(),
                err.trim()
            )
        })
    }
}
