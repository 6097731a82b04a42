//! The HTTP edge: the subset of Opal's REST API (under `/ws`) that the published DataSHIELD
//! clients use. Shapes follow Opal's DTOs; errors follow Opal's error DTO (`code`, `status`,
//! `arguments`) because that is what the clients read, with a `detail` added for people.

mod auth;

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde::Deserialize;
use serde_json::{Value, json};

pub use auth::{
    Authenticator, PROXY_SECRET_HEADER, PROXY_USER_HEADER, Tokens, User, digest as auth_digest,
};

use crate::catalogue::Table;
use crate::encode;
use crate::error::DsError;
use crate::eval::MethodKind;
use crate::session::{Command, Service, ServiceError, SessionView};

/// The Opal version announced: clients (opalr/DSOpal) switch protocol forms on it; every form
/// they choose from 4.2 on is served here.
pub const OPAL_VERSION: &str = "5.0.0";

/// Calls and table assignments are short texts; a generous cap keeps hostile bodies out.
const LARGEST_BODY: usize = 64 * 1024;

#[derive(Clone)]
pub struct AppState {
    pub service: Arc<Service>,
    pub auth: Arc<Authenticator>,
}

pub fn router(state: AppState) -> Router {
    let datashield = Router::new()
        .route("/sessions", post(create_session).get(list_sessions))
        .route("/session/{id}", get(session_status).delete(close_session))
        .route("/session/{id}/symbols", get(list_symbols))
        .route(
            "/session/{id}/symbol/{symbol}",
            put(assign_symbol).get(read_symbol).delete(remove_symbol),
        )
        .route(
            "/session/{id}/symbol/{symbol}/table/{table}",
            put(assign_table),
        )
        .route("/session/{id}/aggregate", post(aggregate))
        .route("/session/{id}/commands", get(list_commands))
        .route(
            "/session/{id}/command/{command}",
            get(command_status).delete(remove_command),
        )
        .route(
            "/session/{id}/command/{command}/result",
            get(command_result),
        )
        .route("/profiles", get(list_profiles))
        .route("/env/{kind}/methods", get(list_methods));
    let ws = Router::new()
        .nest("/datashield", datashield)
        .route("/system/subject-profile/_current", get(subject_profile))
        .route("/datasources", get(list_datasources))
        .route("/datasource/{project}/table/{table}", get(table_info))
        .route(
            "/datasource/{project}/table/{table}/variables",
            get(table_variables),
        )
        .route("/projects", get(list_projects));
    Router::new()
        .nest("/ws", ws)
        .route("/healthz", get(|| async { "ok" }))
        .fallback(|| async {
            OpalError::new(StatusCode::NOT_FOUND, "NotFound", "no such resource")
        })
        .layer(DefaultBodyLimit::max(LARGEST_BODY))
        .layer(axum::middleware::map_response(announce_version))
        .with_state(state)
}

async fn announce_version(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert("X-Opal-Version", HeaderValue::from_static(OPAL_VERSION));
    response
}

/// An error in Opal's shape (`ClientErrorDto`), which `obiba_opal.HTTPError` parses.
pub struct OpalError {
    code: StatusCode,
    status: &'static str,
    detail: String,
}

impl OpalError {
    pub fn new(code: StatusCode, status: &'static str, detail: impl Into<String>) -> OpalError {
        OpalError {
            code,
            status,
            detail: detail.into(),
        }
    }
}

impl OpalError {
    /// A call that failed while it was evaluated (dsBase's `stop()`), with its message.
    fn evaluation(message: &str) -> OpalError {
        OpalError::new(
            StatusCode::BAD_REQUEST,
            "DataShieldEvaluationError",
            message,
        )
    }
}

impl IntoResponse for OpalError {
    fn into_response(self) -> Response {
        let body = json!({"code": self.code.as_u16(), "status": self.status, "arguments": [self.detail], "detail": self.detail});
        (self.code, axum::Json(body)).into_response()
    }
}

