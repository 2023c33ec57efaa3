//! Loading YAML with saphyr into a JSON value plus a JSON-pointer → position table.
//!
//! The loader builds values from parser events itself, so it can refuse what a suite must
//! not contain (duplicate keys, `<<` merge keys, unknown tags, non-string keys, several
//! documents) with the exact position, and bound alias expansion and nesting depth.

use std::collections::HashMap;

use saphyr_parser::{Event, Parser, ScalarStyle, Span as YamlSpan, Tag};
use serde_json::{Map, Number, Value};

use super::pointer;
use super::source::Span;

/// Bounds that keep a hostile file from exhausting time or memory. Loading takes memory in
/// proportion to the file's bytes and values, so bounding both bounds it (measured figures
/// are in docs/limits.md).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest accepted file, in bytes.
    pub max_bytes: usize,
    /// Most bytes a suite and all its includes may hold together.
    pub max_suite_bytes: usize,
    /// Most values (scalars, sequences, mappings) one file may hold, aliases expanded.
    pub max_values: usize,
    /// Deepest accepted nesting of mappings and sequences.
    pub max_depth: usize,
    /// Most nodes that alias expansion may add in total.
    pub max_alias_nodes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bytes: 8 * 1024 * 1024,
            max_suite_bytes: 16 * 1024 * 1024,
            max_values: 250_000,
            max_depth: 64,
            max_alias_nodes: 100_000,
        }
    }
}

/// Where one value sits: the span of its key (inside a mapping) and of the value itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeSpans {
    pub key: Option<Span>,
    pub value: Span,
}

/// JSON pointer → position of every value in a loaded document.
#[derive(Debug, Default, Clone)]
pub struct SpanTable {
    spans: HashMap<String, NodeSpans>,
}

impl SpanTable {
    /// The spans recorded for exactly this pointer.
    pub fn get(&self, pointer: &str) -> Option<&NodeSpans> {
        self.spans.get(pointer)
    }

    /// The best span for a pointer: its own, or that of its nearest recorded ancestor.
    /// With `prefer_key`, the key's span is returned when the value sits in a mapping.
    pub fn locate(&self, pointer: &str, prefer_key: bool) -> Span {
        let mut current = pointer;
        loop {
            if let Some(found) = self.spans.get(current) {
                return match (prefer_key, found.key) {
                    (true, Some(key)) => key,
                    _ => found.value,
                };
            }
            match current.rfind('/') {
                Some(cut) => current = &current[..cut],
                None => return Span::point(1, 1, 0),
            }
        }
    }
}

/// A parsed YAML document.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub value: Value,
    pub spans: SpanTable,
}

/// Why a file could not be loaded, and where.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadError {
    pub span: Span,
    pub message: String,
    pub hint: Option<String>,
}

impl LoadError {
    fn new(span: Span, message: impl Into<String>) -> Self {
        LoadError {
            span,
            message: message.into(),
            hint: None,
        }
    }

    fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

/// Parses `text` as one YAML document under `limits`.
pub fn load_yaml(text: &str, limits: &Limits) -> Result<Loaded, LoadError> {
    if text.len() > limits.max_bytes {
        return Err(LoadError::new(
            Span::point(1, 1, 0),
            format!(
                "file is {} bytes, more than the limit of {} bytes",
                text.len(),
                limits.max_bytes
            ),
        ));
    }
    let mut builder = Builder::new(*limits);
    let mut parser = Parser::new_from_str(text);
    while let Some(next) = parser.next_event() {
        let (event, span) = next.map_err(|e| {
            let m = e.marker();
            LoadError::new(
                Span::point(m.line(), m.col() + 1, m.index()),
                format!("YAML syntax error: {}", e.info()),
            )
        })?;
        if builder.event(event, to_span(&span))? {
            break;
        }
    }
    builder.finish()
}

fn to_span(span: &YamlSpan) -> Span {
    Span {
        line: span.start.line(),
        col: span.start.col() + 1,
        end_line: span.end.line(),
        end_col: span.end.col() + 1,
        start_char: span.start.index(),
        end_char: span.end.index(),
    }
}

/// A collection being built, with what is needed to place it in its parent.
enum Frame {
    Seq {
        items: Vec<Value>,
        pointer: String,
        anchor: usize,
        start: Span,
        log_start: usize,
        nodes_start: usize,
    },
    Map {
        entries: Map<String, Value>,
        key_spans: HashMap<String, Span>,
        pending_key: Option<(String, Span)>,
        pointer: String,
        anchor: usize,
        start: Span,
        log_start: usize,
        nodes_start: usize,
    },
}

/// A value stored under an anchor, with its spans relative to its own root.
struct Anchored {
    value: Value,
    spans: Vec<(String, NodeSpans)>,
    nodes: usize,
}

struct Builder {
    limits: Limits,
    stack: Vec<Frame>,
    root: Option<Value>,
    /// Spans in the order values completed, as (pointer, spans).
    log: Vec<(String, NodeSpans)>,
    anchors: HashMap<usize, Anchored>,
    nodes: usize,
    alias_nodes: usize,
    documents: usize,
    /// The span of the key a value is about to be stored under (set by the parent map).
    document_start: Option<Span>,
}

impl Builder {
    fn new(limits: Limits) -> Self {
        Builder {
            limits,
            stack: Vec::new(),
            root: None,
            log: Vec::new(),
            anchors: HashMap::new(),
            nodes: 0,
            alias_nodes: 0,
            documents: 0,
            document_start: None,
        }
    }

