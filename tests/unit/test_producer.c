/* The producer's accounting without a broker (bootstrap 127.0.0.1:1, where nothing listens):
 * librdkafka's queue, the memory bound, the spool, drop-oldest, the spool at close (in order,
 * with a half-read segment), replay order across runs, a damaged spool tail, the journal that
 * keeps accepted events across a SIGKILL, the refusal of bad options. */
#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "bus/producer.h"

#define VLEN 95 /* value bytes: with a 5-byte key and 12 bytes of framing, 112 per record */
#define RECSZ 112

static char DIR_[64];

static int setup(void **state)
{
	(void)state;
	snprintf(DIR_, sizeof(DIR_), "/tmp/gh-spool-XXXXXX");
	assert_non_null(mkdtemp(DIR_));
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	DIR *d = opendir(DIR_);
	struct dirent *de;
	char p[600];
	while (d && (de = readdir(d)))
		if (de->d_name[0] != '.') {
			snprintf(p, sizeof(p), "%s/%s", DIR_, de->d_name);
			if (unlink(p) != 0)
				rmdir(p); /* a planted directory */
		}
	if (d)
		closedir(d);
	rmdir(DIR_);
	return 0;
}

static struct producer *make(size_t buffer_events, const char *spool, uint64_t spool_max,
			     const char *rdk_queue)
{
	char q[64];
	snprintf(q, sizeof(q), "queue.buffering.max.messages=%s", rdk_queue);
	const char *props[] = {q, "reconnect.backoff.max.ms=100", "log_level=0"};
	struct producer_options o = {.brokers = "127.0.0.1:1",
				     .topic = "t",
				     .kafka_props = props,
				     .nkafka_props = 3,
				     .buffer_events = buffer_events,
				     .spool_dir = spool,
				     .spool_max_bytes = spool_max,
				     .flush_timeout_s = 0.2};
	struct producer *p = NULL;
	char err[512] = "";
	if (producer_create(&p, &o, err, sizeof(err)) != 0)
		fail_msg("producer_create: %s", err);
	return p;
}

static void send_n(struct producer *p, int from, int to)
{
	char v[VLEN + 1];
	for (int i = from; i < to; i++) {
		memset(v, '.', VLEN);
		snprintf(v, sizeof(v), "e%03d", i);
		v[4] = '.'; /* fixed length */
		assert_int_equal(producer_send(p, "GPU-x", 5, v, VLEN), 0);
	}
}

struct order {
	int got[256];
	int n;
};

static int collect(const char *key, size_t klen, const char *val, size_t vlen, void *ud)
{
	struct order *o = ud;
	assert_int_equal(klen, 5);
	assert_memory_equal(key, "GPU-x", 5);
	assert_int_equal(vlen, VLEN);
	assert_true(o->n < 256);
	o->got[o->n++] = atoi(val + 1);
	return 0;
}

static void expect_spool(const int *want, int n)
{
	struct order o = {.n = 0};
	assert_int_equal(producer_spool_scan(DIR_, collect, &o), 0);
	if (o.n != n)
		fail_msg("spool holds %d events, expected %d", o.n, n);
	for (int i = 0; i < n; i++)
		if (o.got[i] != want[i])
			fail_msg("spool event %d is e%03d, expected e%03d", i, o.got[i], want[i]);
}

static void test_memory_only(void **state)
{
	(void)state;
	struct producer *p = make(5, NULL, 0, "3");
	send_n(p, 0, 20);
	producer_poll(p, 0);
	struct producer_stats st;
	producer_stats(p, &st);
	assert_int_equal(st.produced, 20);
	assert_int_equal(st.in_flight, 3); /* librdkafka's queue is full at 3 */
	assert_int_equal(st.queued, 5);    /* the memory bound */
	assert_int_equal(st.dropped, 12);  /* the oldest ones past it */
	assert_int_equal(st.delivered + st.failed + st.spooled, 0);
	/* close: nothing can be delivered and there is no spool: counted as dropped */
	assert_int_equal(producer_close(p), 8);
	producer_stats(p, &st);
	assert_int_equal(st.dropped, 20);
	assert_int_equal(st.in_flight + st.queued, 0);
	assert_int_equal(producer_send(p, "k", 1, "v", 1), -EPIPE);
	producer_destroy(p);
}

