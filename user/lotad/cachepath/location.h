/* Bucket locations (region-origins): the route that learns each bucket's home region
 * before its first request goes anywhere, and the "origins" section of lotactl status
 * and /metrics (with region-origins or bucket-origins). */
#ifndef LOTA_LOCATION_H
#define LOTA_LOCATION_H

struct cachepath;

/* Before every other route (the cluster's too), after cachepath_new(). */
int location_register(struct cachepath *cp);

#endif
