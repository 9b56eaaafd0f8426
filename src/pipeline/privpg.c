#include "pipeline/privpg.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "core/timeutil.h"
#include "store/migrate.h"
#include "store/pg.h"

#define DB_NAME "gpuhealth"
#define DB_USER "gpuhealth"
#define CHILD_DIR_FD 3

struct privpg {
	char bindir[PATH_MAX];
	char state[PATH_MAX];
	char data[PATH_MAX];
	char logpath[PATH_MAX];
	int dirfd;      /* the data directory, held for host=/proc/self/fd/N */
	pid_t pid;      /* the server; 0 when none */
	bool child;     /* pid is our child (else: a server a previous run left running) */
	bool stopped;
	bool root;
	uid_t uid;
	gid_t gid;
	char user[64];
	char conninfo[128];
	char admin_conninfo[128];
	char describe[PATH_MAX + 96];
	const atomic_bool *cancel; /* during privpg_start */
};

static bool cancelled(const struct privpg *p) { return p->cancel && atomic_load(p->cancel); }

static bool is_exec(const char *dir, const char *name)
{
	char p[PATH_MAX];
	if (snprintf(p, sizeof(p), "%s/%s", dir, name) >= (int)sizeof(p))
		return false;
	return access(p, X_OK) == 0;
}

static bool has_server(const char *dir) { return is_exec(dir, "postgres") && is_exec(dir, "initdb"); }

int privpg_find_bindir(char *out, size_t outlen)
{
	const char *env = getenv("GPUHEALTH_PG_BINDIR");
	if (env) { /* an explicit choice (also how the tests simulate a host without a server) */
		if (!*env || !has_server(env))
			return -ENOENT;
		snprintf(out, outlen, "%s", env);
		return 0;
	}
	FILE *f = popen("pg_config --bindir 2>/dev/null", "r");
	if (f) {
		char line[PATH_MAX] = "";
		if (fgets(line, sizeof(line), f))
			line[strcspn(line, "\n")] = '\0';
		pclose(f);
		if (line[0] && has_server(line)) {
			snprintf(out, outlen, "%s", line);
			return 0;
		}
	}
	/* Debian/Ubuntu: the newest /usr/lib/postgresql/N/bin; RHEL: /usr/pgsql-N/bin */
	static const char *roots[] = {"/usr/lib/postgresql", "/usr"};
	for (size_t r = 0; r < sizeof(roots) / sizeof(roots[0]); r++) {
		DIR *d = opendir(roots[r]);
		if (!d)
			continue;
		long best = -1;
		char bestdir[PATH_MAX] = "";
		struct dirent *e;
		while ((e = readdir(d))) {
			const char *v = e->d_name;
			if (r == 1) {
				if (strncmp(v, "pgsql-", 6) != 0)
					continue;
				v += 6;
			}
			char *end;
			long n = strtol(v, &end, 10);
			if (end == v || *end || n <= best)
				continue;
			char cand[PATH_MAX];
			if (snprintf(cand, sizeof(cand), "%s/%s/bin", roots[r], e->d_name) >=
			    (int)sizeof(cand))
				continue;
			if (has_server(cand)) {
				best = n;
				snprintf(bestdir, sizeof(bestdir), "%s", cand);
			}
		}
		closedir(d);
		if (best >= 0) {
			snprintf(out, outlen, "%s", bestdir);
			return 0;
		}
	}
	const char *path = getenv("PATH");
	if (!path)
		return -ENOENT;
	char *copy = strdup(path);
	if (!copy)
		return -ENOMEM;
	int rc = -ENOENT;
	for (char *save = NULL, *dir = strtok_r(copy, ":", &save); dir;
	     dir = strtok_r(NULL, ":", &save)) {
		char p[PATH_MAX], real[PATH_MAX];
		if (!is_exec(dir, "postgres") || !is_exec(dir, "initdb"))
			continue;
		snprintf(p, sizeof(p), "%s/postgres", dir);
		if (!realpath(p, real))
			continue;
		char *slash = strrchr(real, '/');
		if (!slash)
			continue;
		*slash = '\0';
		snprintf(out, outlen, "%s", has_server(real) ? real : dir);
		rc = 0;
		break;
	}
	free(copy);
	return rc;
}

