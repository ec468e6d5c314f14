//! API keys, roles and per-key rate limits.
//!
//! A key is stored only as its SHA-256; a presented key is hashed and compared with every
//! configured hash in constant time, so neither the comparison nor which key matched shows
//! in the timing.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::bail;
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// What a key may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Moderate posts: `/v1/moderate`, `/v1/moderate/batch`, `/v1/check`, `/compat/…`.
    Moderate,
    /// Decide held posts (the review queue).
    Review,
    /// Read audit records, personal data included.
    Audit,
    /// Reload rules, read the rule set.
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Moderate => "moderate",
            Role::Review => "review",
            Role::Audit => "audit",
            Role::Admin => "admin",
        }
    }
}

/// One `[[server.keys]]` block.
#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct KeyConfig {
    /// Who calls with it: recorded in the logs.
    pub name: String,
    /// Hex SHA-256 of the key.
    pub sha256: String,
    /// What it may do.
    pub roles: Vec<Role>,
    /// Requests per second for this key, instead of `[server] rate_limit`.
    #[serde(default)]
    pub rate_limit: Option<u32>,
    /// When it stops working (RFC 3339).
    #[serde(default)]
    pub expires: Option<String>,
    /// The networks it may be used from (CIDR); anywhere when empty.
    #[serde(default)]
    pub allow_from: Vec<ipnet::IpNet>,
}

/// When and from where a key or a user may be used: `expires` (RFC 3339; afterwards 401)
/// and `allow_from` (CIDR networks; a call from elsewhere 403). Both optional.
#[derive(Debug, Clone, Default)]
pub struct Limits {
    pub expires: Option<String>,
    pub allow_from: Vec<ipnet::IpNet>,
}

impl Limits {
    /// Refuses an `expires` that is not a time, naming `who`.
    fn check(&self, who: &str) -> anyhow::Result<()> {
        if let Some(e) = &self.expires {
            if e.parse::<jiff::Timestamp>().is_err() {
                bail!("{who}: expires = {e:?} is not an RFC 3339 time (such as 2027-06-30T00:00:00+08:00)");
            }
        }
        Ok(())
    }

    /// Whether a call at `now` from `peer` is within these limits.
    pub fn admit(
        &self,
        now: jiff::Timestamp,
        peer: Option<std::net::IpAddr>,
    ) -> Result<(), Refusal> {
        if let Some(e) = self
            .expires
            .as_deref()
            .and_then(|e| e.parse::<jiff::Timestamp>().ok())
        {
            if now >= e {
                return Err(Refusal::Expired);
            }
        }
        if !self.allow_from.is_empty() {
            // An IPv4 peer may arrive as ::ffff:a.b.c.d on a dual-stack socket.
            let peer = peer.map(|p| match p {
                std::net::IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(p, std::net::IpAddr::V4),
                v4 => v4,
            });
            if !peer.is_some_and(|p| self.allow_from.iter().any(|n| n.contains(&p))) {
                return Err(Refusal::NotFromHere);
            }
        }
        Ok(())
    }
}

impl KeyConfig {
    pub fn limits(&self) -> Limits {
        Limits {
            expires: self.expires.clone(),
            allow_from: self.allow_from.clone(),
        }
    }

    pub fn check(&self) -> anyhow::Result<()> {
        if self.name.trim().is_empty() {
            bail!("a key has an empty name");
        }
        if self.name.chars().any(char::is_control) {
            bail!("key {:?}: control characters in the name", self.name);
        }
        if parse_digest(&self.sha256).is_none() {
            bail!(
                "key {:?}: sha256 must be 64 hex digits (the SHA-256 of the key, not the key)",
                self.name
            );
        }
        if self.roles.is_empty() {
            bail!(
                "key {:?}: no roles (moderate, review, audit, admin)",
                self.name
            );
        }
        self.limits().check(&format!("key {:?}", self.name))
    }
}

fn parse_digest(hex_text: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(hex_text.trim(), &mut out).ok()?;
    Some(out)
}

