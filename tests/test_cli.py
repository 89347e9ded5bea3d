"""The console script starts and reports its version."""

import subprocess
import sys

from openk2 import __version__


def test_version_command_prints_package_version() -> None:
    out = subprocess.run(
        [sys.executable, "-c", "from openk2.cli import main; main()", "version"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == __version__
