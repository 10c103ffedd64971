/* Responses lotad writes itself: S3-style XML errors. */
#ifndef LOTA_REPLY_H
#define LOTA_REPLY_H

#include <stdbool.h>

struct evbuffer;

void reply_error(struct evbuffer *out, int status, const char *code, const char *message,
		 const char *resource, bool close_conn);
/* Appends s to out with XML's five special characters escaped. */
void xml_escape(struct evbuffer *out, const char *s);

#endif
