//! Malware scanning with a ClamAV daemon (clamd), over its INSTREAM protocol: files are streamed
//! from the object store to clamd, never held whole.

use bytes::Bytes;
use clamav_client::tokio::{Tcp, scan_stream};
use futures::Stream;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Clean,
    /// The signature clamd matched.
    Infected(String),
}

#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("the malware scanner at {address} is unreachable: {source}")]
    Unreachable {
        address: String,
        source: std::io::Error,
    },
    #[error("the malware scanner answered `{0}`")]
    Failed(String),
}

/// Reads clamd's answer to one INSTREAM scan.
pub fn verdict(answer: &str) -> Result<Verdict, ScanError> {
    let answer = answer.trim_end_matches(['\0', '\n']).trim();
    let result = answer
        .strip_prefix("stream:")
        .map(str::trim)
        .unwrap_or(answer);
    if result == "OK" {
        Ok(Verdict::Clean)
    } else if let Some(signature) = result.strip_suffix(" FOUND") {
        Ok(Verdict::Infected(signature.trim().to_string()))
    } else {
        Err(ScanError::Failed(answer.to_string()))
    }
}

#[derive(Clone, Debug)]
pub struct Scanner {
    address: String,
}

impl Scanner {
    pub fn new(address: String) -> Self {
        Self { address }
    }

    pub async fn scan(
        &self,
        bytes: impl Stream<Item = Result<Bytes, std::io::Error>>,
    ) -> Result<Verdict, ScanError> {
        let answer = scan_stream(
            bytes,
            Tcp {
                host_address: self.address.as_str(),
            },
            None,
        )
        .await
        .map_err(|source| ScanError::Unreachable {
            address: self.address.clone(),
            source,
        })?;
        verdict(&String::from_utf8_lossy(&answer))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clamd_answers_are_read() {
        assert_eq!(verdict("stream: OK\0").unwrap(), Verdict::Clean);
        assert_eq!(
            verdict("stream: Trellis.Test.EICAR.UNOFFICIAL FOUND\0").unwrap(),
            Verdict::Infected("Trellis.Test.EICAR.UNOFFICIAL".into())
        );
        assert!(matches!(
            verdict("INSTREAM size limit exceeded. ERROR\0"),
            Err(ScanError::Failed(_))
        ));
        assert!(matches!(verdict(""), Err(ScanError::Failed(_))));
    }
}
