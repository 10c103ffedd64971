/* Background fills on the control thread. Each job signs its own GET with the service
 * credentials (SigV4), streams the whole object into a cache fill and commits it; the
 * pool runs a few at a time and keeps one job per key. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "cachepath/bgfill.h"
#include "cache.h"
#include "creds.h"
#include "http.h"
#include "log.h"
#include "exchange/origin.h"
#include "lotad.h"
#include "metrics.h"
#include "cachepath/objmeta.h"
#include "range.h"
#include "sigv4.h"

#define BGFILL_RUNNING_MAX 4
#define BGFILL_JOBS_MAX 4096
#define BGFILL_PATH_MAX (3 * 1024 * 3 + 16)

struct bgjob {
	struct bgfill_pool *p;
	char *bucket, *key, *version;
	struct bufferevent *bev;
	struct cache_fill *fill;
	struct cache_follower *fl; /* a client's fill of the key, when it got there first */
	struct event *follow_ev;
	uint64_t left;
	bool head_done, running;
	bool is_confirm; /* a HEAD: drop the entry if the origin says the object is gone */
	struct bgfill_watch *watchers;
	struct bgjob *next;
};

struct bgfill_pool {
	struct lotad *d;
	struct cache *cache;
	pthread_mutex_t mu;
	struct bgjob *jobs;
	unsigned njobs, nrunning;
	struct event *kick;
	struct creds creds; /* control thread only */
	struct creds_stamp stamp;
};

static void kick_cb(evutil_socket_t fd, short what, void *arg);

int bgfill_pool_new(struct lotad *d, struct cache *cache, struct bgfill_pool **out, char *err,
		    size_t errlen)
{
	struct bgfill_pool *p = calloc(1, sizeof(*p));
	int r;

	if (!p)
		return -ENOMEM;
	p->d = d;
	p->cache = cache;
	r = creds_load(d->cfg.service_credentials, CREDS_DEFAULT_PROFILE, &p->creds, &p->stamp, err,
		       errlen);
	if (r < 0) {
		free(p);
		return r;
	}
	if (strcmp(d->cfg.region, "us-east-1") != 0 || !p->creds.region[0])
		snprintf(p->creds.region, sizeof(p->creds.region), "%s", d->cfg.region);
	pthread_mutex_init(&p->mu, NULL);
	p->kick = event_new(d->control_base, -1, 0, kick_cb, p);
	if (!p->kick) {
		free(p);
		return -ENOMEM;
	}
	*out = p;
	return 0;
}

void bgfill_reload(struct bgfill_pool *p)
{
	struct creds fresh;
	char err[CREDS_ERR_MAX];
	int r = creds_changed(p->d->cfg.service_credentials, &p->stamp);

	if (r <= 0)
		return;
	r = creds_load(p->d->cfg.service_credentials, CREDS_DEFAULT_PROFILE, &fresh, &p->stamp, err,
		       sizeof(err));
	if (r < 0) {
		log_warn("service-credentials: keeping the previous ones: %s", err);
		return;
	}
	if (strcmp(p->d->cfg.region, "us-east-1") != 0)
		snprintf(fresh.region, sizeof(fresh.region), "%s", p->d->cfg.region);
	creds_clear(&p->creds);
	p->creds = fresh;
	creds_clear(&fresh);
	log_info("service-credentials: reloaded %s (key %.4s...)", p->d->cfg.service_credentials,
		 p->creds.access_key);
}

static bool same_key(const struct bgjob *j, const struct cache_key *k)
{
	return strcmp(j->bucket, k->bucket) == 0 && strcmp(j->key, k->key) == 0 &&
	       strcmp(j->version, k->version ? k->version : "") == 0;
}

/* The object's full size from a 206 (Content-Range) or a 200 (Content-Length). */
static int object_size(const struct http_msg *m, uint64_t *size)
{
	const struct http_header *h = http_find(m, "content-range");
	struct content_range cr;

	if (m->status == 200 && m->body == HTTP_BODY_LENGTH) {
		*size = m->content_length;
		return 0;
	}
	if (!h || range_parse_content_range(h->value.p, h->value.n, &cr) < 0 || !cr.size_known)
		return -ENODATA;
	*size = cr.size;
	return 0;
}

static void job_free(struct bgjob *j)
{
	cache_follower_close(j->fl); /* first: after it, no wake touches follow_ev */
	if (j->follow_ev)
		event_free(j->follow_ev);
	if (j->bev)
		bufferevent_free(j->bev);
	free(j->bucket);
	free(j->key);
	free(j->version);
	free(j);
}

