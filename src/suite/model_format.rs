//! Telling a model's format from its reference, offline, for the engine preflight.

use std::path::Path;

use crate::registry::ModelFormat;

/// The model format a model reference has, when it can be told without reading it.
pub fn detect_format(model: &str) -> Option<ModelFormat> {
    let lower = model.to_ascii_lowercase();
    if lower.ends_with(".gguf") {
        return Some(ModelFormat::Gguf);
    }
    if lower.ends_with(".safetensors") {
        return Some(ModelFormat::Safetensors);
    }
    let path = Path::new(model);
    if path.is_dir() {
        let has_safetensors = std::fs::read_dir(path)
            .map(|entries| {
                entries
                    .flatten()
                    .any(|e| e.path().extension().is_some_and(|x| x == "safetensors"))
            })
            .unwrap_or(false);
        return has_safetensors.then_some(ModelFormat::Safetensors);
    }
    if !model.contains('/') && model.contains(':') {
        return Some(ModelFormat::OllamaTag);
    }
    let parts: Vec<&str> = model.split('/').collect();
    if parts.len() == 2
        && parts.iter().all(|p| !p.is_empty() && !p.starts_with('.'))
        && !model.contains(':')
    {
        return Some(ModelFormat::Safetensors); // a Hugging Face hub id such as org/name
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_formats_from_names() {
        assert_eq!(detect_format("/m/q4.GGUF"), Some(ModelFormat::Gguf));
        assert_eq!(
            detect_format("meta-llama/Llama-3.1-8B"),
            Some(ModelFormat::Safetensors)
        );
        assert_eq!(detect_format("llama3.1:8b"), Some(ModelFormat::OllamaTag));
        assert_eq!(detect_format("/models/unknown-thing"), None);
    }
}
