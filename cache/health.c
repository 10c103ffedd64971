/* placeholder */
#include "cache-int.h"
int health_init(struct cache *c) { return 0; }
