//! Code generation: model → Rust source for the typed API.
//!
//! [`generate`] is pure: it takes a checked [`Schema`] and returns the text of each generated
//! file. Items are built with `quote!`, parsed by `syn` one at a time (so a failure names the
//! definition) and printed by `prettyplease`. The same schema always gives byte-identical
//! output: every list follows schema order.
//!
//! The generated files are meant to be `include!`d by the `qmp-api` crate, which provides the
//! runtime they call (`crate::Qmp`, `crate::Call`, `crate::Command`, `crate::__private`):
//!
//! | file | content |
//! |---|---|
//! | `types.rs` | every enum, struct, union and alternate |
//! | `commands.rs` | per command: its argument type, its `Command` impl, a method on `Qmp`, setters |
//! | `events.rs` | event data types and the `Event` enum |
//! | `schema.rs` | facts about the schema itself |

mod commands;
pub(crate) mod docs;
mod events;
mod plan;
mod serde_impls;
mod types;

use proc_macro2::TokenStream;
use quote::quote;

use crate::model::Schema;

/// Why code generation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EmitError {
    /// Two schema names map to the same Rust name.
    #[error(
        "in {scope}, `{first}` and `{second}` would both be named `{rust}` in Rust; \
         rename one in the schema"
    )]
    Clash {
        /// Where the clash happens (a module, a type's fields...).
        scope: String,
        /// The Rust name both map to.
        rust: String,
        /// The first QAPI name.
        first: String,
        /// The second QAPI name.
        second: String,
    },
    /// The model is inconsistent (a bug in the checker, or a hand-built model).
    #[error("inconsistent schema model: {0}")]
    Model(String),
    /// Generated code did not parse (a bug in the generator); names the definition.
    #[error("generated code for `{item}` is not valid Rust ({message}); please report this")]
    Format {
        /// The definition whose code failed.
        item: String,
        /// The parser's message.
        message: String,
    },
}

/// What to generate.
#[derive(Debug, Clone)]
pub struct Options {
    /// Turn the schema's doc prose (present when the schema was read from QAPI source) into
    /// rustdoc. Facts (QMP name, since-version, features, conditions) are always documented.
    pub prose: bool,
    /// The oldest QEMU (major, minor) whose replies and events the code must decode. A
    /// required member added after its type and after this version is an `Option` in Rust,
    /// since that QEMU leaves it out. Default: 2.12, the oldest schema we test.
    pub oldest_qemu: (u32, u32),
}

impl Default for Options {
    fn default() -> Self {
        Options {
            prose: true,
            oldest_qemu: (2, 12),
        }
    }
}

/// One generated file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratedFile {
    /// File name, e.g. `types.rs`.
    pub name: String,
    /// Formatted Rust source.
    pub contents: String,
}

/// A top-level item (or a group: a type and its impls), named for error messages.
pub(crate) struct Item {
    name: String,
    tokens: TokenStream,
}

impl Item {
    pub(crate) fn new(name: &str, tokens: TokenStream) -> Item {
        Item {
            name: name.to_string(),
            tokens,
        }
    }
}

/// Generates the Rust source for `schema`.
///
/// ```
/// let schema = qmp_codegen::parse_qapi_str("demo.json", r#"
///     { 'struct': 'Status', 'data': { 'running': 'bool' } }
///     { 'command': 'query-status', 'returns': 'Status' }
/// "#)?;
/// let files = qmp_codegen::emit::generate(&schema, &Default::default())?;
/// let types = files.iter().find(|f| f.name == "types.rs").unwrap();
/// assert!(types.contents.contains("pub struct Status"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn generate(schema: &Schema, opts: &Options) -> Result<Vec<GeneratedFile>, EmitError> {
    let plan = plan::Plan::new(schema, opts.oldest_qemu)?;
    let source = schema.source.as_deref().unwrap_or("an unnamed schema");
    let counts = schema.counts();
    let summary = format!(" The schema this code was generated from: `{source}` ({counts}).");
    let schema_items = vec![Item::new(
        "SCHEMA",
        quote! {
            #[doc = #summary]
            pub const SCHEMA: &str = #source;
        },
    )];
    let files = [
        ("types.rs", types::emit(&plan, opts)?),
        ("commands.rs", commands::emit(&plan, opts)?),
        ("events.rs", events::emit(&plan, opts)?),
        ("schema.rs", schema_items),
    ];
    files
        .into_iter()
        .map(|(name, items)| {
            Ok(GeneratedFile {
                name: name.to_string(),
                contents: format_file(source, items)?,
            })
        })
        .collect()
}

fn format_file(source: &str, items: Vec<Item>) -> Result<String, EmitError> {
    let mut parsed = Vec::new();
    for item in items {
        let file: syn::File = syn::parse2(item.tokens).map_err(|e| EmitError::Format {
            item: item.name.clone(),
            message: e.to_string(),
        })?;
        parsed.extend(file.items);
    }
    let mut file: syn::File = syn::parse_quote!();
    file.items = parsed;
    Ok(format!(
        "// @generated by qmp-codegen from {source}. Do not edit: regenerate instead.\n\n{}",
        separate_items(&prettyplease::unparse(&file))
    ))
}

/// Puts a blank line after each top-level item, which prettyplease leaves out, so the file
/// reads item by item.
fn separate_items(code: &str) -> String {
    let mut out = String::with_capacity(code.len() + code.len() / 20);
    let mut lines = code.lines().peekable();
    while let Some(line) = lines.next() {
        out.push_str(line);
        out.push('\n');
        let item_end = line == "}"
            || (line.ends_with(';')
                && !line.starts_with(char::is_whitespace)
                && !line.starts_with("//"));
        if item_end && lines.peek().is_some_and(|next| !next.is_empty()) {
            out.push('\n');
        }
    }
    out
}
