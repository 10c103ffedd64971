/* ctl_http: lotactl's blocking HTTP/1.1 client. One request per connection, poll() for
 * every wait so a silent peer costs a timeout and not a hang; Content-Length, chunked and
 * read-to-close bodies, all bounded. */
#include <ctype.h>
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "ctl.h"

struct rbuf {
	char *p;
	size_t len, cap;
};

int ctl_url_parse(const char *s, const char *default_port, struct ctl_url *out, char *err,
		  size_t errlen)
{
	const char *p = s, *end, *colon = NULL;
	size_t hl;

	memset(out, 0, sizeof(*out));
	if (strncasecmp(p, "https://", 8) == 0) {
		snprintf(err, errlen, "%s: https is not supported (lotad's ports are plain HTTP)",
			 s);
		return -EPROTONOSUPPORT;
	}
	if (strncasecmp(p, "http://", 7) == 0)
		p += 7;
	end = p + strcspn(p, "/?");
	if (*p == '[') {
		const char *rb = memchr(p, ']', (size_t)(end - p));

		if (!rb)
			goto bad;
		hl = (size_t)(rb - p - 1);
		memcpy(out->host, p + 1, hl < CTL_HOST_MAX ? hl : 0);
		colon = rb[1] == ':' ? rb + 1 : NULL;
	} else {
		colon = memchr(p, ':', (size_t)(end - p));
		hl = (size_t)((colon ? colon : end) - p);
		if (hl >= CTL_HOST_MAX)
			goto bad;
		memcpy(out->host, p, hl);
	}
	if (!out->host[0])
		goto bad;
	if (colon) {
		size_t pl = (size_t)(end - colon - 1);

		if (pl == 0 || pl >= sizeof(out->port) || strspn(colon + 1, "0123456789") < pl)
			goto bad;
		memcpy(out->port, colon + 1, pl);
	} else {
		snprintf(out->port, sizeof(out->port), "%s", default_port);
	}
	snprintf(out->hostport, sizeof(out->hostport), "%.*s", (int)(end - p), p);
	snprintf(out->name, sizeof(out->name), "%s:%s", out->host, out->port);
	return 0;
bad:
	snprintf(err, errlen, "'%s' is not HOST:PORT or http://HOST[:PORT]", s);
	return -EINVAL;
}

int ctl_url_unix(const char *path, struct ctl_url *out, char *err, size_t errlen)
{
	size_t n = strlen(path);

	memset(out, 0, sizeof(*out));
	if (n == 0 || n >= sizeof(out->unix_path)) {
		snprintf(err, errlen, "unix:%s: not a socket path (1 to %zu bytes)", path,
			 sizeof(out->unix_path) - 1);
		return -EINVAL;
	}
	memcpy(out->unix_path, path, n + 1);
	memcpy(out->name, path, n + 1);
	snprintf(out->hostport, sizeof(out->hostport), "localhost");
	return 0;
}

static int wait_fd(int fd, short ev, int timeout_ms)
{
	struct pollfd pfd = {fd, ev, 0};
	int n;

	do
		n = poll(&pfd, 1, timeout_ms);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	return n == 0 ? -ETIMEDOUT : 0;
}

/* A unix stream connect never waits: it succeeds, or fails at once. */
static int dial_unix(const struct ctl_url *u, char *err, size_t errlen)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), r;

	if (fd < 0) {
		r = -errno;
		snprintf(err, errlen, "%s: socket: %s", u->name, strerror(-r));
		return r;
	}
	memcpy(sa.sun_path, u->unix_path, sizeof(u->unix_path));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
		return fd;
	r = -errno;
	close(fd);
	snprintf(err, errlen, "%s: connect: %s", u->name, strerror(-r));
	return r;
}

