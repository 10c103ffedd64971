"""Real S3 clients from Debian driven as subprocesses: aws cli v2 (/usr/bin/aws; another
`aws` may come first on PATH), s3cmd, rclone and curl --aws-sigv4. Names such as cwlota.com
resolve through a hosts file bind-mounted over /etc/hosts in a private mount namespace,
so the machine's own /etc/hosts is never touched."""

import os
import subprocess
import tempfile

AWS = "/usr/bin/aws"
REGION = "us-east-1"


def hosts_file(names, ip="127.0.0.1"):
    f = tempfile.NamedTemporaryFile("w", prefix="hosts-", delete=False)
    f.write("127.0.0.1 localhost\n")
    for n in names:
        f.write(f"{ip} {n}\n")
    f.close()
    return f.name


def in_private_hosts(cmd, names, ip="127.0.0.1"):
    """cmd wrapped so that it runs with `names` resolving to ip."""
    hf = hosts_file(names, ip)
    return ["unshare", "-m", "--propagation", "private", "sh", "-c",
            'mount --bind "$0" /etc/hosts && exec "$@"', hf, *cmd]


def run(cmd, env=None, timeout=300, check=True, input=None):
    p = subprocess.run(cmd, env=env, capture_output=True, timeout=timeout, input=input)
    if check and p.returncode != 0:
        raise AssertionError(f"{cmd[:8]} exited {p.returncode}:\n"
                             f"{p.stderr.decode(errors='replace')[-3000:]}")
    return p


def aws_env(access, secret, style="path", workdir=None):
    workdir = workdir or tempfile.mkdtemp(prefix="awscfg-")
    cfg = os.path.join(workdir, "config")
    with open(cfg, "w") as f:
        f.write(f"[default]\nregion = {REGION}\ns3 =\n  addressing_style = {style}\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_ACCESS_KEY_ID=access, AWS_SECRET_ACCESS_KEY=secret,
               AWS_CONFIG_FILE=cfg, AWS_SHARED_CREDENTIALS_FILE=os.devnull,
               AWS_DEFAULT_REGION=REGION, AWS_PAGER="", AWS_RETRY_MODE="standard",
               AWS_MAX_ATTEMPTS="1")
    return env


def aws(args, endpoint, env, names=("cwlota.com",), **kw):
    cmd = [AWS, "--endpoint-url", endpoint, *args]
    return run(in_private_hosts(cmd, names), env=env, **kw)


def s3cmd_config(path, access, secret, host, virtual=False):
    with open(path, "w") as f:
        f.write("[default]\n"
                f"access_key = {access}\nsecret_key = {secret}\n"
                f"host_base = {host}\n"
                f"host_bucket = {'%(bucket)s.' + host if virtual else host}\n"
                "use_https = False\nsignature_v2 = False\n"
                f"bucket_location = {REGION}\ncheck_ssl_certificate = False\n"
                "multipart_chunk_size_mb = 15\n")
    return path


def s3cmd(args, config, names=("cwlota.com",), **kw):
    return run(in_private_hosts(["s3cmd", "-c", config, *args], names), **kw)


def curl_sigv4(url, access, secret, extra=(), resolve=(), **kw):
    """curl 7.88 --aws-sigv4; it needs an explicit UNSIGNED-PAYLOAD content hash."""
    cmd = ["curl", "-sS", "--fail-with-body", "--aws-sigv4", f"aws:amz:{REGION}:s3",
           "--user", f"{access}:{secret}", "-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD"]
    for r in resolve:
        cmd += ["--resolve", r]
    return run(cmd + list(extra) + [url], **kw)


def rclone_env(access, secret, endpoint, workdir):
    """rclone's remote "lota:" from the environment. rclone 1.60 fails to start while
    AWS_CA_BUNDLE is set (LoadCustomCABundleError): every AWS_ variable is left out."""
    cfg = os.path.join(workdir, "rclone.conf")
    open(cfg, "w").close()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "RCLONE_"))}
    env.update(RCLONE_CONFIG=cfg, RCLONE_CONFIG_LOTA_TYPE="s3",
               RCLONE_CONFIG_LOTA_PROVIDER="Ceph", RCLONE_CONFIG_LOTA_ACCESS_KEY_ID=access,
               RCLONE_CONFIG_LOTA_SECRET_ACCESS_KEY=secret,
               RCLONE_CONFIG_LOTA_ENDPOINT=endpoint, RCLONE_CONFIG_LOTA_REGION=REGION,
               RCLONE_CONFIG_LOTA_FORCE_PATH_STYLE="true")
    return env


def rclone(args, env, names=("cwlota.com",), **kw):
    return run(in_private_hosts(["rclone", "--retries", "1", "--low-level-retries", "1",
                                 *args], names), env=env, **kw)
