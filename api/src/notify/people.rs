//! The people Trellis has seen (table `people`): each browser sign-in and, at most hourly, each
//! bearer token records a person's address, name and platform roles, so that notifications can
//! find the author of a request, a project's members and the holders of a reviewer role.

use std::collections::{BTreeSet, HashMap};
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sqlx::{AnyConnection, Row};

use super::message::{Kind, Notice, Person, named, reviewer_role};
use crate::identity::{Credential, PlatformRole, Principal};
use crate::store::{Store, StoreError, timestamp};

/// A bearer token's holder is written again only this long after the last write (unless what
/// the token says about them changed): not one database write per API call.
pub const SEEN_INTERVAL: Duration = Duration::from_secs(3600);

/// Entries kept in memory before old ones are dropped.
const REMEMBERED: usize = 10_000;

#[derive(Clone)]
pub struct People {
    store: Store,
    /// Subject → when last written and a digest of what was written.
    recent: Arc<Mutex<HashMap<String, (Instant, u64)>>>,
}

fn fingerprint(who: &Principal) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    (&who.email, &who.name, &who.roles).hash(&mut hasher);
    hasher.finish()
}

/// Workspace tokens and personal access tokens carry no roles (and a workspace token no
/// address): recording them would erase what the person's own sign-in said. A DataSHIELD
/// server's token names no person at all.
fn recorded(who: &Principal) -> bool {
    !matches!(
        who.credential,
        Credential::Workspace { .. }
            | Credential::AccessToken { .. }
            | Credential::DataShield { .. }
    )
}

impl People {
    pub fn new(store: Store) -> Self {
        Self {
            store,
            recent: Arc::default(),
        }
    }

    /// Records `who` on `conn` (a sign-in's transaction). An address or name the claims leave out
    /// keeps the one known; the roles are always the latest.
    pub async fn seen(&self, conn: &mut AnyConnection, who: &Principal) -> Result<(), StoreError> {
        if !recorded(who) {
            return Ok(());
        }
        let roles = serde_json::to_string(&who.roles)
            .map_err(|e| StoreError::Corrupt(format!("roles: {e}")))?;
        sqlx::query(
            "INSERT INTO people (subject, email, display_name, roles, last_seen) \
             VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (subject) DO UPDATE SET \
             email = COALESCE(excluded.email, people.email), \
             display_name = COALESCE(excluded.display_name, people.display_name), \
             roles = excluded.roles, last_seen = excluded.last_seen",
        )
        .bind(&who.subject)
        .bind(&who.email)
        .bind(&who.name)
        .bind(roles)
        .bind(timestamp(chrono::Utc::now()))
        .execute(&mut *conn)
        .await?;
        self.remember(who);
        Ok(())
    }

    /// Records a bearer token's holder unless that was done within [`SEEN_INTERVAL`] with the
    /// same details. A failure is logged: it must not refuse the call.
    pub async fn touch(&self, who: &Principal) {
        if !recorded(who) || self.fresh(who) {
            return;
        }
        let written = async {
            let mut conn = self.store.connection().await?;
            self.seen(&mut conn, who).await
        }
        .await;
        if let Err(error) = written {
            tracing::warn!(%error, subject = %who.subject, "could not record who called");
        }
    }

    fn fresh(&self, who: &Principal) -> bool {
        let recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        recent
            .get(&who.subject)
            .is_some_and(|(at, digest)| at.elapsed() < SEEN_INTERVAL && *digest == fingerprint(who))
    }

    fn remember(&self, who: &Principal) {
        let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        if recent.len() >= REMEMBERED {
            recent.retain(|_, (at, _)| at.elapsed() < SEEN_INTERVAL);
        }
        recent.insert(who.subject.clone(), (Instant::now(), fingerprint(who)));
    }

