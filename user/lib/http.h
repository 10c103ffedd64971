/* A strict, bounded HTTP/1.1 parser for request and response heads, and a scanner that
 * finds the end of a chunked body without changing a byte of it. */
#ifndef LOTA_HTTP_H
#define LOTA_HTTP_H

#include <time.h>

#include "http-t.h"

/* Errors: -EAGAIN (incomplete), -EBADMSG (400: malformed or ambiguous framing),
 * -EMSGSIZE (431: head or header count too big), -ENAMETOOLONG (414: request line),
 * -EPROTONOSUPPORT (505: not HTTP/1.x), -ENOTSUP (501: unsupported transfer coding). */
int http_parse_request(const char *buf, size_t len, struct http_msg *m);
/* A response to a request with method `req_method` (HEAD has no body). */
int http_parse_response(const char *buf, size_t len, const struct http_str *req_method,
			struct http_msg *m);
/* The status code an error from the parsers maps to. */
int http_error_status(int err);

/* The first field named name, compared the way the origin compares field names
 * (http_name_eq). */
const struct http_header *http_find(const struct http_msg *m, const char *name);
bool http_str_eq(const struct http_str *s, const char *lit);
bool http_str_ieq(const struct http_str *s, const char *lit);
/* Field names as radosgw (and any CGI-style server) reads them: case-insensitive, with
 * '_' and '-' the same, so that "x_amz_server_side_encryption_customer_key" is the header
 * the origin acts on. Every lookup of a header's meaning goes through this. */
bool http_name_eq(const struct http_str *name, const char *lit);
/* Does the field name start with prefix, compared as http_name_eq does? */
bool http_name_has_prefix(const struct http_str *name, const char *prefix);
/* Does the comma-separated header list contain the token (case-insensitive)? */
bool http_has_token(const struct http_str *value, const char *token);

void http_chunked_init(struct http_chunked *c);
/* Consumes up to len bytes; *used tells how many belong to the body. Returns 1 when
 * the body is complete, 0 when more is needed, -EBADMSG on malformed framing. */
int http_chunked_scan(struct http_chunked *c, const char *buf, size_t len, size_t *used);

const char *http_reason(int status);

/* An HTTP date (IMF-fixdate, RFC 850 or asctime form, RFC 9110 5.6.7) as seconds since
 * the epoch: 0, or -EINVAL if it is none of them. */
int http_parse_date(const char *p, size_t n, time_t *out);

#endif
