//! The projector's consumer context: where each partition it is assigned starts, and its lag.
//!
//! A partition starts at the offset PostgreSQL stored in the transaction that applied the record
//! before it (`projections.kafka_offsets`), not at the offset committed to Kafka: that one is
//! committed after PostgreSQL and can be lost or behind. A stored offset counts only under the
//! current broker epoch (`projections.broker_epoch`), which the relay bumps before it recreates
//! topics the broker lost: offsets into a lost topic mean nothing in its successor, and following
//! them would skip records. A partition with no offset under the current epoch starts at the
//! beginning (the version guard drops what was applied already).
//!
//! librdkafka calls `rebalance` synchronously while the consumer is polled, and the offsets must
//! be in the assignment it makes there, so they are read on a thread of its own, with its own
//! connection, and waited for.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, RebalanceProtocol};
use rdkafka::error::KafkaError;
use rdkafka::statistics::Statistics;
use rdkafka::types::{RDKafkaErrorCode, RDKafkaRespErr};
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use sqlx::Connection;
use sqlx::postgres::PgConnectOptions;

/// A partition: topic and number.
pub(super) type Partition = (String, i32);

pub(super) struct ProjectorContext {
    database: PgConnectOptions,
    group: String,
    /// The broker epoch each assigned partition was positioned under: the epoch its offsets are
    /// stored with.
    epochs: Arc<Mutex<HashMap<Partition, i64>>>,
    /// Set when an assignment could not be positioned, or every broker went away: the consumer is
    /// then replaced.
    failed: Arc<AtomicBool>,
}

impl ProjectorContext {
    pub(super) fn new(database: PgConnectOptions, group: &str) -> Self {
        Self { database, group: group.to_owned(), epochs: Arc::default(), failed: Arc::default() }
    }

    /// The epochs of the partitions assigned now, to store offsets with.
    pub(super) fn epochs(&self) -> HashMap<Partition, i64> {
        self.epochs.lock().expect("epochs lock").clone()
    }

    /// Whether this consumer must be replaced.
    pub(super) fn must_be_replaced(&self) -> bool {
        self.failed.load(Ordering::Relaxed)
    }

    /// The current broker epoch and this group's offsets stored under it.
    fn stored_offsets(&self) -> anyhow::Result<(i64, HashMap<Partition, i64>)> {
        let (database, group) = (&self.database, &self.group);
        std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
                    runtime.block_on(async {
                        let mut conn = sqlx::PgConnection::connect_with(database).await?;
                        let mut tx = conn.begin().await?;
                        let epoch: i64 = sqlx::query_scalar("SELECT epoch FROM projections.broker_epoch")
                            .fetch_one(&mut *tx)
                            .await?;
                        let rows: Vec<(String, i32, i64)> = sqlx::query_as(
                            "SELECT topic, partition, next_offset FROM projections.kafka_offsets
                             WHERE consumer_group = $1 AND epoch = $2",
                        )
                        .bind(group)
                        .bind(epoch)
                        .fetch_all(&mut *tx)
                        .await?;
                        tx.commit().await?;
                        let _ = conn.close().await;
                        Ok((epoch, rows.into_iter().map(|(t, p, o)| ((t, p), o)).collect()))
                    })
                })
                .join()
                .map_err(|_| anyhow::anyhow!("the offset reader panicked"))?
        })
    }

    /// Sets each partition of `assignment` to its stored offset, or the beginning.
    fn position(&self, assignment: &mut TopicPartitionList) -> anyhow::Result<()> {
        let (epoch, stored) = self.stored_offsets()?;
        let partitions: Vec<Partition> =
            assignment.elements().iter().map(|e| (e.topic().to_owned(), e.partition())).collect();
        let mut epochs = self.epochs.lock().expect("epochs lock");
        for (topic, partition) in partitions {
            let offset = stored.get(&(topic.clone(), partition)).map_or(Offset::Beginning, |o| Offset::Offset(*o));
            tracing::info!(topic, partition, ?offset, epoch, "partition assigned");
            assignment.set_partition_offset(&topic, partition, offset)?;
            epochs.insert((topic, partition), epoch);
        }
        Ok(())
    }
}

impl ClientContext for ProjectorContext {
    /// Every broker gone (a restart, an outage) retires this consumer; the projector makes a new
    /// one. Besides being a clean restart, it works around a librdkafka 2.12 crash: a consumer
    /// that outlives Tansu restarting empty can apply a fetch response's leader hint that names
    /// no topic, and crash (docs/kafka.md). Reconnecting waits `reconnect.backoff.ms` (500 ms),
    /// and the consumer is dropped well before that.
    fn error(&self, error: KafkaError, reason: &str) {
        tracing::warn!(error = %error, reason, "Kafka client error");
        if error.rdkafka_error_code() == Some(RDKafkaErrorCode::AllBrokersDown) {
            self.failed.store(true, Ordering::Relaxed);
        }
    }

    /// Per-partition lag from librdkafka's statistics (`statistics.interval.ms`): the broker's high
    /// watermark minus the offset last committed to Kafka (after PostgreSQL's commit).
    fn stats(&self, statistics: Statistics) {
        for (name, topic) in &statistics.topics {
            for (number, partition) in &topic.partitions {
                // -1 is librdkafka's internal "unassigned" partition.
                if *number < 0 || !partition.desired || partition.consumer_lag < 0 {
                    continue;
                }
                let labels = [("topic", name.clone()), ("partition", number.to_string())];
                metrics::gauge!("projector_partition_lag", &labels).set(partition.consumer_lag as f64);
            }
        }
    }
}

impl ConsumerContext for ProjectorContext {
    fn rebalance(&self, consumer: &BaseConsumer<Self>, err: RDKafkaRespErr, tpl: &mut TopicPartitionList) {
        let cooperative = matches!(consumer.rebalance_protocol(), RebalanceProtocol::Cooperative);
        let result = match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                if let Err(error) = self.position(tpl) {
                    // Starting anywhere else could skip records: give the assignment up instead.
                    tracing::warn!(error = format!("{error:#}"), "cannot read the stored offsets; rejoining");
                    self.failed.store(true, Ordering::Relaxed);
                    return;
                }
                if cooperative { consumer.incremental_assign(tpl) } else { consumer.assign(tpl) }
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                let mut epochs = self.epochs.lock().expect("epochs lock");
                for element in tpl.elements() {
                    epochs.remove(&(element.topic().to_owned(), element.partition()));
                    let labels =
                        [("topic", element.topic().to_owned()), ("partition", element.partition().to_string())];
                    metrics::gauge!("projector_partition_lag", &labels).set(0.0);
                }
                drop(epochs);
                if cooperative { consumer.incremental_unassign(tpl) } else { consumer.unassign() }
            }
            other => {
                tracing::warn!(error = ?other, "rebalance failed");
                consumer.unassign()
            }
        };
        if let Err(error) = result {
            tracing::warn!(error = %error, "could not apply the assignment; rejoining");
            self.failed.store(true, Ordering::Relaxed);
        }
    }
}