    /// Handles one event; returns true at the end of the stream.
    fn event(&mut self, event: Event<'_>, span: Span) -> Result<bool, LoadError> {
        match event {
            Event::StreamStart | Event::Nothing | Event::DocumentEnd => {}
            Event::StreamEnd => return Ok(true),
            Event::DocumentStart(_) => {
                self.documents += 1;
                if self.documents > 1 {
                    return Err(LoadError::new(span, "a suite file holds one YAML document; this is a second one")
                        .hint("remove the `---` separator and everything after it, or split the documents into files"));
                }
                self.document_start = Some(span);
            }
            Event::Scalar(text, style, anchor, tag) => {
                if self.expecting_key() {
                    self.key(&text, style, tag.as_deref(), span)?;
                } else {
                    let value = resolve_scalar(&text, style, tag.as_deref(), span)?;
                    self.place(value, span, anchor, self.log.len(), self.nodes)?;
                }
            }
            Event::SequenceStart(anchor, tag) => {
                self.check_collection_start(tag.as_deref(), "seq", span)?;
                let pointer = self.child_pointer();
                self.stack.push(Frame::Seq {
                    items: Vec::new(),
                    pointer,
                    anchor,
                    start: span,
                    log_start: self.log.len(),
                    nodes_start: self.nodes,
                });
            }
            Event::MappingStart(anchor, tag) => {
                self.check_collection_start(tag.as_deref(), "map", span)?;
                let pointer = self.child_pointer();
                self.stack.push(Frame::Map {
                    entries: Map::new(),
                    key_spans: HashMap::new(),
                    pending_key: None,
                    pointer,
                    anchor,
                    start: span,
                    log_start: self.log.len(),
                    nodes_start: self.nodes,
                });
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let frame = self.stack.pop().ok_or_else(|| {
                    LoadError::new(span, "unbalanced YAML structure (internal parser state)")
                })?;
                let (value, start, anchor, log_start, nodes_start) = match frame {
                    Frame::Seq {
                        items,
                        start,
                        anchor,
                        log_start,
                        nodes_start,
                        ..
                    } => (Value::Array(items), start, anchor, log_start, nodes_start),
                    Frame::Map {
                        entries,
                        start,
                        anchor,
                        log_start,
                        nodes_start,
                        ..
                    } => (
                        Value::Object(entries),
                        start,
                        anchor,
                        log_start,
                        nodes_start,
                    ),
                };
                let whole = Span {
                    end_line: span.end_line,
                    end_col: span.end_col,
                    end_char: span.end_char,
                    ..start
                };
                self.place(value, whole, anchor, log_start, nodes_start)?;
            }
            Event::Alias(id) => {
                if self.expecting_key() {
                    return Err(
                        LoadError::new(span, "an alias cannot be used as a mapping key")
                            .hint("write the key out as a plain string"),
                    );
                }
                self.alias(id, span)?;
            }
        }
        Ok(false)
    }

    fn expecting_key(&self) -> bool {
        matches!(
            self.stack.last(),
            Some(Frame::Map {
                pending_key: None,
                ..
            })
        )
    }

