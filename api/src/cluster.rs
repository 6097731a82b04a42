//! The Kubernetes side of the API: watch caches of Projects, Workspaces and WorkspaceTemplates
//! (so deciding who may do what needs no API round trip) and the writes that change them.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::{Client, ResourceExt};
use serde_json::Value;
use trellis_operator::reconcile::cache::reflect;

use crate::resources::Project;
use crate::resources::Workspace;
use crate::resources::WorkspaceTemplate;
use crate::resources::names::{
    API_FIELD_MANAGER as FIELD_MANAGER, LAST_ACTIVITY_ANNOTATION, namespace_name,
};

#[derive(Clone)]
pub struct Cluster {
    client: Client,
    projects: Store<Project>,
    workspaces: Store<Workspace>,
    templates: Store<WorkspaceTemplate>,
}

impl Cluster {
    /// Starts the watch caches; they run until the process ends.
    pub fn start(client: Client) -> Self {
        let (projects, project_events) = reflect(
            Api::<Project>::all(client.clone()),
            watcher::Config::default(),
        );
        let (workspaces, workspace_events) = reflect(
            Api::<Workspace>::all(client.clone()),
            watcher::Config::default(),
        );
        // Templates are read by the gateway only (blocked paths, port); `ready` does not wait
        // for them, so the API serves everything else even before they are listed.
        let (templates, template_events) = reflect(
            Api::<WorkspaceTemplate>::all(client.clone()),
            watcher::Config::default(),
        );
        tokio::spawn(template_events.for_each(|event| async move {
            if let Err(error) = event {
                tracing::warn!(%error, "workspace template watch interrupted; retrying");
            }
        }));
        tokio::spawn(project_events.for_each(|event| async move {
            if let Err(error) = event {
                tracing::warn!(%error, "project watch interrupted; retrying");
            }
        }));
        tokio::spawn(workspace_events.for_each(|event| async move {
            if let Err(error) = event {
                tracing::warn!(%error, "workspace watch interrupted; retrying");
            }
        }));
        Self {
            client,
            projects,
            workspaces,
            templates,
        }
    }

    pub fn client(&self) -> Client {
        self.client.clone()
    }

    /// Whether both caches hold a complete first listing.
    pub async fn ready(&self) -> bool {
        use futures::FutureExt;
        self.projects.wait_until_ready().now_or_never().is_some()
            && self.workspaces.wait_until_ready().now_or_never().is_some()
    }

    pub fn project(&self, name: &str) -> Option<Arc<Project>> {
        self.projects.get(&ObjectRef::new(name))
    }

    pub fn projects(&self) -> Vec<Arc<Project>> {
        let mut all = self.projects.state();
        all.sort_by_key(|p| p.name_any());
        all
    }

    pub fn workspace(&self, project: &str, name: &str) -> Option<Arc<Workspace>> {
        self.workspaces
            .get(&ObjectRef::new(name).within(&namespace_name(project)))
    }

    pub fn workspaces(&self, project: &str) -> Vec<Arc<Workspace>> {
        let namespace = namespace_name(project);
        let mut found: Vec<_> = self
            .workspaces
            .state()
            .into_iter()
            .filter(|w| w.metadata.namespace.as_deref() == Some(namespace.as_str()))
            .collect();
        found.sort_by_key(|w| w.name_any());
        found
    }

    /// A WorkspaceTemplate, or `None` when it does not exist; `Err` while the cache has not
    /// listed the templates yet (an absent template cannot be told from one not yet seen).
    pub fn template(&self, name: &str) -> Result<Option<Arc<WorkspaceTemplate>>, NotListedYet> {
        use futures::FutureExt;
        if self.templates.wait_until_ready().now_or_never().is_none() {
            return Err(NotListedYet);
        }
        Ok(self.templates.get(&ObjectRef::new(name)))
    }

    /// Records the gateway's latest traffic on a workspace (`trellis.dev/last-activity`), for
    /// the operator's idle shutdown. A merge patch of one annotation: it never conflicts.
    pub async fn record_activity(
        &self,
        project: &str,
        name: &str,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), kube::Error> {
        let patch = serde_json::json!({ "metadata": { "annotations": {
            LAST_ACTIVITY_ANNOTATION: at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        } } });
        let params = PatchParams {
            field_manager: Some(FIELD_MANAGER.into()),
            ..Default::default()
        };
        self.workspace_api(project)
            .patch(name, &params, &Patch::Merge(&patch))
            .await?;
        Ok(())
    }

