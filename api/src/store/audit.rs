//! The audit log: append-only, each record carrying the SHA-256 of its content and of the record
//! before it, so that changing, removing or re-ordering any record breaks the chain.
//!
//! A change and its record commit together: [`Audit::begin`] opens a transaction that first takes
//! the chain's head (which also serialises writers), the caller makes its change on the same
//! connection, and [`AuditTx::commit`] appends the record and commits. Dropping an `AuditTx`
//! rolls both back.

use std::io::Write;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use sqlx::{Any, AnyConnection, Row, Transaction};
use utoipa::ToSchema;

use super::{Store, StoreError, timestamp};

/// The `prev_hash` of the first record.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// The action happened.
    Success,
    /// Policy refused it.
    Denied,
    /// It was allowed but failed (e.g. the Kubernetes API refused the change).
    Failure,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Denied => "denied",
            Outcome::Failure => "failure",
        }
    }
    fn parse(s: &str) -> Result<Self, StoreError> {
        match s {
            "success" => Ok(Outcome::Success),
            "denied" => Ok(Outcome::Denied),
            "failure" => Ok(Outcome::Failure),
            other => Err(StoreError::Corrupt(format!(
                "unknown audit outcome `{other}`"
            ))),
        }
    }
}

/// What happened, before it is placed in the chain.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    pub actor: String,
    pub roles: Vec<String>,
    pub action: String,
    pub target: String,
    pub project: Option<String>,
    pub outcome: Outcome,
    pub detail: Value,
}

impl Event {
    /// The project the event belongs to.
    pub fn in_project(mut self, project: Option<&str>) -> Event {
        self.project = project.map(str::to_owned);
        self
    }

    pub fn with_outcome(mut self, outcome: Outcome) -> Event {
        self.outcome = outcome;
        self
    }

    pub fn with_detail(mut self, detail: Value) -> Event {
        self.detail = detail;
        self
    }
}

/// Which records an auditor is looking for. Empty fields match everything; `action` matches
/// itself and the actions under it (`airlock` matches `airlock.vote`).
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct Filter {
    #[serde(default)]
    pub actor: String,
    #[serde(default)]
    pub action: String,
    #[serde(default)]
    pub project: String,
    #[serde(default)]
    pub outcome: Option<Outcome>,
    /// Only records older than this sequence number (for paging back).
    #[serde(default)]
    pub before: Option<i64>,
}

fn like_escape(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

/// A record as stored and exported.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Record {
    pub seq: i64,
    pub at: String,
    pub actor: String,
    pub roles: Vec<String>,
    pub action: String,
    pub target: String,
    pub project: Option<String>,
    pub outcome: Outcome,
    #[schema(value_type = Object)]
    pub detail: Value,
    pub prev_hash: String,
    pub hash: String,
}

/// The hash of a record's content and its predecessor's hash. The content is serialised as a
/// JSON array, which has exactly one encoding for the same values.
pub fn record_hash(record: &Record) -> String {
    let content = serde_json::json!([
        record.seq,
        record.at,
        record.actor,
        record.roles,
        record.action,
        record.target,
        record.project,
        record.outcome.as_str(),
        record.detail,
        record.prev_hash,
    ]);
    hex::encode(Sha256::digest(content.to_string().as_bytes()))
}

/// The first place where a sequence of records stops being an unbroken chain.
#[derive(Debug, PartialEq, Eq, Serialize)]
pub struct Break {
    pub seq: i64,
    pub reason: String,
}

/// Checks the chain as it is read, page by page (pure: the pages come from the database in
/// [`Audit::verify`] and from anywhere in the tests). Links across pages count like any other.
pub struct ChainVerifier {
    verified: u64,
    last_seq: i64,
    last_hash: String,
}

impl Default for ChainVerifier {
    fn default() -> Self {
        ChainVerifier {
            verified: 0,
            last_seq: 0,
            last_hash: GENESIS.to_string(),
        }
    }
}

