/* Against the real PostgreSQL (GPUHEALTH_TEST_PG): a parameterised round trip and a COPY. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <libpq-fe.h>

static PGconn *connect_or_fail(void)
{
	const char *ci = getenv("GPUHEALTH_TEST_PG");
	if (!ci || !*ci)
		fail_msg("GPUHEALTH_TEST_PG is not set: the integration tests need the real PostgreSQL "
			 "that scripts/test.sh starts (run the README's test command)");
	PGconn *c = PQconnectdb(ci);
	if (PQstatus(c) != CONNECTION_OK) {
		char msg[512];
		snprintf(msg, sizeof(msg), "%s", PQerrorMessage(c));
		PQfinish(c);
		fail_msg("PostgreSQL at '%s' is unreachable: %s(start it with scripts/test.sh or fix "
			 "GPUHEALTH_TEST_PG)",
			 ci, msg);
	}
	return c;
}

static void ok(PGresult *r, ExecStatusType want, PGconn *c)
{
	if (PQresultStatus(r) != want)
		fail_msg("query failed: %s", PQerrorMessage(c));
}

static void test_params_round_trip(void **state)
{
	(void)state;
	PGconn *c = connect_or_fail();
	PGresult *r = PQexec(c, "CREATE TEMP TABLE t (uuid text, temp double precision, n bigint)");
	ok(r, PGRES_COMMAND_OK, c);
	PQclear(r);
	/* Text that would break SQL built from strings travels safely as a parameter. */
	const char *vals[3] = {"GPU-'; DROP TABLE t; --", "65.5", "9223372036854775791"};
	r = PQexecParams(c, "INSERT INTO t VALUES ($1, $2, $3)", 3, NULL, vals, NULL, NULL, 0);
	ok(r, PGRES_COMMAND_OK, c);
	PQclear(r);
	const char *key[1] = {vals[0]};
	r = PQexecParams(c, "SELECT temp, n FROM t WHERE uuid = $1", 1, NULL, key, NULL, NULL, 0);
	ok(r, PGRES_TUPLES_OK, c);
	assert_int_equal(PQntuples(r), 1);
	assert_string_equal(PQgetvalue(r, 0, 0), "65.5");
	assert_string_equal(PQgetvalue(r, 0, 1), "9223372036854775791");
	PQclear(r);
	PQfinish(c);
}

static void test_copy(void **state)
{
	(void)state;
	PGconn *c = connect_or_fail();
	PGresult *r = PQexec(c, "CREATE TEMP TABLE m (uuid text, t timestamptz, power real)");
	ok(r, PGRES_COMMAND_OK, c);
	PQclear(r);
	r = PQexec(c, "COPY m FROM STDIN");
	ok(r, PGRES_COPY_IN, c);
	PQclear(r);
	const int rows = 1000;
	for (int i = 0; i < rows; i++) {
		char line[128];
		int n = snprintf(line, sizeof(line), "GPU-%d\t2026-11-28T12:00:%02d.000Z\t%d.25\n", i % 8,
				 i % 60, i);
		assert_int_equal(PQputCopyData(c, line, n), 1);
	}
	assert_int_equal(PQputCopyEnd(c, NULL), 1);
	r = PQgetResult(c);
	ok(r, PGRES_COMMAND_OK, c);
	assert_string_equal(PQcmdTuples(r), "1000");
	PQclear(r);
	r = PQexec(c, "SELECT count(*), sum(power)::bigint, count(DISTINCT uuid) FROM m");
	ok(r, PGRES_TUPLES_OK, c);
	assert_string_equal(PQgetvalue(r, 0, 0), "1000");
	/* sum(i + 0.25) for i < 1000 = 499500 + 250 */
	assert_string_equal(PQgetvalue(r, 0, 1), "499750");
	assert_string_equal(PQgetvalue(r, 0, 2), "8");
	PQclear(r);
	PQfinish(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_params_round_trip),
		cmocka_unit_test(test_copy),
	};
	return cmocka_run_group_tests_name("postgresql (real server)", tests, NULL, NULL);
}