impl From<ServiceError> for OpalError {
    fn from(error: ServiceError) -> OpalError {
        let detail = error.to_string();
        let (code, status) = match &error {
            ServiceError::NoSession(_) | ServiceError::NoCommand(_) => {
                (StatusCode::NOT_FOUND, "NotFound")
            }
            ServiceError::NoProfile(_) => (StatusCode::NOT_FOUND, "NoSuchDataShieldProfile"),
            ServiceError::NoTable(_) => (StatusCode::NOT_FOUND, "NoSuchValueTableInDatasource"),
            ServiceError::BadRequest(_) => (StatusCode::BAD_REQUEST, "BadRequest"),
            ServiceError::TooMany(_) => (StatusCode::TOO_MANY_REQUESTS, "TooManyRequests"),
            ServiceError::ReadForbidden => (StatusCode::FORBIDDEN, "Forbidden"),
            ServiceError::Call(DsError::Parse(_)) => {
                (StatusCode::BAD_REQUEST, "DataShieldParseError")
            }
            ServiceError::Call(DsError::NoSuchMethod { .. }) => {
                (StatusCode::NOT_FOUND, "DataShieldMethodError")
            }
            ServiceError::Call(DsError::Disclosure { .. } | DsError::Failed(_)) => {
                (StatusCode::BAD_REQUEST, "DataShieldEvaluationError")
            }
        };
        OpalError::new(code, status, detail)
    }
}

type ApiResult<T> = Result<T, OpalError>;

#[derive(Deserialize)]
struct SessionQuery {
    profile: Option<String>,
}

fn session_dto(view: &SessionView) -> Value {
    json!({
        "id": view.id,
        "user": view.user,
        "creationDate": view.created.to_rfc3339(),
        "lastAccessDate": view.last_access.to_rfc3339(),
        "status": "WAITING",
        "link": format!("/datashield/session/{}", view.id),
        "context": "DataSHIELD",
        "profile": view.profile,
        "cluster": view.profile,
        "server": "trellis-datashield",
        "currentExecutionTimeMillis": 0,
        "totalExecutionTimeMillis": view.total_execution.as_millis() as u64,
        "state": "RUNNING",
        "events": [format!("RUNNING;{};Session ready", view.created.to_rfc3339())],
    })
}

async fn subject_profile(user: User) -> axum::Json<Value> {
    axum::Json(
        json!({"principal": user.0, "realm": "trellis-datashield", "groups": [], "otpEnabled": false}),
    )
}

async fn create_session(
    State(state): State<AppState>,
    user: User,
    Query(query): Query<SessionQuery>,
) -> ApiResult<Response> {
    let view = state
        .service
        .create_session(&user.0, query.profile.as_deref())?;
    let location = format!("/ws/datashield/session/{}", view.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        axum::Json(session_dto(&view)),
    )
        .into_response())
}

async fn list_sessions(State(state): State<AppState>, user: User) -> axum::Json<Value> {
    axum::Json(Value::Array(
        state
            .service
            .sessions(&user.0)
            .iter()
            .map(session_dto)
            .collect(),
    ))
}

