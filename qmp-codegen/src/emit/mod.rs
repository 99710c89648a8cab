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
//! | `types.rs` | every enum, struct, union and alternate, in one submodule per QAPI module |
//! | `commands.rs` | per command: its argument type, its `Command` impl, its call type with setters; the methods on `Qmp`, one `impl` block per QAPI module |
//! | `commands.md` | the docs of the `commands` module: every command, by QAPI module |
//! | `events.rs` | event data types and the `Event` enum |
//! | `schema.rs` | facts about the schema itself |
//!
//! Every generated command, event, type and member links to its entry in QEMU's reference
//! (the QMP, storage daemon or guest agent manual, by schema), and carries its wire name as a
//! `#[doc(alias)]` where the Rust name differs.

mod commands;
mod conversions;
pub(crate) mod docs;
mod events;
mod fields;
mod parallel;
mod plan;
mod serde_impls;
mod types;
mod versions;

use proc_macro2::TokenStream;
use quote::quote;

use crate::history::MergedSchema;
use crate::ident;
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
    /// The oldest QEMU (major, minor) whose replies and events the code must decode. For the
    /// schema of one version, a required member added after its type and after this version
    /// is an `Option` in Rust, since that QEMU leaves it out. For a merged schema
    /// ([`generate_merged`]), the history's requirement rules count the merged versions from
    /// this one on. Default: 2.12, the oldest schema we test.
    pub oldest_qemu: (u32, u32),
    /// The typed client the command methods are generated on: the crate must define a type of
    /// this name at its root (default `Qmp`, `qmp-api`'s client; `qmp-ga` uses `GuestAgent`).
    pub client_type: String,
    /// The cargo feature that gates `Deserialize` on the types QEMU never sends (those reached
    /// only from command arguments), or `None` (the default) to implement it on every type.
    ///
    /// A client only encodes those types, and their decoders are a large share of the
    /// generated crate's compile time (QEMU's schema: 309 of 542 structs, unions and
    /// alternates, about 15% of `qmp-api`'s compile time). With `Some("decode-arguments")`,
    /// their `Deserialize` impls are `#[cfg(feature = "decode-arguments")]`, and each such
    /// type's docs say so; the crate that includes the code must declare the feature.
    pub decode_arguments_feature: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            prose: true,
            oldest_qemu: (2, 12),
            client_type: "Qmp".to_string(),
            decode_arguments_feature: None,
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

/// A top-level item (or a group: a type and its impls), named for error messages; or a module
/// of such items.
pub(crate) struct Item {
    name: String,
    body: Body,
}

enum Body {
    Tokens(TokenStream),
    Module {
        /// Attributes (docs) of the module.
        attrs: TokenStream,
        ident: proc_macro2::Ident,
        /// Items written first inside the module (`use super::*;`).
        prelude: TokenStream,
        children: Vec<Item>,
    },
}

impl Item {
    pub(crate) fn new(name: &str, tokens: TokenStream) -> Item {
        Item {
            name: name.to_string(),
            body: Body::Tokens(tokens),
        }
    }

    /// `pub mod ident { prelude children }`, named `name` in messages.
    pub(crate) fn module(
        name: &str,
        attrs: TokenStream,
        ident: proc_macro2::Ident,
        prelude: TokenStream,
        children: Vec<Item>,
    ) -> Item {
        Item {
            name: name.to_string(),
            body: Body::Module {
                attrs,
                ident,
                prelude,
                children,
            },
        }
    }

