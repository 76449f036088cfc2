"""The fleet report's HTML in a real browser: rendered from tests/fixtures/report/fleet.json, opened by
headless Chromium (Debian's `chromium`, which `make setup` installs) and screenshotted; the PNG must
be a page, not a blank: many colours, the red of the problems and the green of the healthy parts."""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import struct
import subprocess
import tempfile
import zlib

import pytest

from ansible_collections.blackwell.vllm.plugins.filter.report import fleet_report, fleet_report_html

REPO = pathlib.Path(__file__).resolve().parents[4]
FIXTURE = REPO / "tests" / "fixtures" / "report" / "fleet.json"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
RED = (0xB3, 0x26, 0x1E)
GREEN = (0x1F, 0x7A, 0x3D)

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="no chromium on PATH: `make setup` installs it (apt-get install -y chromium)")


def read_png(path):
    """(width, height, rows of (r, g, b) tuples) of an 8-bit, non-interlaced RGB or RGBA PNG."""
    data = pathlib.Path(path).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, header = 8, b"", None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    width, height, depth, colour, dummy, dummy2, interlace = header
    assert depth == 8 and colour in (2, 6) and interlace == 0, "unexpected PNG format %r" % (header,)
    bpp = 4 if colour == 6 else 3
    raw, stride, prev, rows = zlib.decompress(idat), width * bpp, bytearray(width * bpp), []
    for y in range(height):
        start = y * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1:start + 1 + stride])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b, c = prev[i], prev[i - bpp] if i >= bpp else 0
            if kind == 1:
                line[i] = (line[i] + a) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + b) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + ((a + b) >> 1)) & 0xFF
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
        rows.append([tuple(line[x * bpp:x * bpp + 3]) for x in range(width)])
        prev = line
    return width, height, rows


def near(pixel, colour, tolerance=24):
    return all(abs(p - c) <= tolerance for p, c in zip(pixel, colour))


def test_chromium_renders_the_report(tmp_path):
    results = json.loads(FIXTURE.read_text())
    hostvars = {h: {"__report_node": r, "ansible_host": "10.0.0.%d" % i} for i, (h, r) in enumerate(sorted(results.items()))}
    page = tmp_path / "report.html"
    page.write_text(fleet_report_html(fleet_report(sorted(results), hostvars, generated="2026-12-07 08:55:00 UTC",
                                                   inventory="inventories/dgx-pair")))
    png = tmp_path / "report.png"
    profile = tempfile.mkdtemp(prefix="chromium-", dir=tmp_path)
    argv = [CHROMIUM, "--headless", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--user-data-dir=" + profile, "--screenshot=" + str(png), "--window-size=1400,1000", page.as_uri()]
    if os.geteuid() == 0:
        argv.insert(1, "--no-sandbox")  # Chromium refuses to run as root with its sandbox
    res = subprocess.run(argv, capture_output=True, text=True, timeout=180, check=False)
    assert png.is_file() and png.stat().st_size > 10000, "no screenshot (rc %d): %s" % (res.returncode, res.stderr[-2000:])
    width, height, rows = read_png(png)
    assert (width, height) == (1400, 1000)
    sample = [px for row in rows[::4] for px in row[::4]]
    colours = set(sample)
    assert len(colours) > 50, "a blank page: %d colours" % len(colours)
    assert sum(1 for px in sample if near(px, RED)) > 200, "no red: the problems are not shown in red"
    assert sum(1 for px in sample if near(px, GREEN)) > 50, "no green: the healthy parts are not shown"
    # The header is dark, the body light: a page with its CSS applied, not raw text.
    assert sum(rows[20][700]) < 150 and sum(rows[-20][700]) > 600
    keep = os.environ.get("REPORT_SCREENSHOT")
    if keep:  # a person looks at it: REPORT_SCREENSHOT=/tmp/report.png pytest -k chromium
        shutil.copy(png, keep)
