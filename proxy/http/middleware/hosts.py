"""DNS-rebinding protection: the Host header must name this server.

A web page cannot read answers from 127.0.0.1 directly, but if its own domain starts resolving
to 127.0.0.1 its requests reach this server as same-origin ones, with that domain in `Host`.
So a Host is accepted only when it is:

* a loopback name (`localhost`, `ip6-localhost`, ...), or the bound host name;
* an IP literal: rebinding needs a domain name, and a page served from an IP address that
  calls this server is cross-origin, which the Origin check refuses;
* listed in `allowed_hosts` (a name, or `name:port` to pin the port too).

The port is not compared for the others: SSH tunnels and container port mappings put another
port in `Host`, and no attack needs a wrong port. A request without Host (HTTP/1.0) is let
through: browsers always send one.
"""

from __future__ import annotations

import ipaddress
from typing import Iterable

import falcon

from proxy.errors import ProxyError

LOOPBACK_NAMES = frozenset({"localhost", "ip6-localhost", "ip6-loopback", "localhost.localdomain"})
_WILDCARD_BINDS = frozenset({"", "0.0.0.0", "::", "*"})


def split_host(value: str) -> tuple[str, str | None]:
    """`Host` -> (lower-case name or IP without brackets, port or None)."""
    value = value.strip().lower()
    if value.startswith("["):
        name, _, rest = value[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else None
    elif value.count(":") == 1:
        name, _, port = value.partition(":")
    else:
        name, port = value, None  # a bare IPv6 literal is not valid in Host; it fails below
    return name.rstrip("."), port or None


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


class HostGuard:
    def __init__(self, bound_host: str, allowed_hosts: Iterable[str] = ()) -> None:
        self.names = set(LOOPBACK_NAMES)
        bound, _ = split_host(bound_host)
        if bound not in _WILDCARD_BINDS:
            self.names.add(bound)
        self.pinned: set[tuple[str, str]] = set()
        for entry in allowed_hosts:
            name, port = split_host(entry)
            if not name:
                continue
            if port:
                self.pinned.add((name, port))
            else:
                self.names.add(name)

    def allows(self, host_header: str) -> bool:
        name, port = split_host(host_header)
        if not name:
            return False
        return name in self.names or (name, port or "") in self.pinned or _is_ip(name)

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        host = req.get_header("Host")
        if host is None or self.allows(host):
            return
        name, _ = split_host(host)
        raise ProxyError(403, f"The Host header `{host[:200]}` does not name this server, so the "
                              f"request was refused (this protects against DNS rebinding from web "
                              f"pages). If you reach the server under that name, start it with "
                              f"--allowed-host {name[:200] or '<name>'}.",
                         code="host_not_allowed")
