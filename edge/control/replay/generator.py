"""``edgelab generate-log``: synthetic CloudFront traffic, deterministic per seed, in the formats the readers take.

The model (all of it drawn from one ``random.Random(seed)``):

- a catalogue of ``catalogue`` objects (pages, scripts, stylesheets, images, video segments, API answers), each
  with a size drawn from a log-normal distribution per kind, and a few (``missing_share``) that the origin
  answers 404;
- popularity: Zipf's law over the catalogue (the object of rank *r* is requested in proportion to ``1/r**zipf``;
  web object popularity follows it with exponents around 0.6-1.0, Breslau et al., "Web caching and Zipf-like
  distributions", INFOCOM 1999);
- edge locations: a few POPs with fixed traffic shares (:data:`LOCATIONS`);
- time: ``duration`` seconds starting at ``start``, arrivals thinned by a diurnal curve (one sine per day, peak
  at 20:00 UTC, trough at half the peak);
- a share of requests with query strings (campaign tags, pages of an API), with cookies (a session), HEAD and
  POST requests;
- the recorded result: the generator's own naive cache per edge location (an object is a ``Miss`` the first time
  it is requested there or once ``ttl`` seconds have passed since, else a ``Hit``; POSTs are ``Miss``, 404s are
  ``Error``): plausible, not CloudFront's model. Replay and what-if compare against it.
"""

from __future__ import annotations

import bisect
import gzip
import itertools
import math
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO
from urllib.parse import quote, unquote

import orjson

from edge.control.replay.records import LEGACY_FIELDS

__all__ = ["LOCATIONS", "GeneratorSpec", "generate", "write_log", "write_log_file"]

# (edge location, share of the traffic)
LOCATIONS = (("IAD89-C1", 0.24), ("FRA56-P5", 0.18), ("NRT57-P2", 0.14), ("LHR61-C2", 0.12), ("SFO5-C3", 0.11),
             ("SIN2-P1", 0.08), ("GRU3-C1", 0.07), ("SYD1-C2", 0.06))
# kind -> (path template, share of the catalogue, median size in bytes, log-normal sigma, content type)
KINDS = (("/index-{i}.html", 0.15, 18_000, 0.6, "text/html"),
         ("/static/js/app-{i}.js", 0.15, 60_000, 0.9, "application/javascript"),
         ("/static/css/site-{i}.css", 0.1, 12_000, 0.7, "text/css"),
         ("/img/photo-{i}.jpg", 0.35, 150_000, 1.0, "image/jpeg"),
         ("/video/seg-{i}.ts", 0.1, 900_000, 0.4, "video/MP2T"),
         ("/api/items/{i}", 0.15, 2_500, 0.8, "application/json"))
USER_AGENTS = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 "
               "Safari/537.36",
               "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
               "Version/17.5 Mobile/15E148 Safari/604.1",
               "Mozilla/5.0 (X11; Linux x86_64; rv:127.0) Gecko/20100101 Firefox/127.0",
               "curl/8.5.0")
_HEADER_BYTES = 350  # response header bytes added to the body for sc-bytes


@dataclass(frozen=True, slots=True)
class GeneratorSpec:
    lines: int = 10_000
    seed: int = 1
    catalogue: int = 5_000
    zipf: float = 0.9
    duration: float = 3600.0
    start: float = 1_767_225_600.0  # 2026-01-01T00:00:00Z
    host: str = "d111111abcdef8.cloudfront.net"
    prefix: str = ""  # put in front of every path (e.g. a behavior's folder on the demo origin)
    query_share: float = 0.15
    cookie_share: float = 0.1
    head_share: float = 0.01
    post_share: float = 0.01
    missing_share: float = 0.01
    ttl: float = 86_400.0
    locations: tuple[tuple[str, float], ...] = LOCATIONS  # (edge location, share)


@dataclass(frozen=True, slots=True)
class _Object:
    path: str
    size: int
    ctype: str
    missing: bool
    api: bool


