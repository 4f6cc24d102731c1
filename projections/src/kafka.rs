//! Broker configuration and topics: one topic per stream category, `flowfuse.<category>`, plus
//! `flowfuse.deadletter`. Topics are created explicitly (Tansu, the development broker, does not
//! auto-create them; production clusters usually should not either).

use std::collections::HashSet;
use std::time::Duration;

use event_schemas::Category;
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::types::RDKafkaErrorCode;

pub const DEADLETTER_TOPIC: &str = "flowfuse.deadletter";

/// Where the brokers are and how topics are made.
#[derive(Debug, Clone)]
pub struct KafkaConfig {
    /// `KAFKA_BROKERS`: comma-separated `host:port` list.
    pub brokers: String,
    /// Partitions of each topic when it is created. Records are keyed by stream id, so a stream's
    /// events stay in order within one partition.
    pub partitions: i32,
    pub replication: i32,
}

impl KafkaConfig {
    pub fn new(brokers: impl Into<String>) -> Self {
        Self { brokers: brokers.into(), partitions: 3, replication: 1 }
    }

    /// The settings every client shares.
    pub fn client(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &self.brokers)
            .set("socket.timeout.ms", "10000")
            // Slow reconnects leave time to replace a client whose broker went away (see the
            // projector), and spare a broker that is restarting.
            .set("reconnect.backoff.ms", "500")
            .set("reconnect.backoff.max.ms", "5000");
        config
    }
}

pub fn topic_for(category: Category) -> String {
    format!("flowfuse.{}", category.as_str())
}

/// The topic of every category, and the dead-letter topic.
pub fn all_topics() -> Vec<String> {
    let mut topics: Vec<String> = Category::ALL.into_iter().map(topic_for).collect();
    topics.push(DEADLETTER_TOPIC.to_owned());
    topics
}

/// The category topics only: what the projector consumes.
pub fn event_topics() -> Vec<String> {
    Category::ALL.into_iter().map(topic_for).collect()
}

/// Creates whichever topics are missing (existing ones are left as they are) and returns the
/// names of those it created.
pub async fn ensure_topics(config: &KafkaConfig) -> anyhow::Result<Vec<String>> {
    let admin: AdminClient<DefaultClientContext> = config.client().create()?;
    let names = all_topics();
    let topics: Vec<NewTopic> = names
        .iter()
        .map(|name| NewTopic::new(name, config.partitions, TopicReplication::Fixed(config.replication)))
        .collect();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    let mut created = Vec::new();
    for result in admin.create_topics(&topics, &options).await? {
        match result {
            Ok(topic) => {
                tracing::info!(topic, partitions = config.partitions, "created topic");
                created.push(topic);
            }
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => anyhow::bail!("cannot create topic {topic}: {code}"),
        }
    }
    Ok(created)
}

/// The names of the topics the broker has now.
pub async fn existing_topics(config: &KafkaConfig) -> anyhow::Result<HashSet<String>> {
    let config = config.clone();
    // Metadata requests block: keep them off the async workers.
    tokio::task::spawn_blocking(move || {
        let client: BaseConsumer = config.client().create()?;
        let metadata = client.fetch_metadata(None, Duration::from_secs(10))?;
        Ok(metadata.topics().iter().filter(|t| t.error().is_none()).map(|t| t.name().to_owned()).collect())
    })
    .await?
}
