/*
 * Every real dcgm-exporter file in tests/data/dcgm becomes the right events.
 *
 * The expected values come from an independent, deliberately simple reading of each file
 * (line by line with sscanf/strstr, nothing shared with src/prom or src/collect), and the
 * field names from the table of the event contract itself (docs/event-v1.md, the repository's copy of
 * ../shared/contracts/event-v1.md, checked to be identical when ../shared is there).
 * Then the same files, rewritten the ways real exporters differ (CRLF, no final newline,
 * spaces after commas, the new `hostname` label, junk lines), must give the same events.
 */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "collect/events.h"

#define DATA_DIR        "tests/data/dcgm"
#define SHARED_DATA_DIR "../shared/data/dcgm"
#define CONTRACT_COPY   "docs/event-v1.md"
#define CONTRACT_SHARED "../shared/contracts/event-v1.md"
#define T0              "2026-11-28T12:00:10.000Z"

/* ---- small helpers */

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	long n;
	if (!f)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0) {
		buf = malloc((size_t)n + 1);
		if (buf && fread(buf, 1, (size_t)n, f) == (size_t)n) {
			buf[n] = '\0';
			*len = (size_t)n;
		} else {
			free(buf);
			buf = NULL;
		}
	}
	fclose(f);
	return buf;
}

static bool exposition_file(const char *name)
{
	size_t n = strlen(name);
	return (n > 5 && strcmp(name + n - 5, ".prom") == 0) ||
	       (n > 4 && strcmp(name + n - 4, ".txt") == 0);
}

#define MAX_FILES 64
static char files[MAX_FILES][256];
static size_t nfiles;

static void list_files(void)
{
	DIR *d = opendir(DATA_DIR);
	struct dirent *e;
	if (!d)
		fail_msg("cannot open %s (run from the repository root)", DATA_DIR);
	nfiles = 0;
	while ((e = readdir(d)))
		if (exposition_file(e->d_name)) {
			assert_true(nfiles < MAX_FILES);
			snprintf(files[nfiles++], sizeof(files[0]), "%s", e->d_name);
		}
	closedir(d);
}

/* ---- the contract's table of known fields */

struct known {
	char dcgm[64];
	char key[64];
};
static struct known known[64];
static size_t nknown;

static void trim(char *s)
{
	size_t n = strlen(s), i = 0;
	while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '`'))
		s[--n] = '\0';
	while (s[i] == ' ' || s[i] == '`')
		i++;
	memmove(s, s + i, n - i + 1);
}

static void load_contract(void)
{
	size_t len;
	char *text = slurp(CONTRACT_COPY, &len), *save = NULL;
	assert_non_null(text);
	nknown = 0;
	for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char c1[160], c2[64];
		if (strncmp(line, "| DCGM_FI_", 10) != 0)
			continue;
		if (sscanf(line, "|%159[^|]|%63[^|]|", c1, c2) != 2)
			fail_msg("contract row not understood: %s", line);
		trim(c1);
		trim(c2);
		/* "A or B" names two spellings of one field */
		char *save2 = NULL;
		for (char *w = strtok_r(c1, " ", &save2); w; w = strtok_r(NULL, " ", &save2)) {
			if (strcmp(w, "or") == 0)
				continue;
			assert_true(nknown < 64);
			snprintf(known[nknown].dcgm, sizeof(known[0].dcgm), "%s", w);
			snprintf(known[nknown].key, sizeof(known[0].key), "%s", c2);
			nknown++;
		}
	}
	free(text);
	assert_true(nknown >= 40);
}

static const char *known_key(const char *dcgm)
{
	for (size_t i = 0; i < nknown; i++)
		if (strcmp(known[i].dcgm, dcgm) == 0)
			return known[i].key;
	return NULL;
}

/* ---- the independent reading */

struct expect_val {
	char key[260];  /* event key */
	char name[128]; /* DCGM name */
	char text[64];  /* value as written */
};
struct expect_gpu {
	char key[260];
	char uuid[128];
	char host[128], model[128], index[128], pci[128], device[128], driver[128], mig_id[128],
	    mig_profile[128];
};
struct reading {
	struct expect_val vals[1024];
	size_t nvals;
	struct expect_gpu gpus[64];
	size_t ngpus;
	size_t bad;      /* lines that are not comments, blank, or NAME[{...}] NUMBER */
	size_t not_dcgm; /* samples outside DCGM_FI_ */
	size_t no_uuid;
	size_t dups;
};

