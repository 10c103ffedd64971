/* Serving a body from a cache file after the origin confirmed our ETag (304): the head
 * comes from the stored metadata, ranges are sliced locally, and the body goes out by
 * sendfile (libevent file segments), from a committed entry or from a fill as it grows. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>

#include "cache.h"
#include "exchange/conn.h"
#include "http.h"
#include "log.h"
#include "lotad.h"
#include "metrics.h"
#include "range.h"

/* File bytes queued on the client's output at once: segments cost no memory. */
#define HIT_QUEUE (8 * 1024 * 1024)

static void request_id(struct exchange *x, const struct http_msg *m)
{
	const struct http_header *h = http_find(m, "x-amz-request-id");
	size_t n = h ? h->value.n : 0;

	if (n >= sizeof(x->origin_request_id))
		n = sizeof(x->origin_request_id) - 1;
	memcpy(x->origin_request_id, h ? h->value.p : "", n);
	x->origin_request_id[n] = '\0';
}

/* The status line and Date, as the origin starts every answer. */
static void status_line(struct evbuffer *out, int status)
{
	char date[64];
	time_t now = time(NULL);
	struct tm tm;

	gmtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
	evbuffer_add_printf(out, "HTTP/1.1 %d %s\r\nDate: %s\r\n", status, http_reason(status),
			    date);
}

/* rg: the range the body covers, when the answer carries a Content-Range (a 206, or a
 * 200 to a Range header radosgw ignored: it still names the whole object). */
static void write_head(struct conn *c, const struct cache_meta *meta, int status,
		       const struct range *rg)
{
	struct evbuffer *out = bufferevent_get_output(c->cbev);
	struct exchange *x = c->x;
	char cr[RANGE_CONTENT_RANGE_MAX];

	status_line(out, status);
	if (x->origin_request_id[0])
		evbuffer_add_printf(out, "x-amz-request-id: %s\r\n", x->origin_request_id);
	if (meta->last_modified[0])
		evbuffer_add_printf(out, "Last-Modified: %s\r\n", meta->last_modified);
	evbuffer_add_printf(out, "ETag: %s\r\nAccept-Ranges: bytes\r\n", meta->etag);
	if (meta->content_type[0])
		evbuffer_add_printf(out, "Content-Type: %s\r\n", meta->content_type);
	if (rg && range_format(rg, meta->size, cr, sizeof(cr)) == 0)
		evbuffer_add_printf(out, "Content-Range: %s\r\n", cr);
	evbuffer_add(out, meta->extra, meta->extra_len);
	evbuffer_add_printf(out, "Content-Length: %llu\r\nx-lota-cache: %s\r\n%s\r\n",
			    (unsigned long long)(rg ? rg->last - rg->first + 1 : meta->size),
			    x->is_complete ? "hit" : "follow",
			    x->req.keep_alive ? "" : "Connection: close\r\n");
}

/* radosgw's 416, less what only it knows (its host id): no Content-Range, an XML error
 * whose Code is InvalidRange. Nothing is left to stream afterwards. */
static int serve_416(struct conn *c)
{
	struct exchange *x = c->x;
	struct evbuffer *out = bufferevent_get_output(c->cbev);
	static const char body[] =
	    "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>InvalidRange"
	    "</Code><Message></Message></Error>";

	status_line(out, 416);
	if (x->origin_request_id[0])
		evbuffer_add_printf(out, "x-amz-request-id: %s\r\n", x->origin_request_id);
	evbuffer_add_printf(out,
			    "Accept-Ranges: bytes\r\nContent-Type: application/xml\r\n"
			    "Content-Length: %zu\r\nx-lota-cache: %s\r\n%s\r\n%s",
			    sizeof(body) - 1, x->obj ? "hit" : "follow",
			    x->req.keep_alive ? "" : "Connection: close\r\n", body);
	x->status = 416;
	x->route = x->obj ? "hit" : "follow";
	x->file_pos = x->file_end = 0;
	x->serving_file = true;
	return 0;
}

