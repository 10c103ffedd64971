/* Types of the HTTP/1.1 head parser: a parsed head points into the caller's buffer. */
#ifndef LOTA_HTTP_T_H
#define LOTA_HTTP_T_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Bounds on what a peer may send us; hitting one is logged and counted by the caller. */
#define HTTP_HEAD_MAX (64 * 1024)     /* whole head, request or response */
#define HTTP_LINE_MAX (16 * 1024)     /* request line (presigned URLs are long) */
/* Header fields per head: objects may carry hundreds of x-amz-meta-* fields, and every
 * reader of such an object must get them, so the bound is far above what clients send. */
#define HTTP_HEADERS_MAX 512
#define HTTP_CHUNK_LINE_MAX 4096      /* chunk-size line with extensions */
#define HTTP_TRAILER_MAX (16 * 1024)  /* all trailer fields of a chunked body */

struct http_str {
	const char *p;
	size_t n;
};

struct http_header {
	struct http_str name;
	struct http_str value;
};

enum http_body {
	HTTP_BODY_NONE,    /* no body follows the head */
	HTTP_BODY_LENGTH,  /* Content-Length bytes follow */
	HTTP_BODY_CHUNKED, /* chunked transfer coding */
	HTTP_BODY_CLOSE,   /* response delimited by the connection's close */
};

struct http_msg {
	/* request line */
	struct http_str method;
	struct http_str target;
	/* status line */
	int status;
	struct http_str reason;
	int version_minor; /* HTTP/1.<minor> */

	struct http_header headers[HTTP_HEADERS_MAX];
	size_t nheaders;
	size_t head_len; /* bytes up to and including the empty line */

	enum http_body body;
	uint64_t content_length;
	bool keep_alive;
	bool expect_continue;
};

/* Incremental scanner for a chunked body that is passed through unchanged. */
struct http_chunked {
	int state;
	uint64_t remaining; /* data bytes left in the current chunk */
	size_t line_len;    /* bytes of the current size/trailer line */
	size_t trailer_len;
	int digits;
};

#endif
