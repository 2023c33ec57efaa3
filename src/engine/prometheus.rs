//! The Prometheus text exposition format (version 0.0.4), read from servers' `/metrics`
//! pages: samples with their labels and each family's declared type. Written here rather than
//! taken from a crate because a server's page is untrusted input and must be read under
//! stated limits (`Limits`), with errors that name the line; the maintained crates parse
//! unbounded input with regular expressions.
//!
//! Only what a scrape needs: `# TYPE` lines, sample lines (`name{label="value",...} value
//! [timestamp]`), escapes in label values, `NaN`/`+Inf`/`-Inf`. `# HELP` and other comments
//! are skipped; a sample's timestamp is read and dropped (kitt times its own scrapes).

use std::collections::HashMap;

/// How much of a page is read: a server that lies or grows without bound is cut off here.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Bytes of the whole page.
    pub bytes: usize,
    /// Sample lines.
    pub samples: usize,
    /// Labels on one sample.
    pub labels: usize,
}

impl Default for Limits {
    fn default() -> Self {
        // A vLLM page with 8 engines and every histogram is about 3,000 samples and 600 KB.
        Limits {
            bytes: 8 << 20,
            samples: 100_000,
            labels: 64,
        }
    }
}

/// A family's declared type (`# TYPE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
    Summary,
    Untyped,
}

/// One sample line.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The series name as written (`vllm:time_to_first_token_seconds_bucket`).
    pub name: String,
    pub labels: Vec<(String, String)>,
    pub value: f64,
}

impl Sample {
    /// The value of label `key`, if the sample has it.
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// A parsed page.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Page {
    pub samples: Vec<Sample>,
    /// Family name → declared type.
    pub kinds: HashMap<String, Kind>,
}

impl Page {
    /// The declared type of the family a series belongs to (`_bucket`, `_sum`, `_count`,
    /// `_total` and `_created` suffixes resolved), `Untyped` when undeclared.
    pub fn kind_of(&self, series: &str) -> Kind {
        if let Some(k) = self.kinds.get(series) {
            return *k;
        }
        for suffix in ["_bucket", "_sum", "_count", "_total", "_created"] {
            if let Some(family) = series.strip_suffix(suffix)
                && let Some(k) = self.kinds.get(family)
            {
                return *k;
            }
        }
        Kind::Untyped
    }

    /// Every sample of series `name`.
    pub fn series<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Sample> + 'a {
        self.samples.iter().filter(move |s| s.name == name)
    }
}

/// Why a page could not be read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ParseError {
    #[error("the page is over {limit} bytes")]
    TooLarge { limit: usize },
    #[error("the page has over {limit} samples")]
    TooManySamples { limit: usize },
    #[error("line {line}: over {limit} labels on one sample")]
    TooManyLabels { line: usize, limit: usize },
    #[error("line {line}: {reason}")]
    Syntax { line: usize, reason: String },
}

/// Parses a page under `limits`.
pub fn parse(text: &str, limits: Limits) -> Result<Page, ParseError> {
    if text.len() > limits.bytes {
        return Err(ParseError::TooLarge {
            limit: limits.bytes,
        });
    }
    let mut page = Page::default();
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            continue;
        }
        if let Some(comment) = trimmed.strip_prefix('#') {
            if let Some((family, kind)) = type_line(comment) {
                page.kinds.insert(family.to_string(), kind);
            }
            continue;
        }
        if page.samples.len() == limits.samples {
            return Err(ParseError::TooManySamples {
                limit: limits.samples,
            });
        }
        page.samples.push(sample(trimmed, line, limits.labels)?);
    }
    Ok(page)
}

/// `TYPE name kind` of a comment, if it is one.
fn type_line(comment: &str) -> Option<(&str, Kind)> {
    let mut words = comment.split_whitespace();
    if words.next()? != "TYPE" {
        return None;
    }
    let family = words.next()?;
    let kind = match words.next()? {
        "counter" => Kind::Counter,
        "gauge" => Kind::Gauge,
        "histogram" => Kind::Histogram,
        "summary" => Kind::Summary,
        _ => Kind::Untyped,
    };
    Some((family, kind))
}

