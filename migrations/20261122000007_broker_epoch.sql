-- The broker epoch: the relay bumps it before it recreates topics the broker lost (Tansu's memory
-- storage restarts empty; an operator deletes a topic). Kafka offsets are stored with the epoch
-- their partition was positioned under, and only those of the current epoch position a consumer:
-- an offset into a lost topic means nothing in its successor, and following it would skip records.
CREATE TABLE projections.broker_epoch (
    id    boolean PRIMARY KEY DEFAULT true CHECK (id),
    epoch bigint NOT NULL
);

INSERT INTO projections.broker_epoch (epoch) VALUES (0);

ALTER TABLE projections.kafka_offsets ADD COLUMN epoch bigint NOT NULL DEFAULT 0;
