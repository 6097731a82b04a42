//! Calls from inside a workspace carry the pod's projected service-account token (audience
//! `trellis`). The apiserver checks it (TokenReview); the token is bound to one pod, whose
//! workspace label and namespace say which workspace, and so which owner and project, it speaks
//! for. A project's DataSHIELD server pod has such a token too (in its init container only),
//! and speaks for that server alone.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, PostParams};

use super::session::digest;
use crate::cluster::Cluster;
use crate::resources::names::{
    COMPONENT_LABEL, DATASHIELD_COMPONENT, DATASHIELD_NAME, PROJECT_LABEL,
    WORKSPACE_SERVICE_ACCOUNT, namespace_name,
};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WorkspaceTokenError {
    #[error("the token was not accepted by the cluster")]
    Rejected,
    #[error("the token is not meant for Trellis")]
    WrongAudience,
    #[error("the token does not belong to a Trellis workspace")]
    NotAWorkspace,
    #[error("the cluster could not check the token")]
    Unavailable,
}

/// The pod a token speaks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PodIdentity {
    Workspace {
        project: String,
        workspace: String,
        owner: String,
    },
    DataShield {
        project: String,
    },
}

/// Service-account tokens are JWTs whose `iss` is the cluster's, not the provider's: this tells
/// the two kinds of bearer token apart without trusting anything else in the token.
pub fn looks_like_service_account_token(
    claims_issuer: Option<&str>,
    provider_issuer: &str,
) -> bool {
    claims_issuer
        .is_some_and(|iss| iss.trim_end_matches('/') != provider_issuer.trim_end_matches('/'))
}

pub struct WorkspaceTokens {
    audience: String,
    cache_ttl: Duration,
    cache: Mutex<HashMap<String, (Instant, PodIdentity)>>,
}

impl WorkspaceTokens {
    pub fn new(audience: String, cache_ttl: Duration) -> Self {
        Self {
            audience,
            cache_ttl,
            cache: Mutex::default(),
        }
    }

    pub async fn review(
        &self,
        cluster: &Cluster,
        token: &str,
    ) -> Result<PodIdentity, WorkspaceTokenError> {
        let key = digest(token);
        if let Some((at, identity)) = self
            .cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
            && at.elapsed() < self.cache_ttl
        {
            return Ok(identity.clone());
        }
        let identity = self.review_uncached(cluster, token).await?;
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        cache.retain(|_, (at, _)| at.elapsed() < self.cache_ttl);
        cache.insert(key, (Instant::now(), identity.clone()));
        Ok(identity)
    }

