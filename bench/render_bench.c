/*
 * bench_render: what the mock exporter's simulation thread does per poll interval, for a large
 * fleet: advance the simulator by one poll interval, render the dcgm-exporter text, gzip it.
 * Usage: bench_render [GPUS [ROUNDS [MODEL]]]   (defaults 1024, 30, A100-SXM4-80GB)
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>

#include "exporter/render.h"
#include "sim/sim.h"

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(double), cmp);
	return v[n / 2];
}

int main(int argc, char **argv)
{
	unsigned gpus = argc > 1 ? (unsigned)atoi(argv[1]) : 1024;
	int rounds = argc > 2 ? atoi(argv[2]) : 30;
	const char *model = argc > 3 ? argv[3] : "A100-SXM4-80GB";
	int rc = 1;
	struct sim *s = NULL;
	char *buf = NULL, *gz = NULL;
	double *t_adv = calloc((size_t)rounds, sizeof(double));
	double *t_ren = calloc((size_t)rounds, sizeof(double));
	double *t_gz = calloc((size_t)rounds, sizeof(double));
	struct sim_params p = {
	    .model = sim_model_find(model), .n_gpus = gpus, .seed = 1, .poll_interval = 10};
	if (!p.model || gpus == 0 || rounds < 1 || !t_adv || !t_ren || !t_gz ||
	    sim_create(&s, &p) != 0) {
		fprintf(stderr, "usage: bench_render [GPUS [ROUNDS [MODEL]]]\n");
		goto out;
	}
	struct render_opts o = {"bench-node-001", "hostname", p.model->driver_version,
	                        p.model->model_name, false};
	size_t cap = render_bound(gpus, &o), len = 0;
	buf = malloc(cap);
	gz = malloc(compressBound((uLong)cap));
	if (!buf || !gz)
		goto out;
	sim_advance(s, 600); /* warm: ten minutes into the run */
	uLongf gz_len = 0;
	for (int r = 0; r < rounds; r++) {
		double t0 = now_ms();
		sim_advance(s, 600 + 10.0 * (r + 1));
		double t1 = now_ms();
		if (render_exposition(sim_gpus(s), gpus, &o, buf, cap, &len) != 0)
			goto out;
		double t2 = now_ms();
		z_stream z = {0};
		deflateInit2(&z, Z_BEST_SPEED, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
		z.next_in = (Bytef *)buf;
		z.avail_in = (uInt)len;
		z.next_out = (Bytef *)gz;
		z.avail_out = (uInt)compressBound((uLong)cap);
		deflate(&z, Z_FINISH);
		gz_len = z.total_out;
		deflateEnd(&z);
		double t3 = now_ms();
		t_adv[r] = t1 - t0;
		t_ren[r] = t2 - t1;
		t_gz[r] = t3 - t2;
	}
	double ren = median(t_ren, rounds);
	size_t samples = 0;
	for (const char *l = buf; *l;) {
		const char *nl = strchr(l, '\n');
		samples += *l != '#';
		l = nl ? nl + 1 : l + strlen(l);
	}
	printf("render %u GPUs (%s): %zu bytes, %.1f MB/s\n", gpus, model, len,
	       (double)len / 1e6 / (ren / 1e3));
	printf("  render (median of %d): %8.2f ms  (%zu samples, %.0f ns/sample)\n", rounds, ren,
	       samples, ren * 1e6 / (double)samples);
	printf("  sim advance 10 s:      %8.2f ms\n", median(t_adv, rounds));
	printf("  gzip (level 1):        %8.2f ms  (%lu bytes)\n", median(t_gz, rounds),
	       (unsigned long)gz_len);
	rc = 0;
out:
	sim_destroy(s);
	free(buf);
	free(gz);
	free(t_adv);
	free(t_ren);
	free(t_gz);
	return rc;
}
