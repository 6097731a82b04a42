use proptest::prelude::*;

use super::*;

const POLICY: ReviewPolicy = ReviewPolicy {
    reviews_required: 2,
    members_may_review: false,
};

fn person(subject: &str) -> Actor {
    Actor {
        subject: subject.into(),
        reviewer_role: false,
        project_member: true,
        admin: false,
    }
}

fn checker(subject: &str) -> Actor {
    Actor {
        subject: subject.into(),
        reviewer_role: true,
        project_member: false,
        admin: false,
    }
}

fn draft(files: &[&str]) -> Request {
    Request {
        direction: Direction::Egress,
        author: "alice".into(),
        state: State::Draft,
        round: 1,
        files: files.iter().map(|f| f.to_string()).collect(),
        votes: vec![],
    }
}

fn run(request: &Request, actor: &Actor, command: Command) -> Request {
    apply(request, actor, POLICY, &command)
        .unwrap_or_else(|e| panic!("{command:?} by {}: {e}", actor.subject))
}

fn refused(request: &Request, actor: &Actor, command: Command) -> Refusal {
    apply(request, actor, POLICY, &command).expect_err("should be refused")
}

fn votes(files: &[&str], kind: VoteKind) -> Command {
    Command::Vote(files.iter().map(|f| (f.to_string(), kind)).collect())
}

#[test]
fn the_whole_egress_flow_with_two_checkers() {
    let alice = person("alice");
    let mut r = run(&draft(&[]), &alice, Command::PutFile("table.csv".into()));
    r = run(&r, &alice, Command::PutFile("figure.png".into()));
    r = run(&r, &alice, Command::Submit { blocked: false });
    assert_eq!(r.state, State::InReview);
    r = run(
        &r,
        &checker("carol"),
        votes(&["table.csv", "figure.png"], VoteKind::Approve),
    );
    assert_eq!(r.state, State::InReview, "one reviewer is not enough");
    r = run(
        &r,
        &checker("dan"),
        votes(&["table.csv", "figure.png"], VoteKind::Approve),
    );
    assert_eq!(r.state, State::Reviewed);
    r = run(&r, &checker("dan"), Command::Decide(Decision::Approve));
    assert_eq!(r.state, State::Approved);
    r = run(&r, &person("system"), Command::Release);
    assert_eq!(r.state, State::Released);
    let mut admin = person("admin");
    admin.admin = true;
    assert_eq!(run(&r, &admin, Command::Revoke).state, State::Revoked);
}

#[test]
fn returned_then_resubmitted_starts_a_new_round_and_keeps_history() {
    let alice = person("alice");
    let mut r = run(
        &draft(&["t.csv"]),
        &alice,
        Command::Submit { blocked: false },
    );
    r = run(
        &r,
        &checker("carol"),
        votes(&["t.csv"], VoteKind::ChangesRequested),
    );
    r = run(&r, &checker("dan"), votes(&["t.csv"], VoteKind::Approve));
    assert_eq!(
        refused(&r, &checker("carol"), Command::Decide(Decision::Approve)),
        Refusal::Conflict("`t.csv` has fewer than 2 approvals; it cannot be released".into())
    );
    r = run(&r, &checker("carol"), Command::Decide(Decision::Return));
    assert_eq!(r.state, State::Returned);
    r = run(&r, &alice, Command::PutFile("t.csv".into()));
    r = run(&r, &alice, Command::Submit { blocked: false });
    assert_eq!((r.state, r.round), (State::InReview, 2));
    // Last round's votes stay, but do not count now.
    assert_eq!(r.votes.len(), 2);
    assert_eq!(complete_reviewers(&r).len(), 0);
    r = run(&r, &checker("carol"), votes(&["t.csv"], VoteKind::Approve));
    r = run(&r, &checker("dan"), votes(&["t.csv"], VoteKind::Approve));
    assert_eq!(
        run(&r, &checker("carol"), Command::Decide(Decision::Approve)).state,
        State::Approved
    );
}

