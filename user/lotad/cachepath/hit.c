/* Serving a body from a cache file after the origin confirmed our ETag (304): the head
 * comes from the stored metadata, ranges are sliced locally, and the body goes out by
 * sendfile (exchange_serve_file), from a committed entry or from a fill as it grows. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "cache.h"
#include "cachepath/assemble.h"
#include "cachepath/cachepath-t.h"
#include "cachepath/hit.h"
#include "cachepath/remote.h"
#include "exchange/resphead.h"
#include "http.h"
#include "log.h"
#include "lotad.h"
#include "metrics.h"
#include "chunkmap.h"
#include "range.h"

#define REQUEST_ID_MAX 64

void hit_request_id(const struct http_msg *m, char *buf, size_t cap)
{
	const struct http_header *h = http_find(m, "x-amz-request-id");
	size_t n = h ? h->value.n : 0;

	if (n >= cap)
		n = cap - 1;
	memcpy(buf, h ? h->value.p : "", n);
	buf[n] = '\0';
}

/* rg: the range the body covers, when the answer carries a Content-Range (a 206, or a
 * 200 to a Range header radosgw ignored: it still names the whole object). */
static void write_head(struct exchange *x, const struct cache_meta *meta, int status,
		       const struct range *rg, const char *reqid, const char *label)
{
	struct evbuffer *out = exchange_client_out(x);
	char cr[RANGE_CONTENT_RANGE_MAX];

	resphead_start(out, status);
	if (reqid[0])
		evbuffer_add_printf(out, "x-amz-request-id: %s\r\n", reqid);
	if (meta->last_modified[0])
		evbuffer_add_printf(out, "Last-Modified: %s\r\n", meta->last_modified);
	evbuffer_add_printf(out, "ETag: %s\r\nAccept-Ranges: bytes\r\n", meta->etag);
	if (meta->content_type[0])
		evbuffer_add_printf(out, "Content-Type: %s\r\n", meta->content_type);
	if (rg && range_format(rg, meta->size, cr, sizeof(cr)) == 0)
		evbuffer_add_printf(out, "Content-Range: %s\r\n", cr);
	evbuffer_add(out, meta->extra, meta->extra_len);
	evbuffer_add_printf(out, "x-lota-cache: %s\r\n", label);
	resphead_end(out, rg ? rg->last - rg->first + 1 : meta->size, !x->req.keep_alive);
}

/* radosgw's 416, less what only it knows (its host id): no Content-Range, an XML error
 * whose Code is InvalidRange. Nothing is left to stream afterwards. */
static enum route_verdict serve_416(struct exchange *x, const char *reqid, bool is_complete)
{
	char extra[REQUEST_ID_MAX + 64];

	snprintf(extra, sizeof(extra), "Accept-Ranges: bytes\r\nx-lota-cache: %s\r\n",
		 is_complete ? "hit" : "follow");
	resphead_error(exchange_client_out(x), 416, "InvalidRange",
		       "The requested range is not satisfiable", "", extra, !x->req.keep_alive);
	x->status = 416;
	exchange_label(x, is_complete ? "hit" : "follow");
	return RT_REPLIED;
}

/* radosgw reads a request's last Range header (each one replaces the one before). */
static const struct http_header *last_range(const struct http_msg *m)
{
	const struct http_header *h = NULL;

	for (size_t i = 0; i < m->nheaders; i++)
		if (http_name_eq(&m->headers[i].name, "range"))
			h = &m->headers[i];
	return h;
}

/* A chunk being filled whose every byte is written already (its commit may be queued). */
static bool is_fill_complete(struct cachepath *cp, const struct cache_meta *m, uint64_t i)
{
	struct cache_follower *fl;
	struct cache_fill_status st;

	if (cache_chunk_follow(cp->cache, m, (uint32_t)i, NULL, NULL, &fl) < 0)
		return false;
	cache_follower_status(fl, &st);
	cache_follower_close(fl);
	return st.state != CACHE_FILL_ABORTED && st.written == st.size;
}

/* How the read's chunks are had, for x-lota-cache and the counters: all here ("hit"),
 * the missing ones all from the nodes that own them ("peer": their owners serve or fill
 * them), or some of this node's own still to be filled ("follow" if the node holds the
 * version, "miss" if it holds none of it). */
