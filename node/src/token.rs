//! Join tokens: `mk1_<secret hex>@<addr>,<addr>...`. The cluster stores only the
//! SHA-256 of the secret (in the log); the addresses tell a joining peer whom to ask.

use sha2::{Digest, Sha256};

const PREFIX: &str = "mk1_";
/// Bytes of randomness in a token secret.
const SECRET_BYTES: usize = 24;

/// Why a join token does not parse.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("not a monk join token (expected mk1_...)")]
    NotAToken,
    #[error("join token has no peer addresses")]
    NoAddresses,
    #[error("join token secret is malformed")]
    MalformedSecret,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinToken {
    pub secret: String,
    pub addresses: Vec<String>,
}

impl JoinToken {
    pub fn new(addresses: Vec<String>) -> std::io::Result<JoinToken> {
        let mut bytes = [0u8; SECRET_BYTES];
        std::io::Read::read_exact(&mut std::fs::File::open("/dev/urandom")?, &mut bytes)?;
        Ok(JoinToken {
            secret: hex::encode(bytes),
            addresses,
        })
    }

    pub fn encode(&self) -> String {
        format!("{PREFIX}{}@{}", self.secret, self.addresses.join(","))
    }

    pub fn parse(text: &str) -> Result<JoinToken, TokenError> {
        let rest = text
            .trim()
            .strip_prefix(PREFIX)
            .ok_or(TokenError::NotAToken)?;
        let (secret, addresses) = rest.split_once('@').ok_or(TokenError::NoAddresses)?;
        if secret.len() != SECRET_BYTES * 2 || !secret.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(TokenError::MalformedSecret);
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
        let t = JoinToken::new(vec!["127.0.0.1:1".into(), "127.0.0.1:2".into()]).unwrap();
        assert_eq!(JoinToken::parse(&t.encode()).unwrap(), t);
        assert!(JoinToken::parse("hello").is_err());
        assert!(JoinToken::parse("mk1_abc@x").is_err());
        assert_ne!(secret_sha256(&t.secret), t.secret);
    }
}
