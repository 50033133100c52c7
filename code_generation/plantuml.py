"""Render PlantUML source to SVG on this machine: the PlantUML jar on the machine's Java, in a bubblewrap sandbox.

    from code_generation.plantuml import render_svg, DiagramSyntaxError
    svg = render_svg("@startuml\\nAlice -> Bob: hi\\n@enduml\\n")

The jar is Debian's ``plantuml`` package (``/usr/share/plantuml/plantuml.jar``, with ``graphviz`` for the class,
use-case and component layouts); Java is the ``java`` on ``PATH``. One render is one process
(``java -jar plantuml.jar -tsvg -pipe``, about 1 s on this kind of machine, most of it the JVM starting), with:

- **no network and no files of the host**: it runs under bubblewrap in new namespaces (see
  :mod:`code_generation.isolation`) that see the read-only system folders (``/usr``, the loader's and Java's
  files under ``/etc``, fontconfig) and an empty ``/tmp``; nothing else. So ``!include /etc/passwd``,
  ``!include ~/...`` and ``!includeurl http://...`` fail as a :class:`DiagramSyntaxError` ("cannot include",
  "Cannot open URL") instead of leaking a file or reaching the network. What remains readable are the public
  files under ``/usr`` (``!include /usr/share/...``), as in create-script's sandbox;
- **limits**: a wall-clock timeout (the process group and the sandbox are killed), CPU seconds, the JVM's heap,
  a cap on the bytes of output (``RLIMIT_FSIZE`` on the files that take stdout and stderr), no core dumps;
- the source's size capped before anything starts.

PlantUML reports a bad diagram by exiting non-zero (200) and writing to stderr ``ERROR``, the line index
(0-based, counted from ``@startuml``) and its message (``Syntax Error?``, ``cannot include ...``); its picture
of the error goes to stdout and is dropped here. :class:`DiagramSyntaxError` carries the 1-based line, the
text of that line and the message, and :meth:`DiagramSyntaxError.feedback` says it in one line for a model.
"""

from __future__ import annotations

import functools
import glob
import os
import re
import resource
import shutil
import signal
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from code_generation.errors import CodeGenerationError
from code_generation.isolation import NAMESPACES, PROC_READ_ONLY, _hardening, _system_binds, require_bwrap
from code_generation.launch import with_rlimits

JAR_PATHS = ("/usr/share/plantuml/plantuml.jar", "/usr/share/java/plantuml.jar")
INSTALL_HINT = "Install it with `apt-get install plantuml graphviz` (Debian, Ubuntu), which brings Java too."
# What the JVM and Graphviz read under /etc besides the loader's files: Java's configuration (conf/ links
# there on Debian) and fontconfig's.
ETC_PATHS = ("/etc/fonts",)
# A short-lived JVM: no window system, one GC thread, the quick compiler only (starts faster), preferences in /tmp.
JVM_FLAGS = ("-Djava.awt.headless=true", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
             "-Djava.util.prefs.userRoot=/tmp/.java")  # fmt: skip
# SVG from stdin to stdout, no copy of the source inside the SVG.
PLANTUML_FLAGS = ("-tsvg", "-pipe", "-charset", "UTF-8", "-nometadata")
_START = re.compile(r"^\s*@start(\w+)\b", re.M)
NOT_A_DIAGRAM = "No @startuml/@enduml found"
_END_MARK = "Some diagram description contains errors"


class PlantUMLError(CodeGenerationError):
    """Base class of the errors of a render."""


class PlantUMLUnavailableError(PlantUMLError):
    """Java or the PlantUML jar is missing (or bubblewrap, when isolated): nothing can be rendered here."""


class DiagramSyntaxError(PlantUMLError):
    """PlantUML refused the source.

    Attributes:
        line: the 1-based line of the source PlantUML points at (``@startuml`` is line 1), or None.
        text: that line's text ("" when unknown).
        detail: PlantUML's message (``Syntax Error?``, ``cannot include /etc/passwd``, ``Infinite loop?``).
    """

    def __init__(self, detail: str, line: int | None = None, text: str = "") -> None:
        self.detail, self.line, self.text = detail, line, text
        where = f"line {line}" + (f" ({text.strip()!r})" if text.strip() else "") if line else "the source"
        super().__init__(f"PlantUML error at {where}: {detail}")

    def feedback(self) -> str:
        """The error as a model should read it: ``Line 3: `foo {{` -> Syntax Error?``."""
        if self.line is None:
            return f"PlantUML error: {self.detail}"
        return f"Line {self.line}: `{self.text.strip()}` -> {self.detail}"


