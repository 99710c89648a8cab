//! Documentation comment blocks.
//!
//! A block that starts with `# @NAME:` documents the definition that follows it; any other
//! block is free-form text (section headings, introductions) and is skipped. A definition
//! block is split into the overview, per-member text (`@member: text`), per-feature text
//! (after a `Features:` line) and tagged sections (`Since:`, `Returns:`, `Errors:`, `TODO:`,
//! and the old `Note:`/`Notes:`/`Example:`/`Examples:`). The parser is deliberately lenient:
//! it accepts the layouts used from QEMU 2.12 (aligned continuation lines) to 10.x (indented
//! continuation lines, rST directives and headings).

/// The kind of a tagged (or untagged) doc section.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SectionKind {
    /// Untagged text after the member/feature descriptions (rST directives such as
    /// `.. qmp-example::` and `.. note::` land here).
    Plain,
    /// `Since:`
    Since,
    /// `Returns:`
    Returns,
    /// `Errors:`
    Errors,
    /// `TODO:` (not meant for users).
    Todo,
    /// Old `Note:` / `Notes:`.
    Note,
    /// Old `Example:` / `Examples:` (literal QMP text, not JSON).
    Example,
}

/// A described name: a member, argument, enum value, branch or feature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocItem {
    /// The name after `@`.
    pub name: String,
    /// The description (continuation lines dedented, paragraphs separated by blank lines).
    pub text: String,
}

/// A section of a definition doc block after the descriptions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocSection {
    /// Its kind.
    pub kind: SectionKind,
    /// Its text (without the tag).
    pub text: String,
}

/// The parsed doc comment of one definition. Prose only: it never goes into the normalized
/// schema, but an emitter reading QAPI source can turn it into rustdoc.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Doc {
    /// Overview paragraphs (between the `@NAME:` line and the first description or section).
    pub body: String,
    /// `@name: text` descriptions of members, arguments, enum values and branches.
    pub members: Vec<DocItem>,
    /// `@name: text` descriptions after `Features:`.
    pub features: Vec<DocItem>,
    /// Tagged and plain sections, in order.
    pub sections: Vec<DocSection>,
}

impl Doc {
    /// The description of member (argument, value, branch) `name`.
    pub fn member(&self, name: &str) -> Option<&str> {
        self.members
            .iter()
            .find(|m| m.name == name)
            .map(|m| m.text.as_str())
    }

    /// The description of feature `name`.
    pub fn feature(&self, name: &str) -> Option<&str> {
        self.features
            .iter()
            .find(|m| m.name == name)
            .map(|m| m.text.as_str())
    }

    /// The first section of kind `kind`.
    pub fn section(&self, kind: SectionKind) -> Option<&str> {
        self.sections
            .iter()
            .find(|s| s.kind == kind)
            .map(|s| s.text.as_str())
    }

    /// The since-version: the version number of the `Since:` section, or else of an old-style
    /// `Since X.Y` line in the text.
    pub fn since(&self) -> Option<String> {
        if let Some(s) = self.section(SectionKind::Since) {
            if let Some(v) = version_token(s) {
                return Some(v);
            }
        }
        let plain = std::iter::once(self.body.as_str()).chain(
            self.sections
                .iter()
                .filter(|s| s.kind == SectionKind::Plain)
                .map(|s| s.text.as_str()),
        );
        for text in plain {
            for line in text.lines() {
                if let Some(rest) = line.trim().strip_prefix("Since ") {
                    if rest.starts_with(|c: char| c.is_ascii_digit()) {
                        return version_token(rest);
                    }
                }
            }
        }
        None
    }
}

/// The first version number (`2.12`, `0.14.0`) in `s`.
pub(crate) fn version_token(s: &str) -> Option<String> {
    let start = s.find(|c: char| c.is_ascii_digit())?;
    let rest = &s[start..];
    let end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(rest.len());
    let v = rest[..end].trim_end_matches('.');
    if v.is_empty() {
        None
    } else {
        Some(v.to_string())
    }
}

/// The since-version given inline in a member description: `(since 2.7)`, `(Since: 2.9)`,
/// `(since 10.0; default: 10)`, or a description starting with `Since 2.12`.
pub fn inline_since(text: &str) -> Option<String> {
    let lower = text.to_ascii_lowercase();
    let mut from = 0;
    while let Some(off) = lower[from..].find("since") {
        let at = from + off;
        let before = lower[..at].trim_end();
        let ok = at == 0 || lower[..at].ends_with('(') || before.is_empty();
        if ok {
            let after = lower[at + 5..].trim_start_matches([':', ' ', '\t', '\n']);
            let after = after
                .strip_prefix("qemu ")
                .or_else(|| after.strip_prefix("version "))
                .unwrap_or(after);
            if after.starts_with(|c: char| c.is_ascii_digit()) {
                return version_token(after);
            }
        }
        from = at + 5;
    }
    None
}

