//! Which of this host's processors an engine's work runs on, so power telemetry reads the
//! right GPUs (or the CPU's energy counters), and says so when the engine runs elsewhere.

use crate::engine::launch::{Driver, GpuUse};
use crate::suite::model::{AllGpus, EngineSpec, GpuRequest, RuntimeMode};

/// Where an engine computes, as far as this host can read its power.
#[derive(Debug, Clone, PartialEq)]
pub enum Devices {
    /// On this host: the GPUs it was given (`None`: it runs on the CPU), narrowed by a
    /// `CUDA_VISIBLE_DEVICES` list it inherits (native processes only).
    Local {
        gpus: Option<GpuRequest>,
        visible: Option<String>,
    },
    /// On another host; why, in words for the result.
    Elsewhere(String),
}

impl Devices {
    /// The processors of an engine run by `driver` as `spec` configures it, at `base_url`;
    /// `inherited_visible` is kitt's own `CUDA_VISIBLE_DEVICES`.
    pub fn of(
        driver: &Driver,
        spec: &EngineSpec,
        mode: RuntimeMode,
        base_url: &str,
        inherited_visible: Option<String>,
    ) -> Devices {
        let asked = spec.resources.as_ref().and_then(|r| r.gpus.clone());
        let all = || Some(GpuRequest::All(AllGpus::All));
        let visible = || {
            spec.env
                .get("CUDA_VISIBLE_DEVICES")
                .cloned()
                .or(inherited_visible.clone())
        };
        match driver {
            Driver::Simulator => Devices::Local {
                gpus: None,
                visible: None,
            },
            Driver::Endpoint if is_loopback(base_url) => Devices::Local {
                gpus: asked.or_else(all),
                visible: None,
            },
            Driver::Endpoint => Devices::Elsewhere(format!(
                "the engine answers at {base_url}, not on this host"
            )),
            _ if spec.docker_host.is_some() && mode == RuntimeMode::Docker => {
                Devices::Elsewhere("the engine runs on another Docker host".to_string())
            }
            Driver::Server(launch) => match mode {
                RuntimeMode::Docker => Devices::Local {
                    gpus: asked.or_else(|| (launch.gpu == GpuUse::Required).then(all).flatten()),
                    visible: None,
                },
                RuntimeMode::Native => Devices::Local {
                    gpus: asked.or_else(|| (launch.gpu != GpuUse::None).then(all).flatten()),
                    visible: visible(),
                },
                RuntimeMode::External => Devices::Local {
                    gpus: asked.or_else(all),
                    visible: None,
                },
            },
            Driver::Plugin(_) => Devices::Local {
                gpus: asked.or_else(all),
                visible: visible(),
            },
        }
    }
}

/// Whether a URL's host is this machine's loopback.
fn is_loopback(url: &str) -> bool {
    let host = url
        .split_once("://")
        .map_or(url, |(_, rest)| rest)
        .split(['/', '?'])
        .next()
        .unwrap_or("");
    let host = match host.rsplit_once(':') {
        Some((h, port)) if port.chars().all(|c| c.is_ascii_digit()) => h,
        _ => host,
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts_are_recognised() {
        for url in [
            "http://127.0.0.1:8000",
            "http://localhost/v1",
            "http://[::1]:9/x",
            "127.0.0.2:80",
        ] {
            assert!(is_loopback(url), "{url}");
        }
        for url in [
            "http://10.0.0.1:8000",
            "https://example.com",
            "http://[::2]:1",
        ] {
            assert!(!is_loopback(url), "{url}");
        }
    }

    #[test]
    fn the_simulator_computes_on_the_cpu_and_a_remote_endpoint_elsewhere() {
        let spec: EngineSpec = serde_json::from_value(serde_json::json!({"uses": "x"})).unwrap();
        let sim = Devices::of(
            &Driver::Simulator,
            &spec,
            RuntimeMode::Native,
            "http://127.0.0.1:1",
            None,
        );
        assert_eq!(
            sim,
            Devices::Local {
                gpus: None,
                visible: None
            }
        );
        let far = Devices::of(
            &Driver::Endpoint,
            &spec,
            RuntimeMode::External,
            "http://10.1.2.3:80",
            None,
        );
        assert!(matches!(far, Devices::Elsewhere(why) if why.contains("10.1.2.3")));
        let near = Devices::of(
            &Driver::Endpoint,
            &spec,
            RuntimeMode::External,
            "http://127.0.0.1:80",
            Some("1".into()),
        );
        assert_eq!(
            near,
            Devices::Local {
                gpus: Some(GpuRequest::All(AllGpus::All)),
                visible: None
            }
        );
    }
}
