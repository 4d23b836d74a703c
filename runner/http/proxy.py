"""Which proxy a request goes through, by httpx's rules for HTTP(S)_PROXY, ALL_PROXY, NO_PROXY.

httpx (``trust_env=True``) reads ``urllib.request.getproxies()`` (upper- or lower-case
variables, lower case first), picks the proxy of the target's scheme (``HTTPS_PROXY`` for
https, ``HTTP_PROXY`` for http) falling back to ``ALL_PROXY``, and goes direct for hosts in
``NO_PROXY``: ``*`` disables proxies; ``example.com`` matches it and its subdomains;
``.example.com`` only subdomains; an IP address or ``localhost`` only itself; ``host:port``
only that port; ``http://host`` only that scheme. A proxy value without a scheme is taken as
``http://``. As a small extension, an IP network (``10.0.0.0/8``) matches addresses inside it.

The user:password of a proxy URL becomes a ``Proxy-Authorization: Basic`` header and is kept
nowhere else: a ``Proxy`` shows itself as ``host:port`` only.
"""

from __future__ import annotations

import base64
import ipaddress
import re
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

from runner.errors import CampaignError

__all__ = ["Proxy", "ProxyConfigError", "ProxyRules"]

_DEFAULT_PORTS = {"http": 80, "https": 443}


class ProxyConfigError(CampaignError, ValueError):
    """A proxy setting that cannot be used (unknown scheme, no host): says which variable.
    A CampaignError, so the CLI prints it (with the hint) instead of a traceback."""

    def __init__(self, message: str) -> None:
        super().__init__(
            message,
            hint="proxy URLs look like http://user:password@host:3128; "
            "NO_PROXY lists hosts to reach directly",
            layer="network",
        )


@dataclass(frozen=True)
class Proxy:
    scheme: str  # "http" or "https": how we talk to the proxy itself
    host: str
    port: int
    # Header value, or None; excluded from repr so it is never printed by accident.
    authorization: bytes | None = field(default=None, repr=False, compare=False)

    @property
    def display(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def __str__(self) -> str:
        return self.display

    @classmethod
    def from_url(cls, url: str, source: str = "proxy URL") -> Proxy:
        """``http://user:pass@host:port``; no scheme means http. ``source`` names the setting
        in error texts (which never repeat the URL: it may hold a password)."""
        if "://" not in url:
            url = "http://" + url
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            raise ProxyConfigError(f"{source} is not a valid proxy URL") from None
        scheme = parts.scheme.lower()
        if scheme not in _DEFAULT_PORTS:
            raise ProxyConfigError(
                f"{source} uses a {scheme}:// proxy; only http:// and https:// proxies are "
                "supported (unset it, or add the API host to NO_PROXY)"
            )
        if not parts.hostname:
            raise ProxyConfigError(f"{source} has no host")
        auth = None
        if parts.username is not None:
            pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
            auth = b"Basic " + base64.b64encode(pair.encode("utf-8"))
        return cls(scheme, parts.hostname, port or _DEFAULT_PORTS[scheme], auth)


@dataclass(frozen=True)
class _Bypass:
    scheme: str  # "" = any
    host_regex: re.Pattern[str] | None
    network: ipaddress.IPv4Network | ipaddress.IPv6Network | None
    port: int | None

    def matches(self, scheme: str, host: str, port: int) -> bool:
        if self.scheme and self.scheme != scheme:
            return False
        if self.port is not None and self.port != port:
            return False
        if self.network is not None:
            try:
                return ipaddress.ip_address(host) in self.network
            except ValueError:
                return False
        return self.host_regex is None or bool(self.host_regex.match(host.lower()))


def _bypass(entry: str) -> _Bypass | None:
    scheme = ""
    if "://" in entry:
        scheme, entry = entry.split("://", 1)
        scheme = "" if scheme.lower() == "all" else scheme.lower()
    entry = entry.strip().rstrip("/")
    if not entry:
        return _Bypass(scheme, None, None, None)
    try:  # an address or a network, with or without brackets
        network = ipaddress.ip_network(entry.strip("[]"), strict=False)
        return _Bypass(scheme, None, network, None)
    except ValueError:
        pass
    port = None
    host = entry
    if entry.startswith("["):  # [::1]:8080
        host, _, rest = entry[1:].partition("]")
        if rest.startswith(":") and rest[1:].isdigit():
            port = int(rest[1:])
        try:
            return _Bypass(scheme, None, ipaddress.ip_network(host), port)
        except ValueError:
            return None
    elif entry.count(":") == 1:
        host, _, text = entry.partition(":")
        if not text.isdigit():
            return None
        port = int(text)
    host = host.lower()
    try:
        return _Bypass(scheme, None, ipaddress.ip_network(host), port)
    except ValueError:
        pass
    if host == "localhost":
        regex = re.compile("^localhost$")
    elif host.startswith("*."):
        regex = re.compile(rf"^.+\.{re.escape(host[2:])}$")
    elif host.startswith("."):
        regex = re.compile(rf"^.+{re.escape(host)}$")  # subdomains only
    else:
        regex = re.compile(rf"^(.+\.)?{re.escape(host.lstrip('*'))}$")
    return _Bypass(scheme, regex, None, port)


class ProxyRules:
    """The proxy (or None) for each target; build with ``from_environment()``."""

    def __init__(
        self, proxies: Mapping[str, Proxy], bypass: list[_Bypass], direct: bool = False
    ) -> None:
        self._proxies = dict(proxies)  # "http" / "https" / "all" -> Proxy
        self._bypass = bypass
        self._direct = direct

    @classmethod
    def none(cls) -> ProxyRules:
        return cls({}, [], direct=True)

    @classmethod
    def single(cls, url: str) -> ProxyRules:
        """Every request through one proxy (an explicit setting: NO_PROXY does not apply)."""
        return cls({"all": Proxy.from_url(url, "the proxy setting")}, [])

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> ProxyRules:
        found = urllib.request.getproxies() if environ is None else _from_mapping(environ)
        proxies = {}
        for scheme in ("http", "https", "all"):
            value = (found.get(scheme) or "").strip()
            if value:
                proxies[scheme] = Proxy.from_url(value, f"{scheme.upper()}_PROXY")
        bypass = []
        for entry in (found.get("no") or "").split(","):
            entry = entry.strip()
            if entry == "*":
                return cls.none()
            if entry:
                rule = _bypass(entry)
                if rule is not None:
                    bypass.append(rule)
        return cls(proxies, bypass, direct=not proxies)

    def select(self, scheme: str, host: str, port: int) -> Proxy | None:
        if self._direct:
            return None
        host = host.strip("[]")
        for rule in self._bypass:
            if rule.matches(scheme, host, port):
                return None
        return self._proxies.get(scheme) or self._proxies.get("all")


def _from_mapping(environ: Mapping[str, str]) -> dict[str, str]:
    # urllib's rules on a given mapping: lower case wins over upper case.
    upper: dict[str, str] = {}
    lower: dict[str, str] = {}
    for name, value in environ.items():
        key = name.lower()
        if value and key.endswith("_proxy"):
            (lower if name == key else upper)[key[:-6]] = value
    return {**upper, **lower}
