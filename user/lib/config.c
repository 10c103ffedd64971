/* Config keys, their defaults and parsers in one table, so that the file, the flags
 * and `--help` never disagree. */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config.h"

#define LOTA_VERSION "0.1.0"
#define CONFIG_LINE_MAX 4096

enum key_type { K_STR, K_SIZE, K_UINT, K_BOOL };

struct key {
	const char *name;
	enum key_type type;
	size_t off;
	const char *def;
	const char *help;
};

#define S(f) offsetof(struct config, f)
static const struct key keys[] = {
	{"listen", K_STR, S(listen), "127.0.0.1:8080", "address:port clients connect to"},
	{"origin", K_STR, S(origin), "", "origin URL, http://HOST:PORT or https://HOST:PORT"},
	{"region-origins", K_STR, S(region_origins), "", "REGION=URL,...: each bucket's requests go to its home region's origin (learned with GetBucketLocation)"},
	{"bucket-origins", K_STR, S(bucket_origins), "", "BUCKET=URL,...: these buckets' requests go to that origin"},
	{"origin-timeouts", K_STR, S(origin_timeouts), "", "NAME=CONNECT/READ,...: an origin's own timeouts (NAME: a region of region-origins, or default), e.g. us-west-1=2s/30s or default=500ms/10s"},
	{"host", K_STR, S(host), "cwlota.com", "intercepted name(s), comma-separated; B.<host> is bucket B"},
	{"admin", K_STR, S(admin), "127.0.0.1:9090", "admin address: /healthz, /metrics; /admin/* only with admin-token"},
	{"admin-socket", K_STR, S(admin_socket), "/run/lota/admin.sock", "unix socket (mode 0600) serving the whole admin API to lotactl; empty: none"},
	{"admin-token", K_STR, S(admin_token), "", "file holding the bearer token that opens /admin/* on the admin address (>= 16 bytes, reloaded on change)"},
	{"cache-dir", K_STR, S(cache_dir), "/var/cache/lota", "directory of the object cache"},
	{"workers", K_UINT, S(workers), "0", "worker threads (0: one per core)"},
	{"ca-file", K_STR, S(ca_file), "", "CA bundle to verify an https origin (default: system)"},
	{"log-level", K_STR, S(log_level), "info", "error, warn, info or debug"},
	{"capacity", K_SIZE, S(capacity), "0", "cache capacity (0: 1T clamped to 90% of the filesystem)"},
	{"min-object-size", K_SIZE, S(min_object_size), "4M", "objects smaller than this are not cached"},
	{"chunk-size", K_SIZE, S(chunk_size), "16M", "the cache unit: objects are cached in chunks of this (1M or more, a multiple of 4K)"},
	{"fill-parallelism", K_UINT, S(fill_parallelism), "4", "chunk fills of one object at a time (read-ahead for a reader moving forward)"},
	{"scrub-rate", K_SIZE, S(scrub_rate), "50M", "bytes per second the scrubber re-reads cached chunks to find corruption (0: off)"},
	{"scrub-interval", K_UINT, S(scrub_interval), "3600", "seconds from the start of one scrub pass to the start of the next, at least (0: back to back)"},
	{"service-credentials", K_STR, S(service_credentials), "", "AWS shared-credentials file for lotad's own fills"},
	{"region", K_STR, S(region), "us-east-1", "signing region for lotad's own requests"},
	{"consistency", K_STR, S(consistency), "strong", "strong: every read's ETag is confirmed by the origin"},
	{"bpf", K_STR, S(bpf), "auto", "BPF steering: on, off, or auto (on if it loads)"},
	{"cgroup", K_STR, S(cgroup), "", "cgroup v2 directory to attach to (default: cgroup2 root)"},
	{"bpf-pin-dir", K_STR, S(bpf_pin_dir), "/sys/fs/bpf/lota", "where BPF maps and programs are pinned"},
	{"sockmap", K_BOOL, S(sockmap), "off", "short-circuit local socket pairs with sockmap"},
	{"pin-links", K_BOOL, S(pin_links), "off", "pin BPF links so steering survives a restart"},
	{"steer-to", K_STR, S(steer_to), "", "address:port steered connections go to (default: listen)"},
	{"targets", K_STR, S(targets), "", "static steering targets, IP:PORT,..."},
	{"peers", K_STR, S(peers), "", "peer list HOST:PORT,... or dns:NAME:PORT"},
	{"self", K_STR, S(self), "", "this node's own peer address"},
	{"peer-listen", K_STR, S(peer_listen), "", "address:port for peer traffic"},
	{"cluster-secret", K_STR, S(cluster_secret), "", "file holding the cluster's shared secret"},
	{"splice", K_BOOL, S(splice), "on", "relay big bodies from plain-http upstreams by splice(2)"},
	{"max-connections", K_UINT, S(max_connections), "65536", "client connections at once"},
	{"client-timeout", K_UINT, S(client_timeout), "60", "seconds a client may stay silent"},
	{"origin-timeout", K_UINT, S(origin_timeout), "30", "seconds the origin may stay silent"},
	{"drain-timeout", K_UINT, S(drain_timeout), "30", "seconds requests in progress get to finish on SIGTERM"},
};
/* Sizes with a bound of their own (the others take any uint64_t). */
static const struct {
	size_t off;
	uint64_t max;
} size_max[] = {
	{S(scrub_rate), CONFIG_SCRUB_RATE_MAX},
};
#undef S
#define NKEYS (sizeof(keys) / sizeof(keys[0]))

