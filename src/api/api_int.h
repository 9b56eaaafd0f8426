/*
 * api_int: private to src/api (included by its files only): what the pieces of the API share
 * to answer one request. api.c (the HTTP server and its router) fills a struct api_req with the
 * request's query parameters, calls one endpoint's handler, sends the answer the handler set and
 * gives back the database connection the request borrowed. api_req.c has what every handler
 * uses: its parameters checked, its answer set, its queries run (the error body when one
 * fails); api_ep.c the endpoints that answer one object (a GPU, its metrics and health, the
 * fleet summary, the alerts, /healthz); api_page.c the paged lists (/api/v1/gpus and
 * /api/v1/workloads: keyset paging with base64url cursors).
 *
 * A request is answered on its connection's thread; struct api_req is that thread's alone.
 */
#ifndef GPUHEALTH_API_INT_H
#define GPUHEALTH_API_INT_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "api/api_pool.h"

struct pg_result; /* libpq's PGresult */

#define API_MAX_ARGS 16  /* query parameters of a request */
#define API_MAX_KEY  128 /* bytes of a GPU key (and of a parameter's name in an error) */

/* A GPU's columns (of gpus g) in every answer that shows one */
#define API_GPU_COLS                                                                               \
	"g.gpu_key, g.uuid, g.mig_instance, g.mig_profile, g.gpu_index, g.hostname, g.model, "     \
	"g.pci_bus_id, g.device, g.driver_version, g.cluster, g.datacenter, g.rack, "              \
	"g.first_seen, "                                                                           \
	"g.last_seen"

/* One request being answered. */
struct api_req {
	struct api_pool *pool; /* the API's (not owned) */
	struct api_pconn *pc;  /* borrowed from the pool for the request, lazily */
	const char *keys[API_MAX_ARGS], *vals[API_MAX_ARGS]; /* libmicrohttpd's, for the request */
	int nargs;
	bool too_many, duplicate;
	const char *dup_key;
	json_t *body; /* the answer */
	char *text;   /* or the answer already as JSON text (malloc'd; wins over body) */
	int status;
};

/* ---- api_req.c: what every handler uses */

/* The value of query parameter key, or NULL when it was not given. */
const char *api_req_arg(const struct api_req *rq, const char *key);
/* Sets the answer: status and body (taken; the one set before is freed). */
void api_req_set(struct api_req *rq, int status, json_t *body);
/* Body taken: answers 200 with it when ok, else frees it (the step that failed answered). */
void api_req_ok(struct api_req *rq, bool ok, json_t *body);
/* Every parameter must be one of allowed (NULL-terminated; NULL: the endpoint takes none),
 * given once, valid UTF-8 and bounded; else answers 400 naming it and returns false. */
bool api_req_args_allowed(struct api_req *rq, const char *const *allowed);
/* A parameter's value as an error message may quote it: itself when it is printable ASCII
 * of at most 64 characters, else "(the value given)". */
const char *api_req_echo(const char *value);
/* A time parameter (RFC 3339 or Unix seconds) into *t; NULL text leaves *t alone. false
 * after answering 400 with the parameter named and the accepted forms. */
bool api_req_time(struct api_req *rq, const char *name, const char *text, double *t);
/* Runs a query for the request on a connection borrowed from the pool (kept in rq->pc until
 * the request ends); on failure sets the answer by the cause (never the database's text) and
 * returns NULL. Else the result: the caller PQclears it. */
struct pg_result *api_req_query(struct api_req *rq, const char *sql, int n,
                                const char *const *params);
/* The error body every non-2xx answer carries: {"error": code, "message": ..., "parameter"?},
 * the message and the parameter kept valid UTF-8 whatever they quote. Returns a new reference
 * (NULL: out of memory). */
__attribute__((format(printf, 3, 4))) json_t *api_req_error(const char *code, const char *param,
                                                            const char *fmt, ...);
/* Whether k is a GPU key: 1 to API_MAX_KEY bytes of letters, digits and ._:/- */
bool api_req_valid_key(const char *k);

/* ---- api_ep.c: the endpoints that answer one object; key: a GPU's (api_req_valid_key) */
void api_ep_gpu(struct api_req *rq, const char *key);         /* /api/v1/gpus/{key} */
void api_ep_gpu_metrics(struct api_req *rq, const char *key); /* .../{key}/metrics */
void api_ep_gpu_health(struct api_req *rq, const char *key);  /* .../{key}/health */
void api_ep_fleet(struct api_req *rq);                        /* /api/v1/fleet/summary */
void api_ep_alerts(struct api_req *rq);                       /* /api/v1/alerts */
void api_ep_healthz(struct api_req *rq);                      /* /healthz */

/* ---- api_page.c: the paged lists, each page's next link and cursor in the answer */
void api_page_gpus(struct api_req *rq);      /* /api/v1/gpus */
void api_page_workloads(struct api_req *rq); /* /api/v1/workloads */

#endif
