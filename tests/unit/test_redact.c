/* Redaction of connection strings (issue #20 item 1): no byte of a password or sslpassword
 * in any form leaves pg_redact / pg_redact_message, and the rest stays legible. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <libpq-fe.h>

#include "store/pg.h"

#define MAXS 4

struct form {
	const char *what;
	const char *conninfo;
	const char *secret[MAXS]; /* none of these may appear in the output */
	const char *shown[MAXS];  /* each of these must */
	bool has_password;        /* pg_conninfo_has_password */
};

static const struct form forms[] = {
    {"key/value",
     "host=db.example port=5432 dbname=gh user=sink password=hunter2",
     {"hunter2"},
     {"host=db.example", "port=5432", "dbname=gh", "user=sink"},
     true},
    {"spaces around =",
     "host=db password = hunter2 dbname=gh",
     {"hunter2", "hunter"},
     {"host=db", "dbname=gh", "password=***"},
     true},
    {"space after = only", "host=db password= hunter2", {"hunter2"}, {"host=db"}, true},
    {"tab and newline as separators",
     "host=db\tpassword =\n tabpw01 dbname=gh",
     {"tabpw01"},
     {"host=db", "dbname=gh"},
     true},
    {"single-quoted with a space",
     "password='qa1piece qa2piece' host=db",
     {"qa1piece", "qa2piece"},
     {"host=db", "password=***"},
     true},
    {"quoted with an escaped quote",
     "password='sq1abc sq2def\\' sq3ghi' user=u host=db",
     {"sq1abc", "sq2def", "sq3ghi"},
     {"user=u", "host=db"},
     true},
    {"unquoted with a backslash escape",
     "password=bs1x\\\\bs2slash host=db",
     {"bs1x", "bs2slash"},
     {"host=db"},
     true},
    {"double quotes are literal",
     "user=sink password=\"dq15pw\" host=db",
     {"dq15pw"},
     {"user=sink", "host=db"},
     true},
    {"sslpassword",
     "host=db sslkey=/etc/k.pem sslpassword=keypw77",
     {"keypw77"},
     {"host=db", "sslkey=/etc/k.pem", "sslpassword=***"},
     true},
    {"URI",
     "postgresql://sink:hunter2@db.example:5432/gh",
     {"hunter2"},
     {"host=db.example", "port=5432", "dbname=gh", "user=sink"},
     true},
    {"URI, short scheme",
     "postgres://sink:hunter2@db/gh",
     {"hunter2"},
     {"host=db", "dbname=gh", "user=sink", "password=***"},
     true},
    {"URI, %-encoded password",
     "postgresql://sink:p%40ss%20w0rd@db/gh",
     {"w0rd", "%40ss", "p@ss"},
     {"host=db", "dbname=gh", "user=sink"},
     true},
    {"URI, %-encoded user and password",
     "postgresql://%73ink:enc%70w99@db/gh",
     {"encpw99", "enc%70w99", "w99"},
     {"user=sink", "host=db"},
     true},
    {"URI, multi-host",
     "postgresql://sink:mh1pw@h1:5432,h2:5433/gh",
     {"mh1pw"},
     {"host=h1,h2", "port=5432,5433", "dbname=gh"},
     true},
    {"URI, IPv6 host",
     "postgresql://sink:v6pw22@[::1]:5432/gh",
     {"v6pw22"},
     {"host=::1", "port=5432"},
     true},
    {"URI, password in the query",
     "postgresql://sink@db/gh?password=qpw33&sslmode=require",
     {"qpw33"},
     {"host=db", "dbname=gh", "sslmode=require"},
     true},
    {"URI, sslpassword in the query",
     "postgresql://sink@db/gh?sslpassword=qspw44&application_name=x",
     {"qspw44"},
     {"host=db", "application_name=x"},
     true},
    {"URI, socket and password in the query",
     "postgresql:///gh?host=/tmp&password=qs17pw",
     {"qs17pw"},
     {"host=/tmp", "dbname=gh"},
     true},
    {"URI, raw '@' in the password",
     "postgresql://sink:pa@ss55@db/gh",
     {"ss55"},
     {"host=***@db", "dbname=gh"},
     true},
    {"service name", "service=prod", {NULL}, {"service=prod"}, false},
    {"service with a password",
     "service=prod password=svpw66",
     {"svpw66"},
     {"service=prod", "password=***"},
     true},
    {"unix socket",
     "host=/var/run/postgresql dbname=gh password=sock77",
     {"sock77"},
     {"host=/var/run/postgresql", "dbname=gh"},
     true},
    {"hostaddr and a timeout",
     "host=db hostaddr=10.0.0.1 port=5432 password=ha88 connect_timeout=5",
     {"ha88"},
     {"hostaddr=10.0.0.1", "connect_timeout=5"},
     true},
    {"a value that needs quotes",
     "dbname='my db' password=x9y8z7",
     {"x9y8z7"},
     {"dbname='my db'"},
     true},
    {"options with spaces",
     "options='-c search_path=x' password=opt16 host=db",
     {"opt16"},
     {"options='-c search_path=x'", "host=db"},
     true},
    {"no password", "host=db dbname=gh user=reader", {NULL}, {"host=db", "user=reader"}, false},
    {"URI, no password", "postgresql://reader@db/gh", {NULL}, {"user=reader", "host=db"}, false},
    {"a bare database name", "gpuhealth", {NULL}, {"dbname=gpuhealth"}, false},
    {"unparseable: unquoted space",
     "host=db password=up1 up2piece up3piece",
     {"up2piece", "up3piece"},
     {"unparseable"},
     true},
    {"unparseable: unterminated quote",
     "password='unterm12 host=db",
     {"unterm12"},
     {"unparseable"},
     true},
    {"unparseable: bad %-encoding",
     "postgresql://sink:bad%zzpw9@db/gh",
     {"zzpw9", "bad%"},
     {"unparseable"},
     true},
    {"unparseable: unterminated IPv6",
     "postgresql://sink:open11@[::1/gh",
     {"open11"},
     {"unparseable"},
     true},
    {"unparseable: bad query key",
     "postgresql://sink:bq13pw@db/gh?passwrd=x",
     {"bq13pw"},
     {"unparseable"},
     true},
    {"unparseable without a password: the key is named",
     "host=db dbnme=gh",
     {NULL},
     {"unparseable", "\"dbnme\""},
     false},
};
#define NFORMS (sizeof(forms) / sizeof(forms[0]))

