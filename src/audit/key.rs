//! The operator's key for the personal fields of audit records (XChaCha20-Poly1305, from
//! the RustCrypto `chacha20poly1305` crate: random 192-bit nonces, so no nonce bookkeeping).

use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::XChaCha20Poly1305;
use sha2::{Digest, Sha256};

use crate::error::{Error, ErrorKind, Result};

/// The environment variable holding the key (64 hex digits) when no key file is given.
pub const KEY_ENV: &str = "SHENHE_AUDIT_KEY";

/// Associated data of every ciphertext: binds it to this use.
const AAD: &[u8] = b"shenhe-audit-personal-v1";
/// Prefix of an encrypted field as stored.
const PREFIX: &str = "enc:v1:";

/// A 256-bit key. Its bytes are not printed by `Debug`.
#[derive(Clone)]
pub struct AuditKey([u8; 32]);

impl std::fmt::Debug for AuditKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuditKey(…)")
    }
}

impl AuditKey {
    /// A key from 64 hex digits (surrounding whitespace ignored).
    pub fn from_hex(text: &str) -> Result<AuditKey> {
        let bytes = hex::decode(text.trim()).map_err(|e| {
            Error::new(
                ErrorKind::AuditKey,
                format!("the audit key must be 64 hex digits: {e}"),
            )
        })?;
        let key: [u8; 32] = bytes.try_into().map_err(|b: Vec<u8>| {
            Error::new(
                ErrorKind::AuditKey,
                format!(
                    "the audit key must be 32 bytes (64 hex digits), not {}",
                    b.len()
                ),
            )
        })?;
        Ok(AuditKey(key))
    }

    /// A key from a file: 64 hex digits, or exactly 32 raw bytes. A file that others may
    /// read (any group or other permission bit) is refused.
    pub fn from_file(path: &std::path::Path) -> Result<AuditKey> {
        let bytes = std::fs::read(path).map_err(|e| {
            Error::new(
                ErrorKind::AuditKey,
                format!("cannot read the audit key file {}: {e}", path.display()),
            )
        })?;
        crate::fsx::check_private_key_file(path)
            .map_err(|e| Error::new(ErrorKind::AuditKey, format!("audit key file {e}")))?;
        if let Ok(key) = <[u8; 32]>::try_from(bytes.as_slice()) {
            return Ok(AuditKey(key));
        }
        let text = String::from_utf8(bytes).map_err(|_| {
            Error::new(
                ErrorKind::AuditKey,
                format!("{}: neither 32 raw bytes nor 64 hex digits", path.display()),
            )
        })?;
        AuditKey::from_hex(&text)
            .map_err(|e| Error::new(ErrorKind::AuditKey, format!("{}: {e}", path.display())))
    }

    /// The key named by `SHENHE_AUDIT_KEY`, if set.
    pub fn from_env() -> Result<Option<AuditKey>> {
        match std::env::var(KEY_ENV) {
            Ok(v) if !v.trim().is_empty() => AuditKey::from_hex(&v)
                .map(Some)
                .map_err(|e| Error::new(ErrorKind::AuditKey, format!("{KEY_ENV}: {e}"))),
            _ => Ok(None),
        }
    }

    /// Writes the key (64 hex digits and a newline) to a new file readable by its owner
    /// only; refuses a path where anything already is.
    pub fn write_new_file(&self, path: &std::path::Path) -> std::io::Result<()> {
        use std::io::Write;
        let mut f = crate::fsx::create_private(path)?;
        writeln!(f, "{}", self.to_hex())?;
        f.sync_all()
    }

    /// A fresh random key (for `shenhe audit keygen` and tests).
    pub fn generate() -> AuditKey {
        AuditKey(XChaCha20Poly1305::generate_key(&mut OsRng).into())
    }

    /// The key as 64 hex digits.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// A value stored with the records that tells whether a key is the store's key,
    /// without revealing it.
    pub(crate) fn check_value(&self) -> String {
        let mut h = Sha256::new();
        h.update(b"shenhe-audit-key-check-v1");
        h.update(self.0);
        hex::encode(h.finalize())
    }

    /// `plain` encrypted, as stored: `enc:v1:` + hex(nonce ‖ ciphertext).
    pub(crate) fn seal(&self, plain: &str) -> String {
        let cipher = XChaCha20Poly1305::new((&self.0).into());
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let ct = cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plain.as_bytes(),
                    aad: AAD,
                },
            )
            .expect("encryption of a bounded message does not fail");
        let mut out = String::with_capacity(PREFIX.len() + 2 * (nonce.len() + ct.len()));
        out.push_str(PREFIX);
        push_hex(&mut out, &nonce);
        push_hex(&mut out, &ct);
        out
    }

    /// The plaintext of a sealed value; `None` when it is not one this key sealed.
    pub(crate) fn open(&self, sealed: &str) -> Option<String> {
        let bytes = hex::decode(sealed.strip_prefix(PREFIX)?).ok()?;
        if bytes.len() < 24 {
            return None;
        }
        let (nonce, ct) = bytes.split_at(24);
        let cipher = XChaCha20Poly1305::new((&self.0).into());
        let plain = cipher
            .decrypt(nonce.into(), Payload { msg: ct, aad: AAD })
            .ok()?;
        String::from_utf8(plain).ok()
    }
}

/// Appends `bytes` in lowercase hex (as `hex::encode`, without its per-char collecting: a
/// third of sealing a record's personal fields went there).
fn push_hex(out: &mut String, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    out.extend(bytes.iter().flat_map(|b| {
        [
            DIGITS[usize::from(b >> 4)] as char,
            DIGITS[usize::from(b & 15)] as char,
        ]
    }));
}

/// Whether a stored value is sealed.
pub(crate) fn is_sealed(value: &str) -> bool {
    value.starts_with(PREFIX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_with_their_key() {
        let k = AuditKey::generate();
        let s = k.seal(r#"{"ip":"203.0.113.1"}"#);
        assert!(is_sealed(&s) && !s.contains("203.0.113.1"));
        assert_eq!(k.open(&s).as_deref(), Some(r#"{"ip":"203.0.113.1"}"#));
        assert_eq!(AuditKey::generate().open(&s), None);
        assert_ne!(k.seal("x"), k.seal("x"), "fresh nonce each time");
    }

    #[test]
    fn sealed_values_are_spelled_as_before() {
        // Stores written before keep opening: lowercase hex of nonce and ciphertext.
        let bytes: Vec<u8> = (0..=255).collect();
        let mut out = String::new();
        push_hex(&mut out, &bytes);
        assert_eq!(out, hex::encode(&bytes));
        let k = AuditKey::generate();
        let s = k.seal("{}");
        let digits = s.strip_prefix(PREFIX).unwrap();
        assert_eq!(digits.len(), 2 * (24 + 2 + 16));
        assert_eq!(hex::encode(hex::decode(digits).unwrap()), digits);
    }

    #[test]
    fn keys_parse_from_hex_and_say_what_is_wrong() {
        let k = AuditKey::generate();
        assert_eq!(AuditKey::from_hex(&k.to_hex()).unwrap().0, k.0);
        let e = AuditKey::from_hex("abcd").unwrap_err();
        assert!(e.to_string().contains("32 bytes"), "{e}");
        let e = AuditKey::from_hex("zz").unwrap_err();
        assert!(e.to_string().contains("64 hex digits"), "{e}");
    }
}
