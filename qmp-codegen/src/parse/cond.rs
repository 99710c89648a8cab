//! `if` conditions: the current grammar (QEMU 6.2+) and the old C-preprocessor strings
//! (QEMU 3.0 to 6.1), both parsed into [`Cond`].

use crate::model::Cond;

use super::syntax::{Node, Val};

const MAX_DEPTH: usize = 32;

/// Whether `s` is a valid condition symbol (a C identifier).
pub(crate) fn is_symbol(s: &str) -> bool {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || c == '_' => {}
        _ => return false,
    }
    chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Parses an `if` value. The error is a message without location; the caller adds it.
pub(crate) fn parse_cond(node: &Node) -> Result<Cond, String> {
    cond(node, 0)
}

fn cond(node: &Node, depth: usize) -> Result<Cond, String> {
    if depth > MAX_DEPTH {
        return Err("condition nested too deeply".into());
    }
    match &node.val {
        Val::Str(s) => string_cond(s, depth),
        // Old form: a list of conditions that must all hold.
        Val::List(items) => {
            if items.is_empty() {
                return Err("'if' list must not be empty".into());
            }
            let mut v = Vec::with_capacity(items.len());
            for it in items {
                v.push(cond(it, depth + 1)?);
            }
            Ok(if v.len() == 1 {
                v.remove(0)
            } else {
                Cond::All(v)
            })
        }
        Val::Dict(entries) => {
            if entries.len() != 1 {
                return Err(format!(
                    "condition object must have exactly one key ('all', 'any' or 'not'), \
                     found {}",
                    entries.len()
                ));
            }
            let e = &entries[0];
            match e.key.as_str() {
                "all" | "any" => {
                    let Val::List(items) = &e.value.val else {
                        return Err(format!(
                            "'{}' takes a list of conditions, found {}",
                            e.key,
                            e.value.val.describe()
                        ));
                    };
                    if items.is_empty() {
                        return Err(format!("'{}' list must not be empty", e.key));
                    }
                    let mut v = Vec::with_capacity(items.len());
                    for it in items {
                        v.push(cond(it, depth + 1)?);
                    }
                    Ok(if e.key == "all" {
                        Cond::All(v)
                    } else {
                        Cond::Any(v)
                    })
                }
                "not" => Ok(Cond::Not(Box::new(cond(&e.value, depth + 1)?))),
                other => Err(format!(
                    "unknown condition operator '{other}' (expected 'all', 'any' or 'not')"
                )),
            }
        }
        Val::Bool(_) => Err(
            "condition must be a symbol string, a list, or an object with 'all', 'any' or \
             'not', found a boolean"
                .into(),
        ),
    }
}

/// An old-style (C preprocessor) condition string, found at `depth` inside the condition: its
/// own nesting counts on top, so the limit is the same as for the equivalent structured form
/// (which the normalized schema writes).
fn string_cond(s: &str, depth: usize) -> Result<Cond, String> {
    if is_symbol(s) {
        return Ok(Cond::Symbol(s.to_string()));
    }
    let tokens = tokenize(s)?;
    let mut p = ExprParser {
        toks: &tokens,
        i: 0,
        src: s,
    };
    let c = p.or(depth)?;
    if p.i != tokens.len() {
        return Err(format!(
            "invalid condition '{s}': unexpected '{}'",
            tokens[p.i].text()
        ));
    }
    Ok(c)
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    LParen,
    RParen,
    And,
    Or,
    Not,
}

impl Tok {
    fn text(&self) -> &str {
        match self {
            Tok::Ident(s) => s,
            Tok::LParen => "(",
            Tok::RParen => ")",
            Tok::And => "&&",
            Tok::Or => "||",
            Tok::Not => "!",
        }
    }
}

fn tokenize(s: &str) -> Result<Vec<Tok>, String> {
    let b = s.as_bytes();
    let mut i = 0;
    let mut out = Vec::new();
    while i < b.len() {
        let c = b[i];
        match c {
            b' ' | b'\t' => i += 1,
            b'(' => {
                out.push(Tok::LParen);
                i += 1;
            }
            b')' => {
                out.push(Tok::RParen);
                i += 1;
            }
            b'!' => {
                out.push(Tok::Not);
                i += 1;
            }
            b'&' if b.get(i + 1) == Some(&b'&') => {
                out.push(Tok::And);
                i += 2;
            }
            b'|' if b.get(i + 1) == Some(&b'|') => {
                out.push(Tok::Or);
                i += 2;
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let start = i;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                    i += 1;
                }
                out.push(Tok::Ident(s[start..i].to_string()));
            }
            _ => {
                return Err(format!(
                    "invalid condition '{s}': expected a symbol such as 'CONFIG_FOO', or an \
                     old-style expression of defined(SYMBOL), '&&', '||', '!' and parentheses"
                ))
            }
        }
    }
    if out.is_empty() {
        return Err("condition must not be empty".into());
    }
    Ok(out)
}

