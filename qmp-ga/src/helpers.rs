//! Helpers where the raw protocol is awkward: whole files (chunks and base64) and programs
//! run to completion.

use std::time::Duration;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;

use crate::types::{GuestExecCaptureOutput, GuestExecStatus};
use crate::{ExecuteError, GuestAgent};

/// Bytes moved per `guest-file-read` / `guest-file-write` by [`GuestAgent::read_file`] and
/// [`GuestAgent::write_file`]: 1 MiB, so 1.4 MiB of base64 per message, well below the
/// default message limit (16 MiB) and quick enough that other commands are not held up long.
pub const FILE_CHUNK: usize = 1 << 20;

/// Why a helper failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A command failed (the agent's error, a timeout, a disconnect...).
    #[error(transparent)]
    Execute(#[from] ExecuteError),
    /// The agent sent data that is not base64.
    #[error("{command} returned invalid base64 in `{member}`: {error}")]
    Base64 {
        /// The command.
        command: &'static str,
        /// The member holding the data.
        member: &'static str,
        /// What is wrong with it.
        error: base64::DecodeError,
    },
    /// `guest-file-write` wrote less than it was given and made no progress.
    #[error("guest-file-write to {path} wrote {written} of {expected} bytes (disk full?)")]
    ShortWrite {
        /// The file.
        path: String,
        /// Bytes written in total.
        written: u64,
        /// Bytes to write in total.
        expected: u64,
    },
}

impl From<qmp_core::BlockingError> for Error {
    /// A blocking wait (`qmp_api::blocking::Wait`, e.g. `agent.read_file(p).wait()`) inside
    /// an async task: [`ExecuteError::Blocking`], nothing sent.
    fn from(e: qmp_core::BlockingError) -> Self {
        Error::Execute(ExecuteError::Blocking(e))
    }
}

/// What [`GuestAgent::exec`] returns: how the program ended and what it wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ExecOutput {
    /// The exit code, if the program exited normally.
    pub exitcode: Option<i64>,
    /// The signal that killed the program, if one did.
    pub signal: Option<i64>,
    /// Its standard output.
    pub stdout: Vec<u8>,
    /// Its standard error.
    pub stderr: Vec<u8>,
    /// Whether the agent cut the output short (it keeps at most 16 MiB per stream).
    pub truncated: bool,
}

impl ExecOutput {
    /// Whether the program exited with status 0.
    pub fn success(&self) -> bool {
        self.exitcode == Some(0)
    }
}

fn decode(command: &'static str, member: &'static str, text: &str) -> Result<Vec<u8>, Error> {
    BASE64.decode(text).map_err(|error| Error::Base64 {
        command,
        member,
        error,
    })
}

impl GuestAgent {
    /// Reads a whole file in the guest: opens it, reads it in chunks of [`FILE_CHUNK`] bytes
    /// (decoding the base64), and closes it (also when a read fails).
    ///
    /// ```no_run
    /// # async fn demo(agent: qmp_ga::GuestAgent) -> Result<(), qmp_ga::Error> {
    /// let hosts = agent.read_file("/etc/hosts").await?;
    /// println!("{}", String::from_utf8_lossy(&hosts));
    /// # Ok(()) }
    /// ```
    pub async fn read_file(&self, path: &str) -> Result<Vec<u8>, Error> {
        let handle = self.guest_file_open(path).mode("r").await?;
        let result = self.read_all(handle).await;
        let closed = self.guest_file_close(handle).await;
        let data = result?;
        closed?;
        Ok(data)
    }

    async fn read_all(&self, handle: i64) -> Result<Vec<u8>, Error> {
        let mut data = Vec::new();
        loop {
            let chunk = self
                .guest_file_read(handle)
                .count(FILE_CHUNK as i64)
                .await?;
            data.extend(decode("guest-file-read", "buf-b64", &chunk.buf_b64)?);
            if chunk.eof || chunk.count == 0 {
                return Ok(data);
            }
        }
    }

    /// Writes a whole file in the guest, replacing its contents: opens it for writing
    /// (created if missing), writes `data` in chunks of [`FILE_CHUNK`] bytes as base64, and
    /// closes it (also when a write fails).
    ///
    /// ```no_run
    /// # async fn demo(agent: qmp_ga::GuestAgent) -> Result<(), qmp_ga::Error> {
    /// agent.write_file("/tmp/motd", b"maintenance at 18:00\n").await?;
    /// # Ok(()) }
    /// ```
    pub async fn write_file(&self, path: &str, data: &[u8]) -> Result<(), Error> {
        let handle = self.guest_file_open(path).mode("w").await?;
        let result = self.write_all(path, handle, data).await;
        let closed = self.guest_file_close(handle).await;
        result?;
        closed?;
        Ok(())
    }

    async fn write_all(&self, path: &str, handle: i64, mut data: &[u8]) -> Result<(), Error> {
        let expected = data.len() as u64;
        while !data.is_empty() {
            let chunk = &data[..data.len().min(FILE_CHUNK)];
            let wrote = self.guest_file_write(handle, BASE64.encode(chunk)).await?;
            let n = usize::try_from(wrote.count).unwrap_or(0).min(chunk.len());
            if n == 0 {
                return Err(Error::ShortWrite {
                    path: path.to_string(),
                    written: expected - data.len() as u64,
                    expected,
                });
            }
            data = &data[n..];
        }
        Ok(())
    }

    /// Runs a program in the guest with `guest-exec`, waits for it to end (polling
    /// `guest-exec-status`, every millisecond at first and at most every 50 ms), and returns
    /// its exit status and decoded output. Bound the wait with `tokio::time::timeout` if the
    /// program may hang; the program keeps running in the guest if the wait is abandoned.
    ///
    /// ```no_run
    /// # async fn demo(agent: qmp_ga::GuestAgent) -> Result<(), qmp_ga::Error> {
    /// let out = agent.exec("/bin/uname", ["-r"]).await?;
    /// println!("kernel {}", String::from_utf8_lossy(&out.stdout).trim());
    /// # Ok(()) }
    /// ```
    pub async fn exec<I, S>(&self, path: &str, args: I) -> Result<ExecOutput, Error>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let started = self
            .guest_exec(path)
            .arg(args.into_iter().map(Into::into).collect())
            .capture_output(GuestExecCaptureOutput::Flag(true))
            .await?;
        let mut pause = Duration::from_millis(1);
        loop {
            let status: GuestExecStatus = self.guest_exec_status(started.pid).await?;
            if status.exited {
                let bytes = |data: &Option<String>, member| match data {
                    Some(text) => decode("guest-exec-status", member, text),
                    None => Ok(Vec::new()),
                };
                return Ok(ExecOutput {
                    exitcode: status.exitcode,
                    signal: status.signal,
                    stdout: bytes(&status.out_data, "out-data")?,
                    stderr: bytes(&status.err_data, "err-data")?,
                    truncated: status.out_truncated == Some(true)
                        || status.err_truncated == Some(true),
                });
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(50));
        }
    }
}
