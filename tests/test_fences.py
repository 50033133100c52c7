"""The one Markdown code-fence scanner (qna.fences), and the chunker and summary that read headings with it."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qna.chunking import chunk_text
from qna.fences import Fence, code_fences, outside_fences
from qna.summaries import summarise_file


def fences(text: str) -> list[Fence]:
    return code_fences(text.splitlines())


def test_backtick_and_tilde_fences_with_their_info_strings():
    text = "# A\n```python\nx = 1\n```\ntext\n~~~ {.sh}\n# comment\n~~~\n"
    assert fences(text) == [Fence(2, 4, "```", "python"), Fence(6, 8, "~~~", "{.sh}")]
    assert outside_fences(text.splitlines()) == [(1, "# A"), (5, "text")]


def test_a_block_closes_only_on_the_same_character_at_least_as_long_with_nothing_after_it():
    text = "````md\n```\n~~~~~\n```python\n````  \n# out"
    assert fences(text) == [Fence(1, 5, "````", "md")]
    assert fences("~~~\n```\n~~~~\n") == [Fence(1, 3, "~~~", "")]
    assert fences("```\n````\n") == [Fence(1, 2, "```", "")]


def test_an_unclosed_block_runs_to_the_end():
    text = "# A\n```sh\n# not a heading\n"
    assert fences(text) == [Fence(2, 3, "```", "sh", closed=False)]
    assert outside_fences(text.splitlines()) == [(1, "# A")]


def test_inline_code_and_short_runs_are_not_fences():
    assert fences("```x``` is inline\n``not one``\n``` a ` b\n# heading") == []
    assert fences("~~~ `tildes allow backticks`\n~~~") == [Fence(1, 2, "~~~", "`tildes allow backticks`")]


def test_indented_fences_count_as_in_list_items():
    text = "1. Install:\n\n    ```bash\n    # not a heading\n    ```\n# Next"
    assert fences(text) == [Fence(3, 5, "```", "bash")]


def test_no_lines_and_no_fences():
    assert code_fences([]) == [] and outside_fences([]) == []
    assert outside_fences(["a", "b"]) == [(1, "a"), (2, "b")]


LINES = [
    *("```", "````", "```  ", "```py", "``` `x`", "```x```", "  ```", "``"),
    *("~~~", "~~~~", "~~~ `x`", "# h", "text", ""),
]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(LINES), max_size=12))
def test_the_scanner_agrees_with_a_commonmark_parser(lines):
    markdown_it = pytest.importorskip("markdown_it")
    expected = {
        line
        for token in markdown_it.MarkdownIt("commonmark").parse("\n".join(lines) + "\n")
        if token.type == "fence"
        for line in range(token.map[0] + 1, token.map[1] + 1)
    }
    inside = {line for fence in code_fences(lines) for line in range(fence.start, fence.end + 1)}
    assert inside == expected


TILDE_DOC = "# Setup\n\nRun:\n\n~~~bash\n# install first\npip install x\n~~~\n\n## Use\n\nCall it.\n"


def test_the_summary_skips_headings_in_any_fence():
    summary = summarise_file("doc.md", TILDE_DOC)
    assert "- Setup (L1)" in summary and "  - Use (L10)" in summary
    assert "install first" not in summary


def test_the_chunker_splits_only_at_headings_outside_fences():
    chunks = chunk_text("doc.md", TILDE_DOC, max_chars=60)
    assert [(c.start_line, c.symbol) for c in chunks] == [(1, "Setup"), (10, "Use")]
