/* lotactl: the operator's CLI for lotad. Talks to lotad's admin API (status, stats,
 * targets, peers, evict, log-level) on its unix socket, or on its TCP admin address with a
 * bearer token, and, for prestage, to its S3 port with the operator's own credentials.
 * Every command prints for people, or JSON with --json. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "adminauth.h"
#include "ctl.h"

#define ADMIN_SOCKET_DEFAULT "/run/lota/admin.sock"
#define ADMIN_DEFAULT "unix:" ADMIN_SOCKET_DEFAULT
#define TOKEN_ENV "LOTA_ADMIN_TOKEN_FILE"
#define TOKEN_DEFAULT "/etc/lota/admin-token"
#define ENDPOINT_DEFAULT "http://cwlota.com"
#define ADMIN_TIMEOUT_MS 10000

struct opts {
	const char *admin;
	const char *token_file; /* NULL: $LOTA_ADMIN_TOKEN_FILE, else TOKEN_DEFAULT if readable */
	const char *endpoint;
	const char *profile;
	const char *sse_c_key_file;
	int concurrency;
	int timeout_s;
	bool is_json;
	bool is_all;
	int argc; /* positional arguments: the command and its operands */
	char *argv[8];
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: lotactl [--admin ADDR [--token-file FILE]] [--json] COMMAND [ARGS]\n"
		"\n"
		"commands:\n"
		"  status                      daemon, health, BPF attachment, cache usage and\n"
		"                              integrity, hit ratio\n"
		"  stats                       every counter and gauge lotad exports\n"
		"  targets list|add|del [IP:PORT]  BPF steering targets\n"
		"  peers                       cluster peers and their health\n"
		"  evict BUCKET/KEY | --all    drop cached objects\n"
		"  log-level [LEVEL]           read or set: error, warn, info, debug\n"
		"  prestage s3://BUCKET/PREFIX  cache every object under a prefix\n"
		"\n"
		"options:\n"
		"  --admin ADDR        lotad's admin API: unix:PATH, or HOST:PORT (default "
		ADMIN_DEFAULT ")\n"
		"  --token-file FILE   with HOST:PORT: the bearer token lotad's admin-token holds\n"
		"                      (default $" TOKEN_ENV ", else " TOKEN_DEFAULT
		" if readable)\n"
		"  --json              print JSON\n"
		"  --endpoint URL      prestage: lotad's S3 URL (default $AWS_ENDPOINT_URL "
		"or " ENDPOINT_DEFAULT ")\n"
		"  --concurrency N     prestage: objects at once (default 8)\n"
		"  --timeout S         prestage: seconds one object may take (default 900)\n"
		"  --profile NAME      prestage: credentials profile (default $AWS_PROFILE or "
		"default)\n"
		"  --sse-c-key-file F  prestage: objects written with this SSE-C key (F holds its\n"
		"                      32 bytes, raw): lotad caches them sealed under it\n"
		"\n"
		"prestage signs with AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY[/AWS_SESSION_TOKEN],\n"
		"else the profile in AWS_SHARED_CREDENTIALS_FILE or ~/.aws/credentials.\n"
		"Exit status: 0 success, 1 failure, 2 usage.\n");
}

static int parse_args(int argc, char **argv, struct opts *o)
{
	const char *ep = getenv("AWS_ENDPOINT_URL_S3");

	if (!ep || !*ep)
		ep = getenv("AWS_ENDPOINT_URL");
	*o = (struct opts){.admin = ADMIN_DEFAULT,
			   .endpoint = ep && *ep ? ep : ENDPOINT_DEFAULT,
			   .concurrency = 8,
			   .timeout_s = 900};
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		bool has_val = i + 1 < argc;

		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			usage(stdout);
			exit(0);
		} else if (strcmp(a, "--json") == 0) {
			o->is_json = true;
		} else if (strcmp(a, "--all") == 0) {
			o->is_all = true;
		} else if (strcmp(a, "--admin") == 0 && has_val) {
			o->admin = argv[++i];
		} else if (strcmp(a, "--token-file") == 0 && has_val) {
			o->token_file = argv[++i];
		} else if (strcmp(a, "--endpoint") == 0 && has_val) {
			o->endpoint = argv[++i];
		} else if (strcmp(a, "--profile") == 0 && has_val) {
			o->profile = argv[++i];
		} else if (strcmp(a, "--sse-c-key-file") == 0 && has_val) {
			o->sse_c_key_file = argv[++i];
		} else if (strcmp(a, "--concurrency") == 0 && has_val) {
			o->concurrency = atoi(argv[++i]);
			if (o->concurrency < 1 || o->concurrency > 256)
				return -EINVAL;
		} else if (strcmp(a, "--timeout") == 0 && has_val) {
			o->timeout_s = atoi(argv[++i]);
			if (o->timeout_s < 1)
				return -EINVAL;
		} else if (a[0] == '-' && a[1]) {
			return -EINVAL;
		} else if (o->argc < (int)(sizeof(o->argv) / sizeof(o->argv[0]))) {
			o->argv[o->argc++] = argv[i];
		} else {
			return -E2BIG;
		}
	}
	return o->argc ? 0 : -EINVAL;
}

