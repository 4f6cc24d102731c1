//! The format of API keys, `ffk_<prefix>_<secret>`, and the rule that admits one, shared by every
//! service that authenticates them. The prefix (12 lowercase letters and digits) finds the key;
//! the secret (48 hex digits, 192 random bits) proves it. Only the SHA-256 of the whole key is
//! ever stored.

use chrono::{DateTime, Utc};
use event_schemas::types::Role;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use uuid::Uuid;

/// The characters a prefix is made of.
pub const PREFIX_ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
pub const PREFIX_LEN: usize = 12;
/// Random bytes in the secret (written as twice as many hex digits).
pub const SECRET_BYTES: usize = 24;

/// The hex SHA-256 of a key: what the security index stores.
pub fn hash(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// The prefix of a well-formed key, or `None`.
pub fn prefix_of(key: &str) -> Option<&str> {
    let rest = key.strip_prefix("ffk_")?;
    let (prefix, secret) = rest.split_once('_')?;
    let prefix_ok = prefix.len() == PREFIX_LEN && prefix.bytes().all(|b| PREFIX_ALPHABET.contains(&b));
    let secret_ok = secret.len() == SECRET_BYTES * 2 && secret.bytes().all(|b| b.is_ascii_hexdigit());
    (prefix_ok && secret_ok).then_some(prefix)
}

/// The key in an `Authorization: Bearer <key>` header value.
pub fn bearer_token(authorization: &str) -> Option<&str> {
    authorization.strip_prefix("Bearer ").or_else(|| authorization.strip_prefix("bearer ")).map(str::trim)
}

/// What the security index holds of a key, as read to authenticate a request.
#[derive(Debug, Clone)]
pub struct KeyRecord {
    pub key_id: Uuid,
    pub workspace_id: Uuid,
    pub key_hash: String,
    pub role: Role,
    /// The member the key acts for, if any.
    pub user_id: Option<Uuid>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    /// That member's role; `None` if the key acts for nobody or the member was removed.
    pub member_role: Option<Role>,
}

impl KeyRecord {
    /// What the key may do.
    pub fn grant(&self) -> crate::Grant {
        crate::Grant { role: self.role, member_role: self.member_role }
    }

    /// Whether `presented` is this key and may be used at `now`: the hashes match (compared in
    /// constant time), the key is neither revoked nor expired, and a key acting for a member dies
    /// with the membership.
    pub fn admits(&self, presented: &str, now: DateTime<Utc>) -> bool {
        let matches: bool = hash(presented).as_bytes().ct_eq(self.key_hash.as_bytes()).into();
        let live = self.revoked_at.is_none() && self.expires_at.is_none_or(|at| at > now);
        let member_ok = self.user_id.is_none() || self.member_role.is_some();
        matches && live && member_ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_well_formed_keys_have_a_prefix() {
        let good = format!("ffk_abcdefghij12_{}", "0a".repeat(SECRET_BYTES));
        assert_eq!(prefix_of(&good), Some("abcdefghij12"));
        assert_eq!(hash(&good).len(), 64);
        let bad_secret = format!("ffk_abcdefghij12_{}", "zz".repeat(SECRET_BYTES));
        for bad in ["", "ffk_", "ffk_short_abc", "xyz_abcdefghijkl_00", &good.replace("ffk_", "ffx_"), &bad_secret] {
            assert_eq!(prefix_of(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_record_admits_only_its_live_key() {
        let key = format!("ffk_abcdefghij12_{}", "0a".repeat(SECRET_BYTES));
        let now = Utc::now();
        let record = KeyRecord {
            key_id: Uuid::nil(),
            workspace_id: Uuid::nil(),
            key_hash: hash(&key),
            role: Role::Admin,
            user_id: None,
            expires_at: None,
            revoked_at: None,
            member_role: None,
        };
        assert!(record.admits(&key, now));
        assert!(!record.admits(&key.replace("0a", "0b"), now));
        assert!(!KeyRecord { revoked_at: Some(now), ..record.clone() }.admits(&key, now));
        assert!(!KeyRecord { expires_at: Some(now), ..record.clone() }.admits(&key, now));
        assert!(KeyRecord { expires_at: Some(now + chrono::Duration::seconds(1)), ..record.clone() }.admits(&key, now));
        let for_member = KeyRecord { user_id: Some(Uuid::nil()), ..record.clone() };
        assert!(!for_member.admits(&key, now), "the member is gone");
        assert!(KeyRecord { member_role: Some(Role::Viewer), ..for_member }.admits(&key, now));
        assert_eq!(bearer_token("Bearer  abc "), Some("abc"));
        assert_eq!(bearer_token("Basic abc"), None);
    }
}
