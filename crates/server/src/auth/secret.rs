//! Token text: how a token is written, read back, hashed and compared.
//!
//! An environment token is `eddy_<tokenId>_<secret>`: `tokenId` is 16 hex digits (not
//! secret, it names the token for lookup and revocation), `secret` 64 hex digits (256
//! random bits). Only the SHA-256 of the secret is kept: with 256 random bits there is
//! nothing to guess, so a slow password hash would add cost and no safety.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The prefix of every token Eddy issues, so that secret scanners can recognize one.
pub const PREFIX: &str = "eddy_";

/// The SHA-256 of a secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Digest32(pub [u8; 32]);

impl Digest32 {
    /// The digest of `secret`.
    pub fn of(secret: &str) -> Self {
        Digest32(Sha256::digest(secret.as_bytes()).into())
    }

    /// Compares in constant time, so that timing tells nothing of how much matched.
    pub fn matches(&self, other: &Digest32) -> bool {
        self.0.ct_eq(&other.0).into()
    }

    /// As 64 lowercase hex digits.
    pub fn to_hex(self) -> String {
        hex(&self.0)
    }

    /// Reads 64 hex digits back.
    pub fn from_hex(text: &str) -> Option<Self> {
        let text = text.trim();
        if text.len() != 64 || !text.is_ascii() {
            return None;
        }
        let mut bytes = [0u8; 32];
        for (i, byte) in bytes.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
        }
        Some(Digest32(bytes))
    }
}

/// `n` random bytes as hex, from the thread's cryptographically secure generator.
pub fn random_hex<const N: usize>() -> String {
    hex(&rand::random::<[u8; N]>())
}

/// Bytes as lowercase hex digits.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// An environment token's two parts.
#[derive(Debug, PartialEq, Eq)]
pub struct Parts<'a> {
    pub id: &'a str,
    pub secret: &'a str,
}

/// A new token: its id and its full text.
pub fn generate() -> (String, String) {
    let id = random_hex::<8>();
    let text = format!("{PREFIX}{id}_{}", random_hex::<32>());
    (id, text)
}

/// Splits `eddy_<tokenId>_<secret>`; `None` for anything else.
pub fn parse(token: &str) -> Option<Parts<'_>> {
    let (id, secret) = token.strip_prefix(PREFIX)?.split_once('_')?;
    let hex_of = |s: &str, len: usize| s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit());
    (hex_of(id, 16) && hex_of(secret, 64)).then_some(Parts { id, secret })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_token_parses_back_and_only_its_secret_matches() {
        let (id, text) = generate();
        let parts = parse(&text).unwrap();
        assert_eq!(parts.id, id);
        let digest = Digest32::of(parts.secret);
        assert_eq!(Digest32::from_hex(&digest.to_hex()), Some(digest));
        assert!(digest.matches(&Digest32::of(parts.secret)));
        let mut other = parts.secret.to_string();
        let last = other.pop().unwrap();
        other.push(if last == '0' { '1' } else { '0' });
        assert!(!digest.matches(&Digest32::of(&other)));
        for bad in [
            "",
            "eddy_",
            "eddy_abc_def",
            &text[..text.len() - 1],
            &text.replace("eddy_", "edd_"),
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }
}
