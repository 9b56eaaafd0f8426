/* The --inject fault specification parser: every kind, units, defaults, and the errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "sim/inject.h"

static void test_every_kind_parses(void **state)
{
	(void)state;
	for (unsigned k = 0; k < INJECT_KIND_COUNT; k++) {
		char spec[128], err[1024] = "";
		struct inject_spec s;
		const char *name = inject_kind_name((enum inject_kind)k);
		snprintf(spec, sizeof(spec), "gpu=2,fault=%s,at=45s%s", name,
			 k == INJECT_XID ? ",xid=13" : "");
		assert_int_equal(inject_parse(spec, 8, &s, err, sizeof(err)), 0);
		assert_int_equal(s.kind, k);
		assert_int_equal(s.gpu, 2);
		assert_true(s.at == 45.0);
		assert_true(s.duration < 0); /* not given */
		assert_int_equal(s.xid, k == INJECT_XID ? 13 : 0);
	}
}

static void test_units_order_and_duration(void **state)
{
	(void)state;
	struct inject_spec s;
	char err[1024];
	assert_int_equal(inject_parse("at=2m,fault=thermal-runaway,gpu=0,duration=90s", 1, &s, err,
				      sizeof(err)),
			 0);
	assert_true(s.at == 120.0);
	assert_true(s.duration == 90.0);
	assert_int_equal(s.kind, INJECT_THERMAL_RUNAWAY);
	assert_int_equal(inject_parse("gpu=7,fault=xid,xid=79,at=500ms", 8, &s, err, sizeof(err)), 0);
	assert_true(s.at == 0.5);
	assert_int_equal(s.xid, 79);
	assert_int_equal(inject_parse("gpu=0,fault=dbe,at=0", 1, &s, err, sizeof(err)), 0);
	assert_true(s.at == 0.0);
	assert_true(inject_kind_lasts(INJECT_SBE_STORM));
	assert_false(inject_kind_lasts(INJECT_DBE));
}

/* Each bad spec fails with a message that names the problem and shows the syntax. */
static void test_bad_specs(void **state)
{
	(void)state;
	static const struct {
		const char *spec, *says;
	} bad[] = {
		{"", "empty"},
		{"gpu=1,fault=dbe", "at= is missing"},
		{"fault=dbe,at=3", "gpu= is missing"},
		{"gpu=1,at=3", "fault= is missing"},
		{"gpu=8,fault=dbe,at=3", "out of range"},
		{"gpu=-1,fault=dbe,at=3", "not a GPU index"},
		{"gpu=x,fault=dbe,at=3", "not a GPU index"},
		{"gpu=1,fault=meltdown,at=3", "unknown fault 'meltdown'"},
		{"gpu=1,fault=dbe,at=soon", "not a time"},
		{"gpu=1,fault=dbe,at=-5", "not a time"},
		{"gpu=1,fault=xid,at=3", "needs xid="},
		{"gpu=1,fault=xid,xid=0,at=3", "not an XID code"},
		{"gpu=1,fault=xid,xid=4096,at=3", "not an XID code"},
		{"gpu=1,fault=dbe,xid=48,at=3", "applies to fault=xid only"},
		{"gpu=1,fault=dbe,at=3,duration=10s", "takes no duration"},
		{"gpu=1,fault=power-brake,at=3,duration=0", "not a positive time"},
		{"gpu=1,fault=dbe,at=3,colour=red", "unknown key 'colour'"},
		{"gpu=1,gpu=2,fault=dbe,at=3", "gpu= given twice"},
		{"gpu=1,fault=dbe,at", "not key=value"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct inject_spec s;
		char err[1024] = "";
		int rc = inject_parse(bad[i].spec, 8, &s, err, sizeof(err));
		if (rc == 0 || !strstr(err, bad[i].says) ||
		    !strstr(err, "gpu=N,fault=KIND,at=TIME"))
			fail_msg("'%s': rc %d, message '%s' (wanted '%s' and the syntax)", bad[i].spec, rc,
				 err, bad[i].says);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_kind_parses),
		cmocka_unit_test(test_units_order_and_duration),
		cmocka_unit_test(test_bad_specs),
	};
	return cmocka_run_group_tests_name("fault injection specs", tests, NULL, NULL);
}