/* Where the last admin call went, for the hint after a refusal. */
static struct {
	bool is_tcp;
	const char *token_from; /* NULL: no token was sent */
} sent;

static int admin_url(const char *admin, struct ctl_url *u, char *err, size_t errlen)
{
	if (strncmp(admin, "unix:", 5) == 0)
		return ctl_url_unix(admin + 5, u, err, errlen);
	if (admin[0] == '/')
		return ctl_url_unix(admin, u, err, errlen);
	return ctl_url_parse(admin, "9090", u, err, errlen);
}

/* The token for a TCP admin address: --token-file or $LOTA_ADMIN_TOKEN_FILE must be
 * readable; the default file is used only if it is. *from stays NULL without a token. */
static int load_token(const struct opts *o, char *tok, const char **from, char *err,
		      size_t errlen)
{
	const char *env = getenv(TOKEN_ENV), *path = o->token_file, *what = "--token-file";
	size_t len;

	*from = NULL;
	if (!path && env && *env) {
		path = env;
		what = "$" TOKEN_ENV;
	}
	if (!path) {
		if (access(TOKEN_DEFAULT, R_OK) != 0)
			return 0;
		path = TOKEN_DEFAULT;
		what = "token file";
	}
	if (adminauth_read(what, path, tok, &len, err, errlen) < 0)
		return -1;
	*from = path;
	return 0;
}

static void connect_hint(const char *err)
{
	if (strstr(err, "Permission denied"))
		fprintf(stderr, "lotactl: %s (the admin socket is root's: run lotactl as root, or "
				"use --admin HOST:PORT with --token-file)\n",
			err);
	else if (strstr(err, ": connect: "))
		fprintf(stderr, "lotactl: %s (is lotad running? see --admin)\n", err);
	else
		fprintf(stderr, "lotactl: %s\n", err);
}

/* One admin call; prints the error and returns -1 unless lotad answered. */
static int admin_call(const struct opts *o, const char *method, const char *target,
		      struct ctl_response *resp)
{
	char err[512], tok[ADMINAUTH_TOKEN_MAX + 1], bearer[sizeof(tok) + 8];
	struct ctl_header h = {"Authorization", bearer};
	struct ctl_url u;
	int rc;

	if (admin_url(o->admin, &u, err, sizeof(err))) {
		fprintf(stderr, "lotactl: --admin %s\n", err);
		return -1;
	}
	sent.is_tcp = !u.unix_path[0];
	sent.token_from = NULL;
	if (sent.is_tcp && load_token(o, tok, &sent.token_from, err, sizeof(err))) {
		fprintf(stderr, "lotactl: %s\n", err);
		return -1;
	}
	if (sent.token_from)
		snprintf(bearer, sizeof(bearer), "Bearer %s", tok);
	rc = ctl_http(&u, method, target, &h, sent.token_from ? 1 : 0, ADMIN_TIMEOUT_MS, resp, err,
		      sizeof(err));
	explicit_bzero(tok, sizeof(tok));
	explicit_bzero(bearer, sizeof(bearer));
	if (rc) {
		connect_hint(err);
		return -1;
	}
	return 0;
}

/* After lotad's own message: what to change on this side. */
static void refusal_hint(int status)
{
	if (!sent.is_tcp || (status != 401 && status != 403))
		return;
	if (sent.token_from)
		fprintf(stderr, "lotactl: the token in %s was refused\n", sent.token_from);
	else
		fprintf(stderr, "lotactl: no token was sent: use --token-file FILE (or $" TOKEN_ENV
				"), or the unix socket (--admin unix:" ADMIN_SOCKET_DEFAULT ")\n");
}