/* The pipeline's gate for the in-process broker: a credit of events handed to librdkafka, a
 * memory bound in bytes set at run time, and the refusal of an event larger than the broker
 * takes, counted and never taking another along. */
static void test_credit_bytes_refusal(void **state)
{
	(void)state;
	const char *props[] = {"queue.buffering.max.messages=100", "reconnect.backoff.max.ms=100",
			       "log_level=0"};
	struct producer_options o = {.brokers = "127.0.0.1:1",
				     .topic = "t",
				     .kafka_props = props,
				     .nkafka_props = 3,
				     .buffer_events = 100,
				     .flush_timeout_s = 0.2,
				     .max_event_bytes = 200};
	struct producer *p = NULL;
	char err[512] = "";
	if (producer_create(&p, &o, err, sizeof(err)) != 0)
		fail_msg("producer_create: %s", err);
	struct producer_stats st;
	producer_set_credit(p, 0); /* hold */
	send_n(p, 0, 10);
	producer_poll(p, 0);
	producer_stats(p, &st);
	assert_true(st.held);
	assert_int_equal(st.in_flight, 0);
	assert_int_equal(st.queued, 10);
	assert_int_equal(st.queued_bytes, 10 * (5 + VLEN));
	producer_set_credit(p, 4); /* four more, oldest first */
	producer_poll(p, 0);
	producer_stats(p, &st);
	assert_int_equal(st.in_flight, 4);
	assert_int_equal(st.in_flight_bytes, 4 * (5 + VLEN));
	assert_int_equal(st.queued, 6);
	assert_true(st.held); /* spent */
	send_n(p, 10, 11);
	producer_poll(p, 0);
	producer_stats(p, &st);
	assert_int_equal(st.in_flight, 4);
	assert_int_equal(st.queued, 7);
	/* a byte bound of 3 events: the oldest 4 held ones are dropped, counted */
	producer_set_buffer(p, 0, 3 * (5 + VLEN));
	send_n(p, 11, 12);
	producer_stats(p, &st);
	assert_int_equal(st.queued, 3);
	assert_int_equal(st.dropped, 5);
	/* too large: refused before produce, counted; the others are untouched */
	char big[201];
	memset(big, 'x', sizeof(big));
	assert_int_equal(producer_send(p, "GPU-x", 5, big, sizeof(big) - 5 + 1), 0);
	producer_stats(p, &st);
	assert_int_equal(st.refused, 1);
	assert_int_equal(st.produced, 12);
	assert_int_equal(st.queued, 3);
	assert_non_null(strstr(st.last_error, "refused"));
	producer_set_credit(p, -1); /* no bound: everything goes to librdkafka */
	producer_poll(p, 0);
	producer_stats(p, &st);
	assert_false(st.held);
	assert_int_equal(st.queued, 0);
	assert_int_equal(st.in_flight, 7);
	producer_destroy(p);
}

static void test_spool_and_drop_oldest(void **state)
{
	(void)state;
	/* librdkafka 3, memory 4, spool 6 records: 13 waiting at most */
	struct producer *p = make(4, DIR_, 6 * RECSZ, "3");
	send_n(p, 0, 20);
	producer_poll(p, 0);
	struct producer_stats st;
	producer_stats(p, &st);
	assert_int_equal(st.produced, 20);
	assert_int_equal(st.in_flight, 3);     /* e0..e2 */
	assert_int_equal(st.queued, 4);        /* e10..e13 */
	assert_int_equal(st.spool_events, 6);  /* e14..e19 */
	assert_int_equal(st.spool_bytes, 6 * RECSZ);
	assert_int_equal(st.dropped, 7);       /* e3..e9: the oldest we held */
	assert_int_equal(st.spooled, 13);      /* e7..e19 went to disk */
	assert_int_equal(st.unspooled, 7);     /* e7..e13 came back to memory */
	assert_int_equal(st.spool_errors, 0);

	/* close: librdkafka's 3 are purged back; they and the memory queue are written as the
	 * oldest segment, ahead of the rest of the half-read one */
	assert_int_equal(producer_close(p), 13);
	producer_stats(p, &st);
	assert_int_equal(st.dropped, 7); /* nothing more lost */
	assert_int_equal(st.spool_events, 13);
	producer_destroy(p);
	const int want[] = {0, 1, 2, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19};
	expect_spool(want, 13);

	/* the next run starts from the spool; new events queue behind it; closing again keeps
	 * the order (some went to librdkafka and memory on the way and are put back first) */
	p = make(4, DIR_, 64 * RECSZ, "3");
	producer_stats(p, &st);
	assert_int_equal(st.spool_events, 13);
	send_n(p, 20, 25);
	for (int i = 0; i < 3; i++)
		producer_poll(p, 10);
	producer_stats(p, &st);
	assert_int_equal(st.in_flight + st.queued + st.spool_events, 18);
	assert_int_equal(st.dropped, 0);
	assert_int_equal(producer_close(p), 18);
	producer_destroy(p);
	const int want2[] = {0, 1, 2, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24};
	expect_spool(want2, 18);
}

