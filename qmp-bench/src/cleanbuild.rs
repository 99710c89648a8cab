//! The build row: a clean debug build of `qmp-api` against a clean debug build of `qapi-qmp`
//! from crates.io, in the same run. Each build gets a fresh `--target-dir` and
//! `CARGO_INCREMENTAL=0`, and includes every dependency. After it, the crate alone is rebuilt
//! (`cargo clean -p CRATE`, then build: its build script compiled and run, the crate compiled),
//! and the generated Rust is counted.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

/// What one build measured.
#[derive(Debug, Clone, Copy)]
pub struct Build {
    /// Seconds for the clean build with all dependencies.
    pub clean_s: f64,
    /// Seconds to rebuild just the crate (build script + crate) with dependencies built.
    pub crate_s: f64,
    /// Lines of generated Rust in the crate's `OUT_DIR`.
    pub generated_lines: usize,
}

/// Which crate to build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject {
    /// `qmp-api` from this workspace.
    QmpApi,
    /// `qapi-qmp` 0.15.0 from crates.io, through a throwaway project.
    QapiQmp,
}

impl Subject {
    fn package(self) -> &'static str {
        match self {
            Subject::QmpApi => "qmp-api",
            Subject::QapiQmp => "qapi-qmp",
        }
    }
}

/// Creates a throwaway project that depends on `dependency` (a Cargo dependency line), the way
/// a user's crate would: outside our workspace, so none of its profile settings apply. Resolves
/// its lock file (not timed). Returns its manifest.
pub fn prepare_project(
    dir: &Path,
    name: &str,
    dependency: &str,
    crate_name: &str,
) -> Result<PathBuf, String> {
    std::fs::create_dir_all(dir.join("src")).map_err(|e| e.to_string())?;
    let manifest = dir.join("Cargo.toml");
    std::fs::write(
        &manifest,
        format!(
            "[package]\nname = \"{name}\"\nversion = \"0.0.0\"\nedition = \"2021\"\npublish = false\n\n\
             [dependencies]\n{dependency}\n\n# Not part of the qmp-rs workspace.\n[workspace]\n"
        ),
    )
    .map_err(|e| e.to_string())?;
    std::fs::write(dir.join("src/lib.rs"), format!("pub use {crate_name};\n"))
        .map_err(|e| e.to_string())?;
    if !dir.join("Cargo.lock").is_file() {
        cargo(&manifest, &["generate-lockfile"], None)?;
    }
    Ok(manifest)
}

/// Builds `subject` from scratch in `target_dir` (removed first).
pub fn measure(subject: Subject, manifest: &Path, target_dir: &Path) -> Result<Build, String> {
    let _ = std::fs::remove_dir_all(target_dir);
    let build = ["build", "--quiet", "-p", subject.package()];
    let t = Instant::now();
    cargo(manifest, &build, Some(target_dir))?;
    let clean_s = t.elapsed().as_secs_f64();
    cargo(
        manifest,
        &["clean", "--quiet", "-p", subject.package()],
        Some(target_dir),
    )?;
    let t = Instant::now();
    cargo(manifest, &build, Some(target_dir))?;
    let crate_s = t.elapsed().as_secs_f64();
    let generated_lines = count_generated(&target_dir.join("debug/build"), subject.package());
    let _ = std::fs::remove_dir_all(target_dir);
    Ok(Build {
        clean_s,
        crate_s,
        generated_lines,
    })
}

fn cargo(manifest: &Path, args: &[&str], target_dir: Option<&Path>) -> Result<(), String> {
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.args(args)
        .arg("--manifest-path")
        .arg(manifest)
        .env("CARGO_INCREMENTAL", "0")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_TARGET_DIR")
        .stdin(Stdio::null());
    if let Some(dir) = target_dir {
        cmd.arg("--target-dir").arg(dir);
    }
    let out = cmd.output().map_err(|e| format!("cargo: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "cargo {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// Lines of the `.rs` files in `build/PACKAGE-*/out/`.
fn count_generated(build_dir: &Path, package: &str) -> usize {
    let Ok(entries) = std::fs::read_dir(build_dir) else {
        return 0;
    };
    let prefix = format!("{package}-");
    let mut lines = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        if !name.to_string_lossy().starts_with(&prefix) {
            continue;
        }
        let Ok(files) = std::fs::read_dir(entry.path().join("out")) else {
            continue;
        };
        for f in files.flatten() {
            if f.path().extension().is_some_and(|e| e == "rs") {
                lines += std::fs::read_to_string(f.path()).map_or(0, |s| s.lines().count());
            }
        }
    }
    lines
}
