/* db migrate's choice of storage (issue #21): TimescaleDB only when available, preloaded and
 * at least 2.18.1; --storage timescaledb fails with the fix named instead of falling back. */
#include <errno.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "store/migrate.h"

static char chosen[16], why[512], err[512];

static int choose(const char *avail, const char *inst, bool preloaded, const char *want, int cur)
{
	struct migrate_storage_facts f = {.preloaded = preloaded};
	snprintf(f.available, sizeof(f.available), "%s", avail);
	snprintf(f.installed, sizeof(f.installed), "%s", inst);
	chosen[0] = why[0] = err[0] = '\0';
	return migrate_choose_storage(&f, want, cur, chosen, sizeof(chosen), why, sizeof(why), err,
	                              sizeof(err));
}

static void test_version_cmp(void **state)
{
	(void)state;
	assert_true(migrate_version_cmp("2.17.2", "2.18.1") < 0);
	assert_true(migrate_version_cmp("2.18.0", "2.18.1") < 0);
	assert_int_equal(migrate_version_cmp("2.18.1", "2.18.1"), 0);
	assert_true(migrate_version_cmp("2.28.3", "2.18.1") > 0);
	assert_true(migrate_version_cmp("2.100.0", "2.18.1") > 0);
	assert_true(migrate_version_cmp("3.0", "2.18.1") > 0);
	assert_true(migrate_version_cmp("2.19.0-dev", "2.18.1") > 0);
}

static void test_auto(void **state)
{
	(void)state;
	assert_int_equal(choose("2.28.3", "", true, "auto", 0), 0);
	assert_string_equal(chosen, "timescaledb");
	assert_non_null(strstr(why, "2.28.3 is installed and preloaded"));

	assert_int_equal(choose("", "", false, "auto", 0), 0);
	assert_string_equal(chosen, "partitioned");
	assert_non_null(strstr(why, "not installed"));

	/* installed, not preloaded: CREATE EXTENSION would raise FATAL */
	assert_int_equal(choose("2.28.3", "", false, "auto", 0), 0);
	assert_string_equal(chosen, "partitioned");
	assert_non_null(strstr(why, "shared_preload_libraries"));

	/* too old: bug #7672 */
	assert_int_equal(choose("2.17.2", "", true, "auto", 0), 0);
	assert_string_equal(chosen, "partitioned");
	assert_non_null(strstr(why, "2.17.2 is older than the minimum 2.18.1"));

	/* an existing partitioned schema stays so, whatever is installed now */
	assert_int_equal(choose("2.28.3", "", true, "auto", 7), 0);
	assert_string_equal(chosen, "partitioned");
}

static void test_timescaledb_required(void **state)
{
	(void)state;
	assert_int_equal(choose("2.28.3", "", false, "timescaledb", 0), -EINVAL);
	assert_non_null(strstr(err, "shared_preload_libraries = 'timescaledb'"));
	assert_int_equal(choose("2.17.2", "", true, "timescaledb", 0), -EINVAL);
	assert_non_null(strstr(err, "2.17.2"));
	assert_non_null(strstr(err, "2.18.1"));
	assert_int_equal(choose("", "", false, "timescaledb", 0), -EINVAL);
	assert_non_null(strstr(err, "pg_available_extensions"));
	assert_int_equal(choose("2.28.3", "", true, "timescaledb", 3), -EINVAL);
	assert_non_null(strstr(err, "native partitions"));
	assert_int_equal(choose("2.28.3", "", true, "timescaledb", 0), 0);
	assert_string_equal(chosen, "timescaledb");
	assert_int_equal(choose("2.28.3", "", true, "bogus", 0), -EINVAL);
	assert_non_null(strstr(err, "auto, timescaledb or partitioned"));
}

static void test_database_with_extension(void **state)
{
	(void)state;
	assert_int_equal(choose("2.28.3", "2.28.3", true, "auto", 9), 0);
	assert_string_equal(chosen, "timescaledb");
	/* an old extension in the database is refused with both versions named */
	assert_int_equal(choose("2.28.3", "2.17.2", true, "auto", 7), -EINVAL);
	assert_non_null(strstr(err, "2.17.2"));
	assert_non_null(strstr(err, "2.18.1"));
	assert_non_null(strstr(err, "ALTER EXTENSION timescaledb UPDATE"));
	/* in the database but no longer preloaded */
	assert_int_equal(choose("2.28.3", "2.28.3", false, "auto", 7), -EINVAL);
	assert_non_null(strstr(err, "shared_preload_libraries"));
	assert_int_equal(choose("2.28.3", "2.28.3", true, "partitioned", 0), -EINVAL);
}

static void test_partitioned(void **state)
{
	(void)state;
	assert_int_equal(choose("2.28.3", "", true, "partitioned", 0), 0);
	assert_string_equal(chosen, "partitioned");
	assert_string_equal(why, "--storage partitioned");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_version_cmp),
	    cmocka_unit_test(test_auto),
	    cmocka_unit_test(test_timescaledb_required),
	    cmocka_unit_test(test_database_with_extension),
	    cmocka_unit_test(test_partitioned),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
