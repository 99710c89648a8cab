//! Naming: how QAPI names become Rust identifiers. Every rule lives here.
//!
//! | QAPI | Rust | rule |
//! |---|---|---|
//! | type `BlockInfo`, `q_obj_Foo-wrapper` | `BlockInfo`, `FooWrapper` | [`type_name`]: UpperCamel, inner capitals kept, `q_obj_` dropped |
//! | member `node-name`, `CPU`, `type` | `node_name`, `cpu`, `r#type` | [`field_name`]: snake_case, keywords raw |
//! | enum value `virtio-blk`, `2_5`, `EAX` | `VirtioBlk`, `V2_5`, `Eax` | [`variant_name`]: UpperCamel of words, leading digit gets `V` |
//! | command `query-block` | `query_block()`, `QueryBlock` | [`method_name`], [`variant_name`] |
//! | event `BLOCK_JOB_COMPLETED` | `BlockJobCompleted` | [`variant_name`] |
//! | command `blockdev-backup` | `BlockdevBackupCall` | [`call_type_name`]: the command type plus `Call` |
//! | QAPI module `block-core`, `char` | `types::block_core`, `types::char_` | [`module_name`]: snake_case, primitive type names get `_` |
//! | masked introspection type used by `query-block` | `QueryBlockRet` (a QAPI name) | [`camel_words`]: the words joined, all-capital words lowered |
//!
//! The wire name is always kept (serde `rename`), so the mapping only has to be readable and
//! unambiguous; clashes it creates are detected by the emitter's plan, not left to rustc.

use proc_macro2::{Ident, Span};

/// Rust keywords (all editions, including reserved ones).
const KEYWORDS: &[&str] = &[
    "abstract", "as", "async", "await", "become", "box", "break", "const", "continue", "crate",
    "do", "dyn", "else", "enum", "extern", "false", "final", "fn", "for", "gen", "if", "impl",
    "in", "let", "loop", "macro", "match", "mod", "move", "mut", "override", "priv", "pub", "ref",
    "return", "self", "Self", "static", "struct", "super", "trait", "true", "try", "type",
    "typeof", "unsafe", "unsized", "use", "virtual", "where", "while", "yield",
];

/// Keywords that cannot be raw identifiers: these get a trailing `_` instead.
const NOT_RAW: &[&str] = &["self", "Self", "super", "crate", "_"];

/// Splits a name into words at separators (anything not alphanumeric) and at lower→upper
/// case changes (`sevSnp` → `sev`, `Snp`). Leading underscores are dropped.
fn words(name: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut cur = String::new();
    let chars: Vec<char> = name.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        if !c.is_ascii_alphanumeric() {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            continue;
        }
        let prev = if cur.is_empty() {
            None
        } else {
            i.checked_sub(1).map(|p| chars[p])
        };
        let next_lower = chars.get(i + 1).is_some_and(|n| n.is_ascii_lowercase());
        // A new word starts at an uppercase letter after a lowercase one (`sevSnp`), or at
        // the last capital of an acronym followed by lowercase (`KVMMissing`).
        let starts_word = c.is_ascii_uppercase()
            && prev
                .is_some_and(|p| p.is_ascii_lowercase() || (p.is_ascii_uppercase() && next_lower));
        if starts_word {
            out.push(std::mem::take(&mut cur));
        }
        cur.push(c);
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Joins UpperCamel words; an underscore separates two digits so `2_5` and `25` stay apart.
fn join_camel(parts: impl IntoIterator<Item = String>) -> String {
    let mut out = String::new();
    for part in parts {
        if out.ends_with(|c: char| c.is_ascii_digit())
            && part.starts_with(|c: char| c.is_ascii_digit())
        {
            out.push('_');
        }
        out.push_str(&part);
    }
    out
}

fn capitalize(word: &str, lower_rest: bool) -> String {
    let mut chars = word.chars();
    match chars.next() {
        None => String::new(),
        Some(first) => {
            let rest: String = chars.collect();
            let rest = if lower_rest {
                rest.to_ascii_lowercase()
            } else {
                rest
            };
            format!("{}{rest}", first.to_ascii_uppercase())
        }
    }
}

fn fix_leading_digit(name: String, prefix: &str) -> String {
    if name.is_empty() {
        return prefix.to_string();
    }
    if name.starts_with(|c: char| c.is_ascii_digit()) {
        format!("{prefix}{name}")
    } else {
        name
    }
}

/// A type name: UpperCamel, capitals inside words kept (`X86CPURegister32` stays), the
/// `q_obj_` prefix of QEMU's implicit types dropped.
pub fn type_name(qapi: &str) -> String {
    let name = qapi.strip_prefix("q_obj_").unwrap_or(qapi);
    let parts = name
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|p| !p.is_empty())
        .map(|p| capitalize(p, false));
    fix_leading_digit(join_camel(parts), "T")
}

