//! The page a person sees when browser sign-in fails: what went wrong in plain words, what an
//! administrator should check, and a way to try again. Programs get the same problem as
//! problem+json (`crate::http::auth`).

use axum::response::{IntoResponse, Response};
use maud::html;

use super::{layout, set_page_headers};
use crate::problem::Problem;

/// The longest piece of the provider's answer shown on the page (it comes from the query string).
const MAX_SHOWN: usize = 300;

/// Why a sign-in failed, with what an administrator needs to find the cause.
pub struct SignInFailure<'a> {
    /// The short reason also written to the audit log and metrics (`provider-error`, …).
    pub reason: &'a str,
    pub problem: &'a Problem,
    /// The provider's `error` and `error_description`, when it sent the browser back with one.
    pub provider_error: Option<&'a str>,
    pub provider_description: Option<&'a str>,
    pub issuer: &'a str,
    pub client_id: &'a str,
    pub redirect_uri: &'a str,
    pub scopes: &'a [String],
}

impl SignInFailure<'_> {
    /// What happened, for the person signing in.
    pub fn explanation(&self) -> &'static str {
        match (self.reason, self.provider_error) {
            ("provider-error", Some("access_denied")) => {
                "The sign-in was declined: you, or the identity provider, did not allow Trellis \
                 to sign you in."
            }
            ("provider-error", Some("invalid_scope")) => {
                "The identity provider refused the details Trellis asked for about you (the \
                 scopes). This is a setup problem, not something you did."
            }
            (
                "provider-error",
                Some(
                    "invalid_request"
                    | "unauthorized_client"
                    | "invalid_client"
                    | "unsupported_response_type"
                    | "invalid_request_uri",
                ),
            ) => {
                "The identity provider does not accept Trellis as it is set up. This is a setup \
                 problem, not something you did."
            }
            (
                "provider-error",
                Some(
                    "login_required"
                    | "interaction_required"
                    | "consent_required"
                    | "account_selection_required",
                ),
            ) => "The identity provider needs you to sign in or agree first.",
            ("provider-error", Some("server_error" | "temporarily_unavailable")) => {
                "The identity provider had a problem of its own. Try again in a few minutes."
            }
            ("provider-error", _) => "The identity provider did not sign you in.",
            ("state-mismatch" | "state-unknown" | "bad-callback", _) => {
                "This sign-in could not be matched to one started in this browser: it may have \
                 taken longer than ten minutes, been used already, or been started in another \
                 browser."
            }
            ("code-exchange", _) => {
                "You signed in at the identity provider, but Trellis could not complete the \
                 sign-in with it."
            }
            ("claims", _) => {
                "You signed in at the identity provider, but it did not tell Trellis who you are \
                 in a way Trellis can use."
            }
            _ => "Trellis could not record the sign-in. Try again in a moment.",
        }
    }

    /// What an administrator should look at first.
    pub fn admin_hint(&self) -> String {
        match (self.reason, self.provider_error) {
            ("provider-error", Some("invalid_scope")) => format!(
                "Check that the provider offers every scope Trellis asked for ({}), as listed in \
                 its discovery document's scopes_supported, or set oidc.scopes.",
                self.scopes.join(" ")
            ),
            ("provider-error", Some("access_denied")) => {
                "Check that this person may use the client in the provider, and whether the \
                 provider asks for consent."
                    .to_string()
            }
            ("provider-error", _) => format!(
                "Check the client registration in the provider: the client id, that it is \
                 confidential, and the redirect URI {}.",
                self.redirect_uri
            ),
            ("state-mismatch" | "state-unknown" | "bad-callback", _) => {
                "Usually nothing: the person should start again. If it keeps happening, check \
                 that the sign-in cookie survives (public_url, session.secure_cookie behind a \
                 proxy) and that the clocks agree."
                    .to_string()
            }
            ("code-exchange", _) => format!(
                "Check the client secret, the redirect URI {} and that the API reaches the \
                 provider's token endpoint.",
                self.redirect_uri
            ),
            ("claims", _) => {
                "Check that the ID token carries the claims Trellis maps (oidc.subject_claim, \
                 oidc.groups_claim)."
                    .to_string()
            }
            _ => "Check the API's log and its database.".to_string(),
        }
    }
}

fn shorten(text: &str) -> String {
    if text.chars().count() <= MAX_SHOWN {
        text.to_string()
    } else {
        let mut short: String = text.chars().take(MAX_SHOWN).collect();
        short.push('…');
        short
    }
}

