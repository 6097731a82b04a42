//! Runs a real SMTP server, aiosmtpd from PyPI (installed by tests/smtp/setup-aiosmtpd.sh into
//! the virtual environment named by `TRELLIS_E2E_AIOSMTPD`), on a loopback port. It stores every
//! message it accepts in a Maildir, which the tests read.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::{free_port, repo_root, state_dir, unique_name};

/// The aiosmtpd virtual environment (tests/run-e2e.sh sets it).
pub const VENV: &str = "TRELLIS_E2E_AIOSMTPD";

/// A message as delivered.
#[derive(Clone, Debug)]
pub struct Delivered {
    /// The envelope's recipients (what the server was told, not the headers).
    pub recipients: Vec<String>,
    pub from: String,
    pub subject: String,
    pub body: String,
}

pub struct Smtp {
    pub port: u16,
    /// A PEM certificate the server presents for STARTTLS (for `ca_file`), when started so.
    pub certificate: Option<PathBuf>,
    maildir: PathBuf,
    log: PathBuf,
    child: Child,
}

/// The virtual environment's Python: from `TRELLIS_E2E_AIOSMTPD`, or installed now.
fn python() -> PathBuf {
    let venv = match std::env::var(VENV) {
        Ok(venv) if !venv.is_empty() => PathBuf::from(venv),
        _ => {
            let output = Command::new(repo_root().join("tests/smtp/setup-aiosmtpd.sh"))
                .stderr(Stdio::inherit())
                .output()
                .expect("running tests/smtp/setup-aiosmtpd.sh");
            assert!(
                output.status.success(),
                "tests/smtp/setup-aiosmtpd.sh failed"
            );
            PathBuf::from(String::from_utf8_lossy(&output.stdout).trim())
        }
    };
    let python = venv.join("bin/python");
    assert!(
        python.exists(),
        "{} is missing: run tests/smtp/setup-aiosmtpd.sh and export {VENV}",
        python.display()
    );
    python
}

impl Smtp {
    /// A plain SMTP server (no TLS).
    pub fn start() -> Self {
        Self::spawn(false)
    }

    /// A server that offers and requires STARTTLS, with a fresh certificate for 127.0.0.1 from a
    /// fresh CA (made with openssl; `certificate` is the CA's).
    pub fn start_tls() -> Self {
        Self::spawn(true)
    }

    fn spawn(tls: bool) -> Self {
        let dir = state_dir(&unique_name("smtp"));
        let maildir = dir.join("maildir");
        let port = free_port();
        let mut command = Command::new(python());
        command.args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}")]);
        let certificate = tls.then(|| {
            let (ca, cert, key) = certificates(&dir);
            command.arg("--tlscert").arg(cert).arg("--tlskey").arg(key);
            ca
        });
        let log = dir.join("aiosmtpd.log");
        let file = std::fs::File::create(&log).expect("a log file");
        let child = command
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(&maildir)
            .stdout(Stdio::from(file.try_clone().expect("a log handle")))
            .stderr(Stdio::from(file))
            .spawn()
            .expect("starting aiosmtpd");
        let smtp = Self {
            port,
            certificate,
            maildir,
            log,
            child,
        };
        for _ in 0..200 {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return smtp;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "aiosmtpd did not listen on 127.0.0.1:{port}; see {}",
            smtp.log.display()
        );
    }

    /// Every message delivered so far.
    pub fn messages(&self) -> Vec<Delivered> {
        let Ok(entries) = std::fs::read_dir(self.maildir.join("new")) else {
            return Vec::new();
        };
        let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        paths.sort();
        paths.iter().map(|p| parse(p)).collect()
    }

    /// Waits until `done` holds for the messages delivered, or panics after `timeout` with them.
    pub async fn wait_for(
        &self,
        timeout: Duration,
        what: &str,
        done: impl Fn(&[Delivered]) -> bool,
    ) -> Vec<Delivered> {
        let start = std::time::Instant::now();
        loop {
            let messages = self.messages();
            if done(&messages) {
                return messages;
            }
            if start.elapsed() > timeout {
                panic!(
                    "timed out after {timeout:?} waiting for {what}; delivered: {messages:#?} (log: {})",
                    self.log.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Makes a CA and a certificate it signs for 127.0.0.1 in `dir` with openssl (a client refuses
/// a CA's certificate presented as the server's own): (CA, certificate, key) PEM files.
fn certificates(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let openssl = |args: &[&str]| {
        let made = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("running openssl");
        assert!(made.success(), "openssl {args:?} failed");
    };
    let key = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    let ca = ["req", "-x509", "-days", "1", "-subj", "/CN=Trellis test CA"];
    openssl(&[&ca[..], &key, &["-keyout", "ca.key", "-out", "ca.pem"]].concat());
    let request = ["req", "-subj", "/CN=127.0.0.1"];
    openssl(
        &[
            &request[..],
            &key,
            &["-keyout", "key.pem", "-out", "server.csr"],
        ]
        .concat(),
    );
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .expect("the extensions file");
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "1",
        "-extfile",
        "server.ext",
        "-out",
        "cert.pem",
    ]);
    (
        dir.join("ca.pem"),
        dir.join("cert.pem"),
        dir.join("key.pem"),
    )
}

/// Reads a stored message: its headers (unfolded) and body. aiosmtpd adds `X-RcptTo` with the
/// envelope's recipients.
fn parse(path: &Path) -> Delivered {
    let text = std::fs::read_to_string(path).expect("a stored message");
    let text = text.replace("\r\n", "\n");
    let (head, body) = text.split_once("\n\n").unwrap_or((&text, ""));
    let unfolded = head.replace("\n ", " ").replace("\n\t", " ");
    let header = |name: &str| {
        unfolded
            .lines()
            .find_map(|line| {
                let (key, value) = line.split_once(':')?;
                key.eq_ignore_ascii_case(name)
                    .then(|| value.trim().to_string())
            })
            .unwrap_or_default()
    };
    Delivered {
        recipients: header("X-RcptTo")
            .split(',')
            .map(|r| r.trim().to_string())
            .filter(|r| !r.is_empty())
            .collect(),
        from: header("From"),
        subject: header("Subject"),
        body: if header("Content-Transfer-Encoding").eq_ignore_ascii_case("quoted-printable") {
            quoted_printable(body)
        } else {
            body.to_string()
        },
    }
}

/// Decodes a quoted-printable body (RFC 2045): `=` at a line's end joins it to the next,
/// `=XX` is the byte XX.
fn quoted_printable(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'=' if bytes.get(i + 1) == Some(&b'\n') => i += 2,
            b'=' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(byte) => out.push(byte),
                    None => out.extend_from_slice(&bytes[i..i + 3]),
                }
                i += 3;
            }
            byte => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
