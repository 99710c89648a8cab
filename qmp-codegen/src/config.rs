//! [`Config`]: the one-call entry point for build scripts (load → generate → write).

use std::collections::BTreeSet;
use std::io;
use std::path::{Path, PathBuf};

use crate::emit::{self, EmitError, GeneratedFile, Options};
use crate::history::{self, MergedSchema};
use crate::{load_path, Schema, SchemaError};

/// Generates the typed API from a schema in a build script.
///
/// Loads the schema (QAPI source, introspection dump or normalized JSON; detected by content),
/// generates the Rust files, writes those whose contents changed into `OUT_DIR`, and tells
/// cargo what to watch, so a build that changed nothing regenerates nothing.
///
/// ```no_run
/// // build.rs
/// let result = qmp_codegen::Config::new()
///     .schema("../schema/qemu-10.0.13.json")
///     .schema_env("QMP_SCHEMA")
///     .run();
/// if let Err(e) = result {
///     eprintln!("error: {e}");
///     std::process::exit(1);
/// }
/// ```
#[derive(Debug, Clone, Default)]
pub struct Config {
    schema: Option<PathBuf>,
    schema_env: Option<String>,
    out_dir: Option<PathBuf>,
    options: Options,
}

/// Why [`Config::run`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// Neither a schema path nor a set environment variable.
    #[error("no schema given: call Config::schema, or set the schema environment variable")]
    NoSchema,
    /// The environment variable names a relative path. Build scripts run in their crate's
    /// directory, not where cargo was started, so a relative path would silently point
    /// elsewhere.
    #[error("{var}={path} is a relative path, but build scripts run in {cwd}, not where cargo was started; give an absolute path (for example {var}=$PWD/{path})")]
    RelativeSchemaPath {
        /// The environment variable.
        var: String,
        /// Its value.
        path: String,
        /// The build script's working directory.
        cwd: String,
    },
    /// `OUT_DIR` is not set (not running as a build script) and no output directory was given.
    #[error("OUT_DIR is not set: run from a build script or call Config::out_dir")]
    NoOutDir,
    /// The schema did not load or check.
    #[error("schema {path}: {error}")]
    Schema {
        /// The schema path.
        path: String,
        /// What is wrong.
        error: SchemaError,
    },
    /// Generation failed.
    #[error("generating code from {path}: {error}")]
    Emit {
        /// The schema path.
        path: String,
        /// What went wrong.
        error: EmitError,
    },
    /// Writing a generated file failed.
    #[error("cannot write {path}: {error}")]
    Io {
        /// The file.
        path: String,
        /// The underlying error.
        error: io::Error,
    },
}

/// What [`Config::run`] did.
#[derive(Debug, Clone)]
pub struct Report {
    /// The schema used.
    pub schema: PathBuf,
    /// Every file written or already up to date, with its line count.
    pub files: Vec<(PathBuf, usize)>,
    /// Files whose contents changed (and were written).
    pub written: usize,
    /// The loaded, checked schema, for a build script that adapts to what it has (`qmp-api`
    /// builds its workflows only when the schema has the commands and types they use).
    pub model: Schema,
}

impl Config {
    /// A configuration with defaults: prose docs on, output to `$OUT_DIR`.
    pub fn new() -> Self {
        Self::default()
    }

    /// The schema to use (unless the environment variable of [`schema_env`](Self::schema_env)
    /// is set).
    pub fn schema(mut self, path: impl Into<PathBuf>) -> Self {
        self.schema = Some(path.into());
        self
    }

    /// An environment variable that, when set, names the schema instead (an absolute path);
    /// cargo reruns the build script when it changes.
    pub fn schema_env(mut self, var: impl Into<String>) -> Self {
        self.schema_env = Some(var.into());
        self
    }

