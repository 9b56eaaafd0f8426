#include "store/migrate.h"

#include <errno.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/exitcode.h"
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

int migrate_version_cmp(const char *a, const char *b)
{
	for (int i = 0; i < 3; i++) {
		long x = strtol(a, (char **)&a, 10), y = strtol(b, (char **)&b, 10);
		if (x != y)
			return x < y ? -1 : 1;
		a += *a == '.';
		b += *b == '.';
	}
	return 0;
}

static int read_facts(PGconn *conn, struct migrate_storage_facts *f, char *err, size_t errlen)
{
	PGresult *r = PQexec(
	    conn,
	    "SELECT coalesce((SELECT default_version FROM pg_available_extensions WHERE name = "
	    "'timescaledb'), ''), coalesce((SELECT extversion FROM pg_extension WHERE extname = "
	    "'timescaledb'), ''), current_setting('shared_preload_libraries') ~ "
	    "'(^|[\\s,])timescaledb([\\s,]|$)'");
	int rc = 0;
	if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1) {
		snprintf(f->available, sizeof(f->available), "%s", PQgetvalue(r, 0, 0));
		snprintf(f->installed, sizeof(f->installed), "%s", PQgetvalue(r, 0, 1));
		f->preloaded = strcmp(PQgetvalue(r, 0, 2), "t") == 0;
	} else {
		snprintf(err, errlen, "cannot read what the server offers for storage: %s",
		         PQerrorMessage(conn));
		rc = -EIO;
	}
	PQclear(r);
	return rc;
}

#define PRELOAD_FIX                                                                                \
	"add timescaledb to shared_preload_libraries in postgresql.conf "                          \
	"(shared_preload_libraries "                                                               \
	"= 'timescaledb') and restart the server"

int migrate_choose_storage(const struct migrate_storage_facts *f, const char *want, int cur,
                           char *chosen, size_t chosenlen, char *why, size_t whylen, char *err,
                           size_t errlen)
{
	bool want_ts = strcmp(want, "timescaledb") == 0,
	     want_part = strcmp(want, "partitioned") == 0;
	if (!want_ts && !want_part && strcmp(want, "auto") != 0) {
		snprintf(err, errlen, "--storage %s: use auto, timescaledb or partitioned", want);
		return -EINVAL;
	}
	if (f->installed[0]) {
		/* this database already uses TimescaleDB: it must load, and be recent enough */
		if (want_part) {
			snprintf(
			    err, errlen,
			    "--storage partitioned: this database has the timescaledb extension "
			    "(%s); use a database without it",
			    f->installed);
			return -EINVAL;
		}
		if (!f->preloaded) {
			snprintf(
			    err, errlen,
			    "this database uses TimescaleDB %s but the server does not preload it: "
			    "%s",
			    f->installed, PRELOAD_FIX);
			return -EINVAL;
		}
		if (migrate_version_cmp(f->installed, MIGRATE_TIMESCALEDB_MIN) < 0) {
			snprintf(
			    err, errlen,
			    "this database has TimescaleDB %s, older than the minimum %s (older "
			    "versions lose rows inserted into compressed chunks, TimescaleDB bug "
			    "#7672): install %s or newer, then ALTER EXTENSION timescaledb UPDATE",
			    f->installed, MIGRATE_TIMESCALEDB_MIN, MIGRATE_TIMESCALEDB_MIN);
			return -EINVAL;
		}
		snprintf(chosen, chosenlen, "timescaledb");
		snprintf(why, whylen, "the database has TimescaleDB %s", f->installed);
		return 0;
	}
	if (cur > 0) {
		if (want_ts) {
			snprintf(err, errlen,
			         "--storage timescaledb: this database's schema (version %d) uses "
			         "native "
			         "partitions; the storage of an existing schema does not change: "
			         "migrate a "
			         "new database",
			         cur);
			return -EINVAL;
		}
		snprintf(chosen, chosenlen, "partitioned");
		snprintf(why, whylen, "the existing schema uses native partitions");
		return 0;
	}
	snprintf(chosen, chosenlen, "partitioned");
	if (want_part) {
		snprintf(why, whylen, "--storage partitioned");
		return 0;
	}
	const char *no = NULL;
	char buf[512];
	if (!f->available[0]) {
		no = "the timescaledb extension is not installed on the server (not in "
		     "pg_available_extensions)";
	} else if (!f->preloaded) {
		snprintf(
		    buf, sizeof(buf),
		    "TimescaleDB %s is installed but not in shared_preload_libraries (to use it: "
		    "%s)",
		    f->available, PRELOAD_FIX);
		no = buf;
	} else if (migrate_version_cmp(f->available, MIGRATE_TIMESCALEDB_MIN) < 0) {
		snprintf(
		    buf, sizeof(buf),
		    "TimescaleDB %s is older than the minimum %s (older versions lose rows "
		    "inserted into compressed chunks, TimescaleDB bug #7672): install %s or newer",
		    f->available, MIGRATE_TIMESCALEDB_MIN, MIGRATE_TIMESCALEDB_MIN);
		no = buf;
	}
	if (no && want_ts) {
		snprintf(err, errlen, "--storage timescaledb: %s", no);
		return -EINVAL;
	}
	if (no) {
		snprintf(why, whylen, "%s", no);
		return 0;
	}
	snprintf(chosen, chosenlen, "timescaledb");
	snprintf(why, whylen, "TimescaleDB %s is installed and preloaded", f->available);
	return 0;
}

int migrate_apply(PGconn *conn, int target, int *from, int *to, char *err, size_t errlen)
{
	char chosen[16], why[512];
	return migrate_apply_storage(conn, target, "auto", from, to, chosen, sizeof(chosen), why,
	                             sizeof(why), err, errlen);
}

int migrate_apply_storage(PGconn *conn, int target, const char *want, int *from, int *to,
                          char *chosen, size_t chosenlen, char *why, size_t whylen, char *err,
                          size_t errlen)
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
	struct migrate_storage_facts facts;
	if ((rc = read_facts(conn, &facts, err, errlen)) ||
	    (rc = migrate_choose_storage(&facts, want, cur, chosen, chosenlen, why, whylen, err,
	                                 errlen)))
		goto unlock;
	{
		/* read by migration 001's CREATE EXTENSION (for this session) */
		const char *sp[1] = {chosen};
		PGresult *r =
		    PQexecParams(conn, "SELECT set_config('gpuhealth.storage', $1, false)", 1, NULL,
		                 sp, NULL, NULL, 0);
		if (PQresultStatus(r) != PGRES_TUPLES_OK) {
			snprintf(err, errlen, "cannot pass the storage choice: %s",
			         PQerrorMessage(conn));
			rc = -EIO;
		}
		PQclear(r);
		if (rc)
			goto unlock;
	}
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
	char chosen[16] = "", why[512] = "";
	int rc = migrate_apply_storage(conn, (int)config_int(cfg, "schema-version"),
	                               config_str(cfg, "storage"), &from, &to, chosen,
	                               sizeof(chosen), why, sizeof(why), err, sizeof(err));
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
	printf("storage: %s, because %s\n", chosen, why);
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
