use chrono::{DateTime, Utc};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

/// A member's isolated place to work, in the project's namespace.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "trellis.dev",
    version = "v1alpha1",
    kind = "Workspace",
    plural = "workspaces",
    shortname = "ws",
    category = "trellis",
    namespaced,
    status = "WorkspaceStatus",
    printcolumn = r#"{"name":"Owner","type":"string","jsonPath":".spec.owner"}"#,
    printcolumn = r#"{"name":"Template","type":"string","jsonPath":".spec.template"}"#,
    printcolumn = r#"{"name":"Running","type":"boolean","jsonPath":".spec.running"}"#,
    printcolumn = r#"{"name":"Phase","type":"string","jsonPath":".status.phase"}"#,
    printcolumn = r#"{"name":"Last activity","type":"date","jsonPath":".status.lastActivity"}"#,
    printcolumn = r#"{"name":"URL","type":"string","jsonPath":".status.url","priority":1}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    validation = Rule::new("self.metadata.name.size() <= 52").message("a workspace name is at most 52 characters, so that its pods get valid names")
)]
#[x_kube(validation = Rule::new("self.owner == oldSelf.owner").message("owner is immutable"))]
#[x_kube(validation = Rule::new("self.template == oldSelf.template").message("template is immutable; create a new workspace instead"))]
#[serde(rename_all = "camelCase")]
pub struct WorkspaceSpec {
    /// The member who owns the workspace (identity-provider subject). Only they can open it.
    #[schemars(schema_with = "super::schema::subject")]
    pub owner: String,
    /// The WorkspaceTemplate it runs; must be allowed by the project.
    #[schemars(schema_with = "super::schema::dns_label")]
    pub template: String,
    /// CPU and memory; the template's defaults when absent, never above its maximum.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<WorkspaceResources>,
    /// Size of the home volume, e.g. `10Gi`; the template's default when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "super::schema::quantity")]
    pub storage: Option<Quantity>,
    /// Whether the workspace should be running. The home volume is kept while stopped.
    #[serde(default = "default_running")]
    pub running: bool,
    /// Stop the workspace after this long without activity through the gateway, e.g. `2h`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "super::schema::duration")]
    pub idle_timeout: Option<String>,
}

fn default_running() -> bool {
    true
}

/// Compute for one workspace.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkspaceResources {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "super::schema::quantity")]
    pub cpu: Option<Quantity>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "super::schema::quantity")]
    pub memory: Option<Quantity>,
    #[serde(default)]
    #[schemars(range(max = 8))]
    pub gpus: u32,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, schemars::JsonSchema)]
pub enum WorkspacePhase {
    Pending,
    Starting,
    Running,
    Stopping,
    Stopped,
    /// The workspace cannot run as specified; the Ready condition says why.
    Failed,
}

impl WorkspacePhase {
    /// The phase as the status, the API and the pages write it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "Pending",
            Self::Starting => "Starting",
            Self::Running => "Running",
            Self::Stopping => "Stopping",
            Self::Stopped => "Stopped",
            Self::Failed => "Failed",
        }
    }
}

impl std::fmt::Display for WorkspacePhase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkspaceStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<WorkspacePhase>,
    /// The gateway path that opens the workspace, `/w/<project>/<workspace>/`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<DateTime<Utc>>,
    /// Last traffic seen by the gateway; drives idle shutdown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_activity: Option<DateTime<Utc>>,
}
