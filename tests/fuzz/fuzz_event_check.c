/*
 * libFuzzer target: the one event validator (core/event_check.h) as the sink and the scorer use
 * it, on any input. Built by -DGPUHEALTH_FUZZ=ON with clang; run by scripts/test.sh beside
 * fuzz_prom, seeded with the contract's example events and the dead-letter cases
 * (tests/fuzz/event_seeds). Any crash, sanitizer report or broken invariant (abort) fails it:
 * the sink (fast and general path) and the scorer accept exactly the same events, and refuse
 * them with the same reason; a dead letter never carries more than the bound.
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/event_check.h"
#include "core/strbuf.h"
#include "health/sample.h"
#include "sink/event_row.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok)
{
	if (!ok)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data;
	const double now =
	    1795867200.0; /* 2026-11-28T12:00:00Z: the contract's examples are live */
	struct event_row_opts ro = {.now = now, .max_age_s = 7 * 86400, .max_future_s = 300};
	struct event_check_opts co = {.now = now, .max_age_s = 7 * 86400, .max_skew_s = 300};
	struct strbuf rows, ident;
	strbuf_init(&rows, 0);
	strbuf_init(&ident, 0);
	struct event_row_info info;
	char r_fast[256] = "", r_gen[256] = "", r_sc[256] = "";

	int fast = event_row_append(p, size, &ro, &rows, &ident, &info, r_fast, sizeof(r_fast));
	check(fast == 0 || fast == -EINVAL);
	ro.general_only = true;
	int gen = event_row_append(p, size, &ro, &rows, &ident, &info, r_gen, sizeof(r_gen));
	check(gen == 0 || gen == -EINVAL);
	struct health_sample hs;
	int sc = health_sample_parse_checked(p, size, &co, &hs, r_sc, sizeof(r_sc));
	/* one validator: the same verdict on each path, the same reason */
	check(fast == gen && gen == sc);
	if (gen) {
		check(r_gen[0] != '\0');
		check(strcmp(r_gen, r_sc) == 0);
	} else {
		check(hs.time >= now - 7 * 86400 && hs.time <= now + 300);
	}
	strbuf_free(&rows);
	strbuf_free(&ident);

	struct event_dead_letter d;
	event_check_dead_letter(p, size, 0, &d);
	check(d.original_size == size && d.len <= EVENT_CHECK_DLQ_PAYLOAD_MAX && d.len <= size);
	check(d.cut == (d.len < size) && strlen(d.hash) == 16);

	if (size >= sizeof(double)) {
		double v;
		memcpy(&v, data, sizeof(v));
		if (isfinite(v)) {
			char b[40];
			event_check_format_number(v, b, sizeof(b));
			check(strtod(b, NULL) == v);
		}
	}
	return 0;
}
