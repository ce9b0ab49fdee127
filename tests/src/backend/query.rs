//! Query strings and FastAPI/pydantic-v2-style validation errors (`422 {"detail":[...]}`).

use serde::Serialize;

/// A decoded query string (`application/x-www-form-urlencoded`: `+` is a space).
#[derive(Debug, Default, Clone)]
pub(crate) struct Query {
    pairs: Vec<(String, String)>,
}

fn form_decode(s: &str) -> String {
    let plus = s.replace('+', " ");
    percent_encoding::percent_decode_str(&plus)
        .decode_utf8_lossy()
        .into_owned()
}

impl Query {
    pub(crate) fn parse(raw: Option<&str>) -> Query {
        let pairs = raw
            .unwrap_or("")
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| match p.split_once('=') {
                Some((k, v)) => (form_decode(k), form_decode(v)),
                None => (form_decode(p), String::new()),
            })
            .collect();
        Query { pairs }
    }

    /// The last value of `name`, like Starlette's `QueryParams.get` for a scalar parameter.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// One entry of FastAPI's `detail` list, in pydantic's field order.
#[derive(Serialize, Debug, Clone)]
pub(crate) struct ValidationError {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub loc: Vec<serde_json::Value>,
    pub msg: String,
    pub input: serde_json::Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ctx: Option<serde_json::Value>,
}

#[derive(Serialize, Debug)]
pub(crate) struct HttpValidationError {
    pub detail: Vec<ValidationError>,
}

/// Collects every validation error of a request, as FastAPI reports them all at once.
#[derive(Debug, Default)]
pub(crate) struct Validator {
    pub errors: Vec<ValidationError>,
}

fn loc(place: &str, name: &str) -> Vec<serde_json::Value> {
    vec![place.into(), name.into()]
}

/// pydantic's lax `str -> int`: surrounding whitespace, a sign, digits, optional `_` separators.
fn parse_int(s: &str) -> Option<i128> {
    let t = s.trim();
    let (neg, digits) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    if digits.is_empty()
        || digits.starts_with('_')
        || digits.ends_with('_')
        || digits.contains("__")
    {
        return None;
    }
    let clean: String = digits.chars().filter(|c| *c != '_').collect();
    if !clean.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // Saturate absurdly long numbers; the bounds check then reports them.
    let v = clean.parse::<i128>().unwrap_or(i128::MAX);
    Some(if neg { -v } else { v })
}

impl Validator {
    pub(crate) fn int_in(
        &mut self,
        place: &str,
        name: &str,
        raw: &str,
        min: Option<i64>,
        max: Option<i64>,
    ) -> Option<i64> {
        let Some(v) = parse_int(raw) else {
            self.errors.push(ValidationError {
                kind: "int_parsing",
                loc: loc(place, name),
                msg: "Input should be a valid integer, unable to parse string as an integer".into(),
                input: raw.into(),
                ctx: None,
            });
            return None;
        };
        if let Some(min) = min {
            if v < min as i128 {
                self.errors.push(ValidationError {
                    kind: "greater_than_equal",
                    loc: loc(place, name),
                    msg: format!("Input should be greater than or equal to {min}"),
                    input: raw.into(),
                    ctx: Some(serde_json::json!({ "ge": min })),
                });
                return None;
            }
        }
        if let Some(max) = max {
            if v > max as i128 {
                self.errors.push(ValidationError {
                    kind: "less_than_equal",
                    loc: loc(place, name),
                    msg: format!("Input should be less than or equal to {max}"),
                    input: raw.into(),
                    ctx: Some(serde_json::json!({ "le": max })),
                });
                return None;
            }
        }
        Some(v.clamp(i64::MIN as i128, i64::MAX as i128) as i64)
    }

    /// An optional integer query parameter with bounds; `default` when absent.
    pub(crate) fn query_int(
        &mut self,
        q: &Query,
        name: &str,
        default: Option<i64>,
        min: Option<i64>,
        max: Option<i64>,
    ) -> Option<i64> {
        match q.get(name) {
            None => default,
            Some(raw) => self.int_in("query", name, raw, min, max),
        }
    }

    pub(crate) fn query_bool(&mut self, q: &Query, name: &str) -> Option<bool> {
        let raw = q.get(name)?;
        match raw.trim().to_ascii_lowercase().as_str() {
            "1" | "on" | "t" | "true" | "y" | "yes" => Some(true),
            "0" | "off" | "f" | "false" | "n" | "no" => Some(false),
            _ => {
                self.errors.push(ValidationError {
                    kind: "bool_parsing",
                    loc: loc("query", name),
                    msg: "Input should be a valid boolean, unable to interpret input".into(),
                    input: raw.into(),
                    ctx: None,
                });
                None
            }
        }
    }

