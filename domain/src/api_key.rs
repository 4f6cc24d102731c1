//! The API key aggregate. The domain never sees a key, only its prefix and SHA-256 hash; making
//! keys and checking them belongs to the command side.

use chrono::{DateTime, Utc};
use event_schemas::ApiKeyEvent;
use event_schemas::api_key::*;
use event_schemas::types::Role;
use uuid::Uuid;

use crate::aggregate::Aggregate;
use crate::permissions::can_grant;
use crate::validation::{KeyHash, KeyName, KeyPrefix};

/// The public half of a freshly made key.
#[derive(Debug, Clone, PartialEq)]
pub struct KeySecret {
    pub prefix: KeyPrefix,
    pub hash: KeyHash,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ApiKeyCommand {
    /// `issuer_role` is the role of whoever issues the key; `now` is when, so that the
    /// decision stays pure.
    Issue {
        key_id: Uuid,
        name: KeyName,
        role: Role,
        secret: KeySecret,
        expires_at: Option<DateTime<Utc>>,
        /// The member the key acts for, if any (checked to be a member by the caller).
        user_id: Option<Uuid>,
        issuer_role: Role,
        now: DateTime<Utc>,
    },
    Rotate {
        secret: KeySecret,
    },
    Revoke,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiKeyError {
    #[error("the API key already exists")]
    AlreadyExists,
    #[error("the API key does not exist")]
    NotFound,
    #[error("the API key is revoked")]
    Revoked,
    #[error("a {issuer:?} cannot issue a key with the {requested:?} role")]
    RoleExceedsIssuer { issuer: Role, requested: Role },
    #[error("expires_at must be in the future")]
    ExpiryInPast,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ApiKey {
    pub version: i64,
    pub id: Option<Uuid>,
    pub name: String,
    pub role: Option<Role>,
    pub prefix: String,
    pub key_hash: String,
    pub expires_at: Option<DateTime<Utc>>,
    pub user_id: Option<Uuid>,
    pub revoked: bool,
}

impl Aggregate for ApiKey {
    type Command = ApiKeyCommand;
    type Event = ApiKeyEvent;
    type Error = ApiKeyError;

    fn decide(&self, command: &ApiKeyCommand) -> Result<Vec<ApiKeyEvent>, ApiKeyError> {
        let event: ApiKeyEvent = match (self.id, command) {
            (None, ApiKeyCommand::Issue { key_id, name, role, secret, expires_at, user_id, issuer_role, now }) => {
                if !can_grant(*issuer_role, *role) {
                    return Err(ApiKeyError::RoleExceedsIssuer { issuer: *issuer_role, requested: *role });
                }
                if expires_at.is_some_and(|at| at <= *now) {
                    return Err(ApiKeyError::ExpiryInPast);
                }
                ApiKeyIssued {
                    key_id: *key_id,
                    name: name.as_str().to_owned(),
                    role: *role,
                    prefix: secret.prefix.clone().into_inner(),
                    key_hash: secret.hash.clone().into_inner(),
                    expires_at: *expires_at,
                    user_id: *user_id,
                }
                .into()
            }
            (None, _) => return Err(ApiKeyError::NotFound),
            (Some(_), ApiKeyCommand::Issue { .. }) => return Err(ApiKeyError::AlreadyExists),
            (Some(_), _) if self.revoked => return Err(ApiKeyError::Revoked),
            (Some(_), ApiKeyCommand::Rotate { secret }) => {
                ApiKeyRotated { prefix: secret.prefix.clone().into_inner(), key_hash: secret.hash.clone().into_inner() }
                    .into()
            }
            (Some(_), ApiKeyCommand::Revoke) => ApiKeyRevoked {}.into(),
        };
        Ok(vec![event])
    }

    fn evolve(&mut self, event: &ApiKeyEvent) {
        self.version += 1;
        match event {
            ApiKeyEvent::Issued(e) => {
                self.id = Some(e.key_id);
                self.name = e.name.clone();
                self.role = Some(e.role);
                self.prefix = e.prefix.clone();
                self.key_hash = e.key_hash.clone();
                self.expires_at = e.expires_at;
                self.user_id = e.user_id;
            }
            ApiKeyEvent::Rotated(e) => {
                self.prefix = e.prefix.clone();
                self.key_hash = e.key_hash.clone();
            }
            ApiKeyEvent::Revoked(_) => self.revoked = true,
        }
    }

    fn version(&self) -> i64 {
        self.version
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::fold;

    const KEY: Uuid = Uuid::from_u128(7);

    fn secret(n: u8) -> KeySecret {
        KeySecret {
            prefix: KeyPrefix::parse(&format!("abcdef{n:02}")).unwrap(),
            hash: KeyHash::parse(&format!("{n:02x}").repeat(32)).unwrap(),
        }
    }

    fn issue(role: Role, issuer_role: Role) -> ApiKeyCommand {
        ApiKeyCommand::Issue {
            key_id: KEY,
            name: KeyName::parse("ci").unwrap(),
            role,
            secret: secret(1),
            expires_at: None,
            user_id: None,
            issuer_role,
            now: Utc::now(),
        }
    }

    fn issued() -> ApiKeyEvent {
        ApiKeyIssued {
            key_id: KEY,
            name: "ci".into(),
            role: Role::Developer,
            prefix: "abcdef01".into(),
            key_hash: "01".repeat(32),
            expires_at: None,
            user_id: None,
        }
        .into()
    }

    #[test]
    fn an_admin_issues_a_developer_key() {
        assert_eq!(ApiKey::default().decide(&issue(Role::Developer, Role::Admin)), Ok(vec![issued()]));
    }

    #[test]
    fn a_key_never_gets_more_than_its_issuer() {
        assert_eq!(
            ApiKey::default().decide(&issue(Role::Admin, Role::Developer)),
            Err(ApiKeyError::RoleExceedsIssuer { issuer: Role::Developer, requested: Role::Admin })
        );
    }

    #[test]
    fn expiry_must_be_ahead() {
        let now = Utc::now();
        let ApiKeyCommand::Issue { key_id, name, role, secret, issuer_role, .. } = issue(Role::Viewer, Role::Admin)
        else {
            unreachable!()
        };
        let command =
            ApiKeyCommand::Issue { key_id, name, role, secret, expires_at: Some(now), user_id: None, issuer_role, now };
        assert_eq!(ApiKey::default().decide(&command), Err(ApiKeyError::ExpiryInPast));
    }

    #[test]
    fn rotation_replaces_the_hash_and_revocation_is_final() {
        let rotated: ApiKeyEvent = ApiKeyRotated { prefix: "abcdef02".into(), key_hash: "02".repeat(32) }.into();
        assert_eq!(
            fold::<ApiKey>(&[issued()]).decide(&ApiKeyCommand::Rotate { secret: secret(2) }),
            Ok(vec![rotated.clone()])
        );
        let state = fold::<ApiKey>(&[issued(), rotated]);
        assert_eq!(state.key_hash, "02".repeat(32));

        let revoked = fold::<ApiKey>(&[issued(), ApiKeyRevoked {}.into()]);
        assert_eq!(revoked.decide(&ApiKeyCommand::Revoke), Err(ApiKeyError::Revoked));
        assert_eq!(revoked.decide(&ApiKeyCommand::Rotate { secret: secret(3) }), Err(ApiKeyError::Revoked));
        assert_eq!(ApiKey::default().decide(&ApiKeyCommand::Revoke), Err(ApiKeyError::NotFound));
    }
}
