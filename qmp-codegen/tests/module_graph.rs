//! Issue 10: no module depends on itself through others. The modules of `qmp-core`,
//! `qmp-codegen` and `qmp-api` form a layered graph, so each can be read (and changed)
//! knowing only the modules below it. A dependency is any path through `crate::` or `super::`
//! outside comments and unit tests; a cycle is reported with its modules.

#![allow(clippy::unwrap_used)] // test helpers: a failure is a test failure

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Module name (`emit::types`) → source text without comments and `#[cfg(test)]` modules.
fn modules(src: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                if path.file_name().is_some_and(|n| n != "bin") {
                    stack.push(path);
                }
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let rel = path.strip_prefix(src).unwrap().with_extension("");
            let mut name = rel.to_string_lossy().replace('/', "::");
            if let Some(parent) = name.strip_suffix("::mod") {
                name = parent.to_string();
            }
            if name == "lib" || name == "main" {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let text = text.split("#[cfg(test)]\nmod tests").next().unwrap_or("");
            let code: String = text
                .lines()
                .filter(|l| !l.trim_start().starts_with("//"))
                .map(|l| format!("{l}\n"))
                .collect();
            out.insert(name, code);
        }
    }
    out
}

fn ident_at(text: &str) -> &str {
    let end = text
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(text.len());
    &text[..end]
}

/// The modules `code` (of module `me`) refers to.
fn dependencies(me: &str, code: &str, all: &BTreeSet<String>) -> BTreeSet<String> {
    let parent = me.rsplit_once("::").map(|(p, _)| p.to_string());
    let mut deps = BTreeSet::new();
    let mut add = |base: Option<&str>, rest: &str| {
        let first = ident_at(rest);
        let second = rest
            .get(first.len()..)
            .and_then(|r| r.strip_prefix("::"))
            .map(ident_at)
            .unwrap_or("");
        let prefix = base.map(|b| format!("{b}::")).unwrap_or_default();
        let candidates = [
            format!("{prefix}{first}::{second}"),
            format!("{prefix}{first}"),
        ];
        if let Some(m) = candidates.iter().find(|c| all.contains(*c)) {
            if m != me {
                deps.insert(m.clone());
            }
        }
    };
    for (marker, base) in [("crate::", None), ("super::", parent.as_deref())] {
        for (i, _) in code.match_indices(marker) {
            let rest = &code[i + marker.len()..];
            if let Some(group) = rest.strip_prefix('{') {
                let group = &group[..group.find('}').unwrap_or(group.len())];
                for item in group.split(',') {
                    add(base, item.trim());
                }
            } else {
                add(base, rest);
            }
        }
    }
    deps
}

/// The strongly connected components with more than one module (Tarjan).
fn cycles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct State<'g> {
        graph: &'g BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'g str, usize>,
        low: BTreeMap<&'g str, usize>,
        stack: Vec<&'g str>,
        found: Vec<Vec<String>>,
    }
    fn visit<'g>(s: &mut State<'g>, v: &'g str) {
        let i = s.index.len();
        s.index.insert(v, i);
        s.low.insert(v, i);
        s.stack.push(v);
        for w in s.graph.get(v).into_iter().flatten() {
            if !s.index.contains_key(w.as_str()) {
                visit(s, w);
                let lw = s.low[w.as_str()];
                let lv = s.low[v];
                s.low.insert(v, lv.min(lw));
            } else if s.stack.contains(&w.as_str()) {
                let iw = s.index[w.as_str()];
                let lv = s.low[v];
                s.low.insert(v, lv.min(iw));
            }
        }
        if s.low[v] == s.index[v] {
            let mut component = Vec::new();
            while let Some(w) = s.stack.pop() {
                component.push(w.to_string());
                if w == v {
                    break;
                }
            }
            if component.len() > 1 {
                component.sort();
                s.found.push(component);
            }
        }
    }
    let mut s = State {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        found: Vec::new(),
    };
    for v in graph.keys() {
        if !s.index.contains_key(v.as_str()) {
            visit(&mut s, v);
        }
    }
    s.found
}

fn graph_of(crate_dir: &str) -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(crate_dir)
        .join("src");
    let mods = modules(&src);
    let names: BTreeSet<String> = mods.keys().cloned().collect();
    mods.iter()
        .map(|(m, code)| (m.clone(), dependencies(m, code, &names)))
        .collect()
}

#[test]
fn module_graphs_have_no_cycles() {
    for krate in ["qmp-core", "qmp-codegen", "qmp-api"] {
        let graph = graph_of(krate);
        assert!(graph.len() > 3, "{krate}: {graph:?}");
        let found = cycles(&graph);
        assert!(
            found.is_empty(),
            "{krate}: modules depending on each other: {found:?}"
        );
    }
}

#[test]
fn the_checker_sees_dependencies_and_cycles() {
    let names: BTreeSet<String> = ["a", "b", "emit::x", "emit::y"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let deps = dependencies(
        "emit::x",
        "use super::y::Thing;\nuse crate::{a, b::Other};\n// crate::nothing\n",
        &names,
    );
    assert_eq!(
        deps,
        ["a", "b", "emit::y"]
            .iter()
            .map(|s| s.to_string())
            .collect()
    );
    let mut g = BTreeMap::new();
    g.insert("a".to_string(), BTreeSet::from(["b".to_string()]));
    g.insert("b".to_string(), BTreeSet::from(["c".to_string()]));
    g.insert("c".to_string(), BTreeSet::from(["a".to_string()]));
    g.insert("d".to_string(), BTreeSet::from(["a".to_string()]));
    assert_eq!(
        cycles(&g),
        vec![vec!["a".to_string(), "b".into(), "c".into()]]
    );
}
