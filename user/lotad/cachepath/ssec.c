/* The read route of SSE-C objects (customer-provided keys). The origin's 304 to
 * If-None-Match comes before it checks the key, so it proves authorization only: lotad
 * checks possession itself, against a verifier kept with the cached version (HMAC under
 * the node's secret, never the key or its MD5), or has the origin check it: lotad's own
 * HEAD with the reader's key, on a ranged read of a version not cached yet (the origin
 * refuses a wrong key on a HEAD). A reader whose key is proven either way is validated by
 * the origin like any read and served from chunks sealed under the key (sseccache.c),
 * filled with the reader's key where missing (ssecfill.c); every other reader's request
 * goes to the origin as it came, so wrong, missing or unauthorized keys get the origin's
 * own answer, never a cached byte. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cachepath/cachepath-t.h"
#include "cachepath/request.h"
#include "cachepath/sealed.h"
#include "cachepath/ssec.h"
#include "cachepath/ssecfill.h"
#include "cachepath/sseccache.h"
#include "cachepath/upkeep.h"
#include "chunkmap.h"
#include "http.h"
#include "log.h"
#include "lotad.h"
#include "metrics.h"
#include "range.h"

#define SECRET_FILE "ssec.secret"

/* -- the node's secret ---------------------------------------------------------------- */

