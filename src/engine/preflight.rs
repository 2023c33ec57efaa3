//! The model preflight: before anything starts, check that the model exists where it must
//! and has a format the engine takes, naming the engines that do take it when it does not.

use std::path::Path;

use crate::engine::error::{EngineError, ErrorKind};
use crate::registry::{EngineInfo, ModelFormat, Registry};
use crate::suite::model::{EngineSpec, RuntimeMode};
use crate::suite::model_format::detect_format;

/// Whether a model reference names a local file or directory (not a hub id or tag).
pub fn is_local_path(model: &str) -> bool {
    model.starts_with('/')
        || model.starts_with("./")
        || model.starts_with("../")
        || model.starts_with('~')
        || model.to_ascii_lowercase().ends_with(".gguf")
}

/// Checks the model of `spec` for `info` in `mode`.
pub fn check_model(
    registry: &Registry,
    instance: &str,
    info: &EngineInfo,
    spec: &EngineSpec,
    mode: RuntimeMode,
) -> Result<(), EngineError> {
    let Some(model) = spec.model.as_deref() else {
        if info.model_required {
            return Err(EngineError::new(
                instance,
                ErrorKind::Config,
                format!("`{}` needs a model", info.name),
            )
            .hint("set the engine's `model:`"));
        }
        return Ok(());
    };
    if mode != RuntimeMode::External && is_local_path(model) && !Path::new(model).exists() {
        return Err(EngineError::new(
            instance,
            ErrorKind::Config,
            format!("model path `{model}` does not exist"),
        )
        .hint("check the path; it is read on the machine running kitt (or mounted into the container)"));
    }
    let Some(format) = detect_format(model) else {
        return Ok(()); // nothing can be told offline; the engine will say
    };
    if info.formats.contains(&format) || info.formats.contains(&ModelFormat::ServerSide) {
        return Ok(());
    }
    let takers: Vec<String> = registry
        .engines
        .iter()
        .filter(|e| e.info.formats.contains(&format))
        .map(|e| format!("`{}`", e.info.name))
        .collect();
    let accepted: Vec<String> = info.formats.iter().map(|f| f.to_string()).collect();
    let hint = if takers.is_empty() {
        format!("`{}` takes {}", info.name, accepted.join(", "))
    } else {
        format!(
            "`{}` takes {}; {format} models run on {}",
            info.name,
            accepted.join(", "),
            takers.join(", ")
        )
    };
    Err(EngineError::new(
        instance,
        ErrorKind::Config,
        format!(
            "model `{model}` is a {format} model, which `{}` does not load",
            info.name
        ),
    )
    .hint(hint))
}
