//! The fuzz input is the server's very first message: `connect_stream` must return an error or
//! a client, never panic or hang.
//!
//! Input layout: `[flags, greeting...]`.
//! - flags bit 0: the client asks for `oob`.
//! - flags bit 1: after the input, the server answers the negotiation
//!   (`{"return": {}, "id": 0}`: fuzz builds of qmp-core number from 0).
//! - flags bit 2: keep the connection open afterwards (else the server half-closes), so the
//!   client may have to time out.
#![no_main]

use libfuzzer_sys::fuzz_target;
use qmp_core::Capability;
use qmp_fuzz::{check_capabilities, check_ended, run_bounded, spawn_server, ServerScript};

fuzz_target!(|data: &[u8]| {
    let Some((&flags, greeting)) = data.split_first() else {
        return;
    };
    let oob = flags & 1 != 0;
    let answer = flags & 2 != 0;
    let keep_open = flags & 4 != 0;
    let mut body = greeting.to_vec();
    if answer {
        body.extend_from_slice(b"\r\n{\"return\": {}, \"id\": 0}\r\n");
    }
    run_bounded("greeting", async move {
        let (io, server) = spawn_server(ServerScript {
            prelude: None,
            body,
            chunk: usize::MAX,
            keep_open,
        });
        let requested: Vec<Capability> = if oob { vec![Capability::Oob] } else { vec![] };
        if let Ok(client) = qmp_fuzz::builder(oob, 128, 4, keep_open)
            .connect_stream(io)
            .await
        {
            check_capabilities(&client, &requested);
            let _ = client.greeting().version.to_string();
            if !keep_open {
                client.closed().await;
                check_ended(&client).await;
            }
        }
        server.abort();
        let _ = server.await;
    });
});