fn syntax(line: usize, reason: impl Into<String>) -> ParseError {
    ParseError::Syntax {
        line,
        reason: reason.into(),
    }
}

fn is_name_char(c: char, first: bool) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == ':' || (!first && c.is_ascii_digit())
}

/// One sample line.
fn sample(text: &str, line: usize, max_labels: usize) -> Result<Sample, ParseError> {
    let name_end = text
        .char_indices()
        .find(|&(i, c)| !is_name_char(c, i == 0))
        .map_or(text.len(), |(i, _)| i);
    if name_end == 0 {
        return Err(syntax(line, "a sample line must start with a metric name"));
    }
    let name = text[..name_end].to_string();
    let mut rest = &text[name_end..];
    let mut labels = Vec::new();
    if let Some(after) = rest.strip_prefix('{') {
        rest = label_set(after, line, max_labels, &mut labels)?;
    }
    let mut fields = rest.split_whitespace();
    let value = fields
        .next()
        .ok_or_else(|| syntax(line, format!("`{name}` has no value")))?;
    let value = number(value).ok_or_else(|| syntax(line, format!("`{value}` is not a number")))?;
    if let Some(timestamp) = fields.next()
        && timestamp.parse::<i64>().is_err()
    {
        return Err(syntax(line, format!("`{timestamp}` is not a timestamp")));
    }
    if fields.next().is_some() {
        return Err(syntax(
            line,
            "unexpected text after the value and timestamp",
        ));
    }
    Ok(Sample {
        name,
        labels,
        value,
    })
}

/// Reads `label="value",...}` and returns what follows the closing brace.
fn label_set<'a>(
    mut rest: &'a str,
    line: usize,
    max_labels: usize,
    labels: &mut Vec<(String, String)>,
) -> Result<&'a str, ParseError> {
    loop {
        rest = rest.trim_start();
        if let Some(after) = rest.strip_prefix('}') {
            return Ok(after);
        }
        let key_end = rest
            .char_indices()
            .find(|&(i, c)| !(is_name_char(c, i == 0) && c != ':'))
            .map_or(rest.len(), |(i, _)| i);
        if key_end == 0 {
            return Err(syntax(line, "expected a label name or `}`"));
        }
        let key = rest[..key_end].to_string();
        rest = rest[key_end..].trim_start();
        rest = rest
            .strip_prefix('=')
            .ok_or_else(|| syntax(line, format!("label `{key}` has no `=`")))?
            .trim_start();
        rest = rest
            .strip_prefix('"')
            .ok_or_else(|| syntax(line, format!("label `{key}`'s value is not quoted")))?;
        let (value, after) = quoted(rest)
            .ok_or_else(|| syntax(line, format!("label `{key}`'s value has no closing quote")))?;
        if labels.len() == max_labels {
            return Err(ParseError::TooManyLabels {
                line,
                limit: max_labels,
            });
        }
        labels.push((key, value));
        rest = after.trim_start();
        if let Some(after) = rest.strip_prefix(',') {
            rest = after;
        } else if !rest.starts_with('}') {
            return Err(syntax(line, "expected `,` or `}` after a label"));
        }
    }
}

/// A label value up to its closing quote, unescaped (`\\`, `\"`, `\n`), and what follows.
fn quoted(text: &str) -> Option<(String, &str)> {
    let mut value = String::new();
    let mut chars = text.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((value, &text[i + 1..])),
            '\\' => match chars.next()?.1 {
                'n' => value.push('\n'),
                other => value.push(other),
            },
            c => value.push(c),
        }
    }
    None
}

