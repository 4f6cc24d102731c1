//! The tokio runtime every role of the process runs on (and the benchmarks' query API, so that it
//! is measured as it serves).

use tokio::runtime::{Builder, Runtime};

/// Scheduler ticks (task polls) between two looks at I/O and timers while tasks are ready to run.
/// tokio's default, 61, suits tasks that poll quickly; a GraphQL request's polls take up to a
/// few hundred microseconds (parsing, validating, folding, writing JSON), so with every worker
/// busy, the answer PostgreSQL had already sent a request could wait tens of milliseconds to be
/// noticed. Looking more often costs a non-blocking `epoll_wait` per look.
const EVENT_INTERVAL: u32 = 11;

/// A multi-threaded runtime, one worker per core, with I/O and timers, its threads named `name`.
pub fn build(name: &str) -> std::io::Result<Runtime> {
    Builder::new_multi_thread().event_interval(EVENT_INTERVAL).enable_all().thread_name(name).build()
}
