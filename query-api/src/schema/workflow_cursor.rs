//! The cursor of the workflow list: where a workflow sits in one ordering, in a few bytes.
//!
//! Every edge of a page carries one, so its size and the time to write it count: a generic
//! `OpaqueCursor` (JSON of the whole sort key, then base64) made the cursors longer than the
//! workflows they point at, and encoding them a twentieth of the query API's CPU on the list
//! benchmark. This one is base64url (no padding) of
//!
//! `version (1) | ordering (1) | workflow id (16) | key`
//!
//! where the key is the update time in microseconds (8, big-endian; PostgreSQL keeps no finer)
//! or the name's UTF-8 bytes.

use async_graphql::connection::CursorType;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::workflows::{OrderDirection, WorkflowOrder, WorkflowOrderField};

const VERSION: u8 = 1;

/// Where a workflow sits in one ordering: a cursor is only valid for the ordering it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkflowCursor {
    pub direction: OrderDirection,
    pub key: SortKey,
    pub id: Uuid,
}

/// The value a workflow is ordered by.
#[derive(Debug, Clone, PartialEq)]
pub enum SortKey {
    Name(String),
    UpdatedAt(DateTime<Utc>),
}

impl WorkflowCursor {
    pub fn order(&self) -> WorkflowOrder {
        let field = match self.key {
            SortKey::Name(_) => WorkflowOrderField::Name,
            SortKey::UpdatedAt(_) => WorkflowOrderField::UpdatedAt,
        };
        WorkflowOrder { field, direction: self.direction }
    }
}

/// Why a string is not a workflow cursor (the caller names the argument).
#[derive(Debug)]
pub struct NotACursor;

impl std::fmt::Display for NotACursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("not a workflow cursor")
    }
}

impl CursorType for WorkflowCursor {
    type Error = NotACursor;

    fn decode_cursor(s: &str) -> Result<Self, NotACursor> {
        let bytes = URL_SAFE_NO_PAD.decode(s).map_err(|_| NotACursor)?;
        let [VERSION, ordering, rest @ ..] = bytes.as_slice() else { return Err(NotACursor) };
        let (id, key) = rest.split_first_chunk::<16>().ok_or(NotACursor)?;
        let direction = if ordering & 1 == 0 { OrderDirection::Asc } else { OrderDirection::Desc };
        let key = match ordering >> 1 {
            0 => SortKey::Name(String::from_utf8(key.to_vec()).map_err(|_| NotACursor)?),
            1 => {
                let micros = i64::from_be_bytes(key.try_into().map_err(|_| NotACursor)?);
                SortKey::UpdatedAt(DateTime::from_timestamp_micros(micros).ok_or(NotACursor)?)
            }
            _ => return Err(NotACursor),
        };
        Ok(Self { direction, key, id: Uuid::from_bytes(*id) })
    }

    fn encode_cursor(&self) -> String {
        let direction = match self.direction {
            OrderDirection::Asc => 0,
            OrderDirection::Desc => 1,
        };
        let mut bytes = Vec::with_capacity(26);
        match &self.key {
            SortKey::Name(name) => {
                bytes.extend([VERSION, direction]);
                bytes.extend_from_slice(self.id.as_bytes());
                bytes.extend_from_slice(name.as_bytes());
            }
            SortKey::UpdatedAt(at) => {
                bytes.extend([VERSION, 2 | direction]);
                bytes.extend_from_slice(self.id.as_bytes());
                bytes.extend_from_slice(&at.timestamp_micros().to_be_bytes());
            }
        }
        URL_SAFE_NO_PAD.encode(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(cursor: WorkflowCursor) -> WorkflowCursor {
        WorkflowCursor::decode_cursor(&cursor.encode_cursor()).unwrap()
    }

    #[test]
    fn decodes_what_it_encodes_for_every_ordering() {
        let id = Uuid::now_v7();
        let at = DateTime::from_timestamp_micros(1_796_000_000_123_456).unwrap();
        for direction in [OrderDirection::Asc, OrderDirection::Desc] {
            for key in [SortKey::UpdatedAt(at), SortKey::Name("Räksmörgås ✓".into()), SortKey::Name(String::new())]
            {
                let cursor = WorkflowCursor { direction, key, id };
                assert_eq!(round_trip(cursor.clone()), cursor);
            }
        }
        let cursor = WorkflowCursor { direction: OrderDirection::Desc, key: SortKey::UpdatedAt(at), id };
        assert_eq!(
            cursor.order(),
            WorkflowOrder { field: WorkflowOrderField::UpdatedAt, direction: OrderDirection::Desc }
        );
        // Short enough not to outweigh the workflow it points at.
        assert_eq!(cursor.encode_cursor().len(), 35);
    }

    #[test]
    fn refuses_what_it_did_not_make() {
        let id = Uuid::now_v7();
        let valid = WorkflowCursor { direction: OrderDirection::Asc, key: SortKey::UpdatedAt(Utc::now()), id };
        let mut bytes = URL_SAFE_NO_PAD.decode(valid.encode_cursor()).unwrap();
        let encode = |bytes: &[u8]| URL_SAFE_NO_PAD.encode(bytes);
        let mut cases = vec!["".to_owned(), "not base64!".to_owned(), encode(&bytes[..20]), encode(&[2, 2])];
        bytes[1] = 4; // an ordering that does not exist
        cases.push(encode(&bytes));
        bytes[1] = 0;
        bytes.extend([0xff, 0xfe]); // a name that is not UTF-8
        cases.push(encode(&bytes));
        // The JSON cursors of earlier releases.
        cases.push(encode(
            br#"{"field":"UpdatedAt","direction":"Desc","name":"a","updated_at":"2026-01-01T00:00:00Z"}"#,
        ));
        for case in cases {
            assert!(WorkflowCursor::decode_cursor(&case).is_err(), "{case:?} decoded");
        }
    }
}
