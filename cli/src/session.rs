//! `trellis login`: the OpenID Connect device authorization grant against the provider the API
//! names (`GET /api/v1/cli-login`), and the session file that keeps its tokens (0600, under
//! `$XDG_CONFIG_HOME/trellis/`), refreshed before a call when they are about to expire.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use oauth2::basic::BasicClient;
use oauth2::{
    ClientId, DeviceAuthorizationUrl, RefreshToken, Scope, StandardDeviceAuthorizationResponse,
    TokenResponse, TokenUrl,
};
use serde::{Deserialize, Serialize};

use crate::CliError;

/// A token this close to its expiry is refreshed before it is used.
pub const REFRESH_MARGIN: Duration = Duration::from_secs(30);
/// The lifetime assumed when the provider does not say (`expires_in` is optional).
const DEFAULT_LIFETIME: Duration = Duration::from_secs(300);

/// What `trellis login` stores: the API it signed in to and the provider's tokens.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Session {
    pub api: String,
    pub issuer: String,
    pub client_id: String,
    pub token_endpoint: String,
    pub access_token: String,
    #[serde(default)]
    pub refresh_token: Option<String>,
    /// Seconds since the Unix epoch.
    pub expires_at: u64,
    /// Who signed in (the API's subject), for messages.
    #[serde(default)]
    pub subject: Option<String>,
}

/// The provider and client the API names for the command line.
#[derive(Clone, Debug, Deserialize)]
pub struct LoginSettings {
    pub issuer: String,
    pub client_id: String,
    #[serde(default)]
    pub scopes: Vec<String>,
}

#[derive(Deserialize)]
struct Discovery {
    token_endpoint: String,
    #[serde(default)]
    device_authorization_endpoint: Option<String>,
}

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Session {
    /// Whether the access token must be refreshed before it is sent at `now`.
    pub fn needs_refresh(&self, now: u64) -> bool {
        now.saturating_add(REFRESH_MARGIN.as_secs()) >= self.expires_at
    }
}

/// The session file: `$XDG_CONFIG_HOME/trellis/session.json`, else `~/.config/trellis/…`.
pub fn default_path() -> Option<PathBuf> {
    path_from(
        std::env::var_os("XDG_CONFIG_HOME"),
        std::env::var_os("HOME"),
    )
}

fn path_from(
    xdg_config_home: Option<std::ffi::OsString>,
    home: Option<std::ffi::OsString>,
) -> Option<PathBuf> {
    let base = xdg_config_home
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            home.filter(|v| !v.is_empty())
                .map(|home| PathBuf::from(home).join(".config"))
        })?;
    Some(base.join("trellis").join("session.json"))
}