/* Prints an admin answer: JSON as is, or flat lines; an error status is a failure. */
static int print_answer(const struct opts *o, struct ctl_response *r, const char *what)
{
	char msg[512];
	int code = r->status == 200 ? 0 : 1;

	if (o->is_json && r->body_len && r->body[0] == '{') {
		fputs(r->body, stdout);
		if (r->body[r->body_len - 1] != '\n')
			fputc('\n', stdout);
	} else if (code) {
		if (ctl_json_get(r->body, "error", msg, sizeof(msg)))
			snprintf(msg, sizeof(msg), "HTTP %d", r->status);
		fprintf(stderr, "lotactl: %s: %s\n", what, msg);
		refusal_hint(r->status);
	} else if (ctl_json_print_flat(stdout, r->body)) {
		fprintf(stderr, "lotactl: %s: unreadable answer from lotad\n", what);
		code = 1;
	}
	ctl_response_free(r);
	return code;
}

static double num(const char *json, const char *path)
{
	char v[64];

	return ctl_json_get(json, path, v, sizeof(v)) ? 0 : strtod(v, NULL);
}

/* num() of prefix + name. */
static double num_at(const char *json, const char *prefix, const char *name)
{
	char path[128];

	snprintf(path, sizeof(path), "%s%s", prefix, name);
	return num(json, path);
}

static void gib(double b, char *out, size_t cap)
{
	snprintf(out, cap, "%.2f GiB", b / (1024.0 * 1024 * 1024));
}

/* The cache's lines: usage, whether its directory is usable, and what verification and
 * the scrubber found. */
static void print_cache(const char *b)
{
	char enabled[8] = "?", dir[512] = "", used[32], cap[32], degraded[8] = "", why[600] = "";
	char verified[32], scrubbed[32];

	ctl_json_get(b, "cache.enabled", enabled, sizeof(enabled));
	if (strcmp(enabled, "true") != 0) {
		printf("cache:     disabled\n");
		return;
	}
	ctl_json_get(b, "cache.dir", dir, sizeof(dir));
	ctl_json_get(b, "cache.degraded", degraded, sizeof(degraded));
	ctl_json_get(b, "cache.degraded_reason", why, sizeof(why));
	gib(num(b, "cache.bytes_used"), used, sizeof(used));
	gib(num(b, "cache.capacity"), cap, sizeof(cap));
	gib(num(b, "cache.verified_bytes"), verified, sizeof(verified));
	gib(num(b, "cache.scrub.bytes"), scrubbed, sizeof(scrubbed));
	printf("cache:     %s, %.0f chunks of %.0f objects, %s of %s (%.1f%%)\n", dir,
	       num(b, "cache.entries"), num(b, "cache.objects"), used, cap,
	       num(b, "cache.capacity") > 0
		   ? 100.0 * num(b, "cache.bytes_used") / num(b, "cache.capacity")
		   : 0.0);
	if (strcmp(degraded, "true") == 0)
		printf("           DEGRADED: %s: reads go to the origin, nothing is cached until "
		       "the directory is usable again\n",
		       why);
	printf("verified:  %.0f chunks (%s) on first read; %.0f corrupt, %.0f lost chunks "
	       "dropped\n",
	       num(b, "cache.verified_chunks"), verified, num(b, "cache.corrupt_chunks"),
	       num(b, "cache.lost_chunks"));
	if (num(b, "cache.scrub.rate") > 0)
		printf("scrubber:  %.1f MiB/s, a pass every %.0f s at most; %.0f passes, %.0f "
		       "chunks (%s) re-verified\n",
		       num(b, "cache.scrub.rate") / (1024.0 * 1024), num(b, "cache.scrub.interval"),
		       num(b, "cache.scrub.passes"), num(b, "cache.scrub.chunks"), scrubbed);
	else
		printf("scrubber:  off (scrub-rate 0)\n");
}

/* With region-origins, bucket-origins or origin-timeouts: each origin, its region, its
 * health and its timeouts. */
static void print_origins(const char *b)
{
	char path[64], url[512], region[80], up[8], dflt[8];

	for (int i = 0; i < 64; i++) {
		snprintf(path, sizeof(path), "origins.list.%d.url", i);
		if (ctl_json_get(b, path, url, sizeof(url)) < 0)
			return;
		snprintf(path, sizeof(path), "origins.list.%d.region", i);
		ctl_json_get(b, path, region, sizeof(region));
		snprintf(path, sizeof(path), "origins.list.%d.up", i);
		ctl_json_get(b, path, up, sizeof(up));
		snprintf(path, sizeof(path), "origins.list.%d.default", i);
		ctl_json_get(b, path, dflt, sizeof(dflt));
		snprintf(path, sizeof(path), "origins.list.%d.", i);
		printf("origin:    %s%s%s%s: %s, %.0f requests, %.0f errors, %.0f timeouts (connect "
		       "%.0f ms, read %.0f ms)\n",
		       url, region[0] ? " (region " : "", region, region[0] ? ")" : "",
		       strcmp(up, "true") == 0 ? "up" : "DOWN", num_at(b, path, "requests"),
		       num_at(b, path, "errors"), num_at(b, path, "timeouts"),
		       num_at(b, path, "connect_timeout_ms"), num_at(b, path, "read_timeout_ms"));
		if (strcmp(dflt, "true") == 0)
			printf("           (the default: buckets of no known region go here)\n");
	}
}

