//! Which paths the gateway may forward to a workspace: pure functions over the request path.
//!
//! A template's blocked paths (e.g. Jupyter's `/files/`) must hold however the path is spelt, so
//! the decision is made on a normalised copy: percent-decoded (repeatedly, so a double encoding
//! cannot hide a prefix), `\` read as `/`, empty segments dropped and `.`/`..` resolved. The
//! request itself is forwarded unchanged; normalising only ever makes the gateway refuse more.

use std::borrow::Cow;

use percent_encoding::percent_decode;

/// Percent-decoding rounds before a path is called unreadable: real paths need one, a
/// legitimate file name with a literal `%25` two.
const DECODE_ROUNDS: usize = 4;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("the path is encoded too many times over to be read")]
    Undecodable,
    #[error("the path leads outside the workspace ({0})")]
    Outside(String),
}

/// What the gateway does with a path under a workspace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Forward; the path within the workspace, normalised (starting with `/`).
    Forward(String),
    /// Refuse: the path within the workspace, normalised, falls under this blocked prefix.
    Blocked { path: String, prefix: String },
}

/// `path` percent-decoded until it no longer changes, with `\` read as `/`, then reduced to its
/// segments with `.`, `..` and empty ones resolved. Always absolute, without a trailing slash
/// unless the path ended in one (Jupyter's routes tell `/files` from `/files/`).
pub fn normalise(path: &str) -> Result<String, PathError> {
    let mut decoded: Cow<'_, str> = Cow::Borrowed(path);
    let mut rounds = 0;
    loop {
        let next = percent_decode(decoded.as_bytes()).decode_utf8_lossy();
        if next == decoded {
            break;
        }
        rounds += 1;
        if rounds > DECODE_ROUNDS {
            return Err(PathError::Undecodable);
        }
        decoded = Cow::Owned(next.into_owned());
    }
    let decoded = decoded.replace('\\', "/");
    let mut segments: Vec<&str> = Vec::new();
    for segment in decoded.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            other => segments.push(other),
        }
    }
    let trailing = decoded.ends_with('/')
        || decoded.ends_with("/.")
        || decoded.ends_with("/..")
        || decoded == "."
        || decoded == "..";
    let mut normal = format!("/{}", segments.join("/"));
    if trailing && !segments.is_empty() {
        normal.push('/');
    }
    Ok(normal)
}

/// Decides a request `path` (as sent, undecoded) for the workspace served under `base`
/// (`/w/<project>/<workspace>`, no trailing slash), whose template blocks `blocked` prefixes
/// (relative to `base`, each starting with `/`).
pub fn decide<'a>(
    path: &str,
    base: &str,
    blocked: impl IntoIterator<Item = &'a str>,
) -> Result<Verdict, PathError> {
    let normal = normalise(path)?;
    let within = match normal.strip_prefix(base) {
        Some("") => "/".to_string(),
        Some(rest) if rest.starts_with('/') => rest.to_string(),
        _ => return Err(PathError::Outside(normal)),
    };
    for prefix in blocked {
        if blocks(prefix, &within) {
            return Ok(Verdict::Blocked {
                path: within,
                prefix: prefix.to_string(),
            });
        }
    }
    Ok(Verdict::Forward(within))
}