static const char *read_label(struct cachepath *cp, const struct cache_meta *m, uint64_t first,
			      uint64_t last, bool is_held)
{
	uint64_t from, to;
	enum cache_chunk_state st;
	bool is_peer = false;

	chunkmap_span(m->size, m->chunk_size, first, last, &from, &to);
	for (uint64_t i = from; i <= to; i++) {
		if (cache_chunk_states(cp->cache, m, (uint32_t)i, 1, &st) < 0)
			st = CACHE_CHUNK_ABSENT;
		if (st == CACHE_CHUNK_COMMITTED || (st == CACHE_CHUNK_FILLING && is_fill_complete(cp, m, i)))
			continue;
		if (st == CACHE_CHUNK_ABSENT && remote_is_remote(cp, m, i)) {
			is_peer = true;
			continue;
		}
		return is_held ? "follow" : "miss";
	}
	return is_peer ? "peer" : "hit";
}

static void count_read(const char *label)
{
	if (strcmp(label, "hit") == 0)
		metric_add(M_cache_hits, 1);
	else if (strcmp(label, "peer") == 0)
		metric_add(M_cache_peer_hits, 1);
	else if (strcmp(label, "follow") == 0)
		metric_add(M_cache_coalesced, 1);
	else
		metric_add(M_cache_misses, 1);
}

void hit_prepare(struct exchange *x, struct cachepath *cp, const struct cache_meta *m)
{
	const struct http_header *rh = last_range(&x->req);
	struct range rg = {0, m->size ? m->size - 1 : 0};
	struct cache_chunk *ch = NULL;

	if (!m->size || !m->chunk_size)
		return;
	if (rh && range_parse(rh->value.p, rh->value.n, m->size, &rg) == RANGE_UNSATISFIABLE)
		return;
	if (cache_chunk_open(cp->cache, m, (uint32_t)(rg.first / m->chunk_size), &ch) == 0)
		cache_chunk_verify(ch); /* a corrupt one is dropped: the 304's read refetches it */
	cache_chunk_close(ch);
}

enum route_verdict hit_serve(struct exchange *x, struct cachepath *cp, const struct cache_meta *m,
			     const struct http_msg *m304, bool is_held)
{
	const char *label;
	const struct http_header *rh = last_range(&x->req);
	struct range rg = {0, m->size ? m->size - 1 : 0};
	enum range_result rr = RANGE_WHOLE;
	char reqid[REQUEST_ID_MAX];

	hit_request_id(m304, reqid, sizeof(reqid));
	if (rh)
		rr = range_parse(rh->value.p, rh->value.n, m->size, &rg);
	if (rr == RANGE_UNSATISFIABLE)
		return serve_416(x, reqid, true);
	if (!assemble_can_serve(cp, m, rg.first, rg.last)) {
		/* Chunks lotad cannot fetch itself (no service credentials): the client's
		 * request again, as it came; its 200 fills them. */
		exchange_set_extra(x, NULL);
		return RT_REDO;
	}
	label = read_label(cp, m, rg.first, rg.last, is_held);
	if (m->size == 0 || assemble_start(x, cp, m, rg.first, rg.last, NULL) < 0) {
		/* The 304 answers our If-None-Match, not the client's: if our copy cannot be
		 * served, the client must not see it either. */
		log_warn("cache: %s/%s: cannot serve the cached copy", x->s3.bucket, x->s3.key);
		exchange_fail(x, 503, "SlowDown", "the cached copy cannot be read now; retry");
		return RT_FAIL;
	}
	x->status = rr == RANGE_PARTIAL ? 206 : 200;
	exchange_label(x, label);
	count_read(label);
	write_head(x, m, x->status, rh ? &rg : NULL, reqid, label);
	return RT_SERVE;
}

/* The client's own condition holds: 304, with what the origin's 304 would carry. */
enum route_verdict hit_not_modified(struct exchange *x, const struct cache_meta *m,
				    const struct http_msg *m304)
{
	struct evbuffer *out = exchange_client_out(x);
	char reqid[REQUEST_ID_MAX];

	hit_request_id(m304, reqid, sizeof(reqid));
	resphead_start(out, 304);
	if (reqid[0])
		evbuffer_add_printf(out, "x-amz-request-id: %s\r\n", reqid);
	evbuffer_add_printf(out, "x-lota-cache: hit\r\n%s\r\n",
			    x->req.keep_alive ? "" : "Connection: close\r\n");
	x->status = 304;
	x->resp_head_sent = true;
	exchange_label(x, "hit");
	return RT_REPLIED;
}
