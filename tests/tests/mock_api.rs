//! Issue 15: the typed mock QEMU (`qmp_api::mock`): typed handlers, QEMU's errors for bad
//! arguments, refused impossible replies and events, scripted sequences, inspection.

// Test code: unwrapping our own fixtures' results is fine.
#![allow(clippy::unwrap_used)]

use qmp_api::mock::{MockError, MockQemu, Reply, Unhandled};
use qmp_api::{commands, events, types, Event, EventKind, QmpError, SchemaItem, Version};
use qmp_tests::within;
use serde_json::json;

#[tokio::test]
async fn typed_handler_answers_typed_call() {
    within(20, async {
        let mock = MockQemu::start().await.unwrap();
        mock.on::<commands::QueryStatus, _, _>(|_| async {
            Ok(types::StatusInfo::new(false, types::RunState::Paused))
        });
        mock.on::<commands::QomList, _, _>(|args| async move {
            match args.get::<String>("path")?.as_deref() {
                Some("/machine") => Ok(vec![types::ObjectPropertyInfo::new("type", "string")]),
                other => Err(QmpError::new(
                    "GenericError",
                    format!("Device '{}' not found", other.unwrap_or("")),
                )),
            }
        });
        let qmp = mock.connect().await.unwrap();
        let status = qmp.query_status().await.unwrap();
        assert!(!status.running);
        assert_eq!(status.status, types::RunState::Paused);
        let list = qmp.qom_list("/machine").await.unwrap();
        assert_eq!(list[0].name, "type");
        let err = qmp.qom_list("/nope").await.unwrap_err();
        assert_eq!(err.qmp_error().unwrap().desc, "Device '/nope' not found");
        assert!(mock.sent_command(&commands::QomList {
            path: "/machine".into()
        }));
        qmp.close().await;
        mock.verify().unwrap();
    })
    .await;
}

#[tokio::test]
async fn bad_arguments_get_qemus_errors() {
    within(20, async {
        let mock = MockQemu::start().await.unwrap();
        mock.on::<commands::QomList, _, _>(|_| async { Ok(vec![]) });
        let qmp = mock.connect().await.unwrap();
        let raw = qmp.raw();
        let cases = [
            (
                "query-stauts",
                json!({}),
                "CommandNotFound",
                "The command query-stauts has not been found",
            ),
            (
                "qom-list",
                json!({}),
                "GenericError",
                "Parameter 'path' is missing",
            ),
            (
                "qom-list",
                json!({"path": 1}),
                "GenericError",
                "Invalid parameter type for 'path', expected: string",
            ),
            (
                "qom-list",
                json!({"path": "/", "x": 1}),
                "GenericError",
                "Parameter 'x' is unexpected",
            ),
            (
                "migrate-set-parameters",
                json!({"max-cpu-throttle": 300}),
                "GenericError",
                "Parameter 'max-cpu-throttle' expects uint8_t",
            ),
            (
                "blockdev-add",
                json!({"driver": "qcow2", "node-name": "n", "file": {"driver": "file"}}),
                "GenericError",
                "Parameter 'file.filename' is missing",
            ),
        ];
        for (command, args, class, desc) in cases {
            let err = raw.execute(command, &args).await.unwrap_err();
            let e = err.qmp_error().unwrap();
            assert_eq!(
                (e.class.as_str(), e.desc.as_str()),
                (class, desc),
                "{command} {args}"
            );
        }
        // A known command without a handler: CommandNotFound, as a QEMU without it.
        let err = qmp.query_name().await.unwrap_err();
        assert!(err.qmp_error().unwrap().is_command_not_found());
        // The defaults every QEMU has.
        let v = qmp.query_version().await.unwrap();
        assert_eq!((v.qemu.major, v.qemu.minor, v.qemu.micro), (10, 0, 2));
        let names = qmp.query_commands().await.unwrap();
        assert!(names.iter().any(|c| c.name == "blockdev-add"));
        // Inspection: everything sent, in order, refused ones included.
        let sent: Vec<String> = mock.sent().into_iter().map(|s| s.command).collect();
        assert_eq!(sent.len(), 9);
        assert_eq!(sent[0], "query-stauts");
        assert_eq!(
            &sent[6..],
            ["query-name", "query-version", "query-commands"]
        );
        assert_eq!(mock.sent_arguments::<commands::QomList>().len(), 3);
        // `{"path": "/", "x": 1}` is not `{"path": "/"}`.
        assert!(!mock.sent_command(&commands::QomList { path: "/".into() }));
        qmp.close().await;
    })
    .await;
}

