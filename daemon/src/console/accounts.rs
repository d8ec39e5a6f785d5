//! Console accounts and sessions. Staff log in with a username and a password (argon2id);
//! volunteers with a one-time link (or its QR code) their station issues, after which their
//! phone keeps a long session the station can end. Only hashes are stored: the PHC string of a
//! password, the SHA-256 of a session secret or a link's code.
//!
//! Failed logins are counted per account and per address in memory: five failures for an
//! account, or twenty from an address, within 15 minutes lock further attempts until the oldest
//! of them is 15 minutes old. A restart forgets the counts (argon2id keeps guessing slow).

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use chrono::{DateTime, Duration, Utc};
use rand::RngCore;
use serde::{Deserialize, Serialize};

use crate::api::auth::{Scope, hash};
use crate::clock::SharedClock;
use crate::registry::Invalid;
use crate::service::ServiceError;
use crate::store::{ConsoleTable, Store, StoreError};

/// How long sessions and links last, and whether cookies are `Secure` (`[console]`).
#[derive(Debug, Clone, PartialEq)]
pub struct ConsoleSettings {
    pub secure_cookies: bool,
    pub staff_session: Duration,
    pub volunteer_session: Duration,
    pub login_link: Duration,
    /// Reverse proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<std::net::IpAddr>,
}

impl Default for ConsoleSettings {
    fn default() -> Self {
        Self::from_config(&crate::config::ConsoleConfig::default(), false)
    }
}

impl ConsoleSettings {
    pub fn from_config(c: &crate::config::ConsoleConfig, https: bool) -> Self {
        ConsoleSettings {
            secure_cookies: c.secure_cookies.unwrap_or(https),
            staff_session: Duration::hours(i64::from(c.staff_session_hours)),
            volunteer_session: Duration::days(i64::from(c.volunteer_session_days)),
            login_link: Duration::days(i64::from(c.login_link_days)),
            trusted_proxies: c
                .trusted_proxies
                .iter()
                .filter_map(|p| p.trim().parse().ok())
                .collect(),
        }
    }
}

/// A staff account as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct User {
    pub name: String,
    pub scope: String,
    #[serde(default)]
    pub label: Option<String>,
    /// The argon2id PHC string.
    pub password: String,
    #[serde(default)]
    pub disabled: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// An account as listed (never the password hash).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct UserInfo {
    pub name: String,
    /// `admin`, `bureau:<code>` or `station:<id>`.
    pub scope: String,
    pub label: Option<String>,
    pub disabled: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<&User> for UserInfo {
    fn from(u: &User) -> Self {
        UserInfo {
            name: u.name.clone(),
            scope: u.scope.clone(),
            label: u.label.clone(),
            disabled: u.disabled,
            created_at: u.created_at,
            updated_at: u.updated_at,
        }
    }
}

/// A session as stored, under the hash of its secret.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionRecord {
    pub scope: String,
    /// The staff account, for staff sessions.
    #[serde(default)]
    pub user: Option<String>,
    /// The form token every POST of this session carries.
    pub csrf: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    #[serde(default)]
    pub revoked_at: Option<DateTime<Utc>>,
}

/// A live session.
#[derive(Debug, Clone)]
pub struct Session {
    /// The first 12 hex digits of the secret's hash: how the audit log names the session.
    pub id: String,
    pub scope: Scope,
    pub user: Option<String>,
    pub csrf: String,
    pub expires_at: DateTime<Utc>,
}

/// A new session: the cookie's secret (shown once) and the session.
#[derive(Debug, Clone)]
pub struct Issued {
    pub secret: String,
    pub session: Session,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct LoginLinkRecord {
    volunteer: u64,
    by: String,
    created_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    #[serde(default)]
    used_at: Option<DateTime<Utc>>,
}

/// A volunteer's one-time login link, as issued.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct LoginLink {
    pub volunteer: u64,
    /// The one-time code (shown once).
    pub code: String,
    /// The page the volunteer opens (or scans as a QR code).
    pub url: String,
    pub expires_at: DateTime<Utc>,
}

