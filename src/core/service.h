/*
 * service: the one face of a long-running part (the exporter, the collector, the sink, the
 * scorer, the api, the daemon's pipeline) and the one host loop that runs it.
 *
 * A service is a table of operations (struct service_ops) over its own object (impl). The
 * operations are called from one thread, the host's (the main thread), in this order:
 *
 *   create (from the configuration)  or  service_wrap (an object made elsewhere: the pipeline)
 *   start
 *   tick, status, stats_line, reload ...   (while running; see service_host_run)
 *   drain (optional), stop (clean: flush and commit; or now: leave what is pending)
 *   stats_line (final), verdict
 *   destroy
 *
 * service_host_run() is the one loop every subcommand and the daemon share: it installs the
 * signal handlers, starts the services in order, sends READY=1 (sd_notify), pings WATCHDOG=1
 * when $WATCHDOG_USEC asks, logs each service's stats line every --stats-interval, reloads on
 * SIGHUP, stops on SIGINT/SIGTERM, on --duration, when a service is done (collector --once)
 * or failed, then sends STOPPING=1 and stops the services in reverse order.
 */
#ifndef GPUHEALTH_SERVICE_H
#define GPUHEALTH_SERVICE_H

#include <stdbool.h>
#include <stddef.h>

struct config;

/* The exit status a host returns; the same numbers as cli.h's CLI_EXIT_*. */
enum { SERVICE_EXIT_OK = 0, SERVICE_EXIT_FAILURE = 1, SERVICE_EXIT_USAGE = 2 };

enum service_state {
	SERVICE_CREATED = 0,
	SERVICE_RUNNING,
	SERVICE_DEGRADED, /* running, but its last attempt failed (last_error) */
	SERVICE_DONE,     /* finished its work (collector --once): the host stops */
	SERVICE_FAILED,   /* stopped by an error (last_error): the host stops, exit status 1 */
	SERVICE_STOPPED,
};

/* A copy of a service's state, taken under its lock. */
struct service_status {
	enum service_state state;
	char last_error[512]; /* "" when none; for SERVICE_FAILED the host logs
	                         "NAME: stopped: LAST_ERROR" */
};

enum service_stop {
	SERVICE_STOP_CLEAN = 0, /* flush, commit the open batch, then stop */
	SERVICE_STOP_NOW,       /* stop at once: what is pending stays where it is (Kafka) */
};

struct service_ops {
	const char *name; /* the log prefix: "sink", "daemon", "mock-dcgm" */
	/* How often the host looks at the service (tick, status), in seconds (0: 0.1 s). */
	double tick_s;
	/* Optional (required by service_create): makes impl from the configuration, which it may
	 * keep borrowed. Returns 0, -EINVAL for bad usage (exit status 2) or another -errno (1);
	 * a message in err, or err left "" when the service said it itself. */
	int (*create)(void **impl, const struct config *cfg, char *err, size_t errlen);
	/* Starts its threads and listeners; same returns and err as create. */
	int (*start)(void *impl, char *err, size_t errlen);
	/* Optional: housekeeping on the host's thread each tick (discovery, logging changes). */
	void (*tick)(void *impl, double now);
	/* Copies the service's state under its lock. Optional: without it, running. */
	void (*status)(void *impl, struct service_status *out);
	/* Optional: its stats line into buf (without a trailing newline); final: the line after
	 * the stop. uptime_s: seconds since the start. Returns the length (0: no line). The daemon
	 * also writes its state file here, at the same cadence. */
	int (*stats_line)(void *impl, bool final, double uptime_s, char *buf, size_t len);
	/* Optional: the STATUS= text for sd_notify; ready: the one sent with READY=1. Returns the
	 * length (0: none). */
	int (*notify_text)(void *impl, bool ready, char *buf, size_t len);
	/* Optional: SIGHUP. Without it SIGHUP is ignored. Returns 0 or -errno (logged by it). */
	int (*reload)(void *impl);
	/* Optional: lets queued work finish, for at most max_s seconds, before the stop. */
	void (*drain)(void *impl, double max_s);
	/* Stops the threads and listeners; blocks until they ended. */
	void (*stop)(void *impl, enum service_stop how);
	/* Optional: after the stop and the final stats line: logs what the run lost and returns 0,
	 * or -1 when the exit status must say failure. */
	int (*verdict)(void *impl);
	void (*destroy)(void *impl);
};

