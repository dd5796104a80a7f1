//! Who is calling: the admin, or an environment's token; and what each may touch.
//!
//! The admin credential may do everything, and is the one that gets an environment its
//! first token (createConnector, or createJob for an environment without one). An
//! environment token may touch only its environment's jobs, connector and tokens. With
//! authentication off (`--auth none`, for local use) every caller is the admin.

mod admin;
pub(crate) mod secret;
mod store;

use std::time::Duration;

pub use admin::{Admin, MIN_ADMIN_TOKEN_LEN};
pub use store::{Issued, TokenInfo, TokenStore};

use crate::error::{AuthFailure, Error, Result};

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    Admin,
    /// The holder of a token of this environment.
    Environment(String),
}

impl Caller {
    /// Refuses (403) a caller that may not act for `environment`.
    pub fn may_act_for(&self, environment: &str) -> Result<()> {
        match self {
            Caller::Environment(own) if own != environment => Err(Error::Forbidden(format!(
                "this token is for environment `{own}`, not `{environment}`"
            ))),
            _ => Ok(()),
        }
    }

    /// Whether the caller may see what belongs to `environment`.
    pub fn sees(&self, environment: &str) -> bool {
        self.may_act_for(environment).is_ok()
    }

    pub fn is_admin(&self) -> bool {
        *self == Caller::Admin
    }
}

/// How callers are authenticated.
pub struct Auth {
    /// `None`: authentication is off.
    tokens: Option<(Admin, TokenStore)>,
}

impl Auth {
    /// Every caller is the admin (`--auth none`).
    pub fn off() -> Self {
        Auth { tokens: None }
    }

    /// Bearer tokens: the admin credential and the environments' tokens.
    pub fn with_tokens(admin: Admin, store: TokenStore) -> Self {
        Auth {
            tokens: Some((admin, store)),
        }
    }

    /// The caller an `Authorization` header value stands for.
    pub fn authenticate(&self, authorization: Option<&str>) -> Result<Caller> {
        let Some((admin, store)) = &self.tokens else {
            return Ok(Caller::Admin);
        };
        let token = authorization
            .and_then(|value| value.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim())
            .filter(|token| !token.is_empty())
            .ok_or(Error::Unauthenticated(AuthFailure::Missing))?;
        if admin.is(token) {
            return Ok(Caller::Admin);
        }
        store
            .verify(token)
            .map(Caller::Environment)
            .map_err(Error::Unauthenticated)
    }

    /// The environments' tokens; refused when authentication is off.
    pub fn store(&self) -> Result<&TokenStore> {
        self.tokens.as_ref().map(|(_, store)| store).ok_or_else(|| {
            Error::invalid(
                "token",
                "tokens are not used: this server runs with --auth none",
            )
        })
    }

    /// A new token for `environment` when the admin asks (createConnector); none when
    /// authentication is off or the caller is the environment itself.
    pub fn issue_for(&self, caller: &Caller, environment: &str) -> Result<Option<Issued>> {
        match &self.tokens {
            Some((_, store)) if caller.is_admin() => store.issue(environment, None).map(Some),
            _ => Ok(None),
        }
    }

    /// A token for `environment` when the admin asks and it has none yet (createJob).
    pub fn issue_first_for(&self, caller: &Caller, environment: &str) -> Result<Option<Issued>> {
        match &self.tokens {
            Some((_, store)) if caller.is_admin() => store.issue_first(environment),
            _ => Ok(None),
        }
    }

    /// A new token for `environment`, valid for `ttl` (rotation: issue, switch, revoke).
    pub fn issue(&self, environment: &str, ttl: Option<Duration>) -> Result<Issued> {
        self.store()?.issue(environment, ttl)
    }
}