/// A caller the keys let in. Cloned into every call it makes (shared, not copied).
#[derive(Clone, Debug)]
pub struct Caller {
    pub name: Arc<str>,
    roles: Arc<[Role]>,
}

impl Caller {
    /// A console user, logged in by password.
    pub fn new(name: &str, roles: &[Role]) -> Caller {
        Caller {
            name: name.into(),
            roles: roles.into(),
        }
    }

    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }
}

/// Why a call was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// No key, or not one of ours: 401.
    Unknown,
    /// A key without the role: 403.
    Forbidden(Role),
    /// Over the key's rate: 429, retry after this many seconds.
    TooMany(u64),
    /// The key or user has expired: 401 (the log says why).
    Expired,
    /// Used from an address outside its `allow_from`: 403.
    NotFromHere,
}

struct Key {
    digest: [u8; 32],
    caller: Caller,
    rate: u32,
    limits: Limits,
}

/// The configured keys and their rate buckets.
pub struct Keys {
    keys: Vec<Key>,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl Keys {
    pub fn new(configs: &[KeyConfig], default_rate: u32) -> Keys {
        let keys = configs
            .iter()
            .map(|k| Key {
                digest: parse_digest(&k.sha256).expect("checked by KeyConfig::check"),
                caller: Caller::new(&k.name, &k.roles),
                rate: k.rate_limit.unwrap_or(default_rate),
                limits: k.limits(),
            })
            .collect();
        Keys {
            keys,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// The caller presenting `key` from `peer`, when it has `role`, has not expired, may
    /// call from there and is within its rate.
    pub fn admit(
        &self,
        key: Option<&str>,
        role: Role,
        peer: Option<std::net::IpAddr>,
    ) -> Result<Caller, Refusal> {
        let key = key.ok_or(Refusal::Unknown)?;
        let digest: [u8; 32] = Sha256::digest(key.as_bytes()).into();
        let mut found = None;
        for k in &self.keys {
            if constant_time_eq(&k.digest, &digest) {
                found = Some(k);
            }
        }
        let k = found.ok_or(Refusal::Unknown)?;
        k.limits.admit(jiff::Timestamp::now(), peer).inspect_err(|r| {
            tracing::warn!(target: "shenhe::auth", key = %k.caller.name, refused = ?r, "key refused");
        })?;
        if !k.caller.has(role) {
            return Err(Refusal::Forbidden(role));
        }
        if k.rate > 0 {
            let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
            let bucket = buckets
                .entry(k.caller.name.to_string())
                .or_insert_with(|| Bucket::full(k.rate));
            bucket.take(k.rate, Instant::now())?;
        }
        Ok(k.caller.clone())
    }
}

impl Keys {
    /// Carries the rate buckets of the keys in force over to these (after a reload of the
    /// config), so re-reading it does not refill every key's bucket.
    pub fn keep_buckets_of(&self, old: &Keys) {
        let taken = std::mem::take(&mut *old.buckets.lock().unwrap_or_else(|e| e.into_inner()));
        *self.buckets.lock().unwrap_or_else(|e| e.into_inner()) = taken;
    }
}

/// The keys and console users in force: read from the config at start and again at each
/// reload, and swapped whole.
pub struct Credentials {
    pub keys: Keys,
    pub users: Vec<UserConfig>,
    /// What the audit chain keeps of them ([`summary`]).
    pub summary: serde_json::Value,
}

impl Credentials {
    pub fn new(keys: &[KeyConfig], users: &[UserConfig], default_rate: u32) -> Credentials {
        Credentials {
            keys: Keys::new(keys, default_rate),
            users: users.to_vec(),
            summary: summary(keys, users),
        }
    }
}

/// The first 12 hex digits of the SHA-256 of `bytes`: names a secret without revealing it.
fn fingerprint(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))[..12].to_owned()
}

/// What the audit chain keeps of the keys and users: for each key its name, `id` (the
/// first 12 hex digits of its SHA-256, so a rotation shows), roles, expires and
/// allow_from; for each user the name, `password_id` (12 hex digits of the SHA-256 of the
/// password's hash, so a new password shows), roles, expires and allow_from. Never a key,
/// a digest whole or a password hash.
pub fn summary(keys: &[KeyConfig], users: &[UserConfig]) -> serde_json::Value {
    let roles = |r: &[Role]| r.iter().map(|r| r.as_str()).collect::<Vec<_>>();
    let nets = |n: &[ipnet::IpNet]| n.iter().map(|n| n.to_string()).collect::<Vec<_>>();
    let keys: Vec<_> = keys
        .iter()
        .map(|k| {
            serde_json::json!({
                "name": k.name,
                "id": k.sha256.trim().to_ascii_lowercase().get(..12).unwrap_or(""),
                "roles": roles(&k.roles),
                "expires": k.expires,
                "allow_from": nets(&k.allow_from),
            })
        })
        .collect();
    let users: Vec<_> = users
        .iter()
        .map(|u| {
            serde_json::json!({
                "name": u.name,
                "password_id": fingerprint(u.password.as_bytes()),
                "roles": roles(&u.roles),
                "expires": u.expires,
                "allow_from": nets(&u.allow_from),
            })
        })
        .collect();
    serde_json::json!({ "keys": keys, "users": users })
}

/// What changed from one [`summary`] to the next, one line a change: `key forum
/// 1a2b3c4d5e6f added`, `user alice: roles ["review"] → ["review","audit"]`, ….
pub fn changes(before: &serde_json::Value, after: &serde_json::Value) -> Vec<String> {
    let mut out = Vec::new();
    for (list, what, id) in [("keys", "key", "id"), ("users", "user", "name")] {
        let index = |v: &serde_json::Value| -> Vec<(String, serde_json::Value)> {
            v[list]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|e| (e[id].as_str().unwrap_or("").to_owned(), e.clone()))
                        .collect()
                })
                .unwrap_or_default()
        };
        let (old, new) = (index(before), index(after));
        let label = |e: &serde_json::Value| match what {
            "key" => format!(
                "key {} {}",
                e["name"].as_str().unwrap_or(""),
                e["id"].as_str().unwrap_or("")
            ),
            _ => format!("user {}", e["name"].as_str().unwrap_or("")),
        };
        for (k, e) in &new {
            match old.iter().find(|(o, _)| o == k) {
                None => out.push(format!("{} added", label(e))),
                Some((_, o)) => {
                    for field in ["name", "password_id", "roles", "expires", "allow_from"] {
                        if o.get(field) != e.get(field) {
                            out.push(format!(
                                "{}: {field} {} → {}",
                                label(e),
                                o.get(field).unwrap_or(&serde_json::Value::Null),
                                e.get(field).unwrap_or(&serde_json::Value::Null)
                            ));
                        }
                    }
                }
            }
        }
        for (k, o) in &old {
            if !new.iter().any(|(n, _)| n == k) {
                out.push(format!("{} removed", label(o)));
            }
        }
    }
    out
}

