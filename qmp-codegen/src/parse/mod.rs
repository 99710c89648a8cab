//! The QAPI source front end: reads a root schema file and everything it includes into raw
//! definitions (with file and line), attaching each definition's doc comment block.

mod cond;
mod expr;
mod syntax;

use std::collections::HashSet;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use crate::doc;
use crate::error::{Location, SchemaError};
use crate::model::Pragmas;
use crate::raw::{Origin, RawSchema};

pub(crate) use cond::is_symbol;

/// Deepest include chain accepted.
const MAX_INCLUDE_DEPTH: usize = 64;

/// Reads the root file `root` and its includes into raw definitions.
pub(crate) fn parse_raw(root: &Path) -> Result<RawSchema, SchemaError> {
    let mut st = State {
        seen: HashSet::new(),
        stack: Vec::new(),
        out: RawSchema {
            defs: Vec::new(),
            pragmas: Pragmas::default(),
            source: Some(source_name(root)),
            origin: Origin::Source,
        },
    };
    let display = normalize_lexically(root);
    st.file(&display, None)?;
    Ok(st.out)
}

/// Parses QAPI source text held in memory (no includes allowed, since there is no directory
/// to resolve them against); `name` is used in locations.
pub(crate) fn parse_raw_str(name: &str, text: &str) -> Result<RawSchema, SchemaError> {
    let mut out = RawSchema {
        defs: Vec::new(),
        pragmas: Pragmas::default(),
        source: Some(name.to_string()),
        origin: Origin::Source,
    };
    let file: Arc<str> = Arc::from(name);
    let items = syntax::parse_file(&file, text.as_bytes())?;
    let mut pending: Option<Pending> = None;
    for item in items {
        match item {
            syntax::TopItem::Doc(block) => doc_block(&file, block, &mut pending)?,
            syntax::TopItem::Expr(node) => {
                if let Some(path) = expr::include_path(&file, &node)? {
                    not_pending(&pending)?;
                    return Err(SchemaError::Include {
                        location: Location::new(file.clone(), node.pos.line, 0),
                        message: format!(
                            "cannot include '{path}': schema text given in memory has no \
                             directory to resolve includes against (load it from a file)"
                        ),
                    });
                }
                directive_or_def(&file, &node, &mut pending, &mut out)?;
            }
        }
    }
    not_pending(&pending)?;
    Ok(out)
}

/// A short descriptive name for a root file: the path from the version directory
/// (`qemu-10.0.13/qapi/qapi-schema.json`, `qga-10.0.13/qapi-schema.json`) when there is one,
/// else the file name. Never absolute.
pub fn source_name(path: &Path) -> String {
    let norm = normalize_lexically(path);
    let comps: Vec<String> = Path::new(&norm)
        .components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
            _ => None,
        })
        .collect();
    let is_version_dir = |s: &str| {
        ["qemu-", "qga-", "qemu-storage-daemon-"].iter().any(|p| {
            s.strip_prefix(p)
                .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit()))
        })
    };
    if let Some(i) = comps.iter().rposition(|c| is_version_dir(c)) {
        if i + 1 < comps.len() {
            return comps[i..].join("/");
        }
    }
    comps.last().cloned().unwrap_or_else(|| "schema".into())
}

/// The QAPI module a file defines: its name without directory and `.json` extension
/// (`qapi/block-core.json` → `block-core`), as QEMU's documentation names it.
pub(crate) fn module_name(file: &str) -> String {
    let stem = Path::new(file)
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    if stem.is_empty() {
        file.to_string()
    } else {
        stem
    }
}

/// Removes `.` components and folds `dir/..` where possible (keeps leading `..`).
fn normalize_lexically(p: &Path) -> String {
    let mut out: Vec<Component<'_>> = Vec::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => match out.last() {
                Some(Component::Normal(_)) => {
                    out.pop();
                }
                Some(Component::RootDir) | Some(Component::Prefix(_)) => {}
                _ => out.push(c),
            },
            c => out.push(c),
        }
    }
    let pb: PathBuf = out.iter().collect();
    let s = pb.to_string_lossy().into_owned();
    if s.is_empty() {
        ".".into()
    } else {
        s
    }
}

struct State {
    seen: HashSet<PathBuf>,
    /// The include chain: (canonical path, display path).
    stack: Vec<(PathBuf, String)>,
    out: RawSchema,
}

/// A definition doc block waiting for its definition.
struct Pending {
    symbol: String,
    doc: doc::Doc,
    loc: Location,
}

fn not_pending(p: &Option<Pending>) -> Result<(), SchemaError> {
    match p {
        Some(p) => Err(SchemaError::Doc {
            location: p.loc.clone(),
            message: format!(
                "documentation block for '{}' is not followed by the definition of '{}'",
                p.symbol, p.symbol
            ),
        }),
        None => Ok(()),
    }
}