int privpg_state_dir(char *out, size_t outlen)
{
	const char *x = getenv("XDG_STATE_HOME");
	int n;
	if (x && x[0] == '/') {
		n = snprintf(out, outlen, "%s/gpuhealth", x);
	} else {
		const char *home = getenv("HOME");
		if (!home || !*home) {
			struct passwd *pw = getpwuid(getuid());
			home = pw ? pw->pw_dir : NULL;
		}
		if (!home || !*home)
			return -ENOENT;
		n = snprintf(out, outlen, "%s/.local/state/gpuhealth", home);
	}
	return n < 0 || (size_t)n >= outlen ? -ENAMETOOLONG : 0;
}

static int mkdirs(const char *path, mode_t last_mode)
{
	char p[PATH_MAX];
	snprintf(p, sizeof(p), "%s", path);
	for (char *s = p + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(p, 0755) != 0 && errno != EEXIST)
			return -errno;
		*s = '/';
	}
	if (mkdir(p, last_mode) != 0 && errno != EEXIST)
		return -errno;
	return 0;
}

/* The last lines of the server log that say what went wrong (FATAL/ERROR/PANIC first). */
static void log_tail(const struct privpg *p, char *out, size_t outlen)
{
	out[0] = '\0';
	FILE *f = fopen(p->logpath, "r");
	if (!f)
		return;
	char buf[8192];
	if (fseek(f, 0, SEEK_END) == 0) {
		long sz = ftell(f);
		fseek(f, sz > (long)sizeof(buf) - 1 ? sz - (long)sizeof(buf) + 1 : 0, SEEK_SET);
	}
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	char *best = NULL, *last = NULL;
	for (char *save = NULL, *l = strtok_r(buf, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		last = l;
		if (strstr(l, "FATAL") || strstr(l, "PANIC") || strstr(l, "ERROR") ||
		    strstr(l, "error:"))
			best = l;
	}
	snprintf(out, outlen, "%s", best ? best : last ? last : "");
}

/* fork + exec with the data directory as fd 3, output to the log, unprivileged when root.
 * Between fork and exec only async-signal-safe calls. */
static pid_t spawn(struct privpg *p, char *const argv[], char *err, size_t errlen)
{
	int logfd = open(p->logpath, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (logfd < 0) {
		int e = errno;
		snprintf(err, errlen, "cannot open %s: %s", p->logpath, strerror(e));
		return -e;
	}
	struct stat lst; /* a log an older version left readable by others becomes private */
	if (fstat(logfd, &lst) == 0 && (lst.st_mode & 0077))
		(void)fchmod(logfd, 0600);
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid < 0) {
		int e = errno;
		close(logfd);
		snprintf(err, errlen, "fork: %s", strerror(e));
		return -e;
	}
	if (pid == 0) {
		setpgid(0, 0); /* the terminal's ^C is ours to handle: we stop the server in order */
		int nul = open("/dev/null", O_RDONLY | O_CLOEXEC);
		int d = fcntl(p->dirfd, F_DUPFD_CLOEXEC, 10);
		int l = fcntl(logfd, F_DUPFD_CLOEXEC, 10);
		int n = nul >= 0 ? fcntl(nul, F_DUPFD_CLOEXEC, 10) : -1;
		if (d < 0 || l < 0 || n < 0 || dup2(n, 0) < 0 || dup2(l, 1) < 0 || dup2(l, 2) < 0 ||
		    dup2(d, CHILD_DIR_FD) < 0)
			_exit(126);
		syscall(SYS_close_range, CHILD_DIR_FD + 1, ~0U, 0);
		if (chdir("/") != 0)
			_exit(126);
		if (p->root) {
			if (setgroups(1, &p->gid) != 0 || setgid(p->gid) != 0 || setuid(p->uid) != 0)
				_exit(125);
		}
		/* after the credentials change, which clears it */
		prctl(PR_SET_PDEATHSIG, SIGINT);
		if (getppid() != parent)
			_exit(124);
		execv(argv[0], argv);
		_exit(127);
	}
	close(logfd);
	return pid;
}

static int run_initdb(struct privpg *p, char *err, size_t errlen)
{
	char exe[PATH_MAX + 16];
	snprintf(exe, sizeof(exe), "%s/initdb", p->bindir);
	char *argv[] = {exe,		"-D", "/proc/self/fd/3", "-U", DB_USER, "-A", "trust",
			"-E",		"UTF8", "--locale=C",      NULL};
	log_info("database: first run: initdb of %s (as user %s; output in %s)", p->data, p->user,
		 p->logpath);
	pid_t pid = spawn(p, argv, err, errlen);
	if (pid < 0)
		return (int)pid;
	int st = 0;
	bool killed = false;
	for (;;) {
		pid_t w = waitpid(pid, &st, WNOHANG);
		if (w == pid || (w < 0 && errno != EINTR))
			break;
		if (!killed && cancelled(p)) {
			kill(pid, SIGTERM); /* initdb removes what it created */
			killed = true;
		}
		struct timespec ts = {0, 20 * 1000000L};
		nanosleep(&ts, NULL);
	}
	if (killed) {
		snprintf(err, errlen, "cancelled during initdb");
		return -ECANCELED;
	}
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		char tail[300];
		log_tail(p, tail, sizeof(tail));
		snprintf(err, errlen, "initdb of %s failed (%s %d)%s%s; see %s", p->data,
			 WIFEXITED(st) ? "exit status" : "signal",
			 WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st), tail[0] ? ": " : "", tail,
			 p->logpath);
		return -EIO;
	}
	return 0;
}

