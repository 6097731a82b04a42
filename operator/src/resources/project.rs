use chrono::{DateTime, NaiveDate, Utc};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::core::{Message, Rule};
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

/// An approved research project: the unit of isolation, membership and governance.
///
/// The object's name is the project id; the operator gives it the namespace `trellis-<name>`.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "trellis.dev",
    version = "v1alpha1",
    kind = "Project",
    plural = "projects",
    shortname = "proj",
    category = "trellis",
    status = "ProjectStatus",
    printcolumn = r#"{"name":"Phase","type":"string","jsonPath":".status.phase"}"#,
    printcolumn = r#"{"name":"Approval","type":"string","jsonPath":".spec.approval.reference"}"#,
    printcolumn = r#"{"name":"Start","type":"string","format":"date","jsonPath":".spec.startDate"}"#,
    printcolumn = r#"{"name":"End","type":"string","format":"date","jsonPath":".spec.endDate"}"#,
    printcolumn = r#"{"name":"Namespace","type":"string","jsonPath":".status.namespace"}"#,
    printcolumn = r#"{"name":"Title","type":"string","jsonPath":".spec.title","priority":1}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    validation = Rule::new("self.metadata.name.size() <= 54").message("a project name is at most 54 characters, so that its namespace trellis-<name> is a valid name")
)]
#[x_kube(validation = Rule::new("self.endDate > self.startDate").message("endDate must be after startDate"))]
#[x_kube(validation = Rule::new("!has(oldSelf.closed) || !oldSelf.closed || self.closed").message("a closed project cannot be reopened"))]
#[x_kube(validation = Rule::new("!has(oldSelf.approval) || has(self.approval)").message("an approval cannot be removed; close the project instead"))]
#[serde(rename_all = "camelCase")]
pub struct ProjectSpec {
    /// Short human-readable title, shown on the public register.
    #[schemars(length(min = 1, max = 200))]
    pub title: String,
    /// What the project is for, in plain language. Public: shown on the transparency register.
    #[schemars(length(min = 1, max = 4000))]
    pub purpose: String,
    /// The governance approval that allows this project to exist. Without it the project stays `Pending`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<Approval>,
    /// First day on which the project may be active.
    pub start_date: NaiveDate,
    /// Last day on which the project may be active; after it the project is `Expired`.
    pub end_date: NaiveDate,
    /// People who may use the project, by identity-provider subject.
    #[serde(default)]
    #[schemars(length(max = 500))]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["subject".into()]))]
    pub members: Vec<Member>,
    /// Datasets the project is approved to use (public).
    #[serde(default)]
    #[schemars(length(max = 100))]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["name".into()]))]
    pub datasets: Vec<Dataset>,
    /// Compute and storage the project may use in total.
    pub resources: ProjectResources,
    /// Names of the WorkspaceTemplates members may use.
    #[serde(default)]
    #[schemars(length(max = 50))]
    #[x_kube(merge_strategy = ListMerge::Set)]
    pub templates: Vec<TemplateName>,
    /// How outputs leave the project.
    #[serde(default)]
    pub egress: EgressSettings,
    /// The project's DataSHIELD server: non-disclosive analysis of its released ingress tables.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub datashield: Option<DataShieldSpec>,
    /// Suspends the project: workspaces stop and nothing new may start.
    #[serde(default)]
    pub suspended: bool,
    /// Closes the project for good: everything in it is torn down and a record kept.
    #[serde(default)]
    pub closed: bool,
}

/// A WorkspaceTemplate name.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[serde(transparent)]
pub struct TemplateName(pub String);