/// A sample value: a float, `NaN`, `+Inf` or `-Inf`.
fn number(text: &str) -> Option<f64> {
    match text {
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        _ => text.parse().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: &str = r#"# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine="0",model_name="m"} 3.0
# TYPE vllm:generation_tokens_total counter
vllm:generation_tokens_total{engine="0",model_name="m"} 1234.0
# TYPE vllm:time_to_first_token_seconds histogram
vllm:time_to_first_token_seconds_bucket{le="0.05",model_name="m"} 2.0
vllm:time_to_first_token_seconds_bucket{le="+Inf",model_name="m"} 5.0
vllm:time_to_first_token_seconds_sum{model_name="m"} 0.31
vllm:time_to_first_token_seconds_count{model_name="m"} 5.0
odd{path="a \"q\" \\ b\nc", empty=""} NaN 1700000000000
"#;

    #[test]
    fn a_page_reads_with_types_labels_and_escapes() {
        let page = parse(PAGE, Limits::default()).unwrap();
        assert_eq!(page.samples.len(), 7);
        assert_eq!(page.kind_of("vllm:num_requests_running"), Kind::Gauge);
        assert_eq!(page.kind_of("vllm:generation_tokens_total"), Kind::Counter);
        assert_eq!(
            page.kind_of("vllm:time_to_first_token_seconds_bucket"),
            Kind::Histogram
        );
        assert_eq!(page.kind_of("odd"), Kind::Untyped);
        let running = page.series("vllm:num_requests_running").next().unwrap();
        assert_eq!(running.value, 3.0);
        assert_eq!(running.label("model_name"), Some("m"));
        let inf = page
            .series("vllm:time_to_first_token_seconds_bucket")
            .find(|s| s.label("le") == Some("+Inf"))
            .unwrap();
        assert_eq!(inf.value, 5.0);
        let odd = page.series("odd").next().unwrap();
        assert_eq!(odd.label("path"), Some("a \"q\" \\ b\nc"));
        assert_eq!(odd.label("empty"), Some(""));
        assert!(odd.value.is_nan());
    }

    #[test]
    fn a_real_llama_server_page_reads() {
        let text = include_str!("../../tests/data/prometheus/llama-server-b11434.txt");
        let page = parse(text, Limits::default()).unwrap();
        assert_eq!(page.samples.len(), 15);
        assert!(page.samples.iter().all(|s| s.labels.is_empty()));
        // Two answers of 12 tokens each, as their `usage` said.
        let predicted = page
            .series("llamacpp:tokens_predicted_total")
            .next()
            .unwrap();
        assert_eq!(predicted.value, 24.0);
        assert_eq!(
            page.kind_of("llamacpp:tokens_predicted_total"),
            Kind::Counter
        );
        assert_eq!(page.kind_of("llamacpp:requests_processing"), Kind::Gauge);
    }

    #[test]
    fn bad_lines_are_refused_with_their_line() {
        for (text, line, says) in [
            ("a 1\n{x=\"1\"} 2", 2, "metric name"),
            ("a{x=1} 2", 1, "not quoted"),
            ("a{x=\"1} 2", 1, "closing quote"),
            ("a{x=\"1\" y=\"2\"} 2", 1, "`,` or `}`"),
            ("a", 1, "no value"),
            ("a one", 1, "not a number"),
            ("a 1 2 3", 1, "unexpected text"),
            ("a 1 soon", 1, "not a timestamp"),
        ] {
            match parse(text, Limits::default()) {
                Err(ParseError::Syntax { line: l, reason }) => {
                    assert_eq!(l, line, "{text}");
                    assert!(reason.contains(says), "{text}: {reason}");
                }
                other => panic!("{text}: {other:?}"),
            }
        }
    }

    #[test]
    fn limits_cut_off_large_pages() {
        let tight = Limits {
            bytes: 64,
            samples: 2,
            labels: 1,
        };
        assert_eq!(
            parse(&"a 1\n".repeat(20), tight),
            Err(ParseError::TooLarge { limit: 64 })
        );
        assert_eq!(
            parse("a 1\nb 2\nc 3\n", tight),
            Err(ParseError::TooManySamples { limit: 2 })
        );
        assert_eq!(
            parse("a{x=\"1\",y=\"2\"} 1", tight),
            Err(ParseError::TooManyLabels { line: 1, limit: 1 })
        );
    }
}
