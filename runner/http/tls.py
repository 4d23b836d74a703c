"""The trust store, as httpx builds it: certifi's bundle unless SSL_CERT_FILE or SSL_CERT_DIR
says otherwise.

``ssl.create_default_context()`` trusts only the operating system's store, which is empty on
python.org macOS builds before "Install Certificates" and on minimal images; httpx (and so
every other tool a user tries) trusts certifi's bundle. Verification is never switched off.
"""

from __future__ import annotations

import os
import ssl

import certifi


class TrustStoreError(Exception):
    """The CA bundle named by the environment cannot be loaded."""


def default_ssl_context() -> ssl.SSLContext:
    """A verifying client context: SSL_CERT_FILE, else SSL_CERT_DIR, else certifi."""
    cafile = os.environ.get("SSL_CERT_FILE")
    capath = os.environ.get("SSL_CERT_DIR")
    try:
        if cafile:
            ctx = ssl.create_default_context(cafile=cafile)
        elif capath:
            ctx = ssl.create_default_context(capath=capath)
        else:
            ctx = ssl.create_default_context(cafile=certifi.where())
    except (OSError, ssl.SSLError) as exc:
        name, value = (
            ("SSL_CERT_FILE", cafile)
            if cafile
            else (("SSL_CERT_DIR", capath) if capath else ("certifi", certifi.where()))
        )
        wording = getattr(exc, "strerror", None) or str(exc)
        raise TrustStoreError(
            f"cannot load CA certificates from {name}={value}: {wording}"
        ) from None
    # Only HTTP/1.1 is spoken: a server that prefers h2 must not pick it.
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx
