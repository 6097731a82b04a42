//! Runs a real ClamAV daemon (Debian's clamav-daemon) on a loopback port with a signature
//! database of our own: the EICAR test file's hash (no network to fetch ClamAV's databases here).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::{free_port, state_dir, unique_name};

/// The standard antivirus test file (EICAR): harmless, detected by every scanner.
pub const EICAR: &[u8] = br"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";

pub struct Clamd {
    pub address: String,
    child: Child,
}

impl Clamd {
    pub fn start() -> Self {
        let binary = "/usr/sbin/clamd";
        assert!(
            std::path::Path::new(binary).exists(),
            "{binary} is missing: install Debian's clamav-daemon (.ci/run does)"
        );
        let dir = state_dir(&unique_name("clamd"));
        let db = dir.join("db");
        std::fs::create_dir_all(&db).expect("the signature directory");
        // MD5:size:name — ClamAV's hash signature format.
        std::fs::write(
            db.join("trellis.hdb"),
            "44d88612fea8a8f36de82e1278abb02f:68:Trellis.Test.EICAR\n",
        )
        .expect("the signature database");
        let port = free_port();
        let config = dir.join("clamd.conf");
        std::fs::write(
            &config,
            format!(
                "Foreground yes\nTCPSocket {port}\nTCPAddr 127.0.0.1\nDatabaseDirectory {}\nLogFile {}\n",
                db.display(),
                dir.join("clamd.log").display()
            ),
        )
        .expect("clamd.conf");
        let child = Command::new(binary)
            .arg(format!("--config-file={}", config.display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting clamd");
        let clamd = Self {
            address: format!("127.0.0.1:{port}"),
            child,
        };
        for _ in 0..200 {
            if clamd.ping() {
                return clamd;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "clamd did not answer PING at {}; see {}",
            clamd.address,
            dir.display()
        );
    }

    fn ping(&self) -> bool {
        let Ok(mut stream) = TcpStream::connect(&self.address) else {
            return false;
        };
        let mut answer = String::new();
        stream.write_all(b"zPING\0").is_ok()
            && stream.read_to_string(&mut answer).is_ok()
            && answer.starts_with("PONG")
    }
}

impl Drop for Clamd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