async fn session_status(
    State(state): State<AppState>,
    user: User,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<Value>> {
    Ok(axum::Json(session_dto(
        &state.service.session_view(&user.0, &id)?,
    )))
}

async fn close_session(
    State(state): State<AppState>,
    user: User,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    state.service.close_session(&user.0, &id)?;
    Ok(StatusCode::OK)
}

async fn list_symbols(
    State(state): State<AppState>,
    user: User,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let symbols = state.service.symbols(&user.0, &id)?;
    // R's `ls()` through jsonlite: one name is unboxed to a string, as the client expects.
    Ok(json_text(encode::to_json(&crate::value::RObject::strings(
        symbols,
    ))))
}

#[derive(Deserialize)]
struct AssignQuery {
    #[serde(default)]
    r#async: Option<String>,
    variables: Option<String>,
    identifiers: Option<String>,
    id: Option<String>,
}

fn is_true(flag: &Option<String>) -> bool {
    flag.as_deref()
        .is_some_and(|v| v.eq_ignore_ascii_case("true"))
}

/// `PUT …/symbol/{symbol}`: an R expression (`application/x-rscript`) or, in DSOpal's form, a
/// table name (`application/x-opal`).
async fn assign_symbol(
    State(state): State<AppState>,
    user: User,
    Path((id, symbol)): Path<(String, String)>,
    Query(query): Query<AssignQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let text = body_text(&body)?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let command = if content_type.starts_with("application/x-opal") {
        let variables = parse_variables(query.variables.as_deref())?;
        refuse_identifiers(&query)?;
        state
            .service
            .assign_table(&user.0, &id, &symbol, text.trim(), variables.as_deref())?
    } else if content_type.starts_with("application/x-rscript")
        || content_type.starts_with("text/plain")
    {
        let text = text.to_owned();
        evaluate(&state, move |service| {
            service.assign_expr(&user.0, &id, &symbol, &text)
        })
        .await?
    } else {
        return Err(OpalError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UnsupportedMediaType",
            format!(
                "an assignment is an R expression (application/x-rscript) or a table name (application/x-opal), not '{content_type}'"
            ),
        ));
    };
    Ok(created_command(&command, is_true(&query.r#async)))
}

async fn assign_table(
    State(state): State<AppState>,
    user: User,
    Path((id, symbol, table)): Path<(String, String, String)>,
    Query(query): Query<AssignQuery>,
) -> ApiResult<Response> {
    let variables = parse_variables(query.variables.as_deref())?;
    refuse_identifiers(&query)?;
    let command =
        state
            .service
            .assign_table(&user.0, &id, &symbol, &table, variables.as_deref())?;
    Ok(created_command(&command, is_true(&query.r#async)))
}

/// An assignment answers 201; asynchronously, with the command id as its text body. A failed
/// evaluation done synchronously is an error, as Opal reports it.
fn created_command(command: &Command, asynchronous: bool) -> Response {
    if asynchronous {
        return (
            StatusCode::CREATED,
            [(header::CONTENT_TYPE, "text/plain")],
            command.id.clone(),
        )
            .into_response();
    }
    match &command.error {
        Some(error) => OpalError::evaluation(error).into_response(),
        None => StatusCode::CREATED.into_response(),
    }
}

fn refuse_identifiers(query: &AssignQuery) -> ApiResult<()> {
    if query.identifiers.as_deref().is_some_and(|s| !s.is_empty())
        || query.id.as_deref().is_some_and(|s| !s.is_empty())
    {
        return Err(OpalError::new(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "identifier mappings and identifier columns are not served: a DataSHIELD session never sees record identifiers",
        ));
    }
    Ok(())
}

/// Opal's variable filter as the clients write it: `name.any("a","b")`. Anything else is refused.
fn parse_variables(filter: Option<&str>) -> ApiResult<Option<Vec<String>>> {
    let Some(filter) = filter.map(str::trim).filter(|f| !f.is_empty()) else {
        return Ok(None);
    };
    let refuse = || {
        OpalError::new(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            format!("the variables filter '{filter}' is not understood; use name.any(\"a\",\"b\")"),
        )
    };
    let inner = filter
        .strip_prefix("name.any(")
        .and_then(|s| s.strip_suffix(')'))
        .ok_or_else(refuse)?;
    let names = inner
        .split(',')
        .map(|part| {
            let part = part.trim();
            let name = part
                .strip_prefix('"')
                .and_then(|p| p.strip_suffix('"'))
                .or_else(|| part.strip_prefix('\'').and_then(|p| p.strip_suffix('\'')));
            name.filter(|n| !n.is_empty() && !n.contains(['"', '\'']))
                .map(str::to_owned)
                .ok_or_else(refuse)
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some(names))
}

async fn read_symbol() -> OpalError {
    ServiceError::ReadForbidden.into()
}

async fn remove_symbol(
    State(state): State<AppState>,
    user: User,
    Path((id, symbol)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    state.service.remove_symbol(&user.0, &id, &symbol)?;
    Ok(StatusCode::OK)
}

#[derive(Deserialize)]
struct AggregateQuery {
    r#async: Option<String>,
}

async fn aggregate(
    State(state): State<AppState>,
    user: User,
    Path(id): Path<String>,
    Query(query): Query<AggregateQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let text = body_text(&body)?;
    let text = text.to_owned();
    let command = evaluate(&state, move |service| {
        service.aggregate(&user.0, &id, &text)
    })
    .await?;
    if is_true(&query.r#async) {
        return Ok(([(header::CONTENT_TYPE, "text/plain")], command.id).into_response());
    }
    result_response(&command, &headers)
}

/// Runs an evaluating call on the blocking pool: a long model fit must not hold up the runtime's
/// few threads (every other request, health checks included), and a panic in a function becomes
/// a 500 for that call alone.
async fn evaluate<T: Send + 'static>(
    state: &AppState,
    call: impl FnOnce(&Service) -> Result<T, ServiceError> + Send + 'static,
) -> ApiResult<T> {
    let service = state.service.clone();
    match tokio::task::spawn_blocking(move || call(&service)).await {
        Ok(result) => Ok(result?),
        Err(error) => {
            tracing::error!(%error, "a DataSHIELD call failed unexpectedly");
            Err(OpalError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalError",
                "the call failed unexpectedly; it has been logged",
            ))
        }
    }
}

fn body_text(body: &Bytes) -> ApiResult<&str> {
    std::str::from_utf8(body).map_err(|_| {
        OpalError::new(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "the body is not UTF-8 text",
        )
    })
}

/// A result as JSON (jsonlite's, exactly) or, for R clients asking for it, R serialization; a
/// failed command is the error it failed with, as Opal reports a failed evaluation.
fn result_response(command: &Command, headers: &HeaderMap) -> ApiResult<Response> {
    if let Some(error) = &command.error {
        return Err(OpalError::evaluation(error));
    }
    let Some(result) = &command.result else {
        return Ok(StatusCode::NO_CONTENT.into_response());
    };
    let wants_rds = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("application/octet-stream"));
    Ok(if wants_rds {
        (
            [(header::CONTENT_TYPE, "application/octet-stream")],
            encode::to_rds(result),
        )
            .into_response()
    } else {
        json_text(encode::to_json(result))
    })
}

fn json_text(text: String) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], text).into_response()
}

fn command_dto(command: &Command) -> Value {
    let mut dto = json!({
        "id": command.id,
        "script": command.script,
        "status": command.status.as_str(),
        "createDate": command.created.to_rfc3339(),
        "startDate": command.created.to_rfc3339(),
        "endDate": command.ended.to_rfc3339(),
        "withResult": command.with_result(),
    });
    if let Some(error) = &command.error {
        dto["error"] = json!(error);
    }
    dto
}

async fn list_commands(
    State(state): State<AppState>,
    user: User,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<Value>> {
    let commands = state.service.commands(&user.0, &id)?;
    Ok(axum::Json(Value::Array(
        commands.iter().map(command_dto).collect(),
    )))
}

async fn command_status(
    State(state): State<AppState>,
    user: User,
    Path((id, command)): Path<(String, String)>,
) -> ApiResult<axum::Json<Value>> {
    Ok(axum::Json(command_dto(
        &state.service.command(&user.0, &id, &command)?,
    )))
}

#[derive(Deserialize)]
struct ResultQuery {
    rm: Option<String>,
}

async fn command_result(
    State(state): State<AppState>,
    user: User,
    Path((id, command)): Path<(String, String)>,
    Query(query): Query<ResultQuery>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    // Opal's default is rm=true: a result is fetched once.
    let remove = !query
        .rm
        .as_deref()
        .is_some_and(|v| v.eq_ignore_ascii_case("false"));
    let command = state.service.take_result(&user.0, &id, &command, remove)?;
    result_response(&command, &headers)
}

async fn remove_command(
    State(state): State<AppState>,
    user: User,
    Path((id, command)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    state.service.remove_command(&user.0, &id, &command)?;
    Ok(StatusCode::OK)
}

async fn list_profiles(State(state): State<AppState>, _user: User) -> axum::Json<Value> {
    let profiles = state
        .service
        .profiles()
        .map(|p| json!({"name": p.name, "cluster": p.name, "enabled": true, "restrictedAccess": false, "rParser": "v2"}))
        .collect();
    axum::Json(Value::Array(profiles))
}

#[derive(Deserialize)]
struct MethodsQuery {
    profile: Option<String>,
}

async fn list_methods(
    State(state): State<AppState>,
    _user: User,
    Path(kind): Path<String>,
    Query(query): Query<MethodsQuery>,
) -> ApiResult<axum::Json<Value>> {
    let kind = match kind.as_str() {
        "aggregate" => MethodKind::Aggregate,
        "assign" => MethodKind::Assign,
        other => {
            return Err(OpalError::new(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                format!("'{other}' is not a method type; use aggregate or assign"),
            ));
        }
    };
    let profile = state
        .service
        .profile(query.profile.as_deref().unwrap_or("default"))?;
    let methods = profile
        .methods
        .of_kind(kind)
        .map(|m| {

            json!({"name": m.name, "DataShield.RFunctionDataShieldMethodDto.method": {"func": m.target(), "rPackage": m.package, "version": env!("CARGO_PKG_VERSION")}})
        })
        .collect();
    Ok(axum::Json(Value::Array(methods)))
}

async fn list_datasources(State(state): State<AppState>, _user: User) -> axum::Json<Value> {
    let datasources = state
        .service
        .catalogue()
        .projects()
        .into_iter()
        .map(|(project, tables)| json!({"name": project, "table": tables, "type": "trellis"}))
        .collect();
    axum::Json(Value::Array(datasources))
}

async fn list_projects(State(state): State<AppState>, _user: User) -> axum::Json<Value> {
    let projects = state
        .service
        .catalogue()
        .projects()
        .into_keys()
        .map(|name| json!({"name": name, "datasource": {"name": name}}))
        .collect();
    axum::Json(Value::Array(projects))
}

fn find_table<'a>(state: &'a AppState, project: &str, table: &str) -> ApiResult<&'a Table> {
    let name = format!("{project}.{table}");
    state
        .service
        .catalogue()
        .get(&name)
        .ok_or_else(|| ServiceError::NoTable(name).into())
}

async fn table_info(
    State(state): State<AppState>,
    _user: User,
    Path((project, table)): Path<(String, String)>,
) -> ApiResult<axum::Json<Value>> {
    let table = find_table(&state, &project, &table)?;
    Ok(axum::Json(json!({
        "name": table.name,
        "datasourceName": table.project,
        "entityType": "Participant",
        "link": format!("/datasource/{}/table/{}", table.project, table.name),
        "variableCount": table.variables.len(),
        "valueSetCount": table.rows(),
    })))
}

async fn table_variables(
    State(state): State<AppState>,
    _user: User,
    Path((project, table)): Path<(String, String)>,
) -> ApiResult<axum::Json<Value>> {
    let table = find_table(&state, &project, &table)?;
    let variables = table
        .variables
        .iter()
        .enumerate()
        .map(|(index, v)| {
            let mut dto = json!({"name": v.name, "entityType": "Participant", "valueType": v.column_type.opal_value_type(), "isRepeatable": false, "index": index});
            if !v.levels.is_empty() {
                dto["categories"] = v.levels.iter().map(|l| json!({"name": l, "isMissing": false})).collect();
            }
            if let Some(description) = &v.description {
                dto["attributes"] = json!([{"name": "description", "value": description}]);
            }
            dto
        })
        .collect();
    Ok(axum::Json(Value::Array(variables)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_variables_filter_takes_only_the_clients_form() {
        assert_eq!(
            parse_variables(Some("name.any(\"age\",\"sex\")"))
                .ok()
                .flatten(),
            Some(vec!["age".to_owned(), "sex".to_owned()])
        );
        assert_eq!(parse_variables(None).ok().flatten(), None);
        for bad in [
            "age",
            "name.any(age)",
            "name.any(\"a\"\"b\")",
            "name.any(\"\")",
            "name.all(\"a\")",
        ] {
            assert!(
                parse_variables(Some(bad)).is_err(),
                "{bad} should be refused"
            );
        }
    }
}
