"""Structural Markdown summaries of source files: no LLM needed.

A Python file's summary lists its module docstring, classes (with bases and methods) and functions,
each with its signature, its lines and the first line of its docstring (from ``ast``). A Markdown
file's summary lists its headings. Any other file gets its size and first non-blank lines.
Embedding a plain-English description beside the code helps questions find it (Greptile's finding).
"""

from __future__ import annotations

import ast

from my_llm.models import batch_model
from qna.chunking import language_of
from qna.fences import outside_fences

MAX_SUMMARY_ITEMS = 80
PREVIEW_LINES = 5


def _first_line(node: ast.AST) -> str:
    doc = (
        ast.get_docstring(node, clean=True)
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
        else None
    )
    return doc.strip().splitlines()[0] if doc and doc.strip() else ""


def _signature(node: ast.FunctionDef | ast.AsyncFunctionDef) -> str:
    prefix = "async def" if isinstance(node, ast.AsyncFunctionDef) else "def"
    returns = f" -> {ast.unparse(node.returns)}" if node.returns else ""
    return f"{prefix} {node.name}({ast.unparse(node.args)}){returns}"


def _item(signature: str, node: ast.AST, indent: str = "") -> str:
    doc = _first_line(node)
    lines = f"L{node.lineno}-{node.end_lineno}"
    return f"{indent}- `{signature}` ({lines})" + (f": {doc}" if doc else "")


def _python_outline(tree: ast.Module) -> list[str]:
    out: list[str] = []
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            bases = ", ".join(ast.unparse(base) for base in node.bases)
            out.append(_item(f"class {node.name}" + (f"({bases})" if bases else ""), node))
            out.extend(
                _item(_signature(child), child, "  ")
                for child in node.body
                if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
            )
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            out.append(_item(_signature(node), node))
    return out


def _markdown_outline(text: str) -> list[str]:
    """One indented ``- heading (Lnumber)`` item per heading outside fenced code (:mod:`qna.fences`)."""
    out = []
    for number, line in outside_fences(text.splitlines()):
        if line.startswith("#"):
            level = len(line) - len(line.lstrip("#"))
            out.append(f"{'  ' * (level - 1)}- {line.lstrip('#').strip()} (L{number})")
    return out


def summarise_file(path: str, text: str) -> str:
    """A Markdown summary of ``text``, the content of ``path`` (a repository-relative POSIX path)."""
    language = language_of(path)
    lines = text.splitlines()
    header = [f"# {path}", "", f"{len(lines)} lines, {language}.", ""]
    outline: list[str] = []
    if language == "python":
        try:
            tree = ast.parse(text)
        except SyntaxError as error:
            header.append(f"(Could not parse as Python: line {error.lineno}: {error.msg}.)\n")
        else:
            doc = ast.get_docstring(tree, clean=True)
            if doc:
                header.extend([doc.strip().split("\n\n")[0], ""])
            outline = _python_outline(tree)
    elif language == "markdown":
        outline = _markdown_outline(text)
    if not outline:
        preview = [line for line in lines if line.strip()][:PREVIEW_LINES]
        return "\n".join(header + ["Begins with:", "", "```", *preview, "```", ""])
    shown = outline[:MAX_SUMMARY_ITEMS]
    if len(outline) > len(shown):
        shown.append(f"- ... and {len(outline) - len(shown)} more")
    return "\n".join(header + ["## Outline", "", *shown, ""])


LLM_SUMMARY_PROMPT = (
    "Describe this source file in plain English for a developer who has not seen it: what it is for, its "
    "main classes and functions, and how it is used. At most 120 words. No code."
)


def llm_summariser(chat, context_tokens: int = 4096, max_concurrency: int = 2):
    """A summariser that asks ``chat`` for a short description of each file.

    Returns a callable ``[(relpath, text)] -> [markdown]``; files are cut to fit the context window,
    and at most ``max_concurrency`` requests run at once (LangChain's ``batch``). Greptile reports
    that embedding such descriptions matches questions better than the code alone.
    """
    from langchain_core.messages import HumanMessage, SystemMessage

    budget_chars = max(1000, (context_tokens - 700) * 3)

    def summarise(items: list[tuple[str, str]]) -> list[str]:
        prompts = [
            [SystemMessage(LLM_SUMMARY_PROMPT), HumanMessage(f"File {relpath}:\n```\n{text[:budget_chars]}\n```")]
            for relpath, text in items
        ]
        replies = batch_model(chat, prompts, max_concurrency) if prompts else []
        return [
            f"# {relpath}\n\n{str(reply.content).strip()}\n\n" + summarise_file(relpath, text).split("\n", 4)[-1]
            for (relpath, text), reply in zip(items, replies, strict=True)
        ]

    return summarise
