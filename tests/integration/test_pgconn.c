/*
 * store/pgconn against the real PostgreSQL (GPUHEALTH_TEST_PG): a session that the server ends
 * (pg_terminate_backend, as a restart or a failover does) is re-opened by the next ensure, with
 * a new backend, and said to be new; a writer refuses a read-only session with the fix in the
 * message, a reader takes it; SQLSTATEs are classified (refused data -EINVAL, a reconnect-class
 * one marks the session); COPY in text and binary; abort rolls back.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <libpq-fe.h>

#include "core/strbuf.h"
#include "store/pgconn.h"
#include "store/pgcopy.h"

static const char *conninfo(void)
{
	const char *ci = getenv("GPUHEALTH_TEST_PG");
	if (!ci || !*ci)
		fail_msg("GPUHEALTH_TEST_PG is not set: the integration tests need the real PostgreSQL "
		         "that scripts/test.sh starts (run the README's test command)");
	return ci;
}

static int backend_pid(struct pgconn *c)
{
	char err[256], st[6];
	PGresult *r = NULL;
	assert_int_equal(pgconn_exec(c, "SELECT pg_backend_pid()", 0, NULL, &r, err, sizeof(err), st),
	                 0);
	int pid = atoi(PQgetvalue(r, 0, 0));
	PQclear(r);
	return pid;
}

static void lost_session_reopened(void **state)
{
	(void)state;
	char err[512], st[6];
	struct pgconn *c = pgconn_create(conninfo(), "gpuhealth-test");
	assert_non_null(c);
	assert_false(pgconn_up(c));
	int rc = pgconn_ensure(c, PGCONN_WRITER, err, sizeof(err));
	if (rc != 1)
		fail_msg("first ensure: %d %s", rc, err);
	assert_int_equal(pgconn_ensure(c, PGCONN_WRITER, err, sizeof(err)), 0); /* up: nothing */
	int pid = backend_pid(c);

	/* the server ends the session (a restart, a failover, an administrator) */
	struct pgconn *admin = pgconn_create(conninfo(), "gpuhealth-test-admin");
	assert_int_equal(pgconn_ensure(admin, 0, err, sizeof(err)), 1);
	char p[16];
	snprintf(p, sizeof(p), "%d", pid);
	const char *params[1] = {p};
	assert_int_equal(pgconn_exec(admin, "SELECT pg_terminate_backend($1::int)", 1, params, NULL,
	                             err, sizeof(err), st),
	                 0);
	rc = pgconn_exec(c, "SELECT 1", 0, NULL, NULL, err, sizeof(err), st);
	assert_int_equal(rc, -EIO);
	assert_false(pgconn_up(c));
	pgconn_abort(c); /* gone: closed, not rolled back */
	rc = pgconn_ensure(c, PGCONN_WRITER, err, sizeof(err));
	if (rc != 1)
		fail_msg("ensure after the session was ended: %d %s", rc, err);
	assert_true(pgconn_up(c));
	assert_int_not_equal(backend_pid(c), pid);

	/* a session the server ended while it was idle: ensure sees it only by a statement, as a
	 * writer does; PQreset on the kept handle opens the new one */
	pid = backend_pid(c);
	snprintf(p, sizeof(p), "%d", pid);
	assert_int_equal(pgconn_exec(admin, "SELECT pg_terminate_backend($1::int)", 1, params, NULL,
	                             err, sizeof(err), st),
	                 0);
	assert_int_equal(pgconn_exec(c, "SELECT 1", 0, NULL, NULL, err, sizeof(err), st), -EIO);
	assert_non_null(pgconn_db(c)); /* the handle is kept for PQreset */
	assert_int_equal(pgconn_ensure(c, PGCONN_WRITER, err, sizeof(err)), 1);
	assert_int_not_equal(backend_pid(c), pid);
	pgconn_destroy(admin);
	pgconn_destroy(c);
}

static void read_only_refused_for_a_writer(void **state)
{
	(void)state;
	char err[512], ci[1024];
	snprintf(ci, sizeof(ci), "%s options='-c default_transaction_read_only=on'", conninfo());
	struct pgconn *c = pgconn_create(ci, "gpuhealth-test");
	int rc = pgconn_ensure(c, PGCONN_WRITER, err, sizeof(err));
	assert_int_equal(rc, -EIO);
	assert_non_null(strstr(err, "is read-only"));
	assert_non_null(strstr(err, "target_session_attrs=read-write"));
	assert_null(pgconn_db(c));
	assert_int_equal(pgconn_ensure(c, 0, err, sizeof(err)), 1); /* a reader takes it */
	pgconn_destroy(c);
}

