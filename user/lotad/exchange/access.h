/* What anyone holding an exchange may read of it or count on it, header-only: the routes
 * and the core's own files use these without depending on the driver. */
#ifndef LOTA_ACCESS_H
#define LOTA_ACCESS_H

#include <stdbool.h>
#include <stdint.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>

#include "exchange/exchange-t.h"
#include "exchange/writenow.h"
#include "lotad.h"
#include "metrics.h"

static inline struct lotad *exchange_lotad(const struct exchange *x)
{
	return x->c->w->d;
}

static inline struct worker *exchange_worker(const struct exchange *x)
{
	return x->c->w;
}

static inline struct event_base *exchange_base(const struct exchange *x)
{
	return x->c->w->base;
}

/* Where a route that answers itself (RT_SERVE, RT_REPLIED) writes. */
static inline struct evbuffer *exchange_client_out(const struct exchange *x)
{
	return bufferevent_get_output(x->c->cbev);
}

/* The client's socket, for a mover that writes to it directly (splice) while nothing is
 * queued in exchange_client_out(): bytes written there come after everything queued. */
static inline int exchange_client_fd(const struct exchange *x)
{
	return (int)bufferevent_getfd(x->c->cbev);
}

/* Writes what is queued for the client now, as far as its socket takes it, rather than at
 * the worker's next turn, where other callbacks may come first: for a head that should
 * not wait behind them (an adopted 200's, behind the first MiB of its own body going into
 * the store). The rest goes as usual. */
static inline void exchange_flush_client(struct exchange *x)
{
	writenow(x->c->cbev);
}

/* TCP_CORK on the client's socket while a body goes out of committed files (sendfile): the
 * kernel then sends full segments only, about a quarter more throughput on one loopback
 * connection (a bare sendfile server: 1.6 GB/s plain, 2.0 corked, as nginx's tcp_nopush
 * does). Off again before bytes that come as they arrive (a fill followed, a resume, a
 * peer's), whose last partial segment would wait up to 200 ms, and when the answer ends
 * (exchange.c), which sends that segment. */
static inline void exchange_cork_client(struct exchange *x, bool on)
{
	struct conn *c = x->c;
	int v = on;

	if (c->is_corked != on &&
	    setsockopt(bufferevent_getfd(c->cbev), IPPROTO_TCP, TCP_CORK, &v, sizeof(v)) == 0)
		c->is_corked = on;
}

static inline bool exchange_is_peer_port(const struct exchange *x)
{
	return x->c->is_peer_port;
}

static inline const char *exchange_client_addr(const struct exchange *x)
{
	return x->c->peer;
}

/* How the request was served, for its log line ("hit", "miss", "peer", ...). */
static inline void exchange_label(struct exchange *x, const char *label)
{
	x->label = label;
}

/* Counts body bytes sent to the client (for the log line and the metrics). */
static inline void exchange_count_out(struct exchange *x, uint64_t n)
{
	x->bytes_out += n;
	metric_add(M_bytes_to_client, n);
}

#endif
