//! Relay cursor connections: argument checks shared by every list, and in-memory paging for the
//! short per-workspace lists (members, teams, API keys), whose size the plan quotas bound.

use async_graphql::OutputType;
use async_graphql::connection::{Connection, CursorType, Edge, OpaqueCursor};

use crate::error::{QueryError, QueryResult};

/// The most items one page may hold, and the size of a page when neither `first` nor `last` is set.
pub const MAX_PAGE: usize = 100;
pub const DEFAULT_PAGE: usize = 20;

/// The four Relay arguments of a list field, checked: at most one of `first` and `last`, neither
/// negative nor above [`MAX_PAGE`].
#[derive(Debug, Clone, Default)]
pub struct PageArgs {
    pub after: Option<String>,
    pub before: Option<String>,
    pub first: Option<i32>,
    pub last: Option<i32>,
}

/// Which way a page is read, and how many items it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reading {
    /// The first `n` items after `after` (and before `before`).
    Forwards(usize),
    /// The last `n` items before `before` (and after `after`).
    Backwards(usize),
}

impl Reading {
    pub fn size(self) -> usize {
        match self {
            Reading::Forwards(n) | Reading::Backwards(n) => n,
        }
    }
}

impl PageArgs {
    pub fn new(after: Option<String>, before: Option<String>, first: Option<i32>, last: Option<i32>) -> Self {
        Self { after, before, first, last }
    }

    pub fn reading(&self) -> Result<Reading, QueryError> {
        let size = |name: &str, n: i32| {
            usize::try_from(n)
                .ok()
                .filter(|n| *n <= MAX_PAGE)
                .ok_or_else(|| QueryError::BadInput(format!("`{name}` must be between 0 and {MAX_PAGE}, got {n}")))
        };
        match (self.first, self.last) {
            (Some(_), Some(_)) => Err(QueryError::BadInput("pass `first` or `last`, not both".into())),
            (Some(n), None) => Ok(Reading::Forwards(size("first", n)?)),
            (None, Some(n)) => Ok(Reading::Backwards(size("last", n)?)),
            (None, None) => Ok(Reading::Forwards(DEFAULT_PAGE)),
        }
    }

    /// The decoded `after` and `before` cursors, of a list whose cursors are [`OpaqueCursor`]s.
    pub fn cursors<C: serde::de::DeserializeOwned + serde::Serialize + Send + Sync>(
        &self,
    ) -> Result<(Option<C>, Option<C>), QueryError> {
        let (after, before) = self.cursors_of::<OpaqueCursor<C>>()?;
        Ok((after.map(|c| c.0), before.map(|c| c.0)))
    }

    /// The decoded `after` and `before` cursors, of a list with cursors of its own kind.
    pub fn cursors_of<C: CursorType>(&self) -> Result<(Option<C>, Option<C>), QueryError> {
        Ok((decode(self.after.as_deref(), "after")?, decode(self.before.as_deref(), "before")?))
    }
}

fn decode<C: CursorType>(raw: Option<&str>, name: &str) -> Result<Option<C>, QueryError> {
    raw.map(|raw| {
        C::decode_cursor(raw).map_err(|_| QueryError::BadInput(format!("`{name}` is not a cursor this list gave out")))
    })
    .transpose()
}

/// A page of rows read with `reading.size() + 1` as the limit, in reading order: the extra row
/// only tells whether there is more. `had_after`/`had_before` say whether the list continues
/// beyond the cursors the client passed (Relay allows that approximation).
pub fn connection<C, T>(
    mut rows: Vec<T>,
    reading: Reading,
    had_after: bool,
    had_before: bool,
    cursor: impl Fn(&T) -> C,
) -> Connection<C, T>
where
    C: CursorType + Send + Sync,
    T: OutputType,
{
    let more = rows.len() > reading.size();
    rows.truncate(reading.size());
    let (has_previous, has_next) = match reading {
        Reading::Forwards(_) => (had_after, more),
        Reading::Backwards(_) => {
            rows.reverse();
            (more, had_before)
        }
    };
    let mut connection = Connection::new(has_previous, has_next);
    connection.edges.extend(rows.into_iter().map(|row| Edge::new(cursor(&row), row)));
    connection
}

/// Pages a whole list by `key` (unique per item), in ascending byte order of the key.
pub fn in_memory<T: OutputType>(
    mut items: Vec<T>,
    args: &PageArgs,
    key: impl Fn(&T) -> String,
) -> QueryResult<Connection<OpaqueCursor<String>, T>> {
    let reading = args.reading()?;
    let (after, before): (Option<String>, Option<String>) = args.cursors()?;
    items.sort_by_cached_key(|item| key(item));
    let mut items: Vec<T> = items
        .into_iter()
        .filter(|item| after.as_ref().is_none_or(|a| key(item) > *a) && before.as_ref().is_none_or(|b| key(item) < *b))
        .collect();
    let had_after = after.is_some();
    let had_before = before.is_some();
    if let Reading::Backwards(n) = reading {
        let skip = items.len().saturating_sub(n + 1);
        items.drain(..skip);
        items.reverse();
    }
    Ok(connection(items, reading, had_after, had_before, |item| OpaqueCursor(key(item))))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(args: PageArgs) -> (Vec<String>, bool, bool) {
        let items: Vec<String> = ["a", "b", "c", "d", "e"].iter().map(|s| s.to_string()).collect();
        let page = in_memory(items, &args, |s| s.clone()).unwrap();
        let has = (page.has_previous_page, page.has_next_page);
        (page.edges.into_iter().map(|e| e.node).collect(), has.0, has.1)
    }

    fn cursor(key: &str) -> Option<String> {
        use async_graphql::connection::CursorType;
        Some(OpaqueCursor(key.to_string()).encode_cursor())
    }

    #[test]
    fn pages_forwards_and_backwards() {
        assert_eq!(keys(PageArgs::new(None, None, Some(2), None)), (vec!["a".into(), "b".into()], false, true));
        assert_eq!(keys(PageArgs::new(cursor("b"), None, Some(2), None)), (vec!["c".into(), "d".into()], true, true));
        assert_eq!(keys(PageArgs::new(cursor("c"), None, Some(5), None)), (vec!["d".into(), "e".into()], true, false));
        assert_eq!(keys(PageArgs::new(None, None, None, Some(2))), (vec!["d".into(), "e".into()], true, false));
        assert_eq!(keys(PageArgs::new(None, cursor("d"), None, Some(2))), (vec!["b".into(), "c".into()], true, true));
        assert_eq!(keys(PageArgs::new(None, cursor("c"), None, Some(5))), (vec!["a".into(), "b".into()], false, true));
    }

    #[test]
    fn rejects_bad_arguments() {
        assert!(PageArgs::new(None, None, Some(1), Some(1)).reading().is_err());
        assert!(PageArgs::new(None, None, Some(-1), None).reading().is_err());
        assert!(PageArgs::new(None, None, Some(101), None).reading().is_err());
        assert!(PageArgs::new(Some("garbage".into()), None, None, None).cursors::<String>().is_err());
    }
}
