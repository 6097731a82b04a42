//! What a DataSHIELD call through `/datashield/<project>/` is, read from Opal's protocol alone:
//! which calls the audit log records and with what, the credentials the published clients
//! send, and the answers' shapes (Opal's error document, `RCommandDto`). Pure functions.

use axum::http::{HeaderMap, Method, header};
use base64::Engine;
use serde_json::Value;

/// A call, as far as the audit log cares.
#[derive(Debug, PartialEq, Eq)]
pub enum Call<'a> {
    OpenSession,
    CloseSession {
        session: &'a str,
    },
    AssignTable {
        session: &'a str,
        symbol: &'a str,
        table: &'a str,
    },
    AssignExpression {
        session: &'a str,
        symbol: &'a str,
    },
    Aggregate {
        session: &'a str,
    },
    /// The status of an asynchronous call: where a failure shows first.
    CommandStatus {
        session: &'a str,
        command: &'a str,
    },
    /// The result of an asynchronous call: what the analyst receives.
    CommandResult {
        session: &'a str,
        command: &'a str,
    },
    /// Listing profiles, methods, tables, symbols: forwarded, not recorded one by one.
    Other,
}

/// Classifies `path` (below `/ws`, e.g. `/datashield/session/1/aggregate`).
pub fn classify<'a>(method: &Method, path: &'a str) -> Call<'a> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match (method, segments.as_slice()) {
        (&Method::POST, ["datashield", "sessions"]) => Call::OpenSession,
        (&Method::DELETE, ["datashield", "session", session]) => Call::CloseSession { session },
        (
            &Method::PUT,
            [
                "datashield",
                "session",
                session,
                "symbol",
                symbol,
                "table",
                table,
            ],
        ) => Call::AssignTable {
            session,
            symbol,
            table,
        },
        (&Method::PUT, ["datashield", "session", session, "symbol", symbol]) => {
            Call::AssignExpression { session, symbol }
        }
        (&Method::POST, ["datashield", "session", session, "aggregate"]) => {
            Call::Aggregate { session }
        }
        (&Method::GET, ["datashield", "session", session, "command", command]) => {
            Call::CommandStatus { session, command }
        }
        (
            &Method::GET,
            [
                "datashield",
                "session",
                session,
                "command",
                command,
                "result",
            ],
        ) => Call::CommandResult { session, command },
        _ => Call::Other,
    }
}

/// The protocol's path (below `/ws`) of a raw request path `/datashield/<project>/ws/…`, as
/// the client encoded it; `None` for a path with `.` or `..` segments, which no client sends.
pub fn protocol_path(raw: &str) -> Option<&str> {
    let rest = raw.strip_prefix("/datashield/")?;
    let (_, protocol) = rest.split_once("/ws")?;
    let dotted = protocol.split('/').any(|s| {
        matches!(
            s.to_ascii_lowercase().as_str(),
            "." | ".." | "%2e" | "%2e%2e" | ".%2e" | "%2e."
        )
    });
    (!dotted && protocol.starts_with('/')).then_some(protocol)
}

/// The token a client presents: `X-Opal-Auth: <token>` (the Python client), HTTP Basic with
/// the token as the password, opalr's `Authorization: X-Opal-Auth base64(user:token)`, or a
/// bearer token. The user name of the two password forms is not trusted: the token names its
/// owner.
pub fn presented_token(headers: &HeaderMap) -> Option<String> {
    if let Some(token) = headers.get("x-opal-auth").and_then(|v| v.to_str().ok()) {
        return Some(token.trim().to_owned()).filter(|t| !t.is_empty());
    }
    let authorization = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, credentials) = authorization.split_once(' ')?;
    let token = match scheme {
        "Bearer" => credentials.trim().to_owned(),
        "Basic" | "X-Opal-Auth" => {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(credentials.trim())
                .ok()?;
            let (_, password) = std::str::from_utf8(&decoded).ok()?.split_once(':')?;
            password.to_owned()
        }
        _ => return None,
    };
    Some(token).filter(|t| !t.is_empty())
}

/// The server's `Location` headers name its own paths (`/ws/…`); the client must come back
/// through the project's DataSHIELD address.
pub fn through_proxy(location: &str, project: &str) -> String {
    match location.strip_prefix("/ws/") {
        Some(rest) => format!("/datashield/{project}/ws/{rest}"),
        None => location.to_owned(),
    }
}

/// The longest call text or message the audit log keeps; calls are capped at 64 KiB by the
/// server, but an audit record should stay readable.
const KEPT: usize = 4000;