/// The key from `Authorization: Bearer KEY`.
pub fn bearer(headers: &axum::http::HeaderMap) -> Option<&str> {
    let value = headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, key) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| key.trim())
}

fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

/// A token bucket: `rate` tokens a second, at most `rate` saved up.
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn full(rate: u32) -> Bucket {
        Bucket {
            tokens: rate as f64,
            at: Instant::now(),
        }
    }

    fn take(&mut self, rate: u32, now: Instant) -> Result<(), Refusal> {
        let rate = rate as f64;
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * rate).min(rate);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Refusal::TooMany(
                ((1.0 - self.tokens) / rate).ceil().max(1.0) as u64,
            ))
        }
    }
}

/// A fresh key (32 random bytes from the operating system) and its hex SHA-256.
pub fn fresh_key() -> anyhow::Result<(String, String)> {
    let mut raw = [0u8; 32];
    getrandom::getrandom(&mut raw)
        .map_err(|e| anyhow::anyhow!("no randomness from the operating system: {e}"))?;
    let key = format!("shk_{}", hex::encode(raw));
    let digest = hex::encode(Sha256::digest(key.as_bytes()));
    Ok((key, digest))
}

/// A fresh key and the config block that admits it: `shenhe serve key new`.
pub fn new_key(name: &str, roles: &[Role]) -> anyhow::Result<(String, String)> {
    let (key, digest) = fresh_key()?;
    let config = KeyConfig {
        name: name.to_owned(),
        sha256: digest.clone(),
        roles: roles.to_vec(),
        rate_limit: None,
        expires: None,
        allow_from: Vec::new(),
    };
    config.check()?;
    let roles: Vec<String> = roles.iter().map(|r| format!("{:?}", r.as_str())).collect();
    let block = format!(
        "[[server.keys]]\nname = {}\nsha256 = \"{digest}\"\nroles = [{}]\n",
        toml::Value::String(name.to_owned()),
        roles.join(", ")
    );
    Ok((key, block))
}

