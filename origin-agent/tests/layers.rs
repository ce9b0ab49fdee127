//! The origin agent's layers, as a specification the code is checked against.
//!
//! `origin-agent/src/` is in layer folders, lowest first:
//!
//! | layer | what it is | may name |
//! |---|---|---|
//! | `base` | what any server needs: errors, clock, configuration, metrics, HTTP plumbing | std, crates, `argus_shared` |
//! | `domain` | the relay's concepts: store, keys, auth, pairing, proxy, tunnel, LAN | `base` |
//! | `client` | the reference phone client (leaving the crate) | `base`, `domain` |
//! | `application` | the state (an aggregate of domain types), the router, the handlers | `base`, `domain` |
//! | `listener` | admission: who may reach the router (edge, admin, LAN) | everything below |
//! | `cli` | every subcommand: the shell | everything below |
//!
//! 1. Every module lives in its layer's folder (only `lib.rs` and `main.rs` are at the top).
//! 2. A module names only its own layer and the layers below it — `use` lines and paths written
//!    inline alike, `super::` resolved, test code included. Inside the crate a module is named by
//!    its layer path (`crate::domain::store`), never through a re-export at the crate root.
//! 3. Among the agent's modules — each layer's top-level modules (`domain::store`,
//!    `domain::pairing`, `application::router`, …) — imports never go round in a cycle.
//!
//! The check reads the source text (comments and string literals left out), so it needs no
//! compiler plugin and fails with the file and line of the offending path.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::{Path, PathBuf};

/// The layers, lowest first; a module may name its own layer and the ones before it. `client`
/// and `application` are side by side: neither may name the other.
const LAYERS: &[(&str, u8)] = &[
    ("base", 0),
    ("domain", 1),
    ("client", 2),
    ("application", 2),
    ("listener", 3),
    ("cli", 4),
];

/// The files at the top of `src/`: the crate root and the binary.
const ROOTS: &[&str] = &["lib.rs", "main.rs"];

fn rank(layer: &str) -> Option<u8> {
    LAYERS.iter().find(|(l, _)| *l == layer).map(|(_, r)| *r)
}

/// A module may name `target`'s layer: its own, or a lower one (side-by-side layers excluded).
fn may_name(from: &str, target: &str) -> bool {
    from == target
        || match (rank(from), rank(target)) {
            (Some(f), Some(t)) => t < f,
            _ => false,
        }
}

// ---------------------------------------------------------------------------------------------
// The specification.

#[test]
fn every_module_lives_in_its_layer_folder() {
    let mut misplaced = Vec::new();
    for file in agent_sources() {
        let rel = relative(&file);
        let top = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy();
        let at_top = rel.components().count() == 1;
        if at_top && !ROOTS.contains(&&*top) || !at_top && rank(&top).is_none() {
            misplaced.push(rel.display().to_string());
        }
    }
    assert!(
        misplaced.is_empty(),
        "these files are not in a layer folder ({}): {misplaced:#?}",
        LAYERS
            .iter()
            .map(|(l, _)| *l)
            .collect::<Vec<_>>()
            .join(", ")
    );
}

#[test]
fn a_layer_names_only_itself_and_the_layers_below() {
    let mut violations = Vec::new();
    for file in agent_sources() {
        let module = module_of(&relative(&file));
        let Some(from) = module.first() else {
            continue; // lib.rs and main.rs declare the layers.
        };
        for named in paths_named(&module, &read(&file)) {
            let target = named.path.first().map(String::as_str).unwrap_or("");
            if rank(target).is_none() {
                violations.push(format!(
                    "{}:{}: names crate::{} — name a module by its layer path",
                    relative(&file).display(),
                    named.line,
                    named.path.join("::")
                ));
            } else if !may_name(from, target) {
                violations.push(format!(
                    "{}:{}: the {from} layer names crate::{} ({target} is not below {from})",
                    relative(&file).display(),
                    named.line,
                    named.path.join("::")
                ));
            }
        }
    }
    assert!(violations.is_empty(), "{}", violations.join("\n"));
}

#[test]
fn the_agents_modules_import_each_other_without_a_cycle() {
    let graph = module_graph();
    let cycles = cycles(&graph);
    let described: Vec<String> = cycles
        .iter()
        .map(|cycle| {
            let steps: Vec<String> = cycle
                .windows(2)
                .map(|w| format!("  {} → {} ({})", w[0], w[1], graph[&w[0]][&w[1]]))
                .collect();
            format!("a cycle:\n{}", steps.join("\n"))
        })
        .collect();
    assert!(described.is_empty(), "{}", described.join("\n"));
}

