"""create-script's library: test-driven code generation with a sandbox.

    from code_generation import LoopOptions, generate_script
    generation = generate_script(task, Path("prime_sum.py"), Path("test_prime_sum.py"), chat, history)

See :mod:`code_generation.loop` (the loop), :mod:`code_generation.sandbox` (where tests run, and its security
model), :mod:`code_generation.isolation` (bubblewrap), :mod:`code_generation.harness` (the two halves of a run),
:mod:`code_generation.verdict`, :mod:`code_generation.folders`, :mod:`code_generation.redaction`,
:mod:`code_generation.extract` (code from replies), :mod:`code_generation.prompts`, :mod:`code_generation.usage`;
diagrams: :mod:`code_generation.diagram` (the PlantUML loop) and :mod:`code_generation.plantuml` (the local render).
"""

from typing import TYPE_CHECKING

from my_llm.lazy import lazy_face

if TYPE_CHECKING:
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

_LAZY = {
    "Attempt": "code_generation.loop",
    "ChangedTestFileError": "code_generation.errors",
    "CodeGenerationError": "code_generation.errors",
    "DiagramAttempt": "code_generation.diagram",
    "DiagramGeneration": "code_generation.diagram",
    "DiagramOptions": "code_generation.diagram",
    "DiagramSyntaxError": "code_generation.plantuml",
    "Generation": "code_generation.loop",
    "LoopOptions": "code_generation.loop",
    "ModelRequestError": "code_generation.errors",
    "PlantUMLError": "code_generation.plantuml",
    "PlantUMLUnavailableError": "code_generation.plantuml",
    "RenderLimitError": "code_generation.plantuml",
    "RenderOptions": "code_generation.plantuml",
    "SandboxError": "code_generation.errors",
    "SandboxLimits": "code_generation.sandbox",
    "SandboxRun": "code_generation.sandbox",
    "SandboxUnavailableError": "code_generation.isolation",
    "UsageReport": "code_generation.usage",
    "extract_code": "code_generation.extract",
    "extract_diagram": "code_generation.diagram_prompts",
    "generate_diagram": "code_generation.diagram",
    "generate_script": "code_generation.loop",
    "generate_tests": "code_generation.loop",
    "limit_reply_tokens": "code_generation.loop",
    "names_needed_from": "code_generation.extract",
    "redact_output": "code_generation.redaction",
    "render_svg": "code_generation.plantuml",
    "require_bwrap": "code_generation.isolation",
    "require_plantuml": "code_generation.plantuml",
    "run_tests": "code_generation.sandbox",
    "sandbox_environment": "code_generation.isolation",
    "stream_reply": "code_generation.loop",
}
__getattr__, __dir__ = lazy_face(__name__, _LAZY)

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