/* The adapters most services need between the table's void * and their own typed functions,
 * written once: SERVICE_FORWARD(name, fn) defines `static void name(void *impl)` calling
 * fn(impl) (a destroy); SERVICE_FORWARD_STOP(name, clean, now) defines the stop, calling now(impl)
 * for SERVICE_STOP_NOW and clean(impl) otherwise (the same function twice when the service
 * bounds its own flush). */
#define SERVICE_FORWARD(name, fn)                                                                  \
	static void name(void *impl)                                                               \
	{                                                                                          \
		fn(impl);                                                                          \
	}
#define SERVICE_FORWARD_STOP(name, clean, now)                                                     \
	static void name(void *impl, enum service_stop how)                                        \
	{                                                                                          \
		if (how == SERVICE_STOP_NOW)                                                       \
			now(impl);                                                                 \
		else                                                                               \
			clean(impl);                                                               \
	}

/* A table's members named after one prefix: SERVICE_OPS_BASE("sink", sink_svc) names
 * sink_svc_start, sink_svc_stop and sink_svc_destroy; SERVICE_OPS_ALL also every optional
 * member but drain (create, tick, status, stats_line, notify_text, reload, verdict). */
#define SERVICE_OPS_BASE(nm, prefix)                                                               \
	.name = (nm), .start = prefix##_start, .stop = prefix##_stop, .destroy = prefix##_destroy
#define SERVICE_OPS_ALL(nm, prefix)                                                                \
	SERVICE_OPS_BASE(nm, prefix),                                                              \
	    .create = prefix##_create, .tick = prefix##_tick, .status = prefix##_status,           \
	    .stats_line = prefix##_stats_line, .notify_text = prefix##_notify_text,                \
	    .reload = prefix##_reload, .verdict = prefix##_verdict

/* The state of a service that writes to a database: failed, degraded while the database is
 * away after an error, else running; last_error copied. */
void service_status_db(struct service_status *out, bool failed, bool db_connected,
                       const char *last_error);

struct service;

/* Creates a service with ops->create. Returns 0 or create's -errno (message in err). */
int service_create(struct service **out, const struct service_ops *ops, const struct config *cfg,
                   char *err, size_t errlen);
/* A service over an object made by its own constructor; owns impl from now on (destroys it
 * on failure too). Returns 0 or -ENOMEM. */
int service_wrap(struct service **out, const struct service_ops *ops, void *impl);

const char *service_name(const struct service *s);
/* The object behind the service, for its own typed calls (the pipeline's views). */
void *service_impl(const struct service *s);

int service_start(struct service *s, char *err, size_t errlen);
void service_tick(struct service *s, double now);
void service_status(struct service *s, struct service_status *out);
int service_stats_line(struct service *s, bool final, char *buf, size_t len);
int service_notify_text(struct service *s, bool ready, char *buf, size_t len);
int service_reload(struct service *s);
void service_drain(struct service *s, double max_s);
/* Stops a started service; a second call, or one on a service never started, does nothing. */
void service_stop(struct service *s, enum service_stop how);
/* 0, or -1 when the run lost something or the service failed. After service_stop. */
int service_verdict(struct service *s);
/* Stops it (clean) when still running, then destroys it. NULL is a no-op. */
void service_destroy(struct service *s);

struct service_host_options {
	const char *name;        /* the log prefix of the host's own lines ("daemon") */
	double duration_s;       /* < 0: until a signal */
	double stats_interval_s; /* <= 0: no stats line while running (still one at the end) */
	double tick_s;           /* 0: the smallest of the services' */
	double drain_s;          /* > 0: drain each service this long before its stop */
};

/* The host loop (see the top of this file). n >= 1. Returns SERVICE_EXIT_OK, or
 * SERVICE_EXIT_USAGE when a start said -EINVAL, or SERVICE_EXIT_FAILURE when a start failed,
 * a service failed, or a verdict said so. The services stay created: the caller destroys them. */
int service_host_run(struct service *const *svcs, size_t n, const struct service_host_options *o);

/* A subcommand: service_create(ops, cfg), then the host loop with --duration and
 * --stats-interval from cfg, then service_destroy. Returns the exit status. */
int service_main(const struct service_ops *ops, const struct config *cfg);

#endif
