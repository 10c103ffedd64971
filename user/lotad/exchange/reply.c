/* S3-style XML error responses, so that SDKs show our errors the way they show the
 * origin's: <Error><Code>..</Code><Message>..</Message>..</Error>. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <event2/buffer.h>

#include "http.h"
#include "exchange/reply.h"

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

void reply_error(struct evbuffer *out, int status, const char *code, const char *message,
		 const char *resource, bool close_conn)
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
	evbuffer_add_printf(out,
			    "HTTP/1.1 %d %s\r\nContent-Type: application/xml\r\nContent-Length: %zu\r\n"
			    "x-amz-request-id: %s\r\nServer: lotad\r\n%s\r\n",
			    status, http_reason(status), evbuffer_get_length(body), id,
			    close_conn ? "Connection: close\r\n" : "");
	evbuffer_add_buffer(out, body);
	evbuffer_free(body);
}
