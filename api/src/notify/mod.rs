//! Notifications about airlock requests: submitted (to the eligible reviewers), returned,
//! approved and rejected (to the author), released (to the project's other members). Sent by
//! e-mail through SMTP when `notifications.smtp` is configured, otherwise logged.
//!
//! They go out after the step's transaction commits, from a task of their own: a slow or
//! failing mail server never holds up or fails the request. Failures are logged and counted
//! (`trellis_api_notifications_total{outcome="failed"}`).

pub mod message;
pub mod people;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::{Mailbox, Message as Mail};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use url::Url;

pub use message::{Kind, Notice, Person};
pub use people::People;

use crate::airlock::repo::RequestRecord;
use crate::airlock::state::Request;
use crate::config::{Config, ConfigError, SmtpConfig, SmtpTls};
use crate::metrics::NotificationLabels;
use crate::resources::Project;

#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("notifications.smtp.ca_file {0}: {1}")]
    CaFile(String, String),
    #[error("notifications.smtp: {0}")]
    Smtp(String),
}

#[derive(Debug, thiserror::Error)]
enum SendError {
    #[error("the address `{0}` is not usable: {1}")]
    Address(String, lettre::address::AddressError),
    #[error("building the message: {0}")]
    Build(#[from] lettre::error::Error),
    #[error("SMTP: {0}")]
    Smtp(#[from] lettre::transport::smtp::Error),
    #[error("the SMTP server did not finish within {0:?}")]
    Timeout(Duration),
}

enum Transport {
    Smtp {
        mailer: Box<AsyncSmtpTransport<Tokio1Executor>>,
        from: Mailbox,
        /// For the whole message: lettre's own timeout covers only connecting, and a server
        /// that accepts the connection and never answers would hold the task for ever.
        timeout: Duration,
    },
    /// No SMTP server: each notification becomes a log event (recipient, subject, request).
    Log,
}

impl Transport {
    fn name(&self) -> &'static str {
        match self {
            Transport::Smtp { .. } => "smtp",
            Transport::Log => "log",
        }
    }
}

/// Sends notifications; cheap to clone (one shared transport).
#[derive(Clone)]
pub struct Notifier {
    inner: Arc<Inner>,
}

struct Inner {
    transport: Transport,
    public_url: Url,
    members_may_review: bool,
    people: People,
    counts: Family<NotificationLabels, Counter>,
}

fn mailer(smtp: &SmtpConfig) -> Result<AsyncSmtpTransport<Tokio1Executor>, NotifyError> {
    let tls = |host: &str| -> Result<TlsParameters, NotifyError> {
        let mut builder = TlsParameters::builder(host.to_string());
        if let Some(file) = &smtp.ca_file {
            let pem = std::fs::read(file)
                .map_err(|e| NotifyError::CaFile(file.display().to_string(), e.to_string()))?;
            let certificate = Certificate::from_pem(&pem)
                .map_err(|e| NotifyError::CaFile(file.display().to_string(), e.to_string()))?;
            builder = builder.add_root_certificate(certificate);
        }
        builder
            .build_rustls()
            .map_err(|e| NotifyError::Smtp(e.to_string()))
    };
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(smtp.host.as_str())
        .port(smtp.port())
        .timeout(Some(smtp.timeout));
    builder = match smtp.tls {
        SmtpTls::Plain => builder.tls(Tls::None),
        SmtpTls::StartTls => builder.tls(Tls::Required(tls(&smtp.host)?)),
        SmtpTls::Tls => builder.tls(Tls::Wrapper(tls(&smtp.host)?)),
    };
    if let (Some(username), Some(password)) = (&smtp.username, smtp.password()?) {
        builder = builder.credentials(Credentials::new(username.clone(), password));
    }
    Ok(builder.build())
}

/// Checks `notifications.smtp` as the server would at start (password and CA files read, TLS
/// set up), without connecting.
pub fn check(config: &Config) -> Result<(), NotifyError> {
    if let Some(smtp) = &config.notifications.smtp {
        mailer(smtp)?;
    }
    Ok(())
}

impl Notifier {
    /// SMTP as configured in `notifications.smtp` (checked, and the password and CA read, now),
    /// or the log.
    pub fn new(
        config: &Config,
        people: People,
        counts: Family<NotificationLabels, Counter>,
    ) -> Result<Self, NotifyError> {
        let transport = match &config.notifications.smtp {
            Some(smtp) => Transport::Smtp {
                mailer: Box::new(mailer(smtp)?),
                timeout: smtp.timeout,
                from: smtp
                    .from
                    .parse()
                    .map_err(|e: lettre::address::AddressError| {
                        NotifyError::Smtp(format!("from: {e}"))
                    })?,
            },
            None => Transport::Log,
        };
        Ok(Self {
            inner: Arc::new(Inner {
                transport,
                public_url: config.public_url.clone(),
                members_may_review: config.airlock.members_may_review,
                people,
                counts,
            }),
        })
    }

