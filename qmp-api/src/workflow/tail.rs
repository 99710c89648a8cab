//! A bounded tail of a child's stderr: the last bytes it wrote, read by a background task.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::sync::watch;

/// The last `limit` bytes a stream produced, and whether it has ended.
#[derive(Clone)]
pub(crate) struct Tail {
    shared: Arc<Shared>,
    ended: watch::Receiver<bool>,
}

struct Shared {
    limit: usize,
    bytes: Mutex<Buffer>,
}

#[derive(Default)]
struct Buffer {
    data: VecDeque<u8>,
    /// Bytes dropped from the front to stay within the limit.
    dropped: u64,
}

impl Tail {
    /// Starts reading `stream` in a task; keeps its last `limit` bytes.
    pub(crate) fn collect<R>(stream: R, limit: usize, pid: u32) -> Tail
    where
        R: tokio::io::AsyncRead + Unpin + Send + 'static,
    {
        let (done, ended) = watch::channel(false);
        let shared = Arc::new(Shared {
            limit,
            bytes: Mutex::new(Buffer::default()),
        });
        let writer = shared.clone();
        tokio::spawn(async move {
            let mut stream = stream;
            let mut chunk = [0u8; 4096];
            loop {
                match stream.read(&mut chunk).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        let text = String::from_utf8_lossy(&chunk[..n]);
                        tracing::debug!(pid, stderr = %text.trim_end(), "QEMU stderr");
                        writer.push(&chunk[..n]);
                    }
                }
            }
            let _ = done.send(true);
        });
        Tail { shared, ended }
    }

    /// A tail that never receives anything (stderr not captured).
    pub(crate) fn none() -> Tail {
        let (_, ended) = watch::channel(true);
        Tail {
            shared: Arc::new(Shared {
                limit: 0,
                bytes: Mutex::new(Buffer::default()),
            }),
            ended,
        }
    }

    /// Waits until the stream ended (the process and every child holding the pipe exited), at
    /// most `within`.
    pub(crate) async fn wait_ended(&self, within: Duration) {
        let mut ended = self.ended.clone();
        let _ = tokio::time::timeout(within, ended.wait_for(|e| *e)).await;
    }

    /// The tail as text (lossily decoded), starting at a line boundary when bytes were dropped.
    pub(crate) fn text(&self) -> String {
        let buffer = self
            .shared
            .bytes
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let (a, b) = buffer.data.as_slices();
        let mut bytes = Vec::with_capacity(a.len() + b.len());
        bytes.extend_from_slice(a);
        bytes.extend_from_slice(b);
        let mut start = 0;
        if buffer.dropped > 0 {
            // The first line is cut: start after its end, unless it is the only line.
            if let Some(nl) = bytes.iter().position(|&b| b == b'\n') {
                if nl + 1 < bytes.len() {
                    start = nl + 1;
                }
            }
        }
        let text = String::from_utf8_lossy(&bytes[start..]);
        let text = text.trim_end();
        if buffer.dropped > 0 {
            format!("[...]\n{text}")
        } else {
            text.to_string()
        }
    }
}

impl Shared {
    fn push(&self, chunk: &[u8]) {
        let mut buffer = self
            .bytes
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        // Only the end of a chunk longer than the limit can survive.
        let keep = chunk.len().min(self.limit);
        let skipped = chunk.len() - keep;
        let chunk = &chunk[skipped..];
        let overflow = (buffer.data.len() + chunk.len()).saturating_sub(self.limit);
        buffer.data.drain(..overflow);
        buffer.dropped += (overflow + skipped) as u64;
        buffer.data.extend(chunk);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn keeps_the_last_bytes_from_a_line_start() {
        let (mut w, r) = tokio::io::duplex(64);
        let tail = Tail::collect(r, 16, 0);
        use tokio::io::AsyncWriteExt;
        w.write_all(b"first line\nsecond\nthird\n").await.unwrap();
        drop(w);
        tail.wait_ended(Duration::from_secs(5)).await;
        assert_eq!(tail.text(), "[...]\nsecond\nthird");
    }

    #[tokio::test]
    async fn short_output_is_kept_whole() {
        let (mut w, r) = tokio::io::duplex(64);
        let tail = Tail::collect(r, 1024, 0);
        use tokio::io::AsyncWriteExt;
        w.write_all(b"qemu: error\n").await.unwrap();
        drop(w);
        tail.wait_ended(Duration::from_secs(5)).await;
        assert_eq!(tail.text(), "qemu: error");
        assert_eq!(Tail::none().text(), "");
    }
}
