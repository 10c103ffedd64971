/* Serving a body from a cache file after the origin confirmed our ETag (304): the head
 * comes from the stored metadata, ranges are sliced locally, and the body goes out by
 * sendfile (exchange_serve_file), from a committed entry or from a fill as it grows. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "cache.h"
#include "cachepath/cachepath-int.h"
#include "exchange/resphead.h"
#include "http.h"
#include "log.h"
#include "lotad.h"
#include "metrics.h"
#include "range.h"

#define REQUEST_ID_MAX 64

static void request_id(const struct http_msg *m, char *buf, size_t cap)
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
		       const struct range *rg, const char *reqid, bool is_complete)
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
	evbuffer_add_printf(out, "x-lota-cache: %s\r\n", is_complete ? "hit" : "follow");
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

static bool fill_is_complete(struct cache_follower *fl)
{
	struct cache_fill_status st;

	cache_follower_status(fl, &st);
	return st.state != CACHE_FILL_ABORTED && st.written == st.size;
}

/* How far a followed fill's file is readable now. */
static int follow_extent(void *arg, uint64_t *readable)
{
	struct objread *o = arg;
	struct cache_fill_status st;

	cache_follower_status(o->fl, &st);
	if (st.state == CACHE_FILL_ABORTED && o->body_offset + st.written < o->end)
		return st.error ? st.error : -EIO;
	*readable = o->body_offset + st.written;
	return 0;
}

enum route_verdict hit_serve(struct exchange *x, struct objread *o, const struct http_msg *m304)
{
	const struct cache_meta *meta = o->obj ? &o->obj->meta : cache_follower_meta(o->fl);
	const struct http_header *rh = last_range(&x->req);
	struct range rg = {0, meta->size ? meta->size - 1 : 0};
	enum range_result rr = RANGE_WHOLE;
	char reqid[REQUEST_ID_MAX];
	bool is_complete;
	int fd, r;

	if (o->obj) {
		fd = o->obj->fd;
		o->body_offset = o->obj->body_offset;
	} else {
		fd = cache_follower_fd(o->fl, &o->body_offset);
	}
	/* A fill with every byte written (its commit may still be queued) is a plain hit. */
	is_complete = o->obj || fill_is_complete(o->fl);
	request_id(m304, reqid, sizeof(reqid));
	if (rh)
		rr = range_parse(rh->value.p, rh->value.n, meta->size, &rg);
	if (rr == RANGE_UNSATISFIABLE)
		return serve_416(x, reqid, is_complete);
	o->end = meta->size ? o->body_offset + rg.last + 1 : o->body_offset;
	r = fd < 0 ? -EIO
		   : exchange_serve_file(x, fd, o->body_offset + rg.first, o->end,
					 is_complete ? NULL : follow_extent, o);
	if (r < 0) {
		/* The 304 answers our If-None-Match, not the client's: if our copy cannot be
		 * served, the client must not see it either. */
		log_warn("cache: %s/%s: cannot serve the cached copy: %s", x->s3.bucket, x->s3.key,
			 strerror(-r));
		exchange_fail(x, 503, "SlowDown", "the cached copy cannot be read now; retry");
		return RT_FAIL;
	}
	x->status = rr == RANGE_PARTIAL ? 206 : 200;
	exchange_label(x, is_complete ? "hit" : "follow");
	metric_add(is_complete ? M_cache_hits : M_cache_coalesced, 1);
	write_head(x, meta, x->status, rh ? &rg : NULL, reqid, is_complete);
	return RT_SERVE;
}