/* Control thread: the job is over; tell its watchers and start the next. */
static void job_end(struct bgjob *j, int result)
{
	struct bgfill_pool *p = j->p;
	struct bgjob **pp;

	if (j->fill) {
		cache_fill_abort(j->fill, result < 0 ? result : -EIO);
		metric_add(M_cache_fills_aborted, 1);
		j->fill = NULL;
	}
	if (result < 0)
		log_warn("background fill of %s/%s failed: %s", j->bucket, j->key, strerror(-result));
	pthread_mutex_lock(&p->mu);
	for (pp = &p->jobs; *pp; pp = &(*pp)->next) {
		if (*pp == j) {
			*pp = j->next;
			break;
		}
	}
	p->njobs--;
	p->nrunning--;
	/* Once woken, a watcher's exchange may end and free w on its own thread at once:
	 * nothing of w is touched after event_active. */
	for (struct bgfill_watch *w = j->watchers, *next; w; w = next) {
		next = w->next;
		w->result = result;
		w->job = NULL;
		event_active(w->ev, EV_READ, 0);
	}
	pthread_mutex_unlock(&p->mu);
	job_free(j);
	event_active(p->kick, EV_READ, 0);
}

static int job_write_body(struct bgjob *j, struct evbuffer *in)
{
	while (j->left && evbuffer_get_length(in)) {
		struct evbuffer_iovec v;
		size_t n;
		int r;

		if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
			break;
		n = v.iov_len < j->left ? v.iov_len : (size_t)j->left;
		r = cache_fill_write(j->fill, v.iov_base, n);
		if (r < 0)
			return r;
		evbuffer_drain(in, n);
		j->left -= n;
		metric_add(M_bytes_from_origin, n);
	}
	return 0;
}

/* The answer to a confirming HEAD: only a 404 to lotad's own request drops the entry. */
static int confirm_head(struct bgjob *j, const struct http_msg *m)
{
	struct cache_key k = {j->bucket, j->key, j->version};
	int n;

	if (m->status != 404)
		return 0;
	n = cache_invalidate(j->p->cache, &k);
	if (n > 0) {
		metric_add(M_cache_invalidations, (uint64_t)n);
		log_info("cache: %s/%s is gone at the origin: dropped", j->bucket, j->key);
	}
	return 0;
}

static int job_head(struct bgjob *j, struct evbuffer *in)
{
	static const struct http_str get = {"GET", 3}, head = {"HEAD", 4};
	struct cache_key k = {j->bucket, j->key, j->version};
	size_t len = evbuffer_get_length(in), want = len < HTTP_HEAD_MAX ? len : HTTP_HEAD_MAX;
	struct http_msg *m = malloc(sizeof(*m));
	struct objmeta om;
	int r;

	if (!m)
		return -ENOMEM;
	r = http_parse_response((const char *)evbuffer_pullup(in, (ssize_t)want), want,
				j->is_confirm ? &head : &get, m);
	if (r == 0 && j->is_confirm) {
		r = confirm_head(j, m);
		free(m);
		return r == 0 ? 1 : r;
	}
	if (r == 0 && m->status != 200)
		r = m->status == 403 ? -EACCES : m->status == 404 ? -ENOENT : -EPROTO;
	else if (r == 0 && m->body != HTTP_BODY_LENGTH)
		r = -EPROTO;
	if (r == 0) {
		r = objmeta_from_response(&om, &k, m->content_length, m);
		if (r == 0)
			r = cache_fill_begin(j->p->cache, &om.meta, &j->fill);
		objmeta_free(&om);
	}
	if (r == 0) {
		metric_add(M_cache_fills_started, 1);
		j->left = m->content_length;
		j->head_done = true;
		evbuffer_drain(in, m->head_len);
	}
	free(m);
	return r;
}

/* Any thread: the followed fill wrote bytes or ended. */
static void follow_wake(void *arg)
{
	struct bgjob *j = arg;

	event_active(j->follow_ev, EV_READ, 0);
}

static void follow_cb(evutil_socket_t fd, short what, void *arg)
{
	struct bgjob *j = arg;
	struct cache_fill_status st;

	cache_follower_status(j->fl, &st);
	if (st.state == CACHE_FILL_RUNNING)
		return;
	job_end(j, st.state == CACHE_FILL_COMMITTED   ? 0
		   : st.state == CACHE_FILL_DISCARDED ? -ESTALE
		   : st.error			      ? st.error
						      : -EIO);
}