    fn check_collection_start(
        &self,
        tag: Option<&Tag>,
        core: &str,
        span: Span,
    ) -> Result<(), LoadError> {
        if self.expecting_key() {
            return Err(LoadError::new(
                span,
                "mapping keys must be strings, not mappings or sequences",
            ));
        }
        if self.stack.len() >= self.limits.max_depth {
            return Err(LoadError::new(
                span,
                format!(
                    "nesting deeper than {} levels is not accepted",
                    self.limits.max_depth
                ),
            ));
        }
        match tag {
            None => Ok(()),
            Some(t) if t.is_yaml_core_schema() && t.suffix == core => Ok(()),
            Some(t) => Err(unsupported_tag(t, span)),
        }
    }

    /// The pointer of the value about to be placed in the current collection.
    fn child_pointer(&self) -> String {
        match self.stack.last() {
            None => String::new(),
            Some(Frame::Seq { items, pointer, .. }) => pointer::push_index(pointer, items.len()),
            Some(Frame::Map {
                pending_key: Some((key, _)),
                pointer,
                ..
            }) => pointer::push(pointer, key),
            Some(Frame::Map { pointer, .. }) => pointer.clone(),
        }
    }

    fn key(
        &mut self,
        text: &str,
        style: ScalarStyle,
        tag: Option<&Tag>,
        span: Span,
    ) -> Result<(), LoadError> {
        let forced_string = match tag {
            None => false,
            Some(t) if t.is_yaml_core_schema() && t.suffix == "str" => true,
            Some(t) => return Err(unsupported_tag(t, span)),
        };
        if style == ScalarStyle::Plain && !forced_string {
            if text == "<<" {
                return Err(LoadError::new(span, "`<<` merge keys are not supported")
                    .hint("write the keys out, or use `defaults:` and `extends:` to share settings between nodes"));
            }
            let resolved = resolve_plain(text);
            if !resolved.is_string() {
                return Err(LoadError::new(
                    span,
                    format!(
                        "mapping key `{text}` is a {}, not a string",
                        kind_name(&resolved)
                    ),
                )
                .hint(format!("quote it: \"{text}\"")));
            }
        }
        if let Some(Frame::Map {
            key_spans,
            pending_key,
            ..
        }) = self.stack.last_mut()
        {
            if let Some(first) = key_spans.get(text) {
                return Err(
                    LoadError::new(span, format!("duplicate key `{text}`")).hint(format!(
                        "the first `{text}` is at line {}, column {}; keep one of them",
                        first.line, first.col
                    )),
                );
            }
            key_spans.insert(text.to_string(), span);
            *pending_key = Some((text.to_string(), span));
        }
        Ok(())
    }

    fn alias(&mut self, id: usize, span: Span) -> Result<(), LoadError> {
        let Some(anchored) = self.anchors.get(&id) else {
            return Err(LoadError::new(span, "alias to an unknown anchor"));
        };
        self.alias_nodes += anchored.nodes;
        if self.alias_nodes > self.limits.max_alias_nodes {
            return Err(LoadError::new(
                span,
                format!(
                    "alias expansion exceeds the limit of {} nodes (a YAML bomb?)",
                    self.limits.max_alias_nodes
                ),
            )
            .hint("write the repeated values out, or use `defaults:` and `extends:`"));
        }
        let value = anchored.value.clone();
        let base = self.child_pointer();
        let log_start = self.log.len();
        for (relative, spans) in &anchored.spans {
            if !relative.is_empty() {
                self.log.push((format!("{base}{relative}"), *spans));
            }
        }
        let nodes = anchored.nodes;
        let nodes_start = self.nodes;
        self.nodes += nodes.saturating_sub(1);
        self.place(value, span, 0, log_start, nodes_start)
    }