/// An enum variant, event variant, command type or union branch name: UpperCamel with each
/// word's rest lowercased (`virtio-blk` → `VirtioBlk`, `BLOCK_JOB_COMPLETED` →
/// `BlockJobCompleted`); a leading digit gets a `V` (`2_5` → `V2_5`).
pub fn variant_name(qapi: &str) -> String {
    let parts = words(qapi).into_iter().map(|w| capitalize(&w, true));
    let name = fix_leading_digit(join_camel(parts), "V");
    if name == "Self" {
        "Self_".to_string()
    } else {
        name
    }
}

/// A field, argument or setter name: snake_case (`node-name` → `node_name`, `CPU` → `cpu`,
/// `tray_open` unchanged); a leading digit gets `_`.
pub fn field_name(qapi: &str) -> String {
    let mut out = String::new();
    let chars: Vec<char> = qapi.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        if !c.is_ascii_alphanumeric() {
            if !out.is_empty() && !out.ends_with('_') {
                out.push('_');
            }
            continue;
        }
        if c.is_ascii_uppercase() && i > 0 {
            let prev = chars[i - 1];
            let next_lower = chars.get(i + 1).is_some_and(|n| n.is_ascii_lowercase());
            let boundary = prev.is_ascii_lowercase()
                || prev.is_ascii_digit()
                || (prev.is_ascii_uppercase() && next_lower);
            if boundary && !out.is_empty() && !out.ends_with('_') {
                out.push('_');
            }
        }
        out.push(c.to_ascii_lowercase());
    }
    while out.ends_with('_') {
        out.pop();
    }
    let out = if out.is_empty() { "_".to_string() } else { out };
    fix_leading_digit(out, "_")
}

/// A method name for a command (`query-block` → `query_block`).
pub fn method_name(command: &str) -> String {
    field_name(command)
}

/// The type of a command's call (what its method on the client returns): the command type
/// followed by `Call` (`blockdev-backup` → `BlockdevBackupCall`).
pub fn call_type_name(command: &str) -> String {
    format!("{}Call", variant_name(command))
}

/// Rust's primitive type names: a module named like one would shadow the primitive wherever
/// the module is glob-imported.
const PRIMITIVES: &[&str] = &[
    "bool", "char", "str", "u8", "u16", "u32", "u64", "u128", "usize", "i8", "i16", "i32", "i64",
    "i128", "isize", "f32", "f64",
];

/// The submodule of `types` for a QAPI module (`block-core` → `block_core`): snake_case, with
/// a trailing `_` for names that are Rust keywords or primitive types (`char` → `char_`).
pub fn module_name(module: &str) -> String {
    let name = field_name(module);
    if PRIMITIVES.contains(&name.as_str()) || KEYWORDS.contains(&name.as_str()) {
        format!("{name}_")
    } else {
        name
    }
}

/// CamelCase words of a QAPI name, for the QAPI names the introspection loader makes up for
/// types whose names QEMU masks (`query-block` + `Ret` → `QueryBlockRet`): the parts between
/// `-`, `_` and `.` joined, each starting with a capital; an all-capital part is lowered after
/// its first letter (`BLOCK_JOB_COMPLETED` → `BlockJobCompleted`), other capitals are kept.
/// The result is a QAPI name, which [`type_name`] then maps like any other.
pub fn camel_words(name: &str) -> String {
    let parts = name
        .split(['-', '_', '.'])
        .filter(|p| !p.is_empty())
        .map(|p| {
            let shout = !p.chars().any(|c| c.is_ascii_lowercase());
            capitalize(p, shout)
        });
    parts.collect()
}

