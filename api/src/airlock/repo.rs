//! Airlock requests in the database. Every function takes the connection of the caller's
//! transaction (the audit transaction, which also serialises airlock writes), so a request's
//! change, its history entry and its audit record commit together.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value;
use std::collections::HashMap;

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};
use utoipa::ToSchema;

use super::state::{Direction, Request, State, Vote, VoteKind};
use crate::disclosure::DisclosureRecord;
use crate::store::{StoreError, timestamp};

/// The serde name of an enum value (`in_review`, `egress`…), as stored.
fn text<T: Serialize>(value: T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default()
}

fn parse<T: DeserializeOwned>(stored: &str) -> Result<T, StoreError> {
    serde_json::from_value(Value::String(stored.to_string()))
        .map_err(|_| StoreError::Corrupt(format!("unknown stored value `{stored}`")))
}

/// What the checks at submission (`airlock::checks`) found in one file: its disclosure record and, for ACRO's `results.json`,
/// ACRO's verdicts (or why they could not be read).
///
/// Stored and served as one JSON object: the record's fields with `acro` beside them, keys in
/// sorted order (the form these records had when they were passed around as JSON values, so the
/// stored rows and the API's answers are unchanged).
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct FileChecks {
    #[serde(flatten)]
    pub disclosure: DisclosureRecord,
    #[serde(default)]
    pub acro: Option<Value>,
}

#[derive(Serialize)]
struct FileChecksFields<'a> {
    #[serde(flatten)]
    disclosure: &'a DisclosureRecord,
    #[serde(skip_serializing_if = "Option::is_none")]
    acro: &'a Option<Value>,
}

impl Serialize for FileChecks {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // Through a JSON value, whose maps keep their keys sorted.
        let fields = FileChecksFields {
            disclosure: &self.disclosure,
            acro: &self.acro,
        };
        serde_json::to_value(fields)
            .map_err(serde::ser::Error::custom)?
            .serialize(serializer)
    }
}

/// A file of a request, as stored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct FileRecord {
    pub name: String,
    pub sha256: String,
    pub size: i64,
    /// The disclosure record from the checks at submission.
    #[schema(value_type = Object)]
    pub disclosure: Option<FileChecks>,
}

/// A step in a request's history.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HistoryEntry {
    pub at: String,
    pub actor: String,
    pub action: String,
    pub from_state: State,
    pub to_state: State,
    pub round: u32,
    #[schema(value_type = Object)]
    pub detail: Value,
}

/// A reviewer's comment on one file in one round.
#[derive(Clone, Debug)]
pub struct Comment {
    pub round: u32,
    pub reviewer: String,
    pub file: String,
    pub text: String,
}

/// Everything stored about a request: its state, its files and the reviewers' comments.
#[derive(Clone, Debug)]
pub struct RequestRecord {
    pub id: String,
    pub project: String,
    pub title: String,
    pub context: String,
    pub controls: String,
    pub reviews_required: u32,
    pub created_at: String,
    pub request: Request,
    pub files: Vec<FileRecord>,
    pub comments: Vec<Comment>,
}

pub struct NewRequest<'a> {
    pub id: &'a str,
    pub project: &'a str,
    pub direction: Direction,
    pub title: &'a str,
    pub context: &'a str,
    pub controls: &'a str,
    pub author: &'a str,
    pub reviews_required: u32,
}

