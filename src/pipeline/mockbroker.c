#include "pipeline/mockbroker.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bus/mockcluster.h"
#include "bus/producer.h"
#include "collect/collector.h"
#include "core/config.h"
#include "core/log.h"
#include "core/timeutil.h"
#include "pipeline/pipeline.h"

/* librdkafka's mock cluster (rdkafka_mock.c, 2.0.2 as in Debian 12 and later): each partition
 * log keeps at most this many bytes of record batches, or batches, and destroys its oldest
 * batches past either, committed by the consumers or not. Fixed inside librdkafka. */
#define MOCK_LOG_MAX_BYTES (5u << 20)
#define MOCK_LOG_MAX_SETS  100000
/* Hold new events above this fraction of either limit, and let them go again below the low one,
 * never more at a time than fits under the high one: a grant may be spent twice over before the
 * next look sees it (measured and granted concurrently), which still stays under the limit. */
#define GATE_HIGH       0.4
#define GATE_LOW        0.25
#define GATE_PERIOD_S   0.1
#define GATE_TIMEOUT_MS 2000
/* bytes a record may take in a batch besides its key and value (varint lengths, headers, the
 * batch's own 61 bytes shared by its records); compression only makes a batch smaller */
#define RECORD_OVERHEAD 96

struct mockbroker {
	struct mockcluster *mc; /* owned: the cluster and the watch on the sink's commits */

	/* the gate */
	struct mockbroker_gate_params gp;
	pthread_t gate_thread;
	bool gate_started;
	atomic_bool gate_stop;
	/* the gate thread's own */
	int64_t lost_upto[MOCKBROKER_PARTITIONS]; /* offsets below are counted as lost */
	int64_t last_hi[MOCKBROKER_PARTITIONS];   /* the log ends seen (they only grow) */
	double gate_logged;                       /* time_mono() of the last hold logged */
	bool gate_said_held;                      /* that hold's release not logged yet */
	pthread_mutex_t lock;                     /* guards gate */
	struct pipeline_gate_view gate;
};

static void nap(double s)
{
	struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
	nanosleep(&ts, NULL);
}

int mockbroker_create(struct mockbroker **out, const char *const *topics, size_t ntopics, char *err,
                      size_t errlen)
{
	*out = NULL;
	struct mockbroker *mb = calloc(1, sizeof(*mb));
	if (!mb) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	pthread_mutex_init(&mb->lock, NULL);
	int rc = mockcluster_create(&mb->mc, topics, ntopics, MOCKBROKER_PARTITIONS, err, errlen);
	if (rc) {
		mockbroker_destroy(mb);
		return rc;
	}
	*out = mb; /* caller owns */
	return 0;
}

const char *mockbroker_bootstraps(const struct mockbroker *mb)
{
	return mockcluster_bootstraps(mb->mc);
}

/* ------------------------------------------------------------------ gate */

/* The watch on the sink group's committed offsets: a handle that never joins the group.
 * Returns 0 or -EIO (message in err). */
static int gate_open(struct mockbroker *mb, char *err, size_t errlen)
{
	return mockcluster_watch(mb->mc, config_str(mb->gp.cfg, "group"), err, errlen);
}

/* The memory queue's bounds: --buffer-hours of the fleet's events (simulated GPUs per
 * interval, or the rate seen so far), at least --buffer-events; --buffer-max bytes. */
static void gate_buffer(struct mockbroker *mb, const struct collector_stats *cs, double elapsed,
                        uint64_t *events, uint64_t *bytes)
{
	const struct config *cfg = mb->gp.cfg;
	double rate = 0, every = config_double(cfg, "interval");
	if (!mb->gp.scraping && every > 0)
		rate = (double)config_int(cfg, "gpus") / every;
	if (elapsed >= mb->gp.rate_window_s && (double)cs->events / elapsed > rate)
		rate = (double)cs->events / elapsed;
	double want = config_double(cfg, "buffer-hours") * 3600.0 * rate;
	uint64_t least = (uint64_t)config_int(cfg, "buffer-events");
	*events = want > (double)least ? (uint64_t)want : least;
	*bytes = (uint64_t)config_int(cfg, "buffer-max") << 20;
}

