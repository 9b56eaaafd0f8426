/*
 * mockcluster: librdkafka's in-process mock cluster, the console's and --daemon's broker when
 * no --brokers is given (one broker; the first topic with a given number of partitions, the
 * others with one; its log dies with the process), and a watch on it: a consumer handle of its
 * own that never joins a group but reads that group's committed offsets and each partition's
 * log ends. The policy over those figures (the embedded pipeline's gate) is
 * pipeline/mockbroker.c's; this is the librdkafka side of it.
 *
 * Threads: create and destroy from one thread; positions from one thread at a time (the gate's).
 */
#ifndef GPUHEALTH_MOCKCLUSTER_H
#define GPUHEALTH_MOCKCLUSTER_H

#include <stddef.h>
#include <stdint.h>

struct mockcluster;

/* Creates the cluster and the topics topics[0..ntopics) (NULL or "" skipped; the first with
 * partitions partitions, the others with one). Returns 0, or -EIO / -ENOMEM with a message in
 * err. *out is the caller's (mockcluster_destroy). */
int mockcluster_create(struct mockcluster **out, const char *const *topics, size_t ntopics,
                       int partitions, char *err, size_t errlen);

/* The cluster's bootstrap servers; valid until mockcluster_destroy. */
const char *mockcluster_bootstraps(const struct mockcluster *mc);

/* Opens the watch on group's commits (a consumer handle that never subscribes). Returns 0 or
 * -EIO with a message in err. */
int mockcluster_watch(struct mockcluster *mc, const char *group, char *err, size_t errlen);

/* One partition as the watch sees it. */
struct mockcluster_pos {
	int64_t committed; /* the group's committed offset; < 0: none yet */
	int64_t lo, hi;    /* the log's first offset and its end */
};

/* Reads partitions 0..n of topic (each wait bounded by timeout_ms). Returns 0, or -EIO with
 * "reading the sink's committed offsets: ..." or "reading partition N's offsets: ..." in err. */
int mockcluster_positions(struct mockcluster *mc, const char *topic, int n,
                          struct mockcluster_pos *out, int timeout_ms, char *err, size_t errlen);

/* Destroys the watch and the cluster: call it after every other Kafka handle that talks to the
 * cluster is gone. NULL is fine. */
void mockcluster_destroy(struct mockcluster *mc);

#endif
