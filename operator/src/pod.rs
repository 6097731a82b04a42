//! What every pod the operator runs in a project shares: the hardened security contexts, the
//! short-lived Trellis token the in-project CLI calls the API with, and small builders of
//! mounts and environment variables. Pure functions.

use k8s_openapi::api::core::v1::{
    Capabilities, EnvVar, PodSecurityContext, ProjectedVolumeSource, SeccompProfile,
    SecurityContext, ServiceAccountTokenProjection, Volume, VolumeMount, VolumeProjection,
};

use crate::resources::names::TOKEN_AUDIENCE;

/// Lifetime of the Trellis token; the kubelet renews it well before it expires.
pub const TOKEN_SECONDS: i64 = 3600;
/// Where the Trellis token is mounted (the file `token` in it).
pub const TOKEN_DIR: &str = "/var/run/secrets/trellis";
/// The name of the Trellis token's volume.
pub const TOKEN_VOLUME: &str = "trellis-token";

/// A container that cannot gain privileges: no escalation, every capability dropped, non-root,
/// RuntimeDefault seccomp (what Pod Security `restricted` and the admission policy demand).
pub fn hardened(read_only_root: bool) -> SecurityContext {
    SecurityContext {
        allow_privilege_escalation: Some(false),
        privileged: Some(false),
        capabilities: Some(Capabilities {
            drop: Some(vec!["ALL".into()]),
            add: None,
        }),
        run_as_non_root: Some(true),
        read_only_root_filesystem: Some(read_only_root),
        seccomp_profile: Some(SeccompProfile {
            type_: "RuntimeDefault".into(),
            ..SeccompProfile::default()
        }),
        ..SecurityContext::default()
    }
}

/// The pod-level half: a fixed non-root user and group, which also owns the mounted volumes.
pub fn pod_security(uid: i64, gid: i64) -> PodSecurityContext {
    PodSecurityContext {
        run_as_non_root: Some(true),
        run_as_user: Some(uid),
        run_as_group: Some(gid),
        fs_group: Some(gid),
        seccomp_profile: Some(SeccompProfile {
            type_: "RuntimeDefault".into(),
            ..SeccompProfile::default()
        }),
        ..PodSecurityContext::default()
    }
}

/// The projected service-account token for the Trellis API (audience `trellis`, checked with
/// TokenReview), readable by the pod's group only.
pub fn token_volume() -> Volume {
    Volume {
        name: TOKEN_VOLUME.into(),
        projected: Some(ProjectedVolumeSource {
            sources: Some(vec![VolumeProjection {
                service_account_token: Some(ServiceAccountTokenProjection {
                    audience: Some(TOKEN_AUDIENCE.into()),
                    expiration_seconds: Some(TOKEN_SECONDS),
                    path: "token".into(),
                }),
                ..VolumeProjection::default()
            }]),
            default_mode: Some(0o440),
        }),
        ..Volume::default()
    }
}

/// `readOnly: false` is left out, as the apiserver stores it, so that the stored object
/// compares equal and nothing is re-applied.
pub fn mount(name: &str, path: &str, read_only: bool) -> VolumeMount {
    VolumeMount {
        name: name.to_owned(),
        mount_path: path.to_owned(),
        read_only: read_only.then_some(true),
        ..VolumeMount::default()
    }
}

pub fn env(name: &str, value: impl Into<String>) -> EnvVar {
    EnvVar {
        name: name.to_owned(),
        value: Some(value.into()),
        ..EnvVar::default()
    }
}
