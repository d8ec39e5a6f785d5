//! Bearer tokens and scopes. A token is `lnl_` + 40 hex characters of randomness; only its
//! SHA-256 is stored. Scopes (DESIGN.md): `admin`, `bureau:<region-code>`, `station:<id>`,
//! `volunteer:<id>`.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use chrono::{DateTime, Utc};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::registry::{RegionCode, RegionLevel, Station};
use crate::service::Guard;
use crate::store::{Store, StoreError};

/// What a token may reach.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Scope {
    Admin,
    /// A county (or city) and everything below it.
    Bureau(String),
    /// The communities a station serves, and its volunteers.
    Station(u64),
    /// A volunteer's own record and tasks.
    Volunteer(u64),
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Scope::Admin => f.write_str("admin"),
            Scope::Bureau(c) => write!(f, "bureau:{c}"),
            Scope::Station(id) => write!(f, "station:{id}"),
            Scope::Volunteer(id) => write!(f, "volunteer:{id}"),
        }
    }
}

impl std::str::FromStr for Scope {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let usage = "a scope is admin, bureau:<region-code>, station:<id> or volunteer:<id>";
        match s.trim().split_once(':') {
            None if s.trim() == "admin" => Ok(Scope::Admin),
            Some(("bureau", code)) => match RegionCode::parse(code) {
                Ok(c) if matches!(c.level, RegionLevel::City | RegionLevel::County) => {
                    Ok(Scope::Bureau(code.to_owned()))
                }
                _ => Err(format!(
                    "bureau:{code}: a bureau scope names a 12-digit city or county code, e.g. bureau:620802000000"
                )),
            },
            Some(("station", id)) => id
                .parse()
                .map(Scope::Station)
                .map_err(|_| format!("station:{id}: the station id must be a number")),
            Some(("volunteer", id)) => id
                .parse()
                .map(Scope::Volunteer)
                .map_err(|_| format!("volunteer:{id}: the volunteer id must be a number")),
            _ => Err(format!("{s:?}: {usage}")),
        }
    }
}

/// A stored token (the token itself is never stored).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TokenRecord {
    pub scope: String,
    #[serde(default)]
    pub label: Option<String>,
    pub created_at: DateTime<Utc>,
    /// Set when the token was revoked; it no longer authenticates.
    #[serde(default)]
    pub revoked_at: Option<DateTime<Utc>>,
}

/// A token as listed: its id (the first 12 hex digits of its hash), never the token itself.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TokenInfo {
    pub id: String,
    pub scope: String,
    pub label: Option<String>,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// Lists every token (newest first).
pub fn list_tokens(store: &Store) -> Result<Vec<TokenInfo>, StoreError> {
    let mut out: Vec<TokenInfo> = store
        .read(|r| r.all_tokens::<TokenRecord>())?
        .into_iter()
        .map(|(h, r)| TokenInfo {
            id: h.chars().take(12).collect(),
            scope: r.scope,
            label: r.label,
            created_at: r.created_at,
            revoked_at: r.revoked_at,
        })
        .collect();
    out.sort_by_key(|t| std::cmp::Reverse(t.created_at));
    Ok(out)
}

