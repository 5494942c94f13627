"""The allowed arrows between the apps (docs/architecture.md): each app imports only the apps
below it, and the protocol code imports no Django. Checked on every module's imports."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# An app may import the apps listed for it (and itself); tests and migrations are exempt.
ALLOWED = {
    "core": set(),
    "reputation": {"core"},
    "tracker": {"core", "reputation"},
    "receipts": {"core", "reputation", "tracker"},
    "chain": {"core", "reputation", "tracker", "receipts"},
    "moderation": {"core", "reputation", "tracker"},
}
APPS = set(ALLOWED)


def _imported_apps(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        found.update(name.split(".")[0] for name in names if name.split(".")[0] in APPS)
    return found


def _modules(app: str) -> list[Path]:
    return [
        path
        for path in (ROOT / app).rglob("*.py")
        if "tests" not in path.parts and "migrations" not in path.parts
    ]


@pytest.mark.parametrize("app", sorted(ALLOWED))
def test_an_app_imports_only_the_apps_below_it(app):
    wrong = {
        str(path.relative_to(ROOT)): sorted(_imported_apps(path) - ALLOWED[app] - {app})
        for path in _modules(app)
    }
    assert {path: apps for path, apps in wrong.items() if apps} == {}
    assert _modules(app), f"{app} has no modules"
