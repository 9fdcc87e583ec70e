"""What the app's server spends per page and at start, and a page whose kernel fails (``digitglyph/serve.py``).

Jinja templates are compiled once per server, not once per page, and stay correct when a template is edited; the
server starts without building jsonschema's optional IRI parsers; a page whose kernel dies before the app runs ends
with a message instead of loading for ever.
"""

from __future__ import annotations

import http.client
import subprocess
import sys
import time

import jinja2
import pytest
from conftest import run

from digitglyph.browser import VoilaServer
from digitglyph.paths import ROOT
from digitglyph.serve import KERNEL_FAILED_PAGE, CompiledTemplates, PageExporter, status

PAGE_DEADLINE_S = 90


@pytest.fixture()
def compilations(monkeypatch):
    """The names of the templates Jinja compiles from source, in order."""
    compiled = []
    compile_from_source = jinja2.Environment.compile

    def counting(environment, source, name=None, *args, **kwargs):
        compiled.append(name)
        return compile_from_source(environment, source, name, *args, **kwargs)

    monkeypatch.setattr(jinja2.Environment, "compile", counting)
    return compiled


def environment(directory, cache, is_async=False) -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(directory), bytecode_cache=cache, enable_async=is_async, autoescape=True
    )


def render(environment: jinja2.Environment, template_name: str, **context) -> str:
    template = environment.get_template(template_name)
    if environment.is_async:
        return run(template.render_async(**context))
    return template.render(**context)


def write_templates(directory):
    (directory / "base.html.j2").write_text("<p>{% block body %}{% endblock %}</p>")
    (directory / "page.html.j2").write_text(
        '{% extends "base.html.j2" %}{% block body %}{{ greeting | upper }}, {{ name }}{% endblock %}'
    )


def test_each_template_is_compiled_once_for_all_environments(tmp_path, compilations):
    write_templates(tmp_path)
    cache = CompiledTemplates()
    pages = [render(environment(tmp_path, cache), "page.html.j2", greeting="hello", name=name) for name in "ab"]
    assert pages == ["<p>HELLO, a</p>", "<p>HELLO, b</p>"]
    assert sorted(compilations) == ["base.html.j2", "page.html.j2"]  # by the first environment only
    uncached = render(environment(tmp_path, None), "page.html.j2", greeting="hello", name="a")
    assert uncached == pages[0]


def test_an_edited_template_is_compiled_again(tmp_path, compilations):
    write_templates(tmp_path)
    cache = CompiledTemplates()
    render(environment(tmp_path, cache), "page.html.j2", greeting="hello", name="a")
    (tmp_path / "page.html.j2").write_text(
        '{% extends "base.html.j2" %}{% block body %}{{ greeting }} to {{ name }}{% endblock %}'
    )
    assert render(environment(tmp_path, cache), "page.html.j2", greeting="hello", name="a") == "<p>hello to a</p>"
    assert compilations == ["page.html.j2", "base.html.j2", "page.html.j2"]


def test_async_and_plain_environments_keep_their_own_code(tmp_path, compilations):
    write_templates(tmp_path)
    cache = CompiledTemplates()
    for is_async in (False, True, False, True):
        assert render(environment(tmp_path, cache, is_async), "page.html.j2", greeting="hi", name="a") == "<p>HI, a</p>"
    assert len(compilations) == 4  # two templates, each compiled once plain and once async


def test_the_page_exporter_renders_with_the_shared_compiled_templates(tmp_path):
    first, second = (PageExporter(template_name="lab") for _ in range(2))
    assert first.environment is not second.environment  # Voila's exporters keep their own environments ...
    assert first.environment.bytecode_cache is second.environment.bytecode_cache  # ... and share the compiled code
    assert isinstance(first.environment.bytecode_cache, CompiledTemplates)


def test_the_server_starts_without_building_jsonschemas_iri_parsers():
    probe = (
        "import sys, digitglyph.serve, jsonschema; "
        "jsonschema.validate('2026-11-27T10:00:00Z', {'format': 'date-time'}, "
        "format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER); "
        "print('lark' in sys.modules, 'jupyter_server' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["False", "True"]  # Jupyter imported, the Lark grammars never built


def read_page(port: int, deadline_s: float) -> tuple[str, bool]:
    """The page at ``/`` as far as it came within ``deadline_s`` (Voila keeps a slow page open with heartbeats),
    and whether it ended."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=deadline_s)
    connection.request("GET", "/")
    response = connection.getresponse()
    assert response.status == 200
    body, started = b"", time.monotonic()
    while time.monotonic() - started < deadline_s:
        chunk = response.read1(65536)
        if not chunk:
            return body.decode(), True
        body += chunk
    return body.decode(), False


@pytest.mark.parametrize("pool", [0, 1], ids=["own kernel", "pool kernel"])
def test_a_page_whose_kernel_dies_ends_with_a_message_and_frees_its_place(tmp_path, pool):
    dying = tmp_path / "dying"
    dying.mkdir()
    (dying / "ipykernel_launcher.py").write_text("raise SystemExit(3)\n")  # found before ipykernel's own
    options = {"pool": pool, "kernel_start": "spawn", "extra_environment": {"PYTHONPATH": str(dying)}}
    with VoilaServer(tmp_path, **options) as server:
        page, ended = read_page(server.port, PAGE_DEADLINE_S)
        assert ended, "the page was still loading"
        assert page.endswith(KERNEL_FAILED_PAGE)
        assert "The app could not start" in page
        # the place is free again once Jupyter has given up restarting the dead kernel (five tries)
        deadline = time.monotonic() + PAGE_DEADLINE_S
        while status(server.port)["sessions"] and time.monotonic() < deadline:
            time.sleep(0.5)
        assert status(server.port)["sessions"] == 0
