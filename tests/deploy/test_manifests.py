"""deploy/: the Kubernetes manifests validate against the Kubernetes JSON schemas
(offline, with the schemas bundled in the npm package kubernetes-models, installed by
`npm ci` from the committed lockfile into tests/deploy/validator/node_modules); the lotad
config they ship names only keys lotad knows; CoreDNS and the config agree on the VIP;
the Grafana dashboard parses and names only metrics a running lotad exports; the
Dockerfile installs the same runtime packages as scripts/install.sh; the admin API is
not on the network (the admin port only to Prometheus, the unix socket on a hostPath)."""

import glob
import json
import os
import re
import shutil
import subprocess

import pytest
import yaml  # python3-yaml: ceph-common, which scripts/deps.sh installs, depends on it

from lotad import BUILD, TOP

DEPLOY = os.path.join(TOP, "deploy")
VALIDATOR = os.path.join(TOP, "tests", "deploy", "validator")
MANIFESTS = sorted(glob.glob(os.path.join(DEPLOY, "kubernetes", "*.yaml")))


@pytest.fixture(scope="module")
def validator():
    npm = shutil.which("npm")
    assert npm and shutil.which("node"), "node and npm are needed (Debian: nodejs npm)"
    p = subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
                       cwd=VALIDATOR, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr

    def validate(*files):
        return subprocess.run(["node", os.path.join(VALIDATOR, "validate.mjs"), *files],
                              capture_output=True, text=True, timeout=120)
    return validate


def test_manifests_validate(validator, tmp_path):
    kinds = {"Namespace", "ConfigMap", "Secret", "DaemonSet", "Service", "NetworkPolicy", "Job"}
    p = validator(*MANIFESTS)
    assert p.returncode == 0, p.stdout + p.stderr
    ok = [ln for ln in p.stdout.splitlines() if ln.startswith("ok ")]
    assert len(ok) >= len(MANIFESTS)
    assert kinds <= {ln.split()[3] for ln in ok}, p.stdout

    # The validator knows the schema: a wrong type and an unknown kind are refused.
    with open(os.path.join(DEPLOY, "kubernetes", "daemonset.yaml")) as f:
        ds = f.read()
    bad = tmp_path / "bad.yaml"
    bad.write_text(ds.replace("hostNetwork: true", 'hostNetwork: "yes"') +
                   "---\napiVersion: apps/v1\nkind: Daemonset\nmetadata: {name: x}\n")
    p = validator(str(bad))
    assert p.returncode == 1
    assert "hostNetwork must be boolean" in p.stdout and "unknown apiVersion/kind" in p.stdout


def lotad_keys():
    out = subprocess.run([os.path.join(BUILD, "lotad"), "--help"], capture_output=True,
                         text=True).stdout
    return set(re.findall(r"^  --([a-z-]+)\s", out, re.M)) - {"config", "help"}


def shipped_config():
    with open(os.path.join(DEPLOY, "kubernetes", "configmap.yaml")) as f:
        text = f.read()
    body = text.split("lotad.conf: |", 1)[1]
    return dict(re.findall(r"^    ([a-z-]+) = (.*)$", body, re.M))


def test_shipped_config_and_dns_agree():
    cfg = shipped_config()
    assert set(cfg) <= lotad_keys(), set(cfg) - lotad_keys()
    with open(os.path.join(DEPLOY, "kubernetes", "daemonset.yaml")) as f:
        args = re.findall(r"^            - --([a-z-]+)$", f.read(), re.M)
    assert set(args) - {"config"} <= lotad_keys()

    with open(os.path.join(DEPLOY, "kubernetes", "coredns.yaml")) as f:
        corefile = f.read()
    vip = cfg["targets"].rsplit(":", 1)[0]
    assert f"IN A {vip}" in corefile
    match = re.search(r'match "([^"]+)"', corefile).group(1).replace("\\\\", "\\")
    for name, want in (("cwlota.com.", True), ("bkt.cwlota.com.", True),
                       ("a.b.cwlota.com.", True), ("evilcwlota.com.", False),
                       ("cwlota.com.evil.", False)):
        assert bool(re.match(match, name)) == want, name


