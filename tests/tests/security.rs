//! Accept-mode sockets: private permissions, and never replacing what is not ours.

use std::os::unix::fs::{FileTypeExt, PermissionsExt};

use qmp_core::{ListenError, Listener};
use qmp_tests::TempDir;

#[tokio::test]
async fn unix_listener_is_private_and_careful_with_existing_paths() {
    let dir = TempDir::new();

    // Created with mode 0600, whatever the umask allows.
    let path = dir.join("qmp.sock");
    let listener = Listener::bind_unix(&path).unwrap();
    let meta = std::fs::metadata(&path).unwrap();
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    // No temporary name is left behind.
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers, vec![std::ffi::OsString::from("qmp.sock")]);
    drop(listener);
    assert!(
        !path.exists(),
        "the socket file is removed with the listener"
    );

    // A regular file is never replaced.
    let file = dir.join("important.txt");
    std::fs::write(&file, "keep me").unwrap();
    match Listener::bind_unix(&file) {
        Err(ListenError::PathExists { path }) => assert!(path.ends_with("important.txt")),
        other => panic!("{other:?}"),
    }
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "keep me");

    // Nor is a symlink (even one pointing at a socket), nor a directory.
    let target = dir.join("real.sock");
    let _real = Listener::bind_unix(&target).unwrap();
    let link = dir.join("link.sock");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    assert!(matches!(
        Listener::bind_unix(&link),
        Err(ListenError::PathExists { .. })
    ));
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    assert!(matches!(
        Listener::bind_unix(dir.path()),
        Err(ListenError::PathExists { .. })
    ));

    // A stale socket (left by a crashed process) is replaced.
    let stale = dir.join("stale.sock");
    drop(std::os::unix::net::UnixListener::bind(&stale).unwrap());
    assert!(std::fs::symlink_metadata(&stale)
        .unwrap()
        .file_type()
        .is_socket());
    let _fresh = Listener::bind_unix(&stale).unwrap();
    assert_eq!(
        std::fs::metadata(&stale).unwrap().permissions().mode() & 0o777,
        0o600
    );

    // A missing directory is a clear error naming the path.
    let err = Listener::bind_unix(dir.join("no/such/dir/q.sock")).unwrap_err();
    assert!(err.to_string().contains("no/such/dir/q.sock"), "{err}");
}