/// Why a login failed. Deliberately vague about which part was wrong.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error("wrong username or password, or the account is disabled")]
    Wrong,
    #[error("too many failed logins; try again in {minutes} minutes")]
    Locked { minutes: i64 },
    #[error("this login link is unknown, used or expired; ask your station for a new one")]
    BadLink,
    #[error("too many logins at once; try again in a moment")]
    Busy,
    #[error(transparent)]
    Store(#[from] StoreError),
}

const WINDOW_MINUTES: i64 = 15;
/// Failures for one account from one address before that pair waits.
const PER_ACCOUNT_AND_ADDRESS: usize = 5;
/// Failures for one account from anywhere before it waits (slows guessing from many places,
/// while a user at their usual address is locked out only by this many).
const PER_ACCOUNT: usize = 50;
/// Failures from one address (an IPv6 /64) before it waits.
const PER_ADDRESS: usize = 30;
/// Keys kept by the limiter (each a fixed-size hash with at most `PER_ACCOUNT` instants):
/// memory stays bounded under a flood.
const LIMITER_KEYS: usize = 100_000;

/// Failed logins per key (hashed), each key's latest failures only.
#[derive(Default)]
struct Limiter {
    failures: HashMap<[u8; 16], VecDeque<DateTime<Utc>>>,
    pruned: Option<DateTime<Utc>>,
}

/// A limiter key: a hash, so a flood of long names costs no more memory than short ones.
fn key(kind: &str, a: &str, b: &str) -> [u8; 16] {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    h.update(kind.as_bytes());
    h.update([0]);
    h.update(a.as_bytes());
    h.update([0]);
    h.update(b.as_bytes());
    let d = h.finalize();
    let mut k = [0u8; 16];
    k.copy_from_slice(&d[..16]);
    k
}

/// The client's address: the peer's, or behind a trusted proxy the nearest address in
/// `X-Forwarded-For` that is not a trusted proxy (anything a client writes there itself is
/// further left, and never read).
pub fn client_ip(
    peer: std::net::IpAddr,
    forwarded_for: &[&str],
    trusted: &[std::net::IpAddr],
) -> std::net::IpAddr {
    if !trusted.contains(&peer) {
        return peer;
    }
    let hops: Vec<&str> = forwarded_for
        .iter()
        .flat_map(|h| h.split(','))
        .map(str::trim)
        .collect();
    for hop in hops.iter().rev() {
        match hop.parse::<std::net::IpAddr>() {
            Ok(ip) if trusted.contains(&ip) => continue,
            Ok(ip) => return ip,
            Err(_) => break,
        }
    }
    peer
}

