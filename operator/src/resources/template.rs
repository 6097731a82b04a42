use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

/// A kind of workspace a project may offer (JupyterLab, RStudio, VS Code …): what runs, on which
/// port, with how much compute, and which of its paths the gateway must never proxy.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "trellis.dev",
    version = "v1alpha1",
    kind = "WorkspaceTemplate",
    plural = "workspacetemplates",
    shortname = "wst",
    category = "trellis",
    printcolumn = r#"{"name":"Display name","type":"string","jsonPath":".spec.displayName"}"#,
    printcolumn = r#"{"name":"Image","type":"string","jsonPath":".spec.image"}"#,
    printcolumn = r#"{"name":"Port","type":"integer","jsonPath":".spec.port"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct WorkspaceTemplateSpec {
    #[schemars(length(min = 1, max = 100))]
    pub display_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2000))]
    pub description: Option<String>,
    /// Container image, pinned by digest or tag.
    #[schemars(length(min = 1, max = 512))]
    #[x_kube(validation = Rule::new("!self.contains(' ')").message("an image reference has no spaces"))]
    pub image: String,
    /// The port the program listens on inside the workspace.
    #[schemars(range(min = 1024, max = 65535))]
    pub port: u16,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 50))]
    #[x_kube(merge_strategy = ListMerge::Atomic)]
    pub command: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 100))]
    #[x_kube(merge_strategy = ListMerge::Atomic)]
    pub args: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 100))]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["name".into()]))]
    pub env: Vec<EnvVar>,
    pub resources: TemplateResources,
    /// Size of a new home volume when the workspace does not say, e.g. `10Gi`.
    #[schemars(schema_with = "super::schema::quantity")]
    pub default_storage: Quantity,
    /// Whether the program works with a read-only root filesystem.
    #[serde(default)]
    pub read_only_root_filesystem: bool,
    #[serde(default)]
    pub gateway: GatewayRules,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct EnvVar {
    #[schemars(
        length(min = 1, max = 128),
        regex(pattern = "^[A-Za-z_][A-Za-z0-9_]*$")
    )]
    pub name: String,
    #[serde(default)]
    #[schemars(length(max = 4096))]
    pub value: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("quantity(string(self.default.cpu)).compareTo(quantity(string(self.max.cpu))) <= 0").message("resources.default.cpu must not exceed resources.max.cpu"))]
#[x_kube(validation = Rule::new("quantity(string(self.default.memory)).compareTo(quantity(string(self.max.memory))) <= 0").message("resources.default.memory must not exceed resources.max.memory"))]
pub struct TemplateResources {
    /// What a workspace gets when it does not ask.
    pub default: ComputeResources,
    /// The most a workspace may ask for.
    pub max: ComputeResources,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ComputeResources {
    #[schemars(schema_with = "super::schema::quantity")]
    pub cpu: Quantity,
    #[schemars(schema_with = "super::schema::quantity")]
    pub memory: Quantity,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct GatewayRules {
    /// Path prefixes under the workspace URL that the gateway refuses (e.g. file downloads).
    #[serde(default)]
    #[schemars(length(max = 100))]
    #[x_kube(merge_strategy = ListMerge::Set)]
    pub blocked_paths: Vec<BlockedPath>,
}

/// A path prefix, starting with `/`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(transparent)]
pub struct BlockedPath(pub String);

impl schemars::JsonSchema for BlockedPath {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "BlockedPath".into()
    }
    fn inline_schema() -> bool {
        true
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({"type": "string", "minLength": 1, "maxLength": 256, "pattern": "^/[^\\s]*$"})
    }
}
