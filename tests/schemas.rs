//! The committed schemas under `schemas/` must equal what the Rust types generate.
//! Run with `KITT_BLESS=1` to rewrite them after changing the types.

use std::path::Path;

fn check(file: &str, generated: serde_json::Value) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("schemas")
        .join(file);
    let text = serde_json::to_string_pretty(&generated).unwrap() + "\n";
    if std::env::var_os("KITT_BLESS").is_some() {
        std::fs::write(&path, &text).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap();
    assert!(
        committed == text,
        "{} differs from what the types generate; run `KITT_BLESS=1 cargo test --test schemas` and commit it",
        path.display()
    );
}

#[test]
fn suite_schema_is_current() {
    check("suite.schema.json", kitt::suite::schema::generate_suite());
}

#[test]
fn templates_schema_is_current() {
    check(
        "templates.schema.json",
        kitt::suite::schema::generate_templates(),
    );
}

#[test]
fn plugin_schema_is_current() {
    check("plugin.schema.json", kitt::plugin::generate_schema());
}

#[test]
fn results_schema_is_current() {
    check(
        "results.schema.json",
        kitt::report::context::generate_schema(),
    );
}

#[test]
fn schemas_are_draft_07() {
    let schema: serde_json::Value =
        serde_json::from_str(kitt::suite::schema::SUITE_SCHEMA).unwrap();
    assert_eq!(schema["$schema"], "http://json-schema.org/draft-07/schema#");
    assert!(schema["definitions"].is_object());
}
