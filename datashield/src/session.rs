//! Sessions and their commands: the DataSHIELD service that the HTTP edge calls. Each session is
//! one user's R-like global environment (its symbols), bound to one profile; every call is
//! parsed, allow-listed, evaluated against that session only, and logged as a structured event.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use crate::catalogue::Catalogue;
use crate::error::DsError;
use crate::eval::{Env, MethodKind, Symbols};
use crate::language::{self, Expr};
use crate::profile::Profile;
use crate::value::RObject;

/// Bounds that keep one user from exhausting the server.
#[derive(Clone, Debug)]
pub struct Limits {
    pub sessions_per_user: usize,
    pub symbols_per_session: usize,
    /// Finished commands kept per session; the oldest go first.
    pub commands_per_session: usize,
    pub idle_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            sessions_per_user: 8,
            symbols_per_session: 200,
            commands_per_session: 100,
            idle_timeout: Duration::from_secs(3600),
        }
    }
}

/// Why a service call was refused, before or instead of evaluation.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("no session {0}")]
    NoSession(String),
    #[error("no command {0} in this session")]
    NoCommand(String),
    #[error("no profile named '{0}'")]
    NoProfile(String),
    #[error("no table named '{0}'")]
    NoTable(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    TooMany(String),
    #[error("reading a symbol's value is not allowed in DataSHIELD")]
    ReadForbidden,
    /// The call itself was refused or failed (parse, allow-list, disclosure, evaluation).
    #[error(transparent)]
    Call(#[from] DsError),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CommandStatus {
    Completed,
    Failed,
}

impl CommandStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CommandStatus::Completed => "COMPLETED",
            CommandStatus::Failed => "FAILED",
        }
    }
}

/// One finished call. Calls are evaluated as they arrive, so a command is complete (or failed)
/// by the time its id is returned; Opal's asynchronous protocol still works unchanged.
#[derive(Clone, Debug)]
pub struct Command {
    pub id: String,
    pub script: String,
    pub status: CommandStatus,
    pub created: DateTime<Utc>,
    pub ended: DateTime<Utc>,
    pub result: Option<RObject>,
    pub error: Option<String>,
}

impl Command {
    pub fn with_result(&self) -> bool {
        self.result.is_some()
    }
}

/// What a session looks like from outside.
#[derive(Clone, Debug)]
pub struct SessionView {
    pub id: String,
    pub user: String,
    pub profile: String,
    pub created: DateTime<Utc>,
    pub last_access: DateTime<Utc>,
    pub total_execution: Duration,
}

struct Session {
    id: String,
    user: String,
    profile: Arc<Profile>,
    created: DateTime<Utc>,
    last_access: DateTime<Utc>,
    total_execution: Duration,
    symbols: Symbols,
    commands: BTreeMap<u64, Command>,
    next_command: u64,
}

impl Session {
    fn view(&self) -> SessionView {
        SessionView {
            id: self.id.clone(),
            user: self.user.clone(),
            profile: self.profile.name.clone(),
            created: self.created,
            last_access: self.last_access,
            total_execution: self.total_execution,
        }
    }

    fn touch(&mut self) {
        self.last_access = Utc::now();
    }

    fn record(
        &mut self,
        script: String,
        created: DateTime<Utc>,
        outcome: Result<Option<RObject>, String>,
        limit: usize,
    ) -> Command {
        self.next_command += 1;
        let (status, result, error) = match outcome {
            Ok(result) => (CommandStatus::Completed, result, None),
            Err(message) => (CommandStatus::Failed, None, Some(message)),
        };
        let ended = Utc::now();
        self.total_execution += (ended - created).to_std().unwrap_or_default();
        let command = Command {
            id: self.next_command.to_string(),
            script,
            status,
            created,
            ended,
            result,
            error,
        };
        self.commands.insert(self.next_command, command.clone());
        while self.commands.len() > limit {
            self.commands.pop_first();
        }
        command
    }
}

/// A live session as the server's map holds it: its owner and when it was last used are kept
/// outside the session's own lock, so that neither finding a session nor expiring idle ones ever
/// waits for a call being evaluated.
struct Entry {
    user: String,
    last_used: Instant,
    session: Arc<Mutex<Session>>,
}

/// The server's state: its tables, profiles and live sessions.
pub struct Service {
    catalogue: Catalogue,
    profiles: BTreeMap<String, Arc<Profile>>,
    sessions: Mutex<HashMap<String, Entry>>,
    limits: Limits,
    seed: i32,
}