struct ExprParser<'a> {
    toks: &'a [Tok],
    i: usize,
    src: &'a str,
}

impl ExprParser<'_> {
    fn err(&self, what: &str) -> String {
        format!("invalid condition '{}': {what}", self.src)
    }

    fn or(&mut self, depth: usize) -> Result<Cond, String> {
        let mut v = vec![self.and(depth)?];
        while self.toks.get(self.i) == Some(&Tok::Or) {
            self.i += 1;
            v.push(self.and(depth)?);
        }
        Ok(flatten(v, false))
    }

    fn and(&mut self, depth: usize) -> Result<Cond, String> {
        let mut v = vec![self.unary(depth)?];
        while self.toks.get(self.i) == Some(&Tok::And) {
            self.i += 1;
            v.push(self.unary(depth)?);
        }
        Ok(flatten(v, true))
    }

    fn unary(&mut self, depth: usize) -> Result<Cond, String> {
        if depth > MAX_DEPTH {
            return Err(self.err("nested too deeply"));
        }
        match self.toks.get(self.i) {
            Some(Tok::Not) => {
                self.i += 1;
                Ok(Cond::Not(Box::new(self.unary(depth + 1)?)))
            }
            Some(Tok::LParen) => {
                self.i += 1;
                let c = self.or(depth + 1)?;
                if self.toks.get(self.i) != Some(&Tok::RParen) {
                    return Err(self.err("missing ')'"));
                }
                self.i += 1;
                Ok(c)
            }
            Some(Tok::Ident(id)) if id == "defined" => {
                self.i += 1;
                let paren = self.toks.get(self.i) == Some(&Tok::LParen);
                if paren {
                    self.i += 1;
                }
                let Some(Tok::Ident(sym)) = self.toks.get(self.i) else {
                    return Err(self.err("expected a symbol after 'defined'"));
                };
                let sym = sym.clone();
                self.i += 1;
                if paren {
                    if self.toks.get(self.i) != Some(&Tok::RParen) {
                        return Err(self.err("missing ')' after 'defined(SYMBOL'"));
                    }
                    self.i += 1;
                }
                Ok(Cond::Symbol(sym))
            }
            Some(Tok::Ident(id)) => {
                self.i += 1;
                Ok(Cond::Symbol(id.clone()))
            }
            Some(t) => Err(self.err(&format!("unexpected '{}'", t.text()))),
            None => Err(self.err("unexpected end of expression")),
        }
    }
}

fn flatten(mut v: Vec<Cond>, all: bool) -> Cond {
    if v.len() == 1 {
        return v.remove(0);
    }
    let mut out = Vec::with_capacity(v.len());
    for c in v {
        match (c, all) {
            (Cond::All(inner), true) => out.extend(inner),
            (Cond::Any(inner), false) => out.extend(inner),
            (c, _) => out.push(c),
        }
    }
    if all {
        Cond::All(out)
    } else {
        Cond::Any(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(x: &str) -> Cond {
        Cond::Symbol(x.into())
    }

    #[test]
    fn old_expressions() {
        assert_eq!(
            string_cond("defined(CONFIG_SPICE)", 0),
            Ok(s("CONFIG_SPICE"))
        );
        assert_eq!(
            string_cond("defined(A) && defined(B)", 0),
            Ok(Cond::All(vec![s("A"), s("B")]))
        );
        assert_eq!(
            string_cond("defined(A) || defined(B) || defined(C)", 0),
            Ok(Cond::Any(vec![s("A"), s("B"), s("C")]))
        );
        assert_eq!(
            string_cond("!defined(A) && (defined(B) || C)", 0),
            Ok(Cond::All(vec![
                Cond::Not(Box::new(s("A"))),
                Cond::Any(vec![s("B"), s("C")])
            ]))
        );
        assert!(string_cond("defined(A", 0).is_err());
        assert!(string_cond("A B", 0).is_err());
        assert!(string_cond("", 0).is_err());
        assert!(string_cond("a+b", 0).is_err());
    }

    #[test]
    fn display() {
        let c = Cond::All(vec![s("A"), Cond::Not(Box::new(s("B")))]);
        assert_eq!(c.to_string(), "all(A, not(B))");
        assert_eq!(Cond::Any(vec![s("A"), s("B")]).to_string(), "any(A, B)");
    }
}
