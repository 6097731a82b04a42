//! The airlock's rules as a pure state machine: given a request as stored, who is acting and
//! what they ask, either the request's next state or a refusal saying why. The HTTP layer loads
//! the request, calls [`apply`] inside one database transaction, and stores the result.
//!
//! `draft → submitted → in_review → reviewed → approved → released`, with `returned` (back to
//! the author, who edits and resubmits: a new review round), `rejected`, `withdrawn`, `blocked`
//! (malware or a blocking disclosure check) and `revoked` (after release). Votes are per file and
//! per round; a round is `reviewed` once enough distinct eligible reviewers have voted on every
//! file; one of them then records an outcome that must agree with the votes.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Data into a project, reviewed by data stewards.
    Ingress,
    /// Results out of a project, reviewed by output checkers.
    Egress,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Draft,
    Submitted,
    InReview,
    Reviewed,
    Approved,
    Released,
    Returned,
    Rejected,
    Withdrawn,
    Blocked,
    Revoked,
}

impl State {
    /// Whether the author may still change the file set and texts.
    pub fn editable(self) -> bool {
        matches!(self, State::Draft | State::Returned)
    }

    /// Whether nothing can happen to the request any more (but revocation after release).
    pub fn finished(self) -> bool {
        matches!(
            self,
            State::Rejected | State::Withdrawn | State::Blocked | State::Revoked
        )
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum VoteKind {
    Approve,
    ChangesRequested,
    Reject,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    Approve,
    Return,
    Reject,
}

/// One reviewer's vote on one file in one round.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Vote {
    pub round: u32,
    pub reviewer: String,
    pub file: String,
    pub vote: VoteKind,
}

/// What the rules need to know of a request.
#[derive(Clone, Debug, PartialEq)]
pub struct Request {
    pub direction: Direction,
    pub author: String,
    pub state: State,
    /// Starts at 1; each resubmission after `returned` opens the next.
    pub round: u32,
    pub files: BTreeSet<String>,
    pub votes: Vec<Vote>,
}

/// The project's review policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReviewPolicy {
    /// Distinct reviewers needed on every file.
    pub reviews_required: u32,
    /// Whether project members may review (by default they may not).
    pub members_may_review: bool,
}

/// The acting person, as the rules see them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Actor {
    pub subject: String,
    /// Holds the reviewing role for the request's direction (output checker for egress, data
    /// steward for ingress).
    pub reviewer_role: bool,
    pub project_member: bool,
    pub admin: bool,
}

/// What someone asks of a request.
#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    /// Add or replace a file.
    PutFile(String),
    RemoveFile(String),
    /// The disclosure checks and the malware scan ran; `blocked` says whether one of them stops
    /// the request.
    Submit {
        blocked: bool,
    },
    Vote(Vec<(String, VoteKind)>),
    Decide(Decision),
    /// The approved files were copied out and verified: the request is released.
    Release,
    Withdraw,
    Revoke,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The actor may not do this at all (403).
    #[error("{0}")]
    Forbidden(String),
    /// Not in the request's current state, or not consistent with it (409).
    #[error("{0}")]
    Conflict(String),
    /// The command itself is wrong (422).
    #[error("{0}")]
    Invalid(String),
}

fn forbidden(why: impl Into<String>) -> Refusal {
    Refusal::Forbidden(why.into())
}
fn conflict(why: impl Into<String>) -> Refusal {
    Refusal::Conflict(why.into())
}
fn invalid(why: impl Into<String>) -> Refusal {
    Refusal::Invalid(why.into())
}

/// Whether `actor` may review `request` at all.
pub fn eligible_reviewer(
    request: &Request,
    actor: &Actor,
    policy: ReviewPolicy,
) -> Result<(), Refusal> {
    may_review(
        &request.author,
        request.direction,
        actor,
        policy.members_may_review,
    )
}

/// The one rule of who reviews a request by `author` in `direction`: never its author, only the
/// direction's reviewer role, and not the project's members unless they may. The review queue,
/// the pages and the notices ask it too (through `policy::may_review`).
pub fn may_review(
    author: &str,
    direction: Direction,
    actor: &Actor,
    members_may_review: bool,
) -> Result<(), Refusal> {
    if actor.subject == author {
        return Err(forbidden("nobody reviews their own request"));
    }
    if !actor.reviewer_role {
        return Err(forbidden(match direction {
            Direction::Egress => "only output checkers review egress requests",
            Direction::Ingress => "only data stewards review ingress requests",
        }));
    }
    if actor.project_member && !members_may_review {
        return Err(forbidden(
            "members of the project do not review its requests",
        ));
    }
    Ok(())
}

/// The votes of the current round.
pub fn round_votes(request: &Request) -> impl Iterator<Item = &Vote> {
    request
        .votes
        .iter()
        .filter(move |v| v.round == request.round)
}

/// Distinct reviewers who have voted on every file this round.
pub fn complete_reviewers(request: &Request) -> BTreeSet<&str> {
    let mut by_reviewer: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for vote in round_votes(request) {
        by_reviewer
            .entry(&vote.reviewer)
            .or_default()
            .insert(&vote.file);
    }
    by_reviewer
        .into_iter()
        .filter(|(_, files)| request.files.iter().all(|f| files.contains(f.as_str())))
        .map(|(reviewer, _)| reviewer)
        .collect()
}