static int read_secret(int dirfd, uint8_t secret[SSEC_SECRET_LEN])
{
	int fd = openat(dirfd, SECRET_FILE, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = read(fd, secret, SSEC_SECRET_LEN);
	close(fd);
	return n == SSEC_SECRET_LEN ? 0 : -EBADMSG;
}

/* A new secret, made durable before it seals anything: O_EXCL, so that two starts never
 * keep two secrets. */
static int make_secret(int dirfd, uint8_t secret[SSEC_SECRET_LEN])
{
	int fd, r = 0;

	if (ssec_random(secret, SSEC_SECRET_LEN) < 0)
		return -EIO;
	fd = openat(dirfd, SECRET_FILE, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return -errno;
	if (write(fd, secret, SSEC_SECRET_LEN) != SSEC_SECRET_LEN || fsync(fd) < 0)
		r = -EIO;
	close(fd);
	if (r < 0)
		unlinkat(dirfd, SECRET_FILE, 0);
	return r;
}

int ssec_new(const char *dir, struct ssec **out)
{
	struct ssec *s = calloc(1, sizeof(*s));
	int dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), r;

	*out = NULL;
	if (s)
		pthread_mutex_init(&s->mu, NULL);
	r = !s ? -ENOMEM : dirfd < 0 ? -errno : read_secret(dirfd, s->secret);
	if (r == -ENOENT)
		r = make_secret(dirfd, s->secret);
	if (r == -EEXIST)
		r = read_secret(dirfd, s->secret); /* another start made it meanwhile */
	if (dirfd >= 0)
		close(dirfd);
	if (r < 0) {
		ssec_free(s);
		return r;
	}
	*out = s;
	return 0;
}

void ssec_free(struct ssec *s)
{
	if (!s)
		return;
	ssecfill_free_all(s);
	pthread_mutex_destroy(&s->mu);
	ssec_wipe(s->secret, sizeof(s->secret));
	free(s);
}

/* -- the request ---------------------------------------------------------------------- */

/* The three SSE-C fields, each once, spelled as S3 spells them (any case); anything else
 * of the SSE-C family (another spelling, a fourth field, a second copy) leaves the
 * request to the relay: only the origin knows what it makes of it. */
bool ssec_find_fields(const struct http_msg *m, const struct http_header *f[3])
{
	static const char *const names[3] = {OBJMETA_SSEC_PREFIX "algorithm",
					     OBJMETA_SSEC_PREFIX "key",
					     OBJMETA_SSEC_PREFIX "key-md5"};

	f[0] = f[1] = f[2] = NULL;
	for (size_t i = 0; i < m->nheaders; i++) {
		const struct http_str *n = &m->headers[i].name;
		int which = -1;

		if (!http_name_has_prefix(n, OBJMETA_SSEC_PREFIX))
			continue;
		for (int j = 0; j < 3; j++)
			if (http_str_ieq(n, names[j]))
				which = j;
		if (which < 0 || f[which])
			return false;
		f[which] = &m->headers[i];
	}
	return f[0] && f[1] && f[2] && http_str_eq(&f[0]->value, "AES256");
}

/* Fields that make a read the origin's alone: If-Range, a second Range, and the client's
 * own conditions (they would have to be combined with ours; the relay keeps them whole). */
bool ssec_has_other_bypass(const struct http_msg *m)
{
	static const char *const names[] = {"if-range", "if-match", "if-none-match",
					    "if-modified-since", "if-unmodified-since"};
	int ranges = 0;

	for (size_t i = 0; i < m->nheaders; i++) {
		const struct http_str *n = &m->headers[i].name;

		for (size_t j = 0; j < sizeof(names) / sizeof(names[0]); j++)
			if (http_name_eq(n, names[j]))
				return true;
		if (http_name_eq(n, "range") && ++ranges > 1)
			return true;
	}
	return false;
}

static bool ssec_claims(struct exchange *x, void *arg)
{
	const struct cachepath *cp = arg;
	const struct http_header *f[3];
	const struct http_header *cc = http_find(&x->req, "cache-control");

	return cp->ssec && x->s3.op == S3_OBJECT_READ && !x->s3.is_head && !x->s3.part_number &&
	       !cachepath_has_body(x) &&
	       !(cc && (http_has_token(&cc->value, "no-store") ||
			http_has_token(&cc->value, "no-cache"))) &&
	       ssec_find_fields(&x->req, f) && !ssec_has_other_bypass(&x->req);
}

static struct ssecread *priv(struct exchange *x)
{
	return x->rt_priv;
}

/* The stored verifier, and the one the presented key gives for version m. */
static bool is_key_held(struct ssecread *o, const struct cache_meta *m)
{
	struct ssec_marker mk;
	uint8_t v[SSEC_VERIFIER_LEN];
	bool ok;

	if (ssec_marker_parse(m->extra, m->extra_len, &mk) < 0 ||
	    ssec_version_verifier(o->cp->ssec, o->key, m, v) < 0)
		return false;
	ok = ssec_equal(v, mk.verifier, sizeof(v));
	ssec_wipe(v, sizeof(v));
	return ok;
}

/* The range the client asks of m, if lotad answers it exactly as the origin would. */
static bool local_range(const struct exchange *x, const struct cache_meta *m, struct range *rg)
{
	const struct http_header *h = http_find(&x->req, "range");

	*rg = (struct range){0, m->size ? m->size - 1 : 0};
	if (!h)
		return m->size > 0;
	return range_is_served_locally(h->value.p, h->value.n, m->size) &&
	       range_parse(h->value.p, h->value.n, m->size, rg) != RANGE_UNSATISFIABLE;
}

/* Our conditions, as objread.c adds them: If-None-Match confirms the bytes, and
 * If-Unmodified-Since makes a change of the headers alone a 412. */
static void add_conditions(struct exchange *x, struct ssecread *o, const struct cache_meta *m)
{
	char lines[EXCHANGE_EXTRA_MAX];
	size_t n = (size_t)snprintf(lines, sizeof(lines), "If-None-Match: %s\r\n", m->etag);

	if (m->last_modified[0] && n < sizeof(lines))
		snprintf(lines + n, sizeof(lines) - n, "If-Unmodified-Since: %s\r\n",
			 m->last_modified);
	o->is_ours_inm = exchange_set_extra(x, lines) == 0;
}

/* The version this read is about: the store's, or the one lotad's HEAD with the key told. */
static const struct cache_meta *version(const struct ssecread *o)
{
	if (o->held)
		return &o->held->meta;
	return o->has_learned ? &o->learned.meta : NULL;
}

static enum route_verdict ask_head(struct exchange *x, struct ssecread *o);

/* What we hold decides: the client's request with our conditions (the key is proven and
 * the range is here, or can be filled), lotad's HEAD with the key first (a ranged read of
 * a version not here), or the request as it came. */
static enum route_verdict send_read(struct exchange *x, struct ssecread *o)
{
	struct cache_key k = cachepath_key(x);
	const struct cache_meta *m;
	struct range rg;

	if (!o->held && !o->has_learned && cache_object_lookup(o->cp->cache, &k, &o->held) < 0)
		o->held = NULL;
	m = version(o);
	if (m && (o->has_learned || (ssec_is_sealed(m) && is_key_held(o, m))) &&
	    local_range(x, m, &rg) &&
	    (o->cp->svc || ssec_is_committed(o->cp, m, rg.first, rg.last))) {
		add_conditions(x, o, m);
		exchange_label(x, o->is_ours_inm ? "validate" : "relay");
		return RT_UPSTREAM;
	}
	/* A whole GET's own 200 is sealed as it is relayed; a ranged one needs the version
	 * (and the key proven) first. */
	if (!m && o->cp->svc && http_find(&x->req, "range") && !o->redone)
		return ask_head(x, o);
	exchange_label(x, m ? "relay" : "miss");
	return RT_UPSTREAM;
}

/* lotad's HEAD with the key answered: a 200 about an SSE-C object proves the key for the
 * version it names (the origin checks the key on a HEAD), which becomes this read's. */
static void head_done(void *arg, int status, const struct http_msg *m)
{
	struct exchange *x = arg;
	struct ssecread *o = priv(x);
	struct cache_key k = cachepath_key(x);
	uint8_t v[SSEC_VERIFIER_LEN], ck[SSEC_KEY_LEN];

	o->head = NULL;
	o->is_head_answered = true;
	if (status == 200 && ssec_is_sealed_answer(m) && m->content_length > 0 &&
	    m->content_length >= exchange_lotad(x)->cfg.min_object_size &&
	    ssec_version_from(o->cp->ssec, o->key, &k, m->content_length,
			      cache_chunk_size(o->cp->cache), m, &o->learned, v, ck) == 0)
		o->has_learned = true;
	else
		objmeta_free(&o->learned);
	ssec_wipe(ck, sizeof(ck));
	exchange_wake(x);
}

static enum route_verdict ask_head(struct exchange *x, struct ssecread *o)
{
	struct cache_key k = cachepath_key(x);

	exchange_label(x, "miss");
	if (!exchange_wake_event(x) ||
	    ssecfill_head(o->cp, exchange_worker(x), &k, o->key, head_done, x, &o->head) < 0)
		return RT_UPSTREAM;
	return RT_WAIT;
}

static enum route_verdict ssec_on_wake(struct exchange *x)
{
	struct ssecread *o = priv(x);

	if (!o || !o->is_head_answered)
		return RT_WAIT;
	o->is_head_answered = false;
	if (!o->has_learned) {
		exchange_label(x, "relay"); /* the origin says what is wrong, to the client */
		return RT_UPSTREAM;
	}
	return send_read(x, o);
}

static enum route_verdict ssec_start(struct exchange *x, void *arg)
{
	struct ssecread *o = calloc(1, sizeof(*o));
	const struct http_header *f[3];

	if (!o)
		return RT_UPSTREAM;
	o->cp = arg;
	x->rt_priv = o;
	if (!ssec_find_fields(&x->req, f) ||
	    ssec_parse_key(f[1]->value.p, f[1]->value.n, f[2]->value.p, f[2]->value.n, o->key) <
		0) {
		exchange_label(x, "relay"); /* the origin says what is wrong with the key */
		return RT_UPSTREAM;
	}
	o->has_key = true;
	o->md5 = f[2];
	return send_read(x, o);
}

/* Our If-Unmodified-Since failed: the stored headers are stale. The version goes and the
 * request goes again as it came; its 200 refills. */
static enum route_verdict redo_unconditional(struct exchange *x, struct ssecread *o)
{
	struct cache_key k = cachepath_key(x);

	cachepath_invalidate(o->cp, &k);
	metric_add(M_cache_stale_metadata, 1);
	o->redone = true;
	o->is_ours_inm = false;
	exchange_set_extra(x, NULL);
	cache_object_release(o->held);
	o->held = NULL;
	objmeta_free(&o->learned);
	o->has_learned = false;
	exchange_label(x, "miss");
	return RT_REDO;
}

/* The origin sent the body though we asked If-None-Match: <held ETag>, to a reader whose
 * key it accepted: the held version is not the origin's any more. */
static void drop_if_changed(struct exchange *x, struct ssecread *o, const struct http_msg *m)
{
	const struct http_header *etag = http_find(m, "etag");
	struct cache_key k = cachepath_key(x);

	if (o->held && o->is_ours_inm && etag && !http_str_eq(&etag->value, o->held->meta.etag))
		cachepath_invalidate(o->cp, &k);
}

static enum route_verdict ssec_on_head(struct exchange *x, const struct http_msg *m,
				       const char *raw)
{
	struct ssecread *o = priv(x);

	if (!o || !o->has_key)
		return RT_RELAY;
	if (m->status == 304 && o->is_ours_inm && version(o))
		return ssec_serve_hit(x, o, version(o), m);
	if (m->status == 412 && o->is_ours_inm && !o->redone)
		return redo_unconditional(x, o);
	if (m->status == 200 || m->status == 206)
		drop_if_changed(x, o, m);
	if (m->status == 200 && !http_find(&x->req, "range"))
		ssec_tee_begin(x, o, m);
	metric_add(M_cache_misses, 1);
	return RT_RELAY;
}

static void ssec_on_body(struct exchange *x, struct evbuffer *src, size_t n)
{
	struct ssecread *o = priv(x);

	if (o && o->tee)
		ssec_tee_body(x, o, src, n);
}

static void ssec_end(struct exchange *x)
{
	struct ssecread *o = priv(x);

	if (!o)
		return;
	ssec_tee_end(o);
	ssecfill_head_cancel(o->head);
	cache_object_release(o->held);
	objmeta_free(&o->learned);
	ssec_wipe(o->key, sizeof(o->key));
	free(o);
	x->rt_priv = NULL;
}

void ssec_route(struct cachepath *cp, struct route *rt)
{
	*rt = (struct route){
	    .name = "ssec",
	    .arg = cp,
	    .claims = ssec_claims,
	    .start = ssec_start,
	    .on_head = ssec_on_head,
	    .on_body = ssec_on_body,
	    .on_wake = ssec_on_wake,
	    .end = ssec_end,
	};
}
