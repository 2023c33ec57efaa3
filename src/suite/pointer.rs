//! JSON pointers (RFC 6901): building them and converting serde paths to them.

/// Escapes one pointer segment (`~` → `~0`, `/` → `~1`).
pub fn escape(segment: &str) -> String {
    if segment.contains(['~', '/']) {
        segment.replace('~', "~0").replace('/', "~1")
    } else {
        segment.to_string()
    }
}

/// `base` extended by an object key.
pub fn push(base: &str, key: &str) -> String {
    format!("{base}/{}", escape(key))
}

/// `base` extended by an array index.
pub fn push_index(base: &str, index: usize) -> String {
    format!("{base}/{index}")
}

/// The unescaped segments of a pointer.
pub fn segments(pointer: &str) -> impl Iterator<Item = String> + '_ {
    pointer
        .split('/')
        .skip(1)
        .map(|s| s.replace("~1", "/").replace("~0", "~"))
}
