//! Header rewriting between the browser and a workspace: pure functions over header maps.
//!
//! The workspace sees the browser's own headers (Jupyter compares `Origin` with `Host` and
//! reads its `_xsrf` cookie), never Trellis's credentials: the session and sign-in cookies and
//! any `Authorization` header are removed, so a program in the workspace cannot act as its owner
//! towards Trellis. Nor may it set those cookies in the browser.

use std::net::IpAddr;

use axum::http::header::{self, HeaderMap, HeaderName, HeaderValue};

use crate::identity::session::{CSRF_HEADER, LOGIN_COOKIE, SESSION_COOKIE};

/// Connection-level headers (RFC 9110 §7.6.1, plus the old `Keep-Alive` and `Proxy-Connection`):
/// they describe one hop and are never forwarded as they are.
const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Trellis's cookies: never shown to a workspace, never set by one.
fn trellis_cookie(name: &str) -> bool {
    name == SESSION_COOKIE || name == LOGIN_COOKIE || name == super::origin::GATEWAY_COOKIE
}

/// The protocol a request asks to switch to (`Upgrade`, when `Connection` says `upgrade`).
pub fn upgrade_of(headers: &HeaderMap) -> Option<HeaderValue> {
    let asks = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|token| token.trim().eq_ignore_ascii_case("upgrade"));
    if asks {
        headers.get(header::UPGRADE).cloned()
    } else {
        None
    }
}

/// Removes the hop-by-hop headers, and those the `Connection` header names.
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|token| HeaderName::from_bytes(token.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
}

/// Puts back what a protocol switch needs on the next hop.
fn restore_upgrade(headers: &mut HeaderMap, upgrade: Option<HeaderValue>) {
    if let Some(protocol) = upgrade {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(header::UPGRADE, protocol);
    }
}

/// The `Cookie` header without Trellis's cookies, or `None` when nothing else is left.
pub fn without_trellis_cookies(headers: &HeaderMap) -> Option<HeaderValue> {
    let kept: Vec<&str> = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .map(str::trim)
        .filter(|pair| !pair.is_empty())
        .filter(|pair| {
            let name = pair.split_once('=').map_or(*pair, |(name, _)| name).trim();
            !trellis_cookie(name)
        })
        .collect();
    if kept.is_empty() {
        None
    } else {
        HeaderValue::from_str(&kept.join("; ")).ok()
    }
}

/// Where a request came from, for the `X-Forwarded-*` headers.
#[derive(Clone, Debug)]
pub struct Forwarded<'a> {
    /// The peer that connected to Trellis.
    pub client: Option<IpAddr>,
    /// The scheme people use to reach Trellis (its public URL's).
    pub proto: &'a str,
}

/// The headers to send to the workspace for a request that came with `incoming`.
pub fn request_headers(incoming: &HeaderMap, forwarded: &Forwarded<'_>) -> HeaderMap {
    let upgrade = upgrade_of(incoming);
    let mut headers = incoming.clone();
    strip_hop_by_hop(&mut headers);
    headers.remove(header::AUTHORIZATION);
    headers.remove(CSRF_HEADER);
    headers.remove(header::COOKIE);
    if let Some(cookies) = without_trellis_cookies(incoming) {
        headers.insert(header::COOKIE, cookies);
    }
    restore_upgrade(&mut headers, upgrade);
    // An ingress in front of Trellis may already have said who the client is; add this hop.
    if let Some(client) = forwarded.client {
        let chain = match incoming
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
        {
            Some(earlier) if !earlier.trim().is_empty() => format!("{earlier}, {client}"),
            _ => client.to_string(),
        };
        if let Ok(value) = HeaderValue::from_str(&chain) {
            headers.insert("x-forwarded-for", value);
        }
    }
    if let Ok(proto) = HeaderValue::from_str(forwarded.proto) {
        headers.insert("x-forwarded-proto", proto);
    }
    if let Some(host) = incoming.get(header::HOST) {
        headers.insert("x-forwarded-host", host.clone());
    }
    headers
}