// ---------------------------------------------------------------------------------------------
// The reader itself, so the checks above cannot pass by reading nothing.

#[test]
fn the_reader_finds_use_lines_groups_inline_paths_and_super() {
    let module: Vec<String> = ["domain", "proxy", "images"].map(String::from).to_vec();
    let text = r#"
//! [`crate::cli`] in a doc comment is not an import.
use crate::base::http::{self, body::{Body, BoxError}};
use super::backend::Backend;
const NOT_CODE: &str = "crate::listener::edge";
fn f<'a>(c: char) -> &'a str {
    let _ = '"';
    crate::application::state::AppState::open;
    ""
}
#[cfg(test)]
mod tests {
    use super::*;
    use super::super::store::Store;
}
"#;
    let found: BTreeSet<String> = paths_named(&module, text)
        .into_iter()
        .map(|n| format!("{}:{}", n.line, n.path.join("::")))
        .collect();
    let expected: BTreeSet<String> = [
        "3:base::http",
        "3:base::http::body::Body",
        "3:base::http::body::BoxError",
        "4:domain::proxy::backend::Backend",
        "8:application::state::AppState::open",
        "13:domain::proxy::images",
        "14:domain::proxy::store::Store",
    ]
    .map(String::from)
    .into_iter()
    .collect();
    assert_eq!(found, expected);
}

#[test]
fn a_cycle_is_found_and_a_chain_is_not() {
    let edges = |pairs: &[(&str, &str)]| {
        let mut g: Graph = BTreeMap::new();
        for (a, b) in pairs {
            g.entry(a.to_string())
                .or_default()
                .insert(b.to_string(), "test".into());
        }
        g
    };
    let chain = edges(&[("a", "b"), ("b", "c"), ("a", "c")]);
    assert!(cycles(&chain).is_empty());
    let ring = edges(&[("a", "b"), ("b", "c"), ("c", "a"), ("c", "d")]);
    assert_eq!(
        cycles(&ring),
        vec![["a", "b", "c", "a"].map(String::from).to_vec()]
    );
}

// ---------------------------------------------------------------------------------------------
// Reading the source.

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn agent_sources() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.expect("directory entry").path())
            .collect();
        entries.sort();
        for path in entries {
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|x| x == "rs") {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(&src(), &mut files);
    assert!(files.len() > 20, "read only {} files", files.len());
    files
}

fn relative(file: &Path) -> PathBuf {
    file.strip_prefix(src()).expect("under src/").to_path_buf()
}

fn read(file: &Path) -> String {
    std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()))
}

/// `domain/proxy/backend.rs` → `[domain, proxy, backend]`; `domain/store/mod.rs` →
/// `[domain, store]`; `lib.rs` and `main.rs` → `[]`.
fn module_of(rel: &Path) -> Vec<String> {
    let mut parts: Vec<String> = rel
        .with_extension("")
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts.last().is_some_and(|p| p == "mod") || parts.len() == 1 {
        parts.pop();
    }
    parts
}