static void test_damaged_spool(void **state)
{
	(void)state;
	struct producer *p = make(2, DIR_, 1 << 20, "1");
	send_n(p, 0, 6); /* 1 in librdkafka, 2 in memory, 3 spooled */
	assert_int_equal(producer_close(p), 6);
	producer_destroy(p);
	/* a crash in the middle of a record: half a header at the end of the last segment */
	DIR *d = opendir(DIR_);
	struct dirent *de;
	char last[600] = "";
	while ((de = readdir(d)))
		if (strncmp(de->d_name, "spool-", 6) == 0) {
			char path[600];
			snprintf(path, sizeof(path), "%s/%s", DIR_, de->d_name);
			if (strcmp(path, last) > 0)
				snprintf(last, sizeof(last), "%s", path);
		}
	closedir(d);
	assert_true(last[0]);
	FILE *f = fopen(last, "ab");
	assert_non_null(f);
	fwrite("\x05\x00\x00\x00\x5f", 1, 5, f);
	fclose(f);

	p = make(2, DIR_, 1 << 20, "1");
	struct producer_stats st;
	producer_stats(p, &st);
	assert_int_equal(st.spool_events, 6); /* the whole records survive */
	assert_int_equal(st.spool_errors, 1); /* the cut one is counted (and logged) */
	producer_destroy(p);
	const int want[] = {0, 1, 2, 3, 4, 5};
	expect_spool(want, 6);
}

static int journal_files(void)
{
	DIR *d = opendir(DIR_);
	struct dirent *de;
	int n = 0;
	while (d && (de = readdir(d)))
		n += strncmp(de->d_name, "journal-", 8) == 0;
	if (d)
		closedir(d);
	return n;
}

/* A run killed by SIGKILL right after producer_sync(): every event it accepted (in librdkafka,
 * in memory, in the spool's unflushed buffer) comes back on the next start. */
static void test_killed_run_journal(void **state)
{
	(void)state;
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct producer *p = make(4, DIR_, 100 * RECSZ, "3");
		send_n(p, 0, 10); /* 3 in librdkafka, 4 in memory, 3 to the spool */
		if (producer_sync(p) != 0)
			_exit(3);
		raise(SIGKILL);
		_exit(4);
	}
	int status = 0;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	assert_true(journal_files() >= 1);
	struct producer *p = make(100, DIR_, 100 * RECSZ, "100");
	struct producer_stats st;
	producer_stats(p, &st);
	assert_true(st.produced >= 7); /* at least those that were not in the spool file */
	assert_int_equal(producer_close(p), st.produced + st.spool_events);
	producer_destroy(p);
	assert_int_equal(journal_files(), 0); /* all of it is in the spool now */
	struct order o = {.n = 0};
	assert_int_equal(producer_spool_scan(DIR_, collect, &o), 0);
	int seen[10] = {0};
	for (int i = 0; i < o.n; i++) {
		assert_true(o.got[i] >= 0 && o.got[i] < 10);
		seen[o.got[i]]++;
	}
	for (int i = 0; i < 10; i++)
		if (!seen[i])
			fail_msg("event e%03d, accepted before the SIGKILL, is lost", i);
}


/* ---- the spool's files are private, and what others plant there is moved aside */

static char STDERR_FILE[64];
static int saved_stderr = -1;

