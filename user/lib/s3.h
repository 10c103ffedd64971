/* S3 request classification: which bucket and key a request names (path-style or
 * virtual-hosted), and whether it is a plain object read the cache may serve. */
#ifndef LOTA_S3_H
#define LOTA_S3_H

#include <stdbool.h>

#include "http-t.h"

#define S3_BUCKET_MAX 64   /* bucket names are 3..63 bytes */
#define S3_KEY_MAX 1025    /* keys are at most 1024 bytes of UTF-8 */
#define S3_VERSION_MAX 1025

enum s3_op {
	S3_SERVICE,      /* no bucket: ListBuckets */
	S3_BUCKET,       /* a bucket, no key: list, create, delete, policies, ... */
	S3_OBJECT_READ,  /* GET or HEAD of an object, nothing but versionId/partNumber/auth */
	S3_OBJECT_WRITE, /* PUT, POST or DELETE of an object (incl. multipart, copy) */
	S3_OBJECT_OTHER, /* anything else on an object (ACLs, tagging, response-* overrides) */
};

struct s3_req {
	enum s3_op op;
	bool is_head;
	bool is_virtual_host;
	bool is_presigned;
	bool is_multipart_complete; /* POST ?uploadId: completes (or fails) an upload */
	bool is_multi_delete;       /* POST /bucket?delete: DeleteObjects */
	char bucket[S3_BUCKET_MAX];
	char key[S3_KEY_MAX];
	char version_id[S3_VERSION_MAX];
	unsigned part_number;
};

/* Is the Host value (hv) one lotad reads exactly as the origin does? Accepted: empty, an
 * IP literal, one of hosts (case-insensitive), or B.<one of hosts> with B a plain bucket
 * label, each with an optional numeric port. Anything else (a trailing dot, another name,
 * which the origin would take for a bucket of its own) is -EINVAL: refuse the request. */
int s3_check_host(const struct http_str *hv, const char *hosts);
/* hosts: the intercepted names, comma-separated. Returns 0, or -EINVAL when the target
 * cannot be decoded (bad percent-encoding, key or bucket too long). */
int s3_classify(const struct http_msg *m, const char *hosts, struct s3_req *out);
/* Percent-decodes n bytes of src into dst (size cap, NUL-terminated); -EINVAL if bad. */
int s3_pct_decode(const char *src, size_t n, char *dst, size_t cap, bool plus_is_space);
const char *s3_op_name(enum s3_op op);

#endif
