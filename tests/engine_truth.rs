//! Engine truth without the engines: every flag, environment variable and request field a
//! built-in profile can emit must be one its engine accepts, per the names extracted from
//! the upstream release the profile was checked against (`tests/data/upstream/`); and the
//! whole launch each profile produces for representative suites is snapshotted (argv, env,
//! mounts, GPUs, shm, IPC, ulimits), so a change to what kitt would start is reviewed.

use std::collections::BTreeSet;
use std::path::Path;

use kitt::engine::generation::{Endpoint, GenerationRequest};
use kitt::engine::launch::{Driver, Placement, ServerLaunch};
use kitt::registry::{EngineInfo, Registry};
use kitt::suite::model::{EngineSpec, Sampling};
use serde_json::{Map, Value, json};

/// The upstream names for `engine` (`tests/data/upstream/<file>.json`).
fn upstream(file: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/upstream")
        .join(format!("{file}.json"));
    serde_json::from_str(&std::fs::read_to_string(&path).expect("upstream data")).expect("JSON")
}

fn names(v: &Value, key: &str) -> BTreeSet<String> {
    v.pointer(key)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

fn profile(registry: &Registry, name: &str) -> (EngineInfo, ServerLaunch) {
    let info = registry.engines.get(name).expect("built-in").info.clone();
    let Driver::Server(launch) = Driver::of(&info) else {
        panic!("{name} is a server engine");
    };
    let launch = (**launch).clone();
    (info, launch)
}

/// Values for every setting the engine's schema allows: each property set to something of
/// its type (both values for booleans, so both switch flags appear).
fn every_setting(schema: &Value, flag: bool) -> Map<String, Value> {
    let mut config = Map::new();
    let props = schema["properties"].as_object().expect("properties");
    for (key, prop) in props {
        let value = if let Some(first) = prop.get("enum").and_then(|e| e.get(0)) {
            first.clone()
        } else if let Some(first) = prop.pointer("/oneOf/0") {
            every_setting(&json!({"properties": {"v": first}}), flag)["v"].clone()
        } else {
            match prop["type"].as_str() {
                Some("integer") => json!(2),
                Some("number") => json!(0.5),
                Some("boolean") => json!(flag),
                Some("object") => json!({"method": "ngram"}),
                _ => json!("/models/draft.gguf"),
            }
        };
        config.insert(key.clone(), value);
    }
    config
}

#[test]
fn every_flag_variable_and_request_field_a_profile_emits_exists_upstream() {
    let registry = kitt::assemble::builtins();
    for (engine, file) in [
        ("vllm", "vllm"),
        ("sglang", "sglang"),
        ("tgi", "tgi"),
        ("llama.cpp", "llama.cpp"),
        ("ollama", "ollama"),
    ] {
        let (info, launch) = profile(&registry, engine);
        let data = upstream(file);
        let version = data["version"].as_str().unwrap();
        assert!(
            launch.checked_against.contains(version),
            "{engine}: profile says `{}`, data is {version}",
            launch.checked_against
        );
        let flags = names(&data, "/flags");
        let vars = names(&data, "/env");
        let mut emitted_flags = BTreeSet::new();
        let mut emitted_vars = BTreeSet::new();
        for (flag, native) in [(true, true), (false, false), (true, false)] {
            let spec = EngineSpec {
                uses: engine.into(),
                model: Some("org/model".into()),
                config: every_setting(&info.config_schema, flag),
                ..EngineSpec::default()
            };
            let cmd = launch.command(
                &spec,
                &Placement {
                    host: "0.0.0.0",
                    port: 8000,
                    model: Some("org/model"),
                    native,
                },
            );
            emitted_flags.extend(cmd.args.iter().filter(|a| a.starts_with("--")).cloned());
            emitted_vars.extend(cmd.env.iter().map(|(k, _)| k.clone()));
        }
        for flag in &emitted_flags {
            assert!(
                flags.contains(flag),
                "{engine} {version} has no flag `{flag}`"
            );
        }
        for var in &emitted_vars {
            assert!(
                vars.contains(var),
                "{engine} {version} reads no variable `{var}`"
            );
        }
        assert!(
            !emitted_flags.is_empty() || !emitted_vars.is_empty(),
            "{engine}: the profile emitted nothing to check"
        );
        // Requests: every top-level field kitt sends, with every sampling setting set.
        let sampling = Sampling {
            temperature: Some(0.5),
            top_p: Some(0.9),
            top_k: Some(5),
            max_tokens: Some(8),
            min_tokens: Some(2),
            ignore_eos: Some(true),
            seed: Some(1),
            stop: vec!["x".into()],
        };
        for (endpoint, key) in [
            (Endpoint::Chat, "chat"),
            (Endpoint::Completions, "completions"),
        ] {
            let accepted = names(&data, &format!("/request_fields/{key}"));
            // Chat requests may carry a JSON schema (`structured_output`), a history
            // (`conversation`) and tools (`tool_calls`; Ollama takes no `tool_choice`, and
            // the benchmark sends one only when a suite sets it).
            let chat = key == "chat";
            let req = GenerationRequest {
                endpoint,
                prompt: "p".into(),
                stream: true,
                sampling: sampling.clone(),
                response_format: chat.then(
                    || json!({"type": "json_schema", "json_schema": {"name": "x", "schema": {}}}),
                ),
                history: vec![kitt::engine::generation::ChatMessage {
                    role: kitt::engine::generation::ChatRole::Assistant,
                    content: "a".into(),
                }],
                tools: chat.then(|| json!([{"type": "function", "function": {"name": "f"}}])),
                tool_choice: (chat && engine != "ollama").then(|| json!("auto")),
            };
            let body = kitt::engine::openai::request_body(&req, "m", &launch.extra_body(&sampling));
            for field in body.as_object().unwrap().keys() {
                // TGI's completions take no `stream_options` (ignored; its last chunk
                // carries usage regardless).
                if engine == "tgi" && key == "completions" && field == "stream_options" {
                    continue;
                }
                assert!(
                    accepted.contains(field),
                    "{engine} {version} {key} requests have no field `{field}`"
                );
            }
        }
    }
}

#[test]
fn settings_an_engine_ignores_are_named_not_sent() {
    let registry = kitt::assemble::builtins();
    let sampling = Sampling {
        top_k: Some(5),
        min_tokens: Some(2),
        ignore_eos: Some(true),
        ..Sampling::default()
    };
    for (engine, ignored) in [
        ("vllm", 0),
        ("sglang", 0),
        ("llama.cpp", 1),
        ("tgi", 3),
        ("ollama", 3),
    ] {
        let (_, launch) = profile(&registry, engine);
        let named = launch.ignored(&sampling);
        assert_eq!(named.len(), ignored, "{engine}: {named:?}");
        let sent = launch.extra_body(&sampling);
        for setting in ["top_k", "min_tokens", "ignore_eos"] {
            let said = named.iter().any(|n| n.starts_with(setting));
            assert!(
                sent.contains_key(setting) != said,
                "{engine}: `{setting}` is either sent or named as ignored"
            );
        }
    }
}

#[test]
fn config_keys_an_engine_does_not_honour_are_refused_at_their_line() {
    let registry = kitt::assemble::builtins();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.yaml");
    for (engine, key, mode) in [
        ("llama.cpp", "dtype", "native"),
        ("llama.cpp", "tensor_parallel_size", "native"),
        ("ollama", "quantization", "docker"),
        ("ollama", "served_model_name", "docker"),
        ("ollama", "num_ctx", "docker"),
        ("sglang", "gpu_memory_utilization", "docker"),
        ("tgi", "served_model_name", "docker"),
        ("openai", "context_length", "external"),
    ] {
        let model = if engine == "ollama" {
            "llama3.2:1b"
        } else {
            "org/m"
        };
        let text = format!(
            "apiVersion: kitt/v1\nkind: Suite\nmetadata: {{name: t, version: 1.0.0}}\nengines:\n  e:\n    uses: {engine}\n    mode: {mode}\n    model: {model}\n    url: http://127.0.0.1:1\n    config:\n      {key}: 1\nnodes:\n  - {{id: a, benchmark: latency, engine: e}}\n"
        );
        std::fs::write(&path, &text).unwrap();
        let v = kitt::suite::validate::validate_file(
            &path,
            &registry,
            &[],
            kitt::suite::validate::Unset::Allowed,
        );
        let found = v
            .diagnostics
            .iter()
            .find(|d| d.message.contains(key))
            .unwrap_or_else(|| panic!("{engine}.{key} accepted: {:?}", v.diagnostics));
        assert_eq!(
            found.location.map(|l| l.span.line),
            Some(11),
            "{engine}.{key}: {found:?}"
        );
    }
}

/// An engine entry written as a suite would.
fn engine_spec(yaml: &str) -> EngineSpec {
    let value = kitt::suite::load::load_yaml(yaml, &kitt::suite::load::Limits::default())
        .expect("YAML")
        .value;
    serde_json::from_value(value).expect("engine spec")
}

#[test]
fn launches_of_representative_suites() {
    let registry = kitt::assemble::builtins();
    // A fixed weights-cache directory, so the snapshot holds no temporary path.
    let cache = std::env::temp_dir().join("kitt-snapshot-weights");
    let cases: &[(&str, &str, Option<usize>)] = &[
        (
            "vllm-defaults",
            "uses: vllm\nmodel: meta-llama/Llama-3.1-8B-Instruct",
            Some(8),
        ),
        (
            "vllm-tuned",
            "uses: vllm\nmodel: meta-llama/Llama-3.1-8B-Instruct\nsecrets: [HF_TOKEN]\nresources: {gpus: 2, shm_size: 16g}\nweights_cache: CACHE\nconfig: {context_length: 8192, tensor_parallel_size: 2, enable_prefix_caching: false, max_num_batched_tokens: 8192, kv_cache_dtype: fp8, enforce_eager: true, speculative_config: {method: ngram, num_speculative_tokens: 4}}",
            Some(8),
        ),
        (
            "sglang",
            "uses: sglang\nmodel: Qwen/Qwen2.5-7B-Instruct\nweights_cache: CACHE\nconfig: {context_length: 4096, mem_fraction_static: 0.8, max_running_requests: 64, radix_cache: false, metrics: true}",
            Some(1),
        ),
        (
            "tgi",
            "uses: tgi\nmodel: HuggingFaceTB/SmolLM2-1.7B-Instruct\nresources: {gpus: [0]}\nconfig: {context_length: 4096, max_input_tokens: 3072, dtype: bfloat16, max_concurrent_requests: 256}",
            Some(2),
        ),
        (
            "llama.cpp-cpu",
            "uses: llama.cpp\nmodel: MODELS/gemma-3-1b-it.gguf\nconfig: {context_length: 2048, threads: 8}",
            Some(0),
        ),
        (
            "llama.cpp-gpu",
            "uses: llama.cpp\nmodel: MODELS/gemma-3-1b-it.gguf\nresources: {gpus: all}\nconfig: {context_length: 4096, parallel: 8, n_gpu_layers: all, flash_attn: on, metrics: true, draft_model: MODELS/draft.gguf}",
            Some(1),
        ),
        (
            "ollama-gpu",
            "uses: ollama\nmodel: llama3.1:8b\nweights_cache: true\nconfig: {context_length: 8192, parallel: 4, keep_alive: 30m, flash_attention: true, kv_cache_type: q8_0}",
            Some(1),
        ),
        ("ollama-no-gpu", "uses: ollama\nmodel: llama3.1:8b", Some(0)),
    ];
    let home = tempfile::tempdir().unwrap();
    // Local model files are mounted into the container: they must exist.
    let models = home.path().join("models");
    std::fs::create_dir_all(&models).unwrap();
    for f in ["gemma-3-1b-it.gguf", "draft.gguf"] {
        std::fs::write(models.join(f), "GGUF").unwrap();
    }
    for (name, yaml, gpus) in cases {
        let yaml = yaml
            .replace("CACHE", &cache.display().to_string())
            .replace("MODELS", &models.display().to_string());
        let mut spec = engine_spec(&yaml);
        spec.mode = Some(kitt::suite::model::RuntimeMode::Docker);
        let (info, launch) = profile(&registry, &spec.uses);
        // `weights_cache: true` resolves under $HOME; give it a fixed one.
        if spec.weights_cache == Some(kitt::suite::model::WeightsCache::Enabled(true)) {
            spec.weights_cache = Some(kitt::suite::model::WeightsCache::Path(
                home.path().join(".ollama").display().to_string(),
            ));
        }
        let plan = kitt::engine::start::docker_launch(name, &info, &launch, &spec, "RUN", *gpus)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let mut value = serde_json::to_value(&plan).unwrap();
        let text = serde_json::to_string(&value).unwrap();
        let text = text.replace(&home.path().display().to_string(), "$HOME");
        value = serde_json::from_str(&text).unwrap();
        insta::assert_json_snapshot!(format!("launch-{name}"), value);
    }
}

/// Which GPUs a container gets, and the note when it runs on the CPU: one rule, which the
/// scheduler counts with too.
#[test]
fn gpu_defaults_follow_what_each_engine_needs() {
    use kitt::suite::gpus::gpu_request;
    use kitt::suite::model::GpuRequest;
    let registry = kitt::assemble::builtins();
    let info = |name: &str| profile(&registry, name).0;
    let all = |r: &Option<GpuRequest>| matches!(r, Some(GpuRequest::All(_)));
    for engine in ["vllm", "sglang", "tgi"] {
        for gpus in [None, Some(0), Some(4)] {
            let (request, note) = gpu_request(&info(engine), None, gpus);
            assert!(all(&request) && note.is_none(), "{engine} {gpus:?}");
        }
        let (request, _) = gpu_request(&info(engine), Some(GpuRequest::Count(1)), Some(4));
        assert_eq!(request, Some(GpuRequest::Count(1)), "resources.gpus wins");
    }
    let ollama = info("ollama");
    assert!(all(&gpu_request(&ollama, None, Some(2)).0));
    let (request, note) = gpu_request(&ollama, None, Some(0));
    assert!(request.is_none() && note.unwrap().contains("ran on the CPU"));
    let llama = info("llama.cpp");
    let (request, note) = gpu_request(&llama, None, Some(2));
    assert!(request.is_none() && note.unwrap().contains("CPU build"));
    assert!(
        gpu_request(&llama, Some(GpuRequest::Count(1)), Some(2))
            .1
            .is_none()
    );
}

/// Every series a metric mapping names, with the type it must have upstream.
fn mapped_series(
    n: &kitt::engine::server_metrics::MetricNames,
) -> Vec<(&'static str, &'static str)> {
    use kitt::engine::server_metrics::PrefixCache;
    let mut out = Vec::new();
    let mut add =
        |name: Option<&'static str>, kind: &'static str| out.extend(name.map(|n| (n, kind)));
    add(n.running, "gauge");
    add(n.waiting, "gauge");
    add(n.kv_cache_usage.map(|k| k.0), "gauge");
    add(n.preemptions, "counter");
    match n.prefix_cache {
        Some(PrefixCache::QueriesAndHits { queries, hits }) => {
            add(Some(queries), "counter");
            add(Some(hits), "counter");
        }
        Some(PrefixCache::ComputedAndCached { computed, cached }) => {
            add(Some(computed), "counter");
            add(Some(cached), "counter");
        }
        None => {}
    }
    // A histogram's `_sum` stands in for a counter where an engine has none (TGI).
    for tokens in [n.prompt_tokens, n.generation_tokens].into_iter().flatten() {
        match tokens.strip_suffix("_sum") {
            Some(family) => out.push((family, "histogram")),
            None => out.push((tokens, "counter")),
        }
    }
    for family in [n.ttft, n.tpot, n.e2e, n.queue_time].into_iter().flatten() {
        out.push((family, "histogram"));
    }
    out
}

#[test]
fn metric_mappings_name_series_their_engines_serve() {
    use kitt::engine::server_metrics::{SGLANG, ServerMetrics, TGI};
    let registry = kitt::assemble::builtins();
    for (engine, file, names) in [("sglang", "sglang", &SGLANG), ("tgi", "tgi", &TGI)] {
        let up = upstream(file);
        let served = up["metrics"]
            .as_object()
            .expect("metrics in the upstream data");
        let series = mapped_series(names);
        assert!(series.len() >= 5, "{engine}: {series:?}");
        for (name, kind) in series {
            let found = served.get(name).unwrap_or_else(|| {
                panic!("{engine} serves no `{name}` ({})", up["metrics_source"])
            });
            assert_eq!(found["type"], kind, "{engine}: `{name}`");
        }
        let (_, launch) = profile(&registry, engine);
        assert!(
            matches!(launch.metrics, ServerMetrics::Served(n) if *n == *names),
            "{engine}'s profile uses its mapping"
        );
        // The switch that turns the page on emits a flag the engine accepts.
        if let Some(key) = names.enabled_by {
            let flags = names_of_switch(&launch, key);
            let accepted = self::names(&up, "/flags");
            assert!(
                !flags.is_empty() && flags.iter().all(|f| accepted.contains(*f)),
                "{engine}: {flags:?}"
            );
        }
    }
}

/// The flags a `config:` switch emits when on.
fn names_of_switch(launch: &ServerLaunch, key: &str) -> Vec<&'static str> {
    use kitt::engine::launch::Setting;
    launch
        .settings
        .iter()
        .filter(|(k, _)| *k == key)
        .filter_map(|(_, s)| match s {
            Setting::Switch { on, .. } => *on,
            _ => None,
        })
        .collect()
}