/* The value of label `name` in the text between { and } (no escapes in these files). */
static bool find_label(const char *labels, const char *name, char *out, size_t size)
{
	size_t n = strlen(name);
	for (const char *p = labels; (p = strstr(p, name)); p += n) {
		bool start = p == labels || p[-1] == ',' || p[-1] == ' ';
		if (!start || strncmp(p + n, "=\"", 2) != 0)
			continue;
		const char *v = p + n + 2, *q = strchr(v, '"');
		assert_non_null(q);
		assert_true((size_t)(q - v) < size);
		memcpy(out, v, (size_t)(q - v));
		out[q - v] = '\0';
		return true;
	}
	out[0] = '\0';
	return false;
}

static void read_file(const char *text, struct reading *r)
{
	char *copy = strdup(text), *save = NULL;
	assert_non_null(copy);
	memset(r, 0, sizeof(*r));
	/* strtok_r skips empty lines, which are blank lines anyway */
	for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char name[128], labels[2048] = "", vtext[64], uuid[128], mig[128], key[260];
		const char *after;
		int n = 0;
		size_t ll = strlen(line);
		if (ll && line[ll - 1] == '\r')
			line[--ll] = '\0';
		if (line[strspn(line, " \t")] == '\0' || line[strspn(line, " \t")] == '#')
			continue;
		if (sscanf(line, "%127[A-Za-z0-9_:]%n", name, &n) != 1 ||
		    !(name[0] == '_' || name[0] == ':' || (name[0] | 0x20) >= 'a')) {
			r->bad++;
			continue;
		}
		after = line + n;
		if (*after == '{') {
			const char *close = strrchr(after, '}');
			assert_non_null(close);
			assert_true((size_t)(close - after) < sizeof(labels));
			memcpy(labels, after + 1, (size_t)(close - after - 1));
			labels[close - after - 1] = '\0';
			after = close + 1;
		}
		char *end;
		if (sscanf(after, " %63s", vtext) != 1 || (strtod(vtext, &end), *end != '\0')) {
			r->bad++;
			continue;
		}
		if (strncmp(name, "DCGM_FI_", 8) != 0) {
			r->not_dcgm++;
			continue;
		}
		if (!find_label(labels, "UUID", uuid, sizeof(uuid)) || !uuid[0]) {
			r->no_uuid++;
			continue;
		}
		snprintf(key, sizeof(key), "%s", uuid);
		if (find_label(labels, "GPU_I_ID", mig, sizeof(mig)) && mig[0])
			snprintf(key, sizeof(key), "%s/%s", uuid, mig);

		struct expect_gpu *g = NULL;
		for (size_t i = 0; i < r->ngpus; i++)
			if (strcmp(r->gpus[i].key, key) == 0)
				g = &r->gpus[i];
		if (!g) {
			assert_true(r->ngpus < 64);
			g = &r->gpus[r->ngpus++];
			snprintf(g->key, sizeof(g->key), "%s", key);
			snprintf(g->uuid, sizeof(g->uuid), "%s", uuid);
		}
		char tmp[128];
		if (!g->host[0] && (find_label(labels, "hostname", tmp, sizeof(tmp)) ||
		                    find_label(labels, "Hostname", tmp, sizeof(tmp))))
			snprintf(g->host, sizeof(g->host), "%s", tmp);
#define FILL(field, label)                                                                         \
	if (!g->field[0] && find_label(labels, label, tmp, sizeof(tmp)))                           \
		snprintf(g->field, sizeof(g->field), "%s", tmp);
		FILL(model, "modelName")
		FILL(index, "gpu")
		FILL(pci, "pci_bus_id")
		FILL(device, "device")
		FILL(driver, "DCGM_FI_DRIVER_VERSION")
		FILL(mig_id, "GPU_I_ID")
		FILL(mig_profile, "GPU_I_PROFILE")
#undef FILL

		/* one value per field and GPU: the first one; both clock-event names are one field
		 */
		const char *k = known_key(name);
		bool dup = false;
		for (size_t i = 0; i < r->nvals; i++) {
			const char *ki = known_key(r->vals[i].name);
			if (strcmp(r->vals[i].key, key) == 0 &&
			    (strcmp(r->vals[i].name, name) == 0 || (k && ki && strcmp(k, ki) == 0)))
				dup = true;
		}
		if (dup) {
			r->dups++;
			continue;
		}
		assert_true(r->nvals < 1024);
		struct expect_val *v = &r->vals[r->nvals++];
		snprintf(v->key, sizeof(v->key), "%s", key);
		snprintf(v->name, sizeof(v->name), "%s", name);
		snprintf(v->text, sizeof(v->text), "%s", vtext);
	}
	free(copy);
}

