/*
 * privpg: the console's private PostgreSQL server under $XDG_STATE_HOME/gpuhealth/ (default
 * ~/.local/state/gpuhealth/): initialised on the first run (initdb), started as a child process
 * on a unix socket only (listen_addresses = ''), reused on later runs, stopped by privpg_stop.
 *
 * Layout of the state directory (mode 0700):
 *   pg/              the data directory; its unix socket .s.PGSQL.5432 lives in it too
 *   postgresql.log   the server's (and initdb's) output
 *
 * Paths: the server and initdb are given the data directory as /proc/self/fd/3, a directory
 * descriptor the child opened before it dropped its privileges. That path is short (the
 * 107-byte limit of a unix socket path never bites, however deep $XDG_STATE_HOME is) and it
 * reaches the directory without walking the path to it, so the server can run as an
 * unprivileged user even when the state directory lies under root's 0700 home. Clients
 * (sink, scorer, reader) connect the same way through a descriptor this process holds:
 * host=/proc/self/fd/N.
 *
 * Root: PostgreSQL refuses to run as root, so as root initdb and the server run as the system
 * user 'postgres' (or 'nobody' when there is none), which owns pg/.
 *
 * Authentication is 'trust' on the socket: only the owner of the 0700 directories (and root)
 * can reach it.
 *
 * The child is started with PR_SET_PDEATHSIG (SIGINT, a fast shutdown) so a console killed with
 * SIGKILL does not leave it behind; the signal follows the THREAD that forked, so privpg_start
 * must be called from a thread that outlives the server (the pipeline's database thread).
 */
#ifndef GPUHEALTH_PRIVPG_H
#define GPUHEALTH_PRIVPG_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct privpg;

/* The directory holding initdb and postgres: `pg_config --bindir`, the newest
 * /usr/lib/postgresql/N/bin, /usr/pgsql-N/bin, then PATH. Returns 0 or -ENOENT. */
int privpg_find_bindir(char *out, size_t outlen);

/* $XDG_STATE_HOME/gpuhealth or $HOME/.local/state/gpuhealth. Returns 0 or -ENOENT/-ENAMETOOLONG. */
int privpg_state_dir(char *out, size_t outlen);

/*
 * Creates the state directory, runs initdb when pg/ holds no cluster, starts the server (or
 * reuses one a previous run left running), waits until it accepts connections (up to
 * timeout_s), creates the database 'gpuhealth' and applies the migrations. Returns 0, or -errno
 * with the reason in err (the server's log is in the message when it failed to start);
 * -ECANCELED as soon as *cancel turns true (initdb is interrupted, the server stopped), so a
 * console that quits while the database starts is not held up.
 */
int privpg_start(struct privpg **out, const char *bindir, const char *state_dir,
		 double timeout_s, const atomic_bool *cancel, char *err, size_t errlen);

/* The conninfo of the database (valid until privpg_destroy). */
const char *privpg_conninfo(const struct privpg *p);
/* "private PostgreSQL 15.18, socket DIR" (valid until privpg_destroy). */
const char *privpg_describe(const struct privpg *p);

/* Returns 0 while the server runs, else -EPIPE with the reason in err (exit status, log). */
int privpg_check(struct privpg *p, char *err, size_t errlen);

/* Fast shutdown (SIGINT) and wait (up to timeout_s, then SIGQUIT, then SIGKILL). A server this
 * process reused (not its child) is left running while other client sessions use it: another
 * console started it and stops it. Idempotent. */
void privpg_stop(struct privpg *p, double timeout_s);
void privpg_destroy(struct privpg *p);

#endif
