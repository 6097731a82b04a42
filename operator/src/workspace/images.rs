//! The images a pod in a project may run: every WorkspaceTemplate's image, the Trellis CLI and
//! the DataSHIELD server. The
//! operator publishes them in a ConfigMap that the admission policy in `policies/admission/`
//! reads, so an image no template offers is refused in every project namespace.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Client;
use kube::api::Api;
use kube::runtime::WatchStreamExt;
use kube::runtime::reflector;
use kube::runtime::watcher::{self, Event, watcher};
use tracing::{info, warn};

use crate::config::OperatorConfig;
use crate::metrics::Metrics;
use crate::reconcile::apply::apply_if_changed;
use crate::resources::WorkspaceTemplate;
use crate::resources::names::{MANAGED_BY, MANAGED_BY_LABEL};

/// The ConfigMap the admission policy takes as its parameter.
pub const ALLOWED_IMAGES: &str = "trellis-workspace-images";

pub fn allowed_images(templates: &[Arc<WorkspaceTemplate>], config: &OperatorConfig) -> ConfigMap {
    let images: BTreeSet<&str> = templates
        .iter()
        .map(|template| template.spec.image.as_str())
        .chain([config.cli_image.as_str(), config.datashield_image.as_str()])
        .collect();
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(ALLOWED_IMAGES.to_owned()),
            namespace: Some(config.control_plane_namespace.clone()),
            labels: Some(BTreeMap::from([(
                MANAGED_BY_LABEL.to_owned(),
                MANAGED_BY.to_owned(),
            )])),
            ..ObjectMeta::default()
        },
        data: Some(BTreeMap::from([(
            "images".to_owned(),
            images.into_iter().collect::<Vec<_>>().join("\n"),
        )])),
        ..ConfigMap::default()
    }
}

/// Keeps the allowed-images ConfigMap in step with the templates.
pub async fn publish(client: Client, config: OperatorConfig, metrics: Arc<Metrics>) {
    let (store, writer) = reflector::store();
    let mut events = watcher(
        Api::<WorkspaceTemplate>::all(client.clone()),
        watcher::Config::default(),
    )
    .default_backoff()
    .reflect(writer)
    .boxed();
    let config_maps: Api<ConfigMap> = Api::namespaced(client, &config.control_plane_namespace);
    let mut published: Option<ConfigMap> = None;
    let mut retry = false;
    loop {
        // After a failed write (e.g. the namespace does not exist yet) try again in a while,
        // even if no template changes.
        let event = if retry {
            tokio::select! {
                event = events.next() => event,
                () = tokio::time::sleep(Duration::from_secs(5)) => Some(Ok(Event::InitDone)),
            }
        } else {
            events.next().await
        };
        match event {
            None => return,
            // Wait for the whole list before publishing, so no image is dropped for a moment.
            Some(Ok(Event::Init | Event::InitApply(_))) => continue,
            Some(Ok(_)) => {}
            Some(Err(error)) => {
                warn!(%error, "watching WorkspaceTemplates failed; retrying");
                continue;
            }
        }
        let wanted = allowed_images(&store.state(), &config);
        let current = match &published {
            Some(published) => Ok(Some(published.clone())),
            None => config_maps.get_opt(ALLOWED_IMAGES).await,
        };
        let result = match current {
            Ok(current) => apply_if_changed(&config_maps, current.as_ref(), &wanted).await,
            Err(error) => Err(error),
        };
        match result {
            Ok(wrote) => {
                if wrote {
                    metrics.wrote("templates");
                    info!(images = ?wanted.data, "published the images workspaces may run");
                }
                published = Some(wanted);
                retry = false;
            }
            Err(error) => {
                warn!(%error, "publishing the allowed images failed; retrying in 5s");
                retry = true;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn template(name: &str, image: &str) -> Arc<WorkspaceTemplate> {
        Arc::new(
            serde_json::from_value(json!({
                "apiVersion": "trellis.dev/v1alpha1", "kind": "WorkspaceTemplate", "metadata": {"name": name},
                "spec": {"displayName": name, "image": image, "port": 8888,
                         "resources": {"default": {"cpu": "1", "memory": "1Gi"}, "max": {"cpu": "1", "memory": "1Gi"}},
                         "defaultStorage": "1Gi"},
            }))
            .unwrap(),
        )
    }

    #[test]
    fn every_template_image_the_cli_and_datashield_are_allowed_once_in_a_stable_order() {
        let templates = [
            template("rstudio", "rocker/rstudio:4.5.1"),
            template("jupyter", "quay.io/jupyter/scipy-notebook:2026-10-20"),
            template("jupyter-copy", "quay.io/jupyter/scipy-notebook:2026-10-20"),
        ];
        let config = OperatorConfig {
            cli_image: "trellis/cli:0.1.0".into(),
            datashield_image: "trellis/datashield:0.1.0".into(),
            ..OperatorConfig::default()
        };
        let config_map = allowed_images(&templates, &config);
        assert_eq!(
            config_map.metadata.namespace.as_deref(),
            Some("trellis-system")
        );
        assert_eq!(
            config_map.data.unwrap()["images"],
            "quay.io/jupyter/scipy-notebook:2026-10-20\nrocker/rstudio:4.5.1\ntrellis/cli:0.1.0\n\
             trellis/datashield:0.1.0"
        );
    }
}
