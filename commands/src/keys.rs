//! Making API keys in the format of [`domain::key_format`]; only their SHA-256 is ever stored.

use domain::key_format::{PREFIX_ALPHABET, PREFIX_LEN, SECRET_BYTES};
pub use domain::key_format::{hash, prefix_of};

/// A freshly made key: the whole key (shown once) and what may be stored.
pub struct NewKey {
    pub key: String,
    pub prefix: String,
    pub hash: String,
}

impl std::fmt::Debug for NewKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewKey").field("prefix", &self.prefix).finish_non_exhaustive()
    }
}

/// Makes a key from the operating system's random source.
pub fn generate() -> NewKey {
    let mut random = [0u8; PREFIX_LEN + SECRET_BYTES];
    getrandom::fill(&mut random).expect("the operating system provides randomness");
    // 256 is not a multiple of 36: the slight bias of `% 36` costs the prefix well under one bit,
    // and the prefix is not the secret.
    let prefix: String =
        random[..PREFIX_LEN].iter().map(|b| PREFIX_ALPHABET[*b as usize % PREFIX_ALPHABET.len()] as char).collect();
    let key = format!("ffk_{prefix}_{}", hex::encode(&random[PREFIX_LEN..]));
    let hash = hash(&key);
    NewKey { key, prefix, hash }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_parse_and_differ() {
        let (a, b) = (generate(), generate());
        assert_ne!(a.key, b.key);
        assert_eq!(prefix_of(&a.key), Some(a.prefix.as_str()));
        assert_eq!(hash(&a.key), a.hash);
        assert!(!format!("{a:?}").contains(&a.key), "Debug never shows the key");
        for bad in ["", "ffk_", "ffk_short_abc", "xyz_abcdefghijkl_00", &a.key.replace("ffk_", "ffx_")] {
            assert_eq!(prefix_of(bad), None, "{bad}");
        }
    }
}
