/*
 * mockbroker: the embedded pipeline's in-process broker, used when no --brokers is given:
 * librdkafka's mock cluster (one broker; the sample topic with MOCKBROKER_PARTITIONS
 * partitions, the dead-letter and alerts topics with one), whose log dies with the process,
 * and the gate in front of it (struct pipeline_gate_view in pipeline.h says why).
 *
 * The gate is a thread with a consumer handle of its own that never joins the sink's group: it
 * reads that group's committed offsets and each partition's log ends every 0.1 s, and gives the
 * collector's producer credit (producer_set_credit) for what fits under the high-water mark, or
 * none while it holds; it also sizes the producer's memory queue (producer_set_buffer:
 * --buffer-hours of the fleet's events, at least --buffer-events; --buffer-max bytes). Events
 * the log forgot before the sink committed them are counted as lost and logged.
 *
 * Threads: create, gate_start, gate_stop and destroy from the pipeline's thread;
 * mockbroker_gate_view from any thread.
 */
#ifndef GPUHEALTH_MOCKBROKER_H
#define GPUHEALTH_MOCKBROKER_H

#include <stdbool.h>
#include <stddef.h>

#define MOCKBROKER_PARTITIONS 8
/* the largest event given to the in-process cluster: a batch over its 5 MiB would push every
 * other batch of its partition out (the producer's max_event_bytes) */
#define MOCKBROKER_MAX_EVENT (1u << 20)

struct collector;
struct config;
struct mockbroker;
struct pipeline_gate_view;

/* Creates the cluster and the topics topics[0..ntopics) (NULL or "" skipped; the first with
 * MOCKBROKER_PARTITIONS partitions, the others with one). Returns 0, or -EIO / -ENOMEM with a
 * message in err. *out is the caller's (mockbroker_destroy). */
int mockbroker_create(struct mockbroker **out, const char *const *topics, size_t ntopics, char *err,
                      size_t errlen);

/* The cluster's bootstrap servers; valid until mockbroker_destroy. */
const char *mockbroker_bootstraps(const struct mockbroker *mb);

struct mockbroker_gate_params {
	/* borrowed until mockbroker_gate_stop: topic, group, interval, gpus, buffer-hours,
	 * buffer-events, buffer-max, spool-dir */
	const struct config *cfg;
	bool scraping;         /* exporters are scraped: --gpus per --interval is not the rate */
	double rate_window_s;  /* the events seen are the fleet's rate after this long */
	struct collector *col; /* borrowed, running, with a producer, until mockbroker_gate_stop */
	/* true when no sink will ever read the topic (no database, or the sink could not start):
	 * then nothing is held, for the events only feed the console's fleet. Called by the gate's
	 * thread without the gate's lock. */
	bool (*no_sink)(void *ud);
	void *ud;
};

/* Starts the gate's thread. Returns 0, or -EIO with "no gate: ..." in err and in the view's
 * error: then the in-process log may forget events. */
int mockbroker_gate_start(struct mockbroker *mb, const struct mockbroker_gate_params *gp, char *err,
                          size_t errlen);

/* Stops the gate's thread (the producer keeps its last credit); idempotent. */
void mockbroker_gate_stop(struct mockbroker *mb);

/* Copies the gate's figures (active is false until mockbroker_gate_start). */
void mockbroker_gate_view(struct mockbroker *mb, struct pipeline_gate_view *out);

/* Stops the gate, destroys its handle and the cluster: call it after every other Kafka handle
 * that talks to the cluster is gone. NULL is fine. */
void mockbroker_destroy(struct mockbroker *mb);

#endif
