/* The HTTP face of mock-dcgm, in-process over loopback with libcurl: routes, methods, gzip,
 * limits, a taken port, snapshots that advance, counters. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <zlib.h>

#include "exporter/exporter.h"

struct buf {
	char *p;
	size_t n;
};

static size_t sink(char *d, size_t sz, size_t nm, void *u)
{
	struct buf *b = u;
	char *p = realloc(b->p, b->n + sz * nm + 1);
	assert_non_null(p);
	memcpy(p + b->n, d, sz * nm);
	b->p = p;
	b->n += sz * nm;
	b->p[b->n] = '\0';
	return sz * nm;
}

struct reply {
	long status;
	struct buf body, headers;
};

static void reply_free(struct reply *r)
{
	free(r->body.p);
	free(r->headers.p);
	memset(r, 0, sizeof(*r));
}

/* One request; extra_header may be NULL. */
static struct reply request(const char *addr, const char *method, const char *path,
			    const char *extra_header)
{
	struct reply r = {0};
	char url[256];
	snprintf(url, sizeof(url), "http://%s%s", addr, path);
	CURL *c = curl_easy_init();
	struct curl_slist *h = extra_header ? curl_slist_append(NULL, extra_header) : NULL;
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	if (strcmp(method, "HEAD") == 0)
		curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
	if (strcmp(method, "POST") == 0)
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, "x=1");
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &r.body);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, sink);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, &r.headers);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
	CURLcode rc = curl_easy_perform(c);
	if (rc != CURLE_OK)
		fail_msg("%s %s: %s", method, url, curl_easy_strerror(rc));
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	return r;
}

static struct exporter *start(const char *listen, double speed, int *rc_out)
{
	struct sim_params sp = {.model = sim_model_find("A100-SXM4-80GB"),
				.n_gpus = 4,
				.seed = 3,
				.poll_interval = 10};
	struct sim *sim = NULL;
	assert_int_equal(sim_create(&sim, &sp), 0);
	struct exporter_params ep = {.listen = listen,
				     .speed = speed,
				     .poll_interval = 10,
				     .render = {.hostname = "node", .host_label = "hostname",
						.driver_version = "550.127.08", .model_name = sp.model->model_name},
				     .http_threads = 2};
	struct exporter *ex = NULL;
	char err[512] = "";
	assert_int_equal(exporter_create(&ex, sim, &ep, err, sizeof(err)), 0);
	int rc = exporter_start(ex, err, sizeof(err));
	if (rc_out) {
		*rc_out = rc;
		if (rc)
			assert_non_null(strstr(err, "already in use"));
	} else if (rc) {
		fail_msg("start: %s", err);
	}
	return ex;
}

static void test_accepts_gzip(void **state)
{
	(void)state;
	assert_true(exporter_accepts_gzip("gzip"));
	assert_true(exporter_accepts_gzip("deflate, gzip;q=1.0, *;q=0.5"));
	assert_true(exporter_accepts_gzip("br, GZIP"));
	assert_true(exporter_accepts_gzip("*"));
	assert_false(exporter_accepts_gzip(NULL));
	assert_false(exporter_accepts_gzip(""));
	assert_false(exporter_accepts_gzip("identity"));
	assert_false(exporter_accepts_gzip("gzip;q=0"));
	assert_false(exporter_accepts_gzip("x-gzip2, deflate"));
}