class RenderLimitError(PlantUMLError):
    """The render ran past a limit (time, output size, source size) and was stopped."""


@dataclass(frozen=True)
class RenderOptions:
    """How a render runs.

    Attributes:
        timeout_s: wall-clock seconds before the render is killed (JVM start included, about 1 s).
        max_output_bytes: cap on the SVG (and on stderr), in bytes.
        max_source_chars: longest source accepted, in characters.
        heap_mb: the JVM's maximum heap (``-Xmx``), in MiB.
        jar: the PlantUML jar (None: the first of :data:`JAR_PATHS` that exists).
        java: the ``java`` executable (None: the one on ``PATH``).
        isolate: run under bubblewrap (False: no isolation at all, only the limits: ``!include`` then reads
            the host's files and ``!includeurl`` reaches the network; for machines without bubblewrap).
    """

    timeout_s: float = 30.0
    max_output_bytes: int = 8 << 20
    max_source_chars: int = 100_000
    heap_mb: int = 512
    jar: Path | None = None
    java: str | None = None
    isolate: bool = True


def find_plantuml(options: RenderOptions | None = None) -> tuple[str, Path]:
    """The real path of ``java`` and the jar a render would use.

    Raises:
        PlantUMLUnavailableError: either is missing; the message says how to install them.
    """
    options = options or RenderOptions()
    java = options.java or shutil.which("java")
    if not java or not os.access(java, os.X_OK):
        raise PlantUMLUnavailableError(f"PlantUML needs Java, and `java` was not found. {INSTALL_HINT}")
    jars = [options.jar] if options.jar else [Path(p) for p in JAR_PATHS]
    jar = next((j for j in jars if j.is_file()), None)
    if jar is None:
        raise PlantUMLUnavailableError(f"The PlantUML jar was not found ({', '.join(map(str, jars))}). {INSTALL_HINT}")
    return os.path.realpath(java), jar


def require_plantuml(options: RenderOptions | None = None) -> None:
    """Check that a render can run here (Java, the jar, and bubblewrap when ``options.isolate``).

    Raises:
        PlantUMLUnavailableError: one is missing (a missing bubblewrap is reported with its install hint).
    """
    options = options or RenderOptions()
    find_plantuml(options)
    if options.isolate:
        try:
            require_bwrap()
        except CodeGenerationError as error:
            raise PlantUMLUnavailableError(str(error)) from error


def diagram_block(source: str) -> str:
    """The first ``@startX ... @endX`` block of ``source``, markers included, with a final newline.

    Raises:
        DiagramSyntaxError: there is no ``@start...`` line, or its ``@end...`` is missing.
    """
    start = _START.search(source)
    if start is None:
        raise DiagramSyntaxError("the source has no @startuml line (a diagram is @startuml ... @enduml)")
    end = re.compile(rf"^\s*@end{start[1]}\b.*$", re.M).search(source, start.end())
    if end is None:
        raise DiagramSyntaxError(f"@start{start[1]} has no matching @end{start[1]} line")
    return source[start.start() : end.end()].strip() + "\n"


def render_svg(source: str, options: RenderOptions | None = None) -> str:
    """Render ``source`` (PlantUML text holding one ``@startuml ... @enduml`` block; text around it is
    ignored) to an SVG document (a ``str`` starting ``<?xml`` and holding ``<svg``).

    Raises:
        DiagramSyntaxError: PlantUML refused the source (its line and message), or there is no block.
        RenderLimitError: the source is too long, or the render passed ``timeout_s`` or ``max_output_bytes``.
        PlantUMLUnavailableError: Java, the jar or (when isolated) bubblewrap is missing.
        PlantUMLError: PlantUML failed otherwise (its stderr's tail in the message).
    """
    options = options or RenderOptions()
    if len(source) > options.max_source_chars:
        raise RenderLimitError(
            f"The diagram source has {len(source)} characters; the limit is {options.max_source_chars}."
        )
    block = diagram_block(source)
    java, jar = find_plantuml(options)
    command = [java, f"-Xmx{options.heap_mb}m", *JVM_FLAGS, "-jar", str(jar), *PLANTUML_FLAGS]
    command += ["-timeout", str(max(1, int(options.timeout_s)))]
    if options.isolate:
        require_plantuml(options)
        command = _sandboxed(command)
    code, out, err = _run(command, block, options)
    if code != 0 or "<svg" not in out:
        raise _failure(code, err, block)
    if NOT_A_DIAGRAM in out:  # an unknown @startxyz: PlantUML exits 0 with a picture of this sentence
        raise DiagramSyntaxError(
            f"PlantUML says: {NOT_A_DIAGRAM} (@start{_START.search(block)[1]} is no diagram type)",
            1,
            block.splitlines()[0],
        )
    return out


