//! JSON request bodies, strictly: the right content type, within the size limit, well-formed,
//! and without fields the API does not know (a typo must not be silently ignored).

use axum::extract::{FromRequest, Request};
use axum::http::{StatusCode, header};
use bytes::Bytes;
use serde::de::DeserializeOwned;

use crate::problem::Problem;

pub struct StrictJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for StrictJson<T> {
    type Rejection = Problem;

    async fn from_request(request: Request, state: &S) -> Result<Self, Problem> {
        let is_json = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(str::trim)
            .is_some_and(|mime| mime == "application/json" || mime.ends_with("+json"));
        if !is_json {
            return Err(Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "the body must be JSON (Content-Type: application/json)",
            ));
        }
        let body = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| {
                let status = rejection.status();
                if status == StatusCode::PAYLOAD_TOO_LARGE {
                    Problem::new(
                        status,
                        "too-large",
                        "the request body is larger than this endpoint accepts",
                    )
                } else {
                    Problem::new(status, "bad-request", rejection.body_text())
                }
            })?;
        parse(&body).map(StrictJson)
    }
}

/// Parses `body` as `T`, refusing malformed JSON, trailing data and unknown fields.
pub fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, Problem> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let mut unknown = Vec::new();
    let value: T = serde_ignored::deserialize(&mut deserializer, |path| {
        // serde_ignored marks Option layers with `?`; people think of `inner.colour`.
        unknown.push(path.to_string().replace(".?", ""))
    })
    .map_err(|error| match error.classify() {
        serde_json::error::Category::Data => {
            Problem::unprocessable(format!("invalid body: {error}"))
        }
        _ => Problem::bad_request(format!("malformed JSON: {error}")),
    })?;
    deserializer
        .end()
        .map_err(|error| Problem::bad_request(format!("malformed JSON: {error}")))?;
    if !unknown.is_empty() {
        return Err(Problem::bad_request(format!(
            "unknown field(s): {}",
            unknown.join(", ")
        )));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Deserialize, Debug)]
    #[allow(dead_code)]
    struct Body {
        name: String,
        inner: Option<Inner>,
    }
    #[derive(Deserialize, Debug)]
    #[allow(dead_code)]
    struct Inner {
        size: u32,
    }

    fn detail(body: &str) -> (u16, String) {
        let problem = parse::<Body>(body.as_bytes()).unwrap_err();
        (problem.status, problem.detail)
    }

    #[test]
    fn good_bodies_parse() {
        assert_eq!(
            parse::<Body>(br#"{"name": "x", "inner": {"size": 3}}"#)
                .unwrap()
                .name,
            "x"
        );
    }

    #[test]
    fn bad_bodies_are_refused_with_the_reason() {
        assert_eq!(detail(r#"{"name": "x""#).0, 400);
        assert_eq!(detail(r#"{"name": "x"} trailing"#).0, 400);
        let (status, text) = detail(r#"{"name": 5}"#);
        assert_eq!(status, 422);
        assert!(text.contains("invalid type"), "{text}");
        let (status, text) =
            detail(r#"{"name": "x", "nmae": "y", "inner": {"size": 1, "colour": 2}}"#);
        assert_eq!(status, 400);
        assert!(
            text.contains("nmae") && text.contains("inner.colour"),
            "{text}"
        );
        assert_eq!(detail(r#"{}"#).0, 422);
    }
}
