/* Buckets the service credentials were refused on (403 to lotad's own GET or HEAD), for a
 * while: their reads are served from what the client's own requests bring (as without
 * service credentials), so that no client is cut because lotad's fill or resume of a
 * chunk is refused where the client itself is allowed. Any thread. */
#ifndef LOTA_SVCDENIED_H
#define LOTA_SVCDENIED_H

#include <stdbool.h>

#define SVCDENIED_SLOTS 64
#define SVCDENIED_TTL_S 60 /* then lotad tries its credentials on the bucket again */

struct svcdenied;

int svcdenied_new(struct svcdenied **out);
void svcdenied_free(struct svcdenied *sd);
/* lotad's own request on bucket got status: a 403 marks the bucket (logged once). */
void svcdenied_note(struct svcdenied *sd, const char *bucket, int status);
/* NULL sd: nothing is marked. */
bool svcdenied_has(struct svcdenied *sd, const char *bucket);

#endif