def _sandboxed(command: list[str]) -> list[str]:
    """``command`` under bubblewrap: read-only system folders, an empty ``/tmp``, no network, no environment."""
    binds = [*_system_binds()]
    for path in (*ETC_PATHS, *_java_etc()):
        binds += ["--ro-bind", path, path]
    env = {"LANG": "C.UTF-8", "HOME": "/tmp", "PATH": "/usr/bin:/bin", "USER": "sandbox"}
    bwrap = require_bwrap()
    args = [bwrap, *NAMESPACES, *_hardening(bwrap), "--clearenv", *binds]
    args += ["--dev", "/dev", "--proc", "/proc", *PROC_READ_ONLY, "--tmpfs", "/tmp", "--chdir", "/tmp"]
    for name, value in env.items():
        args += ["--setenv", name, value]
    return [*args, "--", *command]


@functools.cache
def _java_etc() -> tuple[str, ...]:
    """Java's folders under /etc (Debian links ``$JAVA_HOME/conf`` and ``lib/security`` there)."""
    return tuple(p for p in sorted(glob.glob("/etc/java-*")) + ["/etc/ssl/certs/java"] if os.path.isdir(p))


def _limits(command: list[str], options: RenderOptions) -> list[str]:
    cpu = max(2, int(options.timeout_s * 2))  # the JVM's threads add up; the wall clock is the real limit
    return with_rlimits(
        command,
        {
            resource.RLIMIT_FSIZE: (options.max_output_bytes, options.max_output_bytes),
            resource.RLIMIT_CPU: (cpu, cpu + 1),
            resource.RLIMIT_CORE: (0, 0),
        },
    )


def _run(command: list[str], block: str, options: RenderOptions) -> tuple[int, str, str]:
    """Run ``command`` with ``block`` on stdin; its exit code, stdout and stderr (each at most the output cap)."""
    with tempfile.TemporaryDirectory(prefix="plantuml-") as scratch:
        paths = [Path(scratch) / name for name in ("in.puml", "out.svg", "err.txt")]
        paths[0].write_text(block, encoding="utf-8")
        with open(paths[0], "rb") as stdin, open(paths[1], "wb") as out, open(paths[2], "wb") as err:
            process = subprocess.Popen(_limits(command, options), stdin=stdin, stdout=out, stderr=err, cwd=scratch,
                                       start_new_session=True)  # fmt: skip
            try:
                code = process.wait(timeout=options.timeout_s)
            except subprocess.TimeoutExpired:
                _kill(process)
                raise RenderLimitError(
                    f"PlantUML did not finish within {options.timeout_s:g} s and was stopped "
                    "(a preprocessor loop or a very large diagram?)."
                ) from None
            finally:
                _kill(process)
        if max(p.stat().st_size for p in paths[1:]) >= options.max_output_bytes:
            raise RenderLimitError(f"PlantUML's output passed {options.max_output_bytes} bytes and was cut off.")
        out_text, err_text = (p.read_text(encoding="utf-8", errors="replace") for p in paths[1:])
    return code, out_text, err_text


def _kill(process: subprocess.Popen) -> None:
    """Kill the render's process group (bwrap's ``--die-with-parent`` takes the sandbox with it) and reap it."""
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    process.wait()


def _failure(code: int, stderr: str, block: str) -> PlantUMLError:
    """The error for a render that failed: PlantUML's ``ERROR`` report when there is one."""
    lines = [line.strip() for line in stderr.splitlines()]
    if "ERROR" in lines:
        at = lines.index("ERROR")
        rest = lines[at + 1 :]
        number = int(rest[0]) + 1 if rest and rest[0].isdigit() else None
        message = []
        for line in rest[1 if number else 0 :]:
            if line == _END_MARK:
                break
            message.append(line)
        source_lines = block.splitlines()
        text = source_lines[number - 1] if number and number <= len(source_lines) else ""
        return DiagramSyntaxError(" ".join(m for m in message if m) or "Syntax Error?", number, text)
    tail = "\n".join(line for line in lines if line)[-800:]
    return PlantUMLError(f"PlantUML failed (exit code {code}) without an SVG. {tail}".strip())
