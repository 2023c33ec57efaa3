//! Arbitrary input never panics or hangs the loader and validator: it always ends in a
//! result, and invalid input always carries at least one error.

use std::path::Path;

use kitt::registry::Registry;
use kitt::suite::validate::{Unset, validate_source};
use proptest::prelude::*;

fn validate(text: String) -> kitt::suite::validate::Validation {
    thread_local! {
        static REGISTRY: Registry = kitt::assemble::builtins();
    }
    REGISTRY.with(|r| validate_source(Path::new("fuzz.yaml"), text, r, &[], Unset::Allowed))
}

/// YAML-ish text built from the tokens suites are made of, so cases reach deep checks.
fn yamlish() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        Just("apiVersion: kitt/v1\n".to_string()),
        Just("kind: Suite\n".to_string()),
        Just("metadata: {name: x, version: 1.0.0}\n".to_string()),
        Just("engines:\n  sim: {uses: simulator}\n".to_string()),
        Just("nodes:\n".to_string()),
        Just("  - id: a\n    benchmark: latency\n    engine: sim\n".to_string()),
        Just("    needs: [a]\n".to_string()),
        Just("    matrix: {c: [1, 2]}\n".to_string()),
        Just("    params: {requests: \"${{ matrix.c }}\"}\n".to_string()),
        Just("    params: {requests: \"${{ nodes.a.outputs.x \"}\n".to_string()),
        Just("x: &a [1, *a]\n".to_string()),
        Just("y: &b {k: v}\nz: *b\n".to_string()),
        Just("? [k]\n: v\n".to_string()),
        Just("<<: {a: 1}\n".to_string()),
        Just("--- !tag\n".to_string()),
        Just("\t".to_string()),
        Just("'unterminated\n".to_string()),
        Just("{[}]\n".to_string()),
        "[a-z:{}\\[\\]\\-&*!|>'\"#%@` \n]{0,20}",
    ];
    prop::collection::vec(token, 0..12).prop_map(|parts| parts.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let v = validate(String::from_utf8_lossy(&bytes).into_owned());
        prop_assert!(v.suite.is_some() || v.has_errors());
    }

    #[test]
    fn arbitrary_yamlish_never_panics(text in yamlish()) {
        let v = validate(text);
        prop_assert!(v.suite.is_some() || v.has_errors());
    }
}

#[test]
fn a_yaml_bomb_stops_at_the_limit() {
    let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..12 {
        let refs = vec![format!("*a{}", i - 1); 10].join(", ");
        text.push_str(&format!("a{i}: &a{i} [{refs}]\n"));
    }
    let v = validate(text);
    assert!(
        v.diagnostics[0]
            .message
            .contains("alias expansion exceeds the limit")
    );
}

/// A suite of `nodes` nodes with long sampling stop lists (4,000 make about 5 MB and 208,000
/// values, near the per-file limits).
pub fn large_suite(nodes: usize) -> String {
    let mut text = String::from(
        "apiVersion: kitt/v1\nkind: Suite\nmetadata: {name: big, version: 1.0.0}\nengines:\n  sim: {uses: simulator}\nnodes:\n",
    );
    let stops: Vec<String> = (0..40)
        .map(|i| format!("\"stop-sequence-number-{i:03}\""))
        .collect();
    let stops = stops.join(", ");
    for i in 0..nodes {
        text.push_str(&format!(
            "  - id: n{i}\n    benchmark: latency\n    engine: sim\n    params: {{requests: {}, input_tokens: 128}}\n    sampling: {{max_tokens: 64, stop: [{stops}]}}\n",
            1 + i % 50
        ));
        if i > 0 {
            text.push_str(&format!("    needs: [n{}]\n", i - 1));
        }
    }
    text
}

#[test]
fn a_suite_near_the_limits_validates() {
    let text = large_suite(4_000);
    assert!(text.len() > 4_500_000, "{} bytes", text.len());
    let v = validate(text);
    assert!(!v.has_errors(), "{:?}", v.diagnostics.first());
    assert_eq!(v.suite.unwrap().legs.len(), 4_000);
}

#[test]
fn a_suite_over_the_value_limit_is_refused_where_it_crosses_it() {
    let v = validate(large_suite(6_000));
    assert!(
        v.diagnostics[0].message.contains("more than 250000 values"),
        "{:?}",
        v.diagnostics.first()
    );
}
