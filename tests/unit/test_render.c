/* The dcgm-exporter text: families, HELP/TYPE once each, label order and escaping, the host
 * label spelling, fields left out, number formats, buffer bounds. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "exporter/render.h"
#include "sim/inject.h"
#include "sim/sim.h"

static struct sim *fleet(unsigned n, const char *inject, double t)
{
	struct inject_spec f;
	char err[1024];
	if (inject && inject_parse(inject, n, &f, err, sizeof(err)) != 0)
		fail_msg("%s", err);
	struct sim_params p = {.model = sim_model_find("A100-SXM4-80GB"),
	                       .n_gpus = n,
	                       .seed = 1,
	                       .poll_interval = 10,
	                       .faults = inject ? &f : NULL,
	                       .n_faults = inject ? 1 : 0};
	struct sim *s = NULL;
	assert_int_equal(sim_create(&s, &p), 0);
	assert_int_equal(sim_advance(s, t), 0);
	return s;
}

static char *render(const struct sim_gpu *g, size_t n, const struct render_opts *o)
{
	size_t cap = render_bound(n, o), len = 0;
	char *buf = malloc(cap);
	assert_non_null(buf);
	assert_int_equal(render_exposition(g, n, o, buf, cap, &len), 0);
	assert_int_equal(strlen(buf), len);
	return buf;
}

static const struct render_opts opts = {"node-7", "hostname", "550.127.08", "NVIDIA A100-SXM4-80GB",
                                        false};

/* Walks the text line by line: every family has HELP then TYPE once, before its samples. */
static void test_families(void **state)
{
	(void)state;
	struct sim *s = fleet(3, "gpu=1,fault=xid,xid=13,at=5", 20);
	char *text = render(sim_gpus(s), 3, &opts);
	assert_true(strlen(text) > 0 && text[strlen(text) - 1] == '\n');
	char seen[SIM_F_COUNT + 8][64];
	size_t nseen = 0;
	char family[64] = "";
	int state_ = 0; /* 0: expect HELP, 1: expect TYPE, 2: samples */
	unsigned samples = 0;
	char *save = NULL;
	for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char name[64];
		if (strncmp(line, "# HELP ", 7) == 0) {
			assert_true(state_ == 0 || state_ == 2);
			assert_int_equal(sscanf(line + 7, "%63s", name), 1);
			for (size_t i = 0; i < nseen; i++)
				if (strcmp(seen[i], name) == 0)
					fail_msg("HELP of %s twice", name);
			snprintf(seen[nseen++], sizeof(seen[0]), "%s", name);
			snprintf(family, sizeof(family), "%s", name);
			state_ = 1;
		} else if (strncmp(line, "# TYPE ", 7) == 0) {
			assert_int_equal(state_, 1);
			char type[16];
			assert_int_equal(sscanf(line + 7, "%63s %15s", name, type), 2);
			assert_string_equal(name, family);
			assert_true(strcmp(type, "gauge") == 0 || strcmp(type, "counter") == 0);
			state_ = 2;
		} else {
			assert_int_equal(state_, 2);
			size_t fl = strlen(family);
			if (strncmp(line, family, fl) != 0 || line[fl] != '{')
				fail_msg("sample '%s' outside its family %s", line, family);
			samples++;
		}
	}
	assert_int_equal(state_, 2);
	/* every field but the blank ones (retired pages: not on Ampere; XID: GPUs 0 and 2 have
	 * none) for every GPU */
	assert_int_equal(nseen, SIM_F_COUNT - 3);
	assert_int_equal(samples, 3 * (SIM_F_COUNT - 4) + 1);
	free(text);
	sim_destroy(s);
}

static void test_labels_and_values(void **state)
{
	(void)state;
	struct sim *s = fleet(2, "gpu=0,fault=dbe,at=1", 10);
	const struct sim_gpu *g = sim_gpus(s);
	char *text = render(g, 2, &opts);
	char want[512];
	snprintf(
	    want, sizeof(want),
	    "\nDCGM_FI_DEV_MEM_CLOCK{gpu=\"1\",UUID=\"%s\",pci_bus_id=\"%s\",device=\"nvidia1\","
	    "modelName=\"NVIDIA A100-SXM4-80GB\",hostname=\"node-7\","
	    "DCGM_FI_DRIVER_VERSION=\"550.127.08\"} 1593\n",
	    g[1].uuid, g[1].pci_bus_id);
	assert_non_null(strstr(text, want));
	snprintf(
	    want, sizeof(want),
	    "DCGM_FI_DEV_XID_ERRORS{gpu=\"0\",UUID=\"%s\",pci_bus_id=\"%s\",device=\"nvidia0\","
	    "modelName=\"NVIDIA A100-SXM4-80GB\",hostname=\"node-7\","
	    "DCGM_FI_DRIVER_VERSION=\"550.127.08\",err_code=\"48\","
	    "err_msg=\"Double Bit ECC Error\"} 48\n",
	    g[0].uuid, g[0].pci_bus_id);
	assert_non_null(strstr(text, want));
	assert_null(strstr(text, "XID_ERRORS{gpu=\"1\"")); /* blank: left out */
	assert_null(strstr(text, "DCGM_FI_DEV_RETIRED_"));
	assert_non_null(strstr(text, "# TYPE DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION counter\n"));
	assert_non_null(strstr(text, "# TYPE DCGM_FI_PROF_PCIE_TX_BYTES gauge\n"));
	/* FP64 fields print as %f, integer fields without a decimal point */
	const char *p = strstr(text, "\nDCGM_FI_DEV_POWER_USAGE{");
	assert_non_null(p);
	p = strchr(p, '}');
	char pw[64];
	assert_int_equal(sscanf(p + 2, "%63s", pw), 1);
	char expect_pw[64];
	snprintf(expect_pw, sizeof(expect_pw), "%f", g[0].f[SIM_F_POWER_USAGE]);
	assert_string_equal(pw, expect_pw);
	p = strstr(text, "\nDCGM_FI_DEV_GPU_TEMP{");
	p = strchr(p, '}');
	assert_int_equal(sscanf(p + 2, "%63s", pw), 1);
	assert_null(strchr(pw, '.'));
	free(text);
	sim_destroy(s);
}