static pid_t read_pidfile(const struct privpg *p)
{
	int fd = openat(p->dirfd, "postmaster.pid", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	char buf[32] = "";
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	long v = strtol(buf, NULL, 10);
	return v > 0 ? (pid_t)v : 0;
}

static int wait_ready(struct privpg *p, double timeout_s, char *err, size_t errlen)
{
	double until = time_mono() + timeout_s;
	for (;;) {
		if (pg_ping_ok(p->admin_conninfo))
			return 0;
		if (p->child) {
			int st;
			pid_t w = waitpid(p->pid, &st, WNOHANG);
			if (w == p->pid) {
				char tail[300];
				log_tail(p, tail, sizeof(tail));
				p->pid = 0;
				snprintf(err, errlen,
					 "the private PostgreSQL server exited at start (%s %d)%s%s; see %s",
					 WIFEXITED(st) ? "exit status" : "signal",
					 WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st),
					 tail[0] ? ": " : "", tail, p->logpath);
				return -EIO;
			}
		}
		if (cancelled(p)) {
			snprintf(err, errlen, "cancelled while the server started");
			return -ECANCELED;
		}
		if (time_mono() > until) {
			snprintf(err, errlen,
				 "the private PostgreSQL server did not accept connections within %.0f s; "
				 "see %s",
				 timeout_s, p->logpath);
			return -ETIMEDOUT;
		}
		struct timespec ts = {0, 50 * 1000000L};
		nanosleep(&ts, NULL);
	}
}

static int create_and_migrate(struct privpg *p, char *err, size_t errlen, char *version,
			      size_t vlen)
{
	int rc = -EIO;
	PGconn *c = pg_connect(p->admin_conninfo, "gpuhealth-console", err, errlen);
	PGresult *r = NULL;
	if (!c)
		goto out;
	const char *sv = pg_parameter(c, "server_version");
	snprintf(version, vlen, "%s", sv ? sv : "?");
	const char *params[1] = {DB_NAME};
	r = pg_exec_params(c, "SELECT 1 FROM pg_database WHERE datname = $1", 1, params);
	if (!pg_tuples_ok(r)) {
		snprintf(err, errlen, "private PostgreSQL: %s", pg_conn_error(c));
		goto out;
	}
	if (pg_rows(r) == 0 && pg_exec(c, "CREATE DATABASE " DB_NAME, err, errlen) != 0)
		goto out;
	pg_clear(r);
	r = NULL;
	pg_close(c);
	c = pg_connect(p->conninfo, "gpuhealth-console", err, errlen);
	if (!c)
		goto out;
	int from = 0, to = 0;
	if (migrate_apply(c, 0, &from, &to, err, errlen) != 0)
		goto out;
	if (from != to)
		log_info("database: schema migrated from version %d to %d", from, to);
	rc = 0;
out:
	pg_clear(r);
	if (c)
		pg_close(c);
	return rc;
}

