/* The origin: its URL, its resolved address, the TLS context that verifies it, and a
 * way to open a (TLS) bufferevent to it. */
#ifndef LOTA_ORIGIN_H
#define LOTA_ORIGIN_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>

#include "netaddr.h"

struct event_base;
struct bufferevent;
struct timeval;
typedef struct ssl_ctx_st SSL_CTX;

struct origin {
	bool is_tls;
	char host[256]; /* name for SNI and certificate checks, without brackets */
	char port[8];
	char label[300]; /* "host:port" for logs */
	struct sockaddr_storage addr;
	socklen_t addrlen;
	SSL_CTX *ssl_ctx;
	char region[64]; /* the region it serves (region-origins), or "" */
	/* How long a connect may take, and a read wait (origin-timeout, origin-timeouts). */
	unsigned connect_ms, read_ms;
	char url[300];	 /* as configured, for status and to share one origin per URL */
	/* Counted and set by any thread (relaxed atomics): the origin label of /metrics. */
	uint64_t n_requests, n_errors, n_timeouts;
	unsigned fails;	     /* failures in a row: > 0 is "down" for lotactl status */
	time_t last_failure; /* when the last one was */
};

#define ORIGIN_TIMEOUT_MS 30000	       /* connect_ms and read_ms until set */
#define ORIGIN_TIMEOUT_MAX_MS 86400000 /* a day: more is a typo */

/* What became of a request to an origin, for its counters and health. */
enum origin_outcome {
	ORIGIN_SENT,	 /* a request went out */
	ORIGIN_ANSWERED, /* an answer's head came back */
	ORIGIN_FAILED,	 /* connect, TLS or protocol failure */
	ORIGIN_TIMED_OUT,
};

/* Parses http://HOST[:PORT] or https://HOST[:PORT], resolves HOST once, and sets up
 * certificate and host-name verification (ca_file, or the system's CAs). */
int origin_init(struct origin *o, const char *url, const char *ca_file, char *err, size_t errlen);
void origin_free(struct origin *o);
void origin_note(struct origin *o, enum origin_outcome what);
bool origin_is_down(const struct origin *o);
/* ms as a struct timeval. */
struct timeval origin_tv(unsigned ms);
/* The timeouts of a connection to o that lotad's own request (a small head, no body) goes
 * on: writes, the connect among them, wait connect_ms; reads read_ms. */
void origin_set_timeouts(const struct origin *o, struct bufferevent *bev);
/* A bufferevent connecting to the origin (TLS if https); NULL with errno on failure. */
struct bufferevent *origin_connect(struct origin *o, struct event_base *base);
/* readmore() (exchange/readmore.h) on a connection to o; 0 for a TLS one, whose reads
 * libevent's OpenSSL layer sizes itself. */
size_t origin_read_more(const struct origin *o, struct bufferevent *bev, size_t max);
/* Why the last TLS operation on bev failed, for a log line; "" if it was not TLS. */
const char *origin_tls_error(struct bufferevent *bev, char *buf, size_t len);

#endif