#[test]
fn separation_of_duties() {
    let alice = person("alice");
    let r = run(
        &draft(&["t.csv"]),
        &alice,
        Command::Submit { blocked: false },
    );
    // The author cannot review, even holding the role.
    let mut author_checker = checker("alice");
    author_checker.project_member = false;
    assert!(matches!(
        refused(&r, &author_checker, votes(&["t.csv"], VoteKind::Approve)),
        Refusal::Forbidden(_)
    ));
    // A project member cannot review unless the policy allows.
    let mut member_checker = checker("bob");
    member_checker.project_member = true;
    assert!(matches!(
        refused(&r, &member_checker, votes(&["t.csv"], VoteKind::Approve)),
        Refusal::Forbidden(_)
    ));
    let lenient = ReviewPolicy {
        members_may_review: true,
        ..POLICY
    };
    assert!(
        apply(
            &r,
            &member_checker,
            lenient,
            &votes(&["t.csv"], VoteKind::Approve)
        )
        .is_ok()
    );
    // Without the role, nobody reviews.
    assert!(matches!(
        refused(&r, &person("bob"), votes(&["t.csv"], VoteKind::Approve)),
        Refusal::Forbidden(_)
    ));
    // Only the author edits, submits and withdraws.
    let d = draft(&["t.csv"]);
    for command in [
        Command::PutFile("x".into()),
        Command::Submit { blocked: false },
        Command::Withdraw,
    ] {
        assert!(matches!(
            refused(&d, &person("bob"), command),
            Refusal::Forbidden(_)
        ));
    }
    // A reviewer who has not voted on every file does not record the outcome.
    let mut two = run(
        &draft(&["a", "b"]),
        &alice,
        Command::Submit { blocked: false },
    );
    two = run(
        &two,
        &checker("carol"),
        votes(&["a", "b"], VoteKind::Approve),
    );
    two = run(&two, &checker("dan"), votes(&["a", "b"], VoteKind::Approve));
    assert!(matches!(
        refused(&two, &checker("erin"), Command::Decide(Decision::Approve)),
        Refusal::Forbidden(_)
    ));
}

#[test]
fn one_vote_per_file_per_round_and_a_frozen_file_set() {
    let alice = person("alice");
    let mut r = run(
        &draft(&["a", "b"]),
        &alice,
        Command::Submit { blocked: false },
    );
    r = run(&r, &checker("carol"), votes(&["a"], VoteKind::Approve));
    assert!(matches!(
        refused(&r, &checker("carol"), votes(&["a"], VoteKind::Reject)),
        Refusal::Conflict(_)
    ));
    assert!(matches!(
        refused(
            &r,
            &checker("dan"),
            Command::Vote(vec![
                ("a".into(), VoteKind::Approve),
                ("a".into(), VoteKind::Approve)
            ])
        ),
        Refusal::Invalid(_)
    ));
    assert!(matches!(
        refused(&r, &checker("dan"), votes(&["c"], VoteKind::Approve)),
        Refusal::Invalid(_)
    ));
    assert!(matches!(
        refused(&r, &alice, Command::PutFile("c".into())),
        Refusal::Conflict(_)
    ));
    assert!(matches!(
        refused(&r, &alice, Command::RemoveFile("a".into())),
        Refusal::Conflict(_)
    ));
}

#[test]
fn outcomes_must_agree_with_the_votes() {
    let alice = person("alice");
    let mut r = run(&draft(&["a"]), &alice, Command::Submit { blocked: false });
    r = run(&r, &checker("carol"), votes(&["a"], VoteKind::Approve));
    r = run(&r, &checker("dan"), votes(&["a"], VoteKind::Approve));
    assert!(matches!(
        refused(&r, &checker("carol"), Command::Decide(Decision::Reject)),
        Refusal::Conflict(_)
    ));
    assert!(matches!(
        refused(&r, &checker("carol"), Command::Decide(Decision::Return)),
        Refusal::Conflict(_)
    ));
    let mut r = run(&draft(&["a"]), &alice, Command::Submit { blocked: false });
    r = run(&r, &checker("carol"), votes(&["a"], VoteKind::Reject));
    r = run(&r, &checker("dan"), votes(&["a"], VoteKind::Approve));
    assert_eq!(
        run(&r, &checker("dan"), Command::Decide(Decision::Reject)).state,
        State::Rejected
    );
}

#[test]
fn blocked_empty_and_finished_requests() {
    let alice = person("alice");
    assert!(matches!(
        refused(&draft(&[]), &alice, Command::Submit { blocked: false }),
        Refusal::Invalid(_)
    ));
    let blocked = run(&draft(&["a"]), &alice, Command::Submit { blocked: true });
    assert_eq!(blocked.state, State::Blocked);
    assert!(blocked.state.finished());
    for command in [
        Command::PutFile("b".into()),
        Command::Submit { blocked: false },
        Command::Withdraw,
        Command::Release,
    ] {
        assert!(
            apply(&blocked, &alice, POLICY, &command).is_err(),
            "{command:?}"
        );
    }
    let withdrawn = run(&draft(&["a"]), &alice, Command::Withdraw);
    assert_eq!(withdrawn.state, State::Withdrawn);
    assert!(matches!(
        refused(&withdrawn, &alice, Command::Submit { blocked: false }),
        Refusal::Conflict(_)
    ));
}