/// The identifier for a name produced by the functions above: keywords become raw
/// identifiers (`r#type`), or get a trailing `_` where raw is impossible (`self_`).
pub fn ident(name: &str) -> Ident {
    if NOT_RAW.contains(&name) {
        Ident::new(&format!("{name}_"), Span::call_site())
    } else if KEYWORDS.contains(&name) {
        Ident::new_raw(name, Span::call_site())
    } else {
        Ident::new(name, Span::call_site())
    }
}

/// The name a field is known by in Rust source (what [`ident`] prints), for clash checks and
/// messages.
pub fn display(name: &str) -> String {
    ident(name).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn naming_table() {
        let types = [
            ("BlockInfo", "BlockInfo"),
            ("X86CPURegister32", "X86CPURegister32"),
            (
                "q_obj_InetSocketAddress-wrapper",
                "InetSocketAddressWrapper",
            ),
            ("__com.redhat_Foo", "ComRedhatFoo"),
            ("String", "String"),
        ];
        for (q, r) in types {
            assert_eq!(type_name(q), r, "type {q}");
        }
        let variants = [
            ("virtio-blk", "VirtioBlk"),
            ("2_5", "V2_5"),
            ("120", "V120"),
            ("4k", "V4k"),
            ("EAX", "Eax"),
            ("static", "Static"),
            ("sevSnp", "SevSnp"),
            ("KVMMissingCap", "KvmMissingCap"),
            ("GenericError", "GenericError"),
            ("BLOCK_JOB_COMPLETED", "BlockJobCompleted"),
            ("query-block", "QueryBlock"),
            ("x-debug-query-block-graph", "XDebugQueryBlockGraph"),
            ("qmp_capabilities", "QmpCapabilities"),
            ("Self", "Self_"),
        ];
        for (q, r) in variants {
            assert_eq!(variant_name(q), r, "variant {q}");
        }
        let fields = [
            ("node-name", "node_name"),
            ("tray_open", "tray_open"),
            ("CPU", "cpu"),
            ("UUID", "uuid"),
            ("PC", "pc"),
            ("cpuState", "cpu_state"),
            ("CPUState", "cpu_state"),
            ("x-perf", "x_perf"),
            ("__com.redhat_foo", "com_redhat_foo"),
            ("0day", "_0day"),
            ("iops_rd_max", "iops_rd_max"),
        ];
        for (q, r) in fields {
            assert_eq!(field_name(q), r, "field {q}");
        }
        assert_eq!(ident("type").to_string(), "r#type");
        assert_eq!(ident("in").to_string(), "r#in");
        assert_eq!(ident("self").to_string(), "self_");
        assert_eq!(ident("node_name").to_string(), "node_name");
        assert_eq!(method_name("query-block"), "query_block");
        assert_eq!(call_type_name("blockdev-backup"), "BlockdevBackupCall");
        assert_eq!(call_type_name("query-status"), "QueryStatusCall");
        let modules = [
            ("block-core", "block_core"),
            ("qapi-schema", "qapi_schema"),
            ("char", "char_"),
            ("misc-target", "misc_target"),
            ("common", "common"),
        ];
        for (q, r) in modules {
            assert_eq!(module_name(q), r, "module {q}");
        }
        let camel = [
            ("query-block", "QueryBlock"),
            ("BLOCK_JOB_COMPLETED", "BlockJobCompleted"),
            ("iops_rd", "IopsRd"),
            ("x-perf", "XPerf"),
            ("__com.redhat_drive", "ComRedhatDrive"),
            ("inserted", "Inserted"),
            ("sevSnp", "SevSnp"),
        ];
        for (q, r) in camel {
            assert_eq!(camel_words(q), r, "camel {q}");
        }
    }
}