/// The sign-in failure as a page, with the problem's status.
pub fn failure_page(failure: &SignInFailure) -> Response {
    let body = layout::page(
        None,
        "Sign-in failed",
        html! {
            h1 { "Sign-in failed" }
            p.problem role="alert" { (failure.explanation()) }
            p { a.button href="/auth/login" { "Try signing in again" } }
            h2 { "For your administrator" }
            p #admin-hint { (failure.admin_hint()) }
            dl.facts {
                dt { "What failed" } dd #reason { (failure.reason) }
                @if let Some(error) = failure.provider_error {
                    dt { "The provider's error" } dd #provider-error { code { (shorten(error)) } }
                }
                @if let Some(description) = failure.provider_description.filter(|d| !d.is_empty()) {
                    dt { "The provider's description" } dd #provider-description { (shorten(description)) }
                }
                dt { "Detail" } dd #detail { (shorten(&failure.problem.detail)) }
                dt { "Issuer" } dd #issuer { code { (failure.issuer) } }
                dt { "Client id" } dd #client-id { code { (failure.client_id) } }
                dt { "Scopes asked for" } dd #scopes { code { (failure.scopes.join(" ")) } }
            }
        },
    );
    let mut response = (failure.problem.status_code(), body).into_response();
    set_page_headers(&mut response);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure<'a>(
        reason: &'a str,
        problem: &'a Problem,
        error: Option<&'a str>,
        description: Option<&'a str>,
        scopes: &'a [String],
    ) -> SignInFailure<'a> {
        SignInFailure {
            reason,
            problem,
            provider_error: error,
            provider_description: description,
            issuer: "http://127.0.0.1:5556/dex",
            client_id: "trellis",
            redirect_uri: "http://127.0.0.1:8080/auth/callback",
            scopes,
        }
    }

    async fn body(response: Response) -> (u16, String, String) {
        let status = response.status().as_u16();
        let csp = response
            .headers()
            .get("content-security-policy")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        (status, csp, String::from_utf8(bytes.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn an_invalid_scope_page_names_the_scopes_issuer_and_client() {
        let problem = Problem::unauthorized("the identity provider refused the sign-in");
        let scopes = vec!["openid".to_string(), "groups".to_string()];
        let page = failure(
            "provider-error",
            &problem,
            Some("invalid_scope"),
            Some("Invalid scopes: openid groups"),
            &scopes,
        );
        let (status, csp, html) = body(failure_page(&page)).await;
        assert_eq!(status, 401);
        assert!(csp.contains("default-src 'none'"), "{csp}");
        assert!(html.contains("<h1>Sign-in failed</h1>"), "{html}");
        assert!(html.contains("the scopes"), "{html}");
        assert!(html.contains("scopes_supported"), "{html}");
        assert!(html.contains("Invalid scopes: openid groups"), "{html}");
        assert!(html.contains("http://127.0.0.1:5556/dex"), "{html}");
        assert!(
            html.contains(r#"<dd id="client-id"><code>trellis</code>"#),
            "{html}"
        );
        assert!(html.contains(r#"href="/auth/login""#), "{html}");
    }

    #[tokio::test]
    async fn the_providers_words_are_escaped_and_cut() {
        let problem = Problem::unauthorized("refused");
        let long = format!("<script>alert(1)</script>{}", "x".repeat(1000));
        let page = failure(
            "provider-error",
            &problem,
            Some("access_denied"),
            Some(&long),
            &[],
        );
        let (_, _, html) = body(failure_page(&page)).await;
        assert!(!html.contains("<script>alert"), "{html}");
        assert!(html.contains("&lt;script&gt;"), "{html}");
        assert!(
            !html.contains(&"x".repeat(400)),
            "cut to {MAX_SHOWN} characters"
        );
        assert!(html.contains("declined"), "{html}");
    }

    #[test]
    fn each_reason_has_its_own_words() {
        let problem = Problem::bad_request("x");
        let explain = |reason, error| failure(reason, &problem, error, None, &[]).explanation();
        assert!(explain("state-mismatch", None).contains("this browser"));
        assert!(explain("code-exchange", None).contains("could not complete"));
        assert!(explain("provider-error", Some("server_error")).contains("few minutes"));
        assert_ne!(
            explain("provider-error", Some("access_denied")),
            explain("provider-error", Some("invalid_scope"))
        );
        let hint = failure("code-exchange", &problem, None, None, &[]).admin_hint();
        assert!(
            hint.contains("client secret") && hint.contains("/auth/callback"),
            "{hint}"
        );
    }
}
