/* discovery: Prometheus target groups (JSON and YAML) -> URLs and enrichment; bad input named. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "collect/discovery.h"

static char **U;
static struct events_enrich *E;
static size_t N;
static char ERR[1024];

static int parse(const char *text, bool yaml)
{
	discovery_free_list(U, E, N);
	U = NULL;
	E = NULL;
	N = 0;
	ERR[0] = '\0';
	return discovery_parse_groups(text, strlen(text), yaml, "file_sd 'x.json'", &U, &E, &N, ERR,
	                              sizeof(ERR));
}

static int teardown(void **state)
{
	(void)state;
	discovery_free_list(U, E, N);
	U = NULL;
	E = NULL;
	N = 0;
	return 0;
}

static void test_groups(void **state)
{
	(void)state;
	assert_int_equal(
	    parse("[{\"targets\": [\"a:9400\", \"b:9400\"], \"labels\": {\"cluster\": "
	          "\"c1\", \"rack\": \"r2\", \"team\": \"vision\", \"__meta_k\": \"x\", "
	          "\"zone\": \"b\"}},"
	          " {\"targets\": [\"c:1\"], \"labels\": {\"__scheme__\": \"https\", "
	          "\"__metrics_path__\": \"/m/x\"}},"
	          " {\"targets\": [\"a:9400\"], \"labels\": {\"cluster\": \"other\"}}]",
	          false),
	    0);
	assert_int_equal(N, 3); /* a:9400 again: kept once, the first */
	assert_string_equal(U[0], "http://a:9400/metrics");
	assert_string_equal(U[1], "http://b:9400/metrics");
	assert_string_equal(U[2], "https://c:1/m/x");
	assert_string_equal(E[0].cluster, "c1");
	assert_null(E[0].datacenter);
	assert_string_equal(E[0].rack, "r2");
	assert_string_equal(E[0].labels, "{\"team\":\"vision\",\"zone\":\"b\"}");
	assert_string_equal(E[1].labels, E[0].labels);
	assert_null(E[2].cluster);
	assert_null(E[2].labels);
}

static void test_yaml(void **state)
{
	(void)state;
	assert_int_equal(parse("- targets: ['n1:9400', n2:9400]\n"
	                       "  labels:\n"
	                       "    datacenter: dc-7\n"
	                       "    pool: a100\n"
	                       "- targets:\n"
	                       "  - n3:9400\n",
	                       true),
	                 0);
	assert_int_equal(N, 3);
	assert_string_equal(U[1], "http://n2:9400/metrics");
	assert_string_equal(E[1].datacenter, "dc-7");
	assert_string_equal(E[1].labels, "{\"pool\":\"a100\"}");
	assert_null(E[2].datacenter);
	assert_int_equal(parse("[]", true), 0);
	assert_int_equal(N, 0);
	/* no document, or null: no groups, as Prometheus reads it */
	assert_int_equal(parse("", true), 0);
	assert_int_equal(N, 0);
	assert_int_equal(parse("# nothing yet\n", true), 0);
	assert_int_equal(N, 0);
	assert_int_equal(parse("~\n", true), 0);
	assert_int_equal(N, 0);
	assert_int_equal(parse("- targets: [n1:9400]\n  labels:\n", true), 0);
	assert_int_equal(N, 1);
	assert_null(E[0].labels);
}

static void test_bad(void **state)
{
	(void)state;
	assert_int_equal(parse("[{\"targets\": [\"a:1\"", false), -EINVAL);
	assert_non_null(strstr(ERR, "file_sd 'x.json': not valid JSON: line 1"));
	assert_int_equal(parse("{\"targets\": [\"a:1\"]}", false), -EINVAL);
	assert_non_null(strstr(ERR, "not a list of target groups"));
	assert_int_equal(parse("[{\"labels\": {}}]", false), -EINVAL);
	assert_non_null(strstr(ERR, "group 1 has no \"targets\" list"));
	assert_int_equal(parse("[{\"targets\": [\"a:1\"], \"labels\": {\"n\": 3}}]", false),
	                 -EINVAL);
	assert_non_null(strstr(ERR, "label \"n\" is not a string"));
	assert_int_equal(parse("[{\"targets\": [\"http://a:1/metrics\"]}]", false), -EINVAL);
	assert_non_null(strstr(ERR, "target 1 is not a \"host:port\""));
	assert_int_equal(parse("[{\"targets\": [\"a b:1\"]}]", false), -EINVAL);
	assert_non_null(strstr(ERR, "group 1: target \"a b:1\""));
	assert_int_equal(
	    parse("[{\"targets\": [\"a:1\"], \"labels\": {\"__scheme__\": \"ftp\"}}]", false),
	    -EINVAL);
	assert_non_null(strstr(ERR, "is not http or https"));
	assert_int_equal(parse("[{\"targets\": [\"a:1\"], \"labels\": {\"\": \"x\"}}]", false),
	                 -EINVAL);
	assert_non_null(strstr(ERR, "group 1: label name \"\" is empty or holds a control"));
	assert_int_equal(
	    parse("[{\"targets\": [\"a:1\"], \"labels\": {\"a\\u0001b\": \"x\"}}]", false),
	    -EINVAL);
	assert_non_null(strstr(ERR, "is empty or holds a control character"));
	/* Prometheus 3 takes UTF-8 label names: so does discovery */
	assert_int_equal(
	    parse("[{\"targets\": [\"a:1\"], \"labels\": {\"k8s.io/zone\": \"x\"}}]", false), 0);
	assert_string_equal(E[0].labels, "{\"k8s.io/zone\":\"x\"}");
	assert_int_equal(parse("[]", false), 0);     /* an empty JSON list: no groups */
	assert_int_equal(parse("", false), -EINVAL); /* an empty JSON file is not JSON */
	assert_int_equal(parse("- targets: [a:1\n  labels: {a: b\n", true), -EINVAL);
	assert_non_null(strstr(ERR, "not valid YAML: line"));
	assert_int_equal(parse("- &x {targets: [a:1]}\n- *x\n", true), -EINVAL);
	assert_non_null(strstr(ERR, "aliases are not supported"));
	assert_int_equal(N, 0);
}

static void test_many(void **state)
{
	(void)state;
	/* 10,000 targets with duplicates spread over them: each kept once, in order */
	size_t cap = 10000 * 40 + 64, len = 0;
	char *t = malloc(cap);
	assert_non_null(t);
	len += (size_t)snprintf(t + len, cap - len, "[{\"targets\": [");
	for (int i = 0; i < 10000; i++)
		len +=
		    (size_t)snprintf(t + len, cap - len, "%s\"h%d:9400\"", i ? "," : "", i % 5000);
	snprintf(t + len, cap - len, "]}]");
	assert_int_equal(parse(t, false), 0);
	free(t);
	assert_int_equal(N, 5000);
	assert_string_equal(U[0], "http://h0:9400/metrics");
	assert_string_equal(U[4999], "http://h4999:9400/metrics");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_teardown(test_groups, teardown),
	    cmocka_unit_test_teardown(test_yaml, teardown),
	    cmocka_unit_test_teardown(test_bad, teardown),
	    cmocka_unit_test_teardown(test_many, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
