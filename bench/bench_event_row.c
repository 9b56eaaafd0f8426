/* Times event_row_append (the sink's per-event work) over KEY|JSON lines: events/s. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/strbuf.h"
#include "core/timeutil.h"
#include "sink/event_row.h"

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: %s EVENTS_FILE (KEY|JSON lines)\n", argv[0]);
		return 2;
	}
	FILE *f = fopen(argv[1], "r");
	if (!f) {
		perror(argv[1]);
		return 1;
	}
	size_t n = 0, cap = 0;
	char **lines = NULL;
	char *line = NULL;
	size_t lcap = 0;
	ssize_t len;
	while ((len = getline(&line, &lcap, f)) > 0) {
		char *bar = strchr(line, '|');
		if (!bar)
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 1024;
			lines = realloc(lines, cap * sizeof(*lines));
		}
		lines[n++] = strdup(bar + 1);
	}
	free(line);
	fclose(f);
	struct strbuf sb, id;
	strbuf_init(&sb, 0);
	strbuf_init(&id, 0);
	struct event_row_opts o = {.now = time_now(), .max_age_s = 1e9, .max_future_s = 1e9};
	char reason[256];
	struct event_row_info info;
	size_t bad = 0, bytes = 0, fast = 0;
	double t0 = time_mono();
	for (size_t i = 0; i < n; i++) {
		size_t l = strlen(lines[i]);
		bytes += l;
		if (event_row_append(lines[i], l, &o, &sb, &id, &info, reason, sizeof(reason)))
			bad++;
		else
			fast += info.fast;
		if (sb.len > (64u << 20))
			strbuf_reset(&sb);
		if (id.len > (64u << 20))
			strbuf_reset(&id);
	}
	double dt = time_mono() - t0;
	printf(
	    "%zu events (%zu bad, %zu by the fast path) in %.3f s: %.0f events/s, %.2f us/event, "
	    "%.1f MB/s of JSON\n",
	    n, bad, fast, dt, n / dt, dt / (double)n * 1e6, bytes / dt / 1e6);
	strbuf_free(&sb);
	strbuf_free(&id);
	for (size_t i = 0; i < n; i++)
		free(lines[i]);
	free(lines);
	return 0;
}
