//! Payloads of the `apikey` category. The key itself never appears in an event: only its
//! prefix (to find it) and its SHA-256 hash (to check it).

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::types::Role;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ApiKeyIssued {
    pub key_id: Uuid,
    pub name: String,
    pub role: Role,
    pub prefix: String,
    /// Hex SHA-256 of the whole key.
    pub key_hash: String,
    #[serde(default)]
    pub expires_at: Option<DateTime<Utc>>,
    /// The member the key acts for: it never has more permissions than that member, and it stops
    /// working when the member is removed.
    #[serde(default)]
    pub user_id: Option<Uuid>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ApiKeyRotated {
    pub prefix: String,
    pub key_hash: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ApiKeyRevoked {}