impl ChainVerifier {
    /// The next records, in order; the first break found is returned.
    pub fn feed(&mut self, page: &[Record]) -> Result<(), Break> {
        for record in page {
            let expected_seq = self.last_seq + 1;
            if record.seq != expected_seq {
                return Err(Break {
                    seq: expected_seq,
                    reason: format!("record {expected_seq} is missing (next is {})", record.seq),
                });
            }
            if record.prev_hash != self.last_hash {
                return Err(Break {
                    seq: record.seq,
                    reason: "it does not link to the record before it".into(),
                });
            }
            if record_hash(record) != record.hash {
                return Err(Break {
                    seq: record.seq,
                    reason: "its content does not match its hash".into(),
                });
            }
            self.verified += 1;
            self.last_seq = record.seq;
            self.last_hash = record.hash.clone();
        }
        Ok(())
    }

    /// After the last page: the stored head (last seq and hash) must name the last record read.
    pub fn finish(self, head: (i64, &str)) -> Result<u64, Break> {
        check_head(self.last_seq, &self.last_hash, head)?;
        Ok(self.verified)
    }
}

/// The stored head must name the last record: otherwise records were cut off the end.
fn check_head(last_seq: i64, last_hash: &str, head: (i64, &str)) -> Result<(), Break> {
    if head.0 != last_seq || head.1 != last_hash {
        return Err(Break {
            seq: last_seq + 1,
            reason: format!(
                "the chain ends at record {last_seq} but the log's head says {}",
                head.0
            ),
        });
    }
    Ok(())
}

#[derive(Clone)]
pub struct Audit {
    store: Store,
}

/// An open transaction holding the chain's head.
pub struct AuditTx {
    tx: Transaction<'static, Any>,
    seq: i64,
    prev_hash: String,
}

impl AuditTx {
    /// The connection to make the audited change on.
    pub fn conn(&mut self) -> &mut AnyConnection {
        &mut self.tx
    }

    /// Appends the record of `event` and commits it with whatever was done on [`Self::conn`].
    pub async fn commit(mut self, event: Event) -> Result<Record, StoreError> {
        let record = self.append(event).await?;
        self.tx.commit().await?;
        Ok(record)
    }

    /// Commits what was appended with [`Self::append`] and done on [`Self::conn`].
    pub async fn finish(self) -> Result<(), StoreError> {
        self.tx.commit().await?;
        Ok(())
    }

    /// Appends the record of `event` to the chain without committing: for a change made of
    /// several steps, each with its own record, that must commit together.
    pub async fn append(&mut self, event: Event) -> Result<Record, StoreError> {
        let record = Record {
            seq: self.seq,
            at: timestamp(chrono::Utc::now()),
            actor: event.actor,
            roles: event.roles,
            action: event.action,
            target: event.target,
            project: event.project,
            outcome: event.outcome,
            detail: event.detail,
            prev_hash: self.prev_hash.clone(),
            hash: String::new(),
        };
        let record = Record {
            hash: record_hash(&record),
            ..record
        };
        sqlx::query(
            "INSERT INTO audit_records \
             (seq, at, actor, roles, action, target, project, outcome, detail, prev_hash, hash) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(record.seq)
        .bind(&record.at)
        .bind(&record.actor)
        .bind(serde_json::to_string(&record.roles).unwrap_or_default())
        .bind(&record.action)
        .bind(&record.target)
        .bind(record.project.clone())
        .bind(record.outcome.as_str())
        .bind(record.detail.to_string())
        .bind(&record.prev_hash)
        .bind(&record.hash)
        .execute(&mut *self.tx)
        .await?;
        sqlx::query("UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1")
            .bind(record.seq)
            .bind(&record.hash)
            .execute(&mut *self.tx)
            .await?;
        self.seq += 1;
        self.prev_hash = record.hash.clone();
        Ok(record)
    }
}

impl Audit {
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    /// Opens a transaction that will append the next record.
    pub async fn begin(&self) -> Result<AuditTx, StoreError> {
        let mut tx = self.store.pool().begin().await?;
        // Writing first takes the database's write lock on SQLite and the head row's lock on
        // PostgreSQL, so concurrent writers queue here instead of forking the chain.
        let row =
            sqlx::query("UPDATE audit_head SET seq = seq + 1 WHERE id = 1 RETURNING seq, hash")
                .fetch_one(&mut *tx)
                .await?;
        Ok(AuditTx {
            seq: row.try_get("seq")?,
            prev_hash: row.try_get("hash")?,
            tx,
        })
    }

