"""The page's JavaScript under Node's test runner (also run by `make test-web`): the shared preprocessing and
answer vectors, and the DOM-free drawing state (web/test/*.test.js)."""

import shutil
import subprocess

import pytest

from digitglyph.paths import WEB

NODE_TESTS = sorted(path.name for path in (WEB / "test").glob("*.test.js"))


def test_every_javascript_module_has_its_node_tests():
    assert {"preprocess.test.js", "answers.test.js", "sketch.test.js"} <= set(NODE_TESTS)


@pytest.mark.node
@pytest.mark.parametrize("name", NODE_TESTS)
def test_node_runs_the_javascript_tests(name):
    if shutil.which("node") is None:
        pytest.fail("node is required for the JavaScript tests")
    result = subprocess.run(["node", "--test", f"test/{name}"], cwd=WEB, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "# fail 0" in result.stdout and "# pass" in result.stdout
