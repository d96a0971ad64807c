"""The front door composes the other packages; none of them imports it (a package per concern)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FRONT_DOOR = "signaling"
# What each package may import of ours. `signaling` (the front door) may import all of them.
ALLOWED: dict[str, set[str]] = {
    "common": set(),
    "store": {"common"},
    "audit": {"common", "store"},
    "stats": {"common", "store"},
    "identity": {"common", "store", "audit"},
    "sfu": {"common"},
    "transcribe": {"common", "identity", "sfu", "store", "audit"},
    "chat": {"common", "identity", "store", "audit"},
    "integrations": {"common", "identity", "store", "audit", "chat"},
}
OURS = {"common", "identity", "sfu", "signaling", "transcribe", "chat", "loadtest", "store", "audit", "integrations", "stats"}


def imported_packages(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names & OURS


def test_no_package_imports_the_front_door_or_a_layer_above_it() -> None:
    wrong = []
    for package, allowed in ALLOWED.items():
        for path in sorted((ROOT / package).rglob("*.py")):
            extra = imported_packages(path) - allowed - {package}
            if extra:
                wrong.append(f"{path.relative_to(ROOT)} imports {sorted(extra)}")
    assert not wrong, "\n".join(wrong)