impl schemars::JsonSchema for TemplateName {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "TemplateName".into()
    }
    fn inline_schema() -> bool {
        true
    }
    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        super::schema::dns_label(generator)
    }
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct Approval {
    /// The approving body's reference, e.g. an IGARD or REC number.
    #[schemars(length(min = 1, max = 200))]
    pub reference: String,
    /// Who approved the project.
    #[schemars(length(min = 1, max = 200))]
    pub approved_by: String,
    /// When the approval was given.
    pub approved_at: DateTime<Utc>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct Member {
    /// The member's subject (`sub` claim) at the identity provider.
    #[schemars(schema_with = "super::schema::subject")]
    pub subject: String,
    pub role: MemberRole,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum MemberRole {
    /// Leads the project: sees every workspace in it.
    Owner,
    /// Works in the project.
    Researcher,
    /// Analyses the project's data only through its DataSHIELD server: no workspaces, no
    /// airlock files, no releases.
    Analyst,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct Dataset {
    /// The dataset's name, as approved.
    #[schemars(length(min = 1, max = 200))]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2000))]
    pub description: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProjectResources {
    /// CPU requests and limits across all workspaces, e.g. `8`.
    #[schemars(schema_with = "super::schema::quantity")]
    pub cpu: Quantity,
    /// Memory requests and limits across all workspaces, e.g. `32Gi`.
    #[schemars(schema_with = "super::schema::quantity")]
    pub memory: Quantity,
    /// Total storage for home volumes, e.g. `100Gi`.
    #[schemars(schema_with = "super::schema::quantity")]
    pub storage: Quantity,
    /// GPUs across all workspaces.
    #[serde(default)]
    #[schemars(range(max = 64))]
    pub gpus: u32,
    /// How many workspaces may exist at once.
    #[schemars(range(min = 1, max = 100))]
    pub max_workspaces: u32,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct EgressSettings {
    /// Name of the egress rule set in `policies/egress/`.
    #[serde(default = "default_egress_policy")]
    #[schemars(schema_with = "super::schema::dns_label")]
    pub policy: String,
    /// How many independent output checkers must review each request.
    #[serde(default = "default_reviews_required")]
    #[schemars(range(min = 1, max = 10))]
    pub reviews_required: u32,
}

impl Default for EgressSettings {
    fn default() -> Self {
        Self {
            policy: default_egress_policy(),
            reviews_required: default_reviews_required(),
        }
    }
}

fn default_egress_policy() -> String {
    "default".into()
}

fn default_reviews_required() -> u32 {
    2
}

/// A project's DataSHIELD server (`trellis-datashield` in its namespace).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct DataShieldSpec {
    /// Runs the server while the project is active.
    #[serde(default)]
    pub enabled: bool,
    /// The tables the server holds, each a file of a released ingress request.
    #[serde(default)]
    #[schemars(length(max = 50))]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["name".into()]))]
    pub tables: Vec<DataShieldTable>,
    /// Disclosure settings; dsBase's defaults for any left out.
    #[serde(default)]
    pub settings: DataShieldSettings,
}

impl ProjectSpec {
    /// The DataSHIELD server's spec, when the project asks for one.
    pub fn datashield_enabled(&self) -> Option<&DataShieldSpec> {
        self.datashield
            .as_ref()
            .filter(|datashield| datashield.enabled)
    }
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct DataShieldTable {
    /// The table's name as DataSHIELD clients see it (an R-safe symbol).
    #[schemars(regex(pattern = "^[A-Za-z][A-Za-z0-9_]{0,62}$"))]
    pub name: String,
    /// The id of the released ingress airlock request that holds the file.
    #[schemars(length(min = 1, max = 100))]
    pub request: String,
    /// The file in that request: CSV or Parquet.
    #[schemars(length(min = 1, max = 255), regex(pattern = "^[^/]+\\.(csv|parquet)$"))]
    pub file: String,
    /// A data dictionary for it in the same request (`<name>.dictionary.yaml`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 255),
        regex(pattern = "^[^/]+\\.dictionary\\.yaml$")
    )]
    pub dictionary: Option<String>,
}

/// dsBase's disclosure settings (`nfilter.*`), by their R names in camelCase. Each may only be
/// stricter than dsBase's default unless `looserApproval` records who allowed otherwise.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = looser("nfilterTab", ">=", "3"))]
#[x_kube(validation = looser("nfilterSubset", ">=", "3"))]
#[x_kube(validation = looser("nfilterKnn", ">=", "3"))]
#[x_kube(validation = looser("nfilterNoise", ">=", "0.25"))]
#[x_kube(validation = looser("nfilterGlm", "<=", "0.33"))]
#[x_kube(validation = looser("nfilterString", "<=", "80"))]
#[x_kube(validation = looser("nfilterStringShort", "<=", "20"))]
#[x_kube(validation = looser("nfilterLevelsDensity", "<=", "0.33"))]
#[x_kube(validation = looser("nfilterLevelsMax", "<=", "40"))]
pub struct DataShieldSettings {
    /// `nfilter.tab`: the smallest non-zero cell count of a table (dsBase: 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub nfilter_tab: Option<u32>,
    /// `nfilter.subset`: the smallest subset (dsBase: 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub nfilter_subset: Option<u32>,
    /// `nfilter.glm`: the largest number of parameters as a fraction of the rows (dsBase: 0.33).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "super::schema::positive_number")]
    pub nfilter_glm: Option<f64>,
    /// `nfilter.string`: the longest string argument (dsBase: 80).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub nfilter_string: Option<u32>,
    /// `nfilter.stringShort`: the longest short string argument (dsBase: 20).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub nfilter_string_short: Option<u32>,
    /// `nfilter.kNN`: the nearest neighbours of the k-NN functions (dsBase: 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub nfilter_knn: Option<u32>,
    /// `nfilter.noise`: the noise added by the functions that add it (dsBase: 0.25).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "super::schema::positive_number")]
    pub nfilter_noise: Option<f64>,
    /// `nfilter.levels.density`: the largest ratio of factor levels to rows (dsBase: 0.33).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "super::schema::positive_number")]
    pub nfilter_levels_density: Option<f64>,
    /// `nfilter.levels.max`: the most levels of a factor (dsBase: 40).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub nfilter_levels_max: Option<u32>,
    /// The recorded approval (e.g. a committee reference) that allows settings looser than
    /// dsBase's defaults.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 200))]
    pub looser_approval: Option<String>,
}

/// The CEL rule that lets `field` be looser than dsBase's `default` only with an approval:
/// `direction` is the comparison a stricter (or equal) value passes.
fn looser(field: &str, direction: &str, default: &str) -> Rule {
    Rule::new(format!(
        "!has(self.{field}) || has(self.looserApproval) || self.{field} {direction} {default}"
    ))
    .message(Message::Message(format!(
        "{field} is looser than dsBase's default of {default}: a recorded approval reference \
         (looserApproval) is required"
    )))
}

/// Where a project is in its life.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, schemars::JsonSchema)]
pub enum ProjectPhase {
    /// Not approved yet, or before its start date.
    Pending,
    /// Members may work.
    Active,
    /// Paused by an admin: workspaces stopped, nothing new may start.
    Suspended,
    /// Past its end date: workspaces stopped, nothing new may start.
    Expired,
    /// Being torn down.
    Closing,
    /// Torn down; the object remains as the record.
    Closed,
    /// The specification cannot be acted on; see the Ready condition.
    Failed,
}

impl ProjectPhase {
    pub const ALL: [ProjectPhase; 7] = [
        Self::Pending,
        Self::Active,
        Self::Suspended,
        Self::Expired,
        Self::Closing,
        Self::Closed,
        Self::Failed,
    ];

    /// The phase as the status, the API and the pages write it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "Pending",
            Self::Active => "Active",
            Self::Suspended => "Suspended",
            Self::Expired => "Expired",
            Self::Closing => "Closing",
            Self::Closed => "Closed",
            Self::Failed => "Failed",
        }
    }
}

impl std::fmt::Display for ProjectPhase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProjectStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<ProjectPhase>,
    /// The namespace that holds the project's workspaces.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// `Ready`, `NamespaceReady`, `IsolationReady` and `QuotaReady`; `DataShieldReady` when the
    /// project has a DataSHIELD server.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The generation of the spec that this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Proof of teardown, once the project has been closed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub teardown: Option<TeardownRecord>,
    /// The DataSHIELD server, when `spec.datashield.enabled`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub datashield: Option<DataShieldStatus>,
}

/// Whether the project's DataSHIELD server answers, and with which tables.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DataShieldStatus {
    pub ready: bool,
    /// The tables it has loaded (empty until it is ready).
    #[serde(default)]
    pub tables: Vec<String>,
    /// Why it is not ready: `starting`, `stopped: project Suspended`, ….
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// What was deleted when a project was torn down, and when.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TeardownRecord {
    pub started_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<DateTime<Utc>>,
    /// The namespace that was deleted and confirmed gone.
    pub namespace: String,
    /// Every object deleted with it, as `kind/name` (volumes included).
    #[serde(default)]
    pub deleted: Vec<String>,
}
