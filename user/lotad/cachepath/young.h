/* Versions lotad learnt within the second of their Last-Modified (the origin's Date said
 * so). The same bytes written again in that second with other headers (a PUT of the same
 * bytes, a copy in place with new metadata) keep ETag and Last-Modified to the second, so
 * neither our If-None-Match nor our If-Unmodified-Since can see it: such a version's
 * headers are checked once with lotad's own HEAD after that second (objread.c). Shared by
 * the workers; bounded (a slot per version hash, the newer mark wins: a lost mark costs
 * that check, an old one only a HEAD). */
#ifndef LOTA_YOUNG_H
#define LOTA_YOUNG_H

#include <stdbool.h>

struct cache_meta;
struct http_msg;
struct young;

#define YOUNG_SLOTS 4096

int young_new(struct young **out);
void young_free(struct young *y);
/* m was learnt from resp (a 200 or 206 of the origin, or a HEAD's): marks m if resp's Date
 * is within m's Last-Modified second (both readable). */
void young_note(struct young *y, const struct cache_meta *m, const struct http_msg *resp);
/* Is m marked? */
bool young_is(struct young *y, const struct cache_meta *m);
/* m's headers were checked by resp (lotad's HEAD, the same ETag and headers): the mark goes
 * unless resp's Date is still within m's Last-Modified second. */
void young_checked(struct young *y, const struct cache_meta *m, const struct http_msg *resp);
/* m cannot be checked (lotad's HEAD is refused): the mark goes, or every read would ask. */
void young_forget(struct young *y, const struct cache_meta *m);

#endif
