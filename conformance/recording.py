"""Recorded evidence: one vcrpy cassette per server, plus a small JSON file beside it.

    DIR/<server>.yaml   every HTTP exchange of the run (vcrpy's format; keys filtered out)
    DIR/<server>.json   the run's metadata: the target, the model used, the suite version,
                        transport errors (vcrpy cannot record a request that got no response)
                        and the fuzz phase's requests, so `--from-cassettes` can replay them

Requests are matched on method, path, the probe name (an `X-Conformance-Probe` header every
request carries) and the JSON body (order-insensitive), never on the URL alone: a suite whose
requests changed does not silently replay stale answers. Bodies larger than
`DIGEST_ABOVE` bytes are stored and matched as a sha256 digest (the oversized-body probe
would otherwise put megabytes into the cassette).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from conformance.exchange import PROBE_HEADER

DIGEST_ABOVE = 64 * 1024
_DIGEST_PREFIX = b"sha256:"
FILTERED_HEADERS = ("authorization", "x-api-key", "api-key", "openai-organization",
                    "openai-project", "cookie", "set-cookie", "proxy-authorization")
MATCH_ON = ("method", "path", "query", "conformance_probe", "json_body")


def cassette_path(directory: Path, server: str) -> Path:
    return Path(directory) / f"{server}.yaml"


def meta_path(directory: Path, server: str) -> Path:
    return Path(directory) / f"{server}.json"


# ---------------------------------------------------------------------------- matchers


def _body_bytes(request: Any) -> bytes:
    body = request.body
    if body is None:
        return b""
    return body.encode("utf-8") if isinstance(body, str) else bytes(body)


def json_body(r1: Any, r2: Any) -> None:
    """Equal JSON (key order ignored), else equal bytes. vcrpy matchers assert."""
    b1, b2 = _body_bytes(r1), _body_bytes(r2)
    try:
        same = json.loads(b1) == json.loads(b2) if b1 and b2 else b1 == b2
    except ValueError:
        same = b1 == b2
    assert same, "the request bodies differ"


def conformance_probe(r1: Any, r2: Any) -> None:
    p1, p2 = r1.headers.get(PROBE_HEADER), r2.headers.get(PROBE_HEADER)
    assert p1 == p2, f"probe {p1!r} != {p2!r}"


def digest_large_body(request: Any) -> Any:
    """before_record_request: a large body becomes `sha256:<hex> (<n> bytes)`."""
    body = _body_bytes(request)
    if len(body) > DIGEST_ABOVE and not body.startswith(_DIGEST_PREFIX):
        request.body = (_DIGEST_PREFIX + hashlib.sha256(body).hexdigest().encode()
                        + f" ({len(body)} bytes)".encode())
    return request


def redact_home(response: dict[str, Any]) -> dict[str, Any]:
    """before_record_response: the recording machine's home directory becomes `~` (servers
    put file paths in their error messages, and recordings get shared)."""
    home = str(Path.home())
    body = response.get("body", {}).get("string")
    if home not in ("", "/") and isinstance(body, (bytes, str)):
        if isinstance(body, bytes):
            response["body"]["string"] = body.replace(home.encode(), b"~")
        else:
            response["body"]["string"] = body.replace(home, "~")
    return response


def make_vcr(directory: Path, recording: bool) -> Any:
    import vcr  # the optional `conformance` extra

    config = vcr.VCR(
        cassette_library_dir=str(directory),
        record_mode="all" if recording else "none",
        match_on=list(MATCH_ON),
        filter_headers=list(FILTERED_HEADERS),
        before_record_request=digest_large_body,
        before_record_response=redact_home,
        decode_compressed_response=True,
    )
    config.register_matcher("json_body", json_body)
    config.register_matcher("conformance_probe", conformance_probe)
    return config


# ---------------------------------------------------------------------------- metadata


@dataclass
class RunMeta:
    """What a recorded run needs besides the exchanges to be re-run offline."""
    target: dict[str, Any]
    model: str | None = None
    suite_version: str = ""
    recorded_at: str = ""
    transport_errors: dict[str, str] = field(default_factory=dict)   # probe -> error
    fuzz_cases: list[dict[str, Any]] = field(default_factory=list)   # probe, mode, operation
    server_header: str | None = None
    options: dict[str, Any] = field(default_factory=dict)   # what shaped the requests

    def to_json(self) -> str:
        return json.dumps(self.__dict__, indent=1, sort_keys=True, ensure_ascii=False) + "\n"

    @classmethod
    def load(cls, path: Path) -> "RunMeta":
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


def recorded_servers(directory: Path) -> Iterator[str]:
    """Server names with both a cassette and a metadata file in `directory`, sorted."""
    for meta in sorted(Path(directory).glob("*.json")):
        if cassette_path(directory, meta.stem).is_file():
            yield meta.stem


def recorded_requests(directory: Path, server: str, base_url: str) -> dict[str, Any]:
    """The requests of a cassette as `Request`s (by probe), to re-send them when replaying."""
    import yaml

    from conformance.exchange import Request

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with cassette_path(directory, server).open("rb") as fh:
        data = yaml.load(fh, Loader=loader) or {}
    found: dict[str, Any] = {}
    for interaction in data.get("interactions") or []:
        request = interaction["request"]
        headers = {k.lower(): (v[0] if isinstance(v, list) else v)
                   for k, v in (request.get("headers") or {}).items()}
        probe = headers.get(PROBE_HEADER.lower())
        uri = request["uri"]
        if not probe or not uri.startswith(base_url):
            continue
        body = request.get("body")
        raw = body.encode("utf-8") if isinstance(body, str) else body
        found[probe] = Request(probe, request["method"], uri[len(base_url):], raw or None,
                               headers.get("content-type"))
    return found