/// Parses the lines of a block. Returns the documented symbol (`None` for a free-form block)
/// and the parsed doc. The error is a message; the caller adds the location.
pub(crate) fn parse_block(lines: &[String]) -> Result<(Option<String>, Doc), String> {
    let Some(first) = lines.first() else {
        return Ok((None, Doc::default()));
    };
    let Some(after_at) = first.strip_prefix('@') else {
        return Ok((None, Doc::default()));
    };
    let Some(colon) = after_at.find(':') else {
        return Err(format!(
            "the first line of a definition doc block must be '@NAME:', found '@{after_at}'"
        ));
    };
    let symbol = after_at[..colon].trim().to_string();
    if symbol.is_empty() || symbol.contains(char::is_whitespace) {
        return Err(format!(
            "the first line of a definition doc block must be '@NAME:', found '@{after_at}'"
        ));
    }
    let mut b = Builder::default();
    let same_line = after_at[colon + 1..].trim();
    if !same_line.is_empty() {
        b.body.push(same_line.to_string());
    }
    for line in &lines[1..] {
        b.line(line);
    }
    Ok((Some(symbol), b.finish()))
}

#[derive(Clone, Copy, PartialEq)]
enum Cur {
    Body,
    Member(usize),
    Feature(usize),
    Section(usize),
    /// After `Features:`, before the first feature.
    Between,
}

#[derive(Default)]
struct Builder {
    body: Vec<String>,
    members: Vec<(String, Vec<String>)>,
    features: Vec<(String, Vec<String>)>,
    sections: Vec<(SectionKind, Vec<String>)>,
    cur: Option<Cur>,
    features_mode: bool,
    prev_blank: bool,
}

const TAGS: [(&str, SectionKind); 8] = [
    ("Since", SectionKind::Since),
    ("Returns", SectionKind::Returns),
    ("Errors", SectionKind::Errors),
    ("TODO", SectionKind::Todo),
    ("Notes", SectionKind::Note),
    ("Note", SectionKind::Note),
    ("Examples", SectionKind::Example),
    ("Example", SectionKind::Example),
];

fn item_line(line: &str) -> Option<(String, String)> {
    let rest = line.strip_prefix('@')?;
    let end = rest.find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))?;
    if end == 0 || !rest[end..].starts_with(':') {
        return None;
    }
    Some((rest[..end].to_string(), rest[end + 1..].trim().to_string()))
}

fn tag_line(line: &str) -> Option<(SectionKind, String)> {
    for (tag, kind) in TAGS {
        if let Some(rest) = line.strip_prefix(tag) {
            if let Some(text) = rest.strip_prefix(':') {
                return Some((kind, text.trim().to_string()));
            }
        }
    }
    None
}

impl Builder {
    fn cur(&self) -> Cur {
        self.cur.unwrap_or(Cur::Body)
    }

    fn text_mut(&mut self, cur: Cur) -> Option<&mut Vec<String>> {
        match cur {
            Cur::Body => Some(&mut self.body),
            Cur::Member(i) => self.members.get_mut(i).map(|m| &mut m.1),
            Cur::Feature(i) => self.features.get_mut(i).map(|m| &mut m.1),
            Cur::Section(i) => self.sections.get_mut(i).map(|m| &mut m.1),
            Cur::Between => None,
        }
    }

    fn push_to(&mut self, cur: Cur, line: &str) {
        if let Some(t) = self.text_mut(cur) {
            t.push(line.to_string());
        }
    }

    fn new_section(&mut self, kind: SectionKind, first: String) {
        self.sections.push((kind, vec![first]));
        self.cur = Some(Cur::Section(self.sections.len() - 1));
    }

    fn line(&mut self, line: &str) {
        if line.trim().is_empty() {
            let cur = self.cur();
            self.push_to(cur, "");
            self.prev_blank = true;
            return;
        }
        let prev_blank = std::mem::replace(&mut self.prev_blank, false);
        let indented = line.starts_with([' ', '\t']);
        if !indented {
            if let Some((name, text)) = item_line(line) {
                if self.features_mode {
                    self.features.push((name, vec![text]));
                    self.cur = Some(Cur::Feature(self.features.len() - 1));
                } else {
                    self.members.push((name, vec![text]));
                    self.cur = Some(Cur::Member(self.members.len() - 1));
                }
                return;
            }
            if line.trim_end() == "Features:" {
                self.features_mode = true;
                self.cur = Some(Cur::Between);
                return;
            }
            if let Some((kind, text)) = tag_line(line) {
                self.new_section(kind, text);
                return;
            }
            let cur = self.cur();
            let starts_plain = match cur {
                Cur::Body => false,
                Cur::Between => true,
                Cur::Member(_) | Cur::Feature(_) => prev_blank,
                Cur::Section(i) => match self.sections.get(i).map(|s| s.0) {
                    Some(SectionKind::Note | SectionKind::Example | SectionKind::Plain) => false,
                    _ => prev_blank,
                },
            };
            if starts_plain {
                self.new_section(SectionKind::Plain, line.to_string());
                return;
            }
            self.push_to(cur, line);
            return;
        }
        let cur = self.cur();
        if cur == Cur::Between {
            self.new_section(SectionKind::Plain, line.to_string());
        } else {
            self.push_to(cur, line);
        }
    }