static void test_routes(void **state)
{
	(void)state;
	struct exporter *ex = start("127.0.0.1:0", 1, NULL);
	const char *a = exporter_address(ex);
	assert_non_null(strstr(a, "127.0.0.1:"));

	struct reply r = request(a, "GET", "/metrics", NULL);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.headers.p, "Content-Type: text/plain; version=0.0.4; charset=utf-8"));
	assert_null(strstr(r.headers.p, "Content-Encoding"));
	assert_non_null(strstr(r.body.p, "# TYPE DCGM_FI_DEV_GPU_TEMP gauge\n"));
	char *plain = strdup(r.body.p);
	size_t plain_len = r.body.n;
	reply_free(&r);

	r = request(a, "GET", "/metrics", "Accept-Encoding: gzip");
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.headers.p, "Content-Encoding: gzip"));
	assert_true(r.body.n < plain_len / 3);
	char *unz = malloc(plain_len + 1);
	uLongf ulen = (uLongf)plain_len + 1;
	z_stream z = {0};
	assert_int_equal(inflateInit2(&z, 15 + 16), Z_OK);
	z.next_in = (Bytef *)r.body.p;
	z.avail_in = (uInt)r.body.n;
	z.next_out = (Bytef *)unz;
	z.avail_out = (uInt)ulen;
	assert_int_equal(inflate(&z, Z_FINISH), Z_STREAM_END);
	assert_int_equal(z.total_out, plain_len);
	inflateEnd(&z);
	assert_memory_equal(unz, plain, plain_len); /* same snapshot, speed 1 */
	free(unz);
	free(plain);
	reply_free(&r);

	r = request(a, "HEAD", "/metrics", NULL);
	assert_int_equal(r.status, 200);
	assert_int_equal(r.body.n, 0);
	reply_free(&r);
	r = request(a, "GET", "/healthz", NULL);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body.p, "ok\n");
	reply_free(&r);
	r = request(a, "GET", "/", NULL);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.body.p, "href=\"/metrics\""));
	reply_free(&r);
	r = request(a, "GET", "/metrics/extra", NULL);
	assert_int_equal(r.status, 404);
	reply_free(&r);
	r = request(a, "POST", "/metrics", NULL);
	assert_int_equal(r.status, 405);
	assert_non_null(strstr(r.headers.p, "Allow: GET, HEAD"));
	reply_free(&r);
	r = request(a, "DELETE", "/healthz", NULL);
	assert_int_equal(r.status, 405);
	reply_free(&r);

	/* a request whose headers exceed the limit is refused; the server carries on */
	size_t big = 100000;
	char *hdr = malloc(big + 16);
	memcpy(hdr, "X-Big: ", 7);
	memset(hdr + 7, 'a', big);
	hdr[7 + big] = '\0';
	r = request(a, "GET", "/metrics", hdr);
	assert_true(r.status == 431 || r.status == 413 || r.status == 400);
	free(hdr);
	reply_free(&r);
	r = request(a, "GET", "/metrics", NULL);
	assert_int_equal(r.status, 200);
	reply_free(&r);

	struct exporter_stats st;
	exporter_get_stats(ex, &st);
	assert_int_equal(st.metrics, 4); /* plain, gzip, HEAD, after the oversize one */
	assert_int_equal(st.gzip, 1);
	assert_int_equal(st.not_found, 1);
	assert_int_equal(st.not_allowed, 2);
	assert_true(st.body_bytes == plain_len);
	exporter_destroy(ex);
}

static int open_fds(void)
{
	int n = 0;
	for (int fd = 0; fd < 4096; fd++)
		n += fcntl(fd, F_GETFD) != -1;
	return n;
}

/* A taken port is -EADDRINUSE with a message; nothing leaks, the socket included. */
static void test_port_in_use(void **state)
{
	(void)state;
	int fds = open_fds();
	struct exporter *ex = start("127.0.0.1:0", 1, NULL);
	int rc = 0;
	struct exporter *second = start(exporter_address(ex), 1, &rc);
	assert_int_equal(rc, -EADDRINUSE);
	exporter_destroy(second);
	exporter_destroy(ex);
	assert_int_equal(open_fds(), fds);
}

/* At speed 600 a 10 s poll interval is 1/60 s: snapshots move on while requests are served. */
static void test_snapshots_advance(void **state)
{
	(void)state;
	struct exporter *ex = start("127.0.0.1:0", 600, NULL);
	struct exporter_stats st;
	double first = -1;
	for (int i = 0; i < 20; i++) {
		struct reply r = request(exporter_address(ex), "GET", "/metrics", "Accept-Encoding: gzip");
		assert_int_equal(r.status, 200);
		reply_free(&r);
		exporter_get_stats(ex, &st);
		if (first < 0)
			first = st.sim_time;
		usleep(20000);
	}
	exporter_get_stats(ex, &st);
	assert_true(st.renders > 5);
	assert_true(st.sim_time > first);
	exporter_destroy(ex);
}

int main(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_accepts_gzip),
		cmocka_unit_test(test_routes),
		cmocka_unit_test(test_port_in_use),
		cmocka_unit_test(test_snapshots_advance),
	};
	int rc = cmocka_run_group_tests_name("exporter over HTTP", tests, NULL, NULL);
	curl_global_cleanup();
	return rc;
}
