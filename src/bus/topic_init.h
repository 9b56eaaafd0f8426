/*
 * topic_init: `gpuhealth kafka init`, the idempotent set-up of gpuhealth's Kafka topics (like
 * `db migrate` for the schema): the sample topic (--topic), the sink's dead-letter topic
 * (--dlq-topic) and the scorer's alerts topic (--alerts-topic, unless ''). A missing topic is
 * created with --partitions, --replication-factor and min.insync.replicas=--min-insync
 * (Admin API CreateTopics); an existing one is described (Metadata, DescribeConfigs) and left
 * as it is: when its partitions, replication factor or min.insync.replicas differ from the
 * ones asked for, init says what it found and what to run, and exits 1.
 */
#ifndef GPUHEALTH_TOPIC_INIT_H
#define GPUHEALTH_TOPIC_INIT_H

#include "core/config.h"

/* Runs the command. Returns the exit status (0 all topics as asked, 1 a topic differs or
 * Kafka failed, 2 bad usage). */
int topic_init_cmd_run(struct config *cfg);

#endif
