/*
 * libFuzzer target: the Prometheus parser and the event builder on any input.
 * Built by -DGPUHEALTH_FUZZ=ON with clang (-fsanitize=fuzzer,address,undefined); run by
 * scripts/test.sh, seeded with tests/data/dcgm. Any crash, sanitizer report or broken
 * invariant (abort) fails the run.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "collect/events.h"
#include "prom/prom.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct ctx {
	const char *buf;
	size_t len;
	struct events *ev;
	size_t calls;
};

static void check(int ok)
{
	if (!ok)
		abort();
}

static void check_slice(const struct ctx *c, struct prom_slice s)
{
	check(s.len == 0 || (s.ptr >= c->buf && s.ptr + s.len <= c->buf + c->len));
}

static int on_sample(const struct prom_sample *s, void *ud)
{
	struct ctx *c = ud;
	char small[8], big[256];
	size_t n;
	c->calls++;
	check(s->name.len > 0);
	check_slice(c, s->name);
	for (size_t i = 0; i < s->nlabels; i++) {
		check_slice(c, s->labels[i].name);
		check_slice(c, s->labels[i].value);
		int rc = prom_unescape(s->labels[i].value, small, sizeof(small), &n);
		check(rc == 0 || rc == -ENOSPC);
		check(n < sizeof(small) && strlen(small) <= n);
		rc = prom_unescape(s->labels[i].value, big, sizeof(big), &n);
		check(rc == 0 || rc == -ENOSPC);
		check(n <= s->labels[i].value.len);
	}
	if (s->has_help)
		check_slice(c, s->help);
	if (s->value.form == PROM_FORM_INT && s->value.exact && !s->value.negative)
		check(s->value.u64 > (uint64_t)INT64_MAX || (uint64_t)s->value.i64 == s->value.u64);
	return events_add(c->ev, s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct events *ev;
	static char out[1 << 16];
	static const struct events_enrich en = {"fuzz", "dc", "r", NULL};
	struct prom_limits lim;
	struct prom_stats st;
	struct ctx c = {(const char *)data, size, NULL, 0};
	size_t len;

	if (!ev && events_create(&ev, &en) != 0)
		abort();
	c.ev = ev;
	check(events_begin(ev, "2026-11-28T12:00:10.000Z") == 0);
	prom_limits_default(&lim);
	/* the first byte picks tighter limits now and then, to reach the limit paths */
	if (size > 0 && (data[0] & 0xc0) == 0xc0) {
		lim.max_line = 1 + (data[0] & 0x3f) * 4;
		lim.max_labels = 1 + (data[0] & 0x07);
	}
	int rc = prom_parse((const char *)data, size, &lim, on_sample, &c, &st);
	check(rc == 0);
	check(st.samples == c.calls);
	check(st.samples + st.bad_lines <= st.lines);
	check(st.nbad <= PROM_BAD_RECORDED && st.nbad <= st.bad_lines);
	for (size_t i = 0; i < st.nbad; i++) {
		check(st.bad[i].line >= 1 && st.bad[i].line <= st.lines);
		check(st.bad[i].reason > PROM_E_NONE && st.bad[i].reason < PROM_E_ABORTED);
	}
	const struct events_stats *es = events_stats(ev);
	check(es->samples == st.samples);
	check(es->metrics + es->extra + es->no_uuid + es->not_dcgm + es->duplicates + es->bad_key +
		  es->too_many_gpus ==
	      es->samples);
	for (size_t i = 0; i < events_count(ev); i++) {
		check(events_key(ev, i) != NULL);
		rc = events_render(ev, i, out, sizeof(out), &len);
		check(rc == 0 || rc == -ENOSPC);
		if (rc == 0) {
			check(strlen(out) == len);
			/* compact JSON that jansson reads back to the same event */
			json_t *back = json_loadb(out, len, 0, NULL);
			check(back != NULL);
			check(json_equal(back, (json_t *)events_json(ev, i)));
			json_decref(back);
		}
		rc = events_render(ev, i, out, 7, &len);
		check(rc == -ENOSPC && strlen(out) == 6);
	}
	return 0;
}