/* The contract's value rules, applied to the text as written. */
static void check_value(const char *file, const struct expect_val *ev, const json_t *got)
{
	const char *t = ev->text;
	bool int_form =
	    strpbrk(t, ".eE") == NULL && strspn(t + (*t == '-' || *t == '+'), "0123456789") ==
	                                     strlen(t) - (*t == '-' || *t == '+');
	if (!got)
		fail_msg("%s: %s of %s is missing", file, ev->name, ev->key);
	if (int_form && *t != '-') {
		errno = 0;
		unsigned long long u = strtoull(t, NULL, 10);
		assert_int_equal(errno, 0);
		if (u >= 9223372036854775792ULL && u <= 9223372036854775807ULL) {
			if (!json_is_null(got))
				fail_msg("%s: %s of %s = %s should be null", file, ev->name,
				         ev->key, t);
			return;
		}
		if (!json_is_integer(got) || (unsigned long long)json_integer_value(got) != u)
			fail_msg("%s: %s of %s: want integer %s", file, ev->name, ev->key, t);
		return;
	}
	if (int_form) {
		long long s = strtoll(t, NULL, 10);
		if (!json_is_integer(got) || json_integer_value(got) != s)
			fail_msg("%s: %s of %s: want integer %s", file, ev->name, ev->key, t);
		return;
	}
	double d = strtod(t, NULL);
	if (!isfinite(d) || d >= 140737488355328.0) {
		if (!json_is_null(got))
			fail_msg("%s: %s of %s = %s should be null", file, ev->name, ev->key, t);
		return;
	}
	if (!json_is_real(got) || json_real_value(got) != d)
		fail_msg("%s: %s of %s: want real %s", file, ev->name, ev->key, t);
}

static void check_str(const char *file, const char *key, const json_t *got, const char *want,
                      const char *what)
{
	if (!want[0]) {
		if (!json_is_null(got))
			fail_msg("%s: %s of %s should be null", file, what, key);
		return;
	}
	if (!json_is_string(got) || strcmp(json_string_value(got), want) != 0)
		fail_msg("%s: %s of %s: got %s, want %s", file, what, key,
		         json_is_string(got) ? json_string_value(got) : "(not a string)", want);
}

static void check_int(const char *file, const char *key, const json_t *got, const char *want,
                      const char *what)
{
	if (!want[0]) {
		if (!json_is_null(got))
			fail_msg("%s: %s of %s should be null", file, what, key);
		return;
	}
	if (!json_is_integer(got) || json_integer_value(got) != strtoll(want, NULL, 10))
		fail_msg("%s: %s of %s: want %s", file, what, key, want);
}

static struct events *events_of(const char *text, size_t len, struct prom_stats *pst)
{
	struct events *ev = NULL;
	struct events_enrich en = {"local", "dc1", "r01", NULL};
	assert_int_equal(events_create(&ev, &en), 0);
	assert_int_equal(events_begin(ev, T0), 0);
	assert_int_equal(prom_parse(text, len, NULL, events_prom_cb, ev, pst), 0);
	return ev;
}

static struct reading rd; /* big: not on the stack */

