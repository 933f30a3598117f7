"""Cache keys (contract §5.2) and Vary secondary keys (RFC 9111 §4.1)."""

from __future__ import annotations

import pytest

from edge.cdn.cache.keys import (
    cache_key,
    key_querystring,
    normalize_accept_encoding,
    select_cookies,
    vary_names,
    vary_values,
)
from edge.cdn.config.policies import MANAGED_CACHE_POLICIES, CachePolicy, KeyList

OPTIMIZED = MANAGED_CACHE_POLICIES["658327ea-f89d-4fab-a63d-7e88639e58f6"]
PLAIN = CachePolicy("p", "p")
D = "d111.cloudfront.net"


def key(policy: CachePolicy, uri: str = "/a", qs: str = "", headers: list[tuple[str, str]] | None = None,
        method: str = "GET", domain: str = D) -> str:
    return cache_key(domain, policy, method, uri, qs, headers or [])


class TestQueryStrings:
    @pytest.mark.parametrize(("rule", "qs", "expected"), [
        (KeyList("none"), "a=1&b=2", ""),
        (KeyList("all"), "b=2&a=1", "b=2&a=1"),  # order kept
        (KeyList("whitelist", ("a", "c")), "b=2&a=1&c=3&A=9", "a=1&c=3"),  # case-sensitive names
        (KeyList("allExcept", ("utm",)), "utm=x&id=1&utm=y", "id=1"),
        (KeyList("whitelist", ("a",)), "a=1;b=2", "a=1;b=2"),  # ';' is part of the value
        (KeyList("whitelist", ("flag",)), "flag&x=1", "flag"),
        (KeyList("all"), "", ""),
    ])
    def test_selection(self, rule: KeyList, qs: str, expected: str) -> None:
        assert key_querystring(rule, qs) == expected

    def test_order_matters_in_the_key(self) -> None:
        p = CachePolicy("p", "p", query_strings=KeyList("all"))
        assert key(p, qs="a=1&b=2") != key(p, qs="b=2&a=1")
        assert key(PLAIN, qs="a=1") == key(PLAIN, qs="b=2")  # not in key


class TestHeadersAndCookies:
    def test_whitelisted_headers_names_insensitive_values_sensitive(self) -> None:
        p = CachePolicy("p", "p", headers=KeyList("whitelist", ("X-Device",)))
        assert key(p, headers=[("x-device", "m")]) == key(p, headers=[("X-DEVICE", "m")])
        assert key(p, headers=[("X-Device", "m")]) != key(p, headers=[("X-Device", "M")])
        assert key(p, headers=[("X-Device", "")]) != key(p, headers=[])
        assert key(p, headers=[("X-Other", "1")]) == key(p, headers=[])

    @pytest.mark.parametrize(("rule", "expected"), [
        (KeyList("none"), []),
        (KeyList("all"), [("a", "1"), ("b", "2"), ("z", "3")]),
        (KeyList("whitelist", ("z", "a")), [("a", "1"), ("z", "3")]),
        (KeyList("allExcept", ("b",)), [("a", "1"), ("z", "3")]),
    ])
    def test_cookie_selection_sorted(self, rule: KeyList, expected: list[tuple[str, str]]) -> None:
        assert select_cookies(rule, ["z=3; b=2", "a=1; broken"]) == expected

    def test_cookies_in_key(self) -> None:
        p = CachePolicy("p", "p", cookies=KeyList("whitelist", ("session",)))
        assert key(p, headers=[("Cookie", "session=1; other=x")]) == key(p, headers=[("Cookie", "session=1")])
        assert key(p, headers=[("Cookie", "session=1")]) != key(p, headers=[("Cookie", "session=2")])
        assert key(p, headers=[("Cookie", "Session=1")]) == key(p)  # case-sensitive names


class TestAcceptEncoding:
    @pytest.mark.parametrize(("value", "gzip", "br", "expected"), [
        ("gzip, deflate, br", True, True, "br,gzip"),
        ("br;q=1.0, gzip;q=0.8", True, True, "br,gzip"),
        ("gzip;q=0, br", True, True, "br"),
        ("GZIP", True, True, "gzip"),
        ("deflate, *", True, True, None),
        ("gzip, br", True, False, "gzip"),
        ("gzip, br", False, False, None),
        (None, True, True, None),
        ("gzip;q=abc", True, True, None),
    ])
    def test_normalisation(self, value: str | None, gzip: bool, br: bool, expected: str | None) -> None:
        assert normalize_accept_encoding(value, gzip, br) == expected

    def test_in_key_only_when_enabled(self) -> None:
        a = key(OPTIMIZED, headers=[("Accept-Encoding", "gzip, deflate, br")])
        assert a == key(OPTIMIZED, headers=[("Accept-Encoding", "br,gzip")])
        assert a != key(OPTIMIZED, headers=[("Accept-Encoding", "gzip")])
        assert key(OPTIMIZED) == key(OPTIMIZED, headers=[("Accept-Encoding", "identity")])
        assert key(PLAIN, headers=[("Accept-Encoding", "gzip")]) == key(PLAIN)


class TestPrimaryKey:
    def test_domain_path_and_method(self) -> None:
        assert key(PLAIN, domain="a.net") != key(PLAIN, domain="b.net")
        assert key(PLAIN, uri="/a") != key(PLAIN, uri="/A")
        assert key(PLAIN, method="GET") == key(PLAIN, method="HEAD")
        assert key(PLAIN, method="OPTIONS") != key(PLAIN, method="GET")

    def test_no_ambiguity_between_fields(self) -> None:
        p = CachePolicy("p", "p", query_strings=KeyList("all"), headers=KeyList("whitelist", ("X-A",)))
        assert key(p, qs="h:x-a=1") != key(p, headers=[("X-A", "1")])


class TestVary:
    def test_names(self) -> None:
        assert vary_names([("Vary", "Accept-Language, accept-encoding"), ("vary", "Origin")]) == (
            "accept-encoding", "accept-language", "origin")
        assert vary_names([("Vary", "Origin, *")]) == ("*",)
        assert vary_names([]) == ()

    def test_values(self) -> None:
        names = ("accept-encoding", "accept-language", "x-absent")
        a = vary_values(names, [("Accept-Encoding", "gzip, deflate, br"), ("Accept-Language", "de  ,  en")])
        b = vary_values(names, [("Accept-Encoding", "br,gzip"), ("accept-language", "de , en")])
        assert a == b == ("br,gzip", "de , en", "\x00")
        assert vary_values(("x",), [("X", "")]) != vary_values(("x",), [])
