//! The codegen front end on live introspection: `query-qmp-schema` from real QEMU loads into
//! the checked model, agrees with `query-commands`, and generates code.

use qmp_codegen::emit::{generate, Options};
use qmp_codegen::load_introspection;
use qmp_tests::qemu::{Kind, Qemu};
use qmp_tests::within;

#[tokio::test]
async fn live_query_qmp_schema_loads_checks_and_generates() {
    for kind in [Kind::System10, Kind::System72, Kind::StorageDaemon] {
        let Some(qemu) = Qemu::start(kind) else {
            continue;
        };
        within(60, async {
            let client = qemu.connect().await;
            let dump = client.execute_raw("query-qmp-schema", ()).await.unwrap();
            let schema = load_introspection(dump.get()).unwrap_or_else(|e| panic!("{kind:?}: {e}"));
            let counts = schema.counts();
            assert!(
                counts.commands > 60 && counts.events > 10,
                "{kind:?}: {counts}"
            );

            // Every command QEMU lists is in the model, and the other way round.
            let listed = client.execute("query-commands", ()).await.unwrap();
            let mut live: Vec<String> = listed
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["name"].as_str().unwrap().to_string())
                .collect();
            let mut model: Vec<String> = schema.commands().map(|c| c.name.clone()).collect();
            live.sort();
            model.sort();
            assert_eq!(live, model, "{kind:?}");

            // query-status returns a struct whose masked name got a readable one.
            if kind != Kind::StorageDaemon {
                let status = schema.command("query-status").unwrap();
                let ret = status.returns.as_ref().unwrap().to_string();
                assert!(
                    !ret.chars().all(|c| c.is_ascii_digit()),
                    "masked name kept: {ret}"
                );
                let members = schema.object_members(&ret).unwrap();
                assert!(members.iter().any(|m| m.name == "running"));
            }

            let files =
                generate(&schema, &Options::default()).unwrap_or_else(|e| panic!("{kind:?}: {e}"));
            assert!(files
                .iter()
                .any(|f| f.name == "commands.rs" && f.contents.contains("pub fn query_version")));
        })
        .await;
    }
}
