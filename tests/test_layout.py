"""The house: every module imports on its own in a fresh interpreter (no cycle breaks an import order), and
the library's rooms are layered as pyproject.toml's import-linter contracts say."""

import pkgutil
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("my_llm", "qna", "code_generation", "server", "evaluation")

# Imports each module first, in a fresh interpreter, with every project module forgotten before each one:
# an import cycle that only works in one order fails here.
FRESH_IMPORTS = """
import importlib, sys
names = sys.argv[1:]
for name in names:
    ours = {"my_llm", "qna", "code_generation", "server", "evaluation"}
    for loaded in [m for m in sys.modules if m.split(".")[0] in ours]:
        del sys.modules[loaded]
    importlib.import_module(name)
print(len(names))
"""


def project_modules() -> list[str]:
    names = []
    for package in PACKAGES:
        names.append(package)
        for info in pkgutil.walk_packages([str(ROOT / package)], prefix=f"{package}."):
            names.append(info.name)
    return names


def test_every_module_imports_first_in_a_fresh_interpreter():
    names = project_modules()
    assert {"my_llm.record", "my_llm.history", "my_llm.log.store", "my_llm.memory.question"} <= set(names)
    done = subprocess.run(
        [sys.executable, "-c", FRESH_IMPORTS, *names], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == str(len(names))


def test_the_library_never_imports_its_siblings_or_its_dev_tools():
    for path in (ROOT / "my_llm").rglob("*.py"):
        text = path.read_text()
        assert "import qna" not in text and "from qna" not in text, path
        assert "from code_generation" not in text and "import code_generation" not in text, path
        if "testing" not in path.parts:
            assert "my_llm.testing" not in text, path


def test_import_contracts_hold():
    lint = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert lint, "import-linter is a dev dependency: pip install -e '.[dev]'"
    done = subprocess.run([lint, "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "0 broken" in done.stdout
