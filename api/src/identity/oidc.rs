//! Browser sign-in: the authorization-code flow with PKCE, state and nonce, through the
//! provider's discovery document (the `openidconnect` crate does the protocol).

use base64::Engine;
use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointMaybeSet, EndpointNotSet,
    EndpointSet, IssuerUrl, Nonce, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope,
    TokenResponse, reqwest,
};
use serde_json::{Map, Value};

use super::session::LoginAttempt;
use crate::config::DEFAULT_SCOPES;

pub type LoginClient = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    #[error("the provider's discovery document could not be read: {0}")]
    Discovery(String),
    #[error("bad URL: {0}")]
    Url(String),
    #[error("the provider refused the authorization code: {0}")]
    Exchange(String),
    #[error("the provider returned no ID token")]
    NoIdToken,
    #[error("the ID token is invalid: {0}")]
    IdToken(String),
}

/// The provider as this API uses it.
pub struct Provider {
    client: LoginClient,
    http: reqwest::Client,
    scopes: Vec<String>,
    jwks_uri: String,
    issuer: String,
    client_id: String,
}

/// An HTTP client for talking to the provider. Redirects are never followed (the OAuth 2.0
/// security advice: a redirect could leak codes and tokens).
pub fn http_client() -> reqwest::Client {
    reqwest::ClientBuilder::new()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(std::time::Duration::from_secs(10))
        .build()
        .expect("an HTTP client with default TLS settings can always be built")
}

impl Provider {
    pub async fn discover(
        issuer: &url::Url,
        client_id: &str,
        client_secret: &str,
        redirect: url::Url,
        configured_scopes: Option<Vec<String>>,
        http: reqwest::Client,
    ) -> Result<Self, OidcError> {
        // The issuer as configured, without the trailing slash `Url` adds to bare hosts, since
        // it must equal the `iss` the provider puts in tokens.
        let issuer_text = issuer.as_str().trim_end_matches('/').to_string();
        let issuer =
            IssuerUrl::new(issuer_text.clone()).map_err(|e| OidcError::Url(e.to_string()))?;
        let metadata = CoreProviderMetadata::discover_async(issuer, &http)
            .await
            .map_err(|e| OidcError::Discovery(error_chain(&e)))?;
        let jwks_uri = metadata.jwks_uri().url().to_string();
        let supported: Option<Vec<String>> = metadata
            .scopes_supported()
            .map(|scopes| scopes.iter().map(|s| s.as_str().to_string()).collect());
        let scopes = choose_scopes(configured_scopes, supported.as_deref());
        tracing::info!(
            scopes = %scopes.join(" "),
            offered = %supported.as_deref().map_or_else(|| "(not listed)".to_string(), |s| s.join(" ")),
            "browser sign-in asks the provider for these scopes"
        );
        let client = CoreClient::from_provider_metadata(
            metadata,
            ClientId::new(client_id.to_string()),
            Some(ClientSecret::new(client_secret.to_string())),
        )
        .set_redirect_uri(
            RedirectUrl::new(redirect.to_string()).map_err(|e| OidcError::Url(e.to_string()))?,
        );
        Ok(Self {
            client,
            http,
            scopes,
            jwks_uri,
            issuer: issuer_text,
            client_id: client_id.to_string(),
        })
    }

    pub fn jwks_uri(&self) -> &str {
        &self.jwks_uri
    }

    /// The scopes browser sign-in asks for (see [`choose_scopes`]).
    pub fn scopes(&self) -> &[String] {
        &self.scopes
    }

