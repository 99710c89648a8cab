//! Rustdoc for generated items: the QMP facts (name, since-version, features, conditions)
//! always, and the schema's prose when the schema came from QAPI source.
//!
//! QAPI prose is reStructuredText; it is turned into Markdown that rustdoc renders without
//! warnings: `@member` becomes code, literal and example blocks become ```` ```text ```` fences
//! (never doctests), brackets and angle brackets are escaped, URLs are made links.

use proc_macro2::TokenStream;
use quote::quote;

use crate::model::{Cond, Feature};

/// Collects doc lines for one item.
#[derive(Default)]
pub(crate) struct Docs {
    lines: Vec<String>,
}

impl Docs {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Adds a paragraph (one or more lines), separated from the previous one by a blank line.
    pub(crate) fn para(&mut self, text: impl AsRef<str>) -> &mut Self {
        let text = text.as_ref().trim_end();
        if text.trim().is_empty() {
            return self;
        }
        if !self.lines.is_empty() {
            self.lines.push(String::new());
        }
        self.lines.extend(text.lines().map(str::to_string));
        self
    }

    /// Adds prose from the schema, converted from reStructuredText.
    pub(crate) fn prose(&mut self, rst: Option<&str>) -> &mut Self {
        if let Some(text) = rst {
            let md = rst_to_markdown(text);
            self.para(md);
        }
        self
    }

    /// Adds the facts paragraph: since-version, features, condition.
    pub(crate) fn facts(
        &mut self,
        since: Option<&str>,
        features: &[Feature],
        cond: Option<&Cond>,
    ) -> &mut Self {
        if let Some(s) = since {
            self.para(format!("Since QEMU {s}."));
        }
        for f in features {
            let when = f
                .cond
                .as_ref()
                .map(|c| format!(" (in builds with `{c}`)"))
                .unwrap_or_default();
            if f.is_deprecated() {
                self.para(format!(
                    "**Deprecated**{when}: may be removed in a future QEMU."
                ));
            } else if f.is_unstable() {
                self.para(format!(
                    "**Unstable**{when}: may change or disappear in any QEMU release."
                ));
            } else {
                self.para(format!("Feature `{}`{when}.", f.name));
            }
        }
        if let Some(c) = cond {
            self.para(format!("Only in QEMU builds with `{c}`."));
        }
        self
    }

    /// Adds the link to an entry of QEMU's reference, when its URL is known.
    pub(crate) fn reference(&mut self, label: &str, url: Option<&str>) -> &mut Self {
        if let Some(url) = url {
            self.para(format!("QEMU reference: [`{label}`]({url})."));
        }
        self
    }
}

/// `text`, followed on the same line by the link to an entry of QEMU's reference when its URL
/// is known: the form used for members, where a paragraph of its own would double the doc
/// lines of every struct (and the cost of compiling them).
pub(crate) fn with_reference(text: String, label: &str, url: Option<&str>) -> String {
    match url {
        Some(url) => format!("{text}; QEMU reference: [`{label}`]({url})."),
        None => text,
    }
}

