"""create-script's library: test-driven code generation with a sandbox.

    from code_generation import LoopOptions, generate_script
    generation = generate_script(task, Path("prime_sum.py"), Path("test_prime_sum.py"), chat, history)

See :mod:`code_generation.loop` (the loop), :mod:`code_generation.sandbox` (where tests run, and its security
model), :mod:`code_generation.isolation` (bubblewrap), :mod:`code_generation.harness` (the two halves of a run),
:mod:`code_generation.verdict`, :mod:`code_generation.folders`, :mod:`code_generation.redaction`,
:mod:`code_generation.extract` (code from replies), :mod:`code_generation.prompts`, :mod:`code_generation.usage`;
diagrams: :mod:`code_generation.diagram` (the PlantUML loop) and :mod:`code_generation.plantuml` (the local render).
"""

from code_generation.diagram import DiagramAttempt, DiagramGeneration, DiagramOptions, generate_diagram
from code_generation.diagram_prompts import extract_diagram
from code_generation.errors import ChangedTestFileError, CodeGenerationError, ModelRequestError, SandboxError
from code_generation.extract import extract_code, names_needed_from
from code_generation.isolation import SandboxUnavailableError, require_bwrap, sandbox_environment
from code_generation.loop import (
    Attempt,
    Generation,
    LoopOptions,
    generate_script,
    generate_tests,
    limit_reply_tokens,
    stream_reply,
)
from code_generation.plantuml import (
    DiagramSyntaxError,
    PlantUMLError,
    PlantUMLUnavailableError,
    RenderLimitError,
    RenderOptions,
    render_svg,
    require_plantuml,
)
from code_generation.redaction import redact_output
from code_generation.sandbox import SandboxLimits, SandboxRun, run_tests
from code_generation.usage import UsageReport

__all__ = [
    "Attempt",
    "ChangedTestFileError",
    "CodeGenerationError",
    "DiagramAttempt",
    "DiagramGeneration",
    "DiagramOptions",
    "DiagramSyntaxError",
    "Generation",
    "LoopOptions",
    "ModelRequestError",
    "PlantUMLError",
    "PlantUMLUnavailableError",
    "RenderLimitError",
    "RenderOptions",
    "SandboxError",
    "SandboxLimits",
    "SandboxRun",
    "SandboxUnavailableError",
    "UsageReport",
    "extract_code",
    "extract_diagram",
    "generate_diagram",
    "generate_script",
    "generate_tests",
    "limit_reply_tokens",
    "names_needed_from",
    "redact_output",
    "render_svg",
    "require_bwrap",
    "require_plantuml",
    "run_tests",
    "sandbox_environment",
    "stream_reply",
]
