"""Lazy faces (PEP 562, my_llm.lazy): importing a face or a CLI module loads no heavy library, every public
name still resolves, and each face's lazy table says the same as its TYPE_CHECKING imports."""

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# What `my-llm --help` and `read-repo --help` must not pay for (each costs 0.1-0.6 s to import).
HEAVY = ("langchain_core", "langchain_openai", "langchain", "chromadb", "onnxruntime", "torch", "transformers",
         "sentence_transformers", "tokenizers", "google", "detect_secrets", "tree_sitter", "bm25s", "duckdb",
         "sqlglot", "numpy")  # fmt: skip
LAZY_FACES = sorted(
    ".".join(path.parent.relative_to(ROOT).parts)
    for package in ("my_llm", "evaluation", "code_generation")
    for path in (ROOT / package).rglob("__init__.py")
    if "lazy_face(" in path.read_text()
)


def fresh(code: str) -> str:
    """Run ``code`` in a fresh interpreter at the project root; its stdout."""
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_the_faces_that_matter_are_lazy():
    assert {"my_llm", "my_llm.models", "my_llm.retrieval", "my_llm.memory", "my_llm.history", "code_generation"} <= set(
        LAZY_FACES
    )


@pytest.mark.parametrize(
    "modules",
    [["my_llm"], LAZY_FACES, ["my_llm.cli"], ["qna.read_repo"], ["evaluation.cli"], ["code_generation.create_script"]],
    ids=str,
)
def test_importing_loads_no_heavy_library(modules):
    code = f"""
import importlib, json, sys
for name in {modules!r}:
    importlib.import_module(name)
print(json.dumps(sorted({{m.split(".")[0] for m in sys.modules}})))
"""
    loaded = set(json.loads(fresh(code)))
    assert not loaded & set(HEAVY), f"{modules} imported {sorted(loaded & set(HEAVY))}"


@pytest.mark.parametrize("face", LAZY_FACES)
def test_every_public_name_resolves(face):
    code = f"""
import importlib, json
face = importlib.import_module({face!r})
missing = [name for name in face.__all__ if name not in dir(face)]
values = {{name: type(getattr(face, name)).__name__ for name in face.__all__}}
exec("from {face} import *", {{}})
print(json.dumps({{"missing_from_dir": missing, "count": len(values)}}))
"""
    result = json.loads(fresh(code))
    assert result["missing_from_dir"] == []
    assert result["count"] >= 5


def test_from_my_llm_import_each_name_in_a_fresh_interpreter():
    names = fresh("import my_llm; print(' '.join(my_llm.__all__))").split()
    assert "PubSubChatMessageHistory" in names and "Settings" in names
    code = f"""
import sys
for name in {names!r}:
    for loaded in [m for m in sys.modules if m.split(".")[0] == "my_llm"]:
        del sys.modules[loaded]
    exec(f"from my_llm import {{name}}", {{}})
print("ok")
"""
    assert fresh(code).strip() == "ok"


@pytest.mark.parametrize("face", LAZY_FACES)
def test_lazy_table_matches_type_checking_imports_and_all(face):
    path = ROOT.joinpath(*face.split("."), "__init__.py")
    tree = ast.parse(path.read_text())
    guarded = next(n for n in tree.body if isinstance(n, ast.If) and ast.unparse(n.test) == "TYPE_CHECKING")
    imported = {alias.name: node.module for node in guarded.body if isinstance(node, ast.ImportFrom)
                for alias in node.names}  # fmt: skip
    assigned = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and ast.unparse(node.targets[0]) in ("_LAZY", "__all__"):
            assigned[ast.unparse(node.targets[0])] = ast.literal_eval(node.value)
    assert assigned["_LAZY"] == imported
    assert sorted(assigned["__all__"]) == sorted(imported)


def test_a_subpackage_resolves_and_an_unknown_name_is_an_attribute_error():
    code = """
import my_llm
print(my_llm.history.__name__, hasattr(my_llm, "no_such_name"), "ChatHistory" in dir(my_llm))
try:
    my_llm.no_such_name
except AttributeError as error:
    print(error)
"""
    lines = fresh(code).splitlines()
    assert lines[0] == "my_llm.history False True"
    assert lines[1] == "module 'my_llm' has no attribute 'no_such_name'"