static void assert_safe(const char *what, const char *out, const char *const *secret)
{
	for (int k = 0; k < MAXS && secret[k]; k++)
		if (strstr(out, secret[k]))
			fail_msg("%s: secret '%s' shows in '%s'", what, secret[k], out);
	for (const char *s = out; *s; s++)
		if ((unsigned char)*s < 0x20)
			fail_msg("%s: control byte 0x%02x in '%s'", what, (unsigned)*s, out);
}

static void test_forms(void **state)
{
	(void)state;
	unsetenv("PGPASSWORD");
	assert_true(NFORMS >= 20);
	for (size_t i = 0; i < NFORMS; i++) {
		const struct form *f = &forms[i];
		char out[512];
		memset(out, 'Z', sizeof(out));
		pg_redact(f->conninfo, out, sizeof(out));
		assert_safe(f->what, out, f->secret);
		for (int k = 0; k < MAXS && f->shown[k]; k++)
			if (!strstr(out, f->shown[k]))
				fail_msg("%s: '%s' missing from '%s'", f->what, f->shown[k], out);
	}
}

/* Every buffer size: terminated, nothing past the end, no secret in a cut. */
static void test_small_buffers(void **state)
{
	(void)state;
	for (size_t i = 0; i < NFORMS; i++) {
		for (size_t len = 1; len < 80; len++) {
			char *out = malloc(len);
			assert_non_null(out);
			pg_redact(forms[i].conninfo, out, len);
			assert_true(strlen(out) < len);
			assert_safe(forms[i].what, out, forms[i].secret);
			free(out);
		}
	}
	pg_redact("host=db", NULL, 0); /* no room: writes nothing */
}

/* The real libpq parse error of each unparseable form, through pg_redact_message. */
static void test_parse_errors(void **state)
{
	(void)state;
	int seen = 0;
	for (size_t i = 0; i < NFORMS; i++) {
		char *perr = NULL;
		PQconninfoOption *o = PQconninfoParse(forms[i].conninfo, &perr);
		if (o) {
			PQconninfoFree(o);
			continue;
		}
		seen++;
		assert_non_null(perr);
		char out[512];
		pg_redact_message(forms[i].conninfo, perr, out, sizeof(out));
		assert_safe(forms[i].what, out, forms[i].secret);
		assert_true(strlen(out) > 10); /* libpq's reason is still there */
		PQfreemem(perr);
	}
	assert_true(seen >= 4);
}

