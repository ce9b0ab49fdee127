//! Path rules: `"[METHODS ]/path/with/*/globs/**"`, compiled once, matched without allocating.

use super::error::FieldError;

const METHOD_NAMES: [&str; 7] = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

pub(super) fn method_bit(m: &str) -> u8 {
    METHOD_NAMES
        .iter()
        .position(|n| *n == m)
        .map_or(0, |i| 1u8 << i)
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Seg {
    Literal(String),
    /// `*`: exactly one segment.
    One,
    /// `**` (last only): zero or more segments.
    Rest,
}

/// A compiled path rule: optional methods and a segment glob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct PathRule {
    /// Bit set of [`METHOD_NAMES`]; 0 = any method.
    methods: u8,
    segs: Vec<Seg>,
    /// What every matching path starts with (the literal segments before the first wildcard):
    /// a cheap pre-check before walking the segments.
    pub(super) prefix: String,
    pub(super) source: String,
}

impl PathRule {
    pub(super) fn compile(src: &str) -> Result<PathRule, String> {
        let src_trim = src.trim();
        if src_trim.is_empty() {
            return Err("empty pattern".into());
        }
        let not_a_path = || {
            format!(
                "{src:?}: a pattern is a path starting with '/', optionally after methods \
                 (e.g. \"GET,HEAD /api/v1/events/*\")"
            )
        };
        let (methods, path) = if src_trim.starts_with('/') {
            (0, src_trim)
        } else {
            // `METHOD[,METHOD…] /path`: the methods end with whitespace before the first '/'.
            let idx = src_trim.find('/').ok_or_else(not_a_path)?;
            let (m, p) = src_trim.split_at(idx);
            if !m.ends_with(char::is_whitespace) {
                return Err(not_a_path());
            }
            (parse_methods(m.trim())?, p)
        };
        if let Some(c) = path.chars().find(|c| {
            c.is_control() || c.is_whitespace() || matches!(c, '?' | '#' | '%' | '\\' | ';')
        }) {
            return Err(format!(
                "{src:?}: {c:?} cannot appear in a pattern (patterns match the decoded path; \
                 no query, no escapes)"
            ));
        }
        let mut segs = Vec::new();
        if path != "/" {
            let body = path.strip_prefix('/').unwrap_or(path);
            if body.ends_with('/') {
                return Err(format!(
                    "{src:?}: a pattern does not end in '/' (a request's trailing '/' is \
                     ignored when matching)"
                ));
            }
            let parts: Vec<&str> = body.split('/').collect();
            let last = parts.len().saturating_sub(1);
            for (i, part) in parts.iter().enumerate() {
                let seg = match *part {
                    "" => return Err(format!("{src:?}: empty segment ('//')")),
                    "." | ".." => {
                        return Err(format!("{src:?}: '.' and '..' segments never match"))
                    }
                    "**" if i == last => Seg::Rest,
                    "**" => return Err(format!("{src:?}: '**' must be the last segment")),
                    "*" => Seg::One,
                    p if p.contains('*') => {
                        return Err(format!(
                        "{src:?}: a wildcard is a whole segment (\"*\" or \"**\"), not part of one"
                    ))
                    }
                    p => Seg::Literal(p.to_string()),
                };
                segs.push(seg);
            }
        }
        let source = if methods == 0 {
            path.to_string()
        } else {
            format!("{} {path}", methods_to_string(methods))
        };
        let mut prefix = String::from("/");
        for seg in &segs {
            match seg {
                Seg::Literal(l) => {
                    if prefix.len() > 1 {
                        prefix.push('/');
                    }
                    prefix.push_str(l);
                }
                Seg::One => {
                    if prefix.len() > 1 {
                        prefix.push('/');
                    }
                    break;
                }
                Seg::Rest => break,
            }
        }
        Ok(PathRule {
            methods,
            segs,
            prefix,
            source,
        })
    }

    /// Whether the rule matches. `method_bit` 0 (a non-standard method) only matches rules
    /// without methods. One trailing `/` of the path is ignored. No allocation.
    pub(super) fn matches(&self, method_bit: u8, decoded_path: &str) -> bool {
        if self.methods != 0 && self.methods & method_bit == 0 {
            return false;
        }
        if !decoded_path.starts_with(self.prefix.as_str()) {
            return false;
        }
        let p = decoded_path.strip_prefix('/').unwrap_or(decoded_path);
        let p = p.strip_suffix('/').unwrap_or(p);
        let mut segs = (!p.is_empty()).then(|| p.split('/')).into_iter().flatten();
        for seg in &self.segs {
            match seg {
                Seg::Rest => return true,
                Seg::One => match segs.next() {
                    Some(s) if !s.is_empty() => {}
                    _ => return false,
                },
                Seg::Literal(l) => match segs.next() {
                    Some(s) if s == l => {}
                    _ => return false,
                },
            }
        }
        segs.next().is_none()
    }
}

fn parse_methods(list: &str) -> Result<u8, String> {
    let mut bits = 0u8;
    for m in list.split(',') {
        let m = m.trim();
        let bit = method_bit(m);
        if bit == 0 {
            let hint = if method_bit(&m.to_ascii_uppercase()) != 0 {
                format!(" (methods are upper-case: {:?})", m.to_ascii_uppercase())
            } else {
                String::new()
            };
            return Err(format!(
                "unknown method {m:?}{hint}; use GET, HEAD, POST, PUT, PATCH, DELETE or OPTIONS, \
                 comma-separated, then a space and the path"
            ));
        }
        bits |= bit;
    }
    Ok(bits)
}

fn methods_to_string(bits: u8) -> String {
    let mut out = String::new();
    for (i, name) in METHOD_NAMES.iter().enumerate() {
        if bits & (1 << i) != 0 {
            if !out.is_empty() {
                out.push(',');
            }
            out.push_str(name);
        }
    }
    out
}

/// Expands `@default` and compiles, collecting errors under `field[i]`.
pub(super) fn compile_rules(
    field: &str,
    entries: &[String],
    defaults: &[&str],
    errors: &mut Vec<FieldError>,
) -> Vec<PathRule> {
    let mut rules = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        if entry.trim() == "@default" {
            for d in defaults {
                match PathRule::compile(d) {
                    Ok(r) => rules.push(r),
                    Err(problem) => errors.push(FieldError {
                        field: format!("{field}[{i}]"),
                        problem: format!("built-in rule {problem}"),
                    }),
                }
            }
            continue;
        }
        match PathRule::compile(entry) {
            Ok(r) => rules.push(r),
            Err(problem) => errors.push(FieldError {
                field: format!("{field}[{i}]"),
                problem,
            }),
        }
    }
    rules
}

pub(super) fn compile_defaults(
    rules: &[&str],
    field: &str,
    errors: &mut Vec<FieldError>,
) -> Vec<PathRule> {
    let mut out = Vec::new();
    for r in rules {
        match PathRule::compile(r) {
            Ok(rule) => out.push(rule),
            Err(problem) => errors.push(FieldError {
                field: field.to_string(),
                problem: format!("built-in rule {problem}"),
            }),
        }
    }
    out
}
