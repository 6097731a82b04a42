//! Operator configuration: where the Trellis control plane runs, so that project
//! NetworkPolicies can let exactly the gateway in and exactly the airlock out.

use std::collections::BTreeMap;

use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("{flag}: {detail}")]
    Invalid { flag: &'static str, detail: String },
}

/// The DataSHIELD server's image unless configured: the released one of this version.
pub const DEFAULT_DATASHIELD_IMAGE: &str = concat!(
    "ghcr.io/trellis-tre/trellis-datashield:",
    env!("CARGO_PKG_VERSION")
);

/// A label selector of the form `key=value[,key=value…]` (equality only, as NetworkPolicy peers need).
pub type Labels = BTreeMap<String, String>;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OperatorConfig {
    /// Namespace of the Trellis API (the gateway and the airlock).
    pub control_plane_namespace: String,
    /// Labels of the pods that proxy traffic into workspaces.
    pub gateway_pods: Labels,
    /// Labels of the pods that serve the in-cluster airlock.
    pub airlock_pods: Labels,
    /// The airlock's in-cluster port: the only place workspaces may send traffic.
    pub airlock_port: u16,
    /// Namespace and labels of the cluster DNS pods.
    pub dns_namespace: String,
    pub dns_pods: Labels,
    /// Only Projects matching this label selector are managed (sharding, canaries, tests).
    pub project_selector: Option<String>,
    /// The Trellis API as workspaces reach it (their `TRELLIS_API_URL`).
    pub api_url: String,
    /// The image of the `trellis` CLI, which fills a workspace's inputs (and a DataSHIELD
    /// server's tables) before it starts.
    pub cli_image: String,
    /// The image of the DataSHIELD server each project with `spec.datashield.enabled` runs.
    pub datashield_image: String,
    /// What the DataSHIELD server (and its init container) requests and is limited to.
    pub datashield_resources: ComputeResources,
}

/// CPU and memory requests and limits of one container.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ComputeResources {
    pub cpu_request: String,
    pub cpu_limit: String,
    pub memory_request: String,
    pub memory_limit: String,
}

impl Default for ComputeResources {
    /// Modest: a DataSHIELD server holds one project's tables in memory.
    fn default() -> Self {
        Self {
            cpu_request: "250m".into(),
            cpu_limit: "1".into(),
            memory_request: "512Mi".into(),
            memory_limit: "1Gi".into(),
        }
    }
}

impl Default for OperatorConfig {
    fn default() -> Self {
        Self {
            control_plane_namespace: "trellis-system".into(),
            gateway_pods: labels(&[("app.kubernetes.io/name", "trellis-api")]),
            airlock_pods: labels(&[("app.kubernetes.io/name", "trellis-api")]),
            airlock_port: 8443,
            dns_namespace: "kube-system".into(),
            dns_pods: labels(&[("k8s-app", "kube-dns")]),
            project_selector: None,
            api_url: "http://trellis-api.trellis-system.svc:8443".into(),
            cli_image: "trellis/cli:0.1.0".into(),
            datashield_image: DEFAULT_DATASHIELD_IMAGE.into(),
            datashield_resources: ComputeResources::default(),
        }
    }
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// Checks that a flag holds a Kubernetes quantity (e.g. `250m`, `1Gi`), so that a typo stops
/// the operator at start rather than every DataSHIELD server at admission.
pub fn parse_quantity(flag: &'static str, text: String) -> Result<String, ConfigError> {
    match kube_quantity::ParsedQuantity::try_from(text.as_str()) {
        Ok(_) => Ok(text),
        Err(_) => Err(ConfigError::Invalid {
            flag,
            detail: format!("'{text}' is not a Kubernetes quantity"),
        }),
    }
}

/// Parses `key=value[,key=value…]`, refusing anything a NetworkPolicy peer could not express.
pub fn parse_labels(flag: &'static str, text: &str) -> Result<Labels, ConfigError> {
    let invalid = |detail: String| ConfigError::Invalid { flag, detail };
    let mut out = Labels::new();
    for pair in text.split(',').map(str::trim) {
        let (key, value) = pair
            .split_once('=')
            .ok_or_else(|| invalid(format!("'{pair}' is not key=value")))?;
        let (key, value) = (key.trim(), value.trim());
        if key.is_empty()
            || !key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c))
        {
            return Err(invalid(format!("'{key}' is not a valid label key")));
        }
        if value.len() > 63
            || !value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            return Err(invalid(format!("'{value}' is not a valid label value")));
        }
        if out.insert(key.to_owned(), value.to_owned()).is_some() {
            return Err(invalid(format!("'{key}' is given twice")));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_selectors_parse_into_sorted_pairs() {
        assert_eq!(
            parse_labels("--gateway-pods", "app=trellis, tier=gateway").unwrap(),
            labels(&[("app", "trellis"), ("tier", "gateway")])
        );
    }

    #[test]
    fn quantities_are_checked_at_start() {
        assert_eq!(parse_quantity("--x", "250m".into()).unwrap(), "250m");
        let error = parse_quantity("--datashield-cpu-limit", "lots".into()).unwrap_err();
        assert_eq!(
            error.to_string(),
            "--datashield-cpu-limit: 'lots' is not a Kubernetes quantity"
        );
    }

    #[test]
    fn malformed_label_selectors_are_refused_with_the_flag_named() {
        for (text, detail) in [
            ("app", "'app' is not key=value"),
            ("=x", "'' is not a valid label key"),
            ("app=a b", "'a b' is not a valid label value"),
            ("app=a,app=b", "'app' is given twice"),
            ("app in (a,b)", "is not key=value"),
        ] {
            let error = parse_labels("--gateway-pods", text)
                .unwrap_err()
                .to_string();
            assert!(error.starts_with("--gateway-pods: "), "{error}");
            assert!(error.contains(detail), "{text}: {error}");
        }
    }
}