static void capture_stderr(void)
{
	snprintf(STDERR_FILE, sizeof(STDERR_FILE), "/tmp/gh-spool-err-XXXXXX");
	int fd = mkstemp(STDERR_FILE);
	assert_true(fd >= 0);
	fflush(stderr);
	saved_stderr = dup(2);
	dup2(fd, 2);
	close(fd);
}

/* Restores stderr; returns what was written to it (caller frees) and echoes it. */
static char *release_stderr(void)
{
	fflush(stderr);
	dup2(saved_stderr, 2);
	close(saved_stderr);
	FILE *f = fopen(STDERR_FILE, "r");
	assert_non_null(f);
	static char buf[65536];
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	unlink(STDERR_FILE);
	fputs(buf, stderr);
	return strdup(buf);
}

static unsigned mode_of(const char *path)
{
	struct stat st;
	if (lstat(path, &st) != 0)
		fail_msg("%s: %s", path, strerror(errno));
	return (unsigned)(st.st_mode & 07777);
}

static void test_private_modes(void **state)
{
	(void)state;
	mode_t old = umask(022); /* the usual one: it must not decide who reads the events */
	char sub[128];
	snprintf(sub, sizeof(sub), "%s/spool", DIR_);
	pid_t pid = fork(); /* a run killed after a sync leaves spool and journal files */
	assert_true(pid >= 0);
	if (pid == 0) {
		struct producer *p = make(2, sub, 100 * RECSZ, "1");
		send_n(p, 0, 8);
		if (producer_sync(p) != 0)
			_exit(3);
		raise(SIGKILL);
		_exit(4);
	}
	int status = 0;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (mode_of(sub) != 0700)
		fail_msg("the spool directory %s is %04o, expected 0700", sub, mode_of(sub));
	int spool = 0, journal = 0;
	DIR *d = opendir(sub);
	assert_non_null(d);
	struct dirent *de;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		char path[600];
		snprintf(path, sizeof(path), "%s/%s", sub, de->d_name);
		spool += strncmp(de->d_name, "spool-", 6) == 0;
		journal += strncmp(de->d_name, "journal-", 8) == 0;
		if (mode_of(path) != 0600)
			fail_msg("%s is %04o, expected 0600", path, mode_of(path));
	}
	closedir(d);
	assert_true(spool >= 1);
	assert_true(journal >= 1);
	/* a file an older version left world-readable is made private when it is opened */
	char older[600];
	snprintf(older, sizeof(older), "%s/spool-%020d.gh", sub, 1);
	int fd = open(older, O_WRONLY | O_CREAT | O_EXCL, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "GHSPOOL1", 8), 8);
	close(fd);
	chmod(older, 0644);
	struct producer *p = make(100, sub, 100 * RECSZ, "100");
	assert_int_equal(mode_of(older), 0600);
	producer_close(p);
	producer_destroy(p);
	umask(old);
	d = opendir(sub);
	while (d && (de = readdir(d)))
		if (de->d_name[0] != '.') {
			char path[600];
			snprintf(path, sizeof(path), "%s/%s", sub, de->d_name);
			unlink(path);
		}
	if (d)
		closedir(d);
	rmdir(sub);
}

static void plant(const char *name, const char *data, size_t n)
{
	char path[600];
	snprintf(path, sizeof(path), "%s/%s", DIR_, name);
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, n), (ssize_t)n);
	close(fd);
}

static bool exists(const char *name)
{
	char path[600];
	struct stat st;
	snprintf(path, sizeof(path), "%s/%s", DIR_, name);
	return lstat(path, &st) == 0;
}

static void expect_in(const char *log, const char *what)
{
	if (!strstr(log, what))
		fail_msg("no '%s' in the warnings:\n%s", what, log);
}