static void check_file(const char *file, const char *text, size_t len)
{
	struct prom_stats pst;
	struct events *ev = events_of(text, len, &pst);
	const struct events_stats *st = events_stats(ev);
	read_file(text, &rd);

	if (pst.bad_lines != rd.bad)
		fail_msg("%s: parser found %zu bad lines, the simple reading %zu", file,
		         pst.bad_lines, rd.bad);
	assert_int_equal(st->not_dcgm, rd.not_dcgm);
	assert_int_equal(st->no_uuid, rd.no_uuid);
	assert_int_equal(st->duplicates, rd.dups);
	assert_int_equal(st->metrics + st->extra, rd.nvals);
	if (events_count(ev) != rd.ngpus)
		fail_msg("%s: %zu events, want %zu", file, events_count(ev), rd.ngpus);
	assert_true(rd.ngpus >= 1);

	for (size_t g = 0; g < rd.ngpus; g++) {
		const struct expect_gpu *x = &rd.gpus[g];
		const json_t *e = events_json(ev, g);
		size_t nmetrics = 0, nextra = 0;
		/* events come in the order of first appearance */
		assert_string_equal(events_key(ev, g), x->key);
		assert_int_equal(json_integer_value(json_object_get(e, "schema_version")), 1);
		assert_string_equal(json_string_value(json_object_get(e, "time")), T0);
		assert_string_equal(json_string_value(json_object_get(e, "cluster")), "local");
		assert_string_equal(json_string_value(json_object_get(e, "datacenter")), "dc1");
		assert_string_equal(json_string_value(json_object_get(e, "rack")), "r01");
		check_str(file, x->key, json_object_get(e, "hostname"), x->host, "hostname");
		const json_t *gj = json_object_get(e, "gpu");
		check_str(file, x->key, json_object_get(gj, "uuid"), x->uuid, "uuid");
		check_str(file, x->key, json_object_get(gj, "model"), x->model, "model");
		check_int(file, x->key, json_object_get(gj, "index"), x->index, "index");
		check_str(file, x->key, json_object_get(gj, "pci_bus_id"), x->pci, "pci_bus_id");
		check_str(file, x->key, json_object_get(gj, "device"), x->device, "device");
		check_str(file, x->key, json_object_get(gj, "driver_version"), x->driver,
		          "driver_version");
		check_int(file, x->key, json_object_get(gj, "mig_instance"), x->mig_id,
		          "mig_instance");
		check_str(file, x->key, json_object_get(gj, "mig_profile"),
		          x->mig_id[0] ? x->mig_profile : "", "mig_profile");

		for (size_t i = 0; i < rd.nvals; i++) {
			const struct expect_val *v = &rd.vals[i];
			if (strcmp(v->key, x->key) != 0)
				continue;
			const char *k = known_key(v->name);
			const json_t *got =
			    k ? json_object_get(json_object_get(e, "metrics"), k)
			      : json_object_get(json_object_get(e, "extra"), v->name);
			check_value(file, v, got);
			if (k)
				nmetrics++;
			else
				nextra++;
		}
		/* nothing more: absent fields are absent */
		assert_int_equal(json_object_size(json_object_get(e, "metrics")), nmetrics);
		assert_int_equal(json_object_size(json_object_get(e, "extra")), nextra);

		/* the rendered line reads back to the same event */
		char line[16384];
		size_t ln;
		json_error_t jerr;
		assert_int_equal(events_render(ev, g, line, sizeof(line), &ln), 0);
		assert_null(strchr(line, '\n'));
		json_t *back = json_loads(line, 0, &jerr);
		if (!back)
			fail_msg("%s: rendered event is not JSON: %s: %s", file, jerr.text, line);
		assert_true(json_equal(back, (json_t *)e));
		json_decref(back);
	}
	events_destroy(ev);
}

static void test_every_file(void **state)
{
	(void)state;
	load_contract();
	list_files();
	assert_true(nfiles >= 7);
	for (size_t i = 0; i < nfiles; i++) {
		char p[512];
		size_t len;
		snprintf(p, sizeof(p), "%s/%.255s", DATA_DIR, files[i]);
		char *text = slurp(p, &len);
		assert_non_null(text);
		check_file(files[i], text, len);
		free(text);
	}
}

/* The collector parses with prom_parse_cached(): the same events, byte for byte, and the same
 * counts as without the cache, for every real file and for each file twice in one body (every
 * sample of the second copy a duplicate, skipped through the cached GPU). */
static void same_events_with_cache(const char *file, const char *text, size_t len,
                                   struct prom_cache *pc)
{
	struct events *a = NULL, *b = NULL;
	struct events_enrich en = {"local", "dc1", "r01", NULL};
	struct prom_stats pa, pb;
	assert_int_equal(events_create(&a, &en), 0);
	assert_int_equal(events_create(&b, &en), 0);
	for (int round = 0; round < 2; round++) { /* the second: both reused */
		assert_int_equal(events_begin(a, T0), 0);
		assert_int_equal(events_begin(b, T0), 0);
		assert_int_equal(prom_parse(text, len, NULL, events_prom_cb, a, &pa), 0);
		assert_int_equal(prom_parse_cached(text, len, NULL, events_prom_cb, b, &pb, pc), 0);
		assert_int_equal(events_count(a), events_count(b));
		if (memcmp(events_stats(a), events_stats(b), sizeof(struct events_stats)) != 0)
			fail_msg("%s: the cache changed the event counts", file);
		for (size_t i = 0; i < events_count(a); i++) {
			static char ra[1 << 16], rb[1 << 16];
			size_t la, lb;
			assert_int_equal(events_render(a, i, ra, sizeof(ra), &la), 0);
			assert_int_equal(events_render(b, i, rb, sizeof(rb), &lb), 0);
			if (la != lb || memcmp(ra, rb, la) != 0)
				fail_msg("%s: event %zu differs with the cache:\n%.*s\n%.*s", file,
				         i, (int)la, ra, (int)lb, rb);
		}
	}
	events_destroy(a);
	events_destroy(b);
}