    pub(crate) fn query_str(
        &mut self,
        q: &Query,
        name: &str,
        min_len: Option<usize>,
        max_len: Option<usize>,
    ) -> Option<String> {
        let raw = q.get(name)?;
        let n = raw.chars().count();
        if let Some(min) = min_len {
            if n < min {
                self.errors.push(ValidationError {
                    kind: "string_too_short",
                    loc: loc("query", name),
                    msg: format!(
                        "String should have at least {min} character{}",
                        if min == 1 { "" } else { "s" }
                    ),
                    input: raw.into(),
                    ctx: Some(serde_json::json!({ "min_length": min })),
                });
                return None;
            }
        }
        if let Some(max) = max_len {
            if n > max {
                self.errors.push(ValidationError {
                    kind: "string_too_long",
                    loc: loc("query", name),
                    msg: format!(
                        "String should have at most {max} character{}",
                        if max == 1 { "" } else { "s" }
                    ),
                    input: raw.into(),
                    ctx: Some(serde_json::json!({ "max_length": max })),
                });
                return None;
            }
        }
        Some(raw.to_owned())
    }

    /// A string that must be one of `allowed` (reported as a pattern mismatch, as FastAPI's
    /// `pattern=` does).
    pub(crate) fn query_pattern(
        &mut self,
        q: &Query,
        name: &str,
        default: &str,
        allowed: &[&str],
        pattern: &str,
    ) -> String {
        match q.get(name) {
            None => default.to_owned(),
            Some(raw) if allowed.contains(&raw) => raw.to_owned(),
            Some(raw) => {
                self.errors.push(ValidationError {
                    kind: "string_pattern_mismatch",
                    loc: loc("query", name),
                    msg: format!("String should match pattern '{pattern}'"),
                    input: raw.into(),
                    ctx: Some(serde_json::json!({ "pattern": pattern })),
                });
                default.to_owned()
            }
        }
    }

    pub(crate) fn query_datetime(&mut self, q: &Query, name: &str) -> Option<f64> {
        let raw = q.get(name)?;
        match crate::backend::data::parse_datetime(raw) {
            Some(t) => Some(t),
            None => {
                self.errors.push(ValidationError {
                    kind: "datetime_from_date_parsing",
                    loc: loc("query", name),
                    msg: "Input should be a valid datetime or date, invalid character in year"
                        .into(),
                    input: raw.into(),
                    ctx: Some(serde_json::json!({ "error": "invalid character in year" })),
                });
                None
            }
        }
    }

    pub(crate) fn missing(&mut self, place: &str, name: &str) {
        self.errors.push(ValidationError {
            kind: "missing",
            loc: loc(place, name),
            msg: "Field required".into(),
            input: serde_json::Value::Null,
            ctx: None,
        });
    }

    pub(crate) fn is_ok(&self) -> bool {
        self.errors.is_empty()
    }

    pub(crate) fn into_body(self) -> HttpValidationError {
        HttpValidationError {
            detail: self.errors,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_parsing_takes_the_last_value_and_decodes() {
        let q = Query::parse(Some("limit=5&search_query=front+door%21&limit=7&flag"));
        assert_eq!(q.get("limit"), Some("7"));
        assert_eq!(q.get("search_query"), Some("front door!"));
        assert_eq!(q.get("flag"), Some(""));
        assert_eq!(q.get("nope"), None);
    }

    #[test]
    fn ints_follow_pydantic() {
        assert_eq!(parse_int(" 42 "), Some(42));
        assert_eq!(parse_int("+3"), Some(3));
        assert_eq!(parse_int("1_000"), Some(1000));
        assert_eq!(parse_int("4.5"), None);
        assert_eq!(parse_int(""), None);
        assert_eq!(
            parse_int("99999999999999999999999999999999999999999999"),
            Some(i128::MAX)
        );
        let mut v = Validator::default();
        assert_eq!(v.int_in("query", "limit", "0", Some(1), Some(500)), None);
        assert_eq!(v.int_in("query", "limit", "x", Some(1), Some(500)), None);
        assert_eq!(
            v.int_in(
                "query",
                "limit",
                "99999999999999999999999",
                Some(1),
                Some(500)
            ),
            None
        );
        let kinds: Vec<_> = v.errors.iter().map(|e| e.kind).collect();
        assert_eq!(
            kinds,
            ["greater_than_equal", "int_parsing", "less_than_equal"]
        );
    }
}