    /// `smtp` or `log`.
    pub fn transport(&self) -> &'static str {
        self.inner.transport.name()
    }

    /// Tells people about the steps a request just took (each as the request before and after
    /// it), in the background. Call it after the steps' transaction has committed.
    pub fn airlock_changed<'a>(
        &self,
        stored: &RequestRecord,
        project: Option<&Project>,
        steps: impl IntoIterator<Item = (&'a Request, &'a Request)>,
    ) {
        let members: BTreeSet<String> = project
            .map(|p| p.spec.members.iter().map(|m| m.subject.clone()).collect())
            .unwrap_or_default();
        let notices: Vec<Notice> = steps
            .into_iter()
            .filter_map(|(before, after)| Some((Kind::of(before.state, after.state)?, after.round)))
            .map(|(kind, round)| Notice {
                kind,
                project: stored.project.clone(),
                id: stored.id.clone(),
                title: stored.title.clone(),
                direction: stored.request.direction,
                author: stored.request.author.clone(),
                round,
                members: members.clone(),
                members_may_review: self.inner.members_may_review,
            })
            .collect();
        if notices.is_empty() {
            return;
        }
        let notifier = self.clone();
        tokio::spawn(async move {
            for notice in notices {
                notifier.deliver(&notice).await;
            }
        });
    }

    /// Sends (or logs) one notice to each of its recipients now; returns how many were sent.
    /// People without a known address are skipped, with a log line.
    pub async fn deliver(&self, notice: &Notice) -> usize {
        let inner = &self.inner;
        let event = notice.kind.as_str();
        let candidates = match inner.people.candidates(notice).await {
            Ok(people) => people,
            Err(error) => {
                tracing::error!(%error, event, project = %notice.project, request = %notice.id,
                    "notification not sent: the people it is for could not be read");
                self.count(notice.kind, false);
                return 0;
            }
        };
        let audience = message::audience(notice, &candidates);
        for subject in &audience.unknown {
            tracing::info!(event, project = %notice.project, request = %notice.id, %subject,
                "no notification for someone Trellis has never seen sign in");
        }
        let mut sent = 0;
        for person in audience.to {
            let Some(email) = person.email.as_deref() else {
                tracing::info!(event, project = %notice.project, request = %notice.id,
                    subject = %person.subject, "no notification: no e-mail address known");
                continue;
            };
            let mail = message::compose(notice, &inner.public_url, person);
            match self.send(notice, person, email, &mail).await {
                Ok(()) => {
                    sent += 1;
                    self.count(notice.kind, true);
                }
                Err(error) => {
                    tracing::warn!(%error, event, project = %notice.project, request = %notice.id,
                        to = %email, transport = inner.transport.name(), "notification not sent");
                    self.count(notice.kind, false);
                }
            }
        }
        sent
    }

    async fn send(
        &self,
        notice: &Notice,
        person: &Person,
        email: &str,
        mail: &message::Message,
    ) -> Result<(), SendError> {
        match &self.inner.transport {
            Transport::Log => {
                // Who, the subject and the request; never the body.
                tracing::info!(event = notice.kind.as_str(), project = %notice.project,
                    request = %notice.id, to = %email, subject = %mail.subject,
                    "notification (no SMTP server configured, so only logged)");
                Ok(())
            }
            Transport::Smtp {
                mailer,
                from,
                timeout,
            } => {
                let address = email
                    .parse()
                    .map_err(|e| SendError::Address(email.to_string(), e))?;
                let message = Mail::builder()
                    .from(from.clone())
                    .to(Mailbox::new(person.name.clone(), address))
                    .subject(mail.subject.clone())
                    .header(ContentType::TEXT_PLAIN)
                    .body(mail.body.clone())?;
                tokio::time::timeout(*timeout, mailer.send(message))
                    .await
                    .map_err(|_| SendError::Timeout(*timeout))??;
                Ok(())
            }
        }
    }

    fn count(&self, kind: Kind, sent: bool) {
        self.inner
            .counts
            .get_or_create(&NotificationLabels {
                event: kind.as_str().to_string(),
                transport: self.inner.transport.name().to_string(),
                outcome: if sent { "sent" } else { "failed" }.to_string(),
            })
            .inc();
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::Mutex;

    use super::*;
    use crate::airlock::state::Direction;
    use crate::identity::{Credential, PlatformRole, Principal};

    const CONFIG: &str = "
public_url: https://tre.example.org
oidc:
  issuer: https://id.example.org
  client_id: trellis
  client_secret: s3cret
";

    fn notice(kind: Kind) -> Notice {
        Notice {
            kind,
            project: "heart".into(),
            id: "req-1".into(),
            title: "Regional counts".into(),
            direction: Direction::Egress,
            author: "alice".into(),
            round: 1,
            members: ["alice".to_string()].into(),
            members_may_review: false,
        }
    }

    async fn known(people: &People, subject: &str, email: Option<&str>) {
        people
            .touch(&Principal {
                subject: subject.into(),
                name: None,
                email: email.map(String::from),
                roles: [PlatformRole::OutputChecker].into(),
                credential: Credential::Bearer,
            })
            .await;
    }

    fn counted(
        counts: &Family<NotificationLabels, Counter>,
        transport: &str,
        outcome: &str,
    ) -> u64 {
        counts
            .get_or_create(&NotificationLabels {
                event: "submitted".into(),
                transport: transport.into(),
                outcome: outcome.into(),
            })
            .get()
    }

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn without_smtp_notifications_are_logged() {
        let config = Config::from_yaml(CONFIG).unwrap();
        let people = People::new(people::test_store().await);
        known(&people, "carol", Some("carol@tre.example.org")).await;
        known(&people, "erin", None).await;
        let counts = Family::default();
        let notifier = Notifier::new(&config, people, counts.clone()).unwrap();
        assert_eq!(notifier.transport(), "log");

        let logs = Captured::default();
        let writer = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .with_writer(move || writer.clone())
            .finish();
        let sent = {
            let _guard = tracing::subscriber::set_default(subscriber);
            notifier.deliver(&notice(Kind::Submitted)).await
        };
        assert_eq!(sent, 1, "carol only: erin has no address");
        assert_eq!(counted(&counts, "log", "sent"), 1);
        assert_eq!(counted(&counts, "log", "failed"), 0);
        let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
        let line = text
            .lines()
            .find(|l| l.contains("only logged"))
            .unwrap_or_else(|| panic!("no notification logged: {text}"));
        for expected in [
            "carol@tre.example.org",
            "[Trellis] Review requested: Regional counts (heart)",
            "req-1",
            "\"event\":\"submitted\"",
        ] {
            assert!(line.contains(expected), "{expected} missing from {line}");
        }
        assert!(!text.contains("Hello"), "the body is not logged: {text}");
        assert!(text.contains("no e-mail address known"), "{text}");
    }

    #[tokio::test]
    async fn an_unreachable_smtp_server_is_a_counted_failure() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap()
            .port();
        let yaml = format!(
            "{CONFIG}notifications:\n  smtp:\n    host: 127.0.0.1\n    port: {port}\n    tls: none\n    from: trellis@tre.example.org\n    timeout: 2s\n"
        );
        let config = Config::from_yaml(&yaml).unwrap();
        let people = People::new(people::test_store().await);
        known(&people, "carol", Some("carol@tre.example.org")).await;
        let counts = Family::default();
        let notifier = Notifier::new(&config, people, counts.clone()).unwrap();
        assert_eq!(notifier.transport(), "smtp");
        assert_eq!(notifier.deliver(&notice(Kind::Submitted)).await, 0);
        assert_eq!(counted(&counts, "smtp", "failed"), 1);
        assert_eq!(counted(&counts, "smtp", "sent"), 0);
    }

    #[tokio::test]
    async fn a_server_that_never_answers_is_given_up_on() {
        // The kernel completes the connection; nobody ever says a word on it.
        let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = silent.local_addr().unwrap().port();
        let yaml = format!(
            "{CONFIG}notifications:\n  smtp:\n    host: 127.0.0.1\n    port: {port}\n    tls: none\n    from: trellis@tre.example.org\n    timeout: 1s\n"
        );
        let config = Config::from_yaml(&yaml).unwrap();
        let people = People::new(people::test_store().await);
        known(&people, "carol", Some("carol@tre.example.org")).await;
        let counts = Family::default();
        let notifier = Notifier::new(&config, people, counts.clone()).unwrap();
        let started = std::time::Instant::now();
        let sent = tokio::time::timeout(
            Duration::from_secs(20),
            notifier.deliver(&notice(Kind::Submitted)),
        )
        .await
        .expect("the notifier gives up by itself");
        assert_eq!(sent, 0);
        assert!(started.elapsed() >= Duration::from_secs(1));
        assert_eq!(counted(&counts, "smtp", "failed"), 1);
        drop(silent);
    }
}
