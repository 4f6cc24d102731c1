//! The format of API keys, `ffk_<prefix>_<secret>`, shared by every service that authenticates
//! them. The prefix (12 lowercase letters and digits) finds the key; the secret (48 hex digits,
//! 192 random bits) proves it. Only the SHA-256 of the whole key is ever stored.

use sha2::{Digest, Sha256};

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
}