/// A symbol name a session may bind: an R name (letter or dot first), not `$`-paths, not reserved.
fn check_symbol(name: &str) -> Result<(), ServiceError> {
    const RESERVED: [&str; 8] = [
        "TRUE", "FALSE", "NULL", "NA", "Inf", "NaN", "function", "if",
    ];
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_'))
        && !RESERVED.contains(&name);
    if ok {
        Ok(())
    } else {
        Err(ServiceError::BadRequest(format!(
            "'{name}' is not a valid symbol name (a letter or '.', then letters, digits, '.' or '_'; at most 64)"
        )))
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere never leaves a session map half-written: every mutation is a single
    // insert or remove, so the data behind a poisoned lock is still whole.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Service {
    pub fn new(catalogue: Catalogue, profiles: Vec<Profile>, limits: Limits, seed: i32) -> Service {
        let profiles = profiles
            .into_iter()
            .map(|p| (p.name.clone(), Arc::new(p)))
            .collect();
        Service {
            catalogue,
            profiles,
            sessions: Mutex::new(HashMap::new()),
            limits,
            seed,
        }
    }

    pub fn catalogue(&self) -> &Catalogue {
        &self.catalogue
    }

    pub fn profiles(&self) -> impl Iterator<Item = &Profile> {
        self.profiles.values().map(Arc::as_ref)
    }

    pub fn profile(&self, name: &str) -> Result<&Profile, ServiceError> {
        self.profiles
            .get(name)
            .map(Arc::as_ref)
            .ok_or_else(|| ServiceError::NoProfile(name.to_owned()))
    }

    pub fn create_session(
        &self,
        user: &str,
        profile: Option<&str>,
    ) -> Result<SessionView, ServiceError> {
        let profile = match profile.filter(|p| !p.is_empty()) {
            Some(name) => self
                .profiles
                .get(name)
                .cloned()
                .ok_or_else(|| ServiceError::NoProfile(name.to_owned()))?,
            None => self
                .profiles
                .get("default")
                .or_else(|| self.profiles.values().next())
                .cloned()
                .ok_or_else(|| ServiceError::NoProfile("default".into()))?,
        };
        let mut sessions = lock(&self.sessions);
        let open = sessions.values().filter(|entry| entry.user == user).count();
        if open >= self.limits.sessions_per_user {
            return Err(ServiceError::TooMany(format!(
                "{user} already has {open} open sessions, the most allowed; close one first"
            )));
        }
        let id = random_id();
        let now = Utc::now();
        let session = Session {
            id: id.clone(),
            user: user.to_owned(),
            profile,
            created: now,
            last_access: now,
            total_execution: Duration::ZERO,
            symbols: Symbols::new(),
            commands: BTreeMap::new(),
            next_command: 0,
        };
        let view = session.view();
        let entry = Entry {
            user: user.to_owned(),
            last_used: Instant::now(),
            session: Arc::new(Mutex::new(session)),
        };
        sessions.insert(id, entry);
        tracing::info!(target: "datashield::session", user, session = %view.id, profile = %view.profile, "session opened");
        Ok(view)
    }

    /// The session, if it exists and belongs to `user` (another user's session does not exist for
    /// them); finding it counts as using it.
    fn session(&self, user: &str, id: &str) -> Result<Arc<Mutex<Session>>, ServiceError> {
        let mut sessions = lock(&self.sessions);
        let entry = sessions
            .get_mut(id)
            .filter(|entry| entry.user == user)
            .ok_or_else(|| ServiceError::NoSession(id.to_owned()))?;
        entry.last_used = Instant::now();
        Ok(entry.session.clone())
    }

    pub fn sessions(&self, user: &str) -> Vec<SessionView> {
        let owned: Vec<_> = lock(&self.sessions)
            .values()
            .filter(|entry| entry.user == user)
            .map(|entry| entry.session.clone())
            .collect();
        let mut views: Vec<_> = owned.iter().map(|session| lock(session).view()).collect();
        views.sort_by_key(|v| v.created);
        views
    }

    pub fn session_view(&self, user: &str, id: &str) -> Result<SessionView, ServiceError> {
        let session = self.session(user, id)?;
        let view = lock(&session).view();
        Ok(view)
    }

    pub fn close_session(&self, user: &str, id: &str) -> Result<(), ServiceError> {
        self.session(user, id)?;
        lock(&self.sessions).remove(id);
        tracing::info!(target: "datashield::session", user, session = id, "session closed");
        Ok(())
    }

    /// Closes sessions idle for longer than the limit; returns how many.
    pub fn expire_idle(&self) -> usize {
        let timeout = self.limits.idle_timeout;
        let mut sessions = lock(&self.sessions);
        let before = sessions.len();
        sessions.retain(|id, entry| {
            let keep = entry.last_used.elapsed() < timeout;
            if !keep {
                tracing::info!(target: "datashield::session", session = %id, "session closed after being idle");
            }
            keep
        });
        before - sessions.len()
    }

    pub fn symbols(&self, user: &str, id: &str) -> Result<Vec<String>, ServiceError> {
        let session = self.session(user, id)?;
        let mut session = lock(&session);
        session.touch();
        Ok(session.symbols.keys().cloned().collect())
    }

    pub fn remove_symbol(&self, user: &str, id: &str, symbol: &str) -> Result<(), ServiceError> {
        check_symbol(symbol)?;
        let session = self.session(user, id)?;
        let mut session = lock(&session);
        session.touch();
        session.symbols.remove(symbol);
        Ok(())
    }

    /// Copies a table (or some of its variables) into the session as a data frame.
    pub fn assign_table(
        &self,
        user: &str,
        id: &str,
        symbol: &str,
        table: &str,
        variables: Option<&[String]>,
    ) -> Result<Command, ServiceError> {
        check_symbol(symbol)?;
        let session = self.session(user, id)?;
        let table_ref = self
            .catalogue
            .get(table)
            .ok_or_else(|| ServiceError::NoTable(table.to_owned()))?;
        let frame = table_ref
            .select(variables)
            .map_err(ServiceError::BadRequest)?;
        let created = Utc::now();
        let mut session = lock(&session);
        self.bind(&mut session, symbol, frame)?;
        let script = format!("{symbol} <- table('{table}')");
        log_call(user, &session.id, "table", &script, None);
        Ok(session.record(script, created, Ok(None), self.limits.commands_per_session))
    }

    /// Evaluates an assign expression and binds its value to `symbol` in the session.
    pub fn assign_expr(
        &self,
        user: &str,
        id: &str,
        symbol: &str,
        text: &str,
    ) -> Result<Command, ServiceError> {
        check_symbol(symbol)?;
        let session = self.session(user, id)?;
        let mut session = lock(&session);
        let created = Utc::now();
        let outcome = checked(&session, MethodKind::Assign, text)
            .and_then(|expr| self.evaluate(&session, MethodKind::Assign, &expr));
        log_call(user, &session.id, "assign", text, outcome.as_ref().err());
        let script = format!("{symbol} <- {text}");
        let outcome = match outcome {
            Ok(value) => self
                .bind(&mut session, symbol, Arc::new(value))
                .map(|()| None)
                .map_err(|e| e.to_string()),
            Err(CallFailure::Refused(error)) => return Err(ServiceError::Call(error)),
            Err(CallFailure::Failed(error)) => Err(error.to_string()),
        };
        Ok(session.record(script, created, outcome, self.limits.commands_per_session))
    }

    /// Evaluates an aggregate call; the command carries the result or dsBase's message.
    pub fn aggregate(&self, user: &str, id: &str, text: &str) -> Result<Command, ServiceError> {
        let session = self.session(user, id)?;
        let mut session = lock(&session);
        let created = Utc::now();
        let outcome =
            checked(&session, MethodKind::Aggregate, text).and_then(|expr| match removal(&expr) {
                Some(names) => {
                    let settings = session.profile.settings.clone();
                    Ok(crate::functions::assign::rm_ds(
                        &mut session.symbols,
                        &settings,
                        names,
                    ))
                }
                None => self.evaluate(&session, MethodKind::Aggregate, &expr),
            });
        log_call(user, &session.id, "aggregate", text, outcome.as_ref().err());
        let outcome = match outcome {
            Ok(value) => Ok(Some(value)),
            Err(CallFailure::Refused(error)) => return Err(ServiceError::Call(error)),
            Err(CallFailure::Failed(error)) => Err(error.to_string()),
        };
        Ok(session.record(
            text.to_owned(),
            created,
            outcome,
            self.limits.commands_per_session,
        ))
    }

    fn evaluate(
        &self,
        session: &Session,
        kind: MethodKind,
        expr: &Expr,
    ) -> Result<RObject, CallFailure> {
        let env = Env {
            symbols: &session.symbols,
            settings: &session.profile.settings,
            methods: &session.profile.methods,
            kind,
            seed: self.seed,
        };
        env.evaluate(expr).map_err(CallFailure::Failed)
    }

    fn bind(
        &self,
        session: &mut Session,
        symbol: &str,
        value: Arc<RObject>,
    ) -> Result<(), ServiceError> {
        if !session.symbols.contains_key(symbol)
            && session.symbols.len() >= self.limits.symbols_per_session
        {
            return Err(ServiceError::TooMany(format!(
                "the session holds {} symbols, the most allowed; remove one first",
                session.symbols.len()
            )));
        }
        session.touch();
        session.symbols.insert(symbol.to_owned(), value);
        Ok(())
    }

    pub fn commands(&self, user: &str, id: &str) -> Result<Vec<Command>, ServiceError> {
        let session = self.session(user, id)?;
        let session = lock(&session);
        Ok(session.commands.values().cloned().collect())
    }

    pub fn command(&self, user: &str, id: &str, command: &str) -> Result<Command, ServiceError> {
        let session = self.session(user, id)?;
        let mut session = lock(&session);
        session.touch();
        let key = command_key(command)?;
        session
            .commands
            .get(&key)
            .cloned()
            .ok_or_else(|| ServiceError::NoCommand(command.to_owned()))
    }

    /// A command's result; with `remove`, the command is forgotten (Opal's `rm=true`).
    pub fn take_result(
        &self,
        user: &str,
        id: &str,
        command: &str,
        remove: bool,
    ) -> Result<Command, ServiceError> {
        let session = self.session(user, id)?;
        let mut session = lock(&session);
        session.touch();
        let key = command_key(command)?;
        let found = if remove {
            session.commands.remove(&key)
        } else {
            session.commands.get(&key).cloned()
        };
        found.ok_or_else(|| ServiceError::NoCommand(command.to_owned()))
    }

    pub fn remove_command(&self, user: &str, id: &str, command: &str) -> Result<(), ServiceError> {
        self.take_result(user, id, command, true).map(|_| ())
    }
}

/// `rmDS('a,b')`, allowed by the profile: the names to remove. dsBase's rmDS changes the session,
/// which no builtin can (they read the session only), so the session runs it here.
fn removal(expr: &Expr) -> Option<&str> {
    match expr {
        Expr::Call { function, args } if function == "rmDS" && args.len() == 1 => {
            match &args[0].value {
                Expr::Str(names)
                    if args[0]
                        .name
                        .as_deref()
                        .is_none_or(|n| n == "x.names.transmit") =>
                {
                    Some(names)
                }
                _ => None,
            }
        }
        _ => None,
    }
}

/// A call parsed and allow-listed for the session's profile; a refusal here refuses the request.
fn checked(session: &Session, kind: MethodKind, text: &str) -> Result<Expr, CallFailure> {
    let expr = language::parse(text).map_err(CallFailure::Refused)?;
    language::check(&expr, kind, &session.profile.methods).map_err(CallFailure::Refused)?;
    Ok(expr)
}

enum CallFailure {
    /// Refused before evaluation (grammar, allow-list): the HTTP call itself is refused.
    Refused(DsError),
    /// Failed while evaluating (a disclosure control, a bad argument): the command fails.
    Failed(DsError),
}

fn command_key(command: &str) -> Result<u64, ServiceError> {
    command
        .parse()
        .map_err(|_| ServiceError::NoCommand(command.to_owned()))
}

fn random_id() -> String {
    use rand::Rng;
    let bytes: [u8; 16] = rand::rng().random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The structured event every call leaves (issue 17 sends these to the audit log): who, which
/// session, the call's text, its outcome and, when refused, the rule that refused it.
fn log_call(user: &str, session: &str, kind: &str, call: &str, failure: Option<&CallFailure>) {
    match failure {
        None => {
            tracing::info!(target: "datashield::call", user, session, kind, call, outcome = "ok", "call")
        }
        Some(CallFailure::Refused(error) | CallFailure::Failed(error)) => {
            let outcome = if matches!(failure, Some(CallFailure::Refused(_))) {
                "refused"
            } else {
                "failed"
            };
            let rule = error.rule().unwrap_or("none");
            tracing::info!(target: "datashield::call", user, session, kind, call, outcome, rule, reason = %error, "call")
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::catalogue::Table;

    /// Collects what the JSON log formatter writes.
    #[derive(Clone, Default)]
    struct Capture(Arc<Mutex<Vec<u8>>>);

    impl Write for Capture {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            lock(&self.0).extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn service() -> Service {
        let ages = RObject::integers((0..10).map(|i| Some(30 + i)).collect());
        let table = Table {
            project: "study".into(),
            name: "people".into(),
            variables: Vec::new(),
            frame: Arc::new(RObject::data_frame([("age", ages)], 10)),
        };
        let catalogue = Catalogue {
            tables: [("study.people".to_owned(), table)].into(),
        };
        Service::new(
            catalogue,
            vec![Profile::default_named("default")],
            Limits::default(),
            1,
        )
    }

    /// The events one closure leaves, as JSON objects.
    fn events(run: impl FnOnce()) -> Vec<serde_json::Value> {
        let capture = Capture::default();
        let writer = capture.clone();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, run);
        let text = String::from_utf8(lock(&capture.0).clone()).unwrap();
        text.lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    }

    #[test]
    fn every_call_leaves_an_event_naming_who_what_and_the_rule_that_refused_it() {
        let service = service();
        let logged = events(|| {
            let session = service.create_session("alice", None).unwrap();
            service
                .assign_table("alice", &session.id, "D", "study.people", None)
                .unwrap();
            service
                .aggregate("alice", &session.id, "meanDS(D$age)")
                .unwrap();
            assert!(
                service
                    .aggregate("alice", &session.id, "system('id')")
                    .is_err()
            );
            let small = service
                .assign_expr(
                    "alice",
                    &session.id,
                    "x",
                    "dataFrameSubsetDS2('D', 'D$age', '38', 6, NULL, NULL, FALSE)",
                )
                .unwrap();
            assert_eq!(small.status, CommandStatus::Failed);
        });
        let calls: Vec<&serde_json::Value> = logged
            .iter()
            .filter(|e| e["target"] == "datashield::call")
            .map(|e| &e["fields"])
            .collect();
        assert_eq!(calls.len(), 4, "{logged:#?}");
        assert!(
            calls
                .iter()
                .all(|c| c["user"] == "alice"
                    && c["session"].as_str().is_some_and(|s| s.len() == 32))
        );
        assert_eq!(calls[1]["call"], "meanDS(D$age)");
        assert_eq!(calls[1]["outcome"], "ok");
        assert_eq!(calls[2]["outcome"], "refused");
        assert_eq!(calls[2]["rule"], "allow-list");
        assert!(calls[2]["reason"].as_str().unwrap().contains("system"));
        assert_eq!(calls[3]["outcome"], "failed");
        assert_eq!(calls[3]["rule"], "nfilter.subset");
    }

    #[test]
    fn a_table_assigned_whole_is_held_once_whatever_the_number_of_sessions() {
        let service = service();
        let first = service.create_session("alice", None).unwrap();
        let second = service.create_session("bob", None).unwrap();
        service
            .assign_table("alice", &first.id, "D", "study.people", None)
            .unwrap();
        service
            .assign_table("bob", &second.id, "D", "study.people", None)
            .unwrap();
        service
            .assign_table(
                "bob",
                &second.id,
                "A",
                "study.people",
                Some(&["age".to_owned()]),
            )
            .unwrap();
        let symbol = |id: &str, name: &str| {
            lock(
                &service
                    .session(if id == first.id { "alice" } else { "bob" }, id)
                    .unwrap(),
            )
            .symbols[name]
                .clone()
        };
        let table = &service.catalogue.tables["study.people"].frame;
        assert!(Arc::ptr_eq(&symbol(&first.id, "D"), table));
        assert!(Arc::ptr_eq(&symbol(&second.id, "D"), table));
        assert!(
            !Arc::ptr_eq(&symbol(&second.id, "A"), table),
            "a selection of variables is a frame of its own"
        );
    }

    #[test]
    fn another_users_session_does_not_exist_for_them() {
        let service = service();
        let session = service.create_session("alice", None).unwrap();
        service
            .assign_table("alice", &session.id, "D", "study.people", None)
            .unwrap();
        assert!(matches!(
            service.aggregate("bob", &session.id, "dimDS('D')"),
            Err(ServiceError::NoSession(_))
        ));
        assert!(matches!(
            service.symbols("bob", &session.id),
            Err(ServiceError::NoSession(_))
        ));
        assert!(matches!(
            service.close_session("bob", &session.id),
            Err(ServiceError::NoSession(_))
        ));
        assert_eq!(service.symbols("alice", &session.id).unwrap(), ["D"]);
    }

    #[test]
    fn idle_sessions_expire_and_limits_hold() {
        let mut service = service();
        service.limits = Limits {
            idle_timeout: Duration::ZERO,
            symbols_per_session: 1,
            ..Limits::default()
        };
        let session = service.create_session("alice", None).unwrap();
        service
            .assign_table("alice", &session.id, "D", "study.people", None)
            .unwrap();
        assert!(matches!(
            service.assign_table("alice", &session.id, "E", "study.people", None),
            Err(ServiceError::TooMany(_))
        ));
        // Replacing a symbol is not a new one.
        service
            .assign_table("alice", &session.id, "D", "study.people", None)
            .unwrap();
        assert_eq!(service.expire_idle(), 1);
        assert!(matches!(
            service.symbols("alice", &session.id),
            Err(ServiceError::NoSession(_))
        ));
    }
}
