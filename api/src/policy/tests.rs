use std::collections::BTreeSet;

use super::*;
use crate::identity::Credential;
use crate::resources::WorkspaceSpec;
use crate::resources::{Member, ProjectSpec};

fn project(name: &str) -> Project {
    let spec: ProjectSpec = serde_json::from_value(serde_json::json!({
        "title": "t", "purpose": "p", "startDate": "2026-01-01", "endDate": "2027-01-01",
        "resources": {"cpu": "1", "memory": "1Gi", "storage": "1Gi", "maxWorkspaces": 2},
    }))
    .unwrap();
    let mut p = Project::new(name, spec);
    p.spec.members = vec![
        Member {
            subject: "olivia".into(),
            role: MemberRole::Owner,
        },
        Member {
            subject: "alice".into(),
            role: MemberRole::Researcher,
        },
        Member {
            subject: "bob".into(),
            role: MemberRole::Researcher,
        },
    ];
    p
}

fn workspace(owner: &str) -> Workspace {
    let mut w = Workspace::new(
        "w",
        serde_json::from_value::<WorkspaceSpec>(
            serde_json::json!({"owner": owner, "template": "jupyter"}),
        )
        .unwrap(),
    );
    w.metadata.namespace = Some("trellis-demo".into());
    w
}

fn person(subject: &str, roles: &[PlatformRole]) -> Principal {
    Principal {
        subject: subject.into(),
        name: None,
        email: None,
        roles: roles.iter().copied().collect::<BTreeSet<_>>(),
        credential: Credential::Bearer,
    }
}

fn from_workspace(subject: &str, project: &str) -> Principal {
    Principal {
        credential: Credential::Workspace {
            project: project.into(),
            workspace: "w".into(),
        },
        ..person(subject, &[])
    }
}

/// Every action × caller, with the expected answer written out, so a change of policy
/// shows up here as a changed table.
#[test]
fn the_policy_table() {
    use Action::*;
    let p = project("demo");
    let alices = workspace("alice");
    let callers = [
        ("admin", person("root", &[PlatformRole::Admin])),
        ("owner", person("olivia", &[])),
        ("alice", person("alice", &[])),
        ("bob", person("bob", &[])),
        ("checker", person("carol", &[PlatformRole::OutputChecker])),
        ("steward", person("steward", &[PlatformRole::DataSteward])),
        ("outsider", person("eve", &[])),
        ("alice-in-workspace", from_workspace("alice", "demo")),
    ];
    // Columns: admin owner alice bob checker steward outsider alice-in-workspace.
    let table: [(Action, [bool; 8]); 14] = [
        (
            ListProjects,
            [true, true, true, true, true, true, true, true],
        ),
        (
            CreateProject,
            [true, false, false, false, false, false, false, false],
        ),
        (
            ReadProject,
            [true, true, true, true, false, false, false, true],
        ),
        (
            ApproveProject,
            [true, false, false, false, false, false, false, false],
        ),
        (
            EditMembers,
            [true, false, false, false, false, false, false, false],
        ),
        (
            SuspendProject,
            [true, false, false, false, false, false, false, false],
        ),
        (
            ResumeProject,
            [true, false, false, false, false, false, false, false],
        ),
        (
            CloseProject,
            [true, false, false, false, false, false, false, false],
        ),
        (
            ListWorkspaces,
            [true, true, true, true, false, false, false, true],
        ),
        (
            CreateWorkspace,
            [false, true, true, true, false, false, false, true],
        ),
        (
            ReadWorkspace,
            [true, true, true, false, false, false, false, true],
        ),
        (
            StartWorkspace,
            [false, false, true, false, false, false, false, true],
        ),
        (
            StopWorkspace,
            [true, false, true, false, false, false, false, true],
        ),
        (
            DeleteWorkspace,
            [true, false, true, false, false, false, false, true],
        ),
    ];
    for (action, expected) in table {
        for ((who, caller), allowed) in callers.iter().zip(expected) {
            let target = match action {
                ListProjects | CreateProject => Target::Platform,
                ReadWorkspace | StartWorkspace | StopWorkspace | DeleteWorkspace => {
                    Target::Workspace(&p, &alices)
                }
                _ => Target::Project(&p),
            };
            assert_eq!(
                decide(caller, action, target).allowed(),
                allowed,
                "{who} {}",
                action.name()
            );
        }
    }
}

