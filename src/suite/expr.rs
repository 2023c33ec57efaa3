//! `${{ }}` expressions: parsing them and rendering them with known values.
//!
//! An expression is a dotted reference: `params.NAME`, `matrix.KEY` or
//! `nodes.ID.outputs.NAME`. A string that is exactly one expression takes the referenced
//! value's type; otherwise the values are spliced into the text.

use serde_json::Value;

/// What an expression refers to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    Param(String),
    Matrix(String),
    NodeOutput { node: String, output: String },
}

impl std::fmt::Display for Reference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reference::Param(p) => write!(f, "params.{p}"),
            Reference::Matrix(m) => write!(f, "matrix.{m}"),
            Reference::NodeOutput { node, output } => write!(f, "nodes.{node}.outputs.{output}"),
        }
    }
}

/// A piece of a templated string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    Text(String),
    Expr(Reference),
}

/// Whether a string holds an expression at all.
pub fn is_templated(text: &str) -> bool {
    text.contains("${{")
}

/// Splits a string into text and expressions.
pub fn parse(text: &str) -> Result<Vec<Piece>, String> {
    let mut pieces = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("${{") {
        if start > 0 {
            pieces.push(Piece::Text(rest[..start].to_string()));
        }
        let after = &rest[start + 3..];
        let end = after
            .find("}}")
            .ok_or_else(|| "unterminated `${{`: close it with `}}`".to_string())?;
        pieces.push(Piece::Expr(parse_reference(after[..end].trim())?));
        rest = &after[end + 2..];
    }
    if !rest.is_empty() {
        pieces.push(Piece::Text(rest.to_string()));
    }
    Ok(pieces)
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

fn parse_reference(expr: &str) -> Result<Reference, String> {
    if expr.is_empty() {
        return Err("empty expression `${{ }}`".into());
    }
    let parts: Vec<&str> = expr.split('.').collect();
    if let Some(bad) = parts.iter().find(|p| !is_identifier(p)) {
        return Err(format!(
            "`{expr}` is not a reference (`{bad}` is not a name); expressions are dotted names such as `params.model`"
        ));
    }
    match parts.as_slice() {
        ["params", name] => Ok(Reference::Param(name.to_string())),
        ["matrix", key] => Ok(Reference::Matrix(key.to_string())),
        ["nodes", node, "outputs", output] => Ok(Reference::NodeOutput {
            node: node.to_string(),
            output: output.to_string(),
        }),
        _ => Err(format!(
            "`{expr}` is not a known reference; use `params.NAME`, `matrix.KEY` or `nodes.ID.outputs.NAME`"
        )),
    }
}

/// The value of a reference while rendering.
pub enum Resolution {
    Known(Value),
    /// Known only at run time (an output of another node).
    Deferred,
}

/// Renders parsed pieces. `None` means a deferred value is involved.
pub fn render(
    pieces: &[Piece],
    mut resolve: impl FnMut(&Reference) -> Resolution,
) -> Option<Value> {
    if let [Piece::Expr(r)] = pieces {
        return match resolve(r) {
            Resolution::Known(v) => Some(v),
            Resolution::Deferred => None,
        };
    }
    let mut out = String::new();
    for piece in pieces {
        match piece {
            Piece::Text(t) => out.push_str(t),
            Piece::Expr(r) => match resolve(r) {
                Resolution::Known(Value::String(s)) => out.push_str(&s),
                Resolution::Known(v) => out.push_str(&v.to_string()),
                Resolution::Deferred => return None,
            },
        }
    }
    Some(Value::String(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_references_and_text() {
        let p = parse("m-${{ params.model }}/${{matrix.c}}").unwrap();
        assert_eq!(p.len(), 4);
        assert_eq!(p[1], Piece::Expr(Reference::Param("model".into())));
        assert!(parse("${{ nodes.a.outputs.max_rate }}").is_ok());
        assert!(parse("${{ params.x ").unwrap_err().contains("unterminated"));
        assert!(
            parse("${{ env.HOME }}")
                .unwrap_err()
                .contains("not a known")
        );
        assert!(parse("${{ }}").unwrap_err().contains("empty"));
    }

    #[test]
    fn a_lone_expression_keeps_its_type() {
        let p = parse("${{ matrix.c }}").unwrap();
        assert_eq!(render(&p, |_| Resolution::Known(json!(8))), Some(json!(8)));
        let p = parse("c=${{ matrix.c }}").unwrap();
        assert_eq!(
            render(&p, |_| Resolution::Known(json!(8))),
            Some(json!("c=8"))
        );
        assert_eq!(render(&p, |_| Resolution::Deferred), None);
    }
}
