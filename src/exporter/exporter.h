/*
 * exporter: the dcgm-exporter compatible HTTP endpoint of `gpuhealth mock-dcgm`.
 *
 * Two kinds of threads. One simulation thread advances the simulator every
 * poll_interval / speed real seconds, renders the exposition (render.h) and publishes it as
 * the current snapshot. libmicrohttpd's threads answer requests from whatever snapshot is
 * current: they take a mutex only to pick the snapshot and queue it (libmicrohttpd
 * reference-counts the response, so an old snapshot lives until its last reader is done), and
 * never wait for the simulator or a render. The gzip form is compressed once per snapshot, by
 * the first request that accepts gzip (clients on loopback usually do not ask for it: gzip of
 * a 1,024-GPU snapshot costs ~80 ms of CPU, 30x its render).
 *
 *   GET|HEAD /metrics   Prometheus text 0.0.4, gzip when the client accepts it
 *   GET|HEAD /          a short index page
 *   GET|HEAD /healthz   "ok"
 *   anything else       404; another method on a known path: 405 with Allow
 *
 * Requests are bounded (header memory, connections in all and per client, idle timeout).
 * Service face: create, start, stop, stats, destroy.
 */
#ifndef GPUHEALTH_EXPORTER_H
#define GPUHEALTH_EXPORTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "exporter/render.h"
#include "sim/sim.h"

struct exporter_params {
	const char *listen;        /* "HOST:PORT", ":PORT" (every address), "[::1]:PORT"; port 0
	                              picks a free port (see exporter_address) */
	double speed;              /* simulated seconds per real second */
	double poll_interval;      /* simulated seconds between renders */
	struct render_opts render; /* the strings are copied */
	unsigned http_threads;     /* 0: one per CPU, 2 to 16 */
};

struct exporter_stats {
	uint64_t requests;     /* every request answered */
	uint64_t metrics;      /* 200 on /metrics */
	uint64_t gzip;         /* of which gzip */
	uint64_t not_found;    /* 404 */
	uint64_t not_allowed;  /* 405 */
	uint64_t renders;      /* snapshots published */
	double sim_time;       /* simulated time of the current snapshot */
	double last_render_ms; /* advance + render of the last snapshot */
	size_t body_bytes;     /* size of the current plain body */
	size_t gzip_bytes;     /* size of the current gzip body (0 until one is asked for) */
};

struct exporter;

/* Creates an exporter over sim, which it owns from now on (also when this fails).
 * Returns 0, -EINVAL (bad parameters, message in err) or -ENOMEM. */
int exporter_create(struct exporter **out, struct sim *sim, const struct exporter_params *params,
                    char *err, size_t errlen);

/* Where the GPUs come from: the simulator (exporter_create wraps it) or a live source such as
 * NVML (nvml_exporter_source). The functions run on the exporter's update thread only (and in
 * exporter_start, before it exists). */
struct exporter_view {
	const struct sim_gpu *gpus;
	size_t count;
	/* time of the values, for the X-Gpuhealth-Simulated-Time header and the stats */
	double time;
};
struct exporter_source {
	/* Brings the GPUs up to time t (seconds since start, t = k * poll_interval): the simulator
	 * advances to it, a live source reads the hardware now. Returns 0 or -errno. */
	int (*update)(void *ud, double t);
	/* The GPUs as they are now (borrowed until the next update). */
	void (*view)(void *ud, struct exporter_view *out);
	void (*destroy)(void *ud); /* may be NULL */
	void *ud;
};

/* Creates an exporter over a source, which it owns from now on (src->destroy(src->ud) is
 * called by exporter_destroy, or here when this fails). Same returns as exporter_create. */
int exporter_create_source(struct exporter **out, const struct exporter_source *src,
                           const struct exporter_params *params, char *err, size_t errlen);

/* Renders the first snapshot, binds the address, starts the threads. Returns 0, or -errno with
 * a message in err: -EADDRINUSE (port taken), -EACCES, -EINVAL (address not understood), ... */
int exporter_start(struct exporter *ex, char *err, size_t errlen);

/* The bound address as "HOST:PORT" (valid after a successful start). */
const char *exporter_address(const struct exporter *ex);

/* Stops the threads and closes the socket; idempotent. */
void exporter_stop(struct exporter *ex);

void exporter_get_stats(struct exporter *ex, struct exporter_stats *out);

void exporter_destroy(struct exporter *ex);

/* True when an Accept-Encoding header value admits gzip (a "gzip" or "*" coding without
 * q=0). NULL admits nothing. */
bool exporter_accepts_gzip(const char *accept_encoding);

/* The exporter as a service over a struct exporter (exporter_create, nvml_exporter_create;
 * service_wrap): start (listen), its stats line, stop, destroy (exporter_service.c). */
struct service_ops;
extern const struct service_ops exporter_service_ops;

#endif