pub async fn create(conn: &mut AnyConnection, new: &NewRequest<'_>) -> Result<(), StoreError> {
    let now = timestamp(chrono::Utc::now());
    sqlx::query(
        "INSERT INTO airlock_requests (id, project, direction, title, context, controls, author, state, \
         round, reviews_required, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 1, $9, $10, $10)",
    )
    .bind(new.id)
    .bind(new.project)
    .bind(text(new.direction))
    .bind(new.title)
    .bind(new.context)
    .bind(new.controls)
    .bind(new.author)
    .bind(text(State::Draft))
    .bind(i64::from(new.reviews_required))
    .bind(&now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

// The columns each row mapper reads (macros, so that queries stay static strings).
macro_rules! request_columns {
    () => {
        "id, project, direction, title, context, controls, author, state, round, reviews_required, created_at"
    };
}
macro_rules! file_columns {
    () => {
        "f.name, f.sha256, f.size, f.disclosure"
    };
}
macro_rules! vote_columns {
    () => {
        "v.round, v.reviewer, v.file, v.vote, v.comment"
    };
}
macro_rules! history_columns {
    () => {
        "h.at, h.actor, h.action, h.from_state, h.to_state, h.round, h.detail"
    };
}

/// The request `id` of `project`, with its files and votes.
pub async fn load(
    conn: &mut AnyConnection,
    project: &str,
    id: &str,
) -> Result<Option<RequestRecord>, StoreError> {
    let Some(row) = sqlx::query(concat!(
        "SELECT ",
        request_columns!(),
        " FROM airlock_requests WHERE id = $1 AND project = $2"
    ))
    .bind(id)
    .bind(project)
    .fetch_optional(&mut *conn)
    .await?
    else {
        return Ok(None);
    };
    let files = sqlx::query(concat!(
        "SELECT ",
        file_columns!(),
        " FROM airlock_files f WHERE f.request_id = $1 ORDER BY f.name"
    ))
    .bind(id)
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(file_row)
    .collect::<Result<_, _>>()?;
    let votes = sqlx::query(concat!(
        "SELECT ",
        vote_columns!(),
        " FROM airlock_votes v WHERE v.request_id = $1 ORDER BY v.at, v.reviewer, v.file"
    ))
    .bind(id)
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(vote_row)
    .collect::<Result<_, _>>()?;
    request_record(&row, files, votes).map(Some)
}

/// Every request of `project`, oldest first, each with its history: four queries whatever the
/// number of requests.
pub async fn load_project(
    conn: &mut AnyConnection,
    project: &str,
) -> Result<Vec<(RequestRecord, Vec<HistoryEntry>)>, StoreError> {
    let requests = sqlx::query(concat!(
        "SELECT ",
        request_columns!(),
        " FROM airlock_requests WHERE project = $1 ORDER BY created_at"
    ))
    .bind(project)
    .fetch_all(&mut *conn)
    .await?;
    let mut files: HashMap<String, Vec<FileRecord>> = HashMap::new();
    for row in sqlx::query(concat!("SELECT f.request_id, ", file_columns!(), " FROM airlock_files f JOIN airlock_requests r ON r.id = f.request_id WHERE r.project = $1 ORDER BY f.name"))
    .bind(project)
    .fetch_all(&mut *conn)
    .await?
    {
        files
            .entry(row.try_get("request_id")?)
            .or_default()
            .push(file_row(&row)?);
    }
    let mut votes: HashMap<String, Vec<(Vote, Comment)>> = HashMap::new();
    for row in sqlx::query(concat!("SELECT v.request_id, ", vote_columns!(), " FROM airlock_votes v JOIN airlock_requests r ON r.id = v.request_id WHERE r.project = $1 ORDER BY v.at, v.reviewer, v.file"))
    .bind(project)
    .fetch_all(&mut *conn)
    .await?
    {
        votes.entry(row.try_get("request_id")?).or_default().push(vote_row(&row)?);
    }
    let mut history: HashMap<String, Vec<HistoryEntry>> = HashMap::new();
    for row in sqlx::query(concat!("SELECT h.request_id, ", history_columns!(), " FROM airlock_history h JOIN airlock_requests r ON r.id = h.request_id WHERE r.project = $1 ORDER BY h.seq"))
    .bind(project)
    .fetch_all(&mut *conn)
    .await?
    {
        history
            .entry(row.try_get("request_id")?)
            .or_default()
            .push(history_row(&row)?);
    }
    requests
        .iter()
        .map(|row| {
            let id: String = row.try_get("id")?;
            let record = request_record(
                row,
                files.remove(&id).unwrap_or_default(),
                votes.remove(&id).unwrap_or_default(),
            )?;
            Ok((record, history.remove(&id).unwrap_or_default()))
        })
        .collect()
}

fn file_row(r: &AnyRow) -> Result<FileRecord, StoreError> {
    let disclosure: Option<String> = r.try_get("disclosure")?;
    Ok(FileRecord {
        name: r.try_get("name")?,
        sha256: r.try_get("sha256")?,
        size: r.try_get("size")?,
        disclosure: disclosure.and_then(|d| serde_json::from_str(&d).ok()),
    })
}

/// A vote and its comment (every vote carries one, possibly empty).
fn vote_row(r: &AnyRow) -> Result<(Vote, Comment), StoreError> {
    let round: i64 = r.try_get("round")?;
    let vote: String = r.try_get("vote")?;
    let vote = Vote {
        round: round as u32,
        reviewer: r.try_get("reviewer")?,
        file: r.try_get("file")?,
        vote: parse::<VoteKind>(&vote)?,
    };
    let comment = Comment {
        round: vote.round,
        reviewer: vote.reviewer.clone(),
        file: vote.file.clone(),
        text: r.try_get("comment")?,
    };
    Ok((vote, comment))
}

fn request_record(
    row: &AnyRow,
    files: Vec<FileRecord>,
    votes: Vec<(Vote, Comment)>,
) -> Result<RequestRecord, StoreError> {
    let state: String = row.try_get("state")?;
    let direction: String = row.try_get("direction")?;
    let round: i64 = row.try_get("round")?;
    let required: i64 = row.try_get("reviews_required")?;
    let (votes, comments) = votes.into_iter().unzip();
    Ok(RequestRecord {
        id: row.try_get("id")?,
        project: row.try_get("project")?,
        title: row.try_get("title")?,
        context: row.try_get("context")?,
        controls: row.try_get("controls")?,
        reviews_required: required as u32,
        created_at: row.try_get("created_at")?,
        request: Request {
            direction: parse(&direction)?,
            author: row.try_get("author")?,
            state: parse(&state)?,
            round: round as u32,
            files: files.iter().map(|f| f.name.clone()).collect(),
            votes,
        },
        files,
        comments,
    })
}

pub async fn history(conn: &mut AnyConnection, id: &str) -> Result<Vec<HistoryEntry>, StoreError> {
    sqlx::query(concat!(
        "SELECT ",
        history_columns!(),
        " FROM airlock_history h WHERE h.request_id = $1 ORDER BY h.seq"
    ))
    .bind(id)
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(history_row)
    .collect()
}

fn history_row(r: &AnyRow) -> Result<HistoryEntry, StoreError> {
    let from: String = r.try_get("from_state")?;
    let to: String = r.try_get("to_state")?;
    let round: i64 = r.try_get("round")?;
    let detail: String = r.try_get("detail")?;
    Ok(HistoryEntry {
        at: r.try_get("at")?,
        actor: r.try_get("actor")?,
        action: r.try_get("action")?,
        from_state: parse(&from)?,
        to_state: parse(&to)?,
        round: round as u32,
        detail: serde_json::from_str(&detail).unwrap_or(Value::Null),
    })
}

/// Stores the state machine's verdict: the request's state and round, and one history entry.
pub async fn record_step(
    conn: &mut AnyConnection,
    id: &str,
    actor: &str,
    action: &str,
    before: &Request,
    after: &Request,
    detail: &Value,
) -> Result<(), StoreError> {
    let now = timestamp(chrono::Utc::now());
    sqlx::query(
        "UPDATE airlock_requests SET state = $1, round = $2, updated_at = $3 WHERE id = $4",
    )
    .bind(text(after.state))
    .bind(i64::from(after.round))
    .bind(&now)
    .bind(id)
    .execute(&mut *conn)
    .await?;
    let seq: i64 = sqlx::query("SELECT COUNT(*) AS n FROM airlock_history WHERE request_id = $1")
        .bind(id)
        .fetch_one(&mut *conn)
        .await?
        .try_get("n")?;
    sqlx::query(
        "INSERT INTO airlock_history (request_id, seq, at, actor, action, from_state, to_state, round, detail) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(id)
    .bind(seq + 1)
    .bind(&now)
    .bind(actor)
    .bind(action)
    .bind(text(before.state))
    .bind(text(after.state))
    .bind(i64::from(after.round))
    .bind(detail.to_string())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn put_file(
    conn: &mut AnyConnection,
    id: &str,
    name: &str,
    sha256: &str,
    size: u64,
) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM airlock_files WHERE request_id = $1 AND name = $2")
        .bind(id)
        .bind(name)
        .execute(&mut *conn)
        .await?;
    sqlx::query("INSERT INTO airlock_files (request_id, name, sha256, size, added_at) VALUES ($1, $2, $3, $4, $5)")
        .bind(id)
        .bind(name)
        .bind(sha256)
        .bind(size as i64)
        .bind(timestamp(chrono::Utc::now()))
        .execute(&mut *conn)
        .await?;
    Ok(())
}

pub async fn remove_file(conn: &mut AnyConnection, id: &str, name: &str) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM airlock_files WHERE request_id = $1 AND name = $2")
        .bind(id)
        .bind(name)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

pub async fn set_disclosure(
    conn: &mut AnyConnection,
    id: &str,
    name: &str,
    record: &FileChecks,
) -> Result<(), StoreError> {
    let record = serde_json::to_string(record)
        .map_err(|e| StoreError::Corrupt(format!("a file's checks do not serialize: {e}")))?;
    sqlx::query("UPDATE airlock_files SET disclosure = $1 WHERE request_id = $2 AND name = $3")
        .bind(record)
        .bind(id)
        .bind(name)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

pub async fn add_votes(
    conn: &mut AnyConnection,
    id: &str,
    round: u32,
    reviewer: &str,
    votes: &[(String, VoteKind, String)],
) -> Result<(), StoreError> {
    let now = timestamp(chrono::Utc::now());
    for (file, vote, comment) in votes {
        sqlx::query(
            "INSERT INTO airlock_votes (request_id, round, reviewer, file, vote, comment, at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(id)
        .bind(i64::from(round))
        .bind(reviewer)
        .bind(file)
        .bind(text(*vote))
        .bind(comment)
        .bind(&now)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Ids of requests in `states` for `direction`, oldest first, with their project and author.
pub async fn in_states(
    conn: &mut AnyConnection,
    direction: Direction,
    states: &[State],
) -> Result<Vec<(String, String, String)>, StoreError> {
    let mut found = Vec::new();
    for state in states {
        let rows = sqlx::query(
            "SELECT id, project, author FROM airlock_requests WHERE direction = $1 AND state = $2 ORDER BY created_at",
        )
        .bind(text(direction))
        .bind(text(*state))
        .fetch_all(&mut *conn)
        .await?;
        for r in rows {
            found.push((
                r.try_get("id")?,
                r.try_get("project")?,
                r.try_get("author")?,
            ));
        }
    }
    Ok(found)
}

/// How many egress requests each project has had released (for the public register).
pub async fn released_egress_counts(
    conn: &mut AnyConnection,
) -> Result<std::collections::BTreeMap<String, i64>, StoreError> {
    let rows = sqlx::query(
        "SELECT project, COUNT(*) AS n FROM airlock_requests \
         WHERE direction = $1 AND state = $2 GROUP BY project",
    )
    .bind(text(Direction::Egress))
    .bind(text(State::Released))
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("project")?, r.try_get("n")?)))
        .collect()
}

/// How many of `project`'s requests are open, and how many were made since `since`.
pub async fn project_counts(
    conn: &mut AnyConnection,
    project: &str,
    since: &str,
) -> Result<(u32, u32), StoreError> {
    let open: i64 = sqlx::query(
        "SELECT COUNT(*) AS n FROM airlock_requests WHERE project = $1 \
         AND state IN ('draft', 'submitted', 'in_review', 'reviewed', 'returned', 'approved')",
    )
    .bind(project)
    .fetch_one(&mut *conn)
    .await?
    .try_get("n")?;
    let recent: i64 = sqlx::query(
        "SELECT COUNT(*) AS n FROM airlock_requests WHERE project = $1 AND created_at >= $2",
    )
    .bind(project)
    .bind(since)
    .fetch_one(&mut *conn)
    .await?
    .try_get("n")?;
    Ok((open as u32, recent as u32))
}
