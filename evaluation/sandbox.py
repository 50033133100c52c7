"""Run a ``python`` or ``javascript`` assertion in a bubblewrap sandbox: no network, read-only host, its own /tmp
and PIDs.

Why not create-script's sandbox (:func:`code_generation.run_tests`): it runs a *test file* against a *module* in
two halves, and ``evaluation`` sits beside ``code_generation`` (import-linter keeps siblings apart). An
assertion is one expression over ``output``, so one process under ``bwrap --ro-bind / / --dev /dev --proc /proc
--unshare-all --die-with-parent --tmpfs /tmp`` is enough: the expression (and any model-written code it
``exec``s) sees no network, cannot write the host, gets an environment with no credentials, and is killed after
``timeout_s``. It can still *read* host files that are world-readable: do not run evals as a user whose files
must stay secret from the model's code.

``javascript`` runs the same way under Node.js (Debian's ``nodejs``; ``.ci/run`` installs it).

Semantics (promptfoo's): a one-line value is an expression; a multi-line value (or one starting with ``return``)
is a function body that ``return``s (in JavaScript it may also return a Promise). Names: ``output`` (str) and
``context`` (``{"vars": {...}, "prompt": str}``). A bool is pass/fail; a number is a score (pass when >=
threshold, else when > 0); a dict may carry ``pass``, ``score``, ``reason``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from typing import Any

from evaluation.errors import EvalConfigError

BWRAP_ARGS = ("--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--unshare-all", "--die-with-parent")
_RUNNER = r"""
import json, sys
data = json.loads(sys.stdin.read())
code = data["code"]
names = {"output": data["output"], "context": data["context"]}
if "\n" in code.strip() or code.strip().startswith("return "):
    body = "\n".join("    " + line for line in code.strip().splitlines())
    exec("def __assertion(output, context):\n" + body, names)
    value = names["__assertion"](data["output"], data["context"])
else:
    value = eval(code, names)
sys.stdout.write("\n@@RESULT@@" + json.dumps(value, default=str))
"""


_JS_RUNNER = r"""
const data = JSON.parse(require("fs").readFileSync(0, "utf8"));
const code = data.code.trim();
const body = code.includes("\n") || /^return\b/.test(code) ? code : "return (" + code + "\n);";
Promise.resolve()
  .then(() => new Function("output", "context", body)(data.output, data.context))
  .then((value) => {
    process.stdout.write("\n@@RESULT@@" + JSON.stringify(value === undefined ? null : value));
  }, (error) => {
    process.stderr.write(String(error));
    process.exit(1);
  });
"""


def require_bwrap() -> str:
    """The path of ``bwrap``.

    Raises:
        EvalConfigError: bubblewrap is not installed (Debian package ``bubblewrap``): python assertions run
            model output, never outside the sandbox.
    """
    path = shutil.which("bwrap")
    if path is None:
        raise EvalConfigError("python assertions need bubblewrap (apt-get install bubblewrap); it is not installed.")
    return path


def _python_binds() -> list[str]:
    """Read-only binds, over the fresh ``/tmp``, of the Python folders that live under ``/tmp`` (a project
    checked out there, as CI may do): without them the tmpfs would hide the interpreter itself."""
    folders = {sys.prefix, sys.base_prefix, sys.exec_prefix, os.path.dirname(os.path.realpath(sys.executable))}
    binds: list[str] = []
    for folder in sorted(folders):
        real = os.path.realpath(folder)
        if real == "/tmp" or real.startswith("/tmp/"):
            binds += ["--ro-bind", real, real]
            if folder != real:
                binds += ["--ro-bind", folder, folder]
    return binds


def run_python_assertion(code: str, output: str, context: dict[str, Any], timeout_s: float = 20.0) -> tuple[Any, str]:
    """Evaluate ``code`` over ``output`` in the sandbox; returns ``(value, error)``: the JSON value the code
    gave and ``""``, or ``None`` and what went wrong (an exception's last lines, a timeout)."""
    return _run("python", [sys.executable, "-I", "-c", _RUNNER], code, output, context, timeout_s)


def run_javascript_assertion(
    code: str, output: str, context: dict[str, Any], timeout_s: float = 20.0
) -> tuple[Any, str]:
    """:func:`run_python_assertion` for a JavaScript value, run by ``node`` in the same sandbox.

    Raises:
        EvalConfigError: Node.js is not installed (Debian package ``nodejs``).
    """
    node = shutil.which("node")
    if node is None:
        raise EvalConfigError("javascript assertions need Node.js (apt-get install nodejs); it is not installed.")
    return _run("javascript", [node, "--max-old-space-size=256", "-e", _JS_RUNNER], code, output, context, timeout_s)


def _run(
    language: str, command: list[str], code: str, output: str, context: dict[str, Any], timeout_s: float
) -> tuple[Any, str]:
    argv = [require_bwrap(), *BWRAP_ARGS, "--tmpfs", "/tmp", *_python_binds(), "--chdir", "/tmp", *command]
    payload = json.dumps({"code": code, "output": output, "context": context}, default=str)
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1"}
    try:
        done = subprocess.run(argv, input=payload, capture_output=True, text=True, timeout=timeout_s, env=env)
    except subprocess.TimeoutExpired:
        return None, f"{language} assertion timed out after {timeout_s:g} s"
    marker = done.stdout.rfind("\n@@RESULT@@")
    if done.returncode != 0 or marker < 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-3:])
        return None, f"{language} assertion failed (exit {done.returncode}): {tail}"
    return json.loads(done.stdout[marker + len("\n@@RESULT@@") :]), ""
