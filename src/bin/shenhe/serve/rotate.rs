//! `shenhe serve key rotate`: a new key under a name already in the config file, the old
//! one kept valid for a grace period through its `expires`. The file is edited in place
//! (comments and layout kept), checked as the service would check it, and replaced in one
//! step. The service takes the change at its next reload (SIGHUP, `POST /admin/reload`) or
//! start, and records it in the audit chain then.

use std::path::Path;

use anyhow::{bail, Context};
use jiff::{SignedDuration, Timestamp};
use toml_edit::{value, DocumentMut, Item, Table};

use super::config::ServerConfig;

/// What a rotation did.
pub struct Rotated {
    /// The new key, to hand to its user (shown once).
    pub key: String,
    /// Until when the old key or keys still work.
    pub until: Timestamp,
    /// How many old keys of the name were given that end.
    pub old: usize,
}

/// A duration such as "24h", "90m" or "0s"; not negative.
pub fn grace(text: &str) -> anyhow::Result<SignedDuration> {
    let d: SignedDuration = text.trim().parse().map_err(|e| {
        anyhow::anyhow!("--grace {text:?}: not a duration such as 24h, 90m or 0s: {e}")
    })?;
    if d.is_negative() {
        bail!("--grace {text:?}: a grace period cannot be negative");
    }
    Ok(d)
}

/// An RFC 3339 time to the second, in UTC.
fn rfc3339(t: Timestamp) -> String {
    Timestamp::from_second(t.as_second())
        .unwrap_or(t)
        .to_string()
}

/// Rotates the key `name` in the config at `path`: every key of that name that has not
/// expired expires at `now + grace` at the latest, and a new key with the same roles,
/// rate limit, `allow_from` and end of validity is added after them.
pub fn rotate(
    path: &Path,
    name: &str,
    grace: SignedDuration,
    now: Timestamp,
) -> anyhow::Result<Rotated> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut doc: DocumentMut = text
        .parse()
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let until = now
        .checked_add(grace)
        .with_context(|| format!("--grace {grace}: too far ahead"))?;
    let Some(keys) = doc
        .get_mut("server")
        .and_then(|s| s.get_mut("keys"))
        .and_then(Item::as_array_of_tables_mut)
    else {
        bail!(
            "{}: no [[server.keys]] blocks (keys written as an inline array are not edited: rotate those by hand)",
            path.display()
        );
    };
    let mut names = Vec::new();
    let mut template: Option<Table> = None;
    let mut old = 0;
    for (i, table) in keys.iter_mut().enumerate() {
        let this = table.get("name").and_then(Item::as_str).unwrap_or("");
        names.push(this.to_owned());
        if this != name {
            continue;
        }
        let expires = match table.get("expires").and_then(Item::as_str) {
            None => None,
            Some(e) => Some(e.parse::<Timestamp>().map_err(|err| {
                anyhow::anyhow!(
                    "{}: key {name:?} (block {}): expires = {e:?} is not an RFC 3339 time: {err}",
                    path.display(),
                    i + 1
                )
            })?),
        };
        if expires.is_some_and(|e| e <= now) {
            continue;
        }
        template = Some(table.clone());
        let ends = expires.map_or(until, |e| e.min(until));
        table["expires"] = value(rfc3339(ends));
        old += 1;
    }
    let Some(mut new) = template else {
        if names.iter().any(|n| n == name) {
            bail!("every key named {name:?} in {} has expired: a rotation keeps a working key working for a while; make a new one with `shenhe serve key new`", path.display());
        }
        bail!(
            "{}: no key named {name:?} (the keys are: {})",
            path.display(),
            names.join(", ")
        );
    };
    let (key, digest) = super::auth::fresh_key()?;
    // Cloned before its end was moved: the old key's own `expires`, if it had one, stays
    // the new key's (a rotation never extends a credential).
    new["sha256"] = value(digest);
    new.set_position(None);
    new.decor_mut().clear();
    keys.push(new);
    let edited = doc.to_string();
    // What the service will read: refused here rather than at its next reload.
    let config = ServerConfig::parse(path, &edited)
        .and_then(|c| c.check().map(|_| c))
        .with_context(|| {
            format!(
                "the edited {} would not load, so it was not written",
                path.display()
            )
        })?;
    if config.keys.iter().filter(|k| k.name == name).count() < 2 {
        bail!(
            "{}: the edit did not take (is the config laid out unusually?): rotate by hand",
            path.display()
        );
    }
    replace(path, edited.as_bytes())?;
    Ok(Rotated { key, until, old })
}

/// Writes `bytes` over `path` in one step, keeping its permissions: a new file beside it,
/// synced, renamed over it.
fn replace(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let mode = std::fs::metadata(path)
        .with_context(|| format!("cannot read {}", path.display()))?
        .permissions()
        .mode();
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode & 0o777)
        .open(&tmp)
        .and_then(|mut f| {
            f.write_all(bytes)?;
            f.sync_all()
        })
        .and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("cannot write {}", path.display()));
    }
    Ok(())
}