    /// The parsed items, each named in the error if it does not parse.
    fn parse(self) -> Result<Vec<syn::Item>, EmitError> {
        let fail = |item: &str, e: syn::Error| EmitError::Format {
            item: item.to_string(),
            message: e.to_string(),
        };
        match self.body {
            Body::Tokens(tokens) => {
                let file: syn::File = syn::parse2(tokens).map_err(|e| fail(&self.name, e))?;
                Ok(file.items)
            }
            Body::Module {
                attrs,
                ident,
                prelude,
                children,
            } => {
                let mut module: syn::ItemMod = syn::parse2(quote!(#attrs pub mod #ident {}))
                    .map_err(|e| fail(&self.name, e))?;
                let prelude: syn::File = syn::parse2(prelude).map_err(|e| fail(&self.name, e))?;
                let mut items = prelude.items;
                for child in children {
                    items.extend(child.parse()?);
                }
                module.content = Some((syn::token::Brace::default(), items));
                Ok(vec![syn::Item::Mod(module)])
            }
        }
    }
}

/// One public name of the generated API: what `types`, `commands`, `events` and the crate root
/// put in scope when glob-imported together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicName {
    /// The Rust name, e.g. `BlockdevBackup`.
    pub rust: String,
    /// The item it names, as a path from the crate root: `types::BlockdevBackup`,
    /// `commands::QueryStatusCall`, `crate::Qmp` (the runtime's own items). A name re-exported
    /// elsewhere (a command that is its argument struct) is still one item.
    pub item: String,
    /// What it stands for in the schema, e.g. `struct BlockdevBackup`, `command query-status`.
    pub what: String,
}

/// Every public name the generated API would define for `schema`, after the same checks as
/// [`generate`] (so a clash is an [`EmitError::Clash`] naming both QAPI names). Fast: nothing
/// is emitted.
///
/// ```
/// let schema = qmp_codegen::parse_qapi_str("demo.json", r#"
///     { 'struct': 'Resize', 'data': { 'size': 'int' } }
///     { 'command': 'resize', 'data': 'Resize' }
/// "#)?;
/// let names = qmp_codegen::emit::public_names(&schema)?;
/// let resize: Vec<_> = names.iter().filter(|n| n.rust == "Resize").collect();
/// assert_eq!(resize.len(), 1);
/// assert_eq!(resize[0].item, "types::Resize"); // the command type is the struct
/// assert!(names.iter().any(|n| n.rust == "ResizeCall"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn public_names(schema: &Schema) -> Result<Vec<PublicName>, EmitError> {
    let plan = plan::Plan::new(schema, Options::default().oldest_qemu)?;
    Ok(plan
        .public
        .into_iter()
        .map(|(rust, (item, what))| PublicName { rust, item, what })
        .collect())
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
    generate_from(
        plan::Plan::new(schema, opts.oldest_qemu)?.with_client(&opts.client_type)?,
        opts,
    )
}

/// Generates the Rust source for a schema merged from several versions
/// ([`crate::history::merge`], `schema/qemu.json`), so that one program runs against every
/// merged QEMU version:
///
/// - a member is an `Option` where the history's requirement rules say so (rule *a* for what
///   QEMU sends, rule *b* for arguments; a type used both ways is required only where both
///   say so), instead of the one-schema guess of [`generate`];
/// - commands, events, types, members and enum values of every version are present, and their
///   docs say when they were added, removed (`**Removed** after QEMU 8.1 ...`) and deprecated;
/// - renamed types carry their old names as `#[doc(alias)]`.
///
/// ```
/// use qmp_codegen::history::{self, MergeInput, Version};
///
/// let old = qmp_codegen::parse_qapi_str("a", concat!(
///     "{ 'struct': 'Job', 'data': { 'id': 'str' } }\n",
///     "{ 'command': 'query-jobs', 'returns': ['Job'] }\n",
/// ))?;
/// let new = qmp_codegen::parse_qapi_str("b", concat!(
///     "{ 'struct': 'Job', 'data': { 'id': 'str', 'busy': 'bool' } }\n",
///     "{ 'command': 'query-jobs', 'returns': ['Job'] }\n",
/// ))?;
/// let merged = history::merge(vec![
///     MergeInput::new(Version::new(7, 2), "a", old),
///     MergeInput::new(Version::new(8, 0), "b", new),
/// ])?;
/// let files = qmp_codegen::emit::generate_merged(&merged, &Default::default())?;
/// let types = files.iter().find(|f| f.name == "types.rs").expect("types.rs");
/// // QEMU 7.2 sends jobs without `busy`.
/// assert!(types.contents.contains("pub busy: Option<bool>"));
/// assert!(types.contents.contains("pub id: String"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn generate_merged(
    merged: &MergedSchema,
    opts: &Options,
) -> Result<Vec<GeneratedFile>, EmitError> {
    generate_from(
        plan::Plan::merged(merged, opts.oldest_qemu)?.with_client(&opts.client_type)?,
        opts,
    )
}

fn generate_from(plan: plan::Plan<'_>, opts: &Options) -> Result<Vec<GeneratedFile>, EmitError> {
    generate_on(plan, opts, parallel::threads())
}

