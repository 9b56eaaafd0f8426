/*
 * fleet: the live picture of every GPU the console shows: the last values, short histories for
 * the sparklines, the health evaluation (rules.h) with its recommendation, and recent alerts.
 *
 * Fed by the pipeline from two sides, on their own threads:
 *   - fleet_ingest_event(): every event-v1 the embedded collector builds (an in-process tap,
 *     so the console needs neither Kafka nor a database to show the GPUs of this node);
 *   - fleet_ingest_health(): rows read back from a fleet database (every host's GPUs), when
 *     the console is pointed at one.
 * The health of events comes from the scorer's own engine (health/health_engine.h): the same
 * verdicts, recommendations and alerts (kinds "health" and "failure_risk") as the database.
 * Read by the UI (and `status`) through fleet_snapshot(), which copies under the lock; the UI
 * never holds the lock while it draws.
 *
 * Thread safety: every function takes the fleet's mutex; none does I/O.
 */
#ifndef GPUHEALTH_FLEET_H
#define GPUHEALTH_FLEET_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "health/econ.h"
#include "health/health_engine.h"
#include "health/rules.h"
#include "health/sample.h"

/* Samples kept per GPU for the sparklines and the detail charts. */
#define FLEET_HISTORY 120
/* Alert changes kept per GPU (most recent first). */
#define FLEET_ALERTS 8
/* Alert kinds: "health" and "failure_risk". */
#define FLEET_ALERT_KINDS 2
/* The workload's strings (Kubernetes: a namespace is at most 63 bytes, a pod name 253); longer
 * values are cut. */
#define FLEET_NS_MAX        64
#define FLEET_POD_MAX       256
#define FLEET_CONTAINER_MAX 64
/* Processes kept per GPU (fleet_set_processes); more are counted, not kept. */
#define FLEET_PROCS_MAX 64

/* The series kept as history. */
enum fleet_series { FLEET_TEMP = 0, FLEET_POWER, FLEET_UTIL, FLEET_NSERIES };

/* An alert change of the GPU, as the scorer writes it to the alerts table (health_engine.h). */
struct fleet_alert {
	double time;                   /* epoch seconds of the raise (or the clear) */
	char kind[HEALTH_REASON_CODE]; /* "health" or "failure_risk" */
	enum health_status severity;   /* of the open alert; HEALTH_PASS on a clear */
	bool cleared;
	char text[HEALTH_ALERT_SUMMARY]; /* the alert's message without "GPU KEY on HOST: "
					   (health_engine_alert_message gives it whole) */
};

struct fleet_gpu {
	/* identity */
	char key[HS_KEY_MAX];     /* UUID, or UUID/GPU_I_ID */
	char host[HS_HOST_MAX];   /* "" when unknown */
	char model[HS_MODEL_MAX]; /* "" when unknown */
	int index;                /* -1 when unknown */
	/* the last sample: every field the rules read, with validity bits (health_sample_has) */
	struct health_sample last;
	/* the workload that held the GPU at the last sample (event-v1 "workload", or the
	 * database's gpu_workloads): has_workload false when none (or unknown); an absent member
	 * is "" */
	bool has_workload;
	char wl_namespace[FLEET_NS_MAX];
	char wl_pod[FLEET_POD_MAX];
	char wl_container[FLEET_CONTAINER_MAX];
	/* processes on the GPU (local GPUs through NVML: fleet_set_processes); -1 when the driver
	 * did not report them (or the GPU is not local); the list itself: fleet_processes() */
	int nprocs;
	/* values the rules do not read; NAN when unknown */
	double fb_used_mib, fb_total_mib, sm_clock_mhz, mem_clock_mhz;
	double first_seen, last_seen; /* epoch seconds (sample time) */
	bool stale;                   /* no sample for 3 expected intervals */
	/* health of the last sample (or of the database row) */
	bool have_health;
	struct health_result health;  /* score, status, reasons (worst first), remedy */
	enum health_action action;    /* the recommendation: keep/drain/reset/reboot/rma */
	double p_fail;                /* failure probability within the horizon, NAN unknown */
	double cost[ACT_COUNT];       /* expected cost of each action over the horizon, in the
					 economic inputs' currency (econ.h); NAN when not
					 evaluated (a healthy GPU not at risk: keep) */
	/* history, oldest first; NAN for a sample without the value */
	size_t nhist;
	float hist[FLEET_NSERIES][FLEET_HISTORY];
	double hist_time[FLEET_HISTORY];
	size_t nalerts;
	struct fleet_alert alerts[FLEET_ALERTS]; /* the recent changes, most recent first */
	/* the open alerts, at most one per kind, as the alerts table holds them: time of the
	 * raise, severity and text of the last raise or escalation */
	size_t nopen;
	struct fleet_alert open[FLEET_ALERT_KINDS];
};