/// One `[[server.users]]` block: a person who logs in to the console by password.
#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct UserConfig {
    /// The name recorded with their verdicts.
    pub name: String,
    /// The password's argon2 hash (a PHC string, `$argon2id$…`).
    pub password: String,
    /// What they may do (`review`, and `audit` to see personal fields).
    pub roles: Vec<Role>,
    /// When they can no longer log in (RFC 3339).
    #[serde(default)]
    pub expires: Option<String>,
    /// The networks they may log in from (CIDR); anywhere when empty.
    #[serde(default)]
    pub allow_from: Vec<ipnet::IpNet>,
}

impl UserConfig {
    pub fn limits(&self) -> Limits {
        Limits {
            expires: self.expires.clone(),
            allow_from: self.allow_from.clone(),
        }
    }

    pub fn check(&self) -> anyhow::Result<()> {
        if self.name.trim().is_empty() || self.name.chars().any(char::is_control) {
            bail!("a user has an empty name or one with control characters");
        }
        if argon2::PasswordHash::new(&self.password).is_err() {
            bail!(
                "user {:?}: password is not an argon2 hash (`shenhe serve user new` makes one)",
                self.name
            );
        }
        self.limits().check(&format!("user {:?}", self.name))
    }

    /// Whether `password` is this user's (argon2, constant time; tens of milliseconds).
    pub fn verify(&self, password: &str) -> bool {
        use argon2::PasswordVerifier;
        argon2::PasswordHash::new(&self.password).is_ok_and(|h| {
            argon2::Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
    }
}

/// A `[[server.users]]` block for `name` with `password` hashed (argon2id, a fresh salt).
pub fn new_user(name: &str, password: &str, roles: &[Role]) -> anyhow::Result<String> {
    use argon2::password_hash::{PasswordHasher, SaltString};
    if password.chars().count() < 10 {
        bail!("a console password needs at least 10 characters");
    }
    let mut raw = [0u8; 16];
    getrandom::getrandom(&mut raw)
        .map_err(|e| anyhow::anyhow!("no randomness from the operating system: {e}"))?;
    let salt = SaltString::encode_b64(&raw).map_err(|e| anyhow::anyhow!("salt: {e}"))?;
    let hash = argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| anyhow::anyhow!("hashing the password: {e}"))?
        .to_string();
    let user = UserConfig {
        name: name.to_owned(),
        password: hash.clone(),
        roles: roles.to_vec(),
        expires: None,
        allow_from: Vec::new(),
    };
    user.check()?;
    let roles: Vec<String> = roles.iter().map(|r| format!("{:?}", r.as_str())).collect();
    Ok(format!(
        "[[server.users]]\nname = {}\npassword = \"{hash}\"\nroles = [{}]\n",
        toml::Value::String(name.to_owned()),
        roles.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(rate: u32) -> (Keys, String) {
        let (key, block) = new_key("forum", &[Role::Moderate]).unwrap();
        let cfg: toml::Value = toml::from_str(&block).unwrap();
        let k: KeyConfig = cfg["server"]["keys"][0].clone().try_into().unwrap();
        (Keys::new(&[k], rate), key)
    }

    #[test]
    fn a_new_key_admits_its_role_only() {
        let (keys, key) = keys(0);
        assert_eq!(
            &*keys.admit(Some(&key), Role::Moderate, None).unwrap().name,
            "forum"
        );
        assert_eq!(
            keys.admit(Some(&key), Role::Admin, None).unwrap_err(),
            Refusal::Forbidden(Role::Admin)
        );
        assert_eq!(
            keys.admit(None, Role::Moderate, None).unwrap_err(),
            Refusal::Unknown
        );
        // The key with its last character changed (to another one: a key ending in 0
        // made this test pass the key itself, once in a while).
        let last = if key.ends_with('0') { '1' } else { '0' };
        let wrong = format!("{}{last}", &key[..key.len() - 1]);
        assert_ne!(wrong, key);
        assert_eq!(
            keys.admit(Some(&wrong), Role::Moderate, None).unwrap_err(),
            Refusal::Unknown
        );
    }

    #[test]
    fn the_rate_limit_refuses_a_burst_beyond_it() {
        let (keys, key) = keys(5);
        let admitted = (0..20)
            .filter(|_| keys.admit(Some(&key), Role::Moderate, None).is_ok())
            .count();
        // Five saved up, plus what refilled while the loop ran (microseconds: none).
        assert!((5..=6).contains(&admitted), "{admitted}");
        assert!(matches!(
            keys.admit(Some(&key), Role::Moderate, None),
            Err(Refusal::TooMany(1))
        ));
    }

    #[test]
    fn changes_name_keys_by_id_and_users_by_name() {
        let key = |name: &str, digest: &str, expires: Option<&str>| KeyConfig {
            name: name.into(),
            sha256: digest.repeat(64),
            roles: vec![Role::Moderate],
            rate_limit: None,
            expires: expires.map(str::to_owned),
            allow_from: Vec::new(),
        };
        let before = summary(&[key("forum", "a", None)], &[]);
        let after = summary(
            &[
                key("forum", "a", Some("2026-12-04T00:00:00Z")),
                key("forum", "b", None),
            ],
            &[],
        );
        assert_eq!(
            changes(&before, &after),
            [
                "key forum aaaaaaaaaaaa: expires null → \"2026-12-04T00:00:00Z\"",
                "key forum bbbbbbbbbbbb added"
            ]
        );
        assert!(changes(&after, &after).is_empty());
        assert_eq!(
            changes(&after, &before),
            [
                "key forum aaaaaaaaaaaa: expires \"2026-12-04T00:00:00Z\" → null",
                "key forum bbbbbbbbbbbb removed"
            ]
        );
        let text = after.to_string();
        assert!(!text.contains(&"b".repeat(64)), "never a whole digest");
    }

    #[test]
    fn limits_refuse_after_expiry_and_outside_allow_from() {
        let now: jiff::Timestamp = "2026-12-01T00:00:00Z".parse().unwrap();
        let ip = |s: &str| Some(s.parse::<std::net::IpAddr>().unwrap());
        let until = Limits {
            expires: Some("2026-12-01T08:00:00+08:00".into()),
            allow_from: Vec::new(),
        };
        assert_eq!(
            until.admit(now, None),
            Err(Refusal::Expired),
            "expiry is inclusive"
        );
        let later = Limits {
            expires: Some("2026-12-02T00:00:00Z".into()),
            ..until
        };
        assert_eq!(later.admit(now, None), Ok(()));
        let office = Limits {
            expires: None,
            allow_from: vec![
                "10.1.0.0/16".parse().unwrap(),
                "2001:db8::/32".parse().unwrap(),
            ],
        };
        assert_eq!(office.admit(now, ip("10.1.2.3")), Ok(()));
        assert_eq!(
            office.admit(now, ip("::ffff:10.1.2.3")),
            Ok(()),
            "IPv4 on a v6 socket"
        );
        assert_eq!(office.admit(now, ip("2001:db8::1")), Ok(()));
        assert_eq!(office.admit(now, ip("10.2.0.1")), Err(Refusal::NotFromHere));
        assert_eq!(
            office.admit(now, None),
            Err(Refusal::NotFromHere),
            "no address: refused"
        );
    }
}