#[tokio::test]
async fn impossible_replies_are_refused() {
    within(20, async {
        let mock = MockQemu::start().await.unwrap();
        // Decodes fine in Rust (`status` is any RunState), but QEMU never sends an unknown
        // enum value: build one through the fallback variant of the typed enum.
        let bogus: types::RunState = serde_json::from_value(json!("sleeping")).unwrap();
        mock.on::<commands::QueryStatus, _, _>(move |_| {
            let bogus = bogus.clone();
            async move { Ok(types::StatusInfo::new(true, bogus)) }
        });
        let qmp = mock.connect().await.unwrap();
        let err = qmp.query_status().await.unwrap_err();
        let desc = &err.qmp_error().unwrap().desc;
        // One prefix, and member wording (not a command's "Parameter ...").
        assert_eq!(
            desc,
            "mock QEMU: member 'status' does not accept value 'sleeping' in the test's reply \
             to query-status, which QEMU could never send"
        );
        let fault = mock.verify().unwrap_err();
        match &fault {
            MockError::NotInSchema { what, error } => {
                assert_eq!(what, "reply to query-status");
                assert_eq!(error.path, "status");
            }
            other => panic!("{other}"),
        }
        // An event whose data misses a required member.
        let err = mock
            .emit(EventKind::Shutdown, json!({"reason": "host-qmp-quit"}))
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "mock QEMU: member 'guest' is missing in the test's event SHUTDOWN, which QEMU \
             could never send"
        );
        let err = mock
            .emit(
                EventKind::Shutdown,
                json!({"guest": false, "reason": "host-qmp-quit", "cause": 1}),
            )
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "mock QEMU: member 'cause' is unexpected in the test's event SHUTDOWN, which QEMU \
             could never send"
        );
        mock.verify().unwrap_err();
        qmp.close().await;
    })
    .await;
}

#[tokio::test]
#[should_panic(expected = "QEMU could never send")]
async fn dropping_a_mock_with_faults_fails_the_test() {
    let mock = MockQemu::start().await.unwrap();
    let _ = mock.emit(EventKind::Stop, json!({"unexpected": 1})).await;
    drop(mock);
}

#[tokio::test]
async fn scripted_sequence_and_events() {
    within(20, async {
        let mock = MockQemu::start().await.unwrap();
        mock.replies::<commands::Cont>([
            Reply::err(QmpError::new("GenericError", "not yet")),
            Reply::ok(()).event_before(EventKind::Resume, ()), // as QEMU: RESUME before the reply,
        ]);
        mock.replies::<commands::Quit>([Reply::ok(()).then_event(
            EventKind::Shutdown,
            events::Shutdown {
                guest: false,
                reason: Some(types::ShutdownCause::HostQmpQuit),
            },
        )]);
        let qmp = mock.connect().await.unwrap();
        let mut stream = qmp.events();
        assert_eq!(
            qmp.cont().await.unwrap_err().qmp_error().unwrap().desc,
            "not yet"
        );
        qmp.cont().await.unwrap();
        assert!(matches!(
            stream.next().await,
            Some(Ok(qmp_api::Received {
                event: Event::Resume,
                ..
            }))
        ));
        // Used up: unhandled again.
        assert!(qmp
            .cont()
            .await
            .unwrap_err()
            .qmp_error()
            .unwrap()
            .is_command_not_found());
        qmp.quit().await.unwrap();
        match stream.next().await {
            Some(Ok(qmp_api::Received {
                event: Event::Shutdown(s),
                ..
            })) => {
                assert!(!s.guest);
                assert_eq!(s.reason, Some(types::ShutdownCause::HostQmpQuit));
            }
            other => panic!("{other:?}"),
        }
        // Events from the test, typed, to every client.
        assert_eq!(mock.emit(EventKind::Stop, ()).await.unwrap(), 1);
        assert!(matches!(
            stream.next().await,
            Some(Ok(qmp_api::Received {
                event: Event::Stop,
                ..
            }))
        ));
        qmp.close().await;
        mock.verify().unwrap();
    })
    .await;
}

