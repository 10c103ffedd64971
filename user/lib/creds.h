/* creds: lotad's service credentials, read from an AWS shared-credentials file
 * (~/.aws/credentials format), and a cheap check that the file changed so that the
 * control thread can reload it. */
#ifndef LOTA_CREDS_H
#define LOTA_CREDS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <time.h>

#define CREDS_FILE_MAX (64 * 1024) /* a credentials file larger than this is refused */
#define CREDS_DEFAULT_PROFILE "default"
#define CREDS_DEFAULT_REGION "us-east-1"
#define CREDS_ERR_MAX 256 /* room for an error message */

struct creds {
	char access_key[128];
	char secret_key[256];
	char session_token[4096]; /* "" when the profile has none */
	char region[64];	  /* CREDS_DEFAULT_REGION when the profile has none */
};

/* Identity of the file a load read: same inode, size and mtime means unchanged. */
struct creds_stamp {
	bool valid;
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime;
};

int creds_parse(const char *text, size_t len, const char *profile, struct creds *out, char *err,
		size_t errlen);
int creds_load(const char *path, const char *profile, struct creds *out, struct creds_stamp *stamp,
	       char *err, size_t errlen);
int creds_changed(const char *path, struct creds_stamp *stamp);
void creds_clear(struct creds *c);

#endif
