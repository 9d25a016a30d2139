"""The man page (conf/gripd.8, installed by `ninja install`) renders without groff warnings and
documents every option `gripd --help` lists, so a new option cannot ship undocumented."""

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from harness.proxy import proxy_command

pytestmark = pytest.mark.gripd_only("gripd's own man page")

MAN = Path(__file__).resolve().parents[2] / "conf" / "gripd.8"


def rendered() -> str:
    env = dict(os.environ, LC_ALL="C.UTF-8", MANWIDTH="200")
    out = subprocess.run(["groff", "-man", "-Tutf8", "-ww", str(MAN)], capture_output=True, text=True,
                         env=env, timeout=20)
    assert out.returncode == 0 and out.stderr == "", out.stderr
    # groff's overstrike bold/underline (x\bx, _\bx) and the Unicode hyphen it may print
    return re.sub(r".\x08", "", out.stdout).replace("\u2010", "-").replace("\u2212", "-")


@pytest.mark.skipif(shutil.which("groff") is None, reason="groff is not installed")
def test_man_page_renders_and_documents_every_option():
    text = rendered()
    usage = subprocess.run(proxy_command() + ["--help"], capture_output=True, text=True, timeout=10).stdout
    options = set(re.findall(r"(?m)^\s+(?:-\w, )?(--[a-z][a-z-]*)", usage))
    assert "--config" in options and "--check-config" in options  # the parse found the list
    words = set(re.findall(r"--[a-z][a-z-]*[a-z]", text))
    assert options - words == set()
    for section in ("NAME", "SYNOPSIS", "OPTIONS", "SIGNALS", "EXIT STATUS", "FILES"):
        assert re.search(rf"(?m)^{section}$", text), section