static int cmd_status(const struct opts *o)
{
	struct ctl_response r;
	char listen[256] = "?", origin[512] = "?", attached[8] = "?", pin[256] = "",
	     level[16] = "?", health[1024] = "?";
	const char *b;

	if (admin_call(o, "GET", "/admin/status", &r))
		return 1;
	if (o->is_json || r.status != 200)
		return print_answer(o, &r, "status");
	b = r.body;
	ctl_json_get(b, "listen", listen, sizeof(listen));
	ctl_json_get(b, "origin", origin, sizeof(origin));
	ctl_json_get(b, "health", health, sizeof(health));
	ctl_json_get(b, "bpf.attached", attached, sizeof(attached));
	ctl_json_get(b, "bpf.pin_dir", pin, sizeof(pin));
	ctl_json_get(b, "log_level", level, sizeof(level));
	printf("lotad:     running, pid %.0f, up %.0f s, %.0f workers, log-level %s\n",
	       num(b, "pid"), num(b, "uptime_s"), num(b, "workers"), level);
	printf("health:    %s\n", health);
	printf("listen:    %s -> origin %s\n", listen, origin);
	printf("bpf:       %s%s%s\n", strcmp(attached, "true") == 0 ? "attached" : "not attached",
	       pin[0] ? ", pinned under " : "", pin);
	print_origins(b);
	print_cache(b);
	printf("hit ratio: %.1f%%\n", 100.0 * num(b, "cache.hit_ratio"));
	ctl_response_free(&r);
	return 0;
}

static int cmd_targets(const struct opts *o)
{
	const char *sub = o->argc > 1 ? o->argv[1] : "list";
	char target[512], enc[256];
	struct ctl_response r;

	if (strcmp(sub, "list") == 0) {
		snprintf(target, sizeof(target), "/admin/targets");
	} else if ((strcmp(sub, "add") == 0 || strcmp(sub, "del") == 0) && o->argc == 3 &&
		   ctl_uri_encode(o->argv[2], false, enc, sizeof(enc)) == 0) {
		snprintf(target, sizeof(target), "/admin/targets?%s=%s", sub, enc);
	} else {
		fprintf(stderr, "usage: lotactl targets list|add IP:PORT|del IP:PORT\n");
		return 2;
	}
	if (admin_call(o, strcmp(sub, "list") == 0 ? "GET" : "POST", target, &r))
		return 1;
	return print_answer(o, &r, "targets");
}

/* One line per member: id, state, share of the keys, and what this node sent it. */
static void print_peers(const char *json)
{
	char v[128], path[64];
	static const char *const cols[] = {"id", "state", "share", "sent", "sent_bytes", "fallbacks"};

	if (!ctl_json_get(json, "self", v, sizeof(v)))
		printf("self: %s   (%s membership)\n", v,
		       ctl_json_get(json, "mode", path, sizeof(path)) ? "?" : path);
	printf("%-24s %-10s %6s %10s %14s %10s\n", "MEMBER", "STATE", "KEYS", "SENT", "SENT BYTES",
	       "FALLBACKS");
	for (int i = 0; i < 256; i++) {
		char f[6][128];

		for (int c = 0; c < 6; c++) {
			snprintf(path, sizeof(path), "members.%d.%s", i, cols[c]);
			if (ctl_json_get(json, path, f[c], sizeof(f[c])))
				snprintf(f[c], sizeof(f[c]), "-");
		}
		if (!strcmp(f[0], "-"))
			break;
		printf("%-24s %-10s %5.1f%% %10s %14s %10s\n", f[0], f[1], 100 * strtod(f[2], NULL), f[3],
		       f[4], f[5]);
	}
}

static int cmd_peers(const struct opts *o)
{
	struct ctl_response r;

	if (admin_call(o, "GET", "/admin/peers", &r))
		return 1;
	if (r.status == 404) {
		fprintf(stderr, "lotactl: peers: this lotad is not part of a cluster "
				"(no 'peers' in its config)\n");
		ctl_response_free(&r);
		return 1;
	}
	if (o->is_json || r.status != 200)
		return print_answer(o, &r, "peers");
	print_peers(r.body);
	ctl_response_free(&r);
	return 0;
}

