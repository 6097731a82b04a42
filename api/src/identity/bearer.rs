//! Bearer tokens from the OpenID Provider: signature checked against the provider's published
//! keys (cached; fetched again when a token names a key we have not seen, at most once per
//! `jwks_min_refresh`), then issuer, audience, expiry and not-before with a small leeway.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use serde_json::{Map, Value};
use tokio::sync::{Mutex, RwLock};

/// Why a token was refused. The wording is safe to show to the caller.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
pub enum TokenError {
    #[error("the token is not a well-formed JWT")]
    Malformed,
    #[error("the token's algorithm is not accepted")]
    AlgorithmNotAllowed,
    #[error("the token does not name its signing key (`kid`)")]
    MissingKeyId,
    #[error("the token was signed with a key the provider does not publish")]
    UnknownKey,
    #[error("the token's signature is invalid")]
    BadSignature,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("the token was issued by another provider")]
    WrongIssuer,
    #[error("the token is meant for another audience")]
    WrongAudience,
    #[error("the token lacks the `{0}` claim")]
    MissingClaim(String),
    #[error("the provider's keys could not be fetched")]
    KeysUnavailable,
}

impl TokenError {
    /// A short label for metrics and the audit log.
    pub fn reason(&self) -> &'static str {
        match self {
            TokenError::Malformed => "malformed",
            TokenError::AlgorithmNotAllowed => "algorithm",
            TokenError::MissingKeyId => "missing-kid",
            TokenError::UnknownKey => "unknown-key",
            TokenError::BadSignature => "signature",
            TokenError::Expired => "expired",
            TokenError::NotYetValid => "not-yet-valid",
            TokenError::WrongIssuer => "issuer",
            TokenError::WrongAudience => "audience",
            TokenError::MissingClaim(_) => "missing-claim",
            TokenError::KeysUnavailable => "keys-unavailable",
        }
    }
}

/// What a valid token must satisfy besides its signature.
#[derive(Clone, Debug)]
pub struct Rules {
    pub issuer: String,
    pub audiences: Vec<String>,
    pub algorithms: Vec<Algorithm>,
    pub leeway: Duration,
}

/// The algorithm and key id a token claims, checked against the allow-list before any key is
/// looked up (so `alg: none` and HMAC tokens are refused without touching keys).
pub fn key_id(token: &str, rules: &Rules) -> Result<(Algorithm, String), TokenError> {
    let header = match decode_header(token) {
        Ok(header) => header,
        Err(error) => {
            return Err(match error.kind() {
                jsonwebtoken::errors::ErrorKind::Json(_)
                    if token_alg(token).is_some_and(|alg| !alg.is_empty()) =>
                {
                    // The header parsed as JSON shape but named an algorithm we do not know,
                    // such as `none`.
                    TokenError::AlgorithmNotAllowed
                }
                _ => TokenError::Malformed,
            });
        }
    };
    if !rules.algorithms.contains(&header.alg) {
        return Err(TokenError::AlgorithmNotAllowed);
    }
    let kid = header.kid.ok_or(TokenError::MissingKeyId)?;
    Ok((header.alg, kid))
}

/// The `alg` a token's header names, read without trusting anything else in it.
fn token_alg(token: &str) -> Option<String> {
    use base64::Engine;
    let header = token.split('.').next()?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header)
        .ok()?;
    let value: Value = serde_json::from_slice(&bytes).ok()?;
    value.get("alg")?.as_str().map(String::from)
}

/// Checks the signature with `key` and the claims against `rules`; returns the claims.
pub fn verify(
    token: &str,
    algorithm: Algorithm,
    key: &DecodingKey,
    rules: &Rules,
) -> Result<Map<String, Value>, TokenError> {
    use jsonwebtoken::errors::ErrorKind;
    let mut validation = Validation::new(algorithm);
    validation.set_issuer(&[&rules.issuer]);
    validation.set_audience(&rules.audiences);
    validation.leeway = rules.leeway.as_secs();
    validation.validate_exp = true;
    validation.validate_nbf = true;
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    decode::<Map<String, Value>>(token, key, &validation)
        .map(|data| data.claims)
        .map_err(|error| match error.kind() {
            ErrorKind::InvalidSignature => TokenError::BadSignature,
            ErrorKind::ExpiredSignature => TokenError::Expired,
            ErrorKind::ImmatureSignature => TokenError::NotYetValid,
            ErrorKind::InvalidIssuer => TokenError::WrongIssuer,
            ErrorKind::InvalidAudience => TokenError::WrongAudience,
            ErrorKind::MissingRequiredClaim(claim) => TokenError::MissingClaim(claim.clone()),
            ErrorKind::InvalidAlgorithm => TokenError::AlgorithmNotAllowed,
            _ => TokenError::Malformed,
        })
}

/// How long a verified token's claims are reused without checking the signature again (never
/// past the token's own expiry). Bounds how long a token signed by a key the provider has since
/// withdrawn keeps working.
const VERIFIED_TTL: Duration = Duration::from_secs(300);
/// At most this many verified tokens are remembered.
const VERIFIED_CAPACITY: usize = 10_000;

