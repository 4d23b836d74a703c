"""Headless Chromium for the tests of our HTML pages (the report, the phone preview): one way
to launch it and read its screenshot, shared so both pages are checked the same way.

    from chromium import CHROMIUM, png_pixels, screenshot

Tests skip with a reason when no browser is installed (Debian: apt-get install chromium).
"""

from __future__ import annotations

import shutil
import struct
import subprocess
import zlib
from pathlib import Path

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
SKIP_REASON = (
    "no headless browser installed (Debian: apt-get install chromium); the page is checked without"
)


def screenshot(
    page: Path,
    shot: Path,
    size: tuple[int, int],
    profile: Path,
    *,
    log: bool = False,
    timeout: float = 90,
) -> subprocess.CompletedProcess:
    """Open ``page`` (a local file) in a fresh headless profile, nothing fetched in the
    background, and save a ``size`` screenshot; with ``log`` the page's console goes to stderr
    (a script error reads "Uncaught ...", a console message "CONSOLE")."""
    assert CHROMIUM is not None
    args = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
        f"--screenshot={shot}",
        f"--window-size={size[0]},{size[1]}",
    ]
    if log:
        args += ["--enable-logging=stderr", "--v=0"]
    return subprocess.run([*args, page.as_uri()], capture_output=True, text=True, timeout=timeout)


def png_pixels(data: bytes) -> tuple[int, int, list[bytes]]:
    """Width, height and unfiltered rows of an 8-bit RGB/RGBA PNG (enough for a screenshot)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width = 8, b"", 0
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        chunk = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, colour = struct.unpack(">IIBB", chunk[:10])
            assert depth == 8 and colour in (2, 6)
            bpp = 3 if colour == 2 else 4
        elif kind == b"IDAT":
            idat += chunk
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = width * bpp
    rows, prev = [], bytearray(stride)
    for y in range(height):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        prev = line
    return (
        width,
        height,
        [bytes(r[i : i + 3]) for r in rows[::7] for i in range(0, stride, bpp * 7)],
    )