    /// Records an event that changes nothing else (a denial, a failed sign-in).
    pub async fn record(&self, event: Event) -> Result<Record, StoreError> {
        self.begin().await?.commit(event).await
    }

    /// The head: the newest record's sequence number and hash.
    pub async fn head(&self) -> Result<(i64, String), StoreError> {
        let row = sqlx::query("SELECT seq, hash FROM audit_head WHERE id = 1")
            .fetch_one(self.store.pool())
            .await?;
        Ok((row.try_get("seq")?, row.try_get("hash")?))
    }

    /// Records with `seq` greater than `after`, oldest first, at most `limit`.
    pub async fn page(&self, after: i64, limit: i64) -> Result<Vec<Record>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, at, actor, roles, action, target, project, outcome, detail, prev_hash, hash \
             FROM audit_records WHERE seq > $1 ORDER BY seq LIMIT $2",
        )
        .bind(after)
        .bind(limit)
        .fetch_all(self.store.pool())
        .await?;
        rows.iter().map(row_to_record).collect()
    }

    /// The newest records matching `filter`, newest first: records with `seq` below
    /// `filter.before` (when set), at most `limit`.
    pub async fn search(&self, filter: &Filter, limit: i64) -> Result<Vec<Record>, StoreError> {
        // Empty strings and zero mean "any", so one static statement serves every filter on both
        // databases (no typeless NULL parameters for PostgreSQL to reject).
        let rows = sqlx::query(
            "SELECT seq, at, actor, roles, action, target, project, outcome, detail, prev_hash, hash \
             FROM audit_records \
             WHERE ($1 = '' OR actor = $1) \
               AND ($2 = '' OR action = $2 OR action LIKE $3 ESCAPE '\\') \
               AND ($4 = '' OR project = $4) \
               AND ($5 = '' OR outcome = $5) \
               AND ($6 = 0 OR seq < $6) \
             ORDER BY seq DESC LIMIT $7",
        )
        .bind(filter.actor.as_str())
        .bind(filter.action.as_str())
        .bind(format!("{}.%", like_escape(&filter.action)))
        .bind(filter.project.as_str())
        .bind(filter.outcome.map_or("", Outcome::as_str))
        .bind(filter.before.unwrap_or(0))
        .bind(limit)
        .fetch_all(self.store.pool())
        .await?;
        rows.iter().map(row_to_record).collect()
    }

    /// How many successful records of `action` each project has (for the public register).
    pub async fn counts_by_project(
        &self,
        action: &str,
    ) -> Result<std::collections::BTreeMap<String, i64>, StoreError> {
        let rows = sqlx::query(
            "SELECT project, COUNT(*) AS n FROM audit_records \
             WHERE action = $1 AND outcome = $2 AND project IS NOT NULL GROUP BY project",
        )
        .bind(action)
        .bind(Outcome::Success.as_str())
        .fetch_all(self.store.pool())
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("project")?, r.try_get("n")?)))
            .collect()
    }

    /// Walks the whole chain in pages; returns the number of records or the first break.
    pub async fn verify(&self) -> Result<Result<u64, Break>, StoreError> {
        let head = self.head().await?;
        let mut verifier = ChainVerifier::default();
        let mut after = 0;
        loop {
            let page = self.page(after, 1000).await?;
            let Some(last) = page.last() else { break };
            after = last.seq;
            if let Err(found) = verifier.feed(&page) {
                return Ok(Err(found));
            }
        }
        Ok(verifier.finish((head.0, &head.1)))
    }

    /// Writes every record as JSON Lines.
    pub async fn export(&self, out: &mut impl Write) -> Result<u64, StoreError> {
        let mut after = 0;
        let mut count = 0;
        loop {
            let page = self.page(after, 1000).await?;
            let Some(last) = page.last() else { break };
            after = last.seq;
            for record in &page {
                let line = serde_json::to_string(record)
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?;
                writeln!(out, "{line}")
                    .map_err(|e| StoreError::Corrupt(format!("writing: {e}")))?;
                count += 1;
            }
        }
        Ok(count)
    }
}

