//! The QEMU guest agent (qemu-ga): the same JSON wire format as QMP, with different rules.
//!
//! Open a connection with [`ClientBuilder::guest_agent`](crate::ClientBuilder::guest_agent).
//! What differs from a QMP monitor, and what this crate does about it:
//!
//! - **No greeting, no negotiation.** The agent sends nothing until asked and has no
//!   `qmp_capabilities` (it answers `CommandNotFound`). Connecting therefore starts with a
//!   resynchronisation instead (below), and [`Client::greeting`](crate::Client::greeting)
//!   holds the agent's version from `guest-info` (0.0.0 if the agent blocks that command).
//! - **Resynchronisation.** The host end of a guest agent channel (a virtio-serial or
//!   isa-serial chardev socket) outlives any one agent and any one client: a new client can
//!   find the agent's JSON parser in the middle of an object someone else started, and the
//!   stream towards it in the middle of a reply. `guest-sync-delimited` exists for that: the
//!   client sends a 0xFF byte (invalid in JSON, so the agent's parser drops whatever it was
//!   in and reports an error) and the command with a random value; the agent writes a 0xFF
//!   byte, then the reply returning that value. The client drops everything before the
//!   agent's 0xFF (an unfinished message included) and every reply until the one returning
//!   its value. This runs when connecting (with a random 16-digit value), before the next
//!   command after a command timed out, and on demand
//!   ([`Client::sync_guest_agent`](crate::Client::sync_guest_agent)). Agents without the
//!   delimited form get `guest-sync` when connecting.
//! - **Ids.** Current qemu-ga (10.0.2 checked) echoes the `id` of each command (numbers and
//!   strings alike), so replies are routed by id as on QMP. Older agents echo none: the connect-time
//!   resynchronisation detects that, and the connection then keeps one command in flight and
//!   gives each reply to the command waiting (a resynchronisation accepts only its own value).
//! - **Commands that never reply.** `guest-shutdown` and `guest-suspend-*` send no reply when
//!   they succeed (`success-response: false` in the schema). Run them with
//!   [`Client::execute_without_reply`](crate::Client::execute_without_reply) (the typed API
//!   does that for you): the call completes once the command is sent and is not kept waiting
//!   (so closing does not wait for it); an error reply, if the agent sends one (a blocked
//!   command), is logged and dropped. With an agent that echoes no ids, a resynchronisation
//!   follows such a command, so that its error cannot be taken for the next command's reply.
//!   A command that times out is given up the same way there: the resynchronisation before
//!   the next command drops its late output.
//! - **Large replies.** `guest-file-read` returns base64 text, 4/3 the size of the data read
//!   (qemu-ga caps one read at 48 MiB of data, 64 MiB of base64). Replies are accepted up to
//!   [`ClientBuilder::max_message_size`](crate::ClientBuilder::max_message_size) (16 MiB by
//!   default): read files in chunks below that, or raise it.
//! - **Errors without id.** Input the agent cannot parse gets an error without id. While a
//!   resynchronisation is waiting such errors are about what it discarded and are dropped;
//!   otherwise they are handled as on QMP (held for the command they may be about, never
//!   handed to a caller by guessing).
//! - **Unreadable output** (an agent restarted in the middle of a reply) is skipped, not fatal:
//!   the next command is preceded by a resynchronisation.

use crate::error::{excerpt, ConnectError, QmpError};
use crate::framing::{ReadBuffer, DELIMITER};
use crate::greeting::{Greeting, Version};
use crate::handshake::{random_ids, read_message};
use crate::message::{classify, Id, Incoming};
use crate::transport::Transport;

pub(crate) const STAGE_SYNC: &str = "synchronising with the guest agent (guest-sync-delimited; is qemu-ga running in the guest, and is this its channel?)";
pub(crate) const STAGE_INFO: &str = "asking the guest agent for its version (guest-info)";

/// The outcome of the connect-time resynchronisation.
pub(crate) struct Synced {
    /// The agent's version, from `guest-info`.
    pub(crate) greeting: Greeting,
    /// Whether the agent echoes command ids.
    pub(crate) echoes_ids: bool,
    /// Messages dropped while resynchronising (stale replies, errors about the delimiter).
    pub(crate) skipped: u64,
    /// The first id for the connection's commands.
    pub(crate) first_id: u64,
}

