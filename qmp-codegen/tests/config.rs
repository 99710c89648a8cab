//! The build-script configuration: which schema it picks, and what it says when the choice is
//! wrong.

use qmp_codegen::{BuildError, Config};

#[test]
fn the_environment_variable_wins_and_must_be_absolute() {
    // A variable of this test's own, so that parallel tests never see it.
    const VAR: &str = "QMP_CODEGEN_TEST_SCHEMA_PATH";
    let config = Config::new().schema("/default.json").schema_env(VAR);
    std::env::remove_var(VAR);
    assert_eq!(
        config.schema_path().unwrap(),
        std::path::Path::new("/default.json")
    );

    std::env::set_var(VAR, "/abs/schema.json");
    assert_eq!(
        config.schema_path().unwrap(),
        std::path::Path::new("/abs/schema.json")
    );

    std::env::set_var(VAR, "rel/schema.json");
    let err = config.schema_path().unwrap_err();
    assert!(
        matches!(err, BuildError::RelativeSchemaPath { .. }),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("absolute path") && msg.contains("rel/schema.json"),
        "{msg}"
    );

    // Empty counts as unset.
    std::env::set_var(VAR, "");
    assert_eq!(
        config.schema_path().unwrap(),
        std::path::Path::new("/default.json")
    );
    std::env::remove_var(VAR);
}