/// Reads the session file; `None` when there is none. A file that others may read, or that is
/// not a session, is refused rather than used.
pub fn load(path: &Path) -> Result<Option<Session>, CliError> {
    use std::os::unix::fs::PermissionsExt;
    let metadata = match std::fs::metadata(path) {
        Ok(metadata) => metadata,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(CliError::File {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    let mode = metadata.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(CliError::SessionPermissions {
            path: path.to_path_buf(),
            mode,
        });
    }
    let text = std::fs::read_to_string(path).map_err(|source| CliError::File {
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|error| CliError::SessionCorrupt {
            path: path.to_path_buf(),
            reason: error.to_string(),
        })
}

/// Writes the session file with mode 0600 (its directory 0700), replacing it atomically.
pub fn save(path: &Path, session: &Session) -> Result<(), CliError> {
    use std::io::Write;
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    let io = |source| CliError::File {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(io)?;
    }
    let partial = path.with_extension("json.partial");
    let _ = std::fs::remove_file(&partial);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&partial)
        .map_err(io)?;
    let text = serde_json::to_vec_pretty(session).expect("a session serializes");
    file.write_all(&text).map_err(io)?;
    file.sync_all().map_err(io)?;
    std::fs::rename(&partial, path).map_err(io)
}

/// Removes the session file; whether there was one.
pub fn remove(path: &Path) -> Result<bool, CliError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(source) => Err(CliError::File {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// The HTTP client for the provider: no redirects (as the OAuth 2.0 security advice asks), and
/// no request waits forever on a provider that stopped answering.
fn provider_http() -> oauth2::reqwest::Client {
    oauth2::reqwest::ClientBuilder::new()
        .redirect(oauth2::reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(30))
        .build()
        .expect("an HTTP client with default settings")
}

fn oauth_error(error: impl std::fmt::Display) -> CliError {
    CliError::SignIn(error.to_string())
}

/// The scopes to ask for: the API's, with `offline_access` so that a refresh token comes back.
pub fn scopes(settings: &LoginSettings) -> Vec<String> {
    let mut scopes = settings.scopes.clone();
    if !scopes.iter().any(|s| s == "openid") {
        scopes.insert(0, "openid".into());
    }
    if !scopes.iter().any(|s| s == "offline_access") {
        scopes.push("offline_access".into());
    }
    scopes
}

/// A started device sign-in: show `details` to the person, then `finish`.
pub struct DeviceLogin {
    pub details: StandardDeviceAuthorizationResponse,
    api: String,
    settings: LoginSettings,
    token_endpoint: String,
    device_endpoint: String,
}

/// Asks the API for its provider, the provider for its endpoints, and the provider for a code.
pub async fn start_login(api: &str) -> Result<DeviceLogin, CliError> {
    let api = api.trim_end_matches('/').to_string();
    crate::install_crypto();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(10))
        .build()
        .expect("an HTTP client with default settings");
    let url = format!("{api}/api/v1/cli-login");
    let response = http
        .get(&url)
        .send()
        .await
        .map_err(|e| CliError::SignIn(format!("cannot reach the Trellis API at {url}: {e}")))?;
    if !response.status().is_success() {
        return Err(CliError::SignIn(format!(
            "{url} answered {}: is this a Trellis API?",
            response.status()
        )));
    }
    let settings: LoginSettings = response
        .json()
        .await
        .map_err(|e| CliError::SignIn(format!("{url}: {e}")))?;
    let discovery_url = format!(
        "{}/.well-known/openid-configuration",
        settings.issuer.trim_end_matches('/')
    );
    let discovery: Discovery = http
        .get(&discovery_url)
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .map_err(|e| CliError::SignIn(format!("{discovery_url}: {e}")))?
        .json()
        .await
        .map_err(|e| CliError::SignIn(format!("{discovery_url}: {e}")))?;
    let device_endpoint = discovery.device_authorization_endpoint.ok_or_else(|| {
        CliError::SignIn(format!(
            "the provider {} offers no device sign-in (no device_authorization_endpoint): an admin must enable the device authorization grant",
            settings.issuer
        ))
    })?;
    let client = BasicClient::new(ClientId::new(settings.client_id.clone()))
        .set_token_uri(TokenUrl::new(discovery.token_endpoint.clone()).map_err(oauth_error)?)
        .set_device_authorization_url(
            DeviceAuthorizationUrl::new(device_endpoint.clone()).map_err(oauth_error)?,
        );
    let details: StandardDeviceAuthorizationResponse = client
        .exchange_device_code()
        .add_scopes(scopes(&settings).into_iter().map(Scope::new))
        .request_async(&provider_http())
        .await
        .map_err(|e| CliError::SignIn(format!("the provider refused a device code: {e}")))?;
    Ok(DeviceLogin {
        details,
        api,
        settings,
        token_endpoint: discovery.token_endpoint,
        device_endpoint,
    })
}

impl DeviceLogin {
    /// Polls the provider until the person approves (or the code expires); the new session.
    pub async fn finish(self) -> Result<Session, CliError> {
        let http = provider_http();
        let client = BasicClient::new(ClientId::new(self.settings.client_id.clone()))
            .set_token_uri(TokenUrl::new(self.token_endpoint.clone()).map_err(oauth_error)?)
            .set_device_authorization_url(
                DeviceAuthorizationUrl::new(self.device_endpoint.clone()).map_err(oauth_error)?,
            );
        let token = client
            .exchange_device_access_token(&self.details)
            .request_async(&http, tokio::time::sleep, None)
            .await
            .map_err(|e| CliError::SignIn(format!("the sign-in was not approved: {e}")))?;
        Ok(Session {
            api: self.api,
            issuer: self.settings.issuer,
            client_id: self.settings.client_id,
            token_endpoint: self.token_endpoint,
            access_token: token.access_token().secret().clone(),
            refresh_token: token.refresh_token().map(|t| t.secret().clone()),
            expires_at: now() + token.expires_in().unwrap_or(DEFAULT_LIFETIME).as_secs(),
            subject: None,
        })
    }
}

/// Exchanges the session's refresh token for new tokens.
pub async fn refresh(session: &Session) -> Result<Session, CliError> {
    let Some(refresh_token) = &session.refresh_token else {
        return Err(CliError::SessionExpired);
    };
    let client = BasicClient::new(ClientId::new(session.client_id.clone()))
        .set_token_uri(TokenUrl::new(session.token_endpoint.clone()).map_err(oauth_error)?);
    let token = client
        .exchange_refresh_token(&RefreshToken::new(refresh_token.clone()))
        .request_async(&provider_http())
        .await
        .map_err(|e| {
            CliError::SignIn(format!(
                "refreshing the sign-in failed ({e}); run `trellis login --api {}` again",
                session.api
            ))
        })?;
    Ok(Session {
        access_token: token.access_token().secret().clone(),
        // A provider that rotates refresh tokens sends a new one; others keep the old valid.
        refresh_token: token
            .refresh_token()
            .map(|t| t.secret().clone())
            .or_else(|| session.refresh_token.clone()),
        expires_at: now() + token.expires_in().unwrap_or(DEFAULT_LIFETIME).as_secs(),
        ..session.clone()
    })
}

/// The session's access token, refreshed first (and the file rewritten) when it is about to
/// expire.
pub async fn fresh_token(path: &Path) -> Result<String, CliError> {
    let session = load(path)?.ok_or(CliError::NoCredentials)?;
    if !session.needs_refresh(now()) {
        return Ok(session.access_token);
    }
    let renewed = refresh(&session).await?;
    save(path, &renewed)?;
    Ok(renewed.access_token)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn session() -> Session {
        Session {
            api: "http://127.0.0.1:8080".into(),
            issuer: "http://127.0.0.1:5556/dex".into(),
            client_id: "trellis-cli".into(),
            token_endpoint: "http://127.0.0.1:5556/dex/token".into(),
            access_token: "access".into(),
            refresh_token: Some("refresh".into()),
            expires_at: 1_000,
            subject: Some("alice".into()),
        }
    }

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("trellis-cli-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn a_token_is_refreshed_shortly_before_it_expires() {
        let s = session();
        assert!(!s.needs_refresh(900));
        assert!(!s.needs_refresh(969));
        assert!(s.needs_refresh(970));
        assert!(s.needs_refresh(1_000));
        assert!(s.needs_refresh(5_000));
    }

    #[test]
    fn the_session_is_written_0600_and_read_back() {
        let dir = temp_dir("save");
        let path = dir.join("trellis/session.json");
        save(&path, &session()).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let dir_mode = std::fs::metadata(path.parent().unwrap())
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(dir_mode, 0o700);
        assert_eq!(load(&path).unwrap(), Some(session()));
        // Replaced in place, still 0600.
        let mut renewed = session();
        renewed.access_token = "new".into();
        save(&path, &renewed).unwrap();
        assert_eq!(load(&path).unwrap().unwrap().access_token, "new");
        assert!(remove(&path).unwrap());
        assert!(!remove(&path).unwrap());
        assert_eq!(load(&path).unwrap(), None);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_file_others_can_read_or_a_corrupt_one_is_refused() {
        let dir = temp_dir("refuse");
        let path = dir.join("session.json");
        save(&path, &session()).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let error = load(&path).unwrap_err();
        assert!(
            matches!(error, CliError::SessionPermissions { mode: 0o644, .. }),
            "{error}"
        );
        assert!(error.to_string().contains("chmod 600"), "{error}");
        std::fs::write(&path, b"{not json").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let error = load(&path).unwrap_err();
        assert!(matches!(error, CliError::SessionCorrupt { .. }), "{error}");
        assert!(error.to_string().contains("trellis login"), "{error}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn offline_access_and_openid_are_always_asked_for() {
        let settings = LoginSettings {
            issuer: "x".into(),
            client_id: "c".into(),
            scopes: vec!["profile".into(), "groups".into()],
        };
        assert_eq!(
            scopes(&settings),
            ["openid", "profile", "groups", "offline_access"]
        );
        let already = LoginSettings {
            scopes: vec!["openid".into(), "offline_access".into()],
            ..settings
        };
        assert_eq!(scopes(&already), ["openid", "offline_access"]);
    }

    #[tokio::test]
    async fn without_a_refresh_token_an_expired_session_says_to_sign_in_again() {
        let expired = Session {
            refresh_token: None,
            ..session()
        };
        let error = refresh(&expired).await.unwrap_err();
        assert!(matches!(error, CliError::SessionExpired), "{error}");
        assert!(error.to_string().contains("trellis login"), "{error}");
    }

    #[test]
    fn the_path_follows_xdg_config_home_then_home() {
        let path =
            |x: Option<&str>, h: Option<&str>| path_from(x.map(Into::into), h.map(Into::into));
        assert_eq!(
            path(Some("/x"), Some("/h")),
            Some(PathBuf::from("/x/trellis/session.json"))
        );
        assert_eq!(
            path(Some(""), Some("/h")),
            Some(PathBuf::from("/h/.config/trellis/session.json"))
        );
        assert_eq!(path(None, None), None);
    }
}
