//! Running a workload from concurrent clients for a fixed time and summarising it.

use std::future::Future;
use std::time::{Duration, Instant};

/// One client's repeated operation; returns how many events (rows) it wrote.
pub trait Workload: Send + 'static {
    fn once(&mut self) -> impl Future<Output = anyhow::Result<u64>> + Send;
}

#[derive(Debug, Clone)]
pub struct Summary {
    pub events: u64,
    pub elapsed: Duration,
    pub latencies: Vec<Duration>,
}

impl Summary {
    pub fn events_per_second(&self) -> f64 {
        self.events as f64 / self.elapsed.as_secs_f64()
    }

    /// Two measurements of the same case as one: their operations and their times added up.
    pub fn merge(mut self, other: Summary) -> Summary {
        self.events += other.events;
        self.elapsed += other.elapsed;
        self.latencies.extend(other.latencies);
        self.latencies.sort_unstable();
        self
    }

    /// The latency below which `quantile` of the operations completed, in milliseconds.
    pub fn percentile_ms(&self, quantile: f64) -> f64 {
        if self.latencies.is_empty() {
            return f64::NAN;
        }
        let index = ((self.latencies.len() as f64 - 1.0) * quantile).round() as usize;
        self.latencies[index].as_secs_f64() * 1_000.0
    }
}

/// Runs one workload per client, unmeasured for `warmup`, then measured for `duration`.
pub async fn measure<W: Workload>(clients: Vec<W>, warmup: Duration, duration: Duration) -> anyhow::Result<Summary> {
    let start = Instant::now();
    let measured_from = start + warmup;
    let deadline = measured_from + duration;
    let tasks: Vec<_> = clients
        .into_iter()
        .map(|mut client| {
            tokio::spawn(async move {
                let (mut events, mut latencies) = (0u64, Vec::new());
                loop {
                    let began = Instant::now();
                    if began >= deadline {
                        break;
                    }
                    let written = client.once().await?;
                    if began >= measured_from {
                        latencies.push(began.elapsed());
                        events += written;
                    }
                }
                anyhow::Ok((events, latencies))
            })
        })
        .collect();
    let mut summary = Summary { events: 0, elapsed: Duration::ZERO, latencies: Vec::new() };
    for task in tasks {
        let (events, latencies) = task.await??;
        summary.events += events;
        summary.latencies.extend(latencies);
    }
    // Operations that began before the deadline count, so the clock stops when the last ends.
    summary.elapsed = measured_from.elapsed();
    summary.latencies.sort_unstable();
    Ok(summary)
}

/// How many rounds [`alternating`] (and (b) of `bench pipeline`) measures each side in.
pub(super) const ROUNDS: u32 = 3;

/// Measures two workloads in [`ROUNDS`] alternating rounds (`first`, `second`, `first`, …), each
/// round `duration / ROUNDS` long after its own warm-up, and adds each side's rounds up. Drift on
/// the shared machine (autovacuum, checkpoints, the server's caches) then falls on both sides
/// alike: single back-to-back runs drifted by tens of per cent on one side alone.
pub async fn alternating<A: Workload, B: Workload>(
    warmup: Duration,
    duration: Duration,
    mut first: impl FnMut() -> Vec<A>,
    mut second: impl FnMut() -> Vec<B>,
) -> anyhow::Result<(Summary, Summary)> {
    let slice = duration / ROUNDS;
    let mut a = measure(first(), warmup, slice).await?;
    let mut b = measure(second(), warmup, slice).await?;
    for _ in 1..ROUNDS {
        a = a.merge(measure(first(), warmup, slice).await?);
        b = b.merge(measure(second(), warmup, slice).await?);
    }
    Ok((a, b))
}
