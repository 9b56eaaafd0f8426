-- gpuhealth schema, migration 010: dead letters the dead-letter topic refused. A dead letter
-- always leaves the sink: to the dead-letter topic (--dlq-topic), or, when the topic refuses
-- it after 3 tries or for good (a record too large for it, no permission), into this table in
-- the same transaction as the batch it came in, so the batch commits and the offsets move. A
-- row carries what the topic's record would: the reason, the source coordinates, the original
-- size, an FNV-1a 64 hash of the whole payload, and the payload cut to 65,536 bytes
-- (EVENT_CHECK_DLQ_PAYLOAD_MAX). A redelivered batch finds its dead letters already here
-- (the source coordinates are the key).

CREATE TABLE dead_letters (
    failed_at        timestamptz NOT NULL DEFAULT now(),
    service          text NOT NULL,          -- 'sink'
    reason           text NOT NULL,          -- why the event was refused
    source_topic     text NOT NULL,
    source_partition integer NOT NULL,
    source_offset    bigint NOT NULL,
    source_key       bytea,                  -- the Kafka key (first 1,024 bytes)
    original_size    bigint NOT NULL,        -- the payload's size in bytes
    payload_fnv1a64  text NOT NULL,          -- 16 hex digits, of the whole payload
    payload          bytea NOT NULL,         -- the payload, cut to 65,536 bytes
    payload_cut      boolean NOT NULL,       -- payload is shorter than original_size
    dlq_error        text,                   -- why the dead-letter topic refused it
    PRIMARY KEY (source_topic, source_partition, source_offset)
);
CREATE INDEX dead_letters_failed_at_idx ON dead_letters (failed_at DESC);

GRANT SELECT, INSERT ON dead_letters TO gpuhealth_writer;
GRANT SELECT ON dead_letters TO gpuhealth_reader;
