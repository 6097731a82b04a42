//! What a notification says and whom it is for: plain functions of a request's step and of the
//! people Trellis knows, with no I/O. Messages carry the request's title, project, id and a
//! link, never file names, file contents or reviewers' comments (those stay behind sign-in).

use std::collections::BTreeSet;

use url::Url;

use crate::airlock::state::{Actor, Direction, State, may_review};
use crate::identity::PlatformRole;

/// The steps of a request that people are told about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Submitted (or resubmitted) for review: the eligible reviewers.
    Submitted,
    /// Returned for changes: the author.
    Returned,
    /// Approved by its reviewers: the author.
    Approved,
    /// Released: the project's other members, who may now use the files.
    Released,
    /// Rejected: the author.
    Rejected,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Submitted => "submitted",
            Kind::Returned => "returned",
            Kind::Approved => "approved",
            Kind::Released => "released",
            Kind::Rejected => "rejected",
        }
    }

    /// The notification a step from `before` to `after` calls for, if any. Votes, withdrawals,
    /// blocks and revocations tell nobody (the person acting sees the result in the answer).
    pub fn of(before: State, after: State) -> Option<Kind> {
        if before == after {
            return None;
        }
        match after {
            State::Submitted | State::InReview if before.editable() => Some(Kind::Submitted),
            State::Returned => Some(Kind::Returned),
            State::Approved => Some(Kind::Approved),
            State::Released => Some(Kind::Released),
            State::Rejected => Some(Kind::Rejected),
            _ => None,
        }
    }
}

/// Someone Trellis has seen sign in, as last seen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Person {
    pub subject: String,
    pub email: Option<String>,
    pub name: Option<String>,
    pub roles: BTreeSet<PlatformRole>,
}

/// One step of one request, with what deciding its audience needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notice {
    pub kind: Kind,
    pub project: String,
    pub id: String,
    pub title: String,
    pub direction: Direction,
    pub author: String,
    pub round: u32,
    /// The project's members when the step was taken.
    pub members: BTreeSet<String>,
    /// Whether members may review their own project's requests (`airlock.members_may_review`).
    pub members_may_review: bool,
}

/// The platform role that reviews requests of a direction (as `policy::reviewer_role`).
pub fn reviewer_role(direction: Direction) -> PlatformRole {
    match direction {
        Direction::Egress => PlatformRole::OutputChecker,
        Direction::Ingress => PlatformRole::DataSteward,
    }
}

/// The people a notice names, rather than a role: the author of a returned, approved or
/// rejected request; the other members of the project of a released one.
pub fn named(notice: &Notice) -> Vec<String> {
    match notice.kind {
        Kind::Submitted => Vec::new(),
        Kind::Returned | Kind::Approved | Kind::Rejected => vec![notice.author.clone()],
        Kind::Released => notice
            .members
            .iter()
            .filter(|m| **m != notice.author)
            .cloned()
            .collect(),
    }
}

/// Who is told, out of `people`, and whom the notice names but Trellis has never seen.
#[derive(Debug, PartialEq, Eq)]
pub struct Audience<'p> {
    pub to: Vec<&'p Person>,
    pub unknown: Vec<String>,
}

/// A submission goes to everyone holding the direction's reviewer role who may review it (never
/// its author; never the project's members unless they may review); every other step to the
/// people [`named`] names.
pub fn audience<'p>(notice: &Notice, people: &'p [Person]) -> Audience<'p> {
    if notice.kind == Kind::Submitted {
        let role = reviewer_role(notice.direction);
        let to = people
            .iter()
            .filter(|p| {
                let actor = Actor {
                    subject: p.subject.clone(),
                    reviewer_role: p.roles.contains(&role),
                    project_member: notice.members.contains(&p.subject),
                    admin: false,
                };
                may_review(
                    &notice.author,
                    notice.direction,
                    &actor,
                    notice.members_may_review,
                )
                .is_ok()
            })
            .collect();
        return Audience {
            to,
            unknown: Vec::new(),
        };
    }
    let mut to = Vec::new();
    let mut unknown = Vec::new();
    for subject in named(notice) {
        match people.iter().find(|p| p.subject == subject) {
            Some(person) => to.push(person),
            None => unknown.push(subject),
        }
    }
    Audience { to, unknown }
}

/// A message's subject line and plain-text body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    pub subject: String,
    pub body: String,
}