/* A process on a GPU, as NVML reports it (nvml.h: nvml_processes). */
enum fleet_proc_type { FLEET_PROC_COMPUTE = 0, FLEET_PROC_GRAPHICS, FLEET_PROC_BOTH };
struct fleet_process {
	unsigned pid;
	enum fleet_proc_type type;
	double used_mib;   /* GPU memory; NAN when the driver does not say */
	char user[32];     /* "" when unknown (the process is gone, or not visible here) */
	char command[128]; /* its command line, arguments separated by spaces; "" when unknown */
};

struct fleet_opts {
	double interval_s;     /* expected sample period (stale after 3 of them) */
	double horizon_h;      /* prediction horizon for p_fail */
	size_t max_gpus;       /* bound on GPUs kept (0: 65536); more are counted, not kept */
	/* added by the pipeline work; zero/NULL means the default */
	const struct econ_inputs *econ; /* inputs of the recommendation (NULL: econ_defaults) */
	double risk_level;     /* p_fail that counts as at risk (0: 0.5) */
	int raise_after, clear_after; /* alert hysteresis in samples (0: alerts.h defaults) */
	int missing_intervals; /* fell off the bus after K silent intervals (0: rules default) */
	double (*clock)(void); /* epoch seconds now, for "live" and stale (NULL: time_now; tests) */
};

struct fleet_stats {
	uint64_t events;       /* events ingested */
	uint64_t bad_events;   /* not decodable (counted, with the last reason) */
	uint64_t rows;         /* database rows ingested */
	uint64_t over_limit;   /* GPUs not kept past max_gpus */
	size_t gpus, hosts;
	char last_error[256];
};

struct fleet;

/* Returns 0, -EINVAL or -ENOMEM. opts may be NULL (defaults). *out owned by the caller. */
int fleet_create(struct fleet **out, const struct fleet_opts *opts);
void fleet_destroy(struct fleet *f);

/* Ingests one event-v1 object (borrowed). Returns 0, -EINVAL (not an event: counted) or
 * -ENOMEM. */
int fleet_ingest_event(struct fleet *f, const json_t *event);

/* Ingests a GPU's state read from the database: its last sample and, when have_health, the
 * stored health (score/status/action/p_fail). Returns 0 or -ENOMEM. */
int fleet_ingest_health(struct fleet *f, const struct health_sample *s, bool have_health,
			const struct health_result *h, enum health_action action, double p_fail);

/* Sets the values the rules do not read (NAN: unknown) of a GPU already ingested, from the
 * database row that came with its health. Returns 0 or -ENOENT. */
int fleet_set_extra(struct fleet *f, const char *key, double fb_used_mib, double fb_total_mib,
		    double sm_clock_mhz, double mem_clock_mhz);

/* Sets the expected cost of each action of a GPU already ingested (from the database's
 * prediction row). Returns 0 or -ENOENT. */
int fleet_set_costs(struct fleet *f, const char *key, const double cost[ACT_COUNT]);

/* Sets the workload of a GPU already ingested (from the database's gpu_workloads); NULL or ""
 * members are absent, all three absent is "no workload". Returns 0 or -ENOENT. */
int fleet_set_workload(struct fleet *f, const char *key, const char *ns, const char *pod,
                       const char *container);

/* Replaces the process list of a GPU already ingested (n <= FLEET_PROCS_MAX kept; n < 0: the
 * driver does not report processes). Returns 0 or -ENOENT. */
int fleet_set_processes(struct fleet *f, const char *key, const struct fleet_process *procs, int n);

/* Copies up to max processes of GPU key into out; returns how many it has (-1: not reported,
 * or no such GPU). */
int fleet_processes(struct fleet *f, const char *key, struct fleet_process *out, size_t max);

/* Copies up to max GPUs, ordered by (host, index, key), into out; returns the number of GPUs
 * known (which may exceed max). */
size_t fleet_snapshot(struct fleet *f, struct fleet_gpu *out, size_t max);

/* Copies one GPU by key. Returns true when found. */
bool fleet_get(struct fleet *f, const char *key, struct fleet_gpu *out);

void fleet_stats(struct fleet *f, struct fleet_stats *out);
/* The natural order of GPUs: host, then index, then key (strcmp-like). */
int fleet_gpu_cmp(const struct fleet_gpu *a, const struct fleet_gpu *b);

#endif