/// The headers to send to the browser for a response that came with `backend`; `switching`
/// for a `101 Switching Protocols`, which keeps its `Upgrade`.
pub fn response_headers(backend: &HeaderMap, switching: bool) -> HeaderMap {
    let upgrade = if switching {
        backend.get(header::UPGRADE).cloned()
    } else {
        None
    };
    let mut headers = backend.clone();
    strip_hop_by_hop(&mut headers);
    restore_upgrade(&mut headers, upgrade);
    let cookies: Vec<HeaderValue> = headers
        .get_all(header::SET_COOKIE)
        .iter()
        .filter(|v| {
            let text = v.to_str().unwrap_or_default();
            let name = text.split_once('=').map_or(text, |(name, _)| name).trim();
            !trellis_cookie(name)
        })
        .cloned()
        .collect();
    headers.remove(header::SET_COOKIE);
    for cookie in cookies {
        headers.append(header::SET_COOKIE, cookie);
    }
    headers
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        headers
    }

    fn values(headers: &HeaderMap, name: &str) -> Vec<String> {
        headers
            .get_all(name)
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .collect()
    }

    const HERE: Forwarded<'static> = Forwarded {
        client: Some(IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 9))),
        proto: "https",
    };

    #[test]
    fn trellis_credentials_never_reach_the_workspace() {
        let incoming = map(&[
            ("host", "trellis.example.org"),
            (
                "cookie",
                "_xsrf=2|abc; trellis_session=SECRET; username-x=y",
            ),
            ("cookie", "trellis_login=STATE"),
            ("cookie", " trellis_session = SECRET2 ;theme=dark"),
            ("authorization", "Bearer SECRET3"),
            ("x-csrf-token", "SECRET4"),
            ("x-xsrftoken", "abc"),
            ("origin", "https://trellis.example.org"),
        ]);
        let sent = request_headers(&incoming, &HERE);
        assert_eq!(
            values(&sent, "cookie"),
            ["_xsrf=2|abc; username-x=y; theme=dark"]
        );
        let everything = format!("{sent:?}");
        for secret in ["SECRET", "STATE", "trellis_"] {
            assert!(!everything.contains(secret), "{secret} in {everything}");
        }
        assert!(sent.get("authorization").is_none());
        // Jupyter's own checks need these exactly as the browser sent them.
        assert_eq!(values(&sent, "host"), ["trellis.example.org"]);
        assert_eq!(values(&sent, "origin"), ["https://trellis.example.org"]);
        assert_eq!(values(&sent, "x-xsrftoken"), ["abc"]);
    }

    #[test]
    fn only_trellis_cookies_gone_means_no_cookie_header() {
        let incoming = map(&[("cookie", "trellis_session=a; trellis_login=b")]);
        assert!(request_headers(&incoming, &HERE).get("cookie").is_none());
        // A cookie whose name merely starts like ours is someone else's.
        let incoming = map(&[("cookie", "trellis_session_x=1; xtrellis_session=2")]);
        assert_eq!(
            values(&request_headers(&incoming, &HERE), "cookie"),
            ["trellis_session_x=1; xtrellis_session=2"]
        );
    }

    #[test]
    fn hop_by_hop_headers_stop_here() {
        let incoming = map(&[
            ("connection", "keep-alive, x-private"),
            ("keep-alive", "timeout=5"),
            ("x-private", "1"),
            ("te", "trailers"),
            ("transfer-encoding", "chunked"),
            ("proxy-authorization", "Basic x"),
            ("upgrade", "h2c"),
            ("accept", "text/html"),
        ]);
        let sent = request_headers(&incoming, &HERE);
        for gone in [
            "connection",
            "keep-alive",
            "x-private",
            "te",
            "transfer-encoding",
            "proxy-authorization",
            "upgrade",
        ] {
            assert!(sent.get(gone).is_none(), "{gone}");
        }
        assert_eq!(values(&sent, "accept"), ["text/html"]);
    }

    #[test]
    fn a_websocket_upgrade_is_passed_on() {
        let incoming = map(&[
            ("connection", "keep-alive, Upgrade"),
            ("upgrade", "websocket"),
            ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
            ("sec-websocket-version", "13"),
        ]);
        assert_eq!(
            upgrade_of(&incoming),
            Some(HeaderValue::from_static("websocket"))
        );
        let sent = request_headers(&incoming, &HERE);
        assert_eq!(values(&sent, "connection"), ["upgrade"]);
        assert_eq!(values(&sent, "upgrade"), ["websocket"]);
        assert_eq!(
            values(&sent, "sec-websocket-key"),
            ["dGhlIHNhbXBsZSBub25jZQ=="]
        );
        let answer = map(&[
            ("connection", "Upgrade"),
            ("upgrade", "websocket"),
            ("sec-websocket-accept", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
        ]);
        let back = response_headers(&answer, true);
        assert_eq!(values(&back, "upgrade"), ["websocket"]);
        assert_eq!(values(&back, "connection"), ["upgrade"]);
        assert_eq!(
            values(&back, "sec-websocket-accept"),
            ["s3pPLMBiTxaQ9kYGzzhZRbK+xOo="]
        );
        // An `Upgrade` header without `Connection: upgrade` asks for nothing.
        assert_eq!(upgrade_of(&map(&[("upgrade", "websocket")])), None);
        assert!(response_headers(&answer, false).get("upgrade").is_none());
    }

    #[test]
    fn forwarding_headers_say_where_the_request_came_from() {
        let sent = request_headers(&map(&[("host", "127.0.0.1:8080")]), &HERE);
        assert_eq!(values(&sent, "x-forwarded-for"), ["127.0.0.9"]);
        assert_eq!(values(&sent, "x-forwarded-proto"), ["https"]);
        assert_eq!(values(&sent, "x-forwarded-host"), ["127.0.0.1:8080"]);
        let behind_ingress = map(&[("x-forwarded-for", "203.0.113.7")]);
        assert_eq!(
            values(&request_headers(&behind_ingress, &HERE), "x-forwarded-for"),
            ["203.0.113.7, 127.0.0.9"]
        );
    }

    #[test]
    fn a_workspace_cannot_set_trellis_cookies() {
        let answer = map(&[
            ("set-cookie", "_xsrf=2|abc; Path=/w/p/w/"),
            ("set-cookie", "trellis_session=forged; Path=/"),
            ("set-cookie", "trellis_login=forged; Path=/auth"),
            ("set-cookie", "username-x=y; Path=/"),
            ("content-security-policy", "frame-ancestors 'self'"),
            ("transfer-encoding", "chunked"),
            ("connection", "close"),
        ]);
        let back = response_headers(&answer, false);
        assert_eq!(
            values(&back, "set-cookie"),
            ["_xsrf=2|abc; Path=/w/p/w/", "username-x=y; Path=/"]
        );
        assert_eq!(
            values(&back, "content-security-policy"),
            ["frame-ancestors 'self'"]
        );
        assert!(back.get("transfer-encoding").is_none());
        assert!(back.get("connection").is_none());
    }
}
