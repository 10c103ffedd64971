/* What anyone holding an exchange may read of it or count on it, header-only: the routes
 * and the core's own files use these without depending on the driver. */
#ifndef LOTA_ACCESS_H
#define LOTA_ACCESS_H

#include <stdbool.h>
#include <stdint.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>

#include "exchange/exchange-t.h"
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
	evbuffer_write(exchange_client_out(x), exchange_client_fd(x));
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
