//! The golden edge-case schema's generated code compiles, under `cargo test` (it used to be
//! proven only by a shell loop): `qmp-api` is checked with `QMP_SCHEMA` naming the edge-case
//! schema, together with its glob-import test, and a small crate uses every shape the golden
//! files promise. Nested cargo runs use their own target directory (`target/golden-check`),
//! which stays warm between runs.

mod common;

use std::path::Path;
use std::process::Command;

fn cargo(args: &[&str], dir: &Path, target: &Path, schema: &Path) {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(cargo)
        .args(args)
        .current_dir(dir)
        .env("QMP_SCHEMA", schema)
        .env("CARGO_TARGET_DIR", target)
        .env("RUSTFLAGS", "-D warnings")
        .env_remove("CARGO_MAKEFLAGS")
        .output()
        .expect("run cargo");
    assert!(
        out.status.success(),
        "cargo {} failed:\n{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Uses the shapes of `tests/golden/edge-cases/` as a user would.
const USER: &str = r#"
#![deny(warnings, ambiguous_glob_imports)]
use std::time::Duration;

use qmp_api::commands::*;
use qmp_api::events::*;
use qmp_api::types::*;
use qmp_api::*;

pub fn shapes(qmp: &Qmp, file: &std::fs::File) -> Vec<Box<dyn std::future::Future<Output = Result<(), ExecuteError>> + Send>> {
    // Keywords as parameters, an optional argument set by name, a call's own timeout.
    let set = qmp.set_thing("t", Color::Static).size(5).timeout(Some(Duration::from_secs(1)));
    // A struct that is the command's own type: same shape; `timeout` is the call's, the
    // argument named `timeout` is `timeout_arg`.
    let speed = qmp.set_speed("job0").speed(1).timeout_arg(2).timeout(None);
    let value: &SetSpeed = speed.command();
    assert_eq!(value.job, "job0");
    // A union argument is taken whole.
    let node = Node::new(NodeVariant::File(NodeFile::new("/x")));
    let add = qmp.add_node(node);
    // Out of band and file descriptors where the schema and the fact table allow them.
    let pause = qmp.pause_now().oob();
    let getfd = qmp.getfd("fd0").fd(file);
    // Arguments the schema does not list.
    let device = qmp.device_like("virtio").id("d0").arg("bus", "pci.0");
    vec![Box::new(set), Box::new(speed), Box::new(add), Box::new(pause), Box::new(getfd), Box::new(device)]
}

pub fn values() {
    // Unknown values are normalized: a known name is its variant.
    assert_eq!(Color::from_wire("red"), Color::Red);
    assert!(matches!(Color::from_wire("mauve"), Color::Other(v) if v.as_str() == "mauve"));
    let shape = Shape::new(ShapeVariant::Point);
    assert_eq!(shape.kind.tag(), ShapeKind::Point);
    let _tree = qmp_api::commands::AddTree(Tree::new("root"));
    let _: Option<ThingChanged> = None;
    let _: Option<SpeedSet> = None;
    let _ = edge_cases_control::SetSpeed::new("j");
    assert_eq!(<QmpCapabilities as Command>::NAME, "qmp_capabilities");
}
"#;

#[test]
fn golden_edge_cases_compile_as_qmp_api() {
    let root = common::workspace_root().canonicalize().unwrap();
    let schema = root.join("qmp-codegen/tests/golden/edge-cases.json");
    let target = root.join("target/golden-check");
    // qmp-api itself, and its test that uses every public name through glob imports.
    cargo(
        &["check", "-q", "-p", "qmp-api", "--tests"],
        &root,
        &target,
        &schema,
    );
    // A user's crate.
    let user = target.join("golden-user");
    std::fs::create_dir_all(user.join("src")).unwrap();
    let api = root.join("qmp-api");
    std::fs::write(
        user.join("Cargo.toml"),
        format!(
            "[package]\nname = \"golden-user\"\nversion = \"0.0.0\"\nedition = \"2021\"\npublish = false\n\n\
             [dependencies]\nqmp-api = {{ path = {:?} }}\nserde_json = \"1\"\n\n[workspace]\n",
            api.display().to_string()
        ),
    )
    .unwrap();
    std::fs::write(user.join("src/lib.rs"), USER).unwrap();
    // Lock the user crate to the workspace's versions, so no registry lookup is needed.
    std::fs::copy(root.join("Cargo.lock"), user.join("Cargo.lock")).unwrap();
    cargo(&["check", "-q", "--offline"], &user, &target, &schema);
}