#[test]
fn a_workspace_credential_stays_in_its_project() {
    let other = project("other");
    let mut member_elsewhere = other.clone();
    member_elsewhere.spec.members.push(Member {
        subject: "alice".into(),
        role: MemberRole::Owner,
    });
    let caller = from_workspace("alice", "demo");
    for action in Action::ALL {
        assert!(
            !decide(&caller, action, Target::Project(&member_elsewhere)).allowed(),
            "{action:?}"
        );
    }
    assert!(!decide(&caller, Action::CreateProject, Target::Platform).allowed());
}

#[test]
fn a_workspace_credential_never_has_admin_powers() {
    let mut caller = from_workspace("alice", "demo");
    caller.roles.insert(PlatformRole::Admin);
    let p = project("demo");
    assert!(!decide(&caller, Action::CloseProject, Target::Project(&p)).allowed());
}

#[test]
fn owners_see_all_workspaces_researchers_their_own() {
    let p = project("demo");
    assert_eq!(
        workspace_view(&person("olivia", &[]), &p),
        WorkspaceView::All
    );
    assert_eq!(
        workspace_view(&person("root", &[PlatformRole::Admin]), &p),
        WorkspaceView::All
    );
    assert_eq!(
        workspace_view(&person("alice", &[]), &p),
        WorkspaceView::Own
    );
}

#[test]
fn a_removed_member_loses_their_workspace() {
    let mut p = project("demo");
    p.spec.members.retain(|m| m.subject != "alice");
    let w = workspace("alice");
    let alice = person("alice", &[]);
    assert!(!decide(&alice, Action::StartWorkspace, Target::Workspace(&p, &w)).allowed());
    assert!(!decide(&alice, Action::ReadProject, Target::Project(&p)).allowed());
}

#[test]
fn airlock_access() {
    let p = project("demo");
    let alice = person("alice", &[]);
    let carol = person("carol", &[PlatformRole::OutputChecker]);
    let steward = person("steward", &[PlatformRole::DataSteward]);
    let eve = person("eve", &[]);
    let workspace = from_workspace("alice", "demo");
    assert!(airlock_create(&alice, &p, Direction::Egress).allowed());
    assert!(airlock_create(&workspace, &p, Direction::Egress).allowed());
    assert!(!airlock_create(&carol, &p, Direction::Egress).allowed());
    assert!(airlock_create(&steward, &p, Direction::Ingress).allowed());
    assert!(!airlock_create(&steward, &p, Direction::Egress).allowed());
    assert!(!airlock_create(&eve, &p, Direction::Ingress).allowed());
    assert!(!airlock_create(&from_workspace("alice", "other"), &p, Direction::Egress).allowed());

    assert!(airlock_list(&alice, Some(&p), "demo").allowed());
    assert!(airlock_list(&workspace, Some(&p), "demo").allowed());
    assert!(airlock_list(&person("root", &[PlatformRole::Admin]), None, "demo").allowed());
    assert!(!airlock_list(&carol, Some(&p), "demo").allowed());
    assert!(!airlock_list(&from_workspace("alice", "other"), Some(&p), "demo").allowed());
    assert!(airlock_read(&carol, Some(&p), "demo", "alice", Direction::Egress).allowed());
    assert!(!airlock_read(&steward, Some(&p), "demo", "alice", Direction::Egress).allowed());
    assert!(!airlock_read(&eve, Some(&p), "demo", "alice", Direction::Egress).allowed());
    assert!(
        airlock_read(
            &person("bob", &[]),
            Some(&p),
            "demo",
            "alice",
            Direction::Egress
        )
        .allowed()
    );
    assert!(
        airlock_read(&alice, None, "demo", "alice", Direction::Egress).allowed(),
        "the author, after the project is gone"
    );

    use AirlockState::*;
    let download = |who: &Principal, direction, state| {
        airlock_download(who, Some(&p), "demo", "alice", direction, state).allowed()
    };
    assert!(!download(&carol, Direction::Egress, Draft));
    assert!(download(&carol, Direction::Egress, InReview));
    let mut author_checker = carol.clone();
    author_checker.subject = "alice".into();
    assert!(!download(&author_checker, Direction::Egress, InReview));
    for state in [Draft, InReview, Reviewed, Approved] {
        assert!(!download(&alice, Direction::Egress, state), "{state:?}");
    }
    assert!(download(&alice, Direction::Egress, Released));
    assert!(!download(&workspace, Direction::Egress, Released));
    assert!(!download(&eve, Direction::Egress, Released));
    assert!(
        !download(&alice, Direction::Ingress, Released),
        "ingress data stays inside"
    );
    assert!(
        download(&workspace, Direction::Ingress, Released),
        "inputs of the project's workspaces"
    );
    assert!(!download(
        &from_workspace("alice", "other"),
        Direction::Ingress,
        Released
    ));
    assert!(!download(&workspace, Direction::Ingress, InReview));
}

