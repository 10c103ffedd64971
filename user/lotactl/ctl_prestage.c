/* ctl_prestage: `lotactl prestage s3://bucket/prefix`. Lists the prefix with
 * ListObjectsV2 through lotad (signed with the operator's credentials, found the way the
 * aws cli finds them), then sends every object a signed HEAD with Range: bytes=0-0, which
 * lotad answers only once the object is in its cache; with an SSE-C key file the HEADs
 * carry the key's three fields, so that lotad fills the objects sealed under it. N threads
 * with blocking sockets: lotactl is a CLI and each request mostly waits on lotad's fill. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <fcntl.h>

#include "creds.h"
#include "json.h"
#include "ctl.h"
#include "sigv4.h"
#include "ssecrypt.h"

#define LIST_PAGE_MAX 10000000 /* objects one prestage takes at most */
#define ERR_MAX 256

struct object {
	char *key;
	uint64_t size;
	char err[ERR_MAX]; /* "" on success */
};

struct run {
	const struct ctl_prestage_opts *o;
	struct ctl_url url;
	struct creds cr;
	bool has_key; /* the SSE-C key's fields, for every HEAD */
	char key_b64[SSEC_KEY_B64_LEN + 1], md5_b64[SSEC_MD5_B64_LEN + 1];
	struct object *obj;
	size_t n, cap;
	uint64_t total_bytes;
	size_t next; /* index of the next object to take (atomic) */
	size_t done, failed, unconfirmed;
	uint64_t done_bytes;
	pthread_mutex_t mu; /* guards output and the counters above */
	bool is_tty;
	double t0;
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Credentials as the aws cli takes them: the environment, then the shared credentials
 * file (AWS_SHARED_CREDENTIALS_FILE or ~/.aws/credentials) and profile. */
static int load_creds(struct run *r)
{
	const char *ak = getenv("AWS_ACCESS_KEY_ID"), *sk = getenv("AWS_SECRET_ACCESS_KEY");
	const char *tok = getenv("AWS_SESSION_TOKEN"),
		   *file = getenv("AWS_SHARED_CREDENTIALS_FILE");
	const char *profile = r->o->profile ? r->o->profile : getenv("AWS_PROFILE");
	const char *region = getenv("AWS_REGION");
	char path[CTL_PATH_MAX], err[CREDS_ERR_MAX];
	int rc = 0;

	if (ak && *ak && sk && *sk && !r->o->profile) {
		snprintf(r->cr.access_key, sizeof(r->cr.access_key), "%s", ak);
		snprintf(r->cr.secret_key, sizeof(r->cr.secret_key), "%s", sk);
		snprintf(r->cr.session_token, sizeof(r->cr.session_token), "%s", tok ? tok : "");
		snprintf(r->cr.region, sizeof(r->cr.region), "%s", CREDS_DEFAULT_REGION);
	} else {
		if (!file || !*file)
			snprintf(path, sizeof(path), "%s/.aws/credentials",
				 getenv("HOME") ? getenv("HOME") : "");
		else
			snprintf(path, sizeof(path), "%s", file);
		rc = creds_load(path, profile && *profile ? profile : CREDS_DEFAULT_PROFILE, &r->cr,
				NULL, err, sizeof(err));
		if (rc) {
			fprintf(
			    stderr,
			    "lotactl: no S3 credentials: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY "
			    "unset and %s\n",
			    err);
			return rc;
		}
	}
	if (!region || !*region)
		region = getenv("AWS_DEFAULT_REGION");
	if (region && *region)
		snprintf(r->cr.region, sizeof(r->cr.region), "%s", region);
	return 0;
}

/* The SSE-C key of --sse-c-key-file: exactly 32 bytes. */
static int load_key(struct run *r)
{
	uint8_t key[SSEC_KEY_LEN + 1];
	int fd = open(r->o->sse_c_key_file, O_RDONLY | O_CLOEXEC), rc = 0;
	ssize_t n;

	if (fd < 0) {
		fprintf(stderr, "lotactl: %s: %s\n", r->o->sse_c_key_file, strerror(errno));
		return -errno;
	}
	n = read(fd, key, sizeof(key));
	close(fd);
	if (n != SSEC_KEY_LEN) {
		fprintf(stderr, "lotactl: %s: an SSE-C key file holds exactly 32 bytes\n",
			r->o->sse_c_key_file);
		rc = -EINVAL;
	} else if (ssec_key_fields(key, r->key_b64, r->md5_b64) < 0) {
		rc = -EIO;
	}
	ssec_wipe(key, sizeof(key));
	r->has_key = rc == 0;
	return rc;
}

/* One signed request to lotad's S3 port: path and query as they go on the wire. A
 * pre-staging HEAD signs its Range and, with a key, the key's fields. */
static int s3_request(struct run *r, const char *method, const char *path, const char *query,
		      bool is_prestage, struct ctl_response *resp, char *err, size_t errlen)
{
	struct sigv4_header sh[4] = {{"range", "bytes=0-0"},
				     {"x-amz-server-side-encryption-customer-algorithm", "AES256"},
				     {"x-amz-server-side-encryption-customer-key", r->key_b64},
				     {"x-amz-server-side-encryption-customer-key-MD5", r->md5_b64}};
	size_t nsh = !is_prestage ? 0 : r->has_key ? 4 : 1;
	struct sigv4_creds c = {r->cr.access_key, r->cr.secret_key, r->cr.session_token};
	struct sigv4_signed s;
	struct ctl_header h[8];
	char target[CTL_PATH_MAX * 2];
	size_t nh = 0;
	int rc;

	rc = sigv4_sign(&c, r->cr.region, "s3", method, r->url.hostport, path, query,
			nsh ? sh : NULL, nsh, SIGV4_EMPTY_SHA256, time(NULL), &s);
	if (rc) {
		snprintf(err, errlen, "sign %s %s: %s", method, path, strerror(-rc));
		return rc;
	}
	h[nh++] = (struct ctl_header){"Authorization", s.authorization};
	h[nh++] = (struct ctl_header){"x-amz-date", s.amz_date};
	h[nh++] = (struct ctl_header){"x-amz-content-sha256", s.content_sha256};
	if (s.security_token)
		h[nh++] = (struct ctl_header){"x-amz-security-token", s.security_token};
	for (size_t i = 0; i < nsh; i++)
		h[nh++] = (struct ctl_header){sh[i].name, sh[i].value};
	snprintf(target, sizeof(target), "%s%s%s", path, *query ? "?" : "", query);
	return ctl_http(&r->url, method, target, h, nh, r->o->timeout_s * 1000, resp, err, errlen);
}

/* XML text between <tag> and </tag> from p, entities decoded, into out; returns a pointer
 * after the closing tag or NULL. ListObjectsV2 has no attributes or CDATA on these. */
static const char *xml_text(const char *p, const char *end, const char *tag, char *out, size_t cap)
{
	char open[64], close[64];
	const char *s, *e;
	size_t o = 0;

	snprintf(open, sizeof(open), "<%s>", tag);
	snprintf(close, sizeof(close), "</%s>", tag);
	s = memmem(p, (size_t)(end - p), open, strlen(open));
	if (!s)
		return NULL;
	s += strlen(open);
	e = memmem(s, (size_t)(end - s), close, strlen(close));
	if (!e)
		return NULL;
	for (const char *q = s; q < e; q++) {
		static const struct {
			const char *ent;
			char c;
		} ents[] = {{"&amp;", '&'},
			    {"&lt;", '<'},
			    {"&gt;", '>'},
			    {"&quot;", '"'},
			    {"&apos;", '\''}};
		char c = *q;

		if (o + 5 >= cap)
			return NULL;
		if (c == '&' && q[1] == '#') {
			char *ep;
			unsigned long v =
			    q[2] == 'x' ? strtoul(q + 3, &ep, 16) : strtoul(q + 2, &ep, 10);

			if (*ep != ';' || v == 0 || v > 0x10ffff)
				return NULL;
			if (v < 0x80) {
				out[o++] = (char)v;
			} else if (v < 0x800) {
				out[o++] = (char)(0xc0 | v >> 6);
				out[o++] = (char)(0x80 | (v & 0x3f));
			} else if (v < 0x10000) {
				out[o++] = (char)(0xe0 | v >> 12);
				out[o++] = (char)(0x80 | ((v >> 6) & 0x3f));
				out[o++] = (char)(0x80 | (v & 0x3f));
			} else {
				out[o++] = (char)(0xf0 | v >> 18);
				out[o++] = (char)(0x80 | ((v >> 12) & 0x3f));
				out[o++] = (char)(0x80 | ((v >> 6) & 0x3f));
				out[o++] = (char)(0x80 | (v & 0x3f));
			}
			q = ep;
			continue;
		}
		if (c == '&') {
			size_t i;

			for (i = 0; i < sizeof(ents) / sizeof(ents[0]); i++)
				if (strncmp(q, ents[i].ent, strlen(ents[i].ent)) == 0)
					break;
			if (i == sizeof(ents) / sizeof(ents[0]))
				return NULL;
			c = ents[i].c;
			q += strlen(ents[i].ent) - 1;
		}
		out[o++] = c;
	}
	out[o] = '\0';
	return e + strlen(close);
}

static int add_object(struct run *r, const char *key, uint64_t size)
{
	if (r->n == r->cap) {
		size_t ncap = r->cap ? r->cap * 2 : 256;
		struct object *no;

		if (ncap > LIST_PAGE_MAX)
			return -E2BIG;
		no = realloc(r->obj, ncap * sizeof(*no));
		if (!no)
			return -ENOMEM;
		r->obj = no;
		r->cap = ncap;
	}
	r->obj[r->n] = (struct object){.key = strdup(key), .size = size};
	if (!r->obj[r->n].key)
		return -ENOMEM;
	r->n++;
	r->total_bytes += size;
	return 0;
}

/* Takes every <Contents> of one page; sets token to the next page's or "". */
static int parse_page(struct run *r, const char *xml, size_t len, char *token, size_t tcap)
{
	const char *p = xml, *end = xml + len;
	char key[4096], size[32], trunc[16];

	while ((p = memmem(p, (size_t)(end - p), "<Contents>", 10)) != NULL) {
		const char *ce = memmem(p, (size_t)(end - p), "</Contents>", 11);
		int rc;

		if (!ce || !xml_text(p, ce, "Key", key, sizeof(key)) ||
		    !xml_text(p, ce, "Size", size, sizeof(size)))
			return -EPROTO;
		rc = add_object(r, key, strtoull(size, NULL, 10));
		if (rc)
			return rc;
		p = ce + 11;
	}
	token[0] = '\0';
	if (xml_text(xml, end, "IsTruncated", trunc, sizeof(trunc)) && strcmp(trunc, "true") == 0 &&
	    !xml_text(xml, end, "NextContinuationToken", token, tcap))
		return -EPROTO;
	return 0;
}

static int list_prefix(struct run *r)
{
	char path[CTL_PATH_MAX], query[CTL_PATH_MAX * 2], token[2048] = "", etoken[4096];
	char eprefix[CTL_PATH_MAX], err[512];
	int rc;

	if (ctl_uri_encode(r->o->bucket, false, path + 1, sizeof(path) - 1) ||
	    ctl_uri_encode(r->o->prefix, false, eprefix, sizeof(eprefix))) {
		fprintf(stderr, "lotactl: bucket or prefix too long\n");
		return -ENAMETOOLONG;
	}
	path[0] = '/';
	do {
		struct ctl_response resp;

		if (ctl_uri_encode(token, false, etoken, sizeof(etoken)))
			return -ENAMETOOLONG;
		snprintf(query, sizeof(query), "%s%s%slist-type=2&prefix=%s",
			 token[0] ? "continuation-token=" : "", token[0] ? etoken : "",
			 token[0] ? "&" : "", eprefix);
		rc = s3_request(r, "GET", path, query, false, &resp, err, sizeof(err));
		if (rc) {
			fprintf(stderr, "lotactl: list s3://%s/%s: %s\n", r->o->bucket,
				r->o->prefix, err);
			return rc;
		}
		if (resp.status != 200) {
			char code[128] = "", msg[512] = "";
			const char *e = resp.body + resp.body_len;

			xml_text(resp.body, e, "Code", code, sizeof(code));
			xml_text(resp.body, e, "Message", msg, sizeof(msg));
			fprintf(stderr, "lotactl: list s3://%s/%s: HTTP %d %s%s%s\n", r->o->bucket,
				r->o->prefix, resp.status, code, msg[0] ? ": " : "", msg);
			ctl_response_free(&resp);
			return -EACCES;
		}
		rc = parse_page(r, resp.body, resp.body_len, token, sizeof(token));
		ctl_response_free(&resp);
		if (rc) {
			fprintf(stderr,
				"lotactl: list s3://%s/%s: unreadable ListObjectsV2 answer\n",
				r->o->bucket, r->o->prefix);
			return rc;
		}
	} while (token[0]);
	return 0;
}

static void human_bytes(double b, char *out, size_t cap)
{
	static const char *const unit[] = {"B", "KiB", "MiB", "GiB", "TiB"};
	int u = 0;

	while (b >= 1024 && u < 4) {
		b /= 1024;
		u++;
	}
	snprintf(out, cap, u ? "%.1f %s" : "%.0f %s", b, unit[u]);
}

/* The progress bar on a terminal (stderr), redrawn in place. Caller holds mu. */
static void draw_bar(struct run *r)
{
	char done[32], total[32], rate[32];
	double dt = now_s() - r->t0;
	int width = 30, fill = r->n ? (int)((double)width * (double)r->done / (double)r->n) : width;

	human_bytes((double)r->done_bytes, done, sizeof(done));
	human_bytes((double)r->total_bytes, total, sizeof(total));
	human_bytes(dt > 0 ? (double)r->done_bytes / dt : 0, rate, sizeof(rate));
	fprintf(stderr, "\r\033[K[%.*s%*s] %zu/%zu objects  %s / %s  %s/s%s", fill,
		"##############################", width - fill, "", r->done, r->n, done, total,
		rate, r->failed ? "  (failures)" : "");
	fflush(stderr);
}

static void report(struct run *r, struct object *ob)
{
	char sz[32], rate[32];
	double dt = now_s() - r->t0;

	pthread_mutex_lock(&r->mu);
	r->done++;
	if (ob->err[0])
		r->failed++;
	else
		r->done_bytes += ob->size;
	if (r->o->is_json) {
		/* the summary says it all */
	} else if (r->is_tty) {
		if (ob->err[0])
			fprintf(stderr, "\r\033[Kfailed s3://%s/%s: %s\n", r->o->bucket, ob->key,
				ob->err);
		draw_bar(r);
	} else {
		human_bytes((double)ob->size, sz, sizeof(sz));
		human_bytes(dt > 0 ? (double)r->done_bytes / dt : 0, rate, sizeof(rate));
		printf("[%zu/%zu] %s s3://%s/%s (%s)%s%s  %s/s\n", r->done, r->n,
		       ob->err[0] ? "failed" : "cached", r->o->bucket, ob->key, sz,
		       ob->err[0] ? ": " : "", ob->err, rate);
		fflush(stdout);
	}
	pthread_mutex_unlock(&r->mu);
}

static void prestage_one(struct run *r, struct object *ob)
{
	char path[CTL_PATH_MAX * 3 + 2], ek[CTL_PATH_MAX * 3], eb[CTL_HOST_MAX * 3], val[32];
	struct ctl_response resp;
	int rc;

	if (ctl_uri_encode(r->o->bucket, false, eb, sizeof(eb)) ||
	    ctl_uri_encode(ob->key, true, ek, sizeof(ek))) {
		snprintf(ob->err, sizeof(ob->err), "key too long");
		return;
	}
	snprintf(path, sizeof(path), "/%s/%s", eb, ek);
	rc = s3_request(r, "HEAD", path, "", true, &resp, ob->err, sizeof(ob->err));
	if (rc)
		return;
	if (resp.status != 200 && resp.status != 206)
		snprintf(ob->err, sizeof(ob->err), "HTTP %d", resp.status);
	else if (ctl_header_get(&resp, "x-lota-prestage", val, sizeof(val)) < 0)
		__atomic_add_fetch(&r->unconfirmed, 1, __ATOMIC_RELAXED);
	else if (strcmp(val, "cached") != 0)
		snprintf(ob->err, sizeof(ob->err), "lotad: pre-stage %s (see lotad's log)", val);
	ctl_response_free(&resp);
}

static void *worker(void *arg)
{
	struct run *r = arg;
	size_t i;

	while ((i = __atomic_fetch_add(&r->next, 1, __ATOMIC_RELAXED)) < r->n) {
		prestage_one(r, &r->obj[i]);
		report(r, &r->obj[i]);
	}
	return NULL;
}

static void emit_file(void *arg, const char *p, size_t n)
{
	fwrite(p, 1, n, arg);
}

static void json_str(FILE *f, const char *s)
{
	json_write_str(s, emit_file, f);
}

static void summary(struct run *r)
{
	double dt = now_s() - r->t0;
	char b[32], rate[32];

	if (r->o->is_json) {
		bool first = true;

		printf("{\"bucket\":");
		json_str(stdout, r->o->bucket);
		printf(",\"prefix\":");
		json_str(stdout, r->o->prefix);
		printf(",\"objects\":%zu,\"bytes\":%" PRIu64
		       ",\"cached\":%zu,\"cached_bytes\":%" PRIu64
		       ",\"unconfirmed\":%zu,\"failed\":%zu,\"seconds\":%.3f,\"failures\":[",
		       r->n, r->total_bytes, r->done - r->failed, r->done_bytes, r->unconfirmed,
		       r->failed, dt);
		for (size_t i = 0; i < r->n; i++) {
			if (!r->obj[i].err[0])
				continue;
			printf("%s{\"key\":", first ? "" : ",");
			json_str(stdout, r->obj[i].key);
			printf(",\"error\":");
			json_str(stdout, r->obj[i].err);
			printf("}");
			first = false;
		}
		printf("]}\n");
		return;
	}
	if (r->is_tty)
		fputc('\n', stderr);
	human_bytes((double)r->done_bytes, b, sizeof(b));
	human_bytes(dt > 0 ? (double)r->done_bytes / dt : 0, rate, sizeof(rate));
	printf("prestage s3://%s/%s: %zu of %zu objects cached (%s) in %.1f s, %s/s; %zu failed\n",
	       r->o->bucket, r->o->prefix, r->done - r->failed, r->n, b, dt, rate, r->failed);
	if (r->unconfirmed)
		printf("note: %zu answered without x-lota-prestage: already cached, under lotad's "
		       "min-object-size, or lotad has no service-credentials\n",
		       r->unconfirmed);
	for (size_t i = 0; i < r->n && r->failed; i++)
		if (r->obj[i].err[0])
			printf("FAILED s3://%s/%s: %s\n", r->o->bucket, r->obj[i].key,
			       r->obj[i].err);
}

static int run_workers(struct run *r)
{
	pthread_t th[256];
	int n = r->o->concurrency, started = 0;

	if (n < 1)
		n = 1;
	if (n > 256)
		n = 256;
	if ((size_t)n > r->n)
		n = (int)r->n;
	for (; started < n; started++)
		if (pthread_create(&th[started], NULL, worker, r))
			break;
	if (started == 0)
		worker(r);
	for (int i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	return 0;
}

int ctl_prestage(const struct ctl_prestage_opts *o)
{
	struct run r = {.o = o, .mu = PTHREAD_MUTEX_INITIALIZER};
	char err[512];
	int code = 1;

	r.is_tty = isatty(STDERR_FILENO) && !o->is_json;
	if (ctl_url_parse(o->endpoint, "80", &r.url, err, sizeof(err))) {
		fprintf(stderr, "lotactl: --endpoint: %s\n", err);
		return 2;
	}
	if (load_creds(&r) || (o->sse_c_key_file && load_key(&r)) || list_prefix(&r))
		goto out;
	if (r.n == 0) {
		fprintf(stderr, "lotactl: no objects under s3://%s/%s\n", o->bucket, o->prefix);
		goto out;
	}
	r.t0 = now_s();
	if (r.is_tty) {
		pthread_mutex_lock(&r.mu);
		draw_bar(&r);
		pthread_mutex_unlock(&r.mu);
	}
	run_workers(&r);
	summary(&r);
	code = r.failed ? 1 : 0;
out:
	for (size_t i = 0; i < r.n; i++)
		free(r.obj[i].key);
	free(r.obj);
	creds_clear(&r.cr);
	ssec_wipe(r.key_b64, sizeof(r.key_b64));
	return code;
}