#[tokio::test]
async fn handler_events_follow_the_reply() {
    within(20, async {
        let mock = MockQemu::start().await.unwrap();
        mock.on::<commands::Stop, _, _>(|args| async move {
            args.emit_after_reply(EventKind::Stop, ());
            Ok(())
        });
        // Before the reply, as QEMU sends STOP; data checked like a reply.
        mock.on::<commands::Cont, _, _>(|args| async move {
            args.emit(EventKind::Resume, ()).await?;
            args.emit(EventKind::Reset, json!({"guest": "yes"})).await?;
            Ok(())
        });
        let qmp = mock.connect().await.unwrap();
        let mut resumes = qmp.subscribe([EventKind::Resume]);
        let err = qmp.cont().await.unwrap_err();
        assert!(
            err.qmp_error().unwrap().desc.contains("event RESET"),
            "{err}"
        );
        assert!(matches!(
            resumes.next().await,
            Some(Ok(qmp_api::Received {
                event: Event::Resume,
                ..
            }))
        ));
        assert!(mock.verify().is_err());
        let mut stops = qmp.subscribe([EventKind::Stop]);
        qmp.stop().await.unwrap();
        assert!(matches!(
            stops.next().await,
            Some(Ok(qmp_api::Received {
                event: Event::Stop,
                ..
            }))
        ));
        assert!(mock.sent_command(&commands::Stop));
        qmp.close().await;
    })
    .await;
}

#[tokio::test]
async fn builder_settings_and_unix_socket() {
    within(20, async {
        let mock = MockQemu::builder()
            .version(Version::new(9, 2, 0))
            .unhandled(Unhandled::EmptyReturn)
            .start()
            .await
            .unwrap();
        let qmp = qmp_api::Qmp::connect_unix(mock.path()).await.unwrap();
        assert_eq!(qmp.server_version(), Version::new(9, 2, 0));
        // Returns nothing: answered `{}`; returns something: cannot be made up.
        qmp.stop().await.unwrap();
        assert!(qmp
            .query_status()
            .await
            .unwrap_err()
            .qmp_error()
            .unwrap()
            .is_command_not_found());
        qmp.close().await;
    })
    .await;
}

#[tokio::test]
async fn typed_arguments_decode() {
    within(20, async {
        let mock = MockQemu::start().await.unwrap();
        mock.on::<commands::BlockdevAdd, _, _>(|args| async move {
            let options: types::BlockdevOptions = args.decode()?;
            let json = serde_json::to_value(&options).unwrap();
            if json["node-name"] == "n0" {
                Ok(())
            } else {
                Err(QmpError::new("GenericError", "wrong node"))
            }
        });
        let qmp = mock.connect().await.unwrap();
        let args = json!({"driver": "null-co", "node-name": "n0"});
        qmp.raw().execute("blockdev-add", &args).await.unwrap();
        assert_eq!(mock.sent_arguments::<commands::BlockdevAdd>(), [args]);
        qmp.close().await;
    })
    .await;
}

#[tokio::test]
async fn supports_works_against_the_mock() {
    within(20, async {
        let mock = MockQemu::start().await.unwrap();
        let qmp = mock.connect().await.unwrap();
        assert!(qmp
            .supports(SchemaItem::Command("blockdev-add"))
            .await
            .unwrap());
        assert!(!qmp.supports(SchemaItem::Command("no-such")).await.unwrap());
        let copy_mode = SchemaItem::Argument {
            command: "blockdev-mirror",
            argument: "copy-mode",
        };
        assert!(qmp.supports(copy_mode).await.unwrap());
        let nested = SchemaItem::Argument {
            command: "blockdev-add",
            argument: "file.filename",
        };
        assert!(qmp.supports(nested).await.unwrap());
        let top = SchemaItem::Value {
            command: "blockdev-mirror",
            argument: "sync",
            value: "top",
        };
        assert!(qmp.supports(top).await.unwrap());
        // The reply reads back through the introspection loader with the same commands.
        let reply = qmp.raw().execute("query-qmp-schema", ()).await.unwrap();
        let model = qmp_codegen::load_introspection(&reply.to_string()).unwrap();
        let names = |s: &qmp_codegen::Schema| -> Vec<String> {
            let mut v: Vec<String> = s.commands().map(|c| c.name.clone()).collect();
            v.sort();
            v
        };
        assert_eq!(names(&model), names(qmp_api::schema::builtin()));
        qmp.close().await;
    })
    .await;
}

#[test]
fn builtin_schema_load_time() {
    // A figure for the report, not a threshold: loading is once per process.
    let start = std::time::Instant::now();
    let schema = qmp_api::schema::load_builtin().unwrap();
    let took = start.elapsed();
    eprintln!(
        "qmp_api::schema::builtin() loaded {} in {took:?}",
        schema.counts()
    );
    assert!(schema.command("query-status").is_some());
}