static void test_planted_files(void **state)
{
	(void)state;
	struct producer *p = make(2, DIR_, 1 << 20, "1");
	send_n(p, 0, 6); /* 1 in librdkafka, 2 in memory, 3 spooled */
	assert_int_equal(producer_close(p), 6);
	producer_destroy(p);

	/* a symbolic link to a file of ours, a directory, a file that is no segment, a journal
	 * that is no journal, a hard link: none is read or written through, each moved aside */
	char target[128], path[600];
	snprintf(target, sizeof(target), "%s/precious", DIR_);
	plant("precious", "do not touch\n", 13);
	snprintf(path, sizeof(path), "%s/spool-%020d.gh", DIR_, 2);
	assert_int_equal(symlink(target, path), 0);
	snprintf(path, sizeof(path), "%s/spool-%020d.gh", DIR_, 3);
	assert_int_equal(mkdir(path, 0700), 0);
	char name[64];
	snprintf(name, sizeof(name), "spool-%020d.gh", 4);
	plant(name, "hello, this is not a spool segment\n", 35);
	snprintf(name, sizeof(name), "journal-%020d.gh", 5);
	plant(name, "PK\x03\x04 not a journal either", 25);
	snprintf(path, sizeof(path), "%s/spool-%020d.gh", DIR_, 6);
	assert_int_equal(link(target, path), 0);
	bool root = geteuid() == 0;
	if (root) { /* a file of another user */
		snprintf(name, sizeof(name), "spool-%020d.gh", 7);
		plant(name, "GHSPOOL1", 8);
		snprintf(path, sizeof(path), "%s/%s", DIR_, name);
		assert_int_equal(chown(path, 65534, 65534), 0);
	}

	capture_stderr();
	const char *props[] = {"queue.buffering.max.messages=1", "log_level=0"};
	struct producer_options o = {.brokers = "127.0.0.1:1",
				     .topic = "t",
				     .kafka_props = props,
				     .nkafka_props = 2,
				     .buffer_events = 2,
				     .spool_dir = DIR_,
				     .spool_max_bytes = 1 << 20,
				     .flush_timeout_s = 0.2};
	char err[512] = "";
	int rc = producer_create(&p, &o, err, sizeof(err));
	char *log = release_stderr();
	if (rc != 0)
		fail_msg("a planted file stopped the producer: %s", err);
	struct producer_stats st;
	producer_stats(p, &st);
	assert_int_equal(st.spool_events, 6);              /* every real event is still there */
	assert_int_equal(st.spool_errors, root ? 6 : 5);   /* each planted file counted */
	producer_destroy(p);

	for (int i = 2; i <= (root ? 7 : 6); i++) {
		snprintf(name, sizeof(name), "%s-%020d.gh", i == 5 ? "journal" : "spool", i);
		char bad[80];
		snprintf(bad, sizeof(bad), "%s.bad", name);
		if (exists(name) || !exists(bad))
			fail_msg("%s was not moved aside to %s", name, bad);
		snprintf(path, sizeof(path), "%s/%s", DIR_, name);
		expect_in(log, path);
	}
	expect_in(log, "a symbolic link");
	expect_in(log, "a directory");
	expect_in(log, "not a gpuhealth spool segment");
	expect_in(log, "not a gpuhealth journal segment");
	expect_in(log, "a hard link");
	if (root)
		expect_in(log, "owned by another user");
	free(log);
	/* the link's target is untouched */
	FILE *f = fopen(target, "r");
	char buf[32] = "";
	assert_non_null(f);
	assert_non_null(fgets(buf, sizeof(buf), f));
	fclose(f);
	assert_string_equal(buf, "do not touch\n");
	const int want[] = {0, 1, 2, 3, 4, 5};
	expect_spool(want, 6);
}

/* A record with a bad checksum in the middle of a segment: the records before it are sent,
 * the bytes from it on are kept in NAME.bad, not thrown away. */
