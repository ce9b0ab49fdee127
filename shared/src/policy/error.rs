//! Why a policy document was refused: every problem, each naming its field.

use std::fmt;

use thiserror::Error;

/// One problem with one field, e.g. `geo.allow_countries[2]: "USA" is not a 2-letter country code`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// Dotted path of the field, with `[i]` for list items.
    pub field: String,
    pub problem: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.problem)
    }
}

/// Why a policy document was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PolicyError {
    /// Not TOML, or not the document's shape (unknown field, wrong type, missing `version`).
    /// The message carries line and column.
    #[error("policy is not valid TOML for this schema: {0}")]
    Syntax(String),
    /// Well-formed, but values are wrong. Every problem found is listed.
    #[error("{}", join_lines(.0))]
    Invalid(Vec<FieldError>),
}

fn join_lines(errors: &[FieldError]) -> String {
    let mut s = String::new();
    for (i, e) in errors.iter().enumerate() {
        if i > 0 {
            s.push('\n');
        }
        s.push_str(&e.to_string());
    }
    s
}

impl PolicyError {
    /// The field problems (empty for [`PolicyError::Syntax`]).
    pub fn field_errors(&self) -> &[FieldError] {
        match self {
            PolicyError::Syntax(_) => &[],
            PolicyError::Invalid(v) => v,
        }
    }

    /// Reason code used when the Worker refuses to serve with a bad policy.
    pub const fn reason(&self) -> &'static str {
        "config.policy_invalid"
    }
}
