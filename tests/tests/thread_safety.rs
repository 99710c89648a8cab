//! Everything a user holds across an `.await` must be `Send` (and shared handles `Sync`), or it
//! cannot run under `tokio::spawn` on a multi-thread runtime, which is what `#[tokio::main]`
//! gives. The first test fails to compile on a regression; the second drives a whole session
//! from spawned tasks on two workers.

use std::time::Duration;

use qmp_api::commands::QueryStatus;
use qmp_api::{Event, Qmp};
use qmp_core::{Client, ClientBuilder, Listener};
use qmp_tests::mock::MockServer;
use qmp_tests::within;
use serde_json::json;

fn send<T: Send>(_: &T) {}

/// What `tokio::spawn` needs of a future: `Send` and `'static` (it owns what it uses).
fn spawnable<T: std::future::Future + Send + 'static>(_: &T)
where
    T::Output: Send + 'static,
{
}

fn send_sync<T: Send + Sync>() {}

#[tokio::test]
async fn futures_and_handles_are_send() {
    send_sync::<Client>();
    send_sync::<Qmp>();
    send_sync::<Listener>();
    send_sync::<qmp_core::EventStream>();
    send_sync::<qmp_api::EventStream>();
    // The blocking facade: handles move into threads and spawn_blocking.
    send_sync::<qmp_api::blocking::Qmp>();
    send_sync::<qmp_api::blocking::EventStream>();
    send_sync::<qmp_api::BlockingError>();
    send_sync::<qmp_core::ConnectError>();
    send_sync::<qmp_core::ExecuteError>();

    // Futures are only built here, never polled: building one runs none of its body.
    let dir = qmp_tests::TempDir::new();
    let path = dir.path().join("none.sock");
    send(&Client::connect_unix(&path));
    send(&ClientBuilder::new().connect_unix(&path));
    send(&ClientBuilder::new().connect_tcp("127.0.0.1:9"));
    send(&Qmp::connect_unix(&path));
    let tls = qmp_core::tls::rustls::ClientConfig::builder()
        .with_root_certificates(qmp_core::tls::rustls::RootCertStore::empty())
        .with_no_client_auth();
    send(&ClientBuilder::new().connect_tls("127.0.0.1:9", "localhost", std::sync::Arc::new(tls)));
    let listener = Listener::bind_unix(dir.path().join("listen.sock")).expect("bind");
    send(&listener.accept());
    send(&ClientBuilder::new().accept(&listener));

    within(10, async {
        let server = MockServer::new();
        let (client, _peer) = tokio::join!(
            Client::connect_unix(server.path()),
            server.accept_handshake()
        );
        let client = client.expect("connect");
        let qmp = Qmp::from(client.clone());
        send(&client.execute("query-status", ()));
        send(&client.execute_as::<serde_json::Value>("query-status", ()));
        spawnable(&client.execute_raw("query-status", ()));
        spawnable(&client.request("query-status", ()).oob());
        let file = std::fs::File::open("/dev/null").expect("open /dev/null");
        spawnable(&client.request("getfd", json!({"fdname": "x"})).fd(&file));
        spawnable(
            &client
                .request(String::from("query-status"), ())
                .decode::<serde_json::Value>(),
        );
        send(&client.close());
        send(&client.closed());
        let mut raw_events = client.subscribe();
        send(&raw_events.next());
        spawnable(&qmp.query_status());
        spawnable(&qmp.block_resize(1).node_name("n"));
        spawnable(&qmp.execute(QueryStatus {}));
        spawnable(&qmp.getfd("x").fd(&file));
        spawnable(
            &qmp.migrate_pause()
                .oob()
                .timeout(Some(Duration::from_secs(1))),
        );
        let mut events = qmp.events();
        send(&events.next());
        send(&events.wait_for(|_| true, Duration::from_secs(1)));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_runs_in_spawned_tasks_on_two_workers() {
    within(20, async {
        let server = MockServer::new();
        let path = server.path().to_path_buf();
        let connect = tokio::spawn(async move { Qmp::connect_unix(path).await });
        let mut peer = server.accept_handshake().await;
        let qmp = connect.await.expect("connect task").expect("connect");

        let mut events = qmp.events();
        let waiter = tokio::spawn(async move {
            events
                .wait_for(|e| matches!(e, Event::Stop), Duration::from_secs(10))
                .await
        });
        // Calls own a handle to the connection: spawn them directly.
        let callers: Vec<_> = (0..8).map(|_| tokio::spawn(qmp.query_status())).collect();

        for _ in 0..8 {
            let r = peer.expect("query-status").await;
            peer.reply(&r.id, json!({"running": true, "status": "running"}))
                .await;
        }
        peer.event("STOP", None).await;

        for caller in callers {
            let status = caller.await.expect("caller task").expect("query-status");
            assert!(status.running);
        }
        let stop = waiter.await.expect("waiter task").expect("STOP");
        assert!(matches!(stop.event, Event::Stop));
    })
    .await;
}