/* A client's fill of the key started before ours: the job ends when that fill does, so
 * that a pre-staging HEAD is answered only once the object is committed. Returns 0 when
 * following, 1 if the object is cached already, or a negative errno. */
static int job_follow(struct bgjob *j)
{
	struct cache_key k = {j->bucket, j->key, j->version};
	struct cache *c = j->p->cache;
	struct cache_obj *o;
	int r;

	bufferevent_free(j->bev); /* the body of our own GET is not needed */
	j->bev = NULL;
	j->follow_ev = event_new(j->p->d->control_base, -1, 0, follow_cb, j);
	if (!j->follow_ev)
		return -ENOMEM;
	r = cache_fill_follow(c, &k, follow_wake, j, &j->fl);
	if (r == -ENOENT) {
		/* It ended in between: committed, or failed. */
		if (cache_lookup(c, &k, &o) < 0)
			return -EAGAIN;
		cache_obj_close(o);
		return 1;
	}
	if (r < 0)
		return r;
	event_active(j->follow_ev, EV_READ, 0); /* it may have ended before we attached */
	return 0;
}

static void job_read_cb(struct bufferevent *bev, void *arg)
{
	struct bgjob *j = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	int r = 0;

	if (!j->head_done) {
		r = job_head(j, in);
		if (r == -EAGAIN)
			return;
		if (r == 1) {
			job_end(j, 0); /* a confirming HEAD, answered */
			return;
		}
		if (r == -EEXIST) {
			r = job_follow(j);
			if (r != 0)
				job_end(j, r > 0 ? 0 : r);
			return;
		}
	}
	if (r == 0)
		r = job_write_body(j, in);
	if (r == 0 && j->left == 0) {
		r = cache_fill_commit(j->fill, NULL);
		j->fill = NULL;
		metric_add(r == 0 ? M_cache_fills_committed : M_cache_fills_aborted, 1);
		if (r == 0)
			log_info("background fill of %s/%s committed", j->bucket, j->key);
		job_end(j, r);
		return;
	}
	if (r < 0)
		job_end(j, r);
}

static void job_event_cb(struct bufferevent *bev, short what, void *arg)
{
	if (what & BEV_EVENT_CONNECTED)
		return;
	job_end(arg, (what & BEV_EVENT_TIMEOUT) ? -ETIMEDOUT : -ECONNRESET);
}

/* GET (or HEAD) /bucket/key[?versionId=] signed with the service credentials. */
static int job_request(struct bgjob *j, struct evbuffer *out)
{
	struct bgfill_pool *p = j->p;
	struct sigv4_creds sc = {p->creds.access_key, p->creds.secret_key, p->creds.session_token};
	const char *method = j->is_confirm ? "HEAD" : "GET";
	char *path = malloc(BGFILL_PATH_MAX), query[3 * 1024 + 16] = "";
	struct sigv4_signed s;
	size_t n;
	int r = -ENOMEM;

	if (!path)
		return r;
	path[0] = '/';
	r = sigv4_uri_encode(j->bucket, strlen(j->bucket), false, path + 1, BGFILL_PATH_MAX - 2);
	n = strlen(path);
	if (r == 0) {
		path[n] = '/';
		r = sigv4_uri_encode(j->key, strlen(j->key), true, path + n + 1, BGFILL_PATH_MAX - n - 1);
	}
	if (r == 0 && j->version[0]) {
		strcpy(query, "versionId=");
		r = sigv4_uri_encode(j->version, strlen(j->version), false, query + 10, sizeof(query) - 10);
	}
	if (r == 0)
		r = sigv4_sign(&sc, p->creds.region, "s3", method, p->d->origin->label, path, query, NULL, 0,
			       SIGV4_UNSIGNED_PAYLOAD, time(NULL), &s);
	if (r == 0) {
		evbuffer_add_printf(out,
				    "%s %s%s%s HTTP/1.1\r\nHost: %s\r\nUser-Agent: lotad-fill\r\n"
				    "x-amz-date: %s\r\nx-amz-content-sha256: %s\r\nAuthorization: %s\r\n",
				    method, path, query[0] ? "?" : "", query, p->d->origin->label, s.amz_date,
				    s.content_sha256, s.authorization);
		if (s.security_token)
			evbuffer_add_printf(out, "x-amz-security-token: %s\r\n", s.security_token);
		evbuffer_add(out, "\r\n", 2);
	}
	free(path);
	return r;
}