pub fn kept(text: &str) -> String {
    if text.len() <= KEPT {
        return text.to_owned();
    }
    let mut end = KEPT;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// Why the server refused, from Opal's error document (its `detail`, else its arguments,
/// else its status).
pub fn refusal(body: &[u8]) -> String {
    let Ok(document) = serde_json::from_slice::<Value>(body) else {
        return kept(String::from_utf8_lossy(body).trim());
    };
    if let Some(detail) = document["detail"].as_str() {
        return kept(detail);
    }
    let arguments: Vec<&str> = document["arguments"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    if !arguments.is_empty() {
        return kept(&arguments.join("; "));
    }
    kept(document["status"].as_str().unwrap_or("refused"))
}

/// What an `RCommandDto` says of an asynchronous call, once it has finished.
#[derive(Debug, PartialEq, Eq)]
pub enum Finished {
    Completed,
    Failed(String),
}

pub fn finished(command: &Value) -> Option<Finished> {
    match command["status"].as_str()? {
        "COMPLETED" => Some(Finished::Completed),
        "FAILED" => Some(Finished::Failed(kept(
            command["error"].as_str().unwrap_or("the call failed"),
        ))),
        _ => None,
    }
}

/// Whether a request asked for an asynchronous call (`?async=true`).
pub fn asynchronous(query: Option<&str>) -> bool {
    query.is_some_and(|q| {
        q.split('&')
            .any(|pair| pair.eq_ignore_ascii_case("async=true"))
    })
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;
    use serde_json::json;

    use super::*;

    #[test]
    fn the_calls_the_audit_log_records_are_told_apart() {
        use Call::*;
        let cases = [
            (Method::POST, "/datashield/sessions", OpenSession),
            (Method::GET, "/datashield/sessions", Other),
            (
                Method::DELETE,
                "/datashield/session/7",
                CloseSession { session: "7" },
            ),
            (
                Method::PUT,
                "/datashield/session/7/symbol/D/table/hips.patients",
                AssignTable {
                    session: "7",
                    symbol: "D",
                    table: "hips.patients",
                },
            ),
            (
                Method::PUT,
                "/datashield/session/7/symbol/age2",
                AssignExpression {
                    session: "7",
                    symbol: "age2",
                },
            ),
            (
                Method::POST,
                "/datashield/session/7/aggregate",
                Aggregate { session: "7" },
            ),
            (
                Method::GET,
                "/datashield/session/7/command/3",
                CommandStatus {
                    session: "7",
                    command: "3",
                },
            ),
            (
                Method::GET,
                "/datashield/session/7/command/3/result",
                CommandResult {
                    session: "7",
                    command: "3",
                },
            ),
            (Method::DELETE, "/datashield/session/7/command/3", Other),
            (Method::GET, "/datashield/session/7/symbols", Other),
            (Method::GET, "/datasources", Other),
            (Method::POST, "/datashield/session/7/aggregate/x", Other),
        ];
        for (method, path, expected) in cases {
            assert_eq!(classify(&method, path), expected, "{method} {path}");
        }
    }

    #[test]
    fn every_form_the_clients_send_a_token_in_is_read() {
        let with = |name: &'static str, value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(name, HeaderValue::from_str(value).unwrap());
            headers
        };
        let encoded = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        assert_eq!(
            presented_token(&with("x-opal-auth", " trellis_pat_a ")).as_deref(),
            Some("trellis_pat_a")
        );
        assert_eq!(
            presented_token(&with(
                "authorization",
                &format!("Basic {}", encoded("anyone:trellis_pat_b"))
            ))
            .as_deref(),
            Some("trellis_pat_b")
        );
        assert_eq!(
            presented_token(&with(
                "authorization",
                &format!("X-Opal-Auth {}", encoded("u:trellis_pat_c"))
            ))
            .as_deref(),
            Some("trellis_pat_c")
        );
        assert_eq!(
            presented_token(&with("authorization", "Bearer trellis_pat_d")).as_deref(),
            Some("trellis_pat_d")
        );
        for (name, value) in [
            ("authorization", "Digest x"),
            ("authorization", "Basic !!!"),
            ("authorization", "Bearer  "),
            ("x-opal-auth", ""),
            ("cookie", "trellis_session=abc"),
        ] {
            assert_eq!(presented_token(&with(name, value)), None, "{name}: {value}");
        }
        assert_eq!(
            presented_token(&with(
                "authorization",
                &format!("Basic {}", encoded("no-colon"))
            )),
            None
        );
    }

    #[test]
    fn the_protocol_path_is_passed_on_as_written_and_dot_segments_are_refused() {
        assert_eq!(
            protocol_path("/datashield/hips/ws/datashield/session/1/symbol/D/table/hips.t"),
            Some("/datashield/session/1/symbol/D/table/hips.t")
        );
        assert_eq!(
            protocol_path("/datashield/hips/ws/datashield/session/1/aggregate%3Fasync=true"),
            Some("/datashield/session/1/aggregate%3Fasync=true"),
            "an encoded `?` stays part of the path"
        );
        for bad in [
            "/datashield/hips/ws/../healthz",
            "/datashield/hips/ws/datashield/./sessions",
            "/datashield/hips/ws/%2E%2E/healthz",
            "/datashield/hips/wsx",
            "/elsewhere/hips/ws/datashield/sessions",
        ] {
            assert_eq!(protocol_path(bad), None, "{bad}");
        }
    }

    #[test]
    fn locations_lead_back_through_the_project_address() {
        assert_eq!(
            through_proxy("/ws/datashield/session/4", "hips"),
            "/datashield/hips/ws/datashield/session/4"
        );
        assert_eq!(
            through_proxy("https://elsewhere/x", "hips"),
            "https://elsewhere/x"
        );
    }

    #[test]
    fn refusals_and_outcomes_are_read_from_opals_documents() {
        assert_eq!(
            refusal(br#"{"status":"Bad Request","code":400,"arguments":["meanDS: too few"],"detail":"the call is refused: too few"}"#),
            "the call is refused: too few"
        );
        assert_eq!(
            refusal(br#"{"status":"Bad Request","arguments":["a","b"]}"#),
            "a; b"
        );
        assert_eq!(refusal(b"plain words\n"), "plain words");
        assert_eq!(
            finished(&json!({"status": "FAILED", "error": "Error: disclosure risk"})),
            Some(Finished::Failed("Error: disclosure risk".into()))
        );
        assert_eq!(
            finished(&json!({"status": "COMPLETED"})),
            Some(Finished::Completed)
        );
        assert_eq!(finished(&json!({"status": "IN_PROGRESS"})), None);
        let long = "é".repeat(3000);
        let cut = kept(&long);
        assert!(cut.len() <= KEPT + '…'.len_utf8() && cut.ends_with('…'));
        assert!(asynchronous(Some("missings=false&async=true")));
        assert!(!asynchronous(Some("async=false")));
        assert!(!asynchronous(None));
    }
}