    fn project_api(&self) -> Api<Project> {
        Api::all(self.client.clone())
    }

    fn workspace_api(&self, project: &str) -> Api<Workspace> {
        Api::namespaced(self.client.clone(), &namespace_name(project))
    }

    pub async fn create_project(&self, project: &Project) -> Result<Project, kube::Error> {
        let created = self
            .project_api()
            .create(
                &PostParams {
                    field_manager: Some(FIELD_MANAGER.into()),
                    ..Default::default()
                },
                project,
            )
            .await?;
        self.await_project(&created).await;
        Ok(created)
    }

    /// A JSON merge patch of a project's spec (lists are replaced whole, as PUT promises).
    /// Not conditional on a resourceVersion: the operator's status writes move it constantly,
    /// and every change here sets fields outright, so the last admin's change wins.
    pub async fn patch_project(&self, name: &str, spec: Value) -> Result<Project, kube::Error> {
        let patch = serde_json::json!({ "spec": spec });
        let params = PatchParams {
            field_manager: Some(FIELD_MANAGER.into()),
            ..Default::default()
        };
        let patched = self
            .project_api()
            .patch(name, &params, &Patch::Merge(&patch))
            .await?;
        self.await_project(&patched).await;
        Ok(patched)
    }

    pub async fn create_workspace(
        &self,
        project: &str,
        workspace: &Workspace,
    ) -> Result<Workspace, kube::Error> {
        let created = self
            .workspace_api(project)
            .create(
                &PostParams {
                    field_manager: Some(FIELD_MANAGER.into()),
                    ..Default::default()
                },
                workspace,
            )
            .await?;
        self.await_workspace(project, &created).await;
        Ok(created)
    }

    pub async fn set_workspace_running(
        &self,
        project: &str,
        name: &str,
        running: bool,
    ) -> Result<Workspace, kube::Error> {
        let patch = serde_json::json!({ "spec": { "running": running } });
        let params = PatchParams {
            field_manager: Some(FIELD_MANAGER.into()),
            ..Default::default()
        };
        let patched = self
            .workspace_api(project)
            .patch(name, &params, &Patch::Merge(&patch))
            .await?;
        self.await_workspace(project, &patched).await;
        Ok(patched)
    }

    pub async fn delete_workspace(&self, project: &str, name: &str) -> Result<(), kube::Error> {
        self.workspace_api(project)
            .delete(name, &DeleteParams::foreground())
            .await?;
        Ok(())
    }

    /// Waits briefly until the cache shows our own write, so that the caller's next read sees
    /// it. A slow watch only delays this, never fails the call.
    async fn await_project(&self, written: &Project) {
        let reference = ObjectRef::from_obj(written);
        let version = written.resource_version();
        self.await_version(
            || {
                self.projects
                    .get(&reference)
                    .and_then(|p| p.resource_version())
            },
            version,
        )
        .await;
    }

    async fn await_workspace(&self, project: &str, written: &Workspace) {
        let reference = ObjectRef::new(&written.name_any()).within(&namespace_name(project));
        let version = written.resource_version();
        self.await_version(
            || {
                self.workspaces
                    .get(&reference)
                    .and_then(|w| w.resource_version())
            },
            version,
        )
        .await;
    }

    async fn await_version(&self, cached: impl Fn() -> Option<String>, written: Option<String>) {
        let Some(written) = written else { return };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
        while tokio::time::Instant::now() < deadline {
            // Resource versions are opaque; a cached version that is no longer ours means the
            // object moved on past our write, which also includes it.
            match cached() {
                Some(version) if version == written || newer(&version, &written) => return,
                _ => tokio::time::sleep(Duration::from_millis(5)).await,
            }
        }
    }
}

/// The WorkspaceTemplate cache has not listed the templates yet (just started, or not allowed
/// to list them).
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the workspace templates have not been read from the cluster yet")]
pub struct NotListedYet;

/// Whether `a` is a later resource version than `b`. Versions are opaque to clients, but etcd's
/// are integers; if they are not, we do not claim to know.
fn newer(a: &str, b: &str) -> bool {
    matches!((a.parse::<u64>(), b.parse::<u64>()), (Ok(a), Ok(b)) if a > b)
}