/* radosgw reads a request's last Range header (each one replaces the one before). */
static const struct http_header *last_range(const struct http_msg *m)
{
	const struct http_header *h = NULL;

	for (size_t i = 0; i < m->nheaders; i++)
		if (http_str_ieq(&m->headers[i].name, "range"))
			h = &m->headers[i];
	return h;
}

static bool fill_is_complete(struct cache_follower *fl)
{
	struct cache_fill_status st;

	cache_follower_status(fl, &st);
	return st.state != CACHE_FILL_ABORTED && st.written == st.size;
}

int hit_serve(struct conn *c, const struct http_msg *m304)
{
	struct exchange *x = c->x;
	const struct cache_meta *meta = x->obj ? &x->obj->meta : cache_follower_meta(x->fl);
	const struct http_header *rh = last_range(&x->req);
	struct range rg = {0, meta->size ? meta->size - 1 : 0};
	enum range_result rr = RANGE_WHOLE;
	uint64_t body_offset;
	int fd, dupfd;

	if (x->obj) {
		fd = x->obj->fd;
		body_offset = x->obj->body_offset;
	} else {
		fd = cache_follower_fd(x->fl, &body_offset);
		if (fd < 0)
			return -EIO;
	}
	request_id(x, m304);
	if (rh)
		rr = range_parse(rh->value.p, rh->value.n, meta->size, &rg);
	if (rr == RANGE_UNSATISFIABLE)
		return serve_416(c);
	dupfd = dup(fd);
	if (dupfd < 0)
		return -EMFILE;
	x->seg = evbuffer_file_segment_new(dupfd, 0, (ev_off_t)(body_offset + meta->size),
					   EVBUF_FS_CLOSE_ON_FREE);
	if (!x->seg) {
		close(dupfd);
		return -ENOMEM;
	}
	x->status = rr == RANGE_PARTIAL ? 206 : 200;
	/* A fill with every byte written (its commit may still be queued) is a plain hit. */
	x->is_complete = x->obj || fill_is_complete(x->fl);
	x->route = x->is_complete ? "hit" : "follow";
	metric_add(x->is_complete ? M_cache_hits : M_cache_coalesced, 1);
	write_head(c, meta, x->status, rh ? &rg : NULL);
	x->body_offset = body_offset;
	x->file_pos = body_offset + rg.first;
	x->file_end = meta->size ? body_offset + rg.last + 1 : body_offset;
	x->serving_file = true;
	return 0;
}

/* How far the file is readable: all of it for a committed entry, `written` for a fill. */
static int readable_end(struct exchange *x, uint64_t *end)
{
	struct cache_fill_status st;

	*end = x->file_end;
	if (!x->fl)
		return 0;
	cache_follower_status(x->fl, &st);
	if (st.state == CACHE_FILL_ABORTED && x->body_offset + st.written < x->file_end)
		return st.error ? st.error : -EIO;
	if (x->body_offset + st.written < *end)
		*end = x->body_offset + st.written;
	return 0;
}

void hit_pump(struct conn *c)
{
	struct exchange *x = c->x;
	struct evbuffer *out = bufferevent_get_output(c->cbev);
	uint64_t end;
	int r;

	if (!x || !x->serving_file)
		return;
	r = readable_end(x, &end);
	if (r < 0) {
		exchange_abort(c, "the fill it followed failed");
		return;
	}
	while (x->file_pos < end && evbuffer_get_length(out) < HIT_QUEUE) {
		uint64_t n = end - x->file_pos;

		if (n > HIT_QUEUE)
			n = HIT_QUEUE;
		if (evbuffer_add_file_segment(out, x->seg, (ev_off_t)x->file_pos, (ev_off_t)n) < 0) {
			exchange_abort(c, "cannot queue cache file");
			return;
		}
		x->file_pos += n;
		x->bytes_out += n;
		metric_add(M_cache_bytes_served, n);
		metric_add(M_bytes_to_client, n);
	}
	if (x->file_pos == x->file_end) {
		x->serving_file = false;
		x->resp_done = true;
		exchange_finish(c);
	}
}