    /// Where to write (default: `$OUT_DIR`).
    pub fn out_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.out_dir = Some(dir.into());
        self
    }

    /// Whether to turn the schema's doc prose into rustdoc (default: yes; only QAPI source
    /// carries prose).
    pub fn prose(mut self, on: bool) -> Self {
        self.options.prose = on;
        self
    }

    /// The oldest QEMU (major, minor) whose replies the generated code must decode (default
    /// 2.12): required members added later become `Option`s. See [`Options::oldest_qemu`].
    pub fn oldest_qemu(mut self, major: u32, minor: u32) -> Self {
        self.options.oldest_qemu = (major, minor);
        self
    }

    /// Loads the schema at `path` and generates the files (nothing is written): a merged
    /// normalized file (with a `history` key, like `schema/qemu.json`) through
    /// [`emit::generate_merged`], anything else through [`Config::generate`].
    ///
    /// # Errors
    ///
    /// [`BuildError::Schema`] if the schema does not load, [`BuildError::Emit`] if code
    /// generation fails.
    pub fn generate_path(&self, path: &Path) -> Result<Vec<GeneratedFile>, BuildError> {
        let shown = path.display().to_string();
        let schema = load(path).map_err(|error| BuildError::Schema {
            path: shown.clone(),
            error,
        })?;
        match &schema {
            Loaded::Plain(s) => self.generate(s),
            Loaded::Merged(m) => emit::generate_merged(m, &self.options),
        }
        .map_err(|error| BuildError::Emit { path: shown, error })
    }

    /// The typed client the command methods are generated on (default `Qmp`): the crate that
    /// includes the generated code defines a type of this name at its root, as `qmp-ga` does
    /// with `GuestAgent`. See [`Options::client_type`].
    pub fn client_type(mut self, name: impl Into<String>) -> Self {
        self.options.client_type = name.into();
        self
    }

    /// Gates `Deserialize` on the types QEMU never sends behind the cargo feature `feature`
    /// of the crate that includes the code (default: every type implements it). See
    /// [`Options::decode_arguments_feature`].
    ///
    /// ```
    /// let config = qmp_codegen::Config::new().decode_arguments_feature("decode-arguments");
    /// # let _ = config;
    /// ```
    pub fn decode_arguments_feature(mut self, feature: impl Into<String>) -> Self {
        self.options.decode_arguments_feature = Some(feature.into());
        self
    }

    /// Generates the files for an already loaded schema (pure; nothing is written).
    pub fn generate(&self, schema: &Schema) -> Result<Vec<GeneratedFile>, EmitError> {
        emit::generate(schema, &self.options)
    }

    /// The schema path this configuration selects (environment variable first).
    pub fn schema_path(&self) -> Result<PathBuf, BuildError> {
        if let Some(var) = &self.schema_env {
            if let Some(v) = std::env::var_os(var).filter(|v| !v.is_empty()) {
                let path = PathBuf::from(v);
                if path.is_relative() {
                    return Err(BuildError::RelativeSchemaPath {
                        var: var.clone(),
                        path: path.display().to_string(),
                        cwd: std::env::current_dir()
                            .map(|d| d.display().to_string())
                            .unwrap_or_else(|_| "the crate's directory".into()),
                    });
                }
                return Ok(path);
            }
        }
        self.schema.clone().ok_or(BuildError::NoSchema)
    }

    /// Loads, generates and writes; prints `cargo:rerun-if-...` lines for every input.
    pub fn run(&self) -> Result<Report, BuildError> {
        if let Some(var) = &self.schema_env {
            println!("cargo:rerun-if-env-changed={var}");
        }
        let path = self.schema_path()?;
        let shown = path.display().to_string();
        let schema = load(&path).map_err(|error| BuildError::Schema {
            path: shown.clone(),
            error,
        })?;
        let (plain, merged) = match &schema {
            Loaded::Plain(s) => (s, None),
            Loaded::Merged(m) => (&m.schema, Some(m)),
        };
        for input in inputs(&path, plain) {
            println!("cargo:rerun-if-changed={}", input.display());
        }
        let files = match merged {
            Some(m) => emit::generate_merged(m, &self.options),
            None => self.generate(plain),
        }
        .map_err(|error| BuildError::Emit { path: shown, error })?;
        let out_dir = match &self.out_dir {
            Some(d) => d.clone(),
            None => std::env::var_os("OUT_DIR")
                .map(PathBuf::from)
                .ok_or(BuildError::NoOutDir)?,
        };
        let (files, written) = write_if_changed(&out_dir, &files)?;
        Ok(Report {
            schema: path,
            files,
            written,
            // For a merged schema: its definitions (the history's relaxed members aside).
            model: match schema {
                Loaded::Plain(s) => s,
                Loaded::Merged(m) => m.schema,
            },
        })
    }
}

/// A schema as the build reads it.
enum Loaded {
    /// One version's schema.
    Plain(Schema),
    /// A merged schema with its history (a normalized file with a `history` key).
    Merged(MergedSchema),
}

/// Loads `path`: a merged normalized file with its history, anything else as [`load_path`].
fn load(path: &Path) -> Result<Loaded, SchemaError> {
    let is_json = path.extension().is_some_and(|e| e == "json");
    if is_json {
        let name = path.to_string_lossy().into_owned();
        let text = std::fs::read_to_string(path).map_err(|error| SchemaError::Io {
            path: name.clone(),
            error,
        })?;
        if crate::load::detect(&text) == crate::load::InputKind::Normalized {
            let v: serde_json::Value =
                serde_json::from_str(&text).map_err(|e| SchemaError::json_syntax(&name, &e))?;
            if v.get("history").is_some() {
                return history::from_value(&name, &v).map(Loaded::Merged);
            }
        }
    }
    load_path(path).map(Loaded::Plain)
}

/// Every file the schema was read from: the root and every file a definition came from.
fn inputs(root: &Path, schema: &Schema) -> BTreeSet<PathBuf> {
    let mut out = BTreeSet::new();
    out.insert(root.to_path_buf());
    for def in &schema.definitions {
        let file = &def.location().file;
        if !file.is_empty() && Path::new(&**file).exists() {
            out.insert(PathBuf::from(&**file));
        }
    }
    out
}

/// Writes each file unless it already has exactly these contents (so cargo and rustc see no
/// change).
pub fn write_if_changed(
    dir: &Path,
    files: &[GeneratedFile],
) -> Result<(Vec<(PathBuf, usize)>, usize), BuildError> {
    std::fs::create_dir_all(dir).map_err(|error| BuildError::Io {
        path: dir.display().to_string(),
        error,
    })?;
    let mut out = Vec::new();
    let mut written = 0;
    for f in files {
        let path = dir.join(&f.name);
        let same = std::fs::read(&path).is_ok_and(|old| old == f.contents.as_bytes());
        if !same {
            std::fs::write(&path, &f.contents).map_err(|error| BuildError::Io {
                path: path.display().to_string(),
                error,
            })?;
            written += 1;
        }
        out.push((path, f.contents.lines().count()));
    }
    Ok((out, written))
}
