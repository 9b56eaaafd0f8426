/* textfile_read: the bounded reader of the files a user names (config, targets): only a
 * regular file, a size bound, UTF-8 without NUL bytes, a line bound, errors naming the file
 * and line. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/textfile.h"

static char dir[] = "/tmp/gh-textfile-XXXXXX";
static char path[256];

static int setup(void **state)
{
	(void)state;
	if (!mkdtemp(dir))
		return -1;
	snprintf(path, sizeof(path), "%s/f", dir);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	char p[300];
	unlink(path);
	snprintf(p, sizeof(p), "%s/fifo", dir);
	unlink(p);
	rmdir(dir);
	return 0;
}

static void put(const char *body, size_t len)
{
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(body, 1, len, f), len);
	fclose(f);
}

/* read path with a 1 MiB / 16-byte-line bound; returns rc, err in err */
static int rd(const char *p, char *err, size_t errlen)
{
	char *out = NULL;
	size_t len = 0;
	int rc = textfile_read(p, 1 << 20, 16, &out, &len, err, errlen);
	if (rc == 0) {
		assert_non_null(out);
		assert_int_equal(strlen(out), len);
	} else {
		assert_null(out);
	}
	free(out);
	return rc;
}

static void bad(const char *body, size_t len, int want, const char *msg)
{
	char err[512] = "";
	put(body, len);
	assert_int_equal(rd(path, err, sizeof(err)), want);
	if (!strstr(err, msg)) {
		fail_msg("error '%s' lacks '%s'", err, msg);
	}
	if (!strstr(err, path)) /* every error names the file */
		fail_msg("error '%s' does not name %s", err, path);
}

static void test_text_is_read(void **state)
{
	(void)state;
	char err[512];
	const char ok[] = "a = 1\r\n# \xc3\xa9t\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\n"
	                  "0123456789abcdef\n0123456789abcdef\r\nlast";
	put(ok, sizeof(ok) - 1);
	char *out = NULL;
	size_t len = 0;
	assert_int_equal(textfile_read(path, 1 << 20, 16, &out, &len, err, sizeof(err)), 0);
	assert_int_equal(len, sizeof(ok) - 1);
	assert_memory_equal(out, ok, len);
	free(out);
	put("", 0);
	assert_int_equal(rd(path, err, sizeof(err)), 0);
}

static void test_not_a_file(void **state)
{
	(void)state;
	char err[512], p[300];
	assert_int_equal(rd(dir, err, sizeof(err)), -EISDIR);
	assert_non_null(strstr(err, dir));
	assert_non_null(strstr(err, "a directory, not a file"));
	assert_int_equal(rd("/dev/zero", err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "'/dev/zero': not a regular file (a device)"));
	snprintf(p, sizeof(p), "%s/fifo", dir);
	assert_int_equal(mkfifo(p, 0600), 0);
	assert_int_equal(rd(p, err, sizeof(err)), -EINVAL); /* no writer: must not wait */
	assert_non_null(strstr(err, "FIFO"));
	snprintf(p, sizeof(p), "%s/missing", dir);
	assert_int_equal(rd(p, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, p));
	assert_int_equal(rd("/proc/self/status/x", err, sizeof(err)), -ENOTDIR);
}

static void test_too_big(void **state)
{
	(void)state;
	char err[512];
	size_t n = (1 << 20) + 1;
	char *big = malloc(n);
	assert_non_null(big);
	for (size_t i = 0; i < n; i++)
		big[i] = (i % 10 == 9) ? '\n' : 'a';
	bad(big, n, -EFBIG, "1048577 bytes, over the limit of 1048576");
	put(big, n - 1); /* exactly the limit */
	assert_int_equal(rd(path, err, sizeof(err)), 0);
	free(big);
}

static void test_bad_text(void **state)
{
	(void)state;
	bad("a\nb\0c\n", 6, -EINVAL, "/f:2: NUL byte at column 2");
	bad("ok\n\xff\n", 5, -EINVAL, "/f:2: invalid UTF-8 (byte 0xff at column 1)");
	bad("\xc0\x80", 2, -EINVAL, "invalid UTF-8");         /* overlong NUL */
	bad("\xe0\x80\xaf", 3, -EINVAL, "invalid UTF-8");     /* overlong '/' */
	bad("\xed\xa0\x80", 3, -EINVAL, "invalid UTF-8");     /* a surrogate */
	bad("\xf4\x90\x80\x80", 4, -EINVAL, "invalid UTF-8"); /* above U+10FFFF */
	bad("x \xe2\x82", 4, -EINVAL, "/f:1: invalid UTF-8 (byte 0xe2 at column 3)"); /* cut */
	bad("\xc3(", 2, -EINVAL, "invalid UTF-8"); /* a bad continuation */
	bad("0123456789abcdef\n0123456789abcdefg\n", 35, -EINVAL,
	    "/f:2: line longer than 16 bytes");
	bad("0123456789abcdef\r\r\n", 19, -EINVAL, "/f:1: line longer than 16 bytes");
	bad("0123456789abcdefg", 17, -EINVAL, "/f:1: line longer than 16 bytes"); /* no newline */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_text_is_read),
	    cmocka_unit_test(test_not_a_file),
	    cmocka_unit_test(test_too_big),
	    cmocka_unit_test(test_bad_text),
	};
	return cmocka_run_group_tests_name("textfile", tests, setup, teardown);
}