def _catalogue(rnd: random.Random, spec: GeneratorSpec) -> list[_Object]:
    out = []
    kinds = [k[1] for k in KINDS]
    for i in range(spec.catalogue):
        template, _, median, sigma, ctype = rnd.choices(KINDS, weights=kinds)[0]
        size = max(64, int(rnd.lognormvariate(math.log(median), sigma)))
        out.append(_Object(spec.prefix + template.format(i=i), size, ctype, rnd.random() < spec.missing_share,
                           template.startswith("/api/")))
    rnd.shuffle(out)  # rank order independent of the kind
    return out


def _times(rnd: random.Random, spec: GeneratorSpec) -> list[float]:
    """``spec.lines`` arrival times in [start, start + duration), thinned by the diurnal curve, sorted."""
    out: list[float] = []
    while len(out) < spec.lines:
        t = spec.start + rnd.random() * spec.duration
        hour = (t % 86_400) / 3600
        if rnd.random() <= 0.75 + 0.25 * math.cos((hour - 20) / 24 * 2 * math.pi):
            out.append(t)
    out.sort()
    return out


def generate(spec: GeneratorSpec) -> Iterator[dict[str, str]]:
    """The log's requests in time order, each as field name -> value (the legacy names, ``-`` for empty)."""
    if spec.lines < 0 or spec.catalogue < 1:
        raise ValueError("--lines must be >= 0 and --catalogue >= 1")
    rnd = random.Random(spec.seed)
    objects = _catalogue(rnd, spec)
    cum = list(itertools.accumulate(1.0 / (r ** spec.zipf) for r in range(1, len(objects) + 1)))
    loc_names = [name for name, _ in spec.locations]
    loc_cum = list(itertools.accumulate(share for _, share in spec.locations))
    filled: dict[tuple[str, str], float] = {}
    for n, ts in enumerate(_times(rnd, spec)):
        obj = objects[min(bisect.bisect(cum, rnd.random() * cum[-1]), len(objects) - 1)]
        location = loc_names[min(bisect.bisect(loc_cum, rnd.random() * loc_cum[-1]), len(loc_names) - 1)]
        r = rnd.random()
        method = "POST" if obj.api and r < spec.post_share * 10 else "HEAD" if r > 1 - spec.head_share else "GET"
        query = ""
        if rnd.random() < spec.query_share:
            query = f"page={rnd.randint(1, 5)}" if obj.api else f"utm_source={rnd.choice(('mail', 'ad', 'social'))}"
        cookie = f"session={rnd.getrandbits(48):012x}" if rnd.random() < spec.cookie_share else ""
        ua = rnd.choice(USER_AGENTS)
        pop = location.partition("-")[0]
        if obj.missing:
            status, result, size = 404, "Error", 250
        else:
            status, size = 200, obj.size
            key = (pop, f"{obj.path}?{query}")
            if method == "POST":
                result = "Miss"
            elif key in filled and ts - filled[key] < spec.ttl:
                result = "Hit"
            else:
                filled[key], result = ts, "Miss"
        body = 0 if method == "HEAD" else size
        stamp = time.gmtime(ts)
        yield {"date": time.strftime("%Y-%m-%d", stamp), "time": time.strftime("%H:%M:%S", stamp),
               "x-edge-location": location, "sc-bytes": str(body + _HEADER_BYTES),
               "c-ip": f"198.51.100.{rnd.randint(1, 254)}", "cs-method": method, "cs(Host)": spec.host,
               "cs-uri-stem": obj.path, "sc-status": str(status), "cs(Referer)": "-",
               "cs(User-Agent)": quote(ua, safe="/;:()"), "cs-uri-query": query or "-",
               "cs(Cookie)": quote(cookie, safe="=") if cookie else "-", "x-edge-result-type": result,
               "x-edge-request-id": f"{spec.seed:x}-{n:010d}", "x-host-header": spec.host, "cs-protocol": "https",
               "cs-bytes": str(180 + len(obj.path) + len(query)), "time-taken": "0.010" if result == "Hit" else "0.120",
               "x-forwarded-for": "-", "ssl-protocol": "TLSv1.3", "ssl-cipher": "TLS_AES_128_GCM_SHA256",
               "x-edge-response-result-type": result, "cs-protocol-version": "HTTP/2.0", "fle-status": "-",
               "fle-encrypted-fields": "-", "c-port": str(rnd.randint(1024, 65535)),
               "time-to-first-byte": "0.009" if result == "Hit" else "0.110", "x-edge-detailed-result-type": result,
               "sc-content-type": "text/html" if obj.missing else obj.ctype,
               "sc-content-len": str(size), "sc-range-start": "-", "sc-range-end": "-"}