    async fn review_uncached(
        &self,
        cluster: &Cluster,
        token: &str,
    ) -> Result<PodIdentity, WorkspaceTokenError> {
        let review = TokenReview {
            spec: TokenReviewSpec {
                token: token.to_string(),
                audiences: Some(vec![self.audience.clone()]),
            },
            ..Default::default()
        };
        let reviews: Api<TokenReview> = Api::all(cluster.client());
        let answer = reviews
            .create(&PostParams::default(), &review)
            .await
            .map_err(|error| {
                tracing::warn!(%error, "TokenReview failed");
                WorkspaceTokenError::Unavailable
            })?;
        let status = answer.status.unwrap_or_default();
        if status.authenticated != Some(true) {
            return Err(WorkspaceTokenError::Rejected);
        }
        if !status
            .audiences
            .unwrap_or_default()
            .iter()
            .any(|a| a == &self.audience)
        {
            return Err(WorkspaceTokenError::WrongAudience);
        }
        let user = status.user.unwrap_or_default();
        let username = user.username.unwrap_or_default();
        let extra = user.extra.unwrap_or_default();
        let first = |key: &str| extra.get(key).and_then(|v| v.first()).cloned();
        let (pod_name, pod_uid) = match (
            first("authentication.kubernetes.io/pod-name"),
            first("authentication.kubernetes.io/pod-uid"),
        ) {
            (Some(name), Some(uid)) => (name, uid),
            _ => return Err(WorkspaceTokenError::NotAWorkspace),
        };
        let (namespace, account) =
            service_account(&username).ok_or(WorkspaceTokenError::NotAWorkspace)?;
        if account != WORKSPACE_SERVICE_ACCOUNT && account != DATASHIELD_NAME {
            return Err(WorkspaceTokenError::NotAWorkspace);
        }
        let pods: Api<Pod> = Api::namespaced(cluster.client(), namespace);
        let pod = pods
            .get_opt(&pod_name)
            .await
            .map_err(|_| WorkspaceTokenError::Unavailable)?
            .ok_or(WorkspaceTokenError::NotAWorkspace)?;
        // The uid guards against a token of a deleted pod whose name was reused.
        if pod.metadata.uid.as_deref() != Some(pod_uid.as_str()) {
            return Err(WorkspaceTokenError::NotAWorkspace);
        }
        let labels = pod.metadata.labels.unwrap_or_default();
        if account == DATASHIELD_NAME {
            return datashield_identity(cluster, namespace, &labels);
        }
        let (Some(project), Some(workspace)) = (
            labels.get("trellis.dev/project").cloned(),
            labels.get("trellis.dev/workspace").cloned(),
        ) else {
            return Err(WorkspaceTokenError::NotAWorkspace);
        };
        // The labels are only trusted together with the namespace the operator made for them.
        let owned = cluster
            .workspace(&project, &workspace)
            .filter(|_| crate::resources::names::namespace_name(&project) == namespace)
            .ok_or(WorkspaceTokenError::NotAWorkspace)?;
        Ok(PodIdentity::Workspace {
            owner: owned.spec.owner.clone(),
            project,
            workspace,
        })
    }
}

/// A DataSHIELD server pod: its labels are trusted only in the namespace of the project they
/// name, and only while that project exists.
fn datashield_identity(
    cluster: &Cluster,
    namespace: &str,
    labels: &std::collections::BTreeMap<String, String>,
) -> Result<PodIdentity, WorkspaceTokenError> {
    let component = labels.get(COMPONENT_LABEL).map(String::as_str);
    let project = labels
        .get(PROJECT_LABEL)
        .filter(|_| component == Some(DATASHIELD_COMPONENT))
        .filter(|project| namespace_name(project) == namespace)
        .ok_or(WorkspaceTokenError::NotAWorkspace)?;
    cluster
        .project(project)
        .map(|_| PodIdentity::DataShield {
            project: project.clone(),
        })
        .ok_or(WorkspaceTokenError::NotAWorkspace)
}

/// `(namespace, account)` of `system:serviceaccount:<namespace>:<account>`.
pub fn service_account(username: &str) -> Option<(&str, &str)> {
    let rest = username.strip_prefix("system:serviceaccount:")?;
    let (namespace, name) = rest.split_once(':')?;
    (!namespace.is_empty() && !name.is_empty()).then_some((namespace, name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_service_account_user_name_gives_its_namespace_and_account() {
        assert_eq!(
            service_account("system:serviceaccount:trellis-demo:workspace"),
            Some(("trellis-demo", "workspace"))
        );
        for other in [
            "system:serviceaccount::workspace",
            "system:serviceaccount:trellis-demo:",
            "alice",
            "system:node:n1",
        ] {
            assert_eq!(service_account(other), None, "{other}");
        }
    }

    #[test]
    fn tokens_from_other_issuers_are_service_account_tokens() {
        let provider = "http://127.0.0.1:5556/dex";
        assert!(!looks_like_service_account_token(
            Some("http://127.0.0.1:5556/dex/"),
            provider
        ));
        assert!(looks_like_service_account_token(
            Some("https://kubernetes.default.svc"),
            provider
        ));
        assert!(!looks_like_service_account_token(None, provider));
    }
}