static void test_message_scrub(void **state)
{
	(void)state;
	unsetenv("PGPASSWORD");
	char out[512];
	/* libpq names the host it could not resolve: here part of the password */
	pg_redact_message("postgresql://sink:pa@ss55@db/gh",
	                  "could not translate host name \"ss55@db\" to address: Name or service "
	                  "not known\n",
	                  out, sizeof(out));
	assert_null(strstr(out, "ss55"));
	assert_non_null(strstr(out, "could not translate host name \"***@db\""));
	assert_int_equal(out[strlen(out) - 1], 'n'); /* the trailing newline is gone */

	/* a password anywhere in a message, even if a server or libpq echoed it */
	pg_redact_message("host=db password = hunter2", "FATAL: odd hunter2 echo", out,
	                  sizeof(out));
	assert_string_equal(out, "FATAL: odd *** echo");
	pg_redact_message("host=db sslpassword=keypw77", "bad key keypw77", out, sizeof(out));
	assert_string_equal(out, "bad key ***");

	/* a short password only as a whole word */
	pg_redact_message("host=db password=ab", "about ab: \"ab\"", out, sizeof(out));
	assert_string_equal(out, "about ***: \"***\"");

	/* inner newlines joined, so one message stays one log line */
	pg_redact_message("host=a,b", "connection to a failed\nconnection to b failed\n", out,
	                  sizeof(out));
	assert_string_equal(out, "connection to a failed; connection to b failed");

	/* PGPASSWORD */
	setenv("PGPASSWORD", "envpw13", 1);
	pg_redact_message(NULL, "x envpw13 y", out, sizeof(out));
	assert_string_equal(out, "x *** y");
	unsetenv("PGPASSWORD");
}

static void test_environment(void **state)
{
	(void)state;
	char out[512];
	setenv("PGHOST", "envhost", 1);
	setenv("PGPASSWORD", "envpw13", 1);
	pg_redact(NULL, out, sizeof(out));
	assert_null(strstr(out, "envpw13"));
	assert_non_null(strstr(out, "PG* environment"));
	assert_non_null(strstr(out, "host=envhost"));
	assert_non_null(strstr(out, "password=***"));
	pg_redact("", out, sizeof(out));
	assert_null(strstr(out, "envpw13"));
	unsetenv("PGHOST");
	unsetenv("PGPASSWORD");
}

/* Random passwords of every awkward byte, written in both forms as a user would quote them:
 * none may show, and libpq must have understood each (the output says password=***). */
static void test_random_passwords(void **state)
{
	(void)state;
	static const char chars[] = "aZ9 '\\=@:/%?&#,;\"$!-_.~";
	unsigned seed = 12345;
	for (int iter = 0; iter < 3000; iter++) {
		char pw[24];
		size_t n = 8 + (size_t)(iter % 12);
		for (size_t i = 0; i < n; i++) {
			seed = seed * 1103515245u + 12345u;
			pw[i] = chars[(seed >> 16) % (sizeof(chars) - 1)];
		}
		pw[n] = '\0';
		char conn[256], out[512];
		size_t o = 0;
		if (iter % 2 == 0) { /* key/value, single-quoted, ' and \ escaped */
			o += (size_t)snprintf(conn, sizeof(conn), "host=db %spassword%s= '",
			                      iter % 4 ? "" : "  ", iter % 3 ? " " : "");
			for (size_t i = 0; i < n; i++) {
				if (pw[i] == '\'' || pw[i] == '\\')
					conn[o++] = '\\';
				conn[o++] = pw[i];
			}
			snprintf(conn + o, sizeof(conn) - o, "' dbname=gh");
		} else { /* URI, every byte %-encoded but letters and digits */
			o += (size_t)snprintf(conn, sizeof(conn), "postgresql://sink:");
			for (size_t i = 0; i < n; i++) {
				unsigned char c = (unsigned char)pw[i];
				if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
				    (c >= '0' && c <= '9'))
					conn[o++] = (char)c;
				else
					o += (size_t)snprintf(conn + o, sizeof(conn) - o, "%%%02X",
					                      c);
			}
			snprintf(conn + o, sizeof(conn) - o, "@db:5432/gh%s",
			         iter % 3 ? "" : "?sslmode=disable");
		}
		pg_redact(conn, out, sizeof(out));
		if (strstr(out, pw) || !strstr(out, "password=***") || !strstr(out, "dbname=gh"))
			fail_msg("password '%s' in '%s' -> '%s'", pw, conn, out);
		/* and as a message libpq might have written */
		char msg[128], clean[256];
		snprintf(msg, sizeof(msg), "error near \"%s\"\n", pw);
		pg_redact_message(conn, msg, clean, sizeof(clean));
		if (strstr(clean, pw))
			fail_msg("password '%s' in message '%s'", pw, clean);
	}
}

/* pg_connect's whole message, libpq's part included, for real failed connections (nothing
 * listens on port 1), a password from a service file among them. */