impl Docs {
    /// `#[doc]` attributes for the collected lines. While a [`Deferred`] store is active, each
    /// attribute holds only a marker, and the line itself waits in the store (see there).
    pub(crate) fn tokens(&self) -> TokenStream {
        let lines = self.lines.iter().map(|l| {
            let l = if l.is_empty() {
                String::new()
            } else {
                format!(" {l}")
            };
            let l = DEFERRED.with(|d| match d.borrow_mut().as_mut() {
                Some(store) => {
                    store.push(l);
                    format!("{MARKER}{}", store.len() - 1)
                }
                None => l,
            });
            quote!(#[doc = #l])
        });
        quote!(#(#lines)*)
    }
}

/// Starts a doc marker: a private-use character, which no generated doc line starts with.
const MARKER: char = '\u{E000}';

thread_local! {
    static DEFERRED: std::cell::RefCell<Option<Vec<String>>> = const { std::cell::RefCell::new(None) };
}

/// Doc lines kept out of the token streams while a file is generated.
///
/// Every doc line would otherwise be escaped into a string literal token, parsed back by
/// `syn` and unescaped again by `prettyplease`, character by character: for a schema like
/// QEMU's, with a reference link on every member, that was most of the generator's run time
/// in a build script (which runs unoptimized). With the store active, [`Docs::tokens`] emits
/// a marker (`#[doc = "\u{E000}17"]`), which prettyplease prints as `///\u{E000}17`, and
/// [`Deferred::restore`] puts the lines back into the formatted text: the same output, as the
/// golden files check.
pub(crate) struct Deferred {
    previous: Option<Vec<String>>,
}

impl Deferred {
    /// Activates the store on this thread until the value is dropped.
    pub(crate) fn start() -> Deferred {
        let previous = DEFERRED.with(|d| d.borrow_mut().replace(Vec::new()));
        Deferred { previous }
    }

    /// Replaces each marker line of `formatted` with its doc line, as prettyplease would have
    /// printed it (`///` and the text, trailing spaces removed).
    pub(crate) fn restore(&self, formatted: &str) -> String {
        DEFERRED.with(|d| {
            let store = d.borrow();
            let lines = store.as_deref().unwrap_or(&[]);
            let mut out = String::with_capacity(formatted.len() * 2);
            for line in formatted.split_inclusive('\n') {
                if !line.trim_start().starts_with("///\u{E000}") {
                    out.push_str(line);
                    continue;
                }
                let body = line.trim_end_matches('\n');
                let text = body
                    .split_once("///")
                    .filter(|(indent, _)| indent.bytes().all(|b| b == b' '))
                    .and_then(|(indent, rest)| {
                        let index: usize = rest.strip_prefix(MARKER)?.parse().ok()?;
                        Some((indent, lines.get(index)?))
                    });
                match text {
                    Some((indent, doc)) => {
                        out.push_str(indent);
                        out.push_str("///");
                        out.push_str(doc.trim_end_matches(' '));
                        if line.ends_with('\n') {
                            out.push('\n');
                        }
                    }
                    None => out.push_str(line),
                }
            }
            out
        })
    }
}

impl Drop for Deferred {
    fn drop(&mut self) {
        let previous = self.previous.take();
        DEFERRED.with(|d| *d.borrow_mut() = previous);
    }
}

/// `#[doc(alias = "...")]` with the wire name, so that rustdoc's search finds `block-commit` and
/// `BLOCK_JOB_COMPLETED`; nothing when the Rust name is the same but for case (rustdoc rejects
/// an alias equal to the name, and its search ignores case) or the name has characters an
/// alias cannot hold.
pub(crate) fn alias(wire: &str, rust: &str) -> TokenStream {
    let rust = rust.trim_start_matches("r#");
    let plain = wire
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    // Rustdoc's search ignores case: `inet` already finds `Inet`.
    if wire.eq_ignore_ascii_case(rust) || !plain || wire.is_empty() {
        TokenStream::new()
    } else {
        quote!(#[doc(alias = #wire)])
    }
}

/// `#[deprecated]` when any feature says so.
pub(crate) fn deprecated(features: &[Feature]) -> TokenStream {
    if features.iter().any(Feature::is_deprecated) {
        quote!(#[deprecated(note = "deprecated in the QEMU schema")])
    } else {
        TokenStream::new()
    }
}

/// Converts QAPI doc prose (reStructuredText with `@name` references) into Markdown that
/// rustdoc accepts without warnings.
pub(crate) fn rst_to_markdown(text: &str) -> String {
    let mut out: Vec<String> = Vec::new();
    let lines: Vec<&str> = text.lines().collect();
    let mut i = 0;
    let mut in_list = false;
    let mut list_indent = 2;
    while i < lines.len() {
        let line = lines[i];
        let trimmed = line.trim();
        // Directives and literal blocks: the indented block that follows is verbatim text.
        let literal_title = if let Some(rest) = trimmed.strip_prefix(".. ") {
            let (name, arg) = rest.split_once("::").unwrap_or((rest, ""));
            match name.trim() {
                "note" | "warning" | "admonition" | "caution" | "important" | "tip" | "hint" => {
                    // An admonition's argument is its title; the others' is their first line.
                    let (title, first) = match name.trim() {
                        "admonition" => (escape(arg.trim()), String::new()),
                        other => (capitalize(other), convert_inline(arg.trim())),
                    };
                    out.push(format!("**{title}:** {first}").trim_end().to_string());
                    i += 1;
                    // Its body is normal prose, dedented.
                    while i < lines.len()
                        && (lines[i].trim().is_empty() || lines[i].starts_with(' '))
                    {
                        if lines[i].trim().starts_with(":") {
                            i += 1;
                            continue;
                        }
                        out.push(convert_inline(lines[i].trim()));
                        i += 1;
                    }
                    continue;
                }
                _ => Some(format!(
                    "{}{}",
                    name.trim(),
                    if arg.trim().is_empty() {
                        String::new()
                    } else {
                        format!(" {}", arg.trim())
                    }
                )),
            }
        } else if trimmed.ends_with("::") && !trimmed.starts_with("..") {
            let lead = trimmed.trim_end_matches(':').trim_end();
            if !lead.is_empty() {
                out.push(format!("{}:", convert_inline(lead)));
            }
            Some(String::new())
        } else {
            None
        };
        if let Some(title) = literal_title {
            i += 1;
            let mut block: Vec<&str> = Vec::new();
            while i < lines.len()
                && (lines[i].trim().is_empty()
                    || lines[i].starts_with(' ')
                    || lines[i].starts_with('\t'))
            {
                if !lines[i].trim().starts_with(':') || !block.is_empty() {
                    block.push(lines[i]);
                }
                i += 1;
            }
            while block.last().is_some_and(|l| l.trim().is_empty()) {
                block.pop();
            }
            while block.first().is_some_and(|l| l.trim().is_empty()) {
                block.remove(0);
            }
            if !title.is_empty() {
                out.push(format!("*{}*", escape(&title)));
            }
            if !block.is_empty() {
                let indent = block
                    .iter()
                    .filter(|l| !l.trim().is_empty())
                    .map(|l| l.len() - l.trim_start().len())
                    .min()
                    .unwrap_or(0);
                out.push("```text".into());
                for l in block {
                    out.push(l.get(indent..).unwrap_or("").trim_end().to_string());
                }
                out.push("```".into());
            }
            continue;
        }
        // Ordinary prose: dedented (indentation would make a Markdown code block, which
        // rustdoc would try to compile), except that an indented line continuing a list item
        // keeps a two-space indent so it stays part of the item.
        let indented = line.starts_with(' ') || line.starts_with('\t');
        if trimmed.is_empty() {
            in_list = false;
            out.push(String::new());
        } else if let Some(width) = list_marker_width(trimmed) {
            list_indent = width;
            in_list = true;
            out.push(convert_inline(trimmed));
        } else if in_list && indented {
            out.push(format!(
                "{}{}",
                " ".repeat(list_indent),
                convert_inline(trimmed)
            ));
        } else {
            in_list = false;
            out.push(convert_inline(trimmed));
        }
        i += 1;
    }
    // Collapse runs of blank lines.
    let mut result: Vec<String> = Vec::new();
    for l in out {
        if l.is_empty() && result.last().is_some_and(|p: &String| p.is_empty()) {
            continue;
        }
        result.push(l);
    }
    result.join("\n").trim().to_string()
}

/// The width of a list marker starting `line` (`- `, `* `, `#. `, `1. `, `1) `), which is the
/// indent its continuation lines need.
fn list_marker_width(line: &str) -> Option<usize> {
    if line.starts_with("- ") || line.starts_with("* ") {
        return Some(2);
    }
    if line.starts_with("#. ") {
        return Some(3);
    }
    let digits = line.chars().take_while(char::is_ascii_digit).count();
    let rest = &line[digits..];
    (digits > 0 && (rest.starts_with(". ") || rest.starts_with(") "))).then_some(digits + 2)
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// Inline markup: `@name` and ``literal`` become code spans; the rest is escaped.
fn convert_inline(line: &str) -> String {
    let mut out = String::new();
    let mut rest = line;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix("``") {
            if let Some(end) = after.find("``") {
                out.push_str(&code_span(&after[..end]));
                rest = &after[end + 2..];
                continue;
            }
        }
        if let Some(after) = rest.strip_prefix('`') {
            if let Some(end) = after.find('`') {
                out.push_str(&code_span(&after[..end]));
                rest = &after[end + 1..];
                continue;
            }
        }
        if let Some(after) = rest.strip_prefix('@') {
            let len = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.'))
                .unwrap_or(after.len());
            let name = after[..len].trim_end_matches('.');
            if !name.is_empty() {
                out.push_str(&code_span(name));
                rest = &after[name.len()..];
                continue;
            }
        }
        if rest.starts_with("http://") || rest.starts_with("https://") {
            let len = rest
                .find(|c: char| c.is_whitespace() || c == '>' || c == ')')
                .unwrap_or(rest.len());
            let url = rest[..len].trim_end_matches(['.', ',', ';']);
            out.push('<');
            out.push_str(url);
            out.push('>');
            rest = &rest[url.len()..];
            continue;
        }
        let Some(c) = rest.chars().next() else { break };
        out.push_str(&escape(&c.to_string()));
        rest = &rest[c.len_utf8()..];
    }
    out
}

fn code_span(text: &str) -> String {
    if text.contains('`') {
        format!("`` {text} ``")
    } else {
        format!("`{text}`")
    }
}

/// Escapes characters Markdown (or rustdoc's link and HTML checks) would interpret.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '[' | ']' | '<' | '>' | '|' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deferred_doc_lines_come_back_as_prettyplease_prints_them() {
        let mut d = Docs::new();
        d.para("First line with a [link](https://example.org/a#b).  ");
        d.para("Second paragraph");
        let direct = d.tokens().to_string();
        assert!(direct.contains("First line"), "{direct}");
        let deferred = Deferred::start();
        let marked = d.tokens().to_string();
        assert!(!marked.contains("First line"), "{marked}");
        let code: proc_macro2::TokenStream = format!("{marked} pub struct X;").parse().unwrap();
        let printed = prettyplease::unparse(&syn::parse2(code).unwrap());
        let restored = deferred.restore(&printed);
        assert_eq!(
            restored,
            "/// First line with a [link](https://example.org/a#b).\n///\n/// Second paragraph\npub struct X;\n"
        );
        drop(deferred);
        // Outside the store, tokens carry the text again.
        assert_eq!(d.tokens().to_string(), direct);
    }

    #[test]
    fn rst_conversion() {
        let md = rst_to_markdown(
            "Resize a block image while a guest is running.\n\nUse @node-name or ``device``.\nSee [1] and <x> at https://qemu.org.\n\n.. qmp-example::\n\n   -> { \"execute\": \"block_resize\" }\n   <- { \"return\": {} }\n\n.. note:: Only qcow2.\n   Really.\n\nExample::\n\n    foo [bar]\n",
        );
        assert!(md.contains("Use `node-name` or `device`."), "{md}");
        assert!(
            md.contains("See \\[1\\] and \\<x\\> at <https://qemu.org>."),
            "{md}"
        );
        assert!(
            md.contains(
                "```text\n-> { \"execute\": \"block_resize\" }\n<- { \"return\": {} }\n```"
            ),
            "{md}"
        );
        assert!(md.contains("**Note:**"), "{md}");
        assert!(md.contains("Example:\n```text\nfoo [bar]\n```"), "{md}");
        assert!(!md.contains("\n    "), "no indented (doctest) blocks: {md}");
    }
}
