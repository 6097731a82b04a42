//! Who is calling: people signed in through the OpenID Provider (browser session or bearer token)
//! and workspaces (their projected service-account token). Everything here ends in a
//! [`Principal`]; what a principal may do is decided in [`crate::policy`] alone.

pub mod bearer;
pub mod extract;
pub mod oidc;
pub mod session;
pub mod workspace_token;

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use crate::config::RoleGroups;

/// A platform role, granted by membership of a provider group.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum PlatformRole {
    Admin,
    OutputChecker,
    DataSteward,
}

impl PlatformRole {
    pub fn as_str(self) -> &'static str {
        match self {
            PlatformRole::Admin => "admin",
            PlatformRole::OutputChecker => "output-checker",
            PlatformRole::DataSteward => "data-steward",
        }
    }
}

/// How the caller proved who they are.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Credential {
    /// A browser session from an authorization-code sign-in.
    Session,
    /// A bearer token from the OpenID Provider.
    Bearer,
    /// A workspace's projected service-account token: the caller acts as the workspace's owner
    /// within that one project, and with no platform role.
    Workspace { project: String, workspace: String },
    /// The projected token of a project's DataSHIELD server pod (its init container): it may
    /// fetch the project's released ingress files, the tables the server holds, and nothing else.
    DataShield { project: String },
    /// A personal access token (`trellis_pat_…`), presented to a project's DataSHIELD server.
    /// It is accepted there and nowhere else: the API's extractors refuse it, and the policy
    /// allows it nothing but [`crate::policy::Action::UseDataShield`].
    AccessToken { id: String },
}

/// An authenticated caller.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Principal {
    /// The identity matched against project membership and workspace ownership.
    pub subject: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    pub roles: BTreeSet<PlatformRole>,
    pub credential: Credential,
}

impl Principal {
    pub fn has(&self, role: PlatformRole) -> bool {
        self.roles.contains(&role)
    }

    /// The only project a workspace credential may act in; `None` for people.
    pub fn project_scope(&self) -> Option<&str> {
        match &self.credential {
            Credential::Workspace { project, .. } | Credential::DataShield { project } => {
                Some(project)
            }
            _ => None,
        }
    }

    /// Role names for the audit log.
    pub fn role_names(&self) -> Vec<String> {
        self.roles.iter().map(|r| r.as_str().to_string()).collect()
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ClaimsError {
    #[error("the token has no `{0}` claim")]
    MissingSubject(String),
    #[error(
        "the `{0}` claim is not a usable identity (a non-empty string without spaces, at most 255 characters)"
    )]
    BadSubject(String),
}

/// Which claims name a person and their groups, and which groups grant which role.
#[derive(Clone, Debug)]
pub struct ClaimMapping {
    pub subject_claim: String,
    pub groups_claim: String,
    pub roles: RoleGroups,
}

impl ClaimMapping {
    /// The principal that verified `claims` describe.
    pub fn principal(
        &self,
        claims: &Map<String, Value>,
        credential: Credential,
    ) -> Result<Principal, ClaimsError> {
        let subject = match claims.get(&self.subject_claim) {
            None | Some(Value::Null) => {
                return Err(ClaimsError::MissingSubject(self.subject_claim.clone()));
            }
            Some(Value::String(s)) if valid_subject(s) => s.clone(),
            Some(_) => return Err(ClaimsError::BadSubject(self.subject_claim.clone())),
        };
        let groups: BTreeSet<&str> = match claims.get(&self.groups_claim) {
            Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
            Some(Value::String(single)) => BTreeSet::from([single.as_str()]),
            _ => BTreeSet::new(),
        };
        let granted = |role_groups: &BTreeSet<String>| {
            role_groups.iter().any(|g| groups.contains(g.as_str()))
        };
        let mut roles = BTreeSet::new();
        if granted(&self.roles.admin) {
            roles.insert(PlatformRole::Admin);
        }
        if granted(&self.roles.output_checker) {
            roles.insert(PlatformRole::OutputChecker);
        }
        if granted(&self.roles.data_steward) {
            roles.insert(PlatformRole::DataSteward);
        }
        let text = |claim: &str| claims.get(claim).and_then(Value::as_str).map(String::from);
        Ok(Principal {
            subject,
            name: text("name"),
            email: text("email"),
            roles,
            credential,
        })
    }
}

/// The same rule as `Project.spec.members[].subject` in the CRD.
pub fn valid_subject(subject: &str) -> bool {
    !subject.is_empty() && subject.len() <= 255 && !subject.chars().any(char::is_whitespace)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn mapping() -> ClaimMapping {
        ClaimMapping {
            subject_claim: "preferred_username".into(),
            groups_claim: "groups".into(),
            roles: RoleGroups::default(),
        }
    }

    fn claims(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn groups_map_to_platform_roles() {
        let p = mapping()
            .principal(
                &claims(json!({"preferred_username": "carol", "name": "Carol",
                    "groups": ["trellis-output-checkers", "unrelated", "trellis-data-stewards"]})),
                Credential::Bearer,
            )
            .unwrap();
        assert_eq!(p.subject, "carol");
        assert_eq!(p.name.as_deref(), Some("Carol"));
        assert_eq!(
            p.roles,
            BTreeSet::from([PlatformRole::OutputChecker, PlatformRole::DataSteward])
        );
    }

    #[test]
    fn no_groups_means_no_roles() {
        for groups in [json!(null), json!([]), json!(42), json!(["trellis-admin"])] {
            let p = mapping()
                .principal(
                    &claims(json!({"preferred_username": "alice", "groups": groups})),
                    Credential::Bearer,
                )
                .unwrap();
            assert!(p.roles.is_empty(), "{groups}");
        }
    }

    #[test]
    fn a_single_group_string_counts() {
        let p = mapping()
            .principal(
                &claims(json!({"preferred_username": "admin", "groups": "trellis-admins"})),
                Credential::Bearer,
            )
            .unwrap();
        assert!(p.has(PlatformRole::Admin));
    }

    #[test]
    fn unusable_subjects_are_refused() {
        let m = mapping();
        assert_eq!(
            m.principal(&claims(json!({"sub": "x"})), Credential::Bearer),
            Err(ClaimsError::MissingSubject("preferred_username".into()))
        );
        for bad in [
            json!(""),
            json!("two words"),
            json!(7),
            json!("x".repeat(256)),
        ] {
            assert_eq!(
                m.principal(
                    &claims(json!({"preferred_username": bad})),
                    Credential::Bearer
                ),
                Err(ClaimsError::BadSubject("preferred_username".into()))
            );
        }
    }

    #[test]
    fn workspace_credentials_are_scoped_to_their_project() {
        let p = mapping()
            .principal(
                &claims(json!({"preferred_username": "alice"})),
                Credential::Workspace {
                    project: "demo".into(),
                    workspace: "w".into(),
                },
            )
            .unwrap();
        assert_eq!(p.project_scope(), Some("demo"));
    }
}
