//! Environment tokens: issued, listed, revoked, checked; kept on disk as hashes only.
//!
//! `<data-dir>/tokens.json` (mode 0600) holds, per token, its id, environment, times and the
//! SHA-256 of its secret; the secret itself is shown once, in the answer that issues it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use super::secret::{self, Digest32};
use crate::durable::{self, Readable};
use crate::error::{AuthFailure, Error, Result};

/// A token as kept: everything but its secret.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Stored {
    id: String,
    environment_id: String,
    secret_sha256: String,
    created_at_ms: u64,
    expires_at_ms: Option<u64>,
}

/// What the API shows of a token after its issue: never its secret.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TokenInfo {
    pub token_id: String,
    pub environment_id: String,
    pub created_at_ms: u64,
    pub expires_at_ms: Option<u64>,
}

/// A token just issued: its text, shown this once.
#[derive(Debug, Clone)]
pub struct Issued {
    pub info: TokenInfo,
    pub token: String,
}

/// Every environment token, by id.
pub struct TokenStore {
    /// `None`: in memory only.
    path: Option<PathBuf>,
    tokens: Mutex<BTreeMap<String, Stored>>,
}

impl TokenStore {
    /// Tokens kept in `<data_dir>/tokens.json`, read now if the file exists.
    pub fn stored_in(data_dir: &Path) -> Result<Self> {
        let path = data_dir.join("tokens.json");
        let failed =
            |e: &dyn std::fmt::Display| Error::Registry(format!("{}: {e}", path.display()));
        let tokens: Vec<Stored> = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| failed(&e))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(failed(&e)),
        };
        Ok(TokenStore {
            path: Some(path),
            tokens: Mutex::new(tokens.into_iter().map(|t| (t.id.clone(), t)).collect()),
        })
    }

    /// Tokens that last as long as the process.
    pub fn in_memory() -> Self {
        TokenStore {
            path: None,
            tokens: Mutex::new(BTreeMap::new()),
        }
    }

    /// A new token for `environment`, valid for `ttl` (forever without one).
    pub fn issue(&self, environment: &str, ttl: Option<Duration>) -> Result<Issued> {
        let mut tokens = self.tokens.lock();
        self.issue_locked(&mut tokens, environment, ttl)
    }

    /// A new token for `environment` if it has no valid one yet, checked and issued in one
    /// step so that two racing requests cannot both issue one.
    pub fn issue_first(&self, environment: &str) -> Result<Option<Issued>> {
        let mut tokens = self.tokens.lock();
        let now = now_ms();
        if tokens
            .values()
            .any(|t| t.environment_id == environment && !expired(t, now))
        {
            return Ok(None);
        }
        self.issue_locked(&mut tokens, environment, None).map(Some)
    }

    fn issue_locked(
        &self,
        tokens: &mut BTreeMap<String, Stored>,
        environment: &str,
        ttl: Option<Duration>,
    ) -> Result<Issued> {
        let (id, text) = secret::generate();
        let parts = secret::parse(&text).expect("a generated token parses");
        let created_at_ms = now_ms();
        let stored = Stored {
            id: id.clone(),
            environment_id: environment.to_string(),
            secret_sha256: Digest32::of(parts.secret).to_hex(),
            created_at_ms,
            expires_at_ms: ttl.map(|ttl| created_at_ms.saturating_add(ttl.as_millis() as u64)),
        };
        let info = info(&stored);
        tokens.insert(id.clone(), stored);
        if let Err(e) = self.save(tokens) {
            tokens.remove(&id);
            return Err(e);
        }
        Ok(Issued { info, token: text })
    }

    /// Revokes one of `environment`'s tokens; `false` when it has no such token.
    pub fn revoke(&self, environment: &str, id: &str) -> Result<bool> {
        let mut tokens = self.tokens.lock();
        if tokens
            .get(id)
            .is_none_or(|t| t.environment_id != environment)
        {
            return Ok(false);
        }
        let removed = tokens.remove(id).expect("checked above");
        if let Err(e) = self.save(&tokens) {
            tokens.insert(id.to_string(), removed);
            return Err(e);
        }
        Ok(true)
    }

    /// The environment's tokens, expired ones included (they can be revoked).
    pub fn list(&self, environment: &str) -> Vec<TokenInfo> {
        self.tokens
            .lock()
            .values()
            .filter(|t| t.environment_id == environment)
            .map(info)
            .collect()
    }

    /// The environment a token speaks for, or why it speaks for none.
    pub fn verify(&self, token: &str) -> Result<String, AuthFailure> {
        let parts = secret::parse(token).ok_or(AuthFailure::Invalid)?;
        let tokens = self.tokens.lock();
        let stored = tokens.get(parts.id).ok_or(AuthFailure::Invalid)?;
        let kept = Digest32::from_hex(&stored.secret_sha256).ok_or(AuthFailure::Invalid)?;
        if !kept.matches(&Digest32::of(parts.secret)) {
            return Err(AuthFailure::Invalid);
        }
        if expired(stored, now_ms()) {
            return Err(AuthFailure::Expired);
        }
        Ok(stored.environment_id.clone())
    }

    fn save(&self, tokens: &BTreeMap<String, Stored>) -> Result<()> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let all: Vec<&Stored> = tokens.values().collect();
        let bytes = serde_json::to_vec_pretty(&all).expect("tokens are plain data");
        durable::write(path, &bytes, Readable::OwnerOnly)
            .map_err(|e| Error::Registry(format!("{}: {e}", path.display())))
    }
}

fn info(stored: &Stored) -> TokenInfo {
    TokenInfo {
        token_id: stored.id.clone(),
        environment_id: stored.environment_id.clone(),
        created_at_ms: stored.created_at_ms,
        expires_at_ms: stored.expires_at_ms,
    }
}

fn expired(stored: &Stored, now_ms: u64) -> bool {
    stored.expires_at_ms.is_some_and(|at| at <= now_ms)
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_survive_a_restart_as_hashes_and_revoked_or_expired_ones_fail() {
        let dir = std::env::temp_dir().join(format!("eddy-tokens-{:x}", rand::random::<u64>()));
        std::fs::create_dir_all(&dir).unwrap();
        let store = TokenStore::stored_in(&dir).unwrap();
        let shop = store.issue("shop", None).unwrap();
        assert!(store.issue_first("shop").unwrap().is_none());
        let short = store.issue("shop", Some(Duration::from_millis(1))).unwrap();
        std::thread::sleep(Duration::from_millis(5));

        let reopened = TokenStore::stored_in(&dir).unwrap();
        assert_eq!(reopened.verify(&shop.token), Ok("shop".to_string()));
        assert_eq!(reopened.verify(&short.token), Err(AuthFailure::Expired));
        let file = std::fs::read_to_string(dir.join("tokens.json")).unwrap();
        assert!(
            !file.contains(&shop.token[shop.token.len() - 64..]),
            "{file}"
        );
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.join("tokens.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);

        assert!(!reopened.revoke("other", &shop.info.token_id).unwrap());
        assert!(reopened.revoke("shop", &shop.info.token_id).unwrap());
        assert_eq!(reopened.verify(&shop.token), Err(AuthFailure::Invalid));
        assert_eq!(reopened.list("shop"), vec![short.info.clone()]);
        let (_, forged) = secret::generate();
        let wrong_secret = format!(
            "{}{}_{}",
            secret::PREFIX,
            short.info.token_id,
            "0".repeat(64)
        );
        for token in [forged, wrong_secret] {
            assert_eq!(reopened.verify(&token), Err(AuthFailure::Invalid));
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