static int dial(const struct ctl_url *u, int timeout_ms, char *err, size_t errlen)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res, *ai;
	int fd = -1, r = -ECONNREFUSED, g;

	if (u->unix_path[0])
		return dial_unix(u, err, errlen);
	g = getaddrinfo(u->host, u->port, &hints, &res);
	if (g) {
		snprintf(err, errlen, "%s: resolve: %s", u->hostport, gai_strerror(g));
		return -EHOSTUNREACH;
	}
	for (ai = res; ai; ai = ai->ai_next) {
		socklen_t sl = sizeof(int);
		int soerr = 0;

		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0) {
			r = -errno;
			continue;
		}
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		r = errno == EINPROGRESS ? wait_fd(fd, POLLOUT, timeout_ms) : -errno;
		if (r == 0 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == 0 && !soerr)
			break;
		if (r == 0)
			r = -soerr;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0)
		snprintf(err, errlen, "%s: connect: %s", u->name, strerror(-r));
	return fd < 0 ? r : fd;
}

static int send_all(int fd, const char *p, size_t len, int timeout_ms)
{
	while (len) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
			int r = wait_fd(fd, POLLOUT, timeout_ms);

			if (r)
				return r;
			continue;
		}
		if (n < 0)
			return -errno;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int rbuf_fill(int fd, struct rbuf *b, size_t limit, int timeout_ms)
{
	ssize_t n;

	if (b->cap - b->len < 16384) {
		size_t ncap = b->cap ? b->cap * 2 : 65536;
		char *np;

		if (b->len >= limit)
			return -EFBIG;
		np = realloc(b->p, ncap + 1);
		if (!np)
			return -ENOMEM;
		b->p = np;
		b->cap = ncap;
	}
	for (;;) {
		n = recv(fd, b->p + b->len, b->cap - b->len, 0);
		if (n >= 0)
			break;
		if (errno != EAGAIN && errno != EINTR)
			return -errno;
		int r = wait_fd(fd, POLLIN, timeout_ms);

		if (r)
			return r;
	}
	b->len += (size_t)n;
	b->p[b->len] = '\0';
	return n == 0 ? -ENODATA : 0;
}

/* Decodes a chunked body in place: returns 1 when complete, 0 when more is needed. With
 * is_apply false it only checks, so an incomplete body is left as it arrived. */
static int dechunk(char *p, size_t len, bool is_apply, size_t *out_len)
{
	size_t in = 0, out = 0;

	for (;;) {
		char *eol = memmem(p + in, len - in, "\r\n", 2), *endp;
		unsigned long long sz;

		if (!eol)
			return 0;
		errno = 0;
		sz = strtoull(p + in, &endp, 16);
		if (endp == p + in || errno)
			return -EPROTO;
		in = (size_t)(eol - p) + 2;
		if (sz == 0) {
			*out_len = out;
			return 1; /* trailers, if any, are ignored */
		}
		if (sz > len - in || len - in - sz < 2)
			return 0;
		if (is_apply)
			memmove(p + out, p + in, sz);
		out += sz;
		in += sz + 2;
	}
}

static int parse_head(struct ctl_response *r, const char *p, size_t head_len, long long *clen,
		      bool *chunked)
{
	char te[64], cl[32];

	r->head = strndup(p, head_len);
	if (!r->head)
		return -ENOMEM;
	if (sscanf(r->head, "HTTP/1.%*d %d", &r->status) != 1)
		return -EPROTO;
	*chunked = ctl_header_get(r, "transfer-encoding", te, sizeof(te)) == 0 &&
		   strcasestr(te, "chunked");
	*clen = -1;
	if (ctl_header_get(r, "content-length", cl, sizeof(cl)) == 0)
		*clen = strtoll(cl, NULL, 10);
	return 0;
}