/// Resynchronises with a guest agent (see the module docs) and asks it for its version.
/// Bytes after the last reply stay in `rb` for the connection task.
pub(crate) async fn sync_at_connect(
    io: &mut Transport,
    rb: &mut ReadBuffer,
    stage: &crate::handshake::Stage,
) -> Result<Synced, ConnectError> {
    stage.set(STAGE_SYNC);
    let ids = random_ids();
    let value = ids.negotiation;
    let mut skipped = 0;
    let mut request = vec![DELIMITER];
    request.extend_from_slice(
        format!(
            "{{\"execute\":\"guest-sync-delimited\",\"arguments\":{{\"id\":{value}}},\"id\":{value}}}\n"
        )
        .as_bytes(),
    );
    write(io, &request).await?;
    let echoes_ids = match await_sync(io, rb, value, &mut skipped).await? {
        Ok(echoed) => echoed,
        Err(refused) => {
            // An agent too old for guest-sync-delimited (or one that blocks it).
            tracing::debug!(error = %refused, "guest-sync-delimited refused; trying guest-sync");
            let value = value + 1;
            let request = format!(
                "{{\"execute\":\"guest-sync\",\"arguments\":{{\"id\":{value}}},\"id\":{value}}}\n"
            );
            write(io, request.as_bytes()).await?;
            match await_sync(io, rb, value, &mut skipped).await? {
                Ok(echoed) => echoed,
                Err(error) => {
                    return Err(ConnectError::GuestAgentSync {
                        reason: format!(
                            "the agent refused guest-sync-delimited ({refused}) and guest-sync ({error})"
                        ),
                    })
                }
            }
        }
    };

    stage.set(STAGE_INFO);
    let info_id = ids.negotiation + 2;
    write(
        io,
        format!("{{\"execute\":\"guest-info\",\"id\":{info_id}}}\n").as_bytes(),
    )
    .await?;
    let version = loop {
        let msg = read_message(io, rb)
            .await?
            .ok_or(ConnectError::Io(std::io::ErrorKind::UnexpectedEof.into()))?;
        let Ok(Incoming::Reply { id, result }) = classify(&msg) else {
            skipped += 1;
            continue;
        };
        if id != Id::Ours(info_id) && (echoes_ids || id != Id::Missing) {
            skipped += 1;
            continue;
        }
        match result {
            Ok(raw) => break parse_version(raw.get()),
            Err(error) => {
                tracing::debug!(%error, "guest-info failed: the agent's version is unknown");
                break Version::new(0, 0, 0);
            }
        }
    };
    tracing::debug!(%version, echoes_ids, skipped, "synchronised with the guest agent");
    Ok(Synced {
        greeting: Greeting {
            version,
            package: String::new(),
            capabilities: Vec::new(),
        },
        echoes_ids,
        skipped,
        first_id: ids.first_command,
    })
}

async fn write(io: &mut Transport, bytes: &[u8]) -> Result<(), ConnectError> {
    io.write_all(bytes).await.map_err(ConnectError::Io)
}

/// Reads until the reply returning `value`: `Ok(Ok(echoes_ids))`, or `Ok(Err(error))` if the
/// agent refused the command (an error carrying our id, or `CommandNotFound` without id).
async fn await_sync(
    io: &mut Transport,
    rb: &mut ReadBuffer,
    value: u64,
    skipped: &mut u64,
) -> Result<Result<bool, QmpError>, ConnectError> {
    loop {
        let msg = read_message(io, rb)
            .await?
            .ok_or(ConnectError::Io(std::io::ErrorKind::UnexpectedEof.into()))?;
        match classify(&msg) {
            Ok(Incoming::Reply { id, result: Ok(raw) })
                if raw.get().trim().parse::<u64>().is_ok_and(|v| v == value) =>
            {
                return Ok(Ok(id == Id::Ours(value)));
            }
            Ok(Incoming::Reply {
                id,
                result: Err(error),
            }) if id == Id::Ours(value)
                || (id == Id::Missing && error.is_command_not_found()) =>
            {
                return Ok(Err(error));
            }
            Ok(Incoming::Greeting(_)) => {
                return Err(ConnectError::GuestAgentSync {
                    reason: format!(
                        "the server sent a QMP greeting: this is a QMP monitor, not a guest agent (connect without guest_agent): {}",
                        excerpt(&msg)
                    ),
                })
            }
            _ => {
                *skipped += 1;
                tracing::debug!(message = %excerpt(&msg), "skipping guest agent output from before the resynchronisation");
            }
        }
    }
}

/// `guest-info`'s `version` (`"10.0.2"`, or `"10.0.2 (Debian ...)"` on some builds).
fn parse_version(info: &str) -> Version {
    let version = serde_json::from_str::<serde_json::Value>(info)
        .ok()
        .and_then(|v| v.get("version")?.as_str().map(str::to_owned))
        .unwrap_or_default();
    let mut parts = version
        .split(|c: char| !c.is_ascii_digit())
        .take(3)
        .map(|p| p.parse::<u64>().unwrap_or(0));
    let mut next = || parts.next().unwrap_or(0);
    Version::new(next(), next(), next())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        assert_eq!(
            parse_version(r#"{"version":"10.0.2","supported_commands":[]}"#),
            Version::new(10, 0, 2)
        );
        assert_eq!(parse_version(r#"{"version":"7.2"}"#), Version::new(7, 2, 0));
        assert_eq!(parse_version(r#"{}"#), Version::new(0, 0, 0));
    }
}