    /// Everyone a notice could be for: the holders of the reviewer role for a submission, the
    /// people it names otherwise. [`super::message::audience`] decides among them.
    pub async fn candidates(&self, notice: &Notice) -> Result<Vec<Person>, StoreError> {
        let pool = self.store.pool();
        let rows = if notice.kind == Kind::Submitted {
            let role = serde_json::to_string(&reviewer_role(notice.direction))
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            sqlx::query(
                "SELECT subject, email, display_name, roles FROM people WHERE roles LIKE $1 \
                 ORDER BY subject",
            )
            .bind(format!("%{role}%"))
            .fetch_all(pool)
            .await?
        } else {
            let subjects = named(notice);
            if subjects.is_empty() {
                return Ok(Vec::new());
            }
            let placeholders: Vec<String> = (1..=subjects.len()).map(|n| format!("${n}")).collect();
            let sql = format!(
                "SELECT subject, email, display_name, roles FROM people WHERE subject IN ({}) \
                 ORDER BY subject",
                placeholders.join(", ")
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for subject in &subjects {
                query = query.bind(subject);
            }
            query.fetch_all(pool).await?
        };
        rows.iter()
            .map(|row| {
                let roles: String = row.try_get("roles")?;
                Ok(Person {
                    subject: row.try_get("subject")?,
                    email: row.try_get("email")?,
                    name: row.try_get("display_name")?,
                    roles: serde_json::from_str::<BTreeSet<PlatformRole>>(&roles)
                        .map_err(|e| StoreError::Corrupt(format!("people.roles: {e}")))?,
                })
            })
            .collect()
    }
}

/// A fresh SQLite store in memory, for tests: one connection, so everything sees one database.
#[cfg(test)]
pub(crate) async fn test_store() -> Store {
    Store::open("sqlite::memory:", 1)
        .await
        .expect("a SQLite store")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::airlock::state::Direction;

    async fn store() -> Store {
        test_store().await
    }

    fn principal(subject: &str, email: Option<&str>, roles: &[PlatformRole]) -> Principal {
        Principal {
            subject: subject.into(),
            name: Some(subject.to_uppercase()),
            email: email.map(String::from),
            roles: roles.iter().copied().collect(),
            credential: Credential::Bearer,
        }
    }

    fn notice(kind: Kind) -> Notice {
        Notice {
            kind,
            project: "p".into(),
            id: "r".into(),
            title: "t".into(),
            direction: Direction::Egress,
            author: "alice".into(),
            round: 1,
            members: ["alice", "bob"].map(String::from).into(),
            members_may_review: false,
        }
    }

    async fn count(store: &Store) -> i64 {
        sqlx::query("SELECT COUNT(*) AS n FROM people")
            .fetch_one(store.pool())
            .await
            .unwrap()
            .try_get("n")
            .unwrap()
    }

    #[tokio::test]
    async fn people_are_found_by_role_and_by_name() {
        let store = store().await;
        let people = People::new(store.clone());
        let checker = principal("carol", Some("carol@x"), &[PlatformRole::OutputChecker]);
        people.touch(&checker).await;
        people
            .touch(&principal(
                "steward",
                Some("s@x"),
                &[PlatformRole::DataSteward],
            ))
            .await;
        people.touch(&principal("bob", None, &[])).await;
        let mut workspace = principal("alice", None, &[]);
        workspace.credential = Credential::Workspace {
            project: "p".into(),
            workspace: "w".into(),
        };
        people.touch(&workspace).await;
        assert_eq!(count(&store).await, 3, "workspace tokens are not recorded");

        let reviewers = people.candidates(&notice(Kind::Submitted)).await.unwrap();
        assert_eq!(reviewers.len(), 1);
        assert_eq!(reviewers[0].email.as_deref(), Some("carol@x"));
        assert_eq!(reviewers[0].name.as_deref(), Some("CAROL"));
        let released = people.candidates(&notice(Kind::Released)).await.unwrap();
        assert_eq!(released.len(), 1);
        assert_eq!(
            (released[0].subject.as_str(), &released[0].email),
            ("bob", &None)
        );
        assert!(
            people
                .candidates(&notice(Kind::Approved))
                .await
                .unwrap()
                .is_empty(),
            "alice never signed in"
        );
    }

    #[tokio::test]
    async fn tokens_are_recorded_hourly_unless_they_say_something_new() {
        let store = store().await;
        let people = People::new(store.clone());
        let carol = principal("carol", Some("carol@x"), &[PlatformRole::OutputChecker]);
        people.touch(&carol).await;
        let last_seen = || async {
            sqlx::query("SELECT last_seen FROM people WHERE subject = 'carol'")
                .fetch_one(store.pool())
                .await
                .unwrap()
                .try_get::<String, _>("last_seen")
                .unwrap()
        };
        let first = last_seen().await;
        tokio::time::sleep(Duration::from_millis(5)).await;
        people.touch(&carol).await;
        assert_eq!(
            last_seen().await,
            first,
            "not written again within the hour"
        );

        // Lost the role: written at once. A token without an address keeps the known one.
        let demoted = principal("carol", None, &[]);
        people.touch(&demoted).await;
        assert_ne!(last_seen().await, first);
        let found = people.candidates(&notice(Kind::Submitted)).await.unwrap();
        assert!(found.is_empty(), "no longer an output checker: {found:?}");
        let row = sqlx::query("SELECT email FROM people WHERE subject = 'carol'")
            .fetch_one(store.pool())
            .await
            .unwrap();
        assert_eq!(
            row.try_get::<Option<String>, _>("email")
                .unwrap()
                .as_deref(),
            Some("carol@x")
        );
    }
}
