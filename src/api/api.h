/*
 * api: the read-only HTTP API (`gpuhealth api`): JSON over libmicrohttpd, from the database
 * that the sink and the scorer fill. docs/openapi.yaml describes every endpoint.
 *
 * Each HTTP worker thread borrows a PostgreSQL connection from a small pool (one per worker)
 * and runs parameterized queries only; the connections are read-only sessions
 * (default_transaction_read_only) and are meant for a role in gpuhealth_reader.
 *
 * Its parts: api.c (this interface: the HTTP server, the router, the API's own counters),
 * api_pool.h (the connections), api_json.h (result rows as JSON), and private to src/api,
 * api_int.h (the request being answered and the endpoints' handlers: api_req.c, api_ep.c,
 * api_page.c).
 */
#ifndef GPUHEALTH_API_H
#define GPUHEALTH_API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct api_params {
	const char *listen;   /* HOST:PORT, ":8080" when NULL */
	const char *conninfo; /* libpq conninfo or URI; NULL: the PG* environment */
	unsigned threads;     /* HTTP worker threads = pooled connections; 0: 4 */
	unsigned per_client;  /* connections one client address may hold; 0: 32 */
};

struct api_stats {
	uint64_t requests, responses_2xx, responses_4xx, responses_5xx, db_errors;
	unsigned db_connections; /* open pooled connections */
};

struct api;

/* Copies what it keeps from params. Returns 0, or -EINVAL/-ENOMEM with a message in err. */
int api_create(struct api **out, const struct api_params *params, char *err, size_t errlen);
/* Binds the address and starts serving. Returns 0 or -errno with a message in err. */
int api_start(struct api *api, char *err, size_t errlen);
/* The bound address, e.g. "127.0.0.1:8080" (valid after api_start). */
const char *api_address(const struct api *api);
/* Stops serving; in-flight requests finish first. */
void api_stop(struct api *api);
void api_stats(struct api *api, struct api_stats *out);
void api_destroy(struct api *api);

/* Parses a time parameter: RFC 3339 or Unix seconds, from 1970 to 9999-12-31T23:59:59Z.
 * Returns 0 or -EINVAL. */
int api_parse_time(const char *text, double *epoch);
/* The HTTP status a failed query gets by its SQLSTATE (NULL: libpq's own error, i.e. the
 * connection): 503 when the database is unreachable (08xxx, 57P01-57P03, 53300), 400 for a
 * data exception the request's values caused (22xxx), else 500. */
int api_sqlstate_status(const char *sqlstate);

#endif