/// Where a person sees the request in Trellis.
pub fn link(public_url: &Url, project: &str, id: &str) -> String {
    format!(
        "{}/projects/{project}/airlock/{id}",
        public_url.as_str().trim_end_matches('/')
    )
}

/// A title fit for a subject line: one line, at most 80 characters.
fn one_line(title: &str) -> String {
    let flat: String = title
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let flat = flat.trim();
    if flat.chars().count() > 80 {
        let cut: String = flat.chars().take(79).collect();
        format!("{}…", cut.trim_end())
    } else {
        flat.to_string()
    }
}

/// What `recipient` is told about `notice`.
pub fn compose(notice: &Notice, public_url: &Url, recipient: &Person) -> Message {
    let title = one_line(&notice.title);
    let project = &notice.project;
    let direction = match notice.direction {
        Direction::Egress => "egress",
        Direction::Ingress => "ingress",
    };
    let link = link(public_url, project, &notice.id);
    let (subject, text) = match notice.kind {
        Kind::Submitted => (
            format!("[Trellis] Review requested: {title} ({project})"),
            format!(
                "An {direction} request in project {project}, \"{title}\" by {author}, was \
                 submitted for review (round {round}).\n\nReview it: {link}",
                author = notice.author,
                round = notice.round,
            ),
        ),
        Kind::Returned => (
            format!("[Trellis] Returned for changes: {title} ({project})"),
            format!(
                "Your {direction} request in project {project}, \"{title}\", was returned for \
                 changes. Read the reviewers' comments, change the files and submit it \
                 again:\n{link}"
            ),
        ),
        Kind::Approved => (
            format!("[Trellis] Approved: {title} ({project})"),
            format!(
                "Your {direction} request in project {project}, \"{title}\", was approved by \
                 its reviewers.\n\nSee it: {link}"
            ),
        ),
        Kind::Released => (
            format!("[Trellis] Released: {title} ({project})"),
            format!(
                "An {direction} request in project {project}, \"{title}\" by {author}, was \
                 released. {what}\n\nSee it: {link}",
                author = notice.author,
                what = match notice.direction {
                    Direction::Egress => "The project's members can download its files.",
                    Direction::Ingress =>
                        "Its files are the project's inputs now (`trellis inputs sync` in a workspace).",
                },
            ),
        ),
        Kind::Rejected => (
            format!("[Trellis] Rejected: {title} ({project})"),
            format!(
                "Your {direction} request in project {project}, \"{title}\", was rejected by its \
                 reviewers. Their comments are with the request:\n{link}"
            ),
        ),
    };
    let greeting = recipient.name.as_deref().unwrap_or(&recipient.subject);
    Message {
        subject,
        body: format!(
            "Hello {greeting},\n\n{text}\n\n-- \nSent by Trellis because of your role in this \
             request or project.\n"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn person(subject: &str, email: Option<&str>, roles: &[PlatformRole]) -> Person {
        Person {
            subject: subject.into(),
            email: email.map(String::from),
            name: None,
            roles: roles.iter().copied().collect(),
        }
    }

    fn notice(kind: Kind, direction: Direction) -> Notice {
        Notice {
            kind,
            project: "heart".into(),
            id: "r1".into(),
            title: "Regional counts".into(),
            direction,
            author: "alice".into(),
            round: 2,
            members: ["alice", "bob", "carol"].map(String::from).into(),
            members_may_review: false,
        }
    }

    fn people() -> Vec<Person> {
        use PlatformRole::*;
        vec![
            person("alice", Some("alice@x"), &[OutputChecker]),
            person("bob", Some("bob@x"), &[]),
            // A member who is also an output checker.
            person("carol", Some("carol@x"), &[OutputChecker]),
            person("dan", Some("dan@x"), &[OutputChecker]),
            person("erin", None, &[OutputChecker]),
            person("steward", Some("steward@x"), &[DataSteward]),
        ]
    }

    fn subjects(audience: &Audience<'_>) -> Vec<String> {
        audience.to.iter().map(|p| p.subject.clone()).collect()
    }

    #[test]
    fn steps_that_tell_someone() {
        use State::*;
        let cases = [
            (Draft, InReview, Some(Kind::Submitted)),
            (Returned, InReview, Some(Kind::Submitted)),
            (Draft, Submitted, Some(Kind::Submitted)),
            (Draft, Blocked, None),
            (InReview, InReview, None),
            (InReview, Reviewed, None),
            (Reviewed, Returned, Some(Kind::Returned)),
            (Reviewed, Approved, Some(Kind::Approved)),
            (Approved, Released, Some(Kind::Released)),
            (Reviewed, Rejected, Some(Kind::Rejected)),
            (Draft, Withdrawn, None),
            (Released, Revoked, None),
        ];
        for (before, after, kind) in cases {
            assert_eq!(Kind::of(before, after), kind, "{before:?} → {after:?}");
        }
    }

    #[test]
    fn a_submission_goes_to_eligible_reviewers_only() {
        let people = people();
        let egress = notice(Kind::Submitted, Direction::Egress);
        // Not alice (the author), not carol (a member), but erin although she has no address.
        assert_eq!(subjects(&audience(&egress, &people)), ["dan", "erin"]);
        let mut lenient = egress.clone();
        lenient.members_may_review = true;
        assert_eq!(
            subjects(&audience(&lenient, &people)),
            ["carol", "dan", "erin"],
            "members may review, the author never"
        );
        let ingress = notice(Kind::Submitted, Direction::Ingress);
        assert_eq!(subjects(&audience(&ingress, &people)), ["steward"]);
    }

    #[test]
    fn outcomes_go_to_the_author_and_releases_to_the_other_members() {
        let people = people();
        for kind in [Kind::Returned, Kind::Approved, Kind::Rejected] {
            let a = audience(&notice(kind, Direction::Egress), &people);
            assert_eq!(subjects(&a), ["alice"], "{kind:?}");
        }
        let released = audience(&notice(Kind::Released, Direction::Egress), &people);
        assert_eq!(subjects(&released), ["bob", "carol"]);
        let mut stranger = notice(Kind::Rejected, Direction::Egress);
        stranger.author = "zed".into();
        let a = audience(&stranger, &people);
        assert_eq!((a.to.len(), a.unknown), (0, vec!["zed".to_string()]));
    }

    #[test]
    fn messages_name_the_request_and_link_to_it() {
        let url = Url::parse("https://tre.example.org/").unwrap();
        let reader = Person {
            name: Some("Dan D".into()),
            ..person("dan", Some("dan@x"), &[])
        };
        let m = compose(&notice(Kind::Submitted, Direction::Egress), &url, &reader);
        assert_eq!(
            m.subject,
            "[Trellis] Review requested: Regional counts (heart)"
        );
        assert!(m.body.starts_with("Hello Dan D,"), "{}", m.body);
        assert!(m.body.contains("by alice"), "{}", m.body);
        assert!(m.body.contains("round 2"), "{}", m.body);
        assert!(
            m.body
                .contains("https://tre.example.org/projects/heart/airlock/r1"),
            "{}",
            m.body
        );
        let subjects: Vec<String> = [
            Kind::Returned,
            Kind::Approved,
            Kind::Released,
            Kind::Rejected,
        ]
        .into_iter()
        .map(|k| compose(&notice(k, Direction::Ingress), &url, &reader).subject)
        .collect();
        assert_eq!(
            subjects,
            [
                "[Trellis] Returned for changes: Regional counts (heart)",
                "[Trellis] Approved: Regional counts (heart)",
                "[Trellis] Released: Regional counts (heart)",
                "[Trellis] Rejected: Regional counts (heart)",
            ]
        );
        let released = compose(&notice(Kind::Released, Direction::Ingress), &url, &reader);
        assert!(released.body.contains("inputs"), "{}", released.body);
    }

    #[test]
    fn subject_lines_are_one_short_line() {
        let url = Url::parse("https://tre.example.org/base/").unwrap();
        let mut n = notice(Kind::Approved, Direction::Egress);
        n.title = format!("Line one\r\nBcc: someone@else {}", "x".repeat(200));
        let m = compose(&n, &url, &person("alice", None, &[]));
        assert!(!m.subject.contains(['\r', '\n']), "{}", m.subject);
        assert!(m.subject.contains("Line one  Bcc"), "{}", m.subject);
        assert!(m.subject.chars().count() < 120, "{}", m.subject);
        assert!(
            m.body
                .contains("https://tre.example.org/base/projects/heart/airlock/r1")
        );
        assert!(m.body.starts_with("Hello alice,"));
    }
}
