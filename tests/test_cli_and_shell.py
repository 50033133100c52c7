import json
from pathlib import Path

from click.testing import CliRunner

from my_llm import PubSubChatMessageHistory
from my_llm.cli import main as my_llm
from qna.shell import HELP, PROMPT, run_shell


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


def test_log_show_filters_by_session_and_time(settings):
    first = PubSubChatMessageHistory("filters", session_id="aaaa1111", settings=settings)
    first.add_user_message("from the first session")
    second = PubSubChatMessageHistory("filters", session_id="bbbb2222", settings=settings)
    second.add_user_message("from the second session")
    later = second.records()[-1].created_at

    by_session = CliRunner().invoke(my_llm, ["log", "show", "filters", "--json", "--session", "aaaa"])
    assert [json.loads(line)["content"] for line in by_session.output.splitlines()] == ["from the first session"]
    by_time = CliRunner().invoke(my_llm, ["log", "show", "filters", "--json", "--since", later])
    assert [json.loads(line)["content"] for line in by_time.output.splitlines()] == ["from the second session"]
    recent = CliRunner().invoke(my_llm, ["log", "show", "filters", "--json", "--since", "5m"])
    assert len(recent.output.splitlines()) == 2
    bad = CliRunner().invoke(my_llm, ["log", "show", "filters", "--since", "last tuesday"])
    assert bad.exit_code == 2 and "ISO 8601" in bad.output


def test_log_tail_prints_the_last_records(settings):
    history = PubSubChatMessageHistory("tailing", settings=settings)
    for i in range(5):
        history.add_user_message(f"line {i}")
    result = CliRunner().invoke(my_llm, ["log", "tail", "tailing", "-n", "2", "--no-follow", "--json"])
    assert result.exit_code == 0
    assert [json.loads(line)["content"] for line in result.output.splitlines()] == ["line 3", "line 4"]


def test_log_tail_follows_new_records_across_a_clear(settings):
    import subprocess
    import sys

    history = PubSubChatMessageHistory("following", settings=settings)
    history.add_user_message("already there")
    tail = subprocess.Popen(
        [str(Path(sys.executable).with_name("my-llm")), "log", "tail", "following", "-n", "1", "--json"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        seen = [json.loads(tail.stdout.readline())["content"]]
        history.add_user_message("appended later")
        seen.append(json.loads(tail.stdout.readline())["content"])
        history.clear()
        history.add_user_message("after the clear")
        seen.append(json.loads(tail.stdout.readline())["content"])
    finally:
        tail.kill()
        tail.wait(10)
    assert seen == ["already there", "appended later", "after the clear"]


def test_replay_without_a_project_says_what_to_set(settings):
    PubSubChatMessageHistory("nowhere", settings=settings).add_user_message("x")
    result = CliRunner().invoke(my_llm, ["replay", "nowhere"])
    assert result.exit_code == 1 and "GOOGLE_CLOUD_PROJECT" in result.output


def test_namespaces_counts_what_is_not_yet_published(settings):
    history = PubSubChatMessageHistory("unpublished", settings=settings)  # no project: nothing is acknowledged
    history.add_user_message("a")
    history.add_ai_message("b")
    result = CliRunner().invoke(my_llm, ["namespaces"])
    assert result.exit_code == 0
    row = next(line for line in result.output.splitlines() if "unpublished" in line)
    assert row.split("│")[2].strip() == "2" and row.split("│")[3].strip() == "2"


SAMPLE_EXPORT = Path(__file__).resolve().parent.parent / "chatgpt_export" / "sample_conversations.json"


def test_import_chatgpt_reports_what_it_did_and_a_second_run_adds_nothing(settings):
    first = CliRunner().invoke(my_llm, ["import-chatgpt", str(SAMPLE_EXPORT), "--namespace", "gpt"])
    assert first.exit_code == 0, first.output
    imported = int(next(line for line in first.output.splitlines() if "messages imported" in line).split("│")[2])
    history = PubSubChatMessageHistory("gpt", settings=settings)
    assert imported == len(history.records()) > 0
    assert {r.source for r in history.records()} == {"chatgpt_export"}
    second = CliRunner().invoke(my_llm, ["import-chatgpt", str(SAMPLE_EXPORT), "--namespace", "gpt"])
    assert second.exit_code == 0
    assert "│ 0 " in next(line for line in second.output.splitlines() if "messages imported" in line)
    assert len(history.records()) == imported


def test_import_chatgpt_names_the_bad_file_and_exits_non_zero(tmp_path, settings):
    bad = tmp_path / "conversations.json"
    bad.write_text('[{"id": "conv-1", "title": null, "mapping": {}}]')
    result = CliRunner().invoke(my_llm, ["import-chatgpt", str(bad), "--namespace", "gpt"])
    assert result.exit_code == 1
    assert "conversations.json" in result.output and "conv-1" in result.output
    bad_namespace = CliRunner().invoke(my_llm, ["import-chatgpt", str(SAMPLE_EXPORT), "--namespace", "../x"])
    assert bad_namespace.exit_code == 1 and "'/'" in bad_namespace.output


def test_the_shell_runs_commands_and_ctrl_c_cancels_only_the_answer():
    inputs = iter(["slow question", ":sources", ":nope", "next question", ":quit", "never read"])
    written = []

    def answer(question):
        if question == "slow question":
            raise KeyboardInterrupt  # Ctrl+C while the answer streams
        return f"sources of {question}"

    count = run_shell(answer, {":sources": lambda: "the sources"}, read=lambda _: next(inputs), write=written.append)
    assert count == 1
    assert written == [
        PROMPT,
        "\n[answer cancelled]",
        "the sources",
        f"Unknown command ':nope'. {HELP}",
        "sources of next question",
    ]
    assert next(inputs) == "never read"  # :quit stopped reading
