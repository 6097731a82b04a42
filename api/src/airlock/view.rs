//! What a caller sees of an airlock request: the request, its files and history, and only the
//! votes they may see (reviewers see each other's votes once a round is reviewed).

use serde::Serialize;
use utoipa::ToSchema;

use super::repo::{FileRecord, HistoryEntry, RequestRecord};
use super::state::{self, Direction, Vote, VoteKind};

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct VoteView {
    pub round: u32,
    pub reviewer: String,
    pub file: String,
    #[schema(value_type = String)]
    pub vote: VoteKind,
    pub comment: String,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RequestView {
    pub id: String,
    pub project: String,
    #[schema(value_type = String)]
    pub direction: Direction,
    pub title: String,
    pub context: String,
    pub controls: String,
    pub author: String,
    #[schema(value_type = String)]
    pub state: state::State,
    pub round: u32,
    pub reviews_required: u32,
    pub created_at: String,
    pub files: Vec<FileRecord>,
    /// Only the votes the caller may see: reviewers see others' votes once a round is reviewed.
    pub votes: Vec<VoteView>,
    pub history: Vec<HistoryEntry>,
}

/// The request as `viewer` may see it.
pub fn view(stored: &RequestRecord, history: Vec<HistoryEntry>, viewer: &str) -> RequestView {
    let visible = state::visible_votes(&stored.request, viewer);
    let comment_of = |v: &Vote| {
        stored
            .comments
            .iter()
            .find(|c| c.round == v.round && c.reviewer == v.reviewer && c.file == v.file)
            .map(|c| c.text.clone())
            .unwrap_or_default()
    };
    RequestView {
        id: stored.id.clone(),
        project: stored.project.clone(),
        direction: stored.request.direction,
        title: stored.title.clone(),
        context: stored.context.clone(),
        controls: stored.controls.clone(),
        author: stored.request.author.clone(),
        state: stored.request.state,
        round: stored.request.round,
        reviews_required: stored.reviews_required,
        created_at: stored.created_at.clone(),
        files: stored.files.clone(),
        votes: visible
            .into_iter()
            .map(|v| VoteView {
                round: v.round,
                reviewer: v.reviewer.clone(),
                file: v.file.clone(),
                vote: v.vote,
                comment: comment_of(v),
            })
            .collect(),
        history,
    }
}