static void test_connect_errors(void **state)
{
	(void)state;
	char dir[] = "/tmp/test_redact.XXXXXX";
	assert_non_null(mkdtemp(dir));
	char path[64];
	snprintf(path, sizeof(path), "%s/pg_service.conf", dir);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fprintf(f, "[gh]\nhost=127.0.0.1\nport=1\nuser=sink\npassword=svcfilepw31\ndbname=gh\n");
	fclose(f);
	setenv("PGSERVICEFILE", path, 1);
	static const struct {
		const char *conninfo, *secret, *shown;
	} c[] = {
	    {"host=127.0.0.1 port=1 password = conpw32 dbname=gh", "conpw32",
	     "host=127.0.0.1 port=1"},
	    {"host=127.0.0.1 port=1 password='conpw33 b' dbname=gh", "conpw33", "dbname=gh"},
	    {"postgresql://sink:con%20pw34@127.0.0.1:1/gh", "pw34", "user=sink"},
	    {"postgresql://sink@127.0.0.1:1,127.0.0.1:1/gh?password=conpw35", "conpw35",
	     "host=127.0.0.1,127.0.0.1"},
	    {"postgresql://sink:pa@conpw36@127.0.0.1:1/gh", "conpw36", "host=***@127.0.0.1"},
	    {"host=127.0.0.1 port=1 password=conpw37a conpw37b", "conpw37", "is not valid"},
	    {"host=127.0.0.1 port=1 dbnme=gh", "no secret here",
	     "invalid connection option \"dbnme\""},
	    {"service=gh", "svcfilepw31", "service=gh"},
	};
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		char err[1024];
		PGconn *conn = pg_connect(c[i].conninfo, "test_redact", err, sizeof(err));
		assert_null(conn);
		if (strstr(err, c[i].secret))
			fail_msg("'%s': '%s' shows in '%s'", c[i].conninfo, c[i].secret, err);
		if (!strstr(err, c[i].shown))
			fail_msg("'%s': '%s' missing from '%s'", c[i].conninfo, c[i].shown, err);
		if (!strstr(err, strstr(c[i].shown, "valid")
		                     ? "connection string (--db / DATABASE_URL)"
		                     : "cannot connect to PostgreSQL") ||
		    strchr(err, '\n'))
			fail_msg("'%s': not one clear line: '%s'", c[i].conninfo, err);
	}
	unsetenv("PGSERVICEFILE");
	unlink(path);
	rmdir(dir);
}

static void test_has_password(void **state)
{
	(void)state;
	for (size_t i = 0; i < NFORMS; i++)
		if (pg_conninfo_has_password(forms[i].conninfo) != forms[i].has_password)
			fail_msg("%s: has_password should be %d", forms[i].what,
			         forms[i].has_password);
	assert_false(pg_conninfo_has_password(NULL));
	assert_false(pg_conninfo_has_password(""));
	assert_false(pg_conninfo_has_password("host=db password="));
}

/* Which failed statements make a writer connect again (issue 23): a read-only server and a
 * shutdown yes, bad data or a missing table never. */
static void test_sqlstate_reconnect(void **state)
{
	(void)state;
	const char *again[] = {"25006", "57P01", "57P02", "57P03", "08006", "08003", "08000"};
	for (size_t i = 0; i < sizeof(again) / sizeof(again[0]); i++)
		assert_true(pg_sqlstate_reconnect(again[i]));
	const char *stay[] = {"23505", "22P02", "42P01",  "40001", "25001", "53300",
	                      "57014", "2500",  "250060", "",      NULL};
	for (size_t i = 0; i < sizeof(stay) / sizeof(stay[0]); i++)
		assert_false(pg_sqlstate_reconnect(stay[i]));
	assert_false(pg_session_read_only(NULL));
}

/* pg_text_array: quoting, escaping, the empty array, and -ENOSPC at every short length */
static void test_text_array(void **state)
{
	(void)state;
	char buf[64];
	const char *v[] = {"gpu-0", "a\"b", "c\\d", ""};
	assert_int_equal(pg_text_array(v, 4, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "{\"gpu-0\",\"a\\\"b\",\"c\\\\d\",\"\"}");
	assert_int_equal(pg_text_array(v, 0, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "{}");
	size_t need = strlen("{\"gpu-0\",\"a\\\"b\",\"c\\\\d\",\"\"}") + 1;
	for (size_t len = 0; len < need; len++) {
		char small[64];
		memset(small, 'x', sizeof(small));
		int rc = pg_text_array(v, 4, small, len);
		if (rc == 0) /* it fitted: then it must be whole, within len */
			assert_true(strlen(small) < len);
		else
			assert_int_equal(rc, -ENOSPC);
		for (size_t i = len; i < sizeof(small); i++) /* nothing written past len */
			assert_int_equal(small[i], 'x');
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_forms),
	    cmocka_unit_test(test_small_buffers),
	    cmocka_unit_test(test_parse_errors),
	    cmocka_unit_test(test_message_scrub),
	    cmocka_unit_test(test_environment),
	    cmocka_unit_test(test_has_password),
	    cmocka_unit_test(test_random_passwords),
	    cmocka_unit_test(test_connect_errors),
	    cmocka_unit_test(test_sqlstate_reconnect),
	    cmocka_unit_test(test_text_array),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
