/* Durability in batches (issue 13): a commit fdatasync()s its file before the rename;
 * the rename itself is made durable here, by fsync()ing each objects/XX directory that
 * commits renamed into since the last call, for the daemon's commit thread.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cache-int.h"

static int sync_subdir(struct cache *c, int i)
{
	char name[3];
	int fd, err = 0;

	snprintf(name, sizeof(name), "%02x", i);
	fd = openat(c->objfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fsync(fd))
		err = -errno;
	close(fd);
	return err;
}

int cache_sync(struct cache *c)
{
	uint8_t due[sizeof(c->dirty)];
	int n = 0, first = 0;

	pthread_mutex_lock(&c->mu);
	memcpy(due, c->dirty, sizeof(due));
	memset(c->dirty, 0, sizeof(c->dirty));
	pthread_mutex_unlock(&c->mu);
	for (int i = 0; i < 256; i++) {
		int err;

		if (!(due[i / 8] & (1u << (i % 8))))
			continue;
		err = sync_subdir(c, i);
		if (!err) {
			n++;
			continue;
		}
		first = first ? first : err;
		pthread_mutex_lock(&c->mu);
		c->dirty[i / 8] |= (uint8_t)(1u << (i % 8));
		pthread_mutex_unlock(&c->mu);
	}
	return first ? first : n;
}
