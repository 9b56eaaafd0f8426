/* fields.def against the schema: gpu_metrics' columns after the identity ones are the event
 * contract's fields (fields_all()) in order, gauges double precision, counters and codes bigint,
 * then extra jsonb; every field is a renderer family and the health subset resolves. Runs in
 * the source directory (ctest's WORKING_DIRECTORY). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/fields.h"
#include "exporter/render.h"
#include "health/sample.h"
#include "sim/sim.h"

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		fail_msg("cannot open %s (run from the source directory)", path);
	static char buf[1 << 20];
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	return buf;
}

static void test_schema_columns(void **state)
{
	(void)state;
	char *sql = slurp("schema/001_core.sql");
	char *p = strstr(sql, "cols text := $cols$(");
	assert_non_null(p);
	char *end = strstr(p, ")$cols$");
	assert_non_null(end);
	*end = '\0';
	p = strchr(p, '(') + 1;
	size_t n;
	const struct field_def *f = fields_all(&n);
	size_t col = 0, field = 0;
	for (char *line = strtok(p, "\n"); line; line = strtok(NULL, "\n")) {
		char name[64], type[64];
		if (sscanf(line, " %63s %63[a-z ]", name, type) != 2 ||
		    strcmp(name, "PRIMARY") == 0)
			continue;
		if (col++ < 6) /* time, gpu_key, uuid, mig_instance, hostname, gpu_index */
			continue;
		if (field == n) {
			assert_string_equal(name, "extra");
			continue;
		}
		const char *want = f[field].kind == FIELD_GAUGE ? "double precision" : "bigint";
		if (strcmp(name, f[field].key) != 0 || strncmp(type, want, strlen(want)) != 0)
			fail_msg(
			    "gpu_metrics column %zu is %s %s; fields.def's field %zu is %s (%s)",
			    col, name, type, field, f[field].key, want);
		field++;
	}
	assert_int_equal(field, n);
}

static void test_every_row(void **state)
{
	(void)state;
	size_t n;
	const struct field_def *f = fields_all(&n);
	for (size_t i = 0; i < n; i++) {
		assert_non_null(f[i].key);
		assert_ptr_equal(fields_by_key(f[i].key), &f[i]);
		assert_ptr_equal(fields_by_dcgm(f[i].dcgm, strlen(f[i].dcgm)), &f[i]);
		int found = 0;
		for (int s = 0; s < SIM_F_COUNT; s++)
			found += strcmp(render_field_name((enum sim_field)s), f[i].dcgm) == 0;
		assert_int_equal(found, 1);
	}
	/* the violation counters: nanoseconds, as dcgm-exporter's help says */
	assert_string_equal(fields_by_key("power_violation")->unit, "ns");
	assert_string_equal(fields_by_key("thermal_violation")->unit, "ns");
	for (int h = 0; h < HS_COUNT; h++) {
		const char *k = health_sample_field_name((enum hs_field)h);
		assert_true(fields_by_key(k) != NULL || strncmp(k, "DCGM_FI_", 8) == 0);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_schema_columns),
	    cmocka_unit_test(test_every_row),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
