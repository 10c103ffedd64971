/* Strict HTTP/1.1 head parsing (RFC 9112): every line ends in CRLF, no obs-fold, token
 * names, bounded sizes, and one unambiguous body framing, or an error the caller turns
 * into 400/414/431/501/505. Parsed strings point into the caller's buffer. */
#include <errno.h>
#include <string.h>
#include <strings.h>

#include "http.h"
#include "hex.h"

#define LEADING_CRLF_MAX 4

static bool is_tchar(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
		return true;
	return c && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static bool is_vchar_or_obs(unsigned char c)
{
	return (c >= 0x21 && c != 0x7f);
}

bool http_str_eq(const struct http_str *s, const char *lit)
{
	size_t n = strlen(lit);

	return s->n == n && memcmp(s->p, lit, n) == 0;
}

bool http_str_ieq(const struct http_str *s, const char *lit)
{
	size_t n = strlen(lit);

	return s->n == n && strncasecmp(s->p, lit, n) == 0;
}

static unsigned char name_fold(unsigned char c)
{
	if (c == '_')
		return '-';
	return (c >= 'A' && c <= 'Z') ? (unsigned char)(c - 'A' + 'a') : c;
}

static bool name_eq_n(const char *a, const char *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (name_fold((unsigned char)a[i]) != name_fold((unsigned char)b[i]))
			return false;
	return true;
}

bool http_name_eq(const struct http_str *name, const char *lit)
{
	size_t n = strlen(lit);

	return name->n == n && name_eq_n(name->p, lit, n);
}

bool http_name_has_prefix(const struct http_str *name, const char *prefix)
{
	size_t n = strlen(prefix);

	return name->n >= n && name_eq_n(name->p, prefix, n);
}

const struct http_header *http_find(const struct http_msg *m, const char *name)
{
	for (size_t i = 0; i < m->nheaders; i++)
		if (http_name_eq(&m->headers[i].name, name))
			return &m->headers[i];
	return NULL;
}

/* The next element of a comma-separated list from *i on, without blanks: 1 with
 * [*s, *e) set, 0 at the end of the list. Empty elements are skipped. */
static int list_next(const struct http_str *v, size_t *i, size_t *s, size_t *e)
{
	while (*i < v->n) {
		while (*i < v->n && (v->p[*i] == ' ' || v->p[*i] == '\t' || v->p[*i] == ','))
			(*i)++;
		*s = *i;
		while (*i < v->n && v->p[*i] != ',')
			(*i)++;
		*e = *i;
		while (*e > *s && (v->p[*e - 1] == ' ' || v->p[*e - 1] == '\t'))
			(*e)--;
		if (*e > *s)
			return 1;
	}
	return 0;
}

bool http_has_token(const struct http_str *value, const char *token)
{
	size_t tn = strlen(token), i = 0, s, e;

	while (list_next(value, &i, &s, &e))
		if (e - s == tn && strncasecmp(value->p + s, token, tn) == 0)
			return true;
	return false;
}

/* Finds the end of the line starting at buf[off]: returns its length without CRLF and
 * sets *next past the CRLF; -EAGAIN if no LF yet, -EBADMSG for a bare LF or a stray CR. */
static int line_end(const char *buf, size_t len, size_t off, size_t limit, size_t *n, size_t *next)
{
	const char *lf = memchr(buf + off, '\n', len - off);
	size_t l;

	if (!lf)
		return (len - off > limit) ? -EMSGSIZE : -EAGAIN;
	l = (size_t)(lf - (buf + off));
	if (l == 0 || buf[off + l - 1] != '\r')
		return -EBADMSG;
	if (memchr(buf + off, '\r', l - 1))
		return -EBADMSG;
	if (l - 1 > limit)
		return -EMSGSIZE;
	*n = l - 1;
	*next = off + l + 1;
	return 0;
}

static int parse_version(const char *p, size_t n, int *minor)
{
	if (n != 8 || memcmp(p, "HTTP/", 5) != 0 || p[6] != '.')
		return -EBADMSG;
	if (p[5] < '0' || p[5] > '9' || p[7] < '0' || p[7] > '9')
		return -EBADMSG;
	if (p[5] != '1')
		return -EPROTONOSUPPORT;
	*minor = p[7] - '0';
	return 0;
}

static int parse_request_line(const char *p, size_t n, struct http_msg *m)
{
	const char *sp1 = memchr(p, ' ', n), *sp2;
	size_t i;

	if (!sp1 || sp1 == p)
		return -EBADMSG;
	m->method.p = p;
	m->method.n = (size_t)(sp1 - p);
	for (i = 0; i < m->method.n; i++)
		if (!is_tchar((unsigned char)p[i]))
			return -EBADMSG;
	sp2 = memchr(sp1 + 1, ' ', n - (size_t)(sp1 + 1 - p));
	if (!sp2 || sp2 == sp1 + 1)
		return -EBADMSG;
	m->target.p = sp1 + 1;
	m->target.n = (size_t)(sp2 - m->target.p);
	if (m->target.p[0] != '/')
		return -EBADMSG;
	for (i = 0; i < m->target.n; i++)
		if (!is_vchar_or_obs((unsigned char)m->target.p[i]) || m->target.p[i] & 0x80)
			return -EBADMSG;
	return parse_version(sp2 + 1, n - (size_t)(sp2 + 1 - p), &m->version_minor);
}

static int parse_status_line(const char *p, size_t n, struct http_msg *m)
{
	int r;

	if (n < 12 || p[8] != ' ' || (n > 12 && p[12] != ' '))
		return -EBADMSG;
	r = parse_version(p, 8, &m->version_minor);
	if (r < 0)
		return r;
	if (p[9] < '1' || p[9] > '5' || p[10] < '0' || p[10] > '9' || p[11] < '0' || p[11] > '9')
		return -EBADMSG;
	m->status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
	m->reason.p = n > 12 ? p + 13 : p + 12;
	m->reason.n = n > 12 ? n - 13 : 0;
	return 0;
}

static int parse_header(const char *p, size_t n, struct http_msg *m)
{
	const char *colon = memchr(p, ':', n);
	struct http_header *h;
	size_t i, vs, ve;

	if (!colon || colon == p)
		return -EBADMSG;
	if (m->nheaders == HTTP_HEADERS_MAX)
		return -EMSGSIZE;
	h = &m->headers[m->nheaders++];
	h->name.p = p;
	h->name.n = (size_t)(colon - p);
	for (i = 0; i < h->name.n; i++)
		if (!is_tchar((unsigned char)p[i]))
			return -EBADMSG; /* also rejects "Name :" and obs-fold lines */
	vs = h->name.n + 1;
	ve = n;
	while (vs < ve && (p[vs] == ' ' || p[vs] == '\t'))
		vs++;
	while (ve > vs && (p[ve - 1] == ' ' || p[ve - 1] == '\t'))
		ve--;
	for (i = vs; i < ve; i++) {
		unsigned char c = (unsigned char)p[i];

		if (c != '\t' && c != ' ' && !is_vchar_or_obs(c))
			return -EBADMSG;
	}
	h->value.p = p + vs;
	h->value.n = ve - vs;
	return 0;
}

/* Content-Length: 1*DIGIT, possibly repeated (as a list or as several fields) with the
 * same value; anything else is ambiguous framing. */
static int parse_content_length(const struct http_str *v, bool *seen, uint64_t *out)
{
	size_t i = 0;

	if (v->n == 0)
		return -EBADMSG; /* an empty field must not hide behind an earlier one */
	while (i < v->n) {
		uint64_t x = 0;
		size_t digits = 0;

		while (i < v->n && (v->p[i] == ' ' || v->p[i] == '\t'))
			i++;
		while (i < v->n && v->p[i] >= '0' && v->p[i] <= '9') {
			unsigned d = (unsigned)(v->p[i] - '0');

			if (x > (UINT64_MAX - d) / 10)
				return -EBADMSG;
			x = x * 10 + d;
			digits++;
			i++;
		}
		while (i < v->n && (v->p[i] == ' ' || v->p[i] == '\t'))
			i++;
		if (!digits || (i < v->n && v->p[i] != ','))
			return -EBADMSG;
		if (*seen && x != *out)
			return -EBADMSG;
		*seen = true;
		*out = x;
		if (i < v->n)
			i++;
		if (i == v->n && v->p[i - 1] == ',')
			return -EBADMSG;
	}
	return *seen ? 0 : -EBADMSG;
}

/* Is "chunked" the last coding of Transfer-Encoding, and the only time it appears? */
static int te_chunked_last(const struct http_str *v, bool *last_is_chunked, int *count)
{
	size_t i = 0, s, e;

	while (list_next(v, &i, &s, &e)) {
		*last_is_chunked = (e - s == 7 && strncasecmp(v->p + s, "chunked", 7) == 0);
		if (*last_is_chunked)
			(*count)++;
	}
	return 0;
}

struct framing {
	bool has_cl, has_te, te_chunked, conn_close, conn_keep_alive, has_host;
	int chunked_count, host_count;
	uint64_t cl;
};

static int scan_framing(struct http_msg *m, struct framing *f)
{
	for (size_t i = 0; i < m->nheaders; i++) {
		const struct http_header *h = &m->headers[i];

		/* The HTTP layer in front of the origin frames by the exact names only, while
		 * the origin reads "content_length" as the same field: refuse the ambiguity. */
		if (memchr(h->name.p, '_', h->name.n) && (http_name_eq(&h->name, "content-length") ||
							  http_name_eq(&h->name, "transfer-encoding")))
			return -EBADMSG;
		if (http_str_ieq(&h->name, "content-length")) {
			if (parse_content_length(&h->value, &f->has_cl, &f->cl) < 0)
				return -EBADMSG;
		} else if (http_str_ieq(&h->name, "transfer-encoding")) {
			f->has_te = true;
			te_chunked_last(&h->value, &f->te_chunked, &f->chunked_count);
		} else if (http_str_ieq(&h->name, "connection")) {
			f->conn_close |= http_has_token(&h->value, "close");
			f->conn_keep_alive |= http_has_token(&h->value, "keep-alive");
		} else if (http_str_ieq(&h->name, "host")) {
			f->host_count++;
		} else if (http_str_ieq(&h->name, "expect")) {
			m->expect_continue = http_str_ieq(&h->value, "100-continue");
		}
	}
	if (f->chunked_count > 1)
		return -EBADMSG;
	m->keep_alive = m->version_minor >= 1 ? !f->conn_close : (f->conn_keep_alive && !f->conn_close);
	return 0;
}

/* Lines of the head after the first: header fields up to the empty line. */
static int parse_fields(const char *buf, size_t len, size_t off, struct http_msg *m)
{
	for (;;) {
		size_t n, next;
		int r = line_end(buf, len, off, HTTP_HEAD_MAX, &n, &next);

		if (r == -EAGAIN && len >= HTTP_HEAD_MAX)
			return -EMSGSIZE;
		if (r < 0)
			return r;
		if (next > HTTP_HEAD_MAX)
			return -EMSGSIZE;
		if (n == 0) {
			m->head_len = next;
			return 0;
		}
		if (buf[off] == ' ' || buf[off] == '\t')
			return -EBADMSG; /* obs-fold */
		r = parse_header(buf + off, n, m);
		if (r < 0)
			return r;
		off = next;
	}
}

static void msg_reset(struct http_msg *m)
{
	m->nheaders = 0;
	m->head_len = 0;
	m->status = 0;
	m->body = HTTP_BODY_NONE;
	m->content_length = 0;
	m->keep_alive = false;
	m->expect_continue = false;
}

int http_parse_request(const char *buf, size_t len, struct http_msg *m)
{
	struct framing f = {0};
	size_t off = 0, n, next;
	int r, skipped = 0;

	msg_reset(m);
	/* RFC 9112 2.2: a server should ignore empty lines before the request line. */
	while (len - off >= 2 && buf[off] == '\r' && buf[off + 1] == '\n' && skipped++ < LEADING_CRLF_MAX)
		off += 2;
	r = line_end(buf, len, off, HTTP_LINE_MAX, &n, &next);
	if (r == -EMSGSIZE || (r == -EAGAIN && len - off > HTTP_LINE_MAX))
		return -ENAMETOOLONG;
	if (r < 0)
		return r;
	r = parse_request_line(buf + off, n, m);
	if (r < 0)
		return r;
	r = parse_fields(buf, len, next, m);
	if (r < 0)
		return r;
	r = scan_framing(m, &f);
	if (r < 0)
		return r;
	if (f.host_count != 1 && (m->version_minor >= 1 || f.host_count > 1))
		return -EBADMSG;
	if (f.has_te) {
		if (f.has_cl || m->version_minor == 0)
			return -EBADMSG; /* request smuggling shape: refuse, then close */
		if (!f.te_chunked)
			return -ENOTSUP;
		m->body = HTTP_BODY_CHUNKED;
	} else if (f.has_cl) {
		m->body = f.cl ? HTTP_BODY_LENGTH : HTTP_BODY_NONE;
		m->content_length = f.cl;
	}
	return 0;
}

int http_parse_response(const char *buf, size_t len, const struct http_str *req_method,
			struct http_msg *m)
{
	struct framing f = {0};
	size_t n, next;
	int r;

	msg_reset(m);
	r = line_end(buf, len, 0, HTTP_LINE_MAX, &n, &next);
	if (r < 0)
		return r == -EAGAIN && len > HTTP_LINE_MAX ? -EMSGSIZE : r;
	r = parse_status_line(buf, n, m);
	if (r < 0)
		return r;
	r = parse_fields(buf, len, next, m);
	if (r < 0)
		return r;
	r = scan_framing(m, &f);
	if (r < 0)
		return r;
	if (m->status < 200 || m->status == 204 || m->status == 304 || http_str_eq(req_method, "HEAD")) {
		m->body = HTTP_BODY_NONE;
		m->content_length = f.has_cl ? f.cl : 0;
	} else if (f.has_te) {
		m->body = f.te_chunked ? HTTP_BODY_CHUNKED : HTTP_BODY_CLOSE;
		if (f.has_cl)
			m->keep_alive = false;
	} else if (f.has_cl) {
		m->body = f.cl ? HTTP_BODY_LENGTH : HTTP_BODY_NONE;
		m->content_length = f.cl;
	} else {
		m->body = HTTP_BODY_CLOSE;
	}
	if (m->body == HTTP_BODY_CLOSE)
		m->keep_alive = false;
	return 0;
}

int http_error_status(int err)
{
	switch (err) {
	case -EMSGSIZE: return 431;
	case -ENAMETOOLONG: return 414;
	case -EPROTONOSUPPORT: return 505;
	case -ENOTSUP: return 501;
	default: return 400;
	}
}

enum {
	CH_SIZE, CH_BWS, CH_EXT, CH_SIZE_LF, CH_DATA, CH_DATA_CR, CH_DATA_LF,
	CH_TRAILER_START, CH_TRAILER, CH_TRAILER_LF, CH_END_LF, CH_DONE,
};

void http_chunked_init(struct http_chunked *c)
{
	memset(c, 0, sizeof(*c));
	c->state = CH_SIZE;
}

/* A trailer field is held to the rules of a header field: a token name, a colon, then
 * a value without control characters (no obs-fold, no bare CR or LF). */
static int trailer_byte(struct http_chunked *c, unsigned char ch)
{
	if (++c->trailer_len > HTTP_TRAILER_MAX || ch == '\n')
		return -EBADMSG;
	c->line_len++;
	if (ch == '\r') {
		if (!c->digits)
			return -EBADMSG;
		c->state = CH_TRAILER_LF;
		return 0;
	}
	if (!c->digits) {
		if (ch == ':') {
			if (c->line_len == 1)
				return -EBADMSG;
			c->digits = 1;
			return 0;
		}
		return is_tchar(ch) ? 0 : -EBADMSG;
	}
	return (ch == '\t' || ch == ' ' || is_vchar_or_obs(ch)) ? 0 : -EBADMSG;
}

/* One framing byte (not chunk data). Returns 1 when the body ends, 0, or -EBADMSG. */
static int chunked_byte(struct http_chunked *c, unsigned char ch)
{
	int h;

	switch (c->state) {
	case CH_SIZE:
		h = hex_value(ch);
		if (h >= 0) {
			if (++c->digits > 15)
				return -EBADMSG; /* 2^60 bytes is enough; no overflow */
			c->remaining = c->remaining * 16 + (uint64_t)h;
			return 0;
		}
		if (!c->digits)
			return -EBADMSG;
		/* fall through */
	case CH_BWS:
		/* Only whitespace may sit between the size and ';': "1 2" or "1x" are sizes an
		 * origin could read differently from us, which is how bodies get smuggled. */
		if (++c->line_len > HTTP_CHUNK_LINE_MAX)
			return -EBADMSG;
		if (ch == ' ' || ch == '\t')
			c->state = CH_BWS;
		else if (ch == ';')
			c->state = CH_EXT;
		else if (ch == '\r')
			c->state = CH_SIZE_LF;
		else
			return -EBADMSG;
		return 0;
	case CH_EXT:
		if (++c->line_len > HTTP_CHUNK_LINE_MAX || ch == '\n' || (ch < 0x20 && ch != '\t' && ch != '\r'))
			return -EBADMSG;
		if (ch == '\r')
			c->state = CH_SIZE_LF;
		return 0;
	case CH_SIZE_LF:
		if (ch != '\n')
			return -EBADMSG;
		c->digits = 0;
		c->line_len = 0;
		c->state = c->remaining ? CH_DATA : CH_TRAILER_START;
		return 0;
	case CH_DATA_CR:
		if (ch != '\r')
			return -EBADMSG;
		c->state = CH_DATA_LF;
		return 0;
	case CH_DATA_LF:
		if (ch != '\n')
			return -EBADMSG;
		c->state = CH_SIZE;
		return 0;
	case CH_TRAILER_START:
		if (ch == '\r') {
			c->state = CH_END_LF;
			return 0;
		}
		c->state = CH_TRAILER;
		c->line_len = 0;
		c->digits = 0; /* in a trailer line: 1 once the colon was seen */
		/* fall through */
	case CH_TRAILER:
		return trailer_byte(c, ch);
	case CH_TRAILER_LF:
		if (ch != '\n')
			return -EBADMSG;
		c->state = CH_TRAILER_START;
		return 0;
	case CH_END_LF:
		if (ch != '\n')
			return -EBADMSG;
		c->state = CH_DONE;
		return 1;
	}
	return -EBADMSG;
}

int http_chunked_scan(struct http_chunked *c, const char *buf, size_t len, size_t *used)
{
	size_t i = 0;
	int r;

	while (i < len) {
		if (c->state == CH_DONE)
			break;
		if (c->state == CH_DATA) {
			uint64_t take = len - i < c->remaining ? len - i : c->remaining;

			i += (size_t)take;
			c->remaining -= take;
			if (!c->remaining)
				c->state = CH_DATA_CR;
			continue;
		}
		r = chunked_byte(c, (unsigned char)buf[i++]);
		if (r < 0) {
			*used = i;
			return r;
		}
	}
	*used = i;
	return c->state == CH_DONE;
}

int http_parse_date(const char *p, size_t n, time_t *out)
{
	static const char *const forms[] = {"%a, %d %b %Y %H:%M:%S GMT", "%A, %d-%b-%y %H:%M:%S GMT",
					    "%a %b %e %H:%M:%S %Y"};
	char buf[64];

	if (n == 0 || n >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, p, n);
	buf[n] = '\0';
	for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
		struct tm tm;
		const char *end;

		memset(&tm, 0, sizeof(tm));
		end = strptime(buf, forms[i], &tm);
		if (end && *end == '\0') {
			*out = timegm(&tm);
			return 0;
		}
	}
	return -EINVAL;
}

const char *http_reason(int status)
{
	switch (status) {
	case 100: return "Continue";
	case 200: return "OK";
	case 204: return "No Content";
	case 206: return "Partial Content";
	case 304: return "Not Modified";
	case 400: return "Bad Request";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 411: return "Length Required";
	case 413: return "Payload Too Large";
	case 414: return "URI Too Long";
	case 416: return "Range Not Satisfiable";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	case 505: return "HTTP Version Not Supported";
	default: return "Unknown";
	}
}
