#!/usr/bin/python3
"""Holds the C sources to the layers the README and DESIGN describe, from their
#include lines (a C file cannot call what no header it includes declares):

  user/lib             pure libraries: libc, OpenSSL and each other only (no libevent)
  cache, bpf           themselves and user/lib (bpf/: libbpf and the generated skeleton)
  user/lotad/lotad.h,  the exchange core: user/lib and the core; never a module
  user/lotad/exchange
  user/lotad/admin     the admin endpoint: user/lib, the core and itself
  user/lotad/cachepath user/lib, cache, the core, admin, itself
  user/lotad/cluster   user/lib, cache, the core, admin, cachepath, itself
  user/lotad/*.c       main and the daemon's wiring: anything above
  user/lotactl         user/lib and itself only

and finds every circle among modules (a module: foo.c with its foo.h and foo-int.h;
foo-t.h, types only, is a leaf). With a build directory (check-layers.py BUILD), it also reads the objects'
symbols (nm): a file that calls a function another file defines depends on it, even
when both declare it in one shared header, and no circle may form that way either.
Prints each breach with its file and line; exits 1 if there is any. Run from the top of
the tree (make test does)."""

import os
import re
import subprocess
import sys

ROOTS = ["user", "cache", "bpf"]
INC = re.compile(r'^\s*#\s*include\s+([<"])([^>"]+)[>"]')
SYSTEM_OK = {
    "user/lib": ("openssl/",),
    "cache": (),
    "bpf": ("bpf/", "linux/"),
}
# Who may include whom, by layer. A layer's own files are always allowed.
ALLOWED = {
    "lib": {"lib"},
    "cache": {"lib"},
    "bpf": {"lib", "build"},
    "core": {"lib"},
    "admin": {"lib", "core"},
    "cachepath": {"lib", "cache", "core", "admin"},
    "cluster": {"lib", "cache", "core", "admin", "cachepath"},
    "top": {"lib", "cache", "bpf", "core", "admin", "cachepath", "cluster", "top"},
    "lotactl": {"lib"},
}


def layer_of(path):
    if path.startswith("user/lib/"):
        return "lib"
    if path.startswith("cache/"):
        return "cache"
    if path.startswith("bpf/"):
        return "bpf"
    if path == "user/lotad/lotad.h" or path.startswith("user/lotad/exchange/"):
        return "core"
    for sub in ("admin", "cachepath", "cluster"):
        if path.startswith("user/lotad/%s/" % sub):
            return sub
    if path.startswith("user/lotad/"):
        return "top"
    if path.startswith("user/lotactl/"):
        return "lotactl"
    return None


def sources():
    for root in ROOTS:
        for dirpath, _, files in os.walk(root):
            for f in sorted(files):
                if f.endswith((".c", ".h")) and not f.endswith(".bpf.c"):
                    yield os.path.join(dirpath, f)


def resolve(includer, name, known):
    """The file an include "name" names, as the compiler finds it (-I list of the
    Makefile: the includer's own folder first), or None if generated or unknown."""
    for base in (os.path.dirname(includer), "user/lib", "cache", "bpf", "user/lotad"):
        p = os.path.normpath(os.path.join(base, name))
        if p in known:
            return p
    return None


def module_of(path):
    """foo.c, foo.h and foo-int.h are one module; a types header (foo-t.h) is a leaf of
    its own, as it declares no function."""
    stem = os.path.basename(path)
    stem = re.sub(r"(-int)?\.[ch]$", "", stem)
    return os.path.join(os.path.dirname(path), stem)


def find_circles(edges):
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def symbol_edges(build):
    """file -> files whose functions or data it uses, from the objects of user/."""
    defs, uses = {}, {}
    objs = []
    for dirpath, _, files in os.walk(os.path.join(build, "user")):
        objs += [os.path.join(dirpath, f) for f in files if f.endswith(".o")]
    for o in sorted(objs):
        src = os.path.relpath(o, build)[:-2] + ".c"
        out = subprocess.run(["nm", o], capture_output=True, text=True, check=True).stdout
        for line in out.splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[0] == "U":
                uses.setdefault(src, set()).add(parts[1])
            elif len(parts) == 3 and parts[1] in "TDBR":
                defs[parts[2]] = src
    edges = {}
    for src, names in uses.items():
        for n in names:
            t = defs.get(n)
            if t and t != src:
                edges.setdefault(src, set()).add(t)
    return edges, len(objs)


def main():
    known = set(sources())
    errors, edges = [], {}
    for path in sorted(known):
        lay = layer_of(path)
        if lay is None:
            continue
        with open(path, errors="replace") as f:
            for lineno, line in enumerate(f, 1):
                m = INC.match(line)
                if not m:
                    continue
                kind, name = m.groups()
                where = "%s:%d" % (path, lineno)
                if kind == "<":
                    if lay == "lib" and name.startswith("event2/"):
                        errors.append("%s: user/lib must not use libevent (<%s>)" % (where, name))
                    continue
                target = resolve(path, name, known)
                if target is None:
                    if lay in ("bpf", "core", "top", "cachepath", "cluster", "admin") and \
                            name.endswith(".skel.h"):
                        if lay != "bpf":
                            errors.append("%s: only bpf/ includes the skeleton (%s)" % (where, name))
                        continue
                    if name in ("unit.h",):
                        continue
                    errors.append("%s: \"%s\" is no file of the tree" % (where, name))
                    continue
                tl = layer_of(target)
                if os.path.basename(target) == "main.c" or target.endswith("/main.h"):
                    errors.append("%s: nothing includes main (%s)" % (where, target))
                if tl != lay and tl not in ALLOWED[lay]:
                    errors.append("%s: %s (%s) may not include %s (%s)" % (where, path, lay, target, tl))
                a, b = module_of(path), module_of(target)
                if a != b:
                    edges.setdefault(a, set()).add(b)
    for comp in find_circles(edges):
        errors.append("circle of modules: " + " -> ".join(comp))
    nobj = 0
    if len(sys.argv) > 1:
        calls, nobj = symbol_edges(sys.argv[1])
        for comp in find_circles(calls):
            errors.append("circle of calls between files: " + " -> ".join(comp))
    for e in errors:
        print(e)
    n = len(known)
    if errors:
        print("check-layers: %d breach(es) in %d files" % (len(errors), n))
        return 1
    print("check-layers: %d files%s, layers held, no circle" %
          (n, " and %d objects" % nobj if nobj else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