/// The text with comments and the contents of string and char literals blanked out (line
/// breaks kept, so line numbers stay true).
fn code_only(text: &str) -> String {
    let b: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let blank = |c: char| if c == '\n' { '\n' } else { ' ' };
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let next = b.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < b.len() && b[i] != '\n' {
                out.push(' ');
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < b.len() {
                if b[i] == '/' && b.get(i + 1) == Some(&'*') {
                    depth += 1;
                    out.push_str("  ");
                    i += 2;
                } else if b[i] == '*' && b.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    out.push_str("  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    out.push(blank(b[i]));
                    i += 1;
                }
            }
        } else if c == 'r' && (next == Some('"') || next == Some('#')) && !ident_before(&b, i) {
            // A raw string: r"…", r#"…"#, ...
            let mut j = i + 1;
            let mut hashes = 0;
            while b.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if b.get(j) != Some(&'"') {
                out.push(c);
                i += 1;
                continue;
            }
            j += 1;
            while j < b.len() {
                if b[j] == '"' && (0..hashes).all(|k| b.get(j + 1 + k) == Some(&'#')) {
                    j += 1 + hashes;
                    break;
                }
                j += 1;
            }
            out.extend(b[i..j.min(b.len())].iter().map(|&c| blank(c)));
            i = j;
        } else if c == '"' {
            out.push(' ');
            i += 1;
            while i < b.len() && b[i] != '"' {
                if b[i] == '\\' {
                    out.push(' ');
                    i += 1;
                }
                if i < b.len() {
                    out.push(blank(b[i]));
                    i += 1;
                }
            }
            out.push(' ');
            i += 1;
        } else if c == '\'' {
            // A char literal ('x', '\n', '\u{..}'), or a lifetime ('a), which stays.
            if next == Some('\\') {
                let mut j = i + 2;
                while j < b.len() && b[j] != '\'' {
                    j += 1;
                }
                out.extend(std::iter::repeat_n(' ', j + 1 - i));
                i = j + 1;
            } else if b.get(i + 2) == Some(&'\'') {
                out.push_str("   ");
                i += 3;
            } else {
                out.push(c);
                i += 1;
            }
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

fn ident_before(b: &[char], i: usize) -> bool {
    i > 0 && (b[i - 1].is_alphanumeric() || b[i - 1] == '_')
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    PathSep,
    Punct(char),
}

fn tokens(code: &str) -> Vec<(Tok, usize)> {
    let b: Vec<char> = code.chars().collect();
    let mut out = Vec::new();
    let mut line = 1;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == '\n' {
            line += 1;
            i += 1;
        } else if c.is_whitespace() {
            i += 1;
        } else if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < b.len() && (b[i].is_alphanumeric() || b[i] == '_') {
                i += 1;
            }
            out.push((Tok::Ident(b[start..i].iter().collect()), line));
        } else if c == ':' && b.get(i + 1) == Some(&':') {
            out.push((Tok::PathSep, line));
            i += 2;
        } else {
            out.push((Tok::Punct(c), line));
            i += 1;
        }
    }
    out
}

/// A path into the crate, resolved from the crate root, and the line it is on.
#[derive(Debug)]
struct Named {
    path: Vec<String>,
    line: usize,
}

/// Every `crate::…` and `super::…` path in `text` (the file of `module`), resolved from the crate
/// root; groups (`{a, b::c}`) are expanded. `self::` stays in the module and is left out.
fn paths_named(module: &[String], text: &str) -> Vec<Named> {
    let toks = tokens(&code_only(text));
    let ident = |i: usize| match toks.get(i) {
        Some((Tok::Ident(s), _)) => Some(s.as_str()),
        _ => None,
    };
    let is = |i: usize, t: Tok| toks.get(i).is_some_and(|(x, _)| *x == t);
    let mut found = Vec::new();
    // Inline modules (`mod tests { … }`) and the brace depth each one opened at.
    let mut inline: Vec<(String, usize)> = Vec::new();
    let mut depth = 0usize;
    let mut i = 0;
    while i < toks.len() {
        match &toks[i].0 {
            Tok::Punct('{') => depth += 1,
            Tok::Punct('}') => {
                if inline.last().is_some_and(|(_, d)| *d == depth) {
                    inline.pop();
                }
                depth = depth.saturating_sub(1);
            }
            Tok::Ident(k) if k == "mod" => {
                if let (Some(name), true) = (ident(i + 1), is(i + 2, Tok::Punct('{'))) {
                    inline.push((name.to_owned(), depth + 1));
                }
            }
            Tok::Ident(k) if (k == "crate" || k == "super") && is(i + 1, Tok::PathSep) => {
                // Only at the start of a path: not `x::crate`.
                let starts = i == 0 || !is(i - 1, Tok::PathSep);
                if starts {
                    let mut base: Vec<String> = if k == "crate" {
                        Vec::new()
                    } else {
                        let mut here: Vec<String> = module.to_vec();
                        here.extend(inline.iter().map(|(n, _)| n.clone()));
                        here
                    };
                    let mut j = i;
                    while ident(j) == Some("super") && is(j + 1, Tok::PathSep) {
                        base.pop();
                        j += 2;
                    }
                    if k == "crate" {
                        j = i + 2;
                    }
                    let mut paths = Vec::new();
                    let end = path_tree(&toks, j, base, &mut paths);
                    let line = toks[i].1;
                    found.extend(paths.into_iter().map(|path| Named { path, line }));
                    i = end;
                    continue;
                }
            }
            _ => {}
        }
        i += 1;
    }
    // A path to the inline `tests` module of the file itself names nothing new.
    found.retain(|n| !n.path.is_empty());
    found
}

