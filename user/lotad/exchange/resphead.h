/* Every response head lotad writes itself (errors, local answers, cache hits, 416s), so
 * that they all start, end and close the same way; and S3-style XML errors, so that SDKs
 * show our errors the way they show the origin's. */
#ifndef LOTA_RESPHEAD_H
#define LOTA_RESPHEAD_H

#include <stdbool.h>
#include <stdint.h>

struct evbuffer;

/* "HTTP/1.1 <status> <reason>" and Date, as the origin starts every answer. */
void resphead_start(struct evbuffer *out, int status);
/* Content-Length, "Connection: close" when is_close, and the empty line. */
void resphead_end(struct evbuffer *out, uint64_t content_length, bool is_close);
/* A whole S3-style error: <Error><Code>..</Code><Message>..</Message><Resource>..
 * </Resource><RequestId>..</RequestId></Error>. extra: more header lines (each ending in
 * CRLF) or NULL. */
void resphead_error(struct evbuffer *out, int status, const char *code, const char *message,
		    const char *resource, const char *extra, bool is_close);
/* A whole short answer with a text (or XML, if it starts with '<') body. */
void resphead_text(struct evbuffer *out, int status, const char *extra, const char *body,
		   bool is_close);
/* Appends s to out with XML's five special characters escaped. */
void xml_escape(struct evbuffer *out, const char *s);

#endif
