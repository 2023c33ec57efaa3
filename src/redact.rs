//! Secret masking: every value kitt learns is secret (`secrets:`, `api_key_env`) is registered
//! here, and every byte kitt writes out (terminal, store, reports, exports, logs it copies)
//! passes through [`bytes`] or [`text`] first.

use std::borrow::Cow;
use std::sync::RwLock;

use memchr::memmem;

/// What a masked value is replaced with.
pub const MASK: &str = "***";

/// Shortest value kitt accepts as a secret: shorter ones would mask ordinary text.
pub const MIN_SECRET_LEN: usize = 4;

/// The forms of one secret that may appear in output: as it is, and escaped inside JSON.
static SECRETS: RwLock<Vec<Vec<u8>>> = RwLock::new(Vec::new());

/// Why a value cannot be registered as a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the secret in `{name}` is shorter than {MIN_SECRET_LEN} characters, too short to mask reliably"
)]
pub struct TooShort {
    pub name: String,
}

/// Registers the value of the secret named `name` (an environment variable) for masking.
pub fn register(name: &str, value: &str) -> Result<(), TooShort> {
    if value.len() < MIN_SECRET_LEN {
        return Err(TooShort {
            name: name.to_string(),
        });
    }
    let mut forms = vec![value.as_bytes().to_vec()];
    // Inside JSON text (the store's columns, JSON reports) the value may appear escaped.
    let escaped = serde_json::to_string(value).unwrap_or_default();
    let escaped = escaped.trim_matches('"');
    if escaped != value {
        forms.push(escaped.as_bytes().to_vec());
    }
    let mut secrets = SECRETS.write().unwrap_or_else(|e| e.into_inner());
    for form in forms {
        if !secrets.contains(&form) {
            secrets.push(form);
        }
    }
    // Longer forms first, so a secret that contains another is masked whole.
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    Ok(())
}

/// Whether any secret is registered (lets hot paths skip the search).
pub fn active() -> bool {
    !SECRETS.read().unwrap_or_else(|e| e.into_inner()).is_empty()
}

/// `input` with every registered secret replaced by [`MASK`].
pub fn bytes(input: &[u8]) -> Cow<'_, [u8]> {
    let secrets = SECRETS.read().unwrap_or_else(|e| e.into_inner());
    let mut current: Cow<'_, [u8]> = Cow::Borrowed(input);
    for secret in secrets.iter() {
        if memmem::find(&current, secret).is_none() {
            continue;
        }
        let mut out = Vec::with_capacity(current.len());
        let mut rest: &[u8] = &current;
        while let Some(at) = memmem::find(rest, secret) {
            out.extend_from_slice(&rest[..at]);
            out.extend_from_slice(MASK.as_bytes());
            rest = &rest[at + secret.len()..];
        }
        out.extend_from_slice(rest);
        current = Cow::Owned(out);
    }
    current
}

/// `input` with every registered secret replaced by [`MASK`].
pub fn text(input: &str) -> Cow<'_, str> {
    match bytes(input.as_bytes()) {
        Cow::Borrowed(_) => Cow::Borrowed(input),
        // Secrets and the mask are whole UTF-8 strings, so replacing them keeps the text valid.
        Cow::Owned(b) => Cow::Owned(String::from_utf8_lossy(&b).into_owned()),
    }
}

/// A JSON value with every string in it masked.
pub fn json(value: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::String(s) => Value::String(text(s).into_owned()),
        Value::Array(items) => Value::Array(items.iter().map(json).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (text(k).into_owned(), json(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registered_values_are_masked_in_every_form() {
        register("TEST_REDACT_A", "s3cr3t-value").unwrap();
        register("TEST_REDACT_B", "quo\"te").unwrap();
        assert_eq!(text("a s3cr3t-value b s3cr3t-value"), "a *** b ***");
        let encoded = serde_json::to_string(&serde_json::json!({"m": "x quo\"te"})).unwrap();
        assert_eq!(text(&encoded), r#"{"m":"x ***"}"#);
        assert_eq!(text("nothing here"), "nothing here");
        assert!(matches!(text("nothing here"), Cow::Borrowed(_)));
        let v = json(&serde_json::json!({"k": ["s3cr3t-value"]}));
        assert_eq!(v, serde_json::json!({"k": ["***"]}));
    }

    #[test]
    fn short_values_are_refused() {
        assert_eq!(
            register("SHORT", "abc").unwrap_err(),
            TooShort {
                name: "SHORT".into()
            }
        );
    }
}
