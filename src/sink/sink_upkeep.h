/*
 * sink_upkeep: writer 0's upkeep between batches (private to src/sink/: sink_int.h).
 * sink_upkeep_partitions runs every --maintenance-interval (and once at start), with no batch
 * being written: the partitions ahead created and the data past the retention dropped
 * (gpuhealth_ensure_partitions(), gpuhealth_drop_expired()), the health tables' partitions
 * kept (gpuhealth_health_upkeep()). sink_upkeep_stats inserts one pipeline_stats row every
 * SINK_STATS_PERIOD_S and at stop. Failures are logged and tried again, never fatal.
 */
#ifndef GPUHEALTH_SINK_UPKEEP_H
#define GPUHEALTH_SINK_UPKEEP_H

struct sink;

/* Partition upkeep on writer 0's connection (connecting when needed). */
void sink_upkeep_partitions(struct sink *s);
/* One pipeline_stats row on writer 0's connection, when it is up and idle. */
void sink_upkeep_stats(struct sink *s);

#endif
