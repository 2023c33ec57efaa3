//! Validation consults whatever the registry holds: fixtures registered the same way as
//! built-ins (and, later, plugins) are resolved and their params schemas enforced.

use std::path::Path;

use kitt::engine::launch::Driver;
use kitt::registry::{
    BenchmarkInfo, Category, Direction, EngineInfo, MetricInfo, ModelFormat, Origin, Registry,
};
use kitt::suite::model::RuntimeMode;
use kitt::suite::validate::{Unset, validate_source};
use serde_json::json;

fn fixture_registry() -> Registry {
    let mut r = Registry::empty();
    r.register_engine(
        EngineInfo {
            name: "gateway".into(),
            description: "a company gateway".into(),
            formats: vec![ModelFormat::ServerSide],
            default_image: None,
            default_port: 443,
            container_port: 443,
            health_endpoint: "/healthz".into(),
            modes: vec![RuntimeMode::External],
            config_schema: json!({"type": "object", "additionalProperties": false, "properties": {}}),
            model_required: true,
            gpu: kitt::registry::GpuUse::None,
            gpu_image: None,
            upstream: None,
            driver: kitt::registry::Implementation::new(Driver::Endpoint),
        },
        Origin::Plugin("/plugins/gateway".into()),
    )
    .unwrap();
    r.register_benchmark(
        BenchmarkInfo {
            name: "echo".into(),
            version: "0.1.0".into(),
            category: Category::QualityCustom,
            description: "fixture".into(),
            params_schema: json!({"type": "object", "additionalProperties": false, "required": ["times"],
                                  "properties": {"times": {"type": "integer", "minimum": 1}}}),
            metrics: vec![MetricInfo { name: "echoes".into(), unit: "count".into(), direction: Direction::Higher }],
            dynamic_metric_prefixes: vec![],
            outputs: vec![],
            driver: Default::default(),
        },
        Origin::Plugin("/plugins/echo".into()),
    )
    .unwrap();
    r
}

const SUITE: &str = "apiVersion: kitt/v1\nkind: Suite\nmetadata: {name: f, version: 1.0.0}\n\
engines:\n  gw: {uses: gateway, model: m, url: 'http://127.0.0.1:9'}\n\
nodes:\n  - id: a\n    benchmark: echo\n    engine: gw\n    params: {times: TIMES}\n    assert: {echoes: {min: 1}}\n";

#[test]
fn fixtures_resolve_and_their_schemas_apply() {
    let r = fixture_registry();
    let ok = validate_source(
        Path::new("f.yaml"),
        SUITE.replace("TIMES", "3"),
        &r,
        &[],
        Unset::Allowed,
    );
    assert!(!ok.has_errors(), "{:?}", ok.diagnostics);

    let bad = validate_source(
        Path::new("f.yaml"),
        SUITE.replace("TIMES", "0"),
        &r,
        &[],
        Unset::Allowed,
    );
    let d = &bad.diagnostics[0];
    assert_eq!(d.code, "params");
    assert_eq!(
        (d.location.unwrap().span.line, d.location.unwrap().span.col),
        (10, 21)
    );
}

#[test]
fn built_ins_are_unknown_to_an_empty_registry() {
    let r = Registry::empty();
    let v = validate_source(
        Path::new("f.yaml"),
        SUITE.replace("TIMES", "3"),
        &r,
        &[],
        Unset::Allowed,
    );
    let codes: Vec<&str> = v.diagnostics.iter().map(|d| d.code).collect();
    assert!(
        codes.contains(&"unknown-engine") && codes.contains(&"unknown-benchmark"),
        "{codes:?}"
    );
}
