"""The JavaScript spec passes the shared vectors under Node's test runner (also run by `make test-web`)."""

import shutil
import subprocess
from pathlib import Path

import pytest

WEB = Path(__file__).resolve().parent.parent / "web"


@pytest.mark.node
def test_node_runs_the_shared_vectors():
    if shutil.which("node") is None:
        pytest.fail("node is required for the JavaScript tests")
    result = subprocess.run(["node", "--test", "test/preprocess.test.js"], cwd=WEB, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "# fail 0" in result.stdout and "# pass" in result.stdout
