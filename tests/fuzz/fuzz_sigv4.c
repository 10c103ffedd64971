/* libFuzzer target for user/sigv4.c: the Authorization parser on arbitrary bytes, and the
 * canonical forms built from an arbitrary method, path, query and headers (split out of
 * the input on NUL bytes). Nothing may crash, overflow, or produce unterminated output. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sigv4.h"

/* Next NUL-terminated field of the input, or "" when it is used up. */
static const char *field(char **p, char *end)
{
	char *s = *p;

	if (s >= end)
		return "";
	*p = s + strlen(s) + 1;
	return s;
}

static void check_auth(const uint8_t *data, size_t size)
{
	struct sigv4_auth a;
	char *copy = malloc(size ? size : 1);

	if (!copy)
		return;
	memcpy(copy, data, size);
	if (sigv4_parse_authorization(copy, size, &a) == 0) {
		if (strlen(a.signature) != SIGV4_HEX_LEN || strlen(a.date) != 8 ||
		    !a.access_key[0] || !a.region[0] || !a.service[0] || !a.n_signed_headers ||
		    a.n_signed_headers > SIGV4_MAX_HEADERS)
			abort();
	}
	free(copy);
}

static void check_canonical(const uint8_t *data, size_t size)
{
	struct sigv4_header h[SIGV4_MAX_HEADERS];
	char creq[SIGV4_CANON_MAX], sh[SIGV4_SIGNED_HEADERS_MAX], out[512];
	struct sigv4_signed sig;
	struct sigv4_creds c = {"AKIDEXAMPLE", "secret", NULL};
	char *buf = malloc(size + 1), *p, *end;
	size_t n = 0, cap;
	struct sigv4_request r;

	if (!buf)
		return;
	memcpy(buf, data, size);
	buf[size] = '\0';
	p = buf;
	end = buf + size;
	r.method = field(&p, end);
	r.path = field(&p, end);
	r.query = field(&p, end);
	r.payload_hash = field(&p, end);
	while (p < end && n < SIGV4_MAX_HEADERS) {
		h[n].name = field(&p, end);
		h[n].value = field(&p, end);
		n++;
	}
	r.headers = h;
	r.n_headers = n;
	/* a small cap from the input exercises every -ENOSPC path */
	cap = size ? 1 + data[0] * 64u : sizeof(creq);
	if (cap > sizeof(creq))
		cap = sizeof(creq);
	if (sigv4_canonical_request(&r, creq, cap, sh, sizeof(sh)) == 0 && strlen(creq) >= cap)
		abort();
	sigv4_canonical_uri(r.path, out, sizeof(out));
	sigv4_canonical_query(r.query, out, sizeof(out));
	sigv4_uri_encode(r.path, strlen(r.path), true, out, sizeof(out));
	c.session_token = n ? h[0].value : NULL;
	sigv4_sign(&c, "us-east-1", "s3", r.method, r.path, r.path, r.query, h + (n > 0),
		   n > 0 ? n - 1 : 0, r.payload_hash, 1440938160, &sig);
	free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check_auth(data, size);
	check_canonical(data, size);
	return 0;
}
