//! `notifications`: e-mail about airlock steps, over SMTP or to the log.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::error::{ConfigError, invalid};

/// E-mail about airlock requests (submitted, returned, approved, released, rejected).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NotificationsConfig {
    /// The SMTP server mail goes through; unset: each notification is only logged.
    #[serde(default)]
    pub smtp: Option<SmtpConfig>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    /// The server's host name (with TLS, the name its certificate must carry) or IP address.
    pub host: String,
    /// Default: 25 without TLS, 587 with STARTTLS, 465 with TLS.
    #[serde(default)]
    pub port: Option<u16>,
    /// The sender, e.g. `Trellis <trellis@tre.example.org>`.
    pub from: String,
    /// `starttls` (the default), `tls` (TLS from the first byte) or `none` (a relay on a
    /// trusted network only; never with a password).
    #[serde(default)]
    pub tls: SmtpTls,
    /// The user name to authenticate as; needs `password_file`.
    #[serde(default)]
    pub username: Option<String>,
    /// A file holding the password (a mounted Secret).
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// A PEM file of CA certificates to trust besides the system's (a relay with a private CA).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// How long sending one message may take (connecting, TLS and every command); past it the
    /// message counts as failed.
    #[serde(default = "default_smtp_timeout", with = "humantime_serde")]
    pub timeout: Duration,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
pub enum SmtpTls {
    #[serde(rename = "none")]
    Plain,
    #[default]
    #[serde(rename = "starttls")]
    StartTls,
    #[serde(rename = "tls")]
    Tls,
}

impl SmtpConfig {
    pub fn port(&self) -> u16 {
        self.port.unwrap_or(match self.tls {
            SmtpTls::Plain => 25,
            SmtpTls::StartTls => 587,
            SmtpTls::Tls => 465,
        })
    }

    /// The password, read from its file; `None` without a user name.
    pub fn password(&self) -> Result<Option<String>, ConfigError> {
        match &self.password_file {
            Some(file) if self.username.is_some() => std::fs::read_to_string(file)
                .map(|s| Some(s.trim_end_matches(['\r', '\n']).to_string()))
                .map_err(|e| {
                    invalid(
                        "notifications.smtp.password_file",
                        format!("{}: {e}", file.display()),
                    )
                }),
            _ => Ok(None),
        }
    }
}

pub(super) fn default_smtp_timeout() -> Duration {
    Duration::from_secs(30)
}

pub(super) fn validate_smtp(smtp: &SmtpConfig) -> Result<(), ConfigError> {
    if smtp.host.trim().is_empty() {
        return Err(invalid("notifications.smtp.host", "must not be empty"));
    }
    if smtp.port == Some(0) {
        return Err(invalid("notifications.smtp.port", "must be 1–65535"));
    }
    if let Err(error) = smtp.from.parse::<lettre::message::Mailbox>() {
        return Err(invalid(
            "notifications.smtp.from",
            format!("not an e-mail address (`Name <user@domain>` or `user@domain`): {error}"),
        ));
    }
    match (&smtp.username, &smtp.password_file) {
        (Some(_), None) => {
            return Err(invalid(
                "notifications.smtp.password_file",
                "a username needs a password_file",
            ));
        }
        (None, Some(_)) => {
            return Err(invalid(
                "notifications.smtp.username",
                "a password_file needs a username",
            ));
        }
        (Some(_), Some(_)) if smtp.tls == SmtpTls::Plain => {
            return Err(invalid(
                "notifications.smtp.tls",
                "a password is never sent without TLS: use starttls or tls",
            ));
        }
        _ => {}
    }
    if smtp.timeout < Duration::from_secs(1) || smtp.timeout > Duration::from_secs(300) {
        return Err(invalid("notifications.smtp.timeout", "between 1s and 5m"));
    }
    Ok(())
}