#[test]
fn votes_are_blinded_until_the_round_is_reviewed() {
    let alice = person("alice");
    let mut r = run(&draft(&["a"]), &alice, Command::Submit { blocked: false });
    r = run(&r, &checker("carol"), votes(&["a"], VoteKind::Approve));
    assert_eq!(visible_votes(&r, "carol").len(), 1);
    assert!(visible_votes(&r, "dan").is_empty());
    assert!(visible_votes(&r, "alice").is_empty());
    r = run(
        &r,
        &checker("dan"),
        votes(&["a"], VoteKind::ChangesRequested),
    );
    assert_eq!(
        visible_votes(&r, "alice").len(),
        2,
        "once reviewed, the votes are open"
    );
}

// Property tests: whatever anyone asks, in whatever order, nothing is released without enough
// distinct eligible approvals on every file, and nobody's vote counts on their own request.

#[derive(Clone, Debug)]
enum Who {
    Author,
    /// The author, holding the reviewer role too (and, say, not listed as a member).
    AuthorAsChecker,
    Member,
    Checker(usize),
    MemberChecker,
    Admin,
}

fn actor(who: &Who) -> Actor {
    match who {
        Who::Author => person("alice"),
        Who::AuthorAsChecker => checker("alice"),
        Who::Member => person("bob"),
        Who::Checker(n) => checker(["carol", "dan", "erin"][*n]),
        Who::MemberChecker => Actor {
            project_member: true,
            ..checker("mallory")
        },
        Who::Admin => Actor {
            admin: true,
            project_member: false,
            ..person("admin")
        },
    }
}

// Weighted towards the people and steps that move a request forward, so that random walks
// often reach review, decisions and release (a mutation test showed uniform choices rarely do).
fn who() -> impl Strategy<Value = Who> {
    prop_oneof![
        4 => Just(Who::Author),
        2 => Just(Who::AuthorAsChecker),
        1 => Just(Who::Member),
        6 => (0..3usize).prop_map(Who::Checker),
        1 => Just(Who::MemberChecker),
        1 => Just(Who::Admin),
    ]
}

fn file() -> impl Strategy<Value = String> {
    prop_oneof![Just("a".to_string()), Just("b".to_string())]
}

fn command() -> impl Strategy<Value = Command> {
    let kind = prop_oneof![
        Just(VoteKind::Approve),
        Just(VoteKind::ChangesRequested),
        Just(VoteKind::Reject)
    ];
    prop_oneof![
        3 => file().prop_map(Command::PutFile),
        1 => file().prop_map(Command::RemoveFile),
        3 => prop_oneof![9 => Just(false), 1 => Just(true)].prop_map(|blocked| Command::Submit { blocked }),
        8 => proptest::collection::vec((file(), kind), 1..3).prop_map(Command::Vote),
        5 => prop_oneof![Just(Decision::Approve), Just(Decision::Return), Just(Decision::Reject)].prop_map(Command::Decide),
        2 => Just(Command::Release),
        1 => Just(Command::Withdraw),
        1 => Just(Command::Revoke),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn nothing_is_released_without_enough_eligible_approvals(
        steps in proptest::collection::vec((who(), command()), 0..40),
        required in 1u32..4,
    ) {
        let policy = ReviewPolicy { reviews_required: required, members_may_review: false };
        let mut request = draft(&[]);
        let mut approved_files_at_approval: Option<BTreeSet<String>> = None;
        for (who, command) in &steps {
            let before = request.clone();
            if let Ok(next) = apply(&request, &actor(who), policy, command) {
                // The author's and members' votes never enter the record.
                for vote in &next.votes {
                    prop_assert_ne!(vote.reviewer.as_str(), "alice");
                    prop_assert_ne!(vote.reviewer.as_str(), "bob");
                    prop_assert_ne!(vote.reviewer.as_str(), "mallory");
                }
                // A submitted file set never changes.
                if !before.state.editable() {
                    prop_assert_eq!(&next.files, &before.files);
                }
                if next.state == State::Approved && before.state != State::Approved {
                    for f in &next.files {
                        prop_assert!(approvals(&next, f) >= required as usize);
                    }
                    approved_files_at_approval = Some(next.files.clone());
                }
                if next.state == State::Released {
                    prop_assert!(!next.files.is_empty());
                    prop_assert_eq!(Some(&next.files), approved_files_at_approval.as_ref());
                    for f in &next.files {
                        let approvers: BTreeSet<&str> = round_votes(&next)
                            .filter(|v| &v.file == f && v.vote == VoteKind::Approve)
                            .map(|v| v.reviewer.as_str())
                            .collect();
                        prop_assert!(approvers.len() >= required as usize);
                        prop_assert!(!approvers.contains("alice"));
                    }
                }
                request = next;
            } else {
                prop_assert_eq!(&request, &before, "a refusal changes nothing");
            }
        }
    }
}
