/*
 * webhook: POSTs alert JSON to a URL from its own thread, so a slow or dead endpoint never
 * blocks scoring. webhook_post() only queues (bounded; the oldest is dropped and counted when
 * full); the thread sends with libcurl, a timeout per attempt, and retries with exponential
 * backoff; a 2xx answer is success.
 */
#ifndef GPUHEALTH_HEALTH_WEBHOOK_H
#define GPUHEALTH_HEALTH_WEBHOOK_H

#include <curl/curl.h>
#include <stddef.h>
#include <stdint.h>

#define WEBHOOK_QUEUE_MAX 1024

struct webhook_opts {
	const char *url;  /* http(s)://... */
	double timeout_s; /* per attempt, connection included */
	int retries;      /* attempts after the first */
	double backoff_s; /* first wait between attempts; doubles each time */
};

struct webhook_stats {
	uint64_t queued, sent, failed, dropped, attempts;
	size_t pending;
};

struct webhook;

/* Creates and starts the sender thread. Returns 0 or -EINVAL/-ENOMEM/-errno with err set. */
int webhook_create(struct webhook **out, const struct webhook_opts *o, char *err, size_t errlen);
/* Queues a copy of body (never blocks on the network). Returns 0 or -ENOMEM. */
int webhook_post(struct webhook *w, const char *body, size_t len);
void webhook_stats(struct webhook *w, struct webhook_stats *out);
/* Stops the thread (an attempt in flight ends by its timeout at the latest); bodies still
 * queued are dropped and counted. */
void webhook_destroy(struct webhook *w);

/* One JSON POST of body to url on the caller's easy handle (reset first), connection and
 * answer within timeout_ms; 0 on a 2xx answer, else -EIO with why set (libcurl's error or the
 * HTTP status). Also the Alertmanager sender's (alertmanager.c). */
int webhook_post_json(CURL *c, const char *url, const char *body, size_t len, long timeout_ms,
                      char *why, size_t whylen);

#endif