static void test_cache_same_events(void **state)
{
	(void)state;
	list_files();
	struct prom_cache *pc = prom_cache_new();
	assert_non_null(pc);
	for (size_t i = 0; i < nfiles; i++) {
		char p[512];
		size_t len;
		snprintf(p, sizeof(p), "%s/%.255s", DATA_DIR, files[i]);
		char *text = slurp(p, &len);
		assert_non_null(text);
		same_events_with_cache(files[i], text, len, pc);
		char *twice = malloc(2 * len + 1);
		assert_non_null(twice);
		memcpy(twice, text, len);
		twice[len] = '\n';
		memcpy(twice + len + 1, text, len);
		same_events_with_cache(files[i], twice, 2 * len + 1, pc);
		free(twice);
		free(text);
	}
	/* GPUs in another order from one family to the next (an id handed to another GPU), a
	 * GPU without UUID at a position that had one, and back */
	static const char *orders = "DCGM_FI_DEV_GPU_TEMP{gpu=\"0\",UUID=\"GPU-a\"} 40\n"
	                            "DCGM_FI_DEV_GPU_TEMP{gpu=\"1\",UUID=\"GPU-b\"} 41\n"
	                            "DCGM_FI_DEV_POWER_USAGE{gpu=\"1\",UUID=\"GPU-b\"} 100\n"
	                            "DCGM_FI_DEV_POWER_USAGE{gpu=\"0\",UUID=\"GPU-a\"} 101\n"
	                            "DCGM_FI_DEV_GPU_UTIL{gpu=\"1\",UUID=\"GPU-b\"} 50\n"
	                            "DCGM_FI_DEV_GPU_UTIL{gpu=\"0\",UUID=\"GPU-a\"} 51\n"
	                            "DCGM_FI_DEV_SM_CLOCK{gpu=\"1\"} 1400\n"
	                            "DCGM_FI_DEV_SM_CLOCK{gpu=\"0\",UUID=\"GPU-a\"} 1401\n"
	                            "DCGM_FI_DEV_MEM_CLOCK{gpu=\"1\"} 1500\n"
	                            "DCGM_FI_DEV_MEM_CLOCK{gpu=\"1\",UUID=\"GPU-b\"} 1501\n"
	                            "DCGM_FI_DEV_FB_USED{gpu=\"0\",UUID=\"GPU-a\"} 7\n"
	                            "DCGM_FI_DEV_FB_USED{gpu=\"1\",UUID=\"GPU-b\"} 8\n";
	same_events_with_cache("(GPU order changes)", orders, strlen(orders), pc);
	prom_cache_free(pc);
}

/* What each real file holds that the rules are about: fail loudly if a copy loses it. */
static void test_files_cover_the_rules(void **state)
{
	(void)state;
	size_t len;
	char *t = slurp(DATA_DIR "/dcgm-exporter-README-quickstart-sample.prom", &len);
	assert_non_null(t);
	assert_non_null(strstr(t, "9223372036854775794")); /* a blank sentinel */
	assert_non_null(strstr(t, "gpu=\"0\", UUID="));    /* a space after a comma */
	free(t);
	t = slurp(DATA_DIR "/datadog-integrations-core-dcgm-fixture-metrics.txt", &len);
	assert_non_null(t);
	assert_non_null(strstr(t, "DCGM_FI_DEV_CLOCK_THROTTLE_REASONS{")); /* the old name */
	assert_non_null(strstr(t, "\nDCGM_FI_DEV_FAN_SPEED 0"));           /* no UUID */
	assert_non_null(strstr(t, "# HELP DCGM_FI_DEV_PSTATE\n"));         /* empty HELP */
	free(t);
}

