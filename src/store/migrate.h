/* migrate: applies the embedded schema migrations (`gpuhealth db migrate`). */
#ifndef GPUHEALTH_MIGRATE_H
#define GPUHEALTH_MIGRATE_H

#include <stddef.h>

#include <libpq-fe.h>

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

/* Reads the schema version (0 when unmigrated) or returns -EIO. */
int migrate_current(PGconn *conn, int *version, char *err, size_t errlen);

/* `gpuhealth db migrate`: returns the process exit status. */
int migrate_cmd_run(struct config *cfg);

#endif
