#include "store/migrate.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "core/config.h"
#include "core/log.h"
#include "store/migrations_data.h"
#include "store/pg.h"

/* Any constant: serialises migrators across processes. */
#define MIGRATE_LOCK_KEY "774411"

int migrate_latest(void) { return (int)migrations_data_count; }

int migrate_current(PGconn *conn, int *version, char *err, size_t errlen)
{
	PGresult *r = PQexec(conn, "SELECT coalesce(max(version), 0) FROM gpuhealth_migrations");
	int rc = 0;
	if (PQresultStatus(r) == PGRES_TUPLES_OK) {
		*version = atoi(PQgetvalue(r, 0, 0));
	} else if (strcmp(PQresultErrorField(r, PG_DIAG_SQLSTATE) ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : "",
			  "42P01") == 0) {
		*version = 0; /* undefined_table: never migrated */
	} else {
		snprintf(err, errlen, "cannot read the schema version: %s", PQerrorMessage(conn));
		rc = -EIO;
	}
	PQclear(r);
	return rc;
}

static int apply_one(PGconn *conn, const struct migration *m, char *err, size_t errlen)
{
	char why[1024];
	if (pg_exec(conn, "BEGIN", why, sizeof(why)))
		goto fail;
	if (pg_exec(conn, m->sql, why, sizeof(why)))
		goto rollback;
	char ver[16];
	snprintf(ver, sizeof(ver), "%d", m->version);
	const char *params[2] = {ver, m->name};
	PGresult *r = PQexecParams(conn, "INSERT INTO gpuhealth_migrations (version, name) VALUES ($1, $2)",
				   2, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(r) != PGRES_COMMAND_OK) {
		snprintf(why, sizeof(why), "%s", PQerrorMessage(conn));
		PQclear(r);
		goto rollback;
	}
	PQclear(r);
	if (pg_exec(conn, "COMMIT", why, sizeof(why)))
		goto fail;
	return 0;
rollback:
	pg_exec(conn, "ROLLBACK", err, errlen);
fail:
	snprintf(err, errlen, "migration %s failed (nothing of it was applied): %s", m->name, why);
	return -EIO;
}

int migrate_apply(PGconn *conn, int target, int *from, int *to, char *err, size_t errlen)
{
	int latest = migrate_latest();
	if (target <= 0)
		target = latest;
	if (target > latest) {
		snprintf(err, errlen, "schema version %d does not exist; this build knows 1 to %d", target,
			 latest);
		return -EINVAL;
	}
	int rc = pg_exec(conn, "SELECT pg_advisory_lock(" MIGRATE_LOCK_KEY ")", err, errlen);
	if (rc)
		return rc;
	rc = pg_exec(conn,
		     "SET client_min_messages = warning;"
		     "CREATE TABLE IF NOT EXISTS gpuhealth_migrations ("
		     " version integer PRIMARY KEY, name text NOT NULL,"
		     " applied_at timestamptz NOT NULL DEFAULT now())",
		     err, errlen);
	if (rc)
		goto unlock;
	int cur = 0;
	rc = migrate_current(conn, &cur, err, errlen);
	if (rc)
		goto unlock;
	*from = cur;
	if (cur > latest) {
		snprintf(err, errlen,
			 "the database schema is at version %d, newer than this gpuhealth knows (%d): "
			 "upgrade gpuhealth",
			 cur, latest);
		rc = -EINVAL;
		goto unlock;
	}
	for (size_t i = 0; i < migrations_data_count; i++) {
		const struct migration *m = &migrations_data[i];
		if (m->version <= cur || m->version > target)
			continue;
		rc = apply_one(conn, m, err, errlen);
		if (rc)
			goto unlock;
		log_info("applied migration %s", m->name);
		cur = m->version;
	}
	*to = cur;
unlock:;
	char ignore[256];
	pg_exec(conn, "SELECT pg_advisory_unlock(" MIGRATE_LOCK_KEY ")", ignore, sizeof(ignore));
	return rc;
}

/* Writes a setting (an interval in seconds) into gpuhealth_settings. */
static int set_interval(PGconn *conn, const char *key, double seconds, char *err, size_t errlen)
{
	char val[64];
	snprintf(val, sizeof(val), "%.0f seconds", seconds);
	const char *params[2] = {val, key};
	PGresult *r = PQexecParams(conn, "UPDATE gpuhealth_settings SET value = $1 WHERE key = $2", 2,
				   NULL, params, NULL, NULL, 0);
	int rc = PQresultStatus(r) == PGRES_COMMAND_OK ? 0 : -EIO;
	if (rc)
		snprintf(err, errlen, "cannot set %s: %s", key, PQerrorMessage(conn));
	PQclear(r);
	return rc;
}

int migrate_cmd_run(struct config *cfg)
{
	char err[1024];
	int status = CLI_EXIT_FAILURE;
	PGconn *conn = pg_connect(config_str(cfg, "db"), "gpuhealth-migrate", err, sizeof(err));
	if (!conn) {
		log_error("%s", err);
		return CLI_EXIT_FAILURE;
	}
	int from = 0, to = 0;
	int rc = migrate_apply(conn, (int)config_int(cfg, "schema-version"), &from, &to, err, sizeof(err));
	if (rc) {
		log_error("%s", err);
		status = rc == -EINVAL ? CLI_EXIT_USAGE : CLI_EXIT_FAILURE;
		goto out;
	}
	if (config_is_set(cfg, "retention") &&
	    set_interval(conn, "retention", config_double(cfg, "retention"), err, sizeof(err)))
		goto fail;
	if (config_is_set(cfg, "compress-after") &&
	    set_interval(conn, "compress_after", config_double(cfg, "compress-after"), err, sizeof(err)))
		goto fail;
	PGresult *r = PQexec(conn, "SELECT gpuhealth_apply_policies()");
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		snprintf(err, sizeof(err), "cannot apply storage policies: %s", PQerrorMessage(conn));
		PQclear(r);
		goto fail;
	}
	if (from == to)
		printf("schema is up to date at version %d; storage: %s\n", to, PQgetvalue(r, 0, 0));
	else
		printf("schema migrated from version %d to %d; storage: %s\n", from, to, PQgetvalue(r, 0, 0));
	PQclear(r);
	status = CLI_EXIT_OK;
	goto out;
fail:
	log_error("%s", err);
out:
	PQfinish(conn);
	return status;
}