static int cmd_evict(const struct opts *o)
{
	char target[CTL_PATH_MAX * 3 + 64], eb[1024], ek[CTL_PATH_MAX * 3];
	struct ctl_response r;
	const char *arg = o->argc > 1 ? o->argv[1] : NULL, *slash;

	if (o->is_all && !arg) {
		snprintf(target, sizeof(target), "/admin/evict?all=1");
	} else if (!o->is_all && arg && o->argc == 2) {
		if (strncmp(arg, "s3://", 5) == 0)
			arg += 5;
		slash = strchr(arg, '/');
		if (!slash || slash == arg || !slash[1] || (size_t)(slash - arg) >= 256) {
			fprintf(stderr, "lotactl: evict: '%s' is not BUCKET/KEY\n", o->argv[1]);
			return 2;
		}
		snprintf(target, 257, "%.*s", (int)(slash - arg), arg);
		if (ctl_uri_encode(target, false, eb, sizeof(eb)) ||
		    ctl_uri_encode(slash + 1, false, ek, sizeof(ek))) {
			fprintf(stderr, "lotactl: evict: key too long\n");
			return 2;
		}
		snprintf(target, sizeof(target), "/admin/evict?bucket=%s&key=%s", eb, ek);
	} else {
		fprintf(stderr, "usage: lotactl evict BUCKET/KEY | --all\n");
		return 2;
	}
	if (admin_call(o, "POST", target, &r))
		return 1;
	return print_answer(o, &r, "evict");
}

static int cmd_log_level(const struct opts *o)
{
	char target[128], enc[64];
	struct ctl_response r;

	if (o->argc > 2 || (o->argc == 2 && ctl_uri_encode(o->argv[1], false, enc, sizeof(enc)))) {
		fprintf(stderr, "usage: lotactl log-level [error|warn|info|debug]\n");
		return 2;
	}
	snprintf(target, sizeof(target), "/admin/log-level%s%s", o->argc == 2 ? "?level=" : "",
		 o->argc == 2 ? enc : "");
	if (admin_call(o, o->argc == 2 ? "POST" : "GET", target, &r))
		return 1;
	return print_answer(o, &r, "log-level");
}

static int cmd_prestage(const struct opts *o)
{
	struct ctl_prestage_opts p = {.endpoint = o->endpoint,
				      .profile = o->profile,
				      .sse_c_key_file = o->sse_c_key_file,
				      .concurrency = o->concurrency,
				      .timeout_s = o->timeout_s,
				      .is_json = o->is_json};
	char bucket[256];
	const char *u = o->argc == 2 ? o->argv[1] : "", *slash;

	if (strncmp(u, "s3://", 5) != 0 || !u[5]) {
		fprintf(stderr, "usage: lotactl prestage s3://BUCKET[/PREFIX]\n");
		return 2;
	}
	u += 5;
	slash = u + strcspn(u, "/");
	if ((size_t)(slash - u) >= sizeof(bucket)) {
		fprintf(stderr, "lotactl: prestage: bucket name too long\n");
		return 2;
	}
	snprintf(bucket, sizeof(bucket), "%.*s", (int)(slash - u), u);
	p.bucket = bucket;
	p.prefix = *slash ? slash + 1 : "";
	return ctl_prestage(&p);
}

int main(int argc, char **argv)
{
	struct opts o;
	const char *cmd;
	struct ctl_response r;

	if (parse_args(argc, argv, &o)) {
		usage(stderr);
		return 2;
	}
	cmd = o.argv[0];
	if (strcmp(cmd, "status") == 0)
		return cmd_status(&o);
	if (strcmp(cmd, "stats") == 0)
		return admin_call(&o, "GET", "/admin/stats", &r) ? 1
								 : print_answer(&o, &r, "stats");
	if (strcmp(cmd, "targets") == 0)
		return cmd_targets(&o);
	if (strcmp(cmd, "peers") == 0)
		return cmd_peers(&o);
	if (strcmp(cmd, "evict") == 0)
		return cmd_evict(&o);
	if (strcmp(cmd, "log-level") == 0)
		return cmd_log_level(&o);
	if (strcmp(cmd, "prestage") == 0)
		return cmd_prestage(&o);
	fprintf(stderr, "lotactl: unknown command '%s'\n", cmd);
	usage(stderr);
	return 2;
}
