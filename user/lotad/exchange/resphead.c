/* The one writer of response heads lotad makes itself. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>

#include "exchange/resphead.h"
#include "http.h"

void xml_escape(struct evbuffer *out, const char *s)
{
	for (; *s; s++) {
		switch (*s) {
		case '<': evbuffer_add(out, "&lt;", 4); break;
		case '>': evbuffer_add(out, "&gt;", 4); break;
		case '&': evbuffer_add(out, "&amp;", 5); break;
		case '"': evbuffer_add(out, "&quot;", 6); break;
		case '\'': evbuffer_add(out, "&apos;", 6); break;
		default: evbuffer_add(out, s, 1); break;
		}
	}
}

void resphead_start(struct evbuffer *out, int status)
{
	char date[64];
	time_t now = time(NULL);
	struct tm tm;

	gmtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
	evbuffer_add_printf(out, "HTTP/1.1 %d %s\r\nDate: %s\r\n", status, http_reason(status), date);
}

/* Says keep-alive too: an HTTP/1.0 client keeps its connection only if told so. */
void resphead_end(struct evbuffer *out, uint64_t content_length, bool is_close)
{
	evbuffer_add_printf(out, "Content-Length: %llu\r\nConnection: %s\r\n\r\n",
			    (unsigned long long)content_length, is_close ? "close" : "keep-alive");
}

void resphead_error(struct evbuffer *out, int status, const char *code, const char *message,
		    const char *resource, const char *extra, bool is_close)
{
	struct evbuffer *body = evbuffer_new();
	char id[32];

	if (!body)
		return;
	snprintf(id, sizeof(id), "lota-%08lx%08x", (unsigned long)time(NULL), (unsigned)random());
	evbuffer_add_printf(body, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>%s</Code><Message>", code);
	xml_escape(body, message);
	evbuffer_add_printf(body, "</Message><Resource>");
	xml_escape(body, resource);
	evbuffer_add_printf(body, "</Resource><RequestId>%s</RequestId></Error>\n", id);
	resphead_start(out, status);
	evbuffer_add_printf(out, "Content-Type: application/xml\r\nx-amz-request-id: %s\r\nServer: lotad\r\n%s",
			    id, extra ? extra : "");
	resphead_end(out, evbuffer_get_length(body), is_close);
	evbuffer_add_buffer(out, body);
	evbuffer_free(body);
}

void resphead_text(struct evbuffer *out, int status, const char *extra, const char *body,
		   bool is_close)
{
	size_t n = strlen(body);

	resphead_start(out, status);
	evbuffer_add_printf(out, "Content-Type: %s\r\n%s", body[0] == '<' ? "application/xml" : "text/plain",
			    extra ? extra : "");
	resphead_end(out, n, is_close);
	evbuffer_add(out, body, n);
}