static void test_escaping_and_host_label(void **state)
{
	(void)state;
	struct sim *s = fleet(1, NULL, 0);
	struct render_opts o = {"we\"ird\\host\nname", "Hostname", "1.2", "NVIDIA \"X\"", false};
	char *text = render(sim_gpus(s), 1, &o);
	assert_non_null(strstr(text, ",Hostname=\"we\\\"ird\\\\host\\nname\","));
	assert_non_null(strstr(text, "modelName=\"NVIDIA \\\"X\\\"\""));
	assert_null(strstr(text, "hostname="));
	/* no raw newline inside a sample line */
	for (const char *l = text; *l;) {
		const char *nl = strchr(l, '\n');
		assert_non_null(nl);
		if (*l != '#')
			assert_non_null(memchr(l, '}', (size_t)(nl - l)));
		l = nl + 1;
	}
	free(text);
	sim_destroy(s);
	assert_string_equal(render_xid_message(79), "GPU has fallen off the bus");
	assert_string_equal(render_xid_message(999), "Unknown Error");
}

/* dcgm-exporter's Kubernetes pod mapping: container, namespace, pod on every sample (empty
 * where no pod holds the GPU), escaped, within render_bound; none without k8s. */
static void test_k8s_labels(void **state)
{
	(void)state;
	struct sim *s = fleet(3, "gpu=0,fault=xid,xid=13,at=5", 20);
	struct sim_gpu g[3];
	memcpy(g, sim_gpus(s), sizeof(g));
	snprintf(g[0].pod, sizeof(g[0].pod), "llm-7b-worker-x2k9q");
	snprintf(g[0].pod_namespace, sizeof(g[0].pod_namespace), "training");
	snprintf(g[0].container, sizeof(g[0].container), "trainer");
	/* the longest values, each character escaped: the bound still holds */
	memset(g[2].pod, '"', sizeof(g[2].pod) - 1);
	memset(g[2].pod_namespace, '\\', sizeof(g[2].pod_namespace) - 1);
	memset(g[2].container, '\n', sizeof(g[2].container) - 1);
	struct render_opts o = opts;
	o.k8s = true;
	char *text = render(g, 3, &o);
	unsigned lines[3] = {0};
	for (char *l = text; *l;) {
		char *nl = strchr(l, '\n');
		assert_non_null(nl);
		*nl = '\0';
		if (*l != '#') {
			int gpu = -1;
			assert_non_null(strstr(l, "{gpu=\""));
			sscanf(strstr(l, "{gpu=\"") + 6, "%d", &gpu);
			assert_true(gpu >= 0 && gpu < 3);
			const char *want[3] = {(",container=\"trainer\",namespace=\"training\",pod="
			                        "\"llm-7b-worker-x2k9q\""),
			                       ",container=\"\",namespace=\"\",pod=\"\"",
			                       ",container=\"\\n\\n"};
			if (!strstr(l, want[gpu]))
				fail_msg("GPU %d's sample has no pod labels: %s", gpu, l);
			if (gpu == 2)
				assert_non_null(strstr(l, ",pod=\"\\\"\\\""));
			lines[gpu]++;
		}
		l = nl + 1;
	}
	assert_true(lines[0] > 10 && lines[1] == lines[0] - 1 && lines[2] == lines[1]);
	free(text);
	text = render(g, 3, &opts);
	assert_null(strstr(text, "pod="));
	assert_null(strstr(text, "container="));
	free(text);
	sim_destroy(s);
}

static void test_absent_gpu_and_bounds(void **state)
{
	(void)state;
	struct sim *s = fleet(4, NULL, 50);
	struct sim_gpu g[4];
	memcpy(g, sim_gpus(s), sizeof(g));
	g[2].present = false;
	char *text = render(g, 4, &opts);
	assert_null(strstr(text, g[2].uuid));
	assert_non_null(strstr(text, g[3].uuid));
	size_t len = strlen(text), got = 0;
	char *small = malloc(len);
	assert_int_equal(render_exposition(g, 4, &opts, small, len, &got), -ENOSPC);
	char *exact = malloc(len + 1);
	assert_int_equal(render_exposition(g, 4, &opts, exact, len + 1, &got), 0);
	assert_int_equal(got, len);
	assert_string_equal(exact, text);
	/* no GPU left: an empty exposition */
	for (int i = 0; i < 4; i++)
		g[i].present = false;
	assert_int_equal(render_exposition(g, 4, &opts, exact, len + 1, &got), 0);
	assert_int_equal(got, 0);
	free(small);
	free(exact);
	free(text);
	sim_destroy(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_families),
	    cmocka_unit_test(test_labels_and_values),
	    cmocka_unit_test(test_escaping_and_host_label),
	    cmocka_unit_test(test_k8s_labels),
	    cmocka_unit_test(test_absent_gpu_and_bounds),
	};
	return cmocka_run_group_tests_name("dcgm-exporter text", tests, NULL, NULL);
}