static void job_start(struct bgjob *j)
{
	struct lotad *d = j->p->d;
	struct timeval tv = {.tv_sec = (time_t)d->cfg.origin_timeout};
	int r;

	j->bev = origin_connect(d->origin, d->control_base);
	if (!j->bev) {
		job_end(j, -errno);
		return;
	}
	bufferevent_setcb(j->bev, job_read_cb, NULL, job_event_cb, j);
	bufferevent_set_timeouts(j->bev, &tv, &tv);
	bufferevent_set_max_single_read(j->bev, 256 * 1024);
	r = job_request(j, bufferevent_get_output(j->bev));
	if (r < 0) {
		job_end(j, r);
		return;
	}
	metric_add(M_origin_requests, 1);
	bufferevent_enable(j->bev, EV_READ | EV_WRITE);
}

static void kick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct bgfill_pool *p = arg;
	struct bgjob *start[BGFILL_RUNNING_MAX];
	int n = 0;

	pthread_mutex_lock(&p->mu);
	for (struct bgjob *j = p->jobs; j && p->nrunning < BGFILL_RUNNING_MAX; j = j->next) {
		if (!j->running) {
			j->running = true;
			p->nrunning++;
			start[n++] = j;
		}
	}
	pthread_mutex_unlock(&p->mu);
	for (int i = 0; i < n; i++)
		job_start(start[i]);
}

static struct bgjob *job_new(struct bgfill_pool *p, const struct cache_key *k)
{
	struct bgjob *j = calloc(1, sizeof(*j));

	if (!j)
		return NULL;
	j->p = p;
	j->bucket = strdup(k->bucket);
	j->key = strdup(k->key);
	j->version = strdup(k->version ? k->version : "");
	if (!j->bucket || !j->key || !j->version) {
		job_free(j);
		return NULL;
	}
	return j;
}

int bgfill_request(struct bgfill_pool *p, const struct cache_key *k, const struct http_msg *m,
		   struct bgfill_watch *w)
{
	struct cache_obj *obj;
	struct bgjob *j;
	uint64_t size;
	int r = 0;

	if (object_size(m, &size) < 0 || size < p->d->cfg.min_object_size)
		return 1;
	if (cache_lookup(p->cache, k, &obj) == 0) {
		cache_obj_close(obj);
		return 1;
	}
	pthread_mutex_lock(&p->mu);
	for (j = p->jobs; j && !same_key(j, k); j = j->next)
		;
	if (!j && p->njobs >= BGFILL_JOBS_MAX) {
		r = -EAGAIN;
	} else if (!j && (j = job_new(p, k)) != NULL) {
		j->next = p->jobs;
		p->jobs = j;
		p->njobs++;
	} else if (!j) {
		r = -ENOMEM;
	}
	if (r == 0 && w) {
		w->job = j;
		w->pool = p;
		w->result = 0;
		w->next = j->watchers;
		j->watchers = w;
	}
	pthread_mutex_unlock(&p->mu);
	if (r == 0)
		event_active(p->kick, EV_READ, 0);
	return r;
}

void bgfill_unwatch(struct bgfill_watch *w)
{
	struct bgfill_pool *p = w->pool;

	if (!p)
		return;
	pthread_mutex_lock(&p->mu);
	if (w->job) {
		for (struct bgfill_watch **pp = &w->job->watchers; *pp; pp = &(*pp)->next) {
			if (*pp == w) {
				*pp = w->next;
				break;
			}
		}
		w->job = NULL;
	}
	pthread_mutex_unlock(&p->mu);
}

int bgfill_confirm_gone(struct bgfill_pool *p, const struct cache_key *k)
{
	struct bgjob *j;
	int r = 0;

	pthread_mutex_lock(&p->mu);
	for (j = p->jobs; j && !same_key(j, k); j = j->next)
		;
	if (j) {
		r = 1; /* a fill or a check of the key runs already */
	} else if (p->njobs >= BGFILL_JOBS_MAX) {
		r = -EAGAIN;
	} else if ((j = job_new(p, k)) != NULL) {
		j->is_confirm = true;
		j->next = p->jobs;
		p->jobs = j;
		p->njobs++;
	} else {
		r = -ENOMEM;
	}
	pthread_mutex_unlock(&p->mu);
	if (r == 0)
		event_active(p->kick, EV_READ, 0);
	return r;
}

void bgfill_pool_free(struct bgfill_pool *p)
{
	if (!p)
		return;
	while (p->jobs) {
		struct bgjob *j = p->jobs;

		p->jobs = j->next;
		if (j->fill)
			cache_fill_abort(j->fill, -ECANCELED);
		job_free(j);
	}
	event_free(p->kick);
	creds_clear(&p->creds);
	pthread_mutex_destroy(&p->mu);
	free(p);
}
