//! Regression tests, named after the issue and the finding that prompted them.

use std::sync::mpsc;
use std::time::Duration;

use qmp_api::types::BlockdevOptions;

/// Issue 6, fuzzing finding 1: a failing decode of nested unions re-decoded every level once
/// more per level while locating the error path (4x per level for `BlockdevOptions`: 12 levels
/// took 7 s). Each part is now decoded a bounded number of times.
#[test]
fn issue_6_nested_union_decode_errors_are_not_exponential() {
    let depth = 24;
    let mut json = String::new();
    for _ in 0..depth {
        json.push_str(r#"{"driver": "qcow2", "file": "#);
    }
    json.push('5');
    json.push_str(&"}".repeat(depth));

    let (tx, rx) = mpsc::channel();
    let decode = json.clone();
    std::thread::spawn(move || {
        let res = qmp_core::DecodeError::decode::<BlockdevOptions>("blockdev-add", &decode);
        let _ = tx.send(res);
    });
    let res = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("decoding 24 nested unions did not finish within 20 s");
    let err = res.expect_err("5 is not a BlockdevRef");
    // The error still names the innermost offending member.
    assert_eq!(err.path, vec!["file"; depth].join("."), "{err}");
    assert!(
        err.message
            .contains("BlockdevRef expects an object or a string"),
        "{err}"
    );
}