    /// Stores a finished value in its parent and records its span (and its anchor).
    fn place(
        &mut self,
        value: Value,
        span: Span,
        anchor: usize,
        log_start: usize,
        nodes_start: usize,
    ) -> Result<(), LoadError> {
        self.nodes += 1;
        if self.nodes > self.limits.max_values {
            return Err(LoadError::new(
                span,
                format!(
                    "the file holds more than {} values, the limit for a suite file",
                    self.limits.max_values
                ),
            )
            .hint("keep large data (dataset items, prompts) in dataset files the suite names"));
        }
        let pointer = self.child_pointer();
        let key_span = match self.stack.last() {
            Some(Frame::Map {
                pending_key: Some((_, k)),
                ..
            }) => Some(*k),
            _ => None,
        };
        self.log.push((
            pointer.clone(),
            NodeSpans {
                key: key_span,
                value: span,
            },
        ));
        if anchor != 0 {
            let spans = self.log[log_start..]
                .iter()
                .map(|(p, s)| (p[pointer.len()..].to_string(), *s))
                .collect();
            self.anchors.insert(
                anchor,
                Anchored {
                    value: value.clone(),
                    spans,
                    nodes: self.nodes - nodes_start,
                },
            );
        }
        match self.stack.last_mut() {
            None => self.root = Some(value),
            Some(Frame::Seq { items, .. }) => items.push(value),
            Some(Frame::Map {
                entries,
                pending_key,
                ..
            }) => {
                if let Some((key, _)) = pending_key.take() {
                    entries.insert(key, value);
                }
            }
        }
        Ok(())
    }

    fn finish(self) -> Result<Loaded, LoadError> {
        let value = self.root.unwrap_or(Value::Null);
        let mut spans = HashMap::with_capacity(self.log.len());
        for (pointer, node) in self.log {
            spans.insert(pointer, node);
        }
        if !spans.contains_key("") {
            let at = self
                .document_start
                .filter(|s| s.line > 0)
                .unwrap_or(Span::point(1, 1, 0));
            spans.insert(
                String::new(),
                NodeSpans {
                    key: None,
                    value: at,
                },
            );
        }
        Ok(Loaded {
            value,
            spans: SpanTable { spans },
        })
    }
}

fn unsupported_tag(tag: &Tag, span: Span) -> LoadError {
    let shown = if tag.is_yaml_core_schema() {
        format!("!!{}", tag.suffix)
    } else {
        format!("{}{}", tag.handle, tag.suffix)
    };
    LoadError::new(span, format!("unsupported YAML tag `{shown}`"))
        .hint("kitt suites use plain YAML values; remove the tag")
}

fn kind_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "sequence",
        Value::Object(_) => "mapping",
    }
}

/// Turns a scalar into a JSON value following the YAML 1.2 core schema.
fn resolve_scalar(
    text: &str,
    style: ScalarStyle,
    tag: Option<&Tag>,
    span: Span,
) -> Result<Value, LoadError> {
    let value = match tag {
        None if style == ScalarStyle::Plain => resolve_plain(text),
        None => Value::String(text.to_string()),
        Some(t) if t.is_yaml_core_schema() => {
            let resolved = resolve_plain(text);
            let ok = match t.suffix.as_str() {
                "str" => return Ok(Value::String(text.to_string())),
                "int" => resolved.as_i64().is_some() || resolved.as_u64().is_some(),
                "float" => resolved.is_number(),
                "bool" => resolved.is_boolean(),
                "null" => resolved.is_null(),
                _ => return Err(unsupported_tag(t, span)),
            };
            if !ok {
                return Err(LoadError::new(
                    span,
                    format!("`{text}` is not a valid !!{}", t.suffix),
                ));
            }
            resolved
        }
        Some(t) => return Err(unsupported_tag(t, span)),
    };
    if value.is_null() && text.starts_with('.') {
        return Err(LoadError::new(
            span,
            format!("`{text}` is not a finite number, which suites cannot hold"),
        )
        .hint("quote it if you meant the string"));
    }
    Ok(value)
}

/// Resolves a plain (unquoted) scalar: null, boolean, integer, float or string.
fn resolve_plain(text: &str) -> Value {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        _ => {}
    }
    if let Some(n) = parse_int(text) {
        return Value::Number(n);
    }
    let body = text.trim_start_matches(['-', '+']);
    if matches!(body, ".inf" | ".Inf" | ".INF" | ".nan" | ".NaN" | ".NAN") {
        // Non-finite numbers have no JSON form; the caller reports them.
        return Value::Null;
    }
    if is_float(text)
        && let Ok(f) = text.parse::<f64>()
        && let Some(n) = Number::from_f64(f)
    {
        return Value::Number(n);
    }
    Value::String(text.to_string())
}

fn parse_int(text: &str) -> Option<Number> {
    if let Some(oct) = text.strip_prefix("0o") {
        return u64::from_str_radix(oct, 8).ok().map(Number::from);
    }
    if let Some(hex) = text.strip_prefix("0x") {
        return u64::from_str_radix(hex, 16).ok().map(Number::from);
    }
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if let Ok(i) = text.parse::<i64>() {
        return Some(Number::from(i));
    }
    if let Ok(u) = text.trim_start_matches('+').parse::<u64>() {
        return Some(Number::from(u));
    }
    text.parse::<f64>().ok().and_then(Number::from_f64)
}

