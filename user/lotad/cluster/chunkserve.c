/* The owner's side of a chunk: another node, which authorized its client's read at the
 * origin (the 304), asks for bytes of a chunk of the version it names, signed
 * (peerauth, checked by the gate in cluster.c). The owner serves them from its store
 * (verified, sendfile) or fills the chunk with its service credentials (If-Match: the
 * named ETag) and streams it as it grows, through the same assembler as a client's read
 * but never asking a third node. It serves only the version named: a chunk of another
 * version is never opened for it. A HEAD only begins the fill (a prefetch). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>

#include "cache.h"
#include "cachepath/assemble.h"
#include "cachepath/cachepath-t.h"
#include "cachepath/fills.h"
#include "cachepath/objmeta.h"
#include "cachepath/sseccache.h"
#include "chunkmap.h"
#include "cluster/chunkwire.h"
#include "cluster/cluster-int.h"
#include "exchange/resphead.h"
#include "http.h"
#include "log.h"
#include "lotad.h"

/* The version and the span a chunk request names, checked against each other. */
static int parse_chunk(struct exchange *x, struct objmeta *om, struct chunkwire_span *s)
{
	struct cache_key k;
	char *buf;
	uint64_t start, len;
	int r = chunkwire_key(&x->req.target, &k, &buf);

	if (r == 0)
		r = chunkwire_span(&x->req.target, s);
	if (r == 0)
		r = chunkwire_meta(&x->req, &k, om);
	free(buf);
	if (r < 0)
		return r;
	if (om->meta.size == 0 || s->index >= chunkmap_count(om->meta.size, om->meta.chunk_size))
		return -EINVAL;
	start = chunkmap_start(om->meta.chunk_size, s->index);
	len = chunkmap_len(om->meta.size, om->meta.chunk_size, s->index);
	return s->first >= start && s->last < start + len ? 0 : -EINVAL;
}

/* 503: nothing to serve it from now (no store, no service credentials, a full disk); the
 * asking node goes to the origin itself. */
static enum route_verdict cannot(struct exchange *x, const char *why)
{
	return exchange_reply(x, 503, "x-lota-chunk: unavailable\r\n", why, true);
}

/* Does this node hold another version of the key, one the named version is not known to
 * be newer than? A fill of the named one would replace it (and the held one may well be
 * the origin's current one, the asking node's 304 notwithstanding: an overwrite can come
 * between): the asking node takes the chunk from the origin itself instead. */
static bool holds_other(struct cluster *cl, const struct cache_meta *m)
{
	struct cache_object *o = NULL;
	time_t named, held;
	bool is_other;

	if (cache_object_lookup(cl->cp->cache, &m->id, &o) < 0 || !o)
		return false;
	is_other =
	    strcmp(o->meta.etag, m->etag) != 0 &&
	    (http_parse_date(m->last_modified, strlen(m->last_modified), &named) < 0 ||
	     http_parse_date(o->meta.last_modified, strlen(o->meta.last_modified), &held) < 0 ||
	     named <= held);
	cache_object_release(o);
	return is_other;
}

/* Is the named version, or the one held for its key, an SSE-C object's (chunks sealed
 * under its customer key, sseccache.h)? Its chunks go to no other node: they are
 * ciphertext, and only a reader holding the key may have them opened, here. */
static bool is_sealed(struct cluster *cl, const struct cache_meta *m)
{
	struct cache_object *o = NULL;
	bool sealed = ssec_is_sealed(m);

	if (!sealed && cache_object_lookup(cl->cp->cache, &m->id, &o) == 0 && o)
		sealed = ssec_is_sealed(&o->meta);
	cache_object_release(o);
	return sealed;
}

/* HEAD: begin the chunk's fill if it is neither committed nor being filled. */
static enum route_verdict prefetch(struct exchange *x, struct cluster *cl, const struct objmeta *om,
				   uint64_t index)
{
	struct fills *f = fills_of(cl->cp, exchange_worker(x));
	int r = f ? fills_want(f, &om->meta, index, FILLS_FOR_READ) : -ENOMEM;

	exchange_label(x, "peer-prefetch");
	if (r < 0)
		return cannot(x, "the chunk cannot be filled here now\n");
	return exchange_reply(x, 200, NULL, "", true);
}

static enum route_verdict serve(struct exchange *x, struct cluster *cl, const struct objmeta *om,
				const struct chunkwire_span *s)
{
	struct evbuffer *out = exchange_client_out(x);

	exchange_label(x, "peer-chunk");
	if (!assemble_can_serve(cl->cp, &om->meta, s->first, s->last))
		return cannot(x, "the chunk is not here and cannot be fetched here\n");
	if (assemble_start_owner(x, cl->cp, &om->meta, s->first, s->last) < 0) {
		exchange_fail(x, 503, "SlowDown", "out of memory");
		return RT_FAIL;
	}
	/* Kept alive unless asked otherwise: the asking node sends its next chunk request of
	 * this node on the same connection. */
	resphead_start(out, 200);
	resphead_end(out, s->last - s->first + 1, !x->req.keep_alive);
	x->status = 200;
	x->resp_keep_alive = true;
	x->resp_head_sent = true;
	peers_count(cl->peers, PEERS_CHUNKS_SERVED, 1);
	peers_count(cl->peers, PEERS_CHUNK_BYTES_SERVED, s->last - s->first + 1);
	return RT_SERVE;
}

enum route_verdict chunkserve_chunk(struct exchange *x, struct cluster *cl)
{
	struct objmeta om;
	struct chunkwire_span s;
	enum route_verdict v;

	if (parse_chunk(x, &om, &s) < 0) {
		objmeta_free(&om);
		log_warn("%s: malformed chunk request", exchange_client_addr(x));
		return exchange_reply(x, 400, NULL, "malformed chunk request\n", true);
	}
	peers_count_served(cl->peers);
	if (!cl->cp->cache)
		v = cannot(x, "this node has no cache\n");
	else if (is_sealed(cl, &om.meta))
		v = cannot(x, "an SSE-C object's chunks are served by no other node\n");
	else if (holds_other(cl, &om.meta))
		v = cannot(x, "this node holds another version of the key\n");
	else if (http_str_eq(&x->req.method, "HEAD"))
		v = prefetch(x, cl, &om, s.index);
	else
		v = serve(x, cl, &om, &s);
	objmeta_free(&om);
	return v;
}