/// Approvals of `file` this round, by distinct reviewers.
pub fn approvals(request: &Request, file: &str) -> usize {
    round_votes(request)
        .filter(|v| v.file == file && v.vote == VoteKind::Approve)
        .map(|v| v.reviewer.as_str())
        .collect::<BTreeSet<_>>()
        .len()
}

/// Applies `command`; returns the request as it is afterwards.
pub fn apply(
    request: &Request,
    actor: &Actor,
    policy: ReviewPolicy,
    command: &Command,
) -> Result<Request, Refusal> {
    let mut next = request.clone();
    let is_author = actor.subject == request.author;
    match command {
        Command::PutFile(name) | Command::RemoveFile(name) => {
            if !is_author {
                return Err(forbidden("only the request's author changes its files"));
            }
            if !request.state.editable() {
                return Err(conflict(format!(
                    "files can change only while the request is draft or returned; it is {:?}",
                    request.state
                )));
            }
            if let Command::RemoveFile(_) = command {
                if !next.files.remove(name) {
                    return Err(invalid(format!("the request has no file `{name}`")));
                }
            } else {
                next.files.insert(name.clone());
            }
        }
        Command::Submit { blocked } => {
            if !is_author {
                return Err(forbidden("only the request's author submits it"));
            }
            if !request.state.editable() {
                return Err(conflict(format!(
                    "a {:?} request cannot be submitted",
                    request.state
                )));
            }
            if request.files.is_empty() {
                return Err(invalid("a request needs at least one file"));
            }
            if request.state == State::Returned {
                next.round += 1;
            }
            next.state = if *blocked {
                State::Blocked
            } else {
                State::InReview
            };
        }
        Command::Vote(votes) => {
            eligible_reviewer(request, actor, policy)?;
            if request.state != State::InReview {
                return Err(conflict(format!(
                    "votes are taken while the request is in review; it is {:?}",
                    request.state
                )));
            }
            if votes.is_empty() {
                return Err(invalid("no votes given"));
            }
            let mut seen = BTreeSet::new();
            for (file, vote) in votes {
                if !request.files.contains(file) {
                    return Err(invalid(format!("the request has no file `{file}`")));
                }
                if !seen.insert(file) {
                    return Err(invalid(format!("`{file}` is voted on twice")));
                }
                if round_votes(request).any(|v| v.reviewer == actor.subject && &v.file == file) {
                    return Err(conflict(format!(
                        "you have already voted on `{file}` in this round"
                    )));
                }
                next.votes.push(Vote {
                    round: request.round,
                    reviewer: actor.subject.clone(),
                    file: file.clone(),
                    vote: *vote,
                });
            }
            if complete_reviewers(&next).len() >= policy.reviews_required as usize {
                next.state = State::Reviewed;
            }
        }
        Command::Decide(decision) => {
            eligible_reviewer(request, actor, policy)?;
            if request.state != State::Reviewed {
                return Err(conflict(format!(
                    "an outcome is recorded once enough reviewers have voted; the request is {:?}",
                    request.state
                )));
            }
            if !complete_reviewers(request).contains(actor.subject.as_str()) {
                return Err(forbidden(
                    "only a reviewer who voted on every file records the outcome",
                ));
            }
            let required = policy.reviews_required as usize;
            let any = |kind: VoteKind| round_votes(request).any(|v| v.vote == kind);
            next.state = match decision {
                Decision::Approve => {
                    if let Some(file) = request
                        .files
                        .iter()
                        .find(|f| approvals(request, f) < required)
                    {
                        return Err(conflict(format!(
                            "`{file}` has fewer than {required} approvals; it cannot be released"
                        )));
                    }
                    State::Approved
                }
                Decision::Return => {
                    if !any(VoteKind::ChangesRequested) && !any(VoteKind::Reject) {
                        return Err(conflict(
                            "every vote approves; return needs a vote asking for changes",
                        ));
                    }
                    State::Returned
                }
                Decision::Reject => {
                    if !any(VoteKind::Reject) {
                        return Err(conflict("no reviewer voted to reject"));
                    }
                    State::Rejected
                }
            };
        }
        Command::Release => {
            if request.state != State::Approved {
                return Err(conflict(format!(
                    "only an approved request is released; it is {:?}",
                    request.state
                )));
            }
            next.state = State::Released;
        }
        Command::Withdraw => {
            if !is_author {
                return Err(forbidden("only the request's author withdraws it"));
            }
            if !matches!(
                request.state,
                State::Draft
                    | State::Returned
                    | State::Submitted
                    | State::InReview
                    | State::Reviewed
            ) {
                return Err(conflict(format!(
                    "a {:?} request cannot be withdrawn",
                    request.state
                )));
            }
            next.state = State::Withdrawn;
        }
        Command::Revoke => {
            if !actor.admin {
                return Err(forbidden("only platform admins revoke a release"));
            }
            if request.state != State::Released {
                return Err(conflict("only a released request is revoked"));
            }
            next.state = State::Revoked;
        }
    }
    Ok(next)
}

/// The votes `viewer` may see. Votes are blinded while a round is in review: a reviewer sees only
/// their own until enough reviewers have voted; everyone else sees them once the round is over.
pub fn visible_votes<'a>(request: &'a Request, viewer: &str) -> Vec<&'a Vote> {
    request
        .votes
        .iter()
        .filter(|v| {
            v.round < request.round || request.state != State::InReview || v.reviewer == viewer
        })
        .collect()
}

#[cfg(test)]
mod tests;