/// `[-+]? ( . digits | digits ( . digits? )? ) ( [eE] [-+]? digits )?`
fn is_float(text: &str) -> bool {
    let b = text.as_bytes();
    let mut i = 0;
    if i < b.len() && (b[i] == b'-' || b[i] == b'+') {
        i += 1;
    }
    let int_start = i;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    let int_digits = i - int_start;
    let mut frac_digits = 0;
    if i < b.len() && b[i] == b'.' {
        i += 1;
        let s = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        frac_digits = i - s;
    }
    if int_digits == 0 && frac_digits == 0 {
        return false;
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        if i < b.len() && (b[i] == b'-' || b[i] == b'+') {
            i += 1;
        }
        let s = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == s {
            return false;
        }
    }
    i == b.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn load(text: &str) -> Result<Loaded, LoadError> {
        load_yaml(text, &Limits::default())
    }

    #[test]
    fn scalars_follow_the_core_schema() {
        let l = load("a: 1\nb: 1.5\nc: true\nd: ~\ne: 1.4.0\nf: '12'\ng: 0x1f\nh: -3e2\n").unwrap();
        assert_eq!(
            l.value,
            json!({"a": 1, "b": 1.5, "c": true, "d": null, "e": "1.4.0", "f": "12", "g": 31, "h": -300.0})
        );
    }

    #[test]
    fn spans_point_at_keys_and_values() {
        let l = load("top:\n  inner: [1, 2]\n  name: x\n").unwrap();
        let s = l.spans.get("/top/name").unwrap();
        assert_eq!((s.key.unwrap().line, s.key.unwrap().col), (3, 3));
        assert_eq!((s.value.line, s.value.col), (3, 9));
        let item = l.spans.get("/top/inner/1").unwrap();
        assert_eq!((item.value.line, item.value.col), (2, 14));
        assert_eq!(l.spans.locate("/top/inner/7", false).line, 2);
    }

    #[test]
    fn duplicate_keys_are_errors() {
        let e = load("a: 1\nb: 2\na: 3\n").unwrap_err();
        assert_eq!((e.span.line, e.span.col), (3, 1));
        assert!(e.message.contains("duplicate key `a`"));
    }

    #[test]
    fn merge_keys_tags_and_non_string_keys_are_errors() {
        assert!(
            load("a: &x {b: 1}\nc:\n  <<: *x\n")
                .unwrap_err()
                .message
                .contains("merge")
        );
        assert!(
            load("a: !custom 3\n")
                .unwrap_err()
                .message
                .contains("tag `!custom`")
        );
        assert!(load("1: x\n").unwrap_err().message.contains("not a string"));
        assert!(
            load("? [a]\n: x\n")
                .unwrap_err()
                .message
                .contains("must be strings")
        );
        assert!(
            load("a: 1\n---\nb: 2\n")
                .unwrap_err()
                .message
                .contains("second")
        );
    }

    #[test]
    fn aliases_expand_with_their_spans() {
        let l = load("base: &b {x: 1}\ncopy: *b\n").unwrap();
        assert_eq!(l.value["copy"], json!({"x": 1}));
        assert_eq!(l.spans.get("/copy").unwrap().value.line, 2);
        assert_eq!(l.spans.get("/copy/x").unwrap().value.line, 1);
    }

    #[test]
    fn alias_bombs_stop_at_the_limit() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x]\n");
        for i in 1..10 {
            let p = i - 1;
            text.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        let e = load(&text).unwrap_err();
        assert!(e.message.contains("alias expansion exceeds"), "{e:?}");
    }

    #[test]
    fn deep_nesting_is_refused() {
        // The parser's own recursion limit or ours, whichever is reached first.
        let text = "[".repeat(500) + &"]".repeat(500);
        let message = load(&text).unwrap_err().message;
        assert!(
            message.contains("recursion limit") || message.contains("nesting"),
            "{message}"
        );
        let text = "a: ".to_string() + &"[".repeat(70) + &"]".repeat(70);
        assert!(
            load(&text)
                .unwrap_err()
                .message
                .contains("nesting deeper than 64")
        );
    }
}