fn doc_block(
    file: &Arc<str>,
    block: syntax::DocBlock,
    pending: &mut Option<Pending>,
) -> Result<(), SchemaError> {
    not_pending(pending)?;
    let loc = Location::new(file.clone(), block.line, 0);
    let (symbol, doc) = doc::parse_block(&block.lines).map_err(|m| SchemaError::Doc {
        location: loc.clone(),
        message: m,
    })?;
    if let Some(symbol) = symbol {
        *pending = Some(Pending { symbol, doc, loc });
    }
    Ok(())
}

fn directive_or_def(
    file: &Arc<str>,
    node: &syntax::Node,
    pending: &mut Option<Pending>,
    out: &mut RawSchema,
) -> Result<(), SchemaError> {
    if expr::pragma(file, node, &mut out.pragmas)? {
        return not_pending(pending);
    }
    let mut def = expr::definition(file, node)?;
    def.module = Some(module_name(file));
    if let Some(p) = pending.take() {
        if p.symbol != def.name {
            return Err(SchemaError::Doc {
                location: p.loc,
                message: format!(
                    "documentation block is for '{}' but the definition that follows is '{}'",
                    p.symbol, def.name
                ),
            });
        }
        def.doc = Some(p.doc);
    }
    out.defs.push(def);
    Ok(())
}

impl State {
    fn chain(&self, last: &str) -> String {
        let mut v: Vec<&str> = self.stack.iter().map(|(_, d)| d.as_str()).collect();
        v.push(last);
        v.join(" -> ")
    }

    fn file(&mut self, display: &str, from: Option<Location>) -> Result<(), SchemaError> {
        let path = Path::new(display);
        let canonical = match std::fs::canonicalize(path) {
            Ok(c) => c,
            Err(e) => {
                return Err(match from {
                    Some(loc) => SchemaError::Include {
                        location: loc,
                        message: format!("cannot open included file '{display}': {e}"),
                    },
                    None => SchemaError::Io {
                        path: display.to_string(),
                        error: e,
                    },
                })
            }
        };
        if self.stack.iter().any(|(c, _)| *c == canonical) {
            let loc = from.unwrap_or_else(Location::unknown);
            return Err(SchemaError::Include {
                location: loc,
                message: format!("include loop: {}", self.chain(display)),
            });
        }
        if !self.seen.insert(canonical.clone()) {
            return Ok(());
        }
        if self.stack.len() >= MAX_INCLUDE_DEPTH {
            return Err(SchemaError::Include {
                location: from.unwrap_or_else(Location::unknown),
                message: format!("includes nested deeper than {MAX_INCLUDE_DEPTH} files"),
            });
        }
        let bytes = std::fs::read(&canonical).map_err(|e| match &from {
            Some(loc) => SchemaError::Include {
                location: loc.clone(),
                message: format!("cannot read included file '{display}': {e}"),
            },
            None => SchemaError::Io {
                path: display.to_string(),
                error: e,
            },
        })?;
        let file: Arc<str> = Arc::from(display);
        let items = syntax::parse_file(&file, &bytes)?;
        self.stack.push((canonical, display.to_string()));
        let dir = path.parent().unwrap_or(Path::new(""));
        let mut pending: Option<Pending> = None;
        for item in items {
            match item {
                syntax::TopItem::Doc(block) => doc_block(&file, block, &mut pending)?,
                syntax::TopItem::Expr(node) => {
                    if let Some(inc) = expr::include_path(&file, &node)? {
                        not_pending(&pending)?;
                        let target = normalize_lexically(&dir.join(&inc));
                        let loc = Location::new(file.clone(), node.pos.line, 0);
                        self.file(&target, Some(loc))?;
                        continue;
                    }
                    directive_or_def(&file, &node, &mut pending, &mut self.out)?;
                }
            }
        }
        not_pending(&pending)?;
        self.stack.pop();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_names() {
        assert_eq!(
            source_name(Path::new("/a/b/qemu-10.0.13/qapi/qapi-schema.json")),
            "qemu-10.0.13/qapi/qapi-schema.json"
        );
        assert_eq!(
            source_name(Path::new("../shared/qapi/qga-9.1.0/qapi-schema.json")),
            "qga-9.1.0/qapi-schema.json"
        );
        assert_eq!(source_name(Path::new("/tmp/x/main.json")), "main.json");
        assert_eq!(module_name("../../qapi/block-core.json"), "block-core");
        assert_eq!(module_name("qga/qapi-schema.json"), "qapi-schema");
        assert_eq!(module_name("example"), "example");
        assert_eq!(normalize_lexically(Path::new("a/b/../../c/./d")), "c/d");
        assert_eq!(normalize_lexically(Path::new("../x/../y")), "../y");
    }
}
