//! Join tokens: `mk2_<secret hex>@<CA fingerprint>@<addr>,<addr>...`. The cluster
//! stores only the SHA-256 of the secret (in the log); the fingerprint (SHA-256 of the
//! cluster CA certificate) tells the joining peer whom to believe, so a peer that
//! answers at a listed address but holds no certificate from that CA is refused; the
//! addresses tell it whom to ask.

use sha2::{Digest, Sha256};

const PREFIX: &str = "mk2_";
/// Tokens of builds before TLS carried no CA fingerprint.
const OLD_PREFIX: &str = "mk1_";
/// Bytes of randomness in a token secret.
const SECRET_BYTES: usize = 24;

/// Why a join token does not parse.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("not a monk join token (expected mk2_...)")]
    NotAToken,
    #[error("an mk1_ join token names no cluster CA, so the joiner cannot verify whom it joins; issue a new one with `monk cluster token`")]
    Unpinned,
    #[error("join token CA fingerprint is malformed (64 hex digits expected)")]
    MalformedFingerprint,
    #[error("join token has no peer addresses")]
    NoAddresses,
    #[error("join token secret is malformed")]
    MalformedSecret,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinToken {
    pub secret: String,
    /// SHA-256 (hex) of the cluster CA certificate.
    pub ca_fingerprint: String,
    pub addresses: Vec<String>,
}

impl JoinToken {
    pub fn new(ca_fingerprint: String, addresses: Vec<String>) -> std::io::Result<JoinToken> {
        let mut bytes = [0u8; SECRET_BYTES];
        std::io::Read::read_exact(&mut std::fs::File::open("/dev/urandom")?, &mut bytes)?;
        Ok(JoinToken {
            secret: hex::encode(bytes),
            ca_fingerprint,
            addresses,
        })
    }

    pub fn encode(&self) -> String {
        format!(
            "{PREFIX}{}@{}@{}",
            self.secret,
            self.ca_fingerprint,
            self.addresses.join(",")
        )
    }

    pub fn parse(text: &str) -> Result<JoinToken, TokenError> {
        let text = text.trim();
        if text.starts_with(OLD_PREFIX) {
            return Err(TokenError::Unpinned);
        }
        let rest = text.strip_prefix(PREFIX).ok_or(TokenError::NotAToken)?;
        let (secret, rest) = rest.split_once('@').ok_or(TokenError::NoAddresses)?;
        let (ca_fingerprint, addresses) = rest.split_once('@').ok_or(TokenError::NoAddresses)?;
        if secret.len() != SECRET_BYTES * 2 || !secret.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(TokenError::MalformedSecret);
        }
        if ca_fingerprint.len() != 64 || !ca_fingerprint.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(TokenError::MalformedFingerprint);
        }
        let addresses: Vec<String> = addresses
            .split(',')
            .filter(|a| !a.is_empty())
            .map(str::to_string)
            .collect();
        if addresses.is_empty() {
            return Err(TokenError::NoAddresses);
        }
        Ok(JoinToken {
            secret: secret.to_string(),
            ca_fingerprint: ca_fingerprint.to_ascii_lowercase(),
            addresses,
        })
    }
}

/// What the log stores of a token secret.
pub fn secret_sha256(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_rejects() {
        let t = JoinToken::new(
            "ab".repeat(32),
            vec!["127.0.0.1:1".into(), "127.0.0.1:2".into()],
        )
        .unwrap();
        assert_eq!(JoinToken::parse(&t.encode()).unwrap(), t);
        assert_eq!(JoinToken::parse("hello"), Err(TokenError::NotAToken));
        assert_eq!(JoinToken::parse("mk1_abc@x"), Err(TokenError::Unpinned));
        let unpinned = format!("mk2_{}@{}@127.0.0.1:1", t.secret, "zz");
        assert_eq!(
            JoinToken::parse(&unpinned),
            Err(TokenError::MalformedFingerprint)
        );
        assert_ne!(secret_sha256(&t.secret), t.secret);
    }
}