    /// The issuer as configured (no trailing slash).
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// Where to send the browser, the `state` to expect back, and what to remember until then.
    pub fn start(&self, return_to: String) -> (url::Url, String, LoginAttempt) {
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = self.client.authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        );
        for scope in self.scopes.iter().filter(|s| *s != "openid") {
            request = request.add_scope(Scope::new(scope.clone()));
        }
        let (url, state, nonce) = request.set_pkce_challenge(challenge).url();
        (
            url,
            state.secret().clone(),
            LoginAttempt {
                pkce_verifier: verifier.secret().clone(),
                nonce: nonce.secret().clone(),
                return_to,
            },
        )
    }

    /// Exchanges the code (proving PKCE), verifies the ID token (signature, issuer, audience,
    /// expiry, nonce) and returns its claims.
    pub async fn finish(
        &self,
        code: String,
        attempt: &LoginAttempt,
    ) -> Result<Map<String, Value>, OidcError> {
        let response = self
            .client
            .exchange_code(AuthorizationCode::new(code))
            .map_err(|e| OidcError::Exchange(e.to_string()))?
            .set_pkce_verifier(PkceCodeVerifier::new(attempt.pkce_verifier.clone()))
            .request_async(&self.http)
            .await
            .map_err(|e| OidcError::Exchange(error_chain(&e)))?;
        let id_token = response.id_token().ok_or(OidcError::NoIdToken)?;
        id_token
            .claims(
                &self.client.id_token_verifier(),
                &Nonce::new(attempt.nonce.clone()),
            )
            .map_err(|e| OidcError::IdToken(e.to_string()))?;
        // Verified above; read every claim (groups included) from the token's payload.
        payload(&id_token.to_string())
            .ok_or_else(|| OidcError::IdToken("unreadable payload".into()))
    }
}

/// The scopes to ask for: the configured ones when set; otherwise `openid` and those of `profile`,
/// `email` and `groups` that the provider lists in `scopes_supported`; and when it lists none (the
/// field is optional), all of [`DEFAULT_SCOPES`]. Asking for a scope the provider does not know
/// makes some providers (Keycloak) refuse the whole sign-in with `invalid_scope`.
pub fn choose_scopes(configured: Option<Vec<String>>, supported: Option<&[String]>) -> Vec<String> {
    if let Some(configured) = configured {
        return configured;
    }
    match supported {
        Some(supported) if !supported.is_empty() => DEFAULT_SCOPES
            .iter()
            .filter(|scope| **scope == "openid" || supported.iter().any(|s| s == *scope))
            .map(|scope| scope.to_string())
            .collect(),
        _ => DEFAULT_SCOPES.map(String::from).to_vec(),
    }
}

/// The JSON payload of a compact JWS. Only for tokens whose signature was already checked.
fn payload(jwt: &str) -> Option<Map<String, Value>> {
    let encoded = jwt.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(encoded)
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(scopes: &[&str]) -> Vec<String> {
        scopes.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn only_offered_scopes_are_asked_for() {
        // Keycloak 26's default realm: no `groups` scope (a mapper puts groups in tokens).
        let keycloak = list(&[
            "openid",
            "profile",
            "email",
            "roles",
            "web-origins",
            "acr",
            "address",
            "phone",
            "offline_access",
            "microprofile-jwt",
            "basic",
            "organization",
        ]);
        assert_eq!(
            choose_scopes(None, Some(&keycloak)),
            list(&["openid", "profile", "email"])
        );
        // Dex lists `groups`.
        let dex = list(&[
            "openid",
            "email",
            "groups",
            "profile",
            "offline_access",
            "audience:server:client_id:",
        ]);
        assert_eq!(
            choose_scopes(None, Some(&dex)),
            list(&["openid", "profile", "email", "groups"])
        );
    }

    #[test]
    fn openid_is_always_asked_for() {
        assert_eq!(
            choose_scopes(None, Some(&list(&["email"]))),
            list(&["openid", "email"])
        );
    }

    #[test]
    fn a_provider_that_lists_nothing_gets_the_full_set() {
        let all = list(&DEFAULT_SCOPES);
        assert_eq!(choose_scopes(None, None), all);
        assert_eq!(choose_scopes(None, Some(&[])), all);
    }

    #[test]
    fn configured_scopes_win() {
        let configured = list(&["openid", "groups", "custom"]);
        assert_eq!(
            choose_scopes(Some(configured.clone()), Some(&list(&["openid"]))),
            configured
        );
    }
}