static void test_bad_crc_kept(void **state)
{
	(void)state;
	struct producer *p = make(1, DIR_, 1 << 20, "1");
	send_n(p, 0, 8); /* 1 in librdkafka, 1 in memory, 6 spooled */
	assert_int_equal(producer_close(p), 8);
	producer_destroy(p);
	DIR *d = opendir(DIR_);
	struct dirent *de;
	char last[600] = "";
	while ((de = readdir(d)))
		if (strncmp(de->d_name, "spool-", 6) == 0) {
			char path[600];
			snprintf(path, sizeof(path), "%s/%s", DIR_, de->d_name);
			if (strcmp(path, last) > 0)
				snprintf(last, sizeof(last), "%s", path);
		}
	closedir(d);
	struct stat st0;
	assert_int_equal(stat(last, &st0), 0);
	long nrec = (long)(st0.st_size - 8) / RECSZ;
	assert_true(nrec >= 3);
	int fd = open(last, O_WRONLY);
	assert_true(fd >= 0);
	/* flip a byte in the value of the second record */
	assert_int_equal(pwrite(fd, "#", 1, 8 + RECSZ + 12 + 20), 1);
	close(fd);
	p = make(1, DIR_, 1 << 20, "1");
	struct producer_stats st;
	producer_stats(p, &st);
	assert_int_equal(st.spool_errors, 1);
	assert_int_equal(st.spool_events, 8 - nrec + 1);
	producer_destroy(p);
	char bad[700];
	snprintf(bad, sizeof(bad), "%s.bad", last);
	struct stat sb;
	if (stat(bad, &sb) != 0)
		fail_msg("the damaged part of %s was not kept in %s", last, bad);
	assert_int_equal(sb.st_size, (nrec - 1) * RECSZ);
	assert_int_equal(sb.st_mode & 0777, 0600);
}

static void expect_refused(const char *dir, const char *why, const char *fix)
{
	struct producer *p = NULL;
	char err[1024] = "";
	struct producer_options o = {.brokers = "127.0.0.1:1",
				     .topic = "t",
				     .buffer_events = 1,
				     .spool_dir = dir};
	int rc = producer_create(&p, &o, err, sizeof(err));
	if (rc == 0) {
		producer_destroy(p);
		fail_msg("--spool-dir %s (others may write there) was accepted", dir);
	}
	assert_int_equal(rc, -EPERM);
	assert_null(p);
	if (!strstr(err, dir) || !strstr(err, why) || !strstr(err, fix))
		fail_msg("the refusal of %s does not say '%s' and '%s': %s", dir, why, fix, err);
}

/* A directory others can write into that is not this user's is refused, naming it and the
 * fix: as root, one of nobody's (not testable as another user); /tmp (shared, sticky) is
 * refused whoever owns it. */
static void test_foreign_dir_refused(void **state)
{
	(void)state;
	if (geteuid() == 0) {
		char dir[128];
		snprintf(dir, sizeof(dir), "%s/shared", DIR_);
		assert_int_equal(mkdir(dir, 0777), 0);
		assert_int_equal(chmod(dir, 0777), 0);
		assert_int_equal(chown(dir, 65534, 65534), 0);
		expect_refused(dir, "writable by other users", "chmod 700");
		/* group-writable is refused too */
		assert_int_equal(chmod(dir, 0770), 0);
		expect_refused(dir, "writable by other users", "chmod 700");
		rmdir(dir);
	}
	expect_refused("/tmp", "shared directory", "mkdir -m 700 /tmp/gpuhealth-spool");
}

static void test_bad_options(void **state)
{
	(void)state;
	struct producer *p = NULL;
	char err[512] = "";
	struct producer_options o = {.brokers = NULL, .topic = "t", .buffer_events = 1};
	assert_int_equal(producer_create(&p, &o, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "--brokers"));
	const char *props[] = {"compression.codec=nonsense"};
	struct producer_options o2 = {.brokers = "127.0.0.1:1",
				      .topic = "t",
				      .buffer_events = 1,
				      .kafka_props = props,
				      .nkafka_props = 1};
	assert_int_equal(producer_create(&p, &o2, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "compression.codec=nonsense"));
	struct producer_options o3 = {.brokers = "127.0.0.1:1",
				      .topic = "t",
				      .buffer_events = 1,
				      .spool_dir = "/proc/nope/spool"};
	assert_true(producer_create(&p, &o3, err, sizeof(err)) < 0);
	assert_non_null(strstr(err, "/proc/nope/spool"));
	assert_null(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_memory_only),
		cmocka_unit_test(test_credit_bytes_refusal),
		cmocka_unit_test_setup_teardown(test_spool_and_drop_oldest, setup, teardown),
		cmocka_unit_test_setup_teardown(test_damaged_spool, setup, teardown),
		cmocka_unit_test_setup_teardown(test_killed_run_journal, setup, teardown),
		cmocka_unit_test_setup_teardown(test_private_modes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_planted_files, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_crc_kept, setup, teardown),
		cmocka_unit_test_setup_teardown(test_foreign_dir_refused, setup, teardown),
		cmocka_unit_test(test_bad_options),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