static uint64_t key_max(const struct key *k)
{
	for (size_t i = 0; i < sizeof(size_max) / sizeof(size_max[0]); i++)
		if (size_max[i].off == k->off)
			return size_max[i].max;
	return UINT64_MAX;
}

int config_parse_size(const char *s, uint64_t *out)
{
	char *end;
	uint64_t v, mult = 1;

	if (*s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return -EINVAL;
	switch (*end) {
	case 'k': case 'K': mult = 1ULL << 10; end++; break;
	case 'm': case 'M': mult = 1ULL << 20; end++; break;
	case 'g': case 'G': mult = 1ULL << 30; end++; break;
	case 't': case 'T': mult = 1ULL << 40; end++; break;
	default: break;
	}
	if (*end == 'i' && mult > 1)
		end++;
	if ((*end == 'b' || *end == 'B') && end[1] == '\0')
		end++;
	if (*end != '\0' || (v && mult > UINT64_MAX / v))
		return -EINVAL;
	*out = v * mult;
	return 0;
}

static int parse_bool(const char *s, bool *out)
{
	static const char *const yes[] = {"on", "true", "yes", "1"};
	static const char *const no[] = {"off", "false", "no", "0"};

	for (size_t i = 0; i < 4; i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*out = true;
			return 0;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*out = false;
			return 0;
		}
	}
	return -EINVAL;
}

static const struct key *key_find(const char *name)
{
	for (size_t i = 0; i < NKEYS; i++)
		if (strcmp(keys[i].name, name) == 0)
			return &keys[i];
	return NULL;
}

static int key_apply(struct config *c, const struct key *k, const char *v, char *err, size_t n)
{
	char *field = (char *)c + k->off;
	uint64_t u;
	int r = 0;

	switch (k->type) {
	case K_STR:
		if (strlen(v) >= CONFIG_STR_MAX) {
			snprintf(err, n, "%s: value longer than %d bytes", k->name, CONFIG_STR_MAX - 1);
			return -EINVAL;
		}
		strcpy(field, v);
		return 0;
	case K_SIZE:
		r = config_parse_size(v, &u);
		if (r == 0 && u > key_max(k)) {
			snprintf(err, n, "%s: '%s' is more than %llu", k->name, v,
				 (unsigned long long)key_max(k));
			return -EINVAL;
		}
		if (r == 0)
			*(uint64_t *)field = u;
		break;
	case K_UINT:
		r = (*v >= '0' && *v <= '9') ? config_parse_size(v, (uint64_t *)field) : -EINVAL;
		break;
	case K_BOOL:
		r = parse_bool(v, (bool *)field);
		break;
	}
	if (r < 0)
		snprintf(err, n, "%s: invalid value '%s'", k->name, v);
	return r;
}

int config_set(struct config *c, const char *key, const char *value, char *err, size_t errlen)
{
	const struct key *k = key_find(key);

	if (!k) {
		snprintf(err, errlen, "unknown key '%s' (see lotad --help)", key);
		return -EINVAL;
	}
	return key_apply(c, k, value, err, errlen);
}