int privpg_start(struct privpg **out, const char *bindir, const char *state_dir,
		 double timeout_s, const atomic_bool *cancel, char *err, size_t errlen)
{
	*out = NULL;
	int rc = -ENOMEM;
	struct privpg *p = calloc(1, sizeof(*p));
	if (!p) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	p->dirfd = -1;
	p->stopped = true;
	p->cancel = cancel;
	if (snprintf(p->bindir, sizeof(p->bindir), "%s", bindir) >= (int)sizeof(p->bindir) ||
	    snprintf(p->state, sizeof(p->state), "%s", state_dir) >= (int)sizeof(p->state) ||
	    snprintf(p->data, sizeof(p->data), "%s/pg", state_dir) >= (int)sizeof(p->data) ||
	    snprintf(p->logpath, sizeof(p->logpath), "%s/postgresql.log", state_dir) >=
		    (int)sizeof(p->logpath)) {
		snprintf(err, errlen, "state directory path too long: %s", state_dir);
		rc = -ENAMETOOLONG;
		goto fail;
	}
	p->root = geteuid() == 0;
	if (p->root) {
		struct passwd *pw = getpwnam("postgres");
		if (!pw)
			pw = getpwnam("nobody");
		if (!pw) {
			snprintf(err, errlen,
				 "running as root, and PostgreSQL refuses root, but there is neither a "
				 "'postgres' nor a 'nobody' user to run the private server as; create "
				 "one (useradd --system postgres) or give --db");
			rc = -EPERM;
			goto fail;
		}
		p->uid = pw->pw_uid;
		p->gid = pw->pw_gid;
		snprintf(p->user, sizeof(p->user), "%s", pw->pw_name);
	} else {
		p->uid = getuid();
		p->gid = getgid();
		struct passwd *pw = getpwuid(p->uid);
		snprintf(p->user, sizeof(p->user), "%s", pw ? pw->pw_name : "?");
	}
	if ((rc = mkdirs(state_dir, 0700)) != 0 || (rc = mkdirs(p->data, 0700)) != 0) {
		snprintf(err, errlen,
			 "cannot create %s: %s (set XDG_STATE_HOME to a writable directory, or give "
			 "--db for a database of your own)",
			 p->data, strerror(-rc));
		goto fail;
	}
	struct stat st;
	if (stat(p->data, &st) != 0) {
		rc = -errno;
		snprintf(err, errlen, "%s: %s", p->data, strerror(-rc));
		goto fail;
	}
	p->dirfd = open(p->data, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (p->dirfd < 0) {
		rc = -errno;
		snprintf(err, errlen, "cannot open %s: %s", p->data, strerror(-rc));
		goto fail;
	}
	bool initialised = faccessat(p->dirfd, "PG_VERSION", F_OK, 0) == 0;
	if (st.st_uid != p->uid) {
		if (initialised || !p->root) {
			snprintf(err, errlen,
				 "%s belongs to uid %u, but the private server runs as %s (uid %u); "
				 "chown -R %s %s, or remove it to start afresh",
				 p->data, (unsigned)st.st_uid, p->user, (unsigned)p->uid, p->user, p->data);
			rc = -EPERM;
			goto fail;
		}
		if (fchown(p->dirfd, p->uid, p->gid) != 0) {
			rc = -errno;
			snprintf(err, errlen, "chown %s to %s: %s", p->data, p->user, strerror(-rc));
			goto fail;
		}
	}
	if ((st.st_mode & 0077) && fchmod(p->dirfd, 0700) != 0) {
		rc = -errno;
		snprintf(err, errlen, "chmod 0700 %s: %s", p->data, strerror(-rc));
		goto fail;
	}
	snprintf(p->conninfo, sizeof(p->conninfo), "host=/proc/self/fd/%d user=%s dbname=%s",
		 p->dirfd, DB_USER, DB_NAME);
	snprintf(p->admin_conninfo, sizeof(p->admin_conninfo),
		 "host=/proc/self/fd/%d user=%s dbname=postgres connect_timeout=2", p->dirfd,
		 DB_USER);
	if (!initialised && (rc = run_initdb(p, err, errlen)) != 0)
		goto fail;
	p->stopped = false;
	if (pg_ping_ok(p->admin_conninfo)) {
		/* left running by a previous run (its parent-death signal missed, or started by
		 * hand): reuse it, and stop it when we stop */
		p->pid = read_pidfile(p);
		p->child = false;
		log_warn("database: reusing the private PostgreSQL server already running on %s "
			 "(pid %ld)",
			 p->data, (long)p->pid);
	} else {
		char exe[PATH_MAX + 16];
		snprintf(exe, sizeof(exe), "%s/postgres", p->bindir);
		char *argv[] = {exe,
				"-D",
				"/proc/self/fd/3",
				"-c",
				"listen_addresses=",
				"-c",
				"unix_socket_directories=/proc/self/fd/3",
				"-c",
				"unix_socket_permissions=0700",
				"-c",
				"logging_collector=off",
				NULL};
		pid_t pid = spawn(p, argv, err, errlen);
		if (pid < 0) {
			rc = (int)pid;
			goto fail;
		}
		p->pid = pid;
		p->child = true;
	}
	if ((rc = wait_ready(p, timeout_s, err, errlen)) != 0)
		goto fail;
	char version[32];
	if ((rc = create_and_migrate(p, err, errlen, version, sizeof(version))) != 0)
		goto fail;
	snprintf(p->describe, sizeof(p->describe), "private PostgreSQL %s%s, socket %s", version,
		 p->child ? "" : " (reused)", p->data);
	p->cancel = NULL;
	*out = p; /* caller owns */
	return 0;
fail:
	privpg_destroy(p); /* stops a server this call started */
	return rc;
}

const char *privpg_conninfo(const struct privpg *p) { return p->conninfo; }
const char *privpg_describe(const struct privpg *p) { return p->describe; }

int privpg_check(struct privpg *p, char *err, size_t errlen)
{
	if (p->stopped || p->pid <= 0)
		return 0;
	if (p->child) {
		int st;
		if (waitpid(p->pid, &st, WNOHANG) == p->pid) {
			char tail[300];
			log_tail(p, tail, sizeof(tail));
			p->pid = 0;
			p->stopped = true;
			snprintf(err, errlen, "the private PostgreSQL server exited (%s %d)%s%s; see %s",
				 WIFEXITED(st) ? "exit status" : "signal",
				 WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st), tail[0] ? ": " : "",
				 tail, p->logpath);
			return -EPIPE;
		}
	} else if (kill(p->pid, 0) != 0 && errno == ESRCH) {
		p->pid = 0;
		p->stopped = true;
		snprintf(err, errlen, "the private PostgreSQL server is gone; see %s", p->logpath);
		return -EPIPE;
	}
	return 0;
}