def test_dashboard_names_only_exported_metrics(lotad):
    with open(os.path.join(DEPLOY, "grafana", "lota-dashboard.json")) as f:
        dash = json.load(f)
    exprs = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
    exprs += [v["query"] for v in dash["templating"]["list"] if v["type"] == "query"]
    used = set(re.findall(r"\blota_[a-z0-9_]+", " ".join(exprs)))
    exported = {"lota_" + k.split("{")[0] for k in lotad.metrics()}
    assert used and used <= exported, used - exported
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))
    titles = " ".join(p["title"].lower() for p in dash["panels"])
    for what in ("hit ratio", "cache vs origin", "fills", "evictions", "nodes", "bpf"):
        assert what in titles, what


def test_dockerfile_repeats_install_packages():
    with open(os.path.join(TOP, "scripts", "install.sh")) as f:
        sh = f.read()
    runtime = set(re.search(r"runtime_pkgs=\(([^)]*)\)", sh).group(1).split())
    build = set(re.search(r"build_pkgs=\(([^)]*)\)", sh).group(1).split())
    with open(os.path.join(DEPLOY, "Dockerfile")) as f:
        stages = f.read().split("\nFROM ")[1:]
    assert len(stages) == 2 and stages[0].startswith("debian:12 AS build")
    assert stages[1].startswith("debian:12")
    words = lambda s: set(re.findall(r"[a-z0-9][a-z0-9.+-]+", s))  # noqa: E731
    assert build <= words(stages[0]), build - words(stages[0])
    assert runtime <= words(stages[1]), runtime - words(stages[1])
    assert "make -j" in stages[0] and "/usr/local/bin/" in stages[1]


def manifest(name):
    with open(os.path.join(DEPLOY, "kubernetes", name)) as f:
        return yaml.safe_load(f)


def test_admin_api_not_on_the_network():
    """The admin port faces only Prometheus (and serves only /healthz and /metrics
    without admin-token); the admin API is the unix socket, on a writable hostPath mount
    at the directory admin-socket names, so kubectl exec and the node's root reach it."""
    cfg = shipped_config()
    sock_dir = os.path.dirname(cfg["admin-socket"])
    ds = manifest("daemonset.yaml")
    pod = ds["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
    assert sock_dir in mounts and not mounts[sock_dir].get("readOnly"), mounts
    vols = {v["name"]: v for v in pod["volumes"]}
    assert vols[mounts[sock_dir]["name"]]["hostPath"]["path"] == sock_dir
    assert c["securityContext"]["readOnlyRootFilesystem"] is True

    args = c["args"]
    admin_port = int(args[args.index("--admin") + 1].rsplit(":", 1)[1])
    annotations = ds["spec"]["template"]["metadata"]["annotations"]
    assert int(annotations["prometheus.io/port"]) == admin_port
    assert annotations["prometheus.io/path"] == "/metrics"
    for probe in ("readinessProbe", "livenessProbe"):
        assert c[probe]["httpGet"] == {"path": "/healthz", "port": admin_port}

    # Who may reach the admin port: the Prometheus pods only.
    rules = manifest("networkpolicy.yaml")["spec"]["ingress"]
    opening = [r for r in rules if admin_port in [p["port"] for p in r.get("ports", [])]]
    assert len(opening) == 1, opening
    (src,) = opening[0]["from"]
    assert src["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": "prometheus"}
    assert "namespaceSelector" in src
    for r in rules:
        if "from" not in r:  # open to every pod: never the admin port
            assert admin_port not in [p["port"] for p in r["ports"]], r

    # admin-token is opt-in: the Secret ships no placeholder (one applied as is would be
    # a valid token), and the commented config line names the Secret's mount.
    assert "admin-token" not in cfg
    assert "admin-token" not in manifest("secret.yaml")["stringData"]
    with open(os.path.join(DEPLOY, "kubernetes", "configmap.yaml")) as f:
        line = re.search(r"^    # admin-token = (\S+)$", f.read(), re.M)
    assert line and os.path.dirname(line.group(1)) in mounts, line