/// Revokes the token whose id (hash prefix, at least 8 hex digits) is `id`.
/// Revokes a token by its id. With `keep_last_admin` (the API), the last unrevoked admin token
/// is refused; the CLI on the server may revoke it.
pub fn revoke_token(
    store: &Store,
    id: &str,
    now: DateTime<Utc>,
    keep_last_admin: bool,
) -> Result<TokenInfo, TokenError> {
    if id.len() < 8 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(TokenError::Scope(
            "a token id is at least 8 hex digits, as `token list` shows it".into(),
        ));
    }
    store.write(|w| {
        let matches: Vec<(String, TokenRecord)> = w
            .all_tokens::<TokenRecord>()?
            .into_iter()
            .filter(|(h, _)| h.starts_with(&id.to_ascii_lowercase()))
            .collect();
        let (hash, mut record) = match matches.len() {
            1 => matches
                .into_iter()
                .next()
                .ok_or_else(|| TokenError::Scope(format!("no token {id}")))?,
            0 => return Err(TokenError::Scope(format!("no token has id {id}"))),
            n => {
                return Err(TokenError::Scope(format!(
                    "{n} tokens start with {id}: give more digits"
                )));
            }
        };
        if keep_last_admin && record.revoked_at.is_none() && record.scope == "admin" {
            let admins = w
                .all_tokens::<TokenRecord>()?
                .into_iter()
                .filter(|(_, r)| r.revoked_at.is_none() && r.scope == "admin")
                .count();
            if admins <= 1 {
                return Err(TokenError::LastAdmin);
            }
        }
        record.revoked_at.get_or_insert(now);
        w.put_token(&hash, &record)?;
        Ok(TokenInfo {
            id: hash.chars().take(12).collect(),
            scope: record.scope,
            label: record.label,
            created_at: record.created_at,
            revoked_at: record.revoked_at,
        })
    })
}

pub fn hash(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("{0}")]
    Scope(String),
    #[error("label: {0}")]
    Label(String),
    #[error(
        "this is the last admin token: revoking it would leave nobody able to administer linli. \
         Create another admin token first (or revoke it on the server with `linlid token revoke`)"
    )]
    LastAdmin,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Creates a token for `scope` after checking that what it names exists; returns the token,
/// which is shown once and cannot be recovered.
pub fn create_token(
    store: &Store,
    scope: &Scope,
    label: Option<String>,
    now: DateTime<Utc>,
) -> Result<String, TokenError> {
    if let Some(l) = &label {
        if l.chars().count() > 200 {
            return Err(TokenError::Label("at most 200 characters".into()));
        }
        if l.chars().any(char::is_control) {
            return Err(TokenError::Label(
                "must be one line of text, without control characters".into(),
            ));
        }
    }
    let mut bytes = [0u8; 20];
    rand::rng().fill_bytes(&mut bytes);
    let token = format!(
        "lnl_{}",
        bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
    );
    store.write(|w| {
        let missing = match scope {
            Scope::Admin => None,
            Scope::Bureau(code) => w
                .region(code)?
                .is_none()
                .then(|| format!("region {code} is not registered: create it first")),
            Scope::Station(id) => w
                .station(*id)?
                .is_none()
                .then(|| format!("station {id} is not registered")),
            Scope::Volunteer(id) => w
                .volunteer(*id)?
                .is_none()
                .then(|| format!("volunteer {id} is not registered")),
        };
        if let Some(m) = missing {
            return Err(TokenError::Scope(m));
        }
        w.put_token(
            &hash(&token),
            &TokenRecord {
                scope: scope.to_string(),
                label,
                created_at: now,
                revoked_at: None,
            },
        )?;
        Ok(())
    })?;
    Ok(token)
}

/// How long a looked-up token is trusted before the store is asked again (a revocation made
/// by another process, such as `linlid token revoke`, takes effect within this time).
const CACHE_FOR: std::time::Duration = std::time::Duration::from_secs(30);

/// Token look-ups, cached for `CACHE_FOR`.
#[derive(Clone, Default)]
pub struct Tokens {
    cache: Arc<RwLock<HashMap<String, (Scope, std::time::Instant)>>>,
}

impl Tokens {
    /// The scope of a token looked up within `CACHE_FOR`, without touching the store.
    pub fn cached(&self, token: &str) -> Option<Scope> {
        let h = hash(token);
        self.cache
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&h)
            .filter(|(_, at)| at.elapsed() < CACHE_FOR)
            .map(|(s, _)| s.clone())
    }

    pub fn scope_of(&self, store: &Store, token: &str) -> Result<Option<Scope>, StoreError> {
        if let Some(scope) = self.cached(token) {
            return Ok(Some(scope));
        }
        let h = hash(token);
        let record: Option<TokenRecord> = store.read(|r| r.token(&h))?;
        let Some(scope) = record
            .filter(|r| r.revoked_at.is_none())
            .and_then(|r| r.scope.parse::<Scope>().ok())
        else {
            self.cache
                .write()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&h);
            return Ok(None);
        };
        self.cache
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(h, (scope.clone(), std::time::Instant::now()));
        Ok(Some(scope))
    }

    /// Forgets every cached look-up (after a revocation in this process).
    pub fn forget(&self) {
        self.cache
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }
}