    fn finish(self) -> Doc {
        Doc {
            body: join(&self.body, false),
            members: self
                .members
                .into_iter()
                .map(|(name, t)| DocItem {
                    name,
                    text: join(&t, true),
                })
                .collect(),
            features: self
                .features
                .into_iter()
                .map(|(name, t)| DocItem {
                    name,
                    text: join(&t, true),
                })
                .collect(),
            sections: self
                .sections
                .into_iter()
                .map(|(kind, t)| DocSection {
                    kind,
                    text: join(&t, kind != SectionKind::Plain),
                })
                .collect(),
        }
    }
}

/// Joins text lines: trims blank lines at both ends and removes the common indentation of the
/// lines after the first (`first_is_lead`: the first line follows a tag and is not indented).
fn join(lines: &[String], first_is_lead: bool) -> String {
    let skip = usize::from(first_is_lead);
    let indent = lines
        .iter()
        .skip(skip)
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.len() - l.trim_start().len())
        .min()
        .unwrap_or(0);
    let mut out: Vec<&str> = Vec::with_capacity(lines.len());
    for (i, l) in lines.iter().enumerate() {
        if i < skip {
            out.push(l.as_str());
        } else if l.trim().is_empty() {
            out.push("");
        } else {
            out.push(l.get(indent..).unwrap_or(l.trim_start()));
        }
    }
    while out.last().is_some_and(|l| l.is_empty()) {
        out.pop();
    }
    let first = out.iter().position(|l| !l.is_empty()).unwrap_or(out.len());
    out[first..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(s: &str) -> Vec<String> {
        s.lines().map(str::to_string).collect()
    }

    #[test]
    fn modern_block() {
        let (sym, doc) = parse_block(&lines(
            "@NbdServerOptions:\n\nOverview text.\n\n@addr: Address on which to listen\n    \
             (since 4.2).\n\n@x: other\n\nFeatures:\n\n@deprecated: Member @x is \
             deprecated.\n\n.. note:: Some note.\n\nSince: 4.2\n\n.. qmp-example::\n\n    -> \
             { \"execute\": \"foo\" }",
        ))
        .expect("parses");
        assert_eq!(sym.as_deref(), Some("NbdServerOptions"));
        assert_eq!(doc.body, "Overview text.");
        assert_eq!(
            doc.member("addr"),
            Some("Address on which to listen\n(since 4.2).")
        );
        assert_eq!(
            inline_since(doc.member("addr").unwrap_or("")),
            Some("4.2".into())
        );
        assert_eq!(doc.feature("deprecated"), Some("Member @x is deprecated."));
        assert_eq!(doc.since().as_deref(), Some("4.2"));
        assert_eq!(doc.sections[0].kind, SectionKind::Plain);
        assert!(doc.sections[0].text.starts_with(".. note::"));
        assert_eq!(
            doc.sections.last().map(|s| s.kind),
            Some(SectionKind::Plain)
        );
    }

    #[test]
    fn old_block() {
        let (_, doc) = parse_block(&lines(
            "@query-foo:\n\nReturns a foo.\n\n@a: first line\n     continued\n@b: Since \
             2.12\n\nReturns: a Foo\n\nSince: 0.14.0\n\nExample:\n\n-> { \"execute\": \
             \"query-foo\" }\n<- { \"return\": {} }\n\nNotes: something\n",
        ))
        .expect("parses");
        assert_eq!(doc.member("a"), Some("first line\ncontinued"));
        assert_eq!(
            inline_since(doc.member("b").unwrap_or("")),
            Some("2.12".into())
        );
        assert_eq!(doc.section(SectionKind::Returns), Some("a Foo"));
        assert_eq!(doc.since().as_deref(), Some("0.14.0"));
        let ex = doc.section(SectionKind::Example).unwrap_or("");
        assert!(ex.contains("<- { \"return\": {} }"), "{ex}");
        assert_eq!(doc.section(SectionKind::Note), Some("something"));
    }

    #[test]
    fn free_form_and_errors() {
        assert_eq!(
            parse_block(&lines("= Title\n\ntext")).map(|r| r.0),
            Ok(None)
        );
        assert_eq!(
            parse_block(&lines("*****\nTitle\n*****")).map(|r| r.0),
            Ok(None)
        );
        assert!(parse_block(&lines("@Foo\ntext")).is_err());
    }

    #[test]
    fn since_variants() {
        assert_eq!(inline_since("foo (Since: 2.9)"), Some("2.9".into()));
        assert_eq!(
            inline_since("foo (since 10.0; default: 10)"),
            Some("10.0".into())
        );
        assert_eq!(inline_since("foo (Since 2.3)."), Some("2.3".into()));
        assert_eq!(
            inline_since("Since QEMU 2.4, each device"),
            Some("2.4".into())
        );
        assert_eq!(inline_since("ever since then"), None);
        assert_eq!(
            version_token("2.2; 'Unknown' since 2.4"),
            Some("2.2".into())
        );
    }
}
