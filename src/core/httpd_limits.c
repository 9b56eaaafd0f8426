#include "core/httpd_limits.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "core/log.h"
#include "core/waiter.h"

#define SWEEP_MS 200

/* One open connection. Owned by the list; deadline_ms is written by libmicrohttpd's threads
 * and read by the sweep without the lock. */
struct tracked {
	struct tracked *prev, *next;
	struct httpd_limits *l;
	MHD_socket fd;
	_Atomic int64_t deadline_ms; /* monotonic; 0: answering, no deadline */
	bool shut;                   /* the sweep shut it down (under mu) */
	struct sockaddr_storage peer;
};

struct httpd_limits {
	struct httpd_limits_params p;
	char name[64];
	pthread_mutex_t mu; /* the list */
	struct tracked *head;
	struct waiter sweeper; /* the sweeping thread */
	atomic_ullong closed;
};

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void peer_text(const struct sockaddr_storage *ss, char *out, size_t n)
{
	snprintf(out, n, "?");
	if (ss->ss_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)ss)->sin_addr, out, (socklen_t)n);
	else if (ss->ss_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)ss)->sin6_addr, out,
		          (socklen_t)n);
}

static void notify_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                              enum MHD_ConnectionNotificationCode toe)
{
	struct httpd_limits *l = cls;
	if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
		struct tracked *t = calloc(1, sizeof(*t));
		if (!t) /* untracked: bounded by the idle timeout only */
			return;
		const union MHD_ConnectionInfo *fd =
		    MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
		const union MHD_ConnectionInfo *ad =
		    MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
		if (!fd) {
			free(t);
			return;
		}
		t->l = l;
		t->fd = fd->connect_fd;
		if (ad && ad->client_addr) {
			size_t len = ad->client_addr->sa_family == AF_INET6
			                 ? sizeof(struct sockaddr_in6)
			                 : sizeof(struct sockaddr_in);
			memcpy(&t->peer, ad->client_addr, len);
		}
		atomic_store(&t->deadline_ms, now_ms() + (int64_t)(l->p.request_s * 1000));
		pthread_mutex_lock(&l->mu);
		t->next = l->head;
		if (l->head)
			l->head->prev = t;
		l->head = t;
		pthread_mutex_unlock(&l->mu);
		*socket_context = t; /* owned by the list until MHD_CONNECTION_NOTIFY_CLOSED */
		return;
	}
	struct tracked *t = *socket_context;
	if (!t)
		return;
	/* libmicrohttpd closes the socket after this returns: the sweep, which shuts sockets
	 * down only under mu, never touches a closed (or reused) descriptor */
	pthread_mutex_lock(&l->mu);
	if (t->prev)
		t->prev->next = t->next;
	else
		l->head = t->next;
	if (t->next)
		t->next->prev = t->prev;
	pthread_mutex_unlock(&l->mu);
	*socket_context = NULL;
	free(t);
}

static struct tracked *tracked_of(struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo *ci =
	    MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	return ci ? ci->socket_context : NULL;
}

void httpd_limits_answering(struct MHD_Connection *c)
{
	struct tracked *t = tracked_of(c);
	if (t)
		atomic_store(&t->deadline_ms, 0);
}

/* A request ended (answered, or given up): the next one on this connection gets its own
 * deadline, after the keep-alive wait. */
static void request_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                              enum MHD_RequestTerminationCode toe)
{
	(void)con_cls;
	(void)toe;
	struct httpd_limits *l = cls;
	struct tracked *t = tracked_of(c);
	if (t)
		atomic_store(&t->deadline_ms,
		             now_ms() + (int64_t)((l->p.keepalive_s + l->p.request_s) * 1000));
}

static void *sweep_main(void *arg)
{
	struct httpd_limits *l = arg;
	pthread_mutex_lock(&l->sweeper.lock);
	while (waiter_sleep_locked(&l->sweeper, SWEEP_MS / 1000.0)) {
		pthread_mutex_unlock(&l->sweeper.lock);
		int64_t now = now_ms();
		pthread_mutex_lock(&l->mu);
		for (struct tracked *t = l->head; t; t = t->next) {
			int64_t d = atomic_load(&t->deadline_ms);
			if (d == 0 || d > now || t->shut)
				continue;
			/* not close(): the descriptor stays libmicrohttpd's; it reads the end of
			 * the stream and closes the connection itself */
			shutdown(t->fd, SHUT_RDWR);
			t->shut = true;
			atomic_fetch_add(&l->closed, 1);
			char peer[INET6_ADDRSTRLEN];
			peer_text(&t->peer, peer, sizeof(peer));
			log_debug(
			    "%s: http: closed the connection from %s: its request was not whole "
			    "within %g s",
			    l->name, peer, l->p.request_s);
		}
		pthread_mutex_unlock(&l->mu);
		pthread_mutex_lock(&l->sweeper.lock);
	}
	pthread_mutex_unlock(&l->sweeper.lock);
	return NULL;
}

int httpd_limits_create(struct httpd_limits **out, const struct httpd_limits_params *p)
{
	*out = NULL;
	if (!p || !(p->request_s > 0) || p->keepalive_s < 0)
		return -EINVAL;
	struct httpd_limits *l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	l->p = *p;
	snprintf(l->name, sizeof(l->name), "%s", p->name ? p->name : "http");
	l->p.name = l->name;
	int rc = waiter_init(&l->sweeper);
	if (rc) {
		free(l);
		return rc;
	}
	pthread_mutex_init(&l->mu, NULL);
	rc = waiter_start(&l->sweeper, sweep_main, l);
	if (rc) {
		waiter_destroy(&l->sweeper);
		pthread_mutex_destroy(&l->mu);
		free(l);
		return rc;
	}
	*out = l; /* caller owns: httpd_limits_destroy */
	return 0;
}

void httpd_limits_log(void *cls, const char *fmt, va_list ap)
{
	const struct httpd_limits *l = cls;
	char msg[512];
	vsnprintf(msg, sizeof(msg), fmt, ap);
	size_t n = strlen(msg);
	while (n && msg[n - 1] == '\n')
		msg[--n] = '\0';
	log_debug("%s: http: %s", l->name, msg);
}

void httpd_limits_options(struct httpd_limits *l, struct MHD_OptionItem *opts)
{
	size_t i = 0;
	opts[i++] =
	    (struct MHD_OptionItem){MHD_OPTION_NOTIFY_CONNECTION, (intptr_t)notify_connection, l};
	opts[i++] =
	    (struct MHD_OptionItem){MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)request_completed, l};
	opts[i++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_LIMIT, l->p.total, NULL};
	opts[i++] = (struct MHD_OptionItem){MHD_OPTION_PER_IP_CONNECTION_LIMIT, l->p.per_ip, NULL};
	opts[i++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_TIMEOUT, l->p.idle_s, NULL};
	opts[i++] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
	while (i < HTTPD_LIMITS_NOPTS)
		opts[i++] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
}

unsigned long long httpd_limits_closed(struct httpd_limits *l)
{
	return atomic_load(&l->closed);
}

void httpd_limits_destroy(struct httpd_limits *l)
{
	if (!l)
		return;
	waiter_stop(&l->sweeper);
	/* the daemon is stopped: every connection was reported closed; free any left over */
	while (l->head) {
		struct tracked *t = l->head;
		l->head = t->next;
		free(t);
	}
	waiter_destroy(&l->sweeper);
	pthread_mutex_destroy(&l->mu);
	free(l);
}