/// Whether the blocked `prefix` covers the normalised path `within`. A prefix written with a
/// trailing slash (`/files/`) also covers the bare directory (`/files`): Jupyter redirects one to
/// the other.
fn blocks(prefix: &str, within: &str) -> bool {
    if within.starts_with(prefix) {
        return true;
    }
    match prefix.strip_suffix('/') {
        Some(bare) if !bare.is_empty() => within == bare,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "/w/p/w";
    const JUPYTER: [&str; 2] = ["/files/", "/nbconvert/"];

    fn verdict(path: &str) -> Result<Verdict, PathError> {
        decide(path, BASE, JUPYTER)
    }

    fn blocked(path: &str) -> bool {
        matches!(verdict(path), Ok(Verdict::Blocked { .. }))
    }

    #[test]
    fn normalising_resolves_every_spelling() {
        for (path, normal) in [
            ("/", "/"),
            ("", "/"),
            ("/a/b", "/a/b"),
            ("/a/b/", "/a/b/"),
            ("//a///b", "/a/b"),
            ("/a/./b", "/a/b"),
            ("/a/x/../b", "/a/b"),
            ("/a/b/..", "/a/"),
            ("/a/b/.", "/a/b/"),
            ("/../../a", "/a"),
            ("/%61/b", "/a/b"),
            ("/a%2Fb", "/a/b"),
            ("/a%2fb", "/a/b"),
            ("/a/%2e%2e/b", "/b"),
            ("/a/%252e%252e/b", "/b"),
            ("/a\\..\\b", "/b"),
            ("/a%5c..%5cb", "/b"),
            ("/caf%C3%A9", "/café"),
            ("/bad%FFbyte", "/bad\u{FFFD}byte"),
            ("/100%", "/100%"),
            ("/%zz", "/%zz"),
        ] {
            assert_eq!(normalise(path).as_deref(), Ok(normal), "{path}");
        }
    }

    #[test]
    fn endless_encodings_are_refused() {
        let mut path = "/files/a".to_string();
        for _ in 0..6 {
            path = path.replace('%', "%25").replace('f', "%66");
        }
        assert_eq!(normalise(&path), Err(PathError::Undecodable));
    }

    #[test]
    fn blocked_prefixes_hold_however_the_path_is_spelt() {
        for path in [
            "/w/p/w/files/a.csv",
            "/w/p/w/files/",
            "/w/p/w/files",
            "/w/p/w/x/../files/a",
            "/w/p/w/./files/a",
            "/w/p/w//files/a",
            "/w/p/w/%66iles/a",
            "/w/p/w/%2566iles/a",
            "/w/p/w/files%2Fa",
            "/w/p/w/api/..%2Ffiles/a",
            "/w/p/w/api/%2e%2e/files/a",
            "/w/p/w/api\\..\\files\\a",
            "//w//p//w//files//a",
            "/w/p/w/nbconvert/html/x.ipynb",
            "/w/p/w/nbconvert/",
            "/w/p/w/api/contents/../../nbconvert/pdf/x.ipynb",
        ] {
            assert!(blocked(path), "{path} should be blocked");
        }
        assert_eq!(
            verdict("/w/p/w/x/../files/a"),
            Ok(Verdict::Blocked {
                path: "/files/a".into(),
                prefix: "/files/".into()
            })
        );
    }

    #[test]
    fn everything_else_is_forwarded() {
        for (path, within) in [
            ("/w/p/w", "/"),
            ("/w/p/w/", "/"),
            ("/w/p/w/lab", "/lab"),
            (
                "/w/p/w/api/contents/files/a.csv",
                "/api/contents/files/a.csv",
            ),
            (
                "/w/p/w/api/contents/notebook.ipynb",
                "/api/contents/notebook.ipynb",
            ),
            ("/w/p/w/filesystem/a", "/filesystem/a"),
            ("/w/p/w/myfiles/a", "/myfiles/a"),
            ("/w/p/w/api/kernels/k1/channels", "/api/kernels/k1/channels"),
            ("/w/p/w/lab/tree/files/a", "/lab/tree/files/a"),
        ] {
            assert_eq!(verdict(path), Ok(Verdict::Forward(within.into())), "{path}");
        }
    }

    #[test]
    fn paths_must_stay_inside_the_workspace() {
        for path in [
            "/w/p/w/../other/files/a",
            "/w/p/w/%2e%2e/other/",
            "/w/p/w/../../../api/v1/me",
            "/w/p/wx/a",
            "/w/p/",
            "/api/v1/me",
        ] {
            assert!(
                matches!(verdict(path), Err(PathError::Outside(_))),
                "{path}: {:?}",
                verdict(path)
            );
        }
        // Going out and back in is still inside.
        assert_eq!(
            verdict("/w/p/w/../w/lab"),
            Ok(Verdict::Forward("/lab".into()))
        );
    }

    #[test]
    fn a_prefix_without_a_slash_is_a_plain_prefix() {
        let decide_vscode = |path| decide(path, BASE, ["/vscode-remote-resource"]);
        assert!(matches!(
            decide_vscode("/w/p/w/vscode-remote-resource"),
            Ok(Verdict::Blocked { .. })
        ));
        assert!(matches!(
            decide_vscode("/w/p/w/vscode-remote-resource/x"),
            Ok(Verdict::Blocked { .. })
        ));
        assert!(matches!(
            decide_vscode("/w/p/w/static/x"),
            Ok(Verdict::Forward(_))
        ));
        assert!(matches!(
            decide("/w/p/w/anything", BASE, ["/"]),
            Ok(Verdict::Blocked { .. })
        ));
        assert!(matches!(
            decide("/w/p/w/", BASE, []),
            Ok(Verdict::Forward(_))
        ));
    }
}