static int read_response(int fd, bool is_head, int timeout_ms, struct ctl_response *r)
{
	struct rbuf b = {0};
	char *eoh = NULL;
	size_t hl = 0, blen = 0;
	long long clen;
	bool chunked;
	int rc = 0;

	while (!eoh) {
		rc = rbuf_fill(fd, &b, CTL_HEAD_MAX, timeout_ms);
		if (rc)
			goto out;
		eoh = memmem(b.p, b.len, "\r\n\r\n", 4);
	}
	hl = (size_t)(eoh - b.p) + 4;
	rc = parse_head(r, b.p, hl, &clen, &chunked);
	if (rc || is_head || r->status == 204 || r->status == 304)
		goto out;
	for (;;) {
		size_t have = b.len - hl;

		if (chunked) {
			int d = dechunk(b.p + hl, have, false, &blen);

			if (d == 1)
				d = dechunk(b.p + hl, have, true, &blen);

			if (d < 0 || d == 1) {
				rc = d < 0 ? d : 0;
				break;
			}
		} else if (clen >= 0 && have >= (size_t)clen) {
			blen = (size_t)clen;
			break;
		}
		rc = rbuf_fill(fd, &b, CTL_BODY_MAX, timeout_ms);
		if (rc == -ENODATA && !chunked && clen < 0) {
			blen = b.len - hl;
			rc = 0;
			break;
		}
		if (rc)
			goto out;
	}
	if (rc == 0) {
		r->body = malloc(blen + 1);
		if (!r->body) {
			rc = -ENOMEM;
			goto out;
		}
		memcpy(r->body, b.p + hl, blen);
		r->body[blen] = '\0';
		r->body_len = blen;
	}
out:
	free(b.p);
	return rc == -ENODATA ? -ECONNRESET : rc;
}

int ctl_http(const struct ctl_url *u, const char *method, const char *target,
	     const struct ctl_header *h, size_t nh, int timeout_ms, struct ctl_response *out,
	     char *err, size_t errlen)
{
	char req[CTL_PATH_MAX + 8192];
	size_t n;
	int fd, rc;

	memset(out, 0, sizeof(*out));
	n = (size_t)snprintf(req, sizeof(req),
			     "%s %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: lotactl\r\n"
			     "Connection: close\r\n",
			     method, target, u->hostport);
	for (size_t i = 0; i < nh && n < sizeof(req); i++)
		n +=
		    (size_t)snprintf(req + n, sizeof(req) - n, "%s: %s\r\n", h[i].name, h[i].value);
	if (strcmp(method, "POST") == 0 && n < sizeof(req))
		n += (size_t)snprintf(req + n, sizeof(req) - n, "Content-Length: 0\r\n");
	if (n + 2 >= sizeof(req)) {
		snprintf(err, errlen, "%s %s: request too large", method, target);
		return -E2BIG;
	}
	memcpy(req + n, "\r\n", 3);
	n += 2;
	fd = dial(u, timeout_ms, err, errlen);
	if (fd < 0)
		return fd;
	rc = send_all(fd, req, n, timeout_ms);
	if (rc == 0)
		rc = read_response(fd, strcmp(method, "HEAD") == 0, timeout_ms, out);
	close(fd);
	if (rc) {
		snprintf(err, errlen, "%s: %s %s: %s", u->name, method, target,
			 rc == -EPROTO ? "malformed response" : strerror(-rc));
		ctl_response_free(out);
	}
	return rc;
}

void ctl_response_free(struct ctl_response *r)
{
	free(r->head);
	r->head = NULL;
	free(r->body);
	r->body = NULL;
	r->body_len = 0;
}

int ctl_header_get(const struct ctl_response *r, const char *name, char *out, size_t cap)
{
	size_t nl = strlen(name);

	for (const char *l = r->head ? strstr(r->head, "\r\n") : NULL; l; l = strstr(l, "\r\n")) {
		const char *v, *e;

		l += 2;
		if (strncasecmp(l, name, nl) != 0 || l[nl] != ':')
			continue;
		for (v = l + nl + 1; *v == ' ' || *v == '\t'; v++)
			;
		e = v + strcspn(v, "\r\n");
		while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
			e--;
		if ((size_t)(e - v) >= cap)
			return -ENOSPC;
		memcpy(out, v, (size_t)(e - v));
		out[e - v] = '\0';
		return 0;
	}
	return -ENOENT;
}

int ctl_uri_encode(const char *s, bool keep_slash, char *out, size_t cap)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;

	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		bool plain = isalnum(*p) || strchr("-_.~", *p) || (keep_slash && *p == '/');

		if (o + 4 > cap)
			return -ENOSPC;
		if (plain) {
			out[o++] = (char)*p;
		} else {
			out[o++] = '%';
			out[o++] = hex[*p >> 4];
			out[o++] = hex[*p & 15];
		}
	}
	if (o >= cap)
		return -ENOSPC;
	out[o] = '\0';
	return 0;
}
