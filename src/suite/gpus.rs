//! The GPUs an engine instance takes: what its `resources.gpus` asks, else its engine's
//! default. The container is created with them and the scheduler counts them, by this one rule.

use crate::registry::{EngineInfo, GpuUse};
use crate::suite::model::{AllGpus, GpuRequest};

/// The GPUs a container of this engine gets, and a note when it will run on the CPU: what
/// `resources.gpus` says; else every GPU for an engine that needs one, or that uses one when
/// given one and has no separate GPU image; else none. `machine_gpus` is the number of the
/// daemon's GPUs, when known. The planner counts GPUs with the same rule.
pub fn gpu_request(
    info: &EngineInfo,
    asked: Option<GpuRequest>,
    machine_gpus: Option<usize>,
) -> (Option<GpuRequest>, Option<String>) {
    let all = || Some(GpuRequest::All(AllGpus::All));
    match (asked, info.gpu, machine_gpus) {
        (Some(g), _, _) => (Some(g), None),
        (None, GpuUse::Required, _) => (all(), None),
        (None, GpuUse::Optional, Some(n)) if n > 0 && info.gpu_image.is_none() => {
            (all(), None)
        }
        (None, GpuUse::Optional, Some(0)) => (
            None,
            Some("ran on the CPU: the machine has no GPU".into()),
        ),
        (None, GpuUse::Optional, Some(_)) => (
            None,
            Some("ran on the CPU: its default image is the CPU build; set resources.gpus to use the GPU build".into()),
        ),
        (None, GpuUse::Optional, None) => (
            None,
            Some("may have run on the CPU: the daemon's GPUs are unknown; set resources.gpus".into()),
        ),
        (None, GpuUse::None, _) => (None, None),
    }
}

/// How many of the machine's `machine_gpus` GPUs a request takes.
pub fn count(request: Option<&GpuRequest>, machine_gpus: usize) -> usize {
    match request {
        None => 0,
        Some(GpuRequest::All(_)) => machine_gpus,
        Some(GpuRequest::Count(n)) => *n as usize,
        Some(GpuRequest::Ids(ids)) => ids.len(),
    }
}