#[test]
fn mismatched_targets_are_denied() {
    let admin = person("root", &[PlatformRole::Admin]);
    let p = project("demo");
    assert!(!decide(&admin, Action::CreateProject, Target::Project(&p)).allowed());
    assert!(!decide(&admin, Action::ReadWorkspace, Target::Project(&p)).allowed());
}

#[test]
fn only_the_owner_opens_a_workspace_through_the_gateway() {
    use crate::resources::ProjectStatus;
    let mut p = project("demo");
    p.status = Some(ProjectStatus {
        phase: Some(ProjectPhase::Active),
        ..ProjectStatus::default()
    });
    let w = workspace("alice");
    assert_eq!(gateway(&person("alice", &[]), &p, &w), Decision::Allow);
    for (who, caller) in [
        ("another researcher", person("bob", &[])),
        ("the project's owner", person("olivia", &[])),
        ("an admin", person("root", &[PlatformRole::Admin])),
        (
            "an output checker",
            person("carol", &[PlatformRole::OutputChecker]),
        ),
        ("an outsider", person("eve", &[])),
        ("alice's workspace itself", from_workspace("alice", "demo")),
    ] {
        assert!(!gateway(&caller, &p, &w).allowed(), "{who}");
    }
    // The owner, once removed from the project, or in a project that is not Active.
    let mut removed = p.clone();
    removed.spec.members.retain(|m| m.subject != "alice");
    assert!(!gateway(&person("alice", &[]), &removed, &w).allowed());
    for phase in [
        None,
        Some(ProjectPhase::Pending),
        Some(ProjectPhase::Suspended),
        Some(ProjectPhase::Expired),
        Some(ProjectPhase::Closing),
        Some(ProjectPhase::Closed),
    ] {
        let mut inactive = p.clone();
        inactive.status = Some(ProjectStatus {
            phase,
            ..ProjectStatus::default()
        });
        let decision = gateway(&person("alice", &[]), &inactive, &w);
        assert!(!decision.allowed(), "{phase:?}");
    }
    // An owner with an admin role is still just the owner; an admin who owns nothing is not.
    assert!(gateway(&person("alice", &[PlatformRole::Admin]), &p, &w).allowed());
}

#[test]
fn a_datashield_server_fetches_its_projects_released_ingress_files_and_nothing_else() {
    use AirlockState::*;
    let p = project("demo");
    let server = |project: &str| Principal {
        credential: Credential::DataShield {
            project: project.into(),
        },
        ..person(&format!("DataSHIELD server of {project}"), &[])
    };
    let own = server("demo");
    let download = |who: &Principal, direction, state| {
        airlock_download(who, Some(&p), "demo", "steward", direction, state).allowed()
    };
    assert!(download(&own, Direction::Ingress, Released));
    for state in [Draft, InReview, Reviewed, Approved, Returned, Rejected] {
        assert!(!download(&own, Direction::Ingress, state), "{state:?}");
    }
    assert!(!download(&own, Direction::Egress, Released));
    assert!(!download(&server("other"), Direction::Ingress, Released));
    assert!(airlock_read(&own, Some(&p), "demo", "steward", Direction::Ingress).allowed());
    assert!(!airlock_read(&own, Some(&p), "demo", "alice", Direction::Egress).allowed());
    assert!(!airlock_read(&server("other"), Some(&p), "demo", "s", Direction::Ingress).allowed());
    assert!(!airlock_list(&own, Some(&p), "demo").allowed());
    assert!(!airlock_create(&own, &p, Direction::Ingress).allowed());
    assert!(!airlock_create(&own, &p, Direction::Egress).allowed());
    for action in Action::ALL {
        let target = match action {
            Action::ListProjects | Action::CreateProject => Target::Platform,
            _ => Target::Project(&p),
        };
        if action == Action::ListProjects {
            continue;
        }
        assert!(!decide(&own, action, target).allowed(), "{action:?}");
    }
}
