/*
 * prom_bench: throughput of the Prometheus parser (and of parser + event building) on real
 * dcgm-exporter files.
 *
 *   prom_bench [-m MIB] [-t SECONDS] [-o INPUT_OUT] FILE...
 *
 * The files are concatenated, and the concatenation repeated, to at least MIB MiB (default 4);
 * -o writes that exact input to a file so that another parser can be timed on the same bytes
 * (bench/parser.sh). Each measurement repeats until SECONDS (default 2) of CPU time have
 * passed; rates are per CPU second, of the best pass (MBps, samples_per_s) and on average
 * (mean_*).
 * Output: one "key=value ..." line per measurement.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "collect/events.h"
#include "prom/prom.h"

struct file {
	char *text;
	size_t len;
};

/* CPU time of this process: on a shared machine it is steadier than the wall clock, and
 * bench/prom_python.py measures Python the same way. */
static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int slurp(const char *path, struct file *f)
{
	FILE *fp = fopen(path, "rb");
	long n;
	int rc = -EIO;
	f->text = NULL;
	if (!fp)
		return -errno;
	if (fseek(fp, 0, SEEK_END) != 0 || (n = ftell(fp)) < 0 || fseek(fp, 0, SEEK_SET) != 0)
		goto out;
	f->text = malloc((size_t)n + 1);
	if (!f->text) {
		rc = -ENOMEM;
		goto out;
	}
	if (fread(f->text, 1, (size_t)n, fp) != (size_t)n)
		goto out;
	f->len = (size_t)n;
	/* a file without a final newline must not glue its last line to the next file */
	if (f->len && f->text[f->len - 1] != '\n')
		f->text[f->len++] = '\n';
	rc = 0;
out:
	if (rc) {
		free(f->text);
		f->text = NULL;
	}
	fclose(fp);
	return rc;
}

/* Touches what a consumer would: the value and every label value. */
static int consume(const struct prom_sample *s, void *ud)
{
	size_t *sink = ud;
	*sink += (size_t)s->value.d + s->nlabels;
	for (size_t i = 0; i < s->nlabels; i++)
		*sink += s->labels[i].value.len;
	return 0;
}

int main(int argc, char **argv)
{
	double mib = 4, secs = 2;
	const char *out_path = NULL;
	struct file *files = NULL;
	size_t nfiles = 0, total = 0, len = 0, sink = 0;
	char *input = NULL;
	int opt, rc = 1;

	while ((opt = getopt(argc, argv, "m:t:o:")) != -1) {
		switch (opt) {
		case 'm': mib = atof(optarg); break;
		case 't': secs = atof(optarg); break;
		case 'o': out_path = optarg; break;
		default:
			fprintf(stderr, "usage: prom_bench [-m MIB] [-t SECONDS] [-o INPUT_OUT] FILE...\n");
			return 2;
		}
	}
	if (optind >= argc || mib <= 0 || secs <= 0) {
		fprintf(stderr, "usage: prom_bench [-m MIB] [-t SECONDS] [-o INPUT_OUT] FILE...\n");
		return 2;
	}
	nfiles = (size_t)(argc - optind);
	files = calloc(nfiles, sizeof(*files));
	if (!files)
		goto out;
	for (size_t i = 0; i < nfiles; i++) {
		if (slurp(argv[optind + (int)i], &files[i]) != 0) {
			fprintf(stderr, "prom_bench: cannot read %s\n", argv[optind + (int)i]);
			goto out;
		}
		total += files[i].len;
	}
	size_t want = (size_t)(mib * 1024 * 1024), reps = (want + total - 1) / total;
	input = malloc(reps * total);
	if (!input)
		goto out;
	for (size_t r = 0; r < reps; r++)
		for (size_t i = 0; i < nfiles; i++) {
			memcpy(input + len, files[i].text, files[i].len);
			len += files[i].len;
		}
	if (out_path) {
		FILE *fp = fopen(out_path, "wb");
		if (!fp || fwrite(input, 1, len, fp) != len || fclose(fp) != 0) {
			fprintf(stderr, "prom_bench: cannot write %s\n", out_path);
			goto out;
		}
	}

	/* 1. the parser alone, on the whole input: the best pass (least disturbed by other
	 * work on the machine) and the mean */
	struct prom_stats st;
	size_t iters = 0, samples = 0;
	double t0 = now(), el, best = 1e30;
	do {
		double t1 = now();
		if (prom_parse(input, len, NULL, consume, &sink, &st) != 0)
			goto out;
		t1 = now() - t1;
		if (t1 < best)
			best = t1;
		samples += st.samples;
		iters++;
		el = now() - t0;
	} while (el < secs);
	printf("what=parser bytes=%zu samples=%zu bad_lines=%zu iterations=%zu seconds=%.3f "
	       "MBps=%.1f samples_per_s=%.0f mean_MBps=%.1f mean_samples_per_s=%.0f\n",
	       len, st.samples, st.bad_lines, iters, el, (double)len / best / 1e6,
	       (double)st.samples / best, (double)len * (double)iters / el / 1e6,
	       (double)samples / el);

	/* 2. parser + events + rendering, one scrape per file, as the collector does */
	struct events *ev = NULL;
	struct events_enrich en = {.cluster = "bench", .datacenter = "dc1", .rack = "r01"};
	char line[1 << 16];
	size_t bytes = 0, events = 0, rlen;
	if (events_create(&ev, &en) != 0)
		goto out;
	samples = 0;
	iters = 0;
	t0 = now();
	do {
		for (size_t i = 0; i < nfiles; i++) {
			if (events_begin(ev, "2026-11-28T12:00:10.000Z") != 0 ||
			    prom_parse(files[i].text, files[i].len, NULL, events_prom_cb, ev, &st) != 0)
				goto out_ev;
			for (size_t k = 0; k < events_count(ev); k++) {
				if (events_render(ev, k, line, sizeof(line), &rlen) != 0)
					goto out_ev;
				sink += rlen;
				events++;
			}
			bytes += files[i].len;
			samples += st.samples;
		}
		iters++;
		el = now() - t0;
	} while (el < secs);
	printf("what=parser+events+render bytes=%zu scrapes=%zu events=%zu seconds=%.3f MBps=%.1f "
	       "samples_per_s=%.0f events_per_s=%.0f\n",
	       bytes, iters * nfiles, events, el, (double)bytes / el / 1e6, (double)samples / el,
	       (double)events / el);
	rc = 0;
out_ev:
	events_destroy(ev);
out:
	if (sink == 42)
		printf("\n"); /* keeps the consumer's work alive */
	for (size_t i = 0; files && i < nfiles; i++)
		free(files[i].text);
	free(files);
	free(input);
	return rc;
}