/// An authenticated caller, with what its scope resolves to.
#[derive(Debug, Clone)]
pub struct Caller {
    pub scope: Scope,
    /// The token's id (the first 12 hex digits of its hash), as the audit log names it.
    pub token: String,
    /// For a station scope, the station (read at the start of the request).
    pub station: Option<Station>,
}

impl Caller {
    /// Who the audit log says acted.
    pub fn who(&self) -> crate::records::audit::Who {
        crate::records::audit::Who {
            token: self.token.clone(),
            scope: self.scope.to_string(),
        }
    }

    pub fn is_admin(&self) -> bool {
        self.scope == Scope::Admin
    }

    pub fn is_volunteer(&self) -> bool {
        matches!(self.scope, Scope::Volunteer(_))
    }

    /// Prefix of the bureau's subtree.
    fn bureau_prefix(&self) -> Option<&str> {
        match &self.scope {
            Scope::Bureau(code) => crate::registry::region::subtree_prefix(code),
            _ => None,
        }
    }

    /// May the caller read this region?
    pub fn can_read_region(&self, code: &str) -> bool {
        match &self.scope {
            Scope::Admin => true,
            Scope::Bureau(_) => self.bureau_prefix().is_some_and(|p| code.starts_with(p)),
            Scope::Station(_) => self
                .station
                .as_ref()
                .is_some_and(|s| code.starts_with(s.township.get(..9).unwrap_or("-"))),
            Scope::Volunteer(_) => false,
        }
    }

    /// The region prefixes the caller's person reads are limited to (`None`: no limit).
    pub fn person_prefixes(&self) -> Option<Vec<String>> {
        match &self.scope {
            Scope::Admin => None,
            Scope::Bureau(_) => Some(
                self.bureau_prefix()
                    .map(str::to_owned)
                    .into_iter()
                    .collect(),
            ),
            Scope::Station(_) => Some(
                self.station
                    .as_ref()
                    .map(|s| s.communities.clone())
                    .unwrap_or_default(),
            ),
            Scope::Volunteer(_) => Some(Vec::new()),
        }
    }
}

impl Guard for Caller {
    fn community(&self, code: &str) -> bool {
        match &self.scope {
            Scope::Admin => true,
            Scope::Bureau(_) => self.bureau_prefix().is_some_and(|p| code.starts_with(p)),
            Scope::Station(_) => self.station.as_ref().is_some_and(|s| s.serves(code)),
            Scope::Volunteer(_) => false,
        }
    }

    fn region(&self, code: &str) -> bool {
        match &self.scope {
            Scope::Admin => true,
            Scope::Bureau(_) => self.bureau_prefix().is_some_and(|p| code.starts_with(p)),
            Scope::Station(_) | Scope::Volunteer(_) => false,
        }
    }

    fn station(&self, station: &Station) -> bool {
        match &self.scope {
            Scope::Admin => true,
            Scope::Bureau(_) => self
                .bureau_prefix()
                .is_some_and(|p| station.township.starts_with(p)),
            Scope::Station(id) => station.id == *id,
            Scope::Volunteer(_) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_round_trip_and_refuse_nonsense() {
        for s in ["admin", "bureau:620802000000", "station:3", "volunteer:17"] {
            assert_eq!(s.parse::<Scope>().map(|x| x.to_string()).as_deref(), Ok(s));
        }
        assert!("bureau:620802001000".parse::<Scope>().is_err());
        assert!("station:x".parse::<Scope>().is_err());
        assert!("root".parse::<Scope>().is_err());
    }
}
