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
        Member {
            subject: "ann".into(),
            role: MemberRole::Analyst,
        },
    ];
    p
}

fn active(p: Project) -> Project {
    in_phase(&p, Some(ProjectPhase::Active))
}

fn in_phase(p: &Project, phase: Option<ProjectPhase>) -> Project {
    let mut p = p.clone();
    p.status = Some(crate::resources::ProjectStatus {
        phase,
        ..Default::default()
    });
    p
}

/// Every state a project can be in but Active (and not yet seen by the operator).
const NOT_ACTIVE: [Option<ProjectPhase>; 7] = [
    None,
    Some(ProjectPhase::Pending),
    Some(ProjectPhase::Suspended),
    Some(ProjectPhase::Expired),
    Some(ProjectPhase::Closing),
    Some(ProjectPhase::Closed),
    Some(ProjectPhase::Failed),
];

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
    let p = active(project("demo"));
    let alices = workspace("alice");
    let callers = [
        ("admin", person("root", &[PlatformRole::Admin])),
        ("owner", person("olivia", &[])),
        ("alice", person("alice", &[])),
        ("bob", person("bob", &[])),
        ("analyst", person("ann", &[])),
        ("checker", person("carol", &[PlatformRole::OutputChecker])),
        ("steward", person("steward", &[PlatformRole::DataSteward])),
        ("outsider", person("eve", &[])),
        ("alice-in-workspace", from_workspace("alice", "demo")),
    ];
    // Columns: admin owner alice bob analyst checker steward outsider alice-in-workspace.
    let table: [(Action, [bool; 9]); 15] = [
        (
            ListProjects,
            [true, true, true, true, true, true, true, true, true],
        ),
        (
            CreateProject,
            [true, false, false, false, false, false, false, false, false],
        ),
        (
            ReadProject,
            [true, true, true, true, true, false, false, false, true],
        ),
        (
            ApproveProject,
            [true, false, false, false, false, false, false, false, false],
        ),
        (
            EditMembers,
            [true, false, false, false, false, false, false, false, false],
        ),
        (
            SuspendProject,
            [true, false, false, false, false, false, false, false, false],
        ),
        (
            ResumeProject,
            [true, false, false, false, false, false, false, false, false],
        ),
        (
            CloseProject,
            [true, false, false, false, false, false, false, false, false],
        ),
        (
            ListWorkspaces,
            [true, true, true, true, true, false, false, false, true],
        ),
        (
            CreateWorkspace,
            [false, true, true, true, false, false, false, false, true],
        ),
        (
            ReadWorkspace,
            [true, true, true, false, false, false, false, false, true],
        ),
        (
            StartWorkspace,
            [false, false, true, false, false, false, false, false, true],
        ),
        (
            StopWorkspace,
            [true, false, true, false, false, false, false, false, true],
        ),
        (
            DeleteWorkspace,
            [true, false, true, false, false, false, false, false, true],
        ),
        (
            UseDataShield,
            [false, true, true, true, true, false, false, false, false],
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
    for phase in NOT_ACTIVE {
        let inactive = in_phase(&p, phase);
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

#[test]
fn analysts_use_datashield_and_nothing_with_files() {
    let p = active(project("demo"));
    let ann = person("ann", &[]);
    let mut anns = workspace("ann");
    anns.metadata.name = Some("wa".into());
    assert!(decide(&ann, Action::ReadProject, Target::Project(&p)).allowed());
    assert!(can_see_project(&ann, &p));
    assert_eq!(workspace_view(&ann, &p), WorkspaceView::Own);
    for (action, target) in [
        (Action::CreateWorkspace, Target::Project(&p)),
        (Action::StartWorkspace, Target::Workspace(&p, &anns)),
    ] {
        let Decision::Deny(why) = decide(&ann, action, target) else {
            panic!("{action:?} allowed to an analyst");
        };
        assert!(!why.is_empty());
    }
    let Decision::Deny(why) = gateway(&ann, &p, &anns) else {
        panic!("an analyst opened a workspace");
    };
    assert!(why.contains("DataSHIELD"), "{why}");
    for direction in [Direction::Egress, Direction::Ingress] {
        assert!(
            !airlock_create(&ann, &p, direction).allowed(),
            "{direction:?}"
        );
        assert!(!airlock_read(&ann, Some(&p), "demo", "alice", direction).allowed());
        for state in [AirlockState::InReview, AirlockState::Released] {
            assert!(
                !airlock_download(&ann, Some(&p), "demo", "alice", direction, state).allowed(),
                "{direction:?} {state:?}"
            );
        }
    }
    assert!(!airlock_list(&ann, Some(&p), "demo").allowed());
    // A data steward who is also an analyst still brings data in as a steward.
    let steward_analyst = person("ann", &[PlatformRole::DataSteward]);
    assert!(airlock_create(&steward_analyst, &p, Direction::Ingress).allowed());
    // Owners and researchers keep what they had.
    assert!(airlock_list(&person("alice", &[]), Some(&p), "demo").allowed());
    assert!(airlock_create(&person("olivia", &[]), &p, Direction::Egress).allowed());

    // DataSHIELD: members of every role while Active; nobody otherwise.
    for who in ["olivia", "alice", "ann"] {
        assert!(
            decide(
                &person(who, &[]),
                Action::UseDataShield,
                Target::Project(&p)
            )
            .allowed(),
            "{who}"
        );
    }
    let Decision::Deny(why) = decide(
        &person("root", &[PlatformRole::Admin]),
        Action::UseDataShield,
        Target::Project(&p),
    ) else {
        panic!("an admin who is not a member used DataSHIELD");
    };
    assert!(why.contains("not a member"), "{why}");
    assert!(
        !decide(
            &from_workspace("ann", "demo"),
            Action::UseDataShield,
            Target::Project(&p)
        )
        .allowed()
    );
    for phase in NOT_ACTIVE {
        let inactive = in_phase(&p, phase);
        let Decision::Deny(why) = decide(&ann, Action::UseDataShield, Target::Project(&inactive))
        else {
            panic!("{phase:?}");
        };
        let shown = phase.map_or("not yet provisioned", |p| p.as_str());
        assert!(why.contains(shown), "{why}");
    }
    assert!(!decide(&ann, Action::UseDataShield, Target::Platform).allowed());
}

#[test]
fn an_access_token_is_good_for_datashield_only() {
    let p = active(project("demo"));
    let w = workspace("alice");
    let mut token = person("alice", &[PlatformRole::Admin, PlatformRole::OutputChecker]);
    token.credential = Credential::AccessToken { id: "t1".into() };
    assert!(decide(&token, Action::UseDataShield, Target::Project(&p)).allowed());
    for action in Action::ALL {
        if action == Action::UseDataShield {
            continue;
        }
        for target in [
            Target::Platform,
            Target::Project(&p),
            Target::Workspace(&p, &w),
        ] {
            assert!(
                !decide(&token, action, target).allowed(),
                "{action:?} {target:?}"
            );
        }
    }
    assert!(!gateway(&token, &p, &w).allowed());
    assert!(!audit_read(&token).allowed());
    assert!(!reviewer_role(&token, Direction::Egress));
    for direction in [Direction::Egress, Direction::Ingress] {
        assert!(!airlock_create(&token, &p, direction).allowed());
        assert!(!airlock_read(&token, Some(&p), "demo", "alice", direction).allowed());
        assert!(
            !airlock_download(
                &token,
                Some(&p),
                "demo",
                "bob",
                direction,
                AirlockState::Released
            )
            .allowed()
        );
    }
    assert!(!airlock_list(&token, Some(&p), "demo").allowed());
}

#[test]
fn tokens_are_made_by_people_and_managed_by_their_owner() {
    let alice = person("alice", &[]);
    let mut session = alice.clone();
    session.credential = Credential::Session;
    assert!(access_token_create(&alice).allowed());
    assert!(access_token_create(&session).allowed());
    assert!(!access_token_create(&from_workspace("alice", "demo")).allowed());
    let mut token = alice.clone();
    token.credential = Credential::AccessToken { id: "t".into() };
    assert!(!access_token_create(&token).allowed());
    assert!(access_token_manage(&alice, "alice").allowed());
    assert!(!access_token_manage(&alice, "bob").allowed());
    assert!(
        !access_token_manage(&person("root", &[PlatformRole::Admin]), "alice").allowed(),
        "admins do not manage others' tokens"
    );
    assert!(!access_token_manage(&token, "alice").allowed());
    assert!(!access_token_manage(&from_workspace("alice", "demo"), "alice").allowed());
}

#[test]
fn datashield_is_offered_only_where_the_project_enables_it() {
    let mut p = project("demo");
    assert!(!datashield_offered(&p).allowed());
    p.spec.datashield = Some(crate::resources::DataShieldSpec {
        enabled: false,
        ..Default::default()
    });
    assert!(!datashield_offered(&p).allowed());
    p.spec.datashield.as_mut().unwrap().enabled = true;
    assert!(datashield_offered(&p).allowed());
}
