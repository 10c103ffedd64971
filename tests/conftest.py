"""Fixtures shared by every pytest suite: one real radosgw origin per session, lotad
instances in front of it, and clients that reach cwlota.com without touching the
machine's /etc/hosts."""

import os
import socket
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))

from origin import Origin  # noqa: E402
from lotad import Lotad  # noqa: E402

HOST = "cwlota.com"


@pytest.fixture(scope="session")
def origin(tmp_path_factory):
    o = Origin(tmp_path_factory.mktemp("origin"))
    o.start()
    yield o
    o.stop()


@pytest.fixture
def make_lotad(tmp_path, origin):
    """make_lotad(**config) -> a started Lotad in front of the session's origin."""
    started = []

    def make(origin_url=None, **cfg):
        d = Lotad(tmp_path / f"lotad{len(started)}", origin_url or origin.url, **cfg)
        started.append(d)
        return d.start()

    yield make
    for d in started:
        d.stop()


@pytest.fixture
def lotad(make_lotad):
    return make_lotad()


@pytest.fixture(scope="session", autouse=True)
def resolve_cwlota():
    """In this process, cwlota.com and *.cwlota.com resolve to 127.0.0.1 (boto3,
    urllib); subprocess clients get the same through a private hosts file."""
    real = socket.getaddrinfo

    def getaddrinfo(host, *args, **kw):
        if isinstance(host, str) and (host == HOST or host.endswith("." + HOST)):
            host = "127.0.0.1"
        return real(host, *args, **kw)

    socket.getaddrinfo = getaddrinfo
    yield
    socket.getaddrinfo = real
