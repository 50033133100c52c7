import json

from click.testing import CliRunner

from my_llm import PubSubChatMessageHistory
from my_llm.cli import main as my_llm
from qna.shell import PROMPT, run_shell


def test_the_shell_answers_until_ctrl_c_and_ignores_blank_lines():
    inputs = iter(["first?", "   ", "second?"])

    def read(_prompt):
        try:
            return next(inputs)
        except StopIteration:
            raise KeyboardInterrupt from None

    written = []
    assert run_shell(lambda q: f"answer to {q}", read=read, write=written.append) == 2
    assert written == [PROMPT, "answer to first?", "answer to second?", ""]


def test_the_shell_ends_at_end_of_input():
    def read(_prompt):
        raise EOFError

    assert run_shell(lambda q: q, read=read, write=lambda _: None) == 0


def test_log_show_prints_records_as_json_lines(settings):
    history = PubSubChatMessageHistory("cli-ns", settings=settings)
    history.add_user_message("hello")
    history.add_ai_message("hi there")
    result = CliRunner().invoke(my_llm, ["log", "show", "cli-ns", "--json"])
    assert result.exit_code == 0
    lines = [json.loads(line) for line in result.output.splitlines()]
    assert [(r["role"], r["content"]) for r in lines] == [("human", "hello"), ("ai", "hi there")]

    listed = CliRunner().invoke(my_llm, ["namespaces"])
    assert listed.exit_code == 0 and "cli-ns" in listed.output and "2" in listed.output


def test_log_show_refuses_bad_and_unknown_namespaces(settings):
    bad = CliRunner().invoke(my_llm, ["log", "show", "../etc"])
    assert bad.exit_code == 1 and "'/'" in bad.output
    unknown = CliRunner().invoke(my_llm, ["log", "show", "nobody"])
    assert unknown.exit_code == 1 and "my-llm namespaces" in unknown.output
