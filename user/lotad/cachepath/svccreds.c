/* Service credentials: load, reload, and sign lotad's own requests (SigV4). */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>

#include "cache.h"
#include "cachepath/svccreds.h"
#include "creds.h"
#include "exchange/origin.h"
#include "log.h"
#include "sigv4.h"

#define SVC_PATH_MAX (3 * CACHE_KEY_MAX + 3 * CACHE_BUCKET_MAX + 16)
#define SVC_QUERY_MAX (3 * CACHE_VERSION_MAX + 16)
#define SVC_EXTRA_MAX 8

struct svccreds {
	pthread_mutex_t mu; /* guards creds and stamp */
	struct creds creds;
	struct creds_stamp stamp;
	char region[64];
	char path[];
};

static void apply_region(struct svccreds *sc, struct creds *c)
{
	if (strcmp(sc->region, "us-east-1") != 0 || !c->region[0])
		snprintf(c->region, sizeof(c->region), "%s", sc->region);
}

int svccreds_new(const char *path, const char *region, struct svccreds **out, char *err,
		 size_t errlen)
{
	struct svccreds *sc = calloc(1, sizeof(*sc) + strlen(path) + 1);
	int r;

	if (!sc)
		return -ENOMEM;
	strcpy(sc->path, path);
	snprintf(sc->region, sizeof(sc->region), "%s", region);
	r = creds_load(path, CREDS_DEFAULT_PROFILE, &sc->creds, &sc->stamp, err, errlen);
	if (r < 0) {
		free(sc);
		return r;
	}
	apply_region(sc, &sc->creds);
	pthread_mutex_init(&sc->mu, NULL);
	*out = sc;
	return 0;
}

void svccreds_free(struct svccreds *sc)
{
	if (!sc)
		return;
	creds_clear(&sc->creds);
	pthread_mutex_destroy(&sc->mu);
	free(sc);
}

void svccreds_reload(struct svccreds *sc)
{
	struct creds fresh;
	struct creds_stamp stamp;
	char err[CREDS_ERR_MAX];
	int r;

	pthread_mutex_lock(&sc->mu);
	stamp = sc->stamp;
	pthread_mutex_unlock(&sc->mu);
	if (creds_changed(sc->path, &stamp) <= 0)
		return;
	r = creds_load(sc->path, CREDS_DEFAULT_PROFILE, &fresh, &stamp, err, sizeof(err));
	if (r < 0) {
		log_warn("service-credentials: keeping the previous ones: %s", err);
		return;
	}
	apply_region(sc, &fresh);
	pthread_mutex_lock(&sc->mu);
	creds_clear(&sc->creds);
	sc->creds = fresh;
	sc->stamp = stamp;
	pthread_mutex_unlock(&sc->mu);
	log_info("service-credentials: reloaded %s (key %.4s...)", sc->path, fresh.access_key);
	creds_clear(&fresh);
}

/* "/bucket/key" and "versionId=..." as SigV4 encodes them. */
static int target_of(const struct cache_key *k, char *path, size_t pcap, char *query, size_t qcap)
{
	size_t n;
	int r;

	path[0] = '/';
	r = sigv4_uri_encode(k->bucket, strlen(k->bucket), false, path + 1, pcap - 2);
	n = strlen(path);
	if (r == 0) {
		path[n] = '/';
		r = sigv4_uri_encode(k->key, strlen(k->key), true, path + n + 1, pcap - n - 1);
	}
	query[0] = '\0';
	if (r == 0 && k->version && k->version[0]) {
		strcpy(query, "versionId=");
		r = sigv4_uri_encode(k->version, strlen(k->version), false, query + 10, qcap - 10);
	}
	return r;
}

static void add_head(struct evbuffer *out, const char *method, const char *path, const char *query,
		     const char *host, const struct sigv4_signed *s, const struct svccreds_header *extra,
		     size_t n_extra)
{
	evbuffer_add_printf(out,
			    "%s %s%s%s HTTP/1.1\r\nHost: %s\r\nUser-Agent: lotad\r\n"
			    "x-amz-date: %s\r\nx-amz-content-sha256: %s\r\nAuthorization: %s\r\n",
			    method, path, query[0] ? "?" : "", query, host, s->amz_date,
			    s->content_sha256, s->authorization);
	if (s->security_token)
		evbuffer_add_printf(out, "x-amz-security-token: %s\r\n", s->security_token);
	for (size_t i = 0; i < n_extra; i++)
		evbuffer_add_printf(out, "%s: %s\r\n", extra[i].name, extra[i].value);
	evbuffer_add(out, "\r\n", 2);
}

/* Signs method on path?query for origin o (its host; its region, if it serves one, else
 * the configured one) and appends the head to out. */
static int sign_head(struct svccreds *sc, const char *method, const struct origin *o,
		     const char *path, const char *query, const struct svccreds_header *extra,
		     size_t n_extra, struct evbuffer *out)
{
	struct sigv4_header h[SVC_EXTRA_MAX];
	struct creds *c = malloc(sizeof(*c));
	struct sigv4_creds sig;
	struct sigv4_signed s;
	int r = -ENOMEM;

	if (!c || n_extra > SVC_EXTRA_MAX)
		goto out;
	for (size_t i = 0; i < n_extra; i++)
		h[i] = (struct sigv4_header){extra[i].name, extra[i].value};
	pthread_mutex_lock(&sc->mu);
	*c = sc->creds;
	pthread_mutex_unlock(&sc->mu);
	sig = (struct sigv4_creds){c->access_key, c->secret_key, c->session_token};
	r = sigv4_sign(&sig, o->region[0] ? o->region : c->region, "s3", method, o->label, path,
		       query, h, n_extra, SIGV4_UNSIGNED_PAYLOAD, time(NULL), &s);
	if (r == 0)
		add_head(out, method, path, query, o->label, &s, extra, n_extra);
out:
	if (c)
		creds_clear(c);
	free(c);
	return r;
}

int svccreds_request(struct svccreds *sc, const char *method, const struct origin *o,
		     const struct cache_key *k, const struct svccreds_header *extra, size_t n_extra,
		     struct evbuffer *out)
{
	char *path = malloc(SVC_PATH_MAX), *query = malloc(SVC_QUERY_MAX);
	int r = -ENOMEM;

	if (path && query)
		r = target_of(k, path, SVC_PATH_MAX, query, SVC_QUERY_MAX);
	if (r == 0)
		r = sign_head(sc, method, o, path, query, extra, n_extra, out);
	free(path);
	free(query);
	return r;
}

int svccreds_bucket_request(struct svccreds *sc, const char *method, const struct origin *o,
			    const char *bucket, const char *query, struct evbuffer *out)
{
	char path[3 * CACHE_BUCKET_MAX + 2] = "/";
	int r = sigv4_uri_encode(bucket, strlen(bucket), false, path + 1, sizeof(path) - 1);

	return r < 0 ? r : sign_head(sc, method, o, path, query, NULL, 0, out);
}
