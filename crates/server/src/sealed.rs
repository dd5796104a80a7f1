//! Secrets sealed at rest: what a connector must keep to log in again after a restart (its
//! connection string, password included) is written under the data directory only
//! encrypted, with a key kept elsewhere.
//!
//! AES-256-GCM (ring), a random 96-bit nonce per sealing, the nonce stored before the
//! ciphertext. The key is the SHA-256 of a secret the operator gives (`EDDY_SECRET_KEY`),
//! or of one generated at first start into a key file outside the data directory (by
//! default `~/.config/eddy/secret.key`, mode 0600): a copy or backup of the data directory
//! then holds no usable password.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};

use crate::auth::secret::{Digest32, hex, random_hex};
use crate::error::{Error, Result};

/// Shorter secret keys are refused: they could be guessed.
pub const MIN_SECRET_KEY_LEN: usize = 32;

/// The key that seals and opens secrets at rest.
pub struct SecretKey(LessSafeKey);

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey(..)")
    }
}

impl SecretKey {
    /// The key of an operator's secret (at least [`MIN_SECRET_KEY_LEN`] characters).
    pub fn from_secret(secret: &str) -> Result<Self> {
        if secret.trim().len() < MIN_SECRET_KEY_LEN {
            return Err(Error::Registry(format!(
                "the secret key must be at least {MIN_SECRET_KEY_LEN} characters"
            )));
        }
        let digest = Digest32::of(secret.trim());
        let key = UnboundKey::new(&AES_256_GCM, &digest.0).expect("a 32-byte AES-256 key");
        Ok(SecretKey(LessSafeKey::new(key)))
    }

    /// The key in `path`, generated there (mode 0600) when the file does not exist yet;
    /// `true` with it when it was generated now. Several processes starting at once agree
    /// on one key: the file appears whole or not at all (written aside, then linked).
    pub fn stored_at(path: &Path) -> Result<(Self, bool)> {
        let failed = |e: &dyn std::fmt::Display| {
            Error::Registry(format!("secret key file {}: {e}", path.display()))
        };
        let mut generated = false;
        if !path.exists() {
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(|e| failed(&e))?;
            }
            let aside = path.with_extension(format!("tmp-{}", random_hex::<8>()));
            let written = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&aside)
                .and_then(|mut file| {
                    file.write_all(random_hex::<32>().as_bytes())?;
                    file.sync_all()
                });
            written.map_err(|e| failed(&e))?;
            match std::fs::hard_link(&aside, path) {
                Ok(()) => generated = true,
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => {
                    let _ = std::fs::remove_file(&aside);
                    return Err(failed(&e));
                }
            }
            let _ = std::fs::remove_file(&aside);
        }
        let text = std::fs::read_to_string(path).map_err(|e| failed(&e))?;
        let key = SecretKey::from_secret(&text).map_err(|e| failed(&e))?;
        Ok((key, generated))
    }

    /// `plaintext` sealed, as hex: the nonce, then the ciphertext and its tag.
    pub fn seal(&self, plaintext: &str) -> String {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .expect("the system's random source");
        let mut sealed = plaintext.as_bytes().to_vec();
        self.0
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::empty(),
                &mut sealed,
            )
            .expect("AES-GCM seals any length a string has");
        format!("{}{}", hex(&nonce), hex(&sealed))
    }

    /// What [`seal`](Self::seal) sealed; an error when it was sealed with another key or
    /// changed since.
    pub fn open(&self, sealed: &str) -> Result<String> {
        let refused = || {
            Error::Registry(
                "a sealed secret does not open with this secret key (was the key changed?)".into(),
            )
        };
        let bytes = from_hex(sealed).ok_or_else(refused)?;
        if bytes.len() < NONCE_LEN {
            return Err(refused());
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| refused())?;
        let mut ciphertext = ciphertext.to_vec();
        let plaintext = self
            .0
            .open_in_place(nonce, Aad::empty(), &mut ciphertext)
            .map_err(|_| refused())?;
        String::from_utf8(plaintext.to_vec()).map_err(|_| refused())
    }
}

fn from_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || !text.is_ascii() {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWORD: &str = "postgresql://app:p&ss+w@rd@db/shop";

    #[test]
    fn sealed_text_opens_with_its_key_only_and_shows_nothing() {
        let key = SecretKey::from_secret("an operator's secret of enough length").unwrap();
        let sealed = key.seal(PASSWORD);
        assert!(!sealed.contains("p&ss"));
        assert_ne!(sealed, key.seal(PASSWORD), "a fresh nonce each time");
        assert_eq!(key.open(&sealed).unwrap(), PASSWORD);
        let other = SecretKey::from_secret("another operator's secret, as long").unwrap();
        assert!(other.open(&sealed).unwrap_err().to_string().contains("key"));
        let mut changed = sealed.clone().into_bytes();
        let last = changed.len() - 1;
        changed[last] = if changed[last] == b'0' { b'1' } else { b'0' };
        assert!(key.open(&String::from_utf8(changed).unwrap()).is_err());
        assert!(key.open("zz").is_err() && key.open("").is_err());
        assert!(SecretKey::from_secret("short").is_err());
    }

    #[test]
    fn a_generated_key_file_is_private_and_read_back_the_same() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("eddy-sealed-{}", random_hex::<8>()));
        let path = dir.join("nested/secret.key");
        let (first, generated) = SecretKey::stored_at(&path).unwrap();
        assert!(generated);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let (second, generated) = SecretKey::stored_at(&path).unwrap();
        assert!(!generated);
        assert_eq!(second.open(&first.seal(PASSWORD)).unwrap(), PASSWORD);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
