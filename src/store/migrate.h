/* migrate: applies the embedded schema migrations (`gpuhealth db migrate`). */
#ifndef GPUHEALTH_MIGRATE_H
#define GPUHEALTH_MIGRATE_H

#include <stdbool.h>
#include <stddef.h>

/* libpq's handles, by name only: the modules above store/ never call libpq themselves (only
 * store/ includes libpq-fe.h, which declares the same two types) */
typedef struct pg_conn PGconn;
typedef struct pg_result PGresult;

struct config;

/* The newest migration this build knows. */
int migrate_latest(void);

/*
 * Brings the database up to target (<= 0: the newest), each migration in its own transaction
 * under an advisory lock so concurrent runs serialise; re-running is a no-op. from and to receive
 * the versions before and after. A database newer than this build is an error.
 * Returns 0 or -EIO/-EINVAL with a message in err.
 */
int migrate_apply(PGconn *conn, int target, int *from, int *to, char *err, size_t errlen);

/* The oldest TimescaleDB used: older versions lose rows that INSERT ... ON CONFLICT puts into
 * compressed chunks (TimescaleDB bug #7672, fixed in 2.18.1). */
#define MIGRATE_TIMESCALEDB_MIN "2.18.1"

/* Compares dotted versions ("2.28.3", "2.18.1-dev") numerically, three parts at most:
 * <0, 0 or >0. */
int migrate_version_cmp(const char *a, const char *b);

/* What decides the storage, read from the server before anything is created. */
struct migrate_storage_facts {
	char available[32]; /* default_version in pg_available_extensions, "" when not there */
	char installed[32]; /* extversion in this database, "" when not created */
	bool preloaded;     /* timescaledb in shared_preload_libraries */
};

/*
 * Chooses the storage from the facts: want is "auto", "timescaledb" or "partitioned"; cur is
 * the schema version (0: a new database). Writes "timescaledb" or "partitioned" to chosen and
 * the reason to why; returns 0, or -EINVAL with the reason and the fix in err.
 */
int migrate_choose_storage(const struct migrate_storage_facts *f, const char *want, int cur,
                           char *chosen, size_t chosenlen, char *why, size_t whylen, char *err,
                           size_t errlen);

/*
 * As migrate_apply, with the storage decided first from what the server offers: want is
 * "auto" (TimescaleDB when available in pg_available_extensions, in shared_preload_libraries
 * and at least MIGRATE_TIMESCALEDB_MIN, else native partitions), "timescaledb" (fail with the
 * fix named unless it can be used) or "partitioned". An existing schema keeps its storage.
 * chosen receives "timescaledb" or "partitioned", why the reason. migrate_apply is this with
 * "auto".
 */
int migrate_apply_storage(PGconn *conn, int target, const char *want, int *from, int *to,
                          char *chosen, size_t chosenlen, char *why, size_t whylen, char *err,
                          size_t errlen);

/* Reads the schema version (0 when unmigrated) or returns -EIO. */
int migrate_current(PGconn *conn, int *version, char *err, size_t errlen);

/* `gpuhealth db migrate`: returns the process exit status. */
int migrate_cmd_run(struct config *cfg);

#endif