/// [`generate_from`] on up to `threads` threads.
fn generate_on(
    plan: plan::Plan<'_>,
    opts: &Options,
    threads: usize,
) -> Result<Vec<GeneratedFile>, EmitError> {
    let schema = plan.schema;
    let source = schema.source.as_deref().unwrap_or("an unnamed schema");
    let chunks = Chunk::split(&plan);
    // `commands.rs` is the biggest piece: start it first.
    let order: Vec<usize> = (0..chunks.len())
        .filter(|&i| matches!(chunks[i], Chunk::Commands))
        .chain((0..chunks.len()).filter(|&i| !matches!(chunks[i], Chunk::Commands)))
        .collect();
    let texts = parallel::run(&chunks, &order, threads, |chunk| {
        chunk.generate(&plan, opts, source)
    })?;
    let mut command_docs = String::new();
    let mut out: Vec<GeneratedFile> = Vec::new();
    for (chunk, (text, docs)) in chunks.iter().zip(texts) {
        if let Some(docs) = docs {
            command_docs = docs;
        }
        let name = chunk.file();
        match out.last_mut() {
            Some(file) if file.name == name => file.contents.push_str(&text),
            _ => out.push(GeneratedFile {
                name: name.to_string(),
                contents: text,
            }),
        }
    }
    for file in &mut out {
        file.contents = format!(
            "// @generated by qmp-codegen from {source}. Do not edit: regenerate instead.\n\n{}",
            separate_items(&file.contents)
        );
    }
    out.push(GeneratedFile {
        name: "commands.md".into(),
        contents: command_docs,
    });
    out.push(GeneratedFile {
        name: "names.rs".into(),
        contents: names_file(source, &plan),
    });
    Ok(out)
}

/// A piece of one generated file, emitted and formatted on its own (on a worker thread: token
/// streams cannot cross threads, so each piece goes from the plan to text where it started).
/// The pieces of a file, concatenated in order, are exactly what formatting the whole file at
/// once gives: prettyplease prints top-level items independently.
enum Chunk {
    /// `types.rs`: the QAPI modules `plan.modules[range]` (the first piece also `QType`).
    Types(std::ops::Range<usize>),
    /// `commands.rs`, with the Markdown of `commands.md`.
    Commands,
    /// `events.rs`.
    Events,
    /// `schema.rs`.
    Schema,
}

/// How many pieces `types.rs` is cut into: enough to keep two to four threads busy until the
/// end, few enough that each piece is worth a thread's start.
const TYPE_CHUNKS: usize = 8;

impl Chunk {
    /// Every piece, in file order.
    fn split(plan: &plan::Plan<'_>) -> Vec<Chunk> {
        let weights: Vec<usize> = plan
            .modules
            .iter()
            .map(|(module, _)| {
                plan.schema
                    .definitions
                    .iter()
                    .filter(|d| d.module() == *module && d.kind().is_type())
                    .count()
            })
            .collect();
        let total: usize = weights.iter().sum();
        let per_chunk = total.div_ceil(TYPE_CHUNKS).max(1);
        let mut chunks = vec![Chunk::Commands, Chunk::Events, Chunk::Schema];
        let (mut start, mut weight) = (0, 0);
        for (i, w) in weights.iter().enumerate() {
            weight += w;
            if weight >= per_chunk {
                chunks.push(Chunk::Types(start..i + 1));
                (start, weight) = (i + 1, 0);
            }
        }
        if start < weights.len() || !chunks.iter().any(|c| matches!(c, Chunk::Types(_))) {
            chunks.push(Chunk::Types(start..weights.len()));
        }
        // File order: types, commands, events, schema.
        chunks.rotate_left(3);
        chunks
    }

    fn file(&self) -> &'static str {
        match self {
            Chunk::Types(_) => "types.rs",
            Chunk::Commands => "commands.rs",
            Chunk::Events => "events.rs",
            Chunk::Schema => "schema.rs",
        }
    }

    /// The formatted text of this piece (not yet separated into blank-line-delimited items),
    /// and for `commands.rs` the Markdown of `commands.md`.
    fn generate(
        &self,
        plan: &plan::Plan<'_>,
        opts: &Options,
        source: &str,
    ) -> Result<(String, Option<String>), EmitError> {
        let deferred = docs::Deferred::start();
        let (items, docs) = match self {
            Chunk::Types(range) => (types::emit(plan, opts, range.clone())?, None),
            Chunk::Commands => {
                let (items, docs) = commands::emit(plan, opts)?;
                (items, Some(docs))
            }
            Chunk::Events => (events::emit(plan, opts)?, None),
            Chunk::Schema => {
                let counts = plan.schema.counts();
                let summary =
                    format!(" The schema this code was generated from: `{source}` ({counts}).");
                let item = Item::new(
                    "SCHEMA",
                    quote! {
                        #[doc = #summary]
                        pub const SCHEMA: &str = #source;
                    },
                );
                (vec![item], None)
            }
        };
        Ok((deferred.restore(&format_items(items)?), docs))
    }
}