/* The copies are the shared files, byte for byte, and no shared file is left out. */
static void test_copies_match_shared(void **state)
{
	(void)state;
	DIR *d = opendir(SHARED_DATA_DIR);
	struct dirent *e;
	size_t n = 0;
	if (!d)
		skip(); /* ../shared is not mounted here */
	while ((e = readdir(d))) {
		char a[512], b[512];
		size_t la, lb;
		if (!exposition_file(e->d_name))
			continue;
		snprintf(a, sizeof(a), "%s/%s", SHARED_DATA_DIR, e->d_name);
		snprintf(b, sizeof(b), "%s/%s", DATA_DIR, e->d_name);
		char *x = slurp(a, &la), *y = slurp(b, &lb);
		if (!y)
			fail_msg("%s is not copied into %s", e->d_name, DATA_DIR);
		assert_non_null(x);
		assert_true(la == lb && memcmp(x, y, la) == 0);
		free(x);
		free(y);
		n++;
	}
	closedir(d);
	assert_true(n >= 7);
	size_t la, lb;
	char *x = slurp(CONTRACT_SHARED, &la), *y = slurp(CONTRACT_COPY, &lb);
	if (x) {
		assert_non_null(y);
		if (la != lb || memcmp(x, y, la) != 0)
			fail_msg("%s differs from %s: copy the new contract and update the code",
			         CONTRACT_COPY, CONTRACT_SHARED);
	}
	free(x);
	free(y);
}

/* ---- the same files as other exporters write them */

struct buf {
	char *p;
	size_t len, cap;
};
static void bput(struct buf *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		b->cap = (b->len + n + 1) * 2;
		b->p = realloc(b->p, b->cap);
		assert_non_null(b->p);
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

enum variant { V_CRLF, V_NO_FINAL_NL, V_SPACES, V_NEW_HOSTNAME, V_JUNK, V_N };

static size_t rewrite(const char *in, size_t len, enum variant v, struct buf *out)
{
	size_t junk = 0;
	out->len = 0;
	bput(out, "", 0);
	for (size_t i = 0; i < len; i++) {
		char c = in[i];
		if (v == V_CRLF && c == '\n') {
			bput(out, "\r\n", 2);
		} else if (v == V_SPACES && c == ',' && i > 0 && in[i - 1] == '"') {
			bput(out, ",  ", 3);
		} else if (v == V_NEW_HOSTNAME && strncmp(in + i, "Hostname=\"", 10) == 0) {
			bput(out, "h", 1);
		} else if (v == V_JUNK && c == '\n') {
			static const char j[] = "\n# a comment\n\n}{ junk\n";
			bput(out, j, sizeof(j) - 1);
			junk++;
		} else {
			bput(out, &c, 1);
		}
	}
	if (v == V_NO_FINAL_NL)
		while (out->len > 0 && out->p[out->len - 1] == '\n')
			out->p[--out->len] = '\0';
	return junk;
}

static void test_variants_same_events(void **state)
{
	(void)state;
	struct buf b = {0};
	list_files();
	for (size_t i = 0; i < nfiles; i++) {
		char p[512];
		size_t len;
		snprintf(p, sizeof(p), "%s/%.255s", DATA_DIR, files[i]);
		char *text = slurp(p, &len);
		assert_non_null(text);
		struct prom_stats pst0, pst;
		struct events *ref = events_of(text, len, &pst0);
		for (int v = 0; v < V_N; v++) {
			size_t junk = rewrite(text, len, (enum variant)v, &b);
			struct events *ev = events_of(b.p, b.len, &pst);
			if (events_count(ev) != events_count(ref))
				fail_msg("%s variant %d: %zu events, want %zu", files[i], v,
				         events_count(ev), events_count(ref));
			for (size_t g = 0; g < events_count(ref); g++) {
				assert_string_equal(events_key(ev, g), events_key(ref, g));
				if (!json_equal((json_t *)events_json(ev, g),
				                (json_t *)events_json(ref, g)))
					fail_msg("%s variant %d: event %s differs", files[i], v,
					         events_key(ref, g));
			}
			assert_int_equal(pst.samples, pst0.samples);
			assert_int_equal(pst.bad_lines, pst0.bad_lines + junk);
			events_destroy(ev);
		}
		events_destroy(ref);
		free(text);
	}
	free(b.p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_every_file),
	    cmocka_unit_test(test_cache_same_events),
	    cmocka_unit_test(test_files_cover_the_rules),
	    cmocka_unit_test(test_copies_match_shared),
	    cmocka_unit_test(test_variants_same_events),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
