//! The admin credential: given (config file or `EDDY_ADMIN_TOKEN`), or generated at first
//! start and kept only as its SHA-256 in `<data-dir>/admin-token.sha256` (mode 0600).

use std::path::Path;

use super::secret::{self, Digest32};
use crate::durable::{self, Readable};
use crate::error::{Error, Result};

/// Shorter admin tokens are refused: they could be guessed.
pub const MIN_ADMIN_TOKEN_LEN: usize = 20;

/// The admin credential, as its digest.
#[derive(Debug, Clone, Copy)]
pub struct Admin(Digest32);

impl Admin {
    /// An admin credential given by the operator.
    pub fn given(token: &str) -> Result<Self> {
        if token.trim().len() < MIN_ADMIN_TOKEN_LEN {
            return Err(Error::invalid(
                "admin-token",
                format!("must be at least {MIN_ADMIN_TOKEN_LEN} characters"),
            ));
        }
        Ok(Admin(Digest32::of(token.trim())))
    }

    /// The credential generated at first start in `data_dir`, and its text when it was
    /// generated now (to be shown once; it cannot be shown again).
    pub fn stored_in(data_dir: &Path) -> Result<(Self, Option<String>)> {
        let path = data_dir.join("admin-token.sha256");
        let failed =
            |e: &dyn std::fmt::Display| Error::Registry(format!("{}: {e}", path.display()));
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let digest = Digest32::from_hex(&text).ok_or_else(|| {
                    failed(&"not a SHA-256 in hex (delete it to generate a new admin token)")
                })?;
                Ok((Admin(digest), None))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let token = format!("{}admin_{}", secret::PREFIX, secret::random_hex::<32>());
                let digest = Digest32::of(&token);
                std::fs::create_dir_all(data_dir).map_err(|e| failed(&e))?;
                durable::write(&path, digest.to_hex().as_bytes(), Readable::OwnerOnly)
                    .map_err(|e| failed(&e))?;
                Ok((Admin(digest), Some(token)))
            }
            Err(e) => Err(failed(&e)),
        }
    }

    /// Whether `token` is the admin credential (compared in constant time).
    pub fn is(&self, token: &str) -> bool {
        self.0.matches(&Digest32::of(token))
    }
}