struct Verified {
    claims: Arc<Map<String, Value>>,
    expires: i64,
    at: Instant,
}

/// The provider's key set, cached, with refetch on an unknown key id; and the claims of tokens
/// already verified, so a client's every request does not pay for a signature check.
pub struct BearerValidator {
    http: openidconnect::reqwest::Client,
    jwks_uri: String,
    rules: Rules,
    min_refresh: Duration,
    keys: RwLock<HashMap<String, Arc<DecodingKey>>>,
    last_fetch: Mutex<Option<Instant>>,
    verified: std::sync::Mutex<HashMap<[u8; 32], Verified>>,
}

impl BearerValidator {
    pub fn new(
        http: openidconnect::reqwest::Client,
        jwks_uri: String,
        rules: Rules,
        min_refresh: Duration,
    ) -> Self {
        Self {
            http,
            jwks_uri,
            rules,
            min_refresh,
            keys: RwLock::default(),
            last_fetch: Mutex::default(),
            verified: std::sync::Mutex::default(),
        }
    }

    pub fn rules(&self) -> &Rules {
        &self.rules
    }

    /// Fetches the key set now (at start, so the first request does not pay for it).
    pub async fn refresh(&self) -> Result<usize, TokenError> {
        let mut last = self.last_fetch.lock().await;
        self.fetch(&mut last).await
    }

    async fn fetch(&self, last: &mut Option<Instant>) -> Result<usize, TokenError> {
        *last = Some(Instant::now());
        let body = async {
            self.http
                .get(&self.jwks_uri)
                .send()
                .await?
                .error_for_status()?
                .bytes()
                .await
        }
        .await
        .map_err(|error| {
            tracing::warn!(%error, uri = %self.jwks_uri, "fetching the provider's keys failed");
            TokenError::KeysUnavailable
        })?;
        let set: JwkSet = serde_json::from_slice(&body).map_err(|error| {
            tracing::warn!(%error, uri = %self.jwks_uri, "the provider's key set is not a JWK set");
            TokenError::KeysUnavailable
        })?;
        let keys: HashMap<String, Arc<DecodingKey>> = set
            .keys
            .iter()
            .filter_map(|jwk| {
                let kid = jwk.common.key_id.clone()?;
                DecodingKey::from_jwk(jwk)
                    .ok()
                    .map(|key| (kid, Arc::new(key)))
            })
            .collect();
        let count = keys.len();
        *self.keys.write().await = keys;
        tracing::info!(keys = count, "loaded the provider's signing keys");
        Ok(count)
    }

    async fn key(&self, kid: &str) -> Result<Arc<DecodingKey>, TokenError> {
        if let Some(key) = self.keys.read().await.get(kid) {
            return Ok(key.clone());
        }
        // Unknown key: the provider may have rotated. Fetch again, but not more often than
        // `min_refresh`, so a stream of forged key ids cannot make us hammer the provider.
        let mut last = self.last_fetch.lock().await;
        if let Some(key) = self.keys.read().await.get(kid) {
            return Ok(key.clone());
        }
        if last.is_none_or(|at| at.elapsed() >= self.min_refresh) {
            self.fetch(&mut last).await?;
        }
        self.keys
            .read()
            .await
            .get(kid)
            .cloned()
            .ok_or(TokenError::UnknownKey)
    }

    /// The verified claims of `token`.
    pub async fn validate(&self, token: &str) -> Result<Arc<Map<String, Value>>, TokenError> {
        use sha2::Digest;
        let digest: [u8; 32] = sha2::Sha256::digest(token.as_bytes()).into();
        let now = chrono::Utc::now().timestamp();
        let leeway = self.rules.leeway.as_secs() as i64;
        if let Some(hit) = self.verified().get(&digest) {
            if now > hit.expires + leeway {
                return Err(TokenError::Expired);
            }
            if hit.at.elapsed() < VERIFIED_TTL {
                return Ok(hit.claims.clone());
            }
        }
        let (algorithm, kid) = key_id(token, &self.rules)?;
        let key = self.key(&kid).await?;
        let claims = Arc::new(verify(token, algorithm, &key, &self.rules)?);
        let expires = claims.get("exp").and_then(Value::as_i64).unwrap_or(now);
        let mut verified = self.verified();
        if verified.len() >= VERIFIED_CAPACITY {
            verified.retain(|_, v| v.at.elapsed() < VERIFIED_TTL && now <= v.expires + leeway);
            if verified.len() >= VERIFIED_CAPACITY {
                verified.clear();
            }
        }
        verified.insert(
            digest,
            Verified {
                claims: claims.clone(),
                expires,
                at: Instant::now(),
            },
        );
        Ok(claims)
    }