fn row_to_record(row: &sqlx::any::AnyRow) -> Result<Record, StoreError> {
    let roles: String = row.try_get("roles")?;
    let detail: String = row.try_get("detail")?;
    let outcome: String = row.try_get("outcome")?;
    let seq: i64 = row.try_get("seq")?;
    Ok(Record {
        seq,
        at: row.try_get("at")?,
        actor: row.try_get("actor")?,
        roles: serde_json::from_str(&roles)
            .map_err(|e| StoreError::Corrupt(format!("record {seq}: roles: {e}")))?,
        action: row.try_get("action")?,
        target: row.try_get("target")?,
        project: row.try_get("project")?,
        outcome: Outcome::parse(&outcome)?,
        detail: serde_json::from_str(&detail)
            .map_err(|e| StoreError::Corrupt(format!("record {seq}: detail: {e}")))?,
        prev_hash: row.try_get("prev_hash")?,
        hash: row.try_get("hash")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn chain(n: i64) -> Vec<Record> {
        let mut prev = GENESIS.to_string();
        (1..=n)
            .map(|seq| {
                let mut r = Record {
                    seq,
                    at: format!("2026-11-22T00:00:{seq:02}.000000Z"),
                    actor: "admin".into(),
                    roles: vec!["admin".into()],
                    action: "project.create".into(),
                    target: format!("project/p{seq}"),
                    project: Some(format!("p{seq}")),
                    outcome: Outcome::Success,
                    detail: json!({"n": seq}),
                    prev_hash: prev.clone(),
                    hash: String::new(),
                };
                r.hash = record_hash(&r);
                prev = r.hash.clone();
                r
            })
            .collect()
    }

    /// Verifies `records` fed in pages of every size from 1 to all of them: every answer must be
    /// the same, wherever the page boundaries fall.
    fn verify_chain(records: &[Record], head: (i64, &str)) -> Result<u64, Break> {
        let verify = |size: usize| {
            let mut verifier = ChainVerifier::default();
            for page in records.chunks(size.max(1)) {
                verifier.feed(page)?;
            }
            verifier.finish(head)
        };
        let whole = verify(records.len());
        for size in 1..records.len() {
            assert_eq!(verify(size), whole, "pages of {size}");
        }
        whole
    }

    fn head(records: &[Record]) -> (i64, &str) {
        records
            .last()
            .map_or((0, GENESIS), |r| (r.seq, r.hash.as_str()))
    }

    #[test]
    fn an_intact_chain_verifies() {
        let records = chain(5);
        assert_eq!(verify_chain(&records, head(&records)), Ok(5));
        assert_eq!(verify_chain(&[], (0, GENESIS)), Ok(0));
    }

    #[test]
    fn any_change_to_any_field_breaks_the_chain_at_that_record() {
        type Tamper = fn(&mut Record);
        let tampers: [Tamper; 8] = [
            |r| r.actor = "mallory".into(),
            |r| r.roles.clear(),
            |r| r.action = "project.read".into(),
            |r| r.target.push('x'),
            |r| r.project = None,
            |r| r.outcome = Outcome::Denied,
            |r| r.detail = json!({}),
            |r| r.at = "2020-01-01T00:00:00.000000Z".into(),
        ];
        for tamper in tampers {
            let mut records = chain(5);
            let h = head(&records.clone()).1.to_string();
            tamper(&mut records[2]);
            assert_eq!(verify_chain(&records, (5, &h)).unwrap_err().seq, 3);
        }
    }

    #[test]
    fn rehashing_a_changed_record_still_breaks_the_next_link() {
        let mut records = chain(5);
        let h = records[4].hash.clone();
        records[1].actor = "mallory".into();
        records[1].hash = record_hash(&records[1]);
        assert_eq!(verify_chain(&records, (5, &h)).unwrap_err().seq, 3);
    }

    #[test]
    fn removed_and_truncated_records_are_found() {
        let mut records = chain(5);
        let h = records[4].hash.clone();
        records.remove(1);
        assert_eq!(verify_chain(&records, (5, &h)).unwrap_err().seq, 2);
        let mut records = chain(5);
        records.truncate(3);
        assert!(verify_chain(&records, (5, &h)).is_err());
    }

    #[test]
    fn a_break_is_found_wherever_the_pages_fall() {
        let mut records = chain(7);
        let h = records[6].hash.clone();
        records[4].detail = json!("x");
        assert_eq!(verify_chain(&records, (7, &h)).unwrap_err().seq, 5);
    }
}