/* One look: the backlog of each partition, the gate's state, what the log forgot. */
static void gate_step(struct mockbroker *mb, struct producer *prod, double started)
{
	const char *topic = config_str(mb->gp.cfg, "topic");
	struct collector_stats cs;
	collector_stats(mb->gp.col, &cs);
	const struct producer_stats *ps = &cs.producer;
	char err[160] = "";
	int64_t most = 0, room = INT64_MAX, np[MOCKBROKER_PARTITIONS], ends = 0;
	uint64_t nb[MOCKBROKER_PARTITIONS];
	uint64_t most_bytes = 0, lost_now = 0;
	uint64_t bev, bby;
	gate_buffer(mb, &cs, time_mono() - started, &bev, &bby);
	producer_set_buffer(prod, (size_t)bev, bby);

	struct mockcluster_pos pos[MOCKBROKER_PARTITIONS];
	if (mockcluster_positions(mb->mc, topic, MOCKBROKER_PARTITIONS, pos, GATE_TIMEOUT_MS, err,
	                          sizeof(err)))
		goto out;
	/* uncompressed bytes per record: compression only makes the log smaller */
	uint64_t seen = ps->delivered + ps->in_flight + ps->queued;
	double per = seen ? (double)(ps->delivered_bytes + ps->in_flight_bytes + ps->queued_bytes) /
	                        (double)seen
	                  : (double)(MOCKBROKER_MAX_EVENT / 16); /* none yet: a cautious guess */
	for (int i = 0; i < MOCKBROKER_PARTITIONS; i++) {
		int64_t lo = pos[i].lo, hi = pos[i].hi, committed = pos[i].committed;
		/* a log end never moves back; a committed offset is never past it */
		if (hi < mb->last_hi[i] || lo < 0 || lo > hi || committed > hi) {
			snprintf(err, sizeof(err),
			         "partition %d: implausible offsets (log %" PRId64 "..%" PRId64
			         ", committed %" PRId64 ", end seen %" PRId64 ")",
			         i, lo, hi, committed, mb->last_hi[i]);
			goto out;
		}
		mb->last_hi[i] = hi;
		/* nothing committed yet: the sink reads the new cluster's log from its start, 0 */
		int64_t base = committed >= 0 ? committed : 0;
		if (lo > base && lo > mb->lost_upto[i]) {
			lost_now +=
			    (uint64_t)(lo - (base > mb->lost_upto[i] ? base : mb->lost_upto[i]));
			mb->lost_upto[i] = lo;
		}
		int64_t n = hi > base ? hi - base : 0;
		/* what is in flight may all land in this partition */
		uint64_t bytes = (uint64_t)((double)n * (per + RECORD_OVERHEAD)) +
		                 ps->in_flight_bytes + ps->in_flight * RECORD_OVERHEAD;
		n += (int64_t)ps->in_flight;
		if (n > most)
			most = n;
		if (bytes > most_bytes)
			most_bytes = bytes;
		np[i] = n;
		nb[i] = bytes;
		ends += hi;
	}
	/* What may still be handed over: for each partition its room under the high-water
	 * mark, divided by its share of the events so far (GPU keys keep their partition),
	 * raised by half and by 2 points for safety; until 2,000 events have gone, as if all
	 * went to one partition. The least of these. */
	{
		pthread_mutex_lock(&mb->lock);
		int64_t he = mb->gate.high_events;
		uint64_t hb = mb->gate.high_bytes;
		pthread_mutex_unlock(&mb->lock);
		for (int i = 0; i < MOCKBROKER_PARTITIONS; i++) {
			int64_t re = he - np[i];
			int64_t rb = nb[i] < hb
			                 ? (int64_t)((double)(hb - nb[i]) / (per + RECORD_OVERHEAD))
			                 : 0;
			int64_t r = re < rb ? re : rb;
			double share = 1.0;
			if (ends >= 2000) {
				share = 1.5 * (double)mb->last_hi[i] / (double)ends + 0.02;
				share = share > 1.0 ? 1.0 : share;
			}
			r = r > 0 ? (int64_t)((double)r / share) : 0;
			if (r < room)
				room = r;
		}
	}
out:
	pthread_mutex_lock(&mb->lock);
	struct pipeline_gate_view *g = &mb->gate;
	bool was = g->held;
	if (!err[0]) {
		g->backlog = most;
		g->backlog_bytes = most_bytes;
		if (!g->held && (most > g->high_events || most_bytes > g->high_bytes)) {
			g->held = true;
			g->holds++;
		} else if (g->held &&
		           most < (int64_t)((double)g->high_events * GATE_LOW / GATE_HIGH) &&
		           most_bytes < (uint64_t)((double)g->high_bytes * GATE_LOW / GATE_HIGH)) {
			g->held = false;
		}
	}
	g->lost += lost_now;
	g->buffer_events = bev;
	g->buffer_bytes = bby;
	bool newerr = strcmp(g->error, err) != 0;
	snprintf(g->error, sizeof(g->error), "%s", err);
	bool held = g->held;
	uint64_t lost = g->lost;
	pthread_mutex_unlock(&mb->lock);
	/* unmeasured: hold what is not yet handed over (the last figures stand) */
	producer_set_credit(prod, held || err[0] ? 0 : room);
	/* while the sink catches up the gate closes and opens often: one line per 30 s */
	bool say = held && !was ? time_mono() - mb->gate_logged >= 30.0
	                        : !held && was && mb->gate_said_held;
	if (say) {
		mb->gate_said_held = held;
		if (held)
			mb->gate_logged = time_mono();
	}
	if (held && !was && !say)
		log_debug("broker: holding again (%" PRId64 " events behind)", most);
	else if (!held && was && !say)
		log_debug("broker: flowing again (%" PRId64 " events behind)", most);
	else if (held && !was)
		log_warn("broker: a partition of the in-process cluster holds %" PRId64
		         " events (~%.1f MiB) the sink has not committed: new events wait in the "
		         "collector's memory queue%s (up to %" PRIu64 " events, %" PRIu64
		         " MiB) until it catches up",
		         most, (double)most_bytes / 1048576.0,
		         config_str(mb->gp.cfg, "spool-dir") ? " and spool" : "", bev, bby >> 20);
	else if (!held && was && say)
		log_info("broker: the sink caught up (%" PRId64
		         " events behind): events flow again",
		         most);
	if (lost_now)
		log_error("broker: the in-process cluster's log forgot %" PRIu64
		          " events the sink had not committed (%" PRIu64 " in all): lost",
		          lost_now, lost);
	if (newerr && err[0])
		log_warn("broker: gate: %s", err);
}