void config_defaults(struct config *c)
{
	char err[256];

	memset(c, 0, sizeof(*c));
	for (size_t i = 0; i < NKEYS; i++)
		key_apply(c, &keys[i], keys[i].def, err, sizeof(err));
}

static char *trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' || e[-1] == '\n'))
		*--e = '\0';
	return s;
}

/* One line of the file: `key = value`, `key value`, blank, or `# comment`. */
static int file_line(struct config *c, char *line, const char *path, int lineno, char *err,
		     size_t errlen)
{
	char *k = trim(line), *v;
	char why[512];
	int r;

	if (*k == '\0' || *k == '#' || *k == ';')
		return 0;
	v = k + strcspn(k, " \t=");
	if (*v != '\0') {
		*v++ = '\0';
		v = trim(v);
		if (*v == '=')
			v = trim(v + 1);
	}
	r = config_set(c, k, v, why, sizeof(why));
	if (r < 0)
		snprintf(err, errlen, "%s:%d: %s", path, lineno, why);
	return r;
}

static int config_file(struct config *c, const char *path, char *err, size_t errlen)
{
	char line[CONFIG_LINE_MAX];
	int lineno = 0, r = 0;
	FILE *f = fopen(path, "r");

	if (!f) {
		snprintf(err, errlen, "config: %s: %s", path, strerror(errno));
		return -EINVAL;
	}
	while (fgets(line, sizeof(line), f)) {
		lineno++;
		if (!strchr(line, '\n') && !feof(f)) {
			snprintf(err, errlen, "%s:%d: line longer than %d bytes", path, lineno,
				 CONFIG_LINE_MAX - 2);
			r = -EINVAL;
			break;
		}
		r = file_line(c, line, path, lineno, err, errlen);
		if (r < 0)
			break;
	}
	fclose(f);
	return r;
}

void config_usage(FILE *out)
{
	fprintf(out, "usage: lotad [--config FILE] [--KEY VALUE ...]\n\n"
		     "lotad, the lota caching proxy for S3. Every key may be set in the config\n"
		     "file as `key = value` or as a flag; flags win.\n\nkeys:\n");
	for (size_t i = 0; i < NKEYS; i++)
		fprintf(out, "  --%-20s %s (default: %s)\n", keys[i].name, keys[i].help,
			*keys[i].def ? keys[i].def : "none");
	fprintf(out, "  --%-20s %s\n  --%-20s %s\n", "config FILE", "read keys from FILE",
		"help, --version", "print this or the version and exit");
}

/* --config is read first wherever it appears, so that flags override the file. */
static int find_config_flag(int argc, char **argv, const char **path)
{
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--config") == 0) {
			if (i + 1 >= argc)
				return -EINVAL;
			*path = argv[i + 1];
		} else if (strncmp(argv[i], "--config=", 9) == 0) {
			*path = argv[i] + 9;
		}
	}
	return 0;
}

int config_load(struct config *c, int argc, char **argv, char *err, size_t errlen)
{
	const char *path = NULL;
	char why[512];
	int r;

	config_defaults(c);
	if (find_config_flag(argc, argv, &path) < 0) {
		snprintf(err, errlen, "config: --config needs a file name");
		return -EINVAL;
	}
	if (path && (r = config_file(c, path, err, errlen)) < 0)
		return r;
	for (int i = 1; i < argc; i++) {
		char *a = argv[i], *eq;
		const char *v;

		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			config_usage(stdout);
			return 1;
		}
		if (strcmp(a, "--version") == 0) {
			printf("lotad %s\n", LOTA_VERSION);
			return 1;
		}
		if (strncmp(a, "--", 2) != 0) {
			snprintf(err, errlen, "config: unexpected argument '%s' (see lotad --help)", a);
			return -EINVAL;
		}
		a += 2;
		eq = strchr(a, '=');
		if (eq) {
			*eq = '\0';
			v = eq + 1;
		} else if (i + 1 < argc) {
			v = argv[++i];
		} else {
			snprintf(err, errlen, "config: %s: missing value", a);
			return -EINVAL;
		}
		r = strcmp(a, "config") == 0 ? 0 : config_set(c, a, v, why, sizeof(why));
		if (eq)
			*eq = '=';
		if (r < 0) {
			snprintf(err, errlen, "config: %s", why);
			return r;
		}
	}
	return 0;
}
