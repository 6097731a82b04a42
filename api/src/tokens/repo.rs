//! Personal access tokens in the database (table `access_tokens`). Functions take a connection:
//! changes run on the audit transaction's, so a token and its audit record commit together.

use chrono::NaiveDate;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use crate::store::StoreError;

/// A token as stored (never the token itself: only its digest is kept, and not returned here).
#[derive(Clone, Debug, PartialEq)]
pub struct TokenRecord {
    pub id: String,
    pub owner: String,
    pub owner_name: Option<String>,
    pub owner_email: Option<String>,
    pub name: String,
    pub projects: Vec<String>,
    pub created_at: String,
    /// The last day the token works (UTC).
    pub expires_on: NaiveDate,
    pub last_used_at: Option<String>,
    pub revoked_at: Option<String>,
}

pub struct NewToken<'a> {
    pub id: &'a str,
    /// SHA-256 (hex) of the token.
    pub token_hash: &'a str,
    pub owner: &'a str,
    pub owner_name: Option<&'a str>,
    pub owner_email: Option<&'a str>,
    pub name: &'a str,
    pub projects: &'a [String],
    pub created_at: &'a str,
    pub expires_on: NaiveDate,
}

const COLUMNS: &str = "id, owner, owner_name, owner_email, name, projects, created_at, \
                       expires_on, last_used_at, revoked_at";

fn record(row: &AnyRow) -> Result<TokenRecord, StoreError> {
    let projects: String = row.try_get("projects")?;
    let expires: String = row.try_get("expires_on")?;
    Ok(TokenRecord {
        id: row.try_get("id")?,
        owner: row.try_get("owner")?,
        owner_name: row.try_get("owner_name")?,
        owner_email: row.try_get("owner_email")?,
        name: row.try_get("name")?,
        projects: serde_json::from_str(&projects)
            .map_err(|e| StoreError::Corrupt(format!("access_tokens.projects: {e}")))?,
        created_at: row.try_get("created_at")?,
        expires_on: expires
            .parse()
            .map_err(|e| StoreError::Corrupt(format!("access_tokens.expires_on: {e}")))?,
        last_used_at: row.try_get("last_used_at")?,
        revoked_at: row.try_get("revoked_at")?,
    })
}

pub async fn insert(conn: &mut AnyConnection, new: &NewToken<'_>) -> Result<(), StoreError> {
    let projects = serde_json::to_string(new.projects)
        .map_err(|e| StoreError::Corrupt(format!("projects: {e}")))?;
    sqlx::query(
        "INSERT INTO access_tokens (id, token_hash, owner, owner_name, owner_email, name, \
         projects, created_at, expires_on) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(new.id)
    .bind(new.token_hash)
    .bind(new.owner)
    .bind(new.owner_name)
    .bind(new.owner_email)
    .bind(new.name)
    .bind(projects)
    .bind(new.created_at)
    .bind(new.expires_on.to_string())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The owner's tokens, newest first.
pub async fn by_owner(
    conn: &mut AnyConnection,
    owner: &str,
) -> Result<Vec<TokenRecord>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM access_tokens WHERE owner = $1 ORDER BY created_at DESC, id"
    );
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(owner)
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(record)
        .collect()
}

/// The token whose digest is `token_hash`.
pub async fn by_hash(
    conn: &mut AnyConnection,
    token_hash: &str,
) -> Result<Option<TokenRecord>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM access_tokens WHERE token_hash = $1");
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(token_hash)
        .fetch_optional(&mut *conn)
        .await?
        .as_ref()
        .map(record)
        .transpose()
}

pub async fn get(conn: &mut AnyConnection, id: &str) -> Result<Option<TokenRecord>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM access_tokens WHERE id = $1");
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?
        .as_ref()
        .map(record)
        .transpose()
}

/// Marks a token revoked at `at`; false if it already was.
pub async fn revoke(conn: &mut AnyConnection, id: &str, at: &str) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "UPDATE access_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
    )
    .bind(at)
    .bind(id)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Records a use at `at` unless one was recorded since `since` (another replica may have).
pub async fn touch(
    conn: &mut AnyConnection,
    id: &str,
    at: &str,
    since: &str,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE access_tokens SET last_used_at = $1 \
         WHERE id = $2 AND (last_used_at IS NULL OR last_used_at < $3)",
    )
    .bind(at)
    .bind(id)
    .bind(since)
    .execute(&mut *conn)
    .await?;
    Ok(())
}