static bool gone(struct privpg *p)
{
	if (p->child) {
		int st;
		pid_t w = waitpid(p->pid, &st, WNOHANG);
		return w == p->pid || (w < 0 && errno == ECHILD);
	}
	return kill(p->pid, 0) != 0 && errno == ESRCH;
}

/* Client sessions other than this one (another console using a server it reused). */
static long other_clients(const struct privpg *p)
{
	char err[256];
	PGconn *c = pg_connect(p->admin_conninfo, "gpuhealth-console", err, sizeof(err));
	if (!c)
		return 0;
	long n = 0;
	PGresult *r =
	    pg_exec_params(c,
	                   "SELECT count(*) FROM pg_stat_activity WHERE backend_type = $1 "
	                   "AND pid <> pg_backend_pid()",
	                   1, (const char *const[]){"client backend"});
	if (pg_tuples_ok(r) && pg_rows(r) == 1)
		n = strtol(pg_text(r, 0, 0), NULL, 10);
	pg_clear(r);
	pg_close(c);
	return n;
}

void privpg_stop(struct privpg *p, double timeout_s)
{
	if (!p || p->stopped)
		return;
	p->stopped = true;
	if (p->pid <= 0)
		return;
	long others = p->child ? 0 : other_clients(p);
	if (others > 0) {
		/* reused from another console that still runs: it stops the server itself */
		log_info("database: leaving the private PostgreSQL server (pid %ld) running: %ld other "
			 "client session(s) use it",
			 (long)p->pid, others);
		p->pid = 0;
		return;
	}
	static const int sigs[] = {SIGINT, SIGQUIT, SIGKILL};
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
		if (kill(p->pid, sigs[i]) != 0 && errno == ESRCH)
			break;
		double until = time_mono() + (i == 0 ? timeout_s : 2.0);
		bool done = false;
		while (!(done = gone(p)) && time_mono() < until) {
			struct timespec ts = {0, 20 * 1000000L};
			nanosleep(&ts, NULL);
		}
		if (done)
			break;
		log_warn("database: the private PostgreSQL server (pid %ld) did not stop after %s; "
			 "sending %s",
			 (long)p->pid, strsignal(sigs[i]), i + 1 < 3 ? strsignal(sigs[i + 1]) : "-");
	}
	log_info("database: private PostgreSQL stopped");
	p->pid = 0;
}

void privpg_destroy(struct privpg *p)
{
	if (!p)
		return;
	privpg_stop(p, 10);
	if (p->dirfd >= 0)
		close(p->dirfd);
	free(p);
}
