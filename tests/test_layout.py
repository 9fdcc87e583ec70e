"""The package's shape: no import cycle among its modules (imports inside functions counted), benchmarks that
import only from the package, and every module with a docstring saying what it holds."""

import ast

from digitglyph.paths import PACKAGE, ROOT


def module_name(path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def package_imports() -> dict[str, set[str]]:
    """Module -> the package modules it imports anywhere in its code (relative or absolute)."""
    modules = {module_name(path): path for path in PACKAGE.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        package = name.split(".")[:-1] if not path.name == "__init__.py" else name.split(".") if name else []
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package[: len(package) - node.level + 1] if node.level > 1 else package
                    target = ".".join([*base, *(node.module.split(".") if node.module else [])])
                elif node.module and node.module.startswith("digitglyph"):
                    target = node.module.removeprefix("digitglyph").lstrip(".")
                else:
                    continue
                for alias in node.names:  # `from . import sweep` imports a module
                    candidate = f"{target}.{alias.name}".lstrip(".")
                    found.add(candidate if candidate in modules else target)
            elif isinstance(node, ast.Import):
                found |= {
                    a.name.removeprefix("digitglyph").lstrip(".") for a in node.names if a.name.startswith("digitglyph")
                }
        graph[name] = {target for target in found if target in modules and target != name}
    return graph


def test_no_import_cycle_among_the_package_modules():
    graph = package_imports()
    assert {"data.pen", "data.sources", "train", "recognizer", "reports", "sweep"} <= set(graph)
    assert "data.sources" in graph["train"] and "train" not in graph["deploy"]

    def cycle_from(start, path, seen):
        for target in graph[start]:
            if target in path:
                return path[path.index(target) :] + [target]
            if target not in seen:
                seen.add(target)
                found = cycle_from(target, path + [target], seen)
                if found:
                    return found
        return None

    for module in graph:
        if module == "":  # the package's __init__ only re-exports lazily
            continue
        cycle = cycle_from(module, [module], {module})
        assert cycle is None, " -> ".join(cycle)


def test_benchmarks_import_from_the_package_only():
    for path in (ROOT / "benchmarks").glob("*.py"):
        source = path.read_text()
        tree = ast.parse(source)
        imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
        imported |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
        assert not any(name == "tests" or name.startswith("tests.") or name == "conftest" for name in imported), path
        assert "sys.path" not in source, f"{path.name} edits sys.path"


def test_every_module_says_what_it_holds():
    for path in PACKAGE.rglob("*.py"):
        docstring = ast.get_docstring(ast.parse(path.read_text()))
        assert docstring and len(docstring) > 30, f"{path.relative_to(ROOT)} has no docstring"
