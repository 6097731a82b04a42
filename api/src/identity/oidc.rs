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
        scopes: Vec<String>,
        http: reqwest::Client,
    ) -> Result<Self, OidcError> {
        // The issuer as configured, without the trailing slash `Url` adds to bare hosts, since
        // it must equal the `iss` the provider puts in tokens.
        let issuer_text = issuer.as_str().trim_end_matches('/').to_string();
        let issuer = IssuerUrl::new(issuer_text).map_err(|e| OidcError::Url(e.to_string()))?;
        let metadata = CoreProviderMetadata::discover_async(issuer, &http)
            .await
            .map_err(|e| OidcError::Discovery(error_chain(&e)))?;
        let jwks_uri = metadata.jwks_uri().url().to_string();
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
        })
    }

    pub fn jwks_uri(&self) -> &str {
        &self.jwks_uri
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
