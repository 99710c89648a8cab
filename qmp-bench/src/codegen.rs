//! The codegen row: parse + check + emit of the full QEMU 10.0.13 QAPI schema, in this
//! process, against qapi-rs's generator (`qapi-codegen`, what `qapi-qmp`'s build script runs)
//! on the same schema.

use std::path::{Path, PathBuf};
use std::time::Instant;

/// What one generator run produced.
#[derive(Debug, Clone, Copy)]
pub struct Generated {
    /// Seconds taken.
    pub secs: f64,
    /// Lines of Rust produced.
    pub lines: usize,
}

/// `qmp_codegen::parse_qapi` + `qmp_codegen::emit::generate` (formatted source in memory).
pub fn ours(root: &Path) -> Result<Generated, String> {
    let t = Instant::now();
    let schema = qmp_codegen::parse_qapi(root).map_err(|e| e.to_string())?;
    let files =
        qmp_codegen::emit::generate(&schema, &Default::default()).map_err(|e| e.to_string())?;
    let secs = t.elapsed().as_secs_f64();
    let lines = files.iter().map(|f| f.contents.lines().count()).sum();
    Ok(Generated { secs, lines })
}

/// `qapi_codegen::codegen` on the directory holding `root`, writing its output to `out`
/// (it writes straight to the file; it has no in-memory mode).
pub fn qapi_codegen(root: &Path, out: &Path) -> Result<Generated, String> {
    let dir: PathBuf = root
        .parent()
        .ok_or("the schema root has no directory")?
        .to_path_buf();
    let t = Instant::now();
    qapi_codegen::codegen(&dir, out, "QmpCommand".into()).map_err(|e| e.to_string())?;
    let secs = t.elapsed().as_secs_f64();
    let lines = std::fs::read_to_string(out)
        .map(|s| s.lines().count())
        .unwrap_or(0);
    Ok(Generated { secs, lines })
}