def _har_entry(rec: dict[str, str]) -> dict[str, object]:
    query = "" if rec["cs-uri-query"] == "-" else "?" + rec["cs-uri-query"]
    headers = [{"name": "User-Agent", "value": unquote(rec["cs(User-Agent)"])}]
    if rec["cs(Cookie)"] != "-":
        headers.append({"name": "Cookie", "value": unquote(rec["cs(Cookie)"])})
    started = f"{rec['date']}T{rec['time']}.000Z"
    return {"startedDateTime": started, "time": float(rec["time-taken"]) * 1000,
            "request": {"method": rec["cs-method"], "url": f"https://{rec['cs(Host)']}{rec['cs-uri-stem']}{query}",
                        "httpVersion": "HTTP/2.0", "headers": headers, "queryString": [], "cookies": [],
                        "headersSize": -1, "bodySize": 0},
            "response": {"status": int(rec["sc-status"]), "statusText": "", "httpVersion": "HTTP/2.0",
                         "headers": [{"name": "X-Cache", "value": f"{rec['x-edge-result-type']} from cloudfront"},
                                     {"name": "X-Amz-Cf-Pop", "value": rec["x-edge-location"]},
                                     {"name": "Content-Type", "value": rec["sc-content-type"]}],
                         "cookies": [], "content": {"size": int(rec["sc-content-len"]),
                                                    "mimeType": rec["sc-content-type"]},
                         "redirectURL": "", "headersSize": -1, "bodySize": int(rec["sc-bytes"]) - _HEADER_BYTES},
            "cache": {}, "timings": {"send": 0, "wait": float(rec["time-to-first-byte"]) * 1000, "receive": 1}}


def write_log(spec: GeneratorSpec, fmt: str, out: BinaryIO | gzip.GzipFile) -> int:
    """Write the generated log to ``out`` in ``fmt`` (``tsv``, ``json`` or ``har``); returns the line count."""
    n = 0
    if fmt == "tsv":
        out.write(b"#Version: 1.0\n#Fields: " + " ".join(LEGACY_FIELDS).encode() + b"\n")
        for n, rec in enumerate(generate(spec), 1):  # noqa: B007 - n is the count written
            out.write("\t".join(rec[f] for f in LEGACY_FIELDS).encode() + b"\n")
    elif fmt == "json":
        for n, rec in enumerate(generate(spec), 1):  # noqa: B007
            out.write(orjson.dumps({k: v for k, v in rec.items() if v != "-"}) + b"\n")
    elif fmt == "har":
        entries = [_har_entry(rec) for rec in generate(spec)]
        n = len(entries)
        out.write(orjson.dumps({"log": {"version": "1.2", "creator": {"name": "edgelab generate-log",
                                                                       "version": "1"},
                                        "entries": entries}}, option=orjson.OPT_INDENT_2))
    else:
        raise ValueError(f"unknown format {fmt!r}: use tsv, json or har")
    return n


def write_log_file(spec: GeneratorSpec, fmt: str, path: Path) -> int:
    """Write to ``path`` (gzip-compressed when it ends with ``.gz``)."""
    if path.suffix == ".gz":
        with gzip.open(path, "wb", compresslevel=5) as gz:
            return write_log(spec, fmt, gz)
    with path.open("wb") as f:
        return write_log(spec, fmt, f)