    fn verified(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Verified>> {
        self.verified
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use jsonwebtoken::{EncodingKey, Header, encode};
    use serde_json::json;

    // A P-256 key pair made with `openssl ecparam -name prime256v1 -genkey` for these tests only.
    const PRIVATE: &str = include_str!("../../tests/fixtures/es256-private.pem");
    const PUBLIC: &str = include_str!("../../tests/fixtures/es256-public.pem");
    const OTHER_PRIVATE: &str = include_str!("../../tests/fixtures/es256-other-private.pem");

    fn rules() -> Rules {
        Rules {
            issuer: "https://id.example.org".into(),
            audiences: vec!["trellis".into()],
            algorithms: vec![Algorithm::RS256, Algorithm::ES256],
            leeway: Duration::from_secs(30),
        }
    }

    fn now() -> i64 {
        chrono::Utc::now().timestamp()
    }

    fn good_claims() -> Value {
        json!({"iss": "https://id.example.org", "aud": "trellis", "sub": "abc",
               "preferred_username": "alice", "iat": now(), "exp": now() + 300})
    }

    fn sign_with(claims: &Value, private: &str) -> String {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some("k1".into());
        encode(
            &header,
            claims,
            &EncodingKey::from_ec_pem(private.as_bytes()).unwrap(),
        )
        .unwrap()
    }

    fn sign(claims: &Value) -> String {
        sign_with(claims, PRIVATE)
    }

    fn check(token: &str) -> Result<Map<String, Value>, TokenError> {
        let (alg, kid) = key_id(token, &rules())?;
        assert_eq!(kid, "k1");
        verify(
            token,
            alg,
            &DecodingKey::from_ec_pem(PUBLIC.as_bytes()).unwrap(),
            &rules(),
        )
    }

    fn with(field: &str, value: Value) -> Value {
        let mut claims = good_claims();
        claims[field] = value;
        claims
    }

    #[test]
    fn a_good_token_yields_its_claims() {
        let claims = check(&sign(&good_claims())).unwrap();
        assert_eq!(claims["preferred_username"], "alice");
    }

    #[test]
    fn an_audience_list_containing_ours_is_accepted() {
        assert!(check(&sign(&with("aud", json!(["other", "trellis"])))).is_ok());
    }

    #[test]
    fn claims_are_enforced() {
        assert_eq!(
            check(&sign(&with("iss", json!("https://evil.example")))),
            Err(TokenError::WrongIssuer)
        );
        assert_eq!(
            check(&sign(&with("aud", json!("someone-else")))),
            Err(TokenError::WrongAudience)
        );
        assert_eq!(
            check(&sign(&with("exp", json!(now() - 31)))),
            Err(TokenError::Expired)
        );
        assert_eq!(
            check(&sign(&with("nbf", json!(now() + 120)))),
            Err(TokenError::NotYetValid)
        );
        let mut no_exp = good_claims();
        no_exp.as_object_mut().unwrap().remove("exp");
        assert_eq!(
            check(&sign(&no_exp)),
            Err(TokenError::MissingClaim("exp".into()))
        );
    }

    #[test]
    fn small_clock_skew_is_tolerated() {
        assert!(check(&sign(&with("exp", json!(now() - 5)))).is_ok());
        assert!(check(&sign(&with("nbf", json!(now() + 5)))).is_ok());
    }

    #[test]
    fn signatures_are_checked() {
        assert_eq!(
            check(&sign_with(&good_claims(), OTHER_PRIVATE)),
            Err(TokenError::BadSignature)
        );
        // A valid signature over different claims.
        let token = sign(&good_claims());
        let forged = sign(&with("preferred_username", json!("admin")));
        let mut parts: Vec<&str> = token.split('.').collect();
        parts[1] = forged.split('.').nth(1).unwrap();
        assert_eq!(check(&parts.join(".")), Err(TokenError::BadSignature));
    }

    fn unsigned(alg: &str) -> String {
        let b64 = |v: Value| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(serde_json::to_vec(&v).unwrap())
        };
        format!(
            "{}.{}.",
            b64(json!({"alg": alg, "kid": "k1", "typ": "JWT"})),
            b64(good_claims())
        )
    }

    #[test]
    fn alg_none_and_hmac_are_refused_before_any_key_is_used() {
        assert_eq!(
            key_id(&unsigned("none"), &rules()),
            Err(TokenError::AlgorithmNotAllowed)
        );
        assert_eq!(
            key_id(&unsigned("HS256"), &rules()),
            Err(TokenError::AlgorithmNotAllowed)
        );
        assert_eq!(
            key_id(&unsigned("ES384"), &rules()),
            Err(TokenError::AlgorithmNotAllowed)
        );
    }

    #[test]
    fn garbage_is_malformed() {
        for token in ["", "abc", "a.b.c", "..", "eyJhbGciOiJFUzI1NiJ9.e30"] {
            assert!(
                matches!(
                    key_id(token, &rules()),
                    Err(TokenError::Malformed | TokenError::MissingKeyId)
                ),
                "{token}"
            );
        }
    }
}
