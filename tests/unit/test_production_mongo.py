"""With a MongoDB URL, nothing of mongomock is imported, let alone patched."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

PROBE = """
import sys
import main
from storage.mongo import open_client

client = open_client("mongodb://127.0.0.1:1/", 0.1)  # no connection is made here
client.close()
app = main.create_app(main.Settings(mongodb_url="mongodb://127.0.0.1:1/"))
loaded = sorted(m for m in sys.modules if "mongomock" in m)
print(",".join(loaded))
"""


def test_the_production_path_loads_no_mongomock() -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ""