/// Reads a path (or a `{…}` group of paths) starting at `i` below `prefix`; returns where it
/// ended.
fn path_tree(
    toks: &[(Tok, usize)],
    mut i: usize,
    mut prefix: Vec<String>,
    out: &mut Vec<Vec<String>>,
) -> usize {
    loop {
        match toks.get(i).map(|(t, _)| t) {
            Some(Tok::Punct('{')) => {
                i += 1;
                loop {
                    match toks.get(i).map(|(t, _)| t) {
                        Some(Tok::Punct('}')) => return i + 1,
                        Some(Tok::Punct(',')) => i += 1,
                        None => return i,
                        _ => {
                            i = path_tree(toks, i, prefix.clone(), out);
                            // Skip `as name` up to the next item.
                            while let Some((t, _)) = toks.get(i) {
                                if matches!(t, Tok::Punct(',') | Tok::Punct('}')) {
                                    break;
                                }
                                i += 1;
                            }
                        }
                    }
                }
            }
            Some(Tok::Punct('*')) => {
                out.push(prefix);
                return i + 1;
            }
            Some(Tok::Ident(name)) => {
                if name != "self" {
                    prefix.push(name.clone());
                }
                i += 1;
                if matches!(toks.get(i), Some((Tok::PathSep, _)))
                    && matches!(
                        toks.get(i + 1),
                        Some((Tok::Ident(_) | Tok::Punct('{') | Tok::Punct('*'), _))
                    )
                {
                    i += 1;
                    continue;
                }
                out.push(prefix);
                return i;
            }
            _ => {
                out.push(prefix);
                return i;
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The graph of the agent's modules.

/// Module → the modules it names → where (the first file and line that does).
type Graph = BTreeMap<String, BTreeMap<String, String>>;

/// The top-level module of a layer a path lies in: `domain::store::Store` → `domain::store`.
/// The reference client counts as one module (it is leaving the crate whole).
fn node(path: &[String]) -> Option<String> {
    match path {
        [client, ..] if client == "client" => Some(client.clone()),
        [layer, top, ..] if rank(layer).is_some() => Some(format!("{layer}::{top}")),
        _ => None,
    }
}

fn module_graph() -> Graph {
    let mut graph: Graph = BTreeMap::new();
    for file in agent_sources() {
        let rel = relative(&file);
        let module = module_of(&rel);
        let Some(from) = node(&module) else {
            continue;
        };
        graph.entry(from.clone()).or_default();
        for named in paths_named(&module, &read(&file)) {
            if let Some(to) = node(&named.path) {
                if to != from {
                    graph
                        .entry(from.clone())
                        .or_default()
                        .entry(to)
                        .or_insert_with(|| format!("{}:{}", rel.display(), named.line));
                }
            }
        }
    }
    assert!(graph.len() > 10, "only {} modules found", graph.len());
    graph
}

/// One cycle per set of modules that reach each other, as `[a, b, …, a]`.
fn cycles(graph: &Graph) -> Vec<Vec<String>> {
    let mut seen: BTreeSet<BTreeSet<String>> = BTreeSet::new();
    let mut found = Vec::new();
    for (from, targets) in graph {
        for to in targets.keys() {
            // The shortest way back from `to` to `from`, if any, closes a cycle.
            let Some(back) = shortest_path(graph, to, from) else {
                continue;
            };
            let mut cycle = vec![from.clone()];
            cycle.extend(back);
            let members: BTreeSet<String> = cycle.iter().cloned().collect();
            if seen.insert(members) {
                found.push(cycle);
            }
        }
    }
    found
}

fn shortest_path(graph: &Graph, from: &str, to: &str) -> Option<Vec<String>> {
    let mut previous: BTreeMap<String, String> = BTreeMap::new();
    let mut queue = VecDeque::from([from.to_owned()]);
    let mut visited = BTreeSet::from([from.to_owned()]);
    while let Some(at) = queue.pop_front() {
        if at == to {
            let mut path = vec![at.clone()];
            let mut cur = at;
            while let Some(p) = previous.get(&cur) {
                path.push(p.clone());
                cur = p.clone();
            }
            path.reverse();
            return Some(path);
        }
        for next in graph.get(&at).into_iter().flat_map(|t| t.keys()) {
            if visited.insert(next.clone()) {
                previous.insert(next.clone(), at.clone());
                queue.push_back(next.clone());
            }
        }
    }
    None
}