static void *gate_main(void *arg)
{
	struct mockbroker *mb = arg;
	struct producer *prod = collector_producer(mb->gp.col);
	double started = time_mono();
	while (!atomic_load(&mb->gate_stop)) {
		/* no sink will ever read the topic (no database, or the sink could not start): the
		 * events only feed the console's fleet, and holding them would only fill memory */
		if (mb->gp.no_sink(mb->gp.ud)) {
			pthread_mutex_lock(&mb->lock);
			mb->gate.held = false;
			snprintf(mb->gate.error, sizeof(mb->gate.error),
			         "no sink: nothing to keep for");
			pthread_mutex_unlock(&mb->lock);
			producer_set_credit(prod, -1);
		} else {
			gate_step(mb, prod, started);
		}
		nap(GATE_PERIOD_S);
	}
	return NULL;
}

int mockbroker_gate_start(struct mockbroker *mb, const struct mockbroker_gate_params *gp, char *err,
                          size_t errlen)
{
	char why[512] = "";
	mb->gp = *gp;
	pthread_mutex_lock(&mb->lock);
	mb->gate.active = true;
	mb->gate.high_events = (int64_t)(MOCK_LOG_MAX_SETS * GATE_HIGH);
	mb->gate.high_bytes = (uint64_t)(MOCK_LOG_MAX_BYTES * GATE_HIGH);
	pthread_mutex_unlock(&mb->lock);
	if (gate_open(mb, why, sizeof(why)) != 0 ||
	    pthread_create(&mb->gate_thread, NULL, gate_main, mb) != 0) {
		/* without the gate the in-process log may forget events: say so loudly */
		pthread_mutex_lock(&mb->lock);
		snprintf(mb->gate.error, sizeof(mb->gate.error), "no gate: %.140s",
		         why[0] ? why : "cannot start its thread");
		snprintf(err, errlen, "%s", mb->gate.error);
		pthread_mutex_unlock(&mb->lock);
		return -EIO;
	}
	mb->gate_started = true;
	return 0;
}

void mockbroker_gate_stop(struct mockbroker *mb)
{
	if (!mb->gate_started)
		return;
	atomic_store(&mb->gate_stop, true);
	pthread_join(mb->gate_thread, NULL);
	mb->gate_started = false;
}

void mockbroker_gate_view(struct mockbroker *mb, struct pipeline_gate_view *out)
{
	pthread_mutex_lock(&mb->lock);
	*out = mb->gate;
	pthread_mutex_unlock(&mb->lock);
}

void mockbroker_destroy(struct mockbroker *mb)
{
	if (!mb)
		return;
	mockbroker_gate_stop(mb);
	mockcluster_destroy(mb->mc);
	pthread_mutex_destroy(&mb->lock);
	free(mb);
}