static void results_classified(void **state)
{
	(void)state;
	char err[512], st[6];
	struct pgconn *c = pgconn_create(conninfo(), "gpuhealth-test");
	assert_int_equal(pgconn_ensure(c, PGCONN_WRITER, err, sizeof(err)), 1);
	/* refused data: a retry cannot mend it */
	assert_int_equal(pgconn_exec(c, "SELECT 1/0", 0, NULL, NULL, err, sizeof(err), st), -EINVAL);
	assert_string_equal(st, "22012");
	assert_non_null(strstr(err, "division by zero"));
	assert_null(strchr(err, '\n'));
	assert_true(pgconn_up(c));
	/* a SQL error that is no data error: -EIO, the session kept */
	assert_int_equal(pgconn_exec(c, "SELECT * FROM no_such_table_here", 0, NULL, NULL, err,
	                             sizeof(err), st),
	                 -EIO);
	assert_string_equal(st, "42P01");
	assert_true(pgconn_up(c));
	/* read-only SQLSTATE 25006: the session is marked to be replaced */
	assert_int_equal(pgconn_exec(c, "BEGIN READ ONLY", 0, NULL, NULL, err, sizeof(err), st), 0);
	assert_int_equal(pgconn_exec(c, "CREATE TEMP TABLE x (a int)", 0, NULL, NULL, err,
	                             sizeof(err), st),
	                 -EIO);
	assert_string_equal(st, "25006");
	assert_false(pgconn_up(c));
	pgconn_abort(c); /* marked: closed */
	assert_null(pgconn_db(c));
	assert_int_equal(pgconn_ensure(c, PGCONN_WRITER, err, sizeof(err)), 1);
	pgconn_destroy(c);
}

static void copy_and_abort(void **state)
{
	(void)state;
	char err[512], st[6];
	struct pgconn *c = pgconn_create(conninfo(), "gpuhealth-test");
	assert_int_equal(pgconn_ensure(c, PGCONN_WRITER, err, sizeof(err)), 1);
	assert_int_equal(pgconn_exec(c, "CREATE TEMP TABLE t (a int, b text)", 0, NULL, NULL, err,
	                             sizeof(err), st),
	                 0);
	const char *text = "1\tone\n2\ttwo\n";
	assert_int_equal(pgconn_copy_in(c, "COPY t FROM STDIN", false, text, strlen(text), err,
	                                sizeof(err), st),
	                 0);
	struct strbuf b;
	strbuf_init(&b, 0);
	assert_int_equal(pgcopy_tuple(&b, 2), 0);
	assert_int_equal(pgcopy_int4(&b, 3), 0);
	assert_int_equal(pgcopy_text(&b, "three", 5), 0);
	assert_int_equal(pgconn_copy_in(c, "COPY t FROM STDIN (FORMAT binary)", true, b.data, b.len,
	                                err, sizeof(err), st),
	                 0);
	/* refused data in a COPY: -EINVAL with its SQLSTATE */
	const char *bad = "x\ty\n";
	assert_int_equal(pgconn_copy_in(c, "COPY t FROM STDIN", false, bad, strlen(bad), err,
	                                sizeof(err), st),
	                 -EINVAL);
	assert_string_equal(st, "22P02");
	PGresult *r = NULL;
	assert_int_equal(
	    pgconn_exec(c, "SELECT string_agg(b, ',' ORDER BY a) FROM t", 0, NULL, &r, err,
	                sizeof(err), st),
	    0);
	assert_string_equal(PQgetvalue(r, 0, 0), "one,two,three");
	PQclear(r);
	/* abort after a failure in a transaction: rolled back, the session kept */
	assert_int_equal(pgconn_exec(c, "BEGIN", 0, NULL, NULL, err, sizeof(err), st), 0);
	assert_int_equal(pgconn_exec(c, "INSERT INTO t VALUES (4, 'four')", 0, NULL, NULL, err,
	                             sizeof(err), st),
	                 0);
	assert_int_equal(pgconn_exec(c, "SELECT 1/0", 0, NULL, NULL, err, sizeof(err), st), -EINVAL);
	pgconn_abort(c);
	assert_true(pgconn_up(c));
	assert_int_equal(pgconn_exec(c, "SELECT count(*) FROM t", 0, NULL, &r, err, sizeof(err), st),
	                 0);
	assert_string_equal(PQgetvalue(r, 0, 0), "3");
	PQclear(r);
	strbuf_free(&b);
	pgconn_destroy(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(lost_session_reopened),
	    cmocka_unit_test(read_only_refused_for_a_writer),
	    cmocka_unit_test(results_classified),
	    cmocka_unit_test(copy_and_abort),
	};
	return cmocka_run_group_tests_name("pgconn", tests, NULL, NULL);
}