/// `names.rs`: a use of every generated public name, for `qmp-api`'s glob-import test (which
/// includes it after importing `types::*`, `commands::*`, `events::*` and the crate root with
/// `ambiguous_glob_imports` denied). Not part of the API; plain lines, not formatted.
fn names_file(source: &str, plan: &plan::Plan<'_>) -> String {
    let mut out = format!(
        "// @generated by qmp-codegen from {source}. Do not edit: regenerate instead.\n\
         // Every public name of the generated API, each used once through glob imports.\n\n"
    );
    // Each module is reached through its first type.
    let mut first_type: std::collections::HashMap<String, String> = Default::default();
    for def in plan
        .schema
        .definitions
        .iter()
        .filter(|d| d.kind().is_type())
    {
        if let Some(m) = def.module() {
            first_type
                .entry(ident::module_name(m))
                .or_insert_with(|| plan.type_ident(def.name()).to_string());
        }
    }
    let mut count = 0;
    for (rust, (item, _)) in &plan.public {
        if item.starts_with("crate::") || item == "events::Event" || item == "events::EventKind" {
            // The runtime's own items, and the event enums (which `qmp-ga` leaves out: the
            // agent has no events): each test names them itself.
            continue;
        }
        count += 1;
        let module = item
            .strip_prefix("types::")
            .filter(|m| m.starts_with(|c: char| c.is_ascii_lowercase()));
        match module {
            Some(m) => {
                if let Some(ty) = first_type.get(m) {
                    out.push_str(&format!("const _: Option<&{rust}::{ty}> = None;\n"));
                }
            }
            None => out.push_str(&format!("const _: Option<&{rust}> = None;\n")),
        }
    }
    out.push_str(&format!(
        "\n/// How many names this file uses.\nconst GENERATED_NAMES: usize = {count};\n"
    ));
    out
}

/// The items printed by prettyplease.
fn format_items(items: Vec<Item>) -> Result<String, EmitError> {
    let mut parsed = Vec::new();
    for item in items {
        parsed.extend(item.parse()?);
    }
    let mut file: syn::File = syn::parse_quote!();
    file.items = parsed;
    Ok(prettyplease::unparse(&file))
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The output does not depend on how many threads made it, and `types.rs` really is cut
    /// into pieces (so the pieces' seams are covered).
    #[test]
    fn output_is_the_same_on_one_thread_and_on_several() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../schema/qemu.json");
        let merged = crate::history::load_path(&path).unwrap_or_else(|e| panic!("{e}"));
        let opts = Options::default();
        let plan = || {
            plan::Plan::merged(&merged, opts.oldest_qemu)
                .and_then(|p| p.with_client(&opts.client_type))
                .unwrap_or_else(|e| panic!("{e}"))
        };
        let pieces = Chunk::split(&plan());
        let type_pieces = pieces
            .iter()
            .filter(|c| matches!(c, Chunk::Types(_)))
            .count();
        assert!(type_pieces > 1, "types.rs in {type_pieces} piece(s)");
        let one = generate_on(plan(), &opts, 1).unwrap_or_else(|e| panic!("{e}"));
        let three = generate_on(plan(), &opts, 3).unwrap_or_else(|e| panic!("{e}"));
        let names: Vec<&str> = one.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "types.rs",
                "commands.rs",
                "events.rs",
                "schema.rs",
                "commands.md",
                "names.rs"
            ]
        );
        for (a, b) in one.iter().zip(&three) {
            assert!(a == b, "{} differs between 1 and 3 threads", a.name);
        }
        let types = &one[0].contents;
        // One header, and a blank line between items at every seam.
        assert_eq!(types.matches("// @generated by qmp-codegen").count(), 1);
        assert!(
            !types.contains("}\npub "),
            "an item follows another without a blank line"
        );
    }
}