/// The part of a client address that identifies a client: an IPv4 address, an IPv6 /64.
pub fn address_key(ip: std::net::IpAddr) -> String {
    match ip {
        std::net::IpAddr::V4(v4) => v4.to_string(),
        std::net::IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

impl Limiter {
    fn prune(&mut self, now: DateTime<Utc>) {
        let over = self.failures.len() > LIMITER_KEYS;
        if !over
            && self
                .pruned
                .is_some_and(|at| now - at < Duration::minutes(1))
        {
            return;
        }
        self.pruned = Some(now);
        let since = now - Duration::minutes(WINDOW_MINUTES);
        self.failures.retain(|_, q| {
            while q.front().is_some_and(|t| *t <= since) {
                q.pop_front();
            }
            !q.is_empty()
        });
        // Still too many (a flood): drop a tenth, so that this is rare, not every attempt.
        if self.failures.len() > LIMITER_KEYS {
            let mut n = 0u32;
            self.failures.retain(|_, _| {
                n += 1;
                !n.is_multiple_of(10)
            });
        }
    }

    /// Minutes until `key` may try again, if it is locked.
    fn locked(&self, key: &[u8; 16], limit: usize, now: DateTime<Utc>) -> Option<i64> {
        let q = self.failures.get(key)?;
        if q.len() < limit {
            return None;
        }
        let free_at = *q.get(q.len() - limit)? + Duration::minutes(WINDOW_MINUTES);
        (free_at > now).then(|| ((free_at - now).num_seconds() + 59) / 60)
    }

    fn fail(&mut self, key: [u8; 16], now: DateTime<Utc>) {
        let q = self.failures.entry(key).or_default();
        q.push_back(now);
        while q.len() > PER_ACCOUNT {
            q.pop_front();
        }
    }

    /// Takes back a failure `fail` reserved (the attempt succeeded, or never ran).
    fn undo(&mut self, key: &[u8; 16]) {
        if let Some(q) = self.failures.get_mut(key) {
            q.pop_back();
            if q.is_empty() {
                self.failures.remove(key);
            }
        }
    }
}

/// Accounts, sessions and login links.
pub struct Accounts {
    store: Store,
    clock: SharedClock,
    settings: ConsoleSettings,
    limiter: Mutex<Limiter>,
    /// Password checks running at once (argon2id takes ~19 MiB and real CPU each): a burst
    /// of logins waits its turn instead of exhausting memory.
    checks: tokio::sync::Semaphore,
    /// A hash verified when the account does not exist, so that answers take as long.
    decoy: String,
}

fn random_hex(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A password generated for a new or reset account: 16 characters an officer can type.
pub fn generate_password() -> String {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut b = [0u8; 16];
    rand::rng().fill_bytes(&mut b);
    b.iter()
        .map(|x| char::from(ALPHABET[usize::from(*x) % ALPHABET.len()]))
        .collect()
}

fn hash_password(password: &str) -> Result<String, ServiceError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| ServiceError::Conflict {
            field: "password".into(),
            message: format!("could not hash the password: {e}"),
        })
}

fn verify_password(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|h| {
        Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

/// Username rules: 3 to 32 of a–z, 0–9, `.`, `_`, `-`, starting with a letter or digit.
pub fn check_username(name: &str) -> Result<(), Invalid> {
    let ok = (3..=32).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
        && name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(Invalid::one(
            "name",
            "a username is 3 to 32 lower-case letters, digits, '.', '_' or '-', starting with a letter or digit",
        ))
    }
}

fn check_password(name: &str, password: &str) -> Result<(), Invalid> {
    let n = password.chars().count();
    if !(10..=256).contains(&n) {
        return Err(Invalid::one("password", "must be 10 to 256 characters"));
    }
    if password.eq_ignore_ascii_case(name) || password.chars().all(|c| password.starts_with(c)) {
        return Err(Invalid::one(
            "password",
            "is too easy to guess: not the username, not one character repeated",
        ));
    }
    Ok(())
}

fn staff_scope(scope: &str) -> Result<Scope, Invalid> {
    match scope.parse::<Scope>() {
        Ok(Scope::Volunteer(_)) => Err(Invalid::one(
            "scope",
            "volunteers log in with a link their station issues, not a password account",
        )),
        Ok(s) => Ok(s),
        Err(e) => Err(Invalid::one("scope", e)),
    }
}

impl Accounts {
    pub fn new(store: Store, clock: SharedClock, settings: ConsoleSettings) -> Self {
        let decoy = hash_password("decoy password, never matches").unwrap_or_default();
        Accounts {
            store,
            clock,
            settings,
            limiter: Mutex::new(Limiter::default()),
            checks: tokio::sync::Semaphore::new(
                std::thread::available_parallelism().map_or(2, |n| n.get().clamp(2, 8)),
            ),
            decoy,
        }
    }

    pub fn settings(&self) -> &ConsoleSettings {
        &self.settings
    }

    fn user(&self, name: &str) -> Result<Option<User>, StoreError> {
        self.store
            .read(|r| r.console_get::<User>(ConsoleTable::Users, name))
    }

    /// Creates an account. The password is checked for length; argon2id hashes it.
    pub fn create_user(
        &self,
        name: &str,
        scope: &str,
        label: Option<String>,
        password: &str,
    ) -> Result<UserInfo, ServiceError> {
        let mut errs = Invalid::default();
        if let Err(e) = check_username(name) {
            errs.0.extend(e.0);
        }
        // Stored as the scope reads back (`station:01` is `station:1`), so sessions match it.
        let canonical = match staff_scope(scope) {
            Ok(s) => s.to_string(),
            Err(e) => {
                errs.0.extend(e.0);
                String::new()
            }
        };
        if let Err(e) = check_password(name, password) {
            errs.0.extend(e.0);
        }
        if label
            .as_ref()
            .is_some_and(|l| l.chars().count() > 100 || l.chars().any(char::is_control))
        {
            errs.push("label", "must be at most 100 characters of one line");
        }
        errs.into_result()?;
        let phc = hash_password(password)?;
        let now = self.clock.now();
        let user = User {
            name: name.to_owned(),
            scope: canonical,
            label,
            password: phc,
            disabled: false,
            created_at: now,
            updated_at: now,
        };
        self.store.write(|w| {
            if w.console_get::<User>(ConsoleTable::Users, name)?.is_some() {
                return Err(ServiceError::Conflict {
                    field: "name".into(),
                    message: format!("the username {name} is taken"),
                });
            }
            w.console_put(ConsoleTable::Users, name, &user)?;
            Ok(())
        })?;
        Ok(UserInfo::from(&user))
    }

    /// Every account, by username.
    pub fn users(&self) -> Result<Vec<UserInfo>, StoreError> {
        Ok(self
            .store
            .read(|r| r.console_all::<User>(ConsoleTable::Users))?
            .iter()
            .map(|(_, u)| UserInfo::from(u))
            .collect())
    }

    /// One account, if it exists.
    pub fn user_info(&self, name: &str) -> Result<Option<UserInfo>, StoreError> {
        Ok(self.user(name)?.as_ref().map(UserInfo::from))
    }

    fn change_user(
        &self,
        name: &str,
        f: impl FnOnce(&mut User) -> Result<(), ServiceError>,
    ) -> Result<UserInfo, ServiceError> {
        let now = self.clock.now();
        let user = self.store.write(|w| {
            let mut user = w
                .console_get::<User>(ConsoleTable::Users, name)?
                .ok_or_else(|| ServiceError::NotFound {
                    kind: "user",
                    id: name.to_owned(),
                })?;
            f(&mut user)?;
            user.updated_at = now;
            w.console_put(ConsoleTable::Users, name, &user)?;
            Ok::<_, ServiceError>(user)
        })?;
        Ok(UserInfo::from(&user))
    }

    /// Sets a new password; the account's sessions end.
    pub fn reset_password(&self, name: &str, password: &str) -> Result<UserInfo, ServiceError> {
        check_password(name, password)?;
        let phc = hash_password(password)?;
        let info = self.change_user(name, |u| {
            u.password = phc;
            Ok(())
        })?;
        self.end_sessions(|s| s.user.as_deref() == Some(name))?;
        Ok(info)
    }

    /// Disables (or enables again) an account; disabling ends its sessions.
    pub fn set_disabled(&self, name: &str, disabled: bool) -> Result<UserInfo, ServiceError> {
        let info = self.change_user(name, |u| {
            u.disabled = disabled;
            Ok(())
        })?;
        if disabled {
            self.end_sessions(|s| s.user.as_deref() == Some(name))?;
        }
        Ok(info)
    }

    /// Ends every live session `which` picks; answers how many.
    pub fn end_sessions(
        &self,
        which: impl Fn(&SessionRecord) -> bool,
    ) -> Result<usize, StoreError> {
        let now = self.clock.now();
        self.store.write(|w| {
            let mut n = 0;
            for (key, mut s) in w.console_all::<SessionRecord>(ConsoleTable::Sessions)? {
                if s.revoked_at.is_none() && s.expires_at > now && which(&s) {
                    s.revoked_at = Some(now);
                    w.console_put(ConsoleTable::Sessions, &key, &s)?;
                    n += 1;
                }
            }
            Ok(n)
        })
    }

    /// Ends a volunteer's sessions on every phone; answers how many.
    pub fn end_volunteer_sessions(&self, volunteer: u64) -> Result<usize, StoreError> {
        let scope = Scope::Volunteer(volunteer).to_string();
        self.end_sessions(|s| s.scope == scope)
    }

    /// Checks a username and password and opens a staff session. Failures are limited per
    /// account and address, per account, and per address (`address` as [`address_key`] makes
    /// it); an attempt counts as a failure from before its password is checked, so parallel
    /// attempts cannot get past the limits.
    pub fn login(&self, name: &str, password: &str, address: &str) -> Result<Issued, LoginError> {
        let now = self.clock.now();
        let name = name.trim().to_lowercase();
        let well_formed = check_username(&name).is_ok();
        let mut keys = vec![(key("address", address, ""), PER_ADDRESS)];
        if well_formed {
            keys.push((key("account", &name, ""), PER_ACCOUNT));
            keys.push((key("pair", &name, address), PER_ACCOUNT_AND_ADDRESS));
        }
        {
            let mut l = self.limiter.lock().unwrap_or_else(|p| p.into_inner());
            l.prune(now);
            if let Some(minutes) = keys.iter().find_map(|(k, limit)| l.locked(k, *limit, now)) {
                return Err(LoginError::Locked { minutes });
            }
            for (k, _) in &keys {
                l.fail(*k, now);
            }
        }
        let undo = |all: bool| {
            let mut l = self.limiter.lock().unwrap_or_else(|p| p.into_inner());
            for (i, (k, _)) in keys.iter().enumerate() {
                if all || i < 2 {
                    l.undo(k);
                } else {
                    // This address's record for the account starts afresh.
                    l.failures.remove(k);
                }
            }
        };
        if !well_formed {
            return Err(LoginError::Wrong);
        }
        let Ok(_permit) = self.checks.try_acquire() else {
            undo(true);
            return Err(LoginError::Busy);
        };
        let user = match self.user(&name) {
            Ok(u) => u,
            Err(e) => {
                undo(true);
                return Err(e.into());
            }
        };
        let ok = match &user {
            Some(u) => verify_password(password, &u.password) && !u.disabled,
            None => {
                verify_password(password, &self.decoy);
                false
            }
        };
        let usable = user
            .filter(|_| ok)
            .and_then(|u| u.scope.parse::<Scope>().ok().map(|s| (u.name, s)));
        let Some((name, scope)) = usable else {
            return Err(LoginError::Wrong);
        };
        undo(false);
        Ok(self.open(scope, Some(name), self.settings.staff_session)?)
    }

    fn open(
        &self,
        scope: Scope,
        user: Option<String>,
        lasts: Duration,
    ) -> Result<Issued, StoreError> {
        let now = self.clock.now();
        let secret = format!("lnls_{}", random_hex(32));
        let record = SessionRecord {
            scope: scope.to_string(),
            user: user.clone(),
            csrf: random_hex(24),
            created_at: now,
            expires_at: now + lasts,
            revoked_at: None,
        };
        let key = hash(&secret);
        self.store.write(|w| {
            // Sessions and links long over are dropped as new ones are made.
            for (k, s) in w.console_all::<SessionRecord>(ConsoleTable::Sessions)? {
                if s.expires_at + Duration::days(1) < now {
                    w.console_remove(ConsoleTable::Sessions, &k)?;
                }
            }
            w.console_put(ConsoleTable::Sessions, &key, &record)
        })?;
        Ok(Issued {
            session: Session {
                id: key.get(..12).unwrap_or_default().to_owned(),
                scope,
                user,
                csrf: record.csrf,
                expires_at: record.expires_at,
            },
            secret,
        })
    }

    /// The live session a cookie's secret names, if any.
    pub fn session(&self, secret: &str) -> Result<Option<Session>, StoreError> {
        if !secret.starts_with("lnls_") || secret.len() > 100 {
            return Ok(None);
        }
        let now = self.clock.now();
        let key = hash(secret);
        let Some(s) = self
            .store
            .read(|r| r.console_get::<SessionRecord>(ConsoleTable::Sessions, &key))?
        else {
            return Ok(None);
        };
        if s.revoked_at.is_some() || s.expires_at <= now {
            return Ok(None);
        }
        // A staff session ends with its account.
        if let Some(name) = &s.user
            && !self
                .user(name)?
                .is_some_and(|u| !u.disabled && u.scope == s.scope)
        {
            return Ok(None);
        }
        let Ok(scope) = s.scope.parse::<Scope>() else {
            return Ok(None);
        };
        Ok(Some(Session {
            id: key.get(..12).unwrap_or_default().to_owned(),
            scope,
            user: s.user,
            csrf: s.csrf,
            expires_at: s.expires_at,
        }))
    }

    /// Logs a session out.
    pub fn logout(&self, secret: &str) -> Result<(), StoreError> {
        let key = hash(secret);
        let now = self.clock.now();
        self.store.write(|w| {
            if let Some(mut s) = w.console_get::<SessionRecord>(ConsoleTable::Sessions, &key)? {
                s.revoked_at = Some(now);
                w.console_put(ConsoleTable::Sessions, &key, &s)?;
            }
            Ok(())
        })
    }

    /// Issues a volunteer a one-time login link; `base` is the console's public address.
    pub fn issue_login_link(
        &self,
        volunteer: u64,
        by: &str,
        base: &str,
    ) -> Result<LoginLink, StoreError> {
        let now = self.clock.now();
        let code = random_hex(20);
        let record = LoginLinkRecord {
            volunteer,
            by: by.to_owned(),
            created_at: now,
            expires_at: now + self.settings.login_link,
            used_at: None,
        };
        self.store.write(|w| {
            for (k, l) in w.console_all::<LoginLinkRecord>(ConsoleTable::LoginLinks)? {
                // Links long over are dropped; the volunteer's unused earlier links stop
                // working (a lost printout is worth nothing once a new one is made).
                if l.expires_at + Duration::days(1) < now
                    || (l.volunteer == volunteer && l.used_at.is_none())
                {
                    w.console_remove(ConsoleTable::LoginLinks, &k)?;
                }
            }
            w.console_put(ConsoleTable::LoginLinks, &hash(&code), &record)
        })?;
        Ok(LoginLink {
            volunteer,
            url: format!("{}/login/v/{code}", base.trim_end_matches('/')),
            code,
            expires_at: record.expires_at,
        })
    }

    /// Spends a login link and opens the volunteer's long session. Each link works once.
    pub fn redeem_login_link(&self, code: &str, address: &str) -> Result<Issued, LoginError> {
        let now = self.clock.now();
        let address_key = key("address", address, "");
        {
            let mut l = self.limiter.lock().unwrap_or_else(|p| p.into_inner());
            l.prune(now);
            if let Some(minutes) = l.locked(&address_key, PER_ADDRESS, now) {
                return Err(LoginError::Locked { minutes });
            }
        }
        let well_formed = code.len() == 40 && code.bytes().all(|b| b.is_ascii_hexdigit());
        let key = hash(code);
        let volunteer = if well_formed {
            self.store.write(|w| {
                let Some(mut link) =
                    w.console_get::<LoginLinkRecord>(ConsoleTable::LoginLinks, &key)?
                else {
                    return Ok(None);
                };
                if link.used_at.is_some() || link.expires_at <= now {
                    return Ok(None);
                }
                link.used_at = Some(now);
                w.console_put(ConsoleTable::LoginLinks, &key, &link)?;
                Ok::<_, StoreError>(Some(link.volunteer))
            })?
        } else {
            None
        };
        let Some(volunteer) = volunteer else {
            self.limiter
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .fail(address_key, now);
            return Err(LoginError::BadLink);
        };
        Ok(self.open(
            Scope::Volunteer(volunteer),
            None,
            self.settings.volunteer_session,
        )?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accounts() -> (
        tempfile::TempDir,
        Accounts,
        std::sync::Arc<crate::clock::ManualClock>,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.redb"), Default::default()).unwrap();
        let clock = std::sync::Arc::new(crate::clock::ManualClock::new(
            DateTime::parse_from_rfc3339("2026-11-02T08:00:00Z")
                .unwrap()
                .with_timezone(&Utc),
        ));
        let a = Accounts::new(store, clock.clone(), ConsoleSettings::default());
        (dir, a, clock)
    }

    #[test]
    fn passwords_are_hashed_and_checked() {
        let (_d, a, _) = accounts();
        a.create_user("wang.li", "station:1", None, "correct horse")
            .unwrap();
        let stored: User = a.user("wang.li").unwrap().unwrap();
        assert!(
            stored.password.starts_with("$argon2id$"),
            "{}",
            stored.password
        );
        assert!(a.login("wang.li", "correct horse", "10.0.0.1").is_ok());
        assert!(matches!(
            a.login("wang.li", "wrong horse!", "10.0.0.1"),
            Err(LoginError::Wrong)
        ));
        assert!(matches!(
            a.login("nobody", "correct horse", "10.0.0.1"),
            Err(LoginError::Wrong)
        ));
        // Volunteers have no password accounts; weak passwords and bad names are refused.
        assert!(
            a.create_user("vol", "volunteer:3", None, "correct horse")
                .is_err()
        );
        assert!(a.create_user("abc", "station:1", None, "short").is_err());
        assert!(
            a.create_user("Ab", "station:1", None, "correct horse")
                .is_err()
        );
        assert!(
            a.create_user("wang.li", "station:1", None, "correct horse")
                .is_err()
        );
    }

    #[test]
    fn failed_logins_lock_the_account_from_that_address_then_free_it() {
        let (_d, a, clock) = accounts();
        a.create_user("zhao", "admin", None, "correct horse")
            .unwrap();
        for _ in 0..PER_ACCOUNT_AND_ADDRESS {
            assert!(matches!(
                a.login("zhao", "guess guess", "10.0.0.1"),
                Err(LoginError::Wrong)
            ));
        }
        // Even the right password waits now from that address …
        assert!(matches!(
            a.login("zhao", "correct horse", "10.0.0.1"),
            Err(LoginError::Locked { minutes: 15 })
        ));
        // … while the account's owner elsewhere is not locked out by someone guessing.
        assert!(a.login("zhao", "correct horse", "10.9.9.9").is_ok());
        clock.advance(Duration::minutes(16));
        assert!(a.login("zhao", "correct horse", "10.0.0.1").is_ok());
    }

    #[test]
    fn guessing_one_account_from_many_addresses_is_locked() {
        let (_d, a, _) = accounts();
        a.create_user("qian.li", "admin", None, "correct horse")
            .unwrap();
        for i in 0..PER_ACCOUNT {
            let _ = a.login(
                "qian.li",
                "guess guess",
                &format!("10.1.{}.{}", i / 200, i % 200),
            );
        }
        assert!(matches!(
            a.login("qian.li", "correct horse", "10.9.9.9"),
            Err(LoginError::Locked { .. })
        ));
    }

    #[test]
    fn the_limiter_stays_small_under_a_flood_of_long_names() {
        let (_d, a, _) = accounts();
        let long = "x".repeat(60_000);
        for i in 0..200 {
            let _ = a.login(&format!("{long}{i}"), "guess guess", &format!("10.2.0.{i}"));
        }
        let l = a.limiter.lock().unwrap();
        // Malformed names never reach an account key; keys are fixed-size hashes.
        assert_eq!(l.failures.len(), 200);
        assert!(l.failures.values().all(|q| q.len() == 1));
    }

    #[test]
    fn the_client_address_is_read_through_trusted_proxies_only() {
        let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
        let proxy = vec![ip("127.0.0.1")];
        // Direct: the header is the client's own words, ignored.
        assert_eq!(
            client_ip(ip("10.0.0.5"), &["1.2.3.4"], &proxy),
            ip("10.0.0.5")
        );
        // Through the proxy: the address it appended.
        assert_eq!(
            client_ip(ip("127.0.0.1"), &["6.6.6.6, 10.0.0.5"], &proxy),
            ip("10.0.0.5")
        );
        assert_eq!(
            client_ip(ip("127.0.0.1"), &["garbage"], &proxy),
            ip("127.0.0.1")
        );
        assert_eq!(client_ip(ip("127.0.0.1"), &[], &proxy), ip("127.0.0.1"));
    }

    #[test]
    fn ipv6_clients_are_counted_by_their_64_prefix() {
        let a: std::net::IpAddr = "2408:8207:1851:abc0:1:2:3:4".parse().unwrap();
        let b: std::net::IpAddr = "2408:8207:1851:abc0:ffff::9".parse().unwrap();
        assert_eq!(address_key(a), address_key(b));
        let v4: std::net::IpAddr = "::ffff:10.0.0.7".parse().unwrap();
        assert_eq!(address_key(v4), "10.0.0.7");
    }

    #[test]
    fn one_address_guessing_many_accounts_is_locked() {
        let (_d, a, _) = accounts();
        for i in 0..PER_ADDRESS {
            let _ = a.login(&format!("user{i}"), "guess guess", "10.0.0.1");
        }
        // Parallel attempts cannot slip past: each counts before its password is checked.
        assert!(matches!(
            a.login("user-x", "guess guess", "10.0.0.1"),
            Err(LoginError::Locked { .. })
        ));
        assert!(matches!(
            a.login("user-x", "guess guess", "10.0.0.2"),
            Err(LoginError::Wrong)
        ));
    }

    #[test]
    fn sessions_end_on_logout_disable_and_expiry() {
        let (_d, a, clock) = accounts();
        a.create_user("qian", "admin", None, "correct horse")
            .unwrap();
        let s = a.login("qian", "correct horse", "x").unwrap();
        assert!(a.session(&s.secret).unwrap().is_some());
        a.logout(&s.secret).unwrap();
        assert!(a.session(&s.secret).unwrap().is_none());
        let s = a.login("qian", "correct horse", "x").unwrap();
        a.set_disabled("qian", true).unwrap();
        assert!(a.session(&s.secret).unwrap().is_none());
        assert!(matches!(
            a.login("qian", "correct horse", "x"),
            Err(LoginError::Wrong)
        ));
        a.set_disabled("qian", false).unwrap();
        let s = a.login("qian", "correct horse", "x").unwrap();
        clock.advance(Duration::hours(13));
        assert!(a.session(&s.secret).unwrap().is_none());
        assert!(a.session("lnls_made-up").unwrap().is_none());
    }

    #[test]
    fn a_login_link_works_once_and_its_session_can_be_ended() {
        let (_d, a, clock) = accounts();
        let link = a.issue_login_link(7, "station:1", "http://h/").unwrap();
        assert!(link.url.starts_with("http://h/login/v/"), "{}", link.url);
        let s = a.redeem_login_link(&link.code, "x").unwrap();
        assert_eq!(s.session.scope, Scope::Volunteer(7));
        assert!(matches!(
            a.redeem_login_link(&link.code, "x"),
            Err(LoginError::BadLink)
        ));
        clock.advance(Duration::days(100));
        assert!(a.session(&s.secret).unwrap().is_some());
        assert_eq!(a.end_volunteer_sessions(7).unwrap(), 1);
        assert!(a.session(&s.secret).unwrap().is_none());
        // A new link makes the volunteer's unused earlier one worthless.
        let first = a.issue_login_link(7, "station:1", "http://h").unwrap();
        let late = a.issue_login_link(7, "station:1", "http://h").unwrap();
        assert!(matches!(
            a.redeem_login_link(&first.code, "x"),
            Err(LoginError::BadLink)
        ));
        clock.advance(Duration::days(8));
        assert!(matches!(
            a.redeem_login_link(&late.code, "x"),
            Err(LoginError::BadLink)
        ));
    }
}
