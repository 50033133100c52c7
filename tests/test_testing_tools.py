"""my_llm.testing's server helper against real child processes (small Python servers on free ports)."""

import os
import socket
import sys

import pytest

from my_llm import MyLLMError
from my_llm.testing import (
    ServerNotInstalledError,
    ServerProcess,
    ServerStartError,
    find_emulator,
    free_port,
    http_ok,
    port_answers,
)

# Opens the port, then ignores SIGTERM: only a kill stops it.
STUBBORN = """
import signal, socket, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
server = socket.socket()
server.bind(("127.0.0.1", int(sys.argv[1])))
server.listen()
print("listening", flush=True)
time.sleep(120)
"""


def http_server(tmp_path, port: int, **options) -> ServerProcess:
    """Python's own file server on ``port``, serving ``tmp_path``."""
    argv = [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "--directory", str(tmp_path)]
    return ServerProcess(argv, port, tmp_path / "server.log", name="The file server", **options)


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_free_port_can_be_bound():
    port = free_port()
    assert 0 < port < 65536
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


def test_a_server_is_ready_when_its_port_answers_and_restarts_on_the_same_port(tmp_path):
    port = free_port()
    server = http_server(tmp_path, port, timeout_s=30)
    with server:
        assert server.running and server.host == f"127.0.0.1:{port}"
        assert port_answers("127.0.0.1", port) and http_ok(server.url + "/")
        pid = server.process.pid
        server.stop()
        assert not server.running and server.process is None and gone(pid)
        assert not port_answers("127.0.0.1", port)
        assert server.start() is server and server.start() is server  # a running server is left as it is
        assert http_ok(f"http://127.0.0.1:{port}/")
    assert not server.running and not port_answers("127.0.0.1", port)
    assert (tmp_path / "server.log").read_text().count("GET / HTTP") >= 2


def test_an_http_server_is_ready_only_when_the_path_answers_200(tmp_path):
    (tmp_path / "ready").write_text("yes")
    with http_server(tmp_path, free_port(), ready_path="/ready", timeout_s=30) as server:
        assert http_ok(server.url + "/ready")
        assert not http_ok(server.url + "/missing")  # 404
    with pytest.raises(ServerStartError, match=r"did not answer within 1 s") as failed:
        http_server(tmp_path, free_port(), ready_path="/missing", timeout_s=1).start()
    assert "/missing" in str(failed.value) and "404" in str(failed.value)  # the log's end is in the message


def test_a_server_that_exits_fails_with_its_code_and_log(tmp_path):
    log = tmp_path / "logs" / "crash.log"
    argv = [sys.executable, "-c", "import sys; print('no model file here', flush=True); sys.exit(3)"]
    server = ServerProcess(argv, free_port(), log, name="The crashing server", advice="Fix the model path.")
    with pytest.raises(ServerStartError) as failed:
        server.start(timeout_s=30)
    message = str(failed.value)
    assert isinstance(failed.value, MyLLMError)
    assert message.startswith("The crashing server (")
    assert "exited with code 3" in message and str(log) in message and "Fix the model path." in message
    assert "no model file here" in message
    assert not server.running


class Watched(ServerProcess):
    """Remembers the child it last asked, to check it is gone after a failed start."""

    def answers(self) -> bool:
        self.asked = self.process
        return super().answers()


def test_a_server_that_never_answers_is_stopped_and_fails(tmp_path):
    argv = [sys.executable, "-c", "import time; time.sleep(120)"]
    server = Watched(argv, free_port(), tmp_path / "silent.log", name="The silent server")
    with pytest.raises(ServerStartError, match=r"The silent server .* did not answer within 0.5 s"):
        server.start(timeout_s=0.5)
    assert server.process is None
    assert server.asked.returncode is not None and gone(server.asked.pid)


def test_a_server_that_ignores_terminate_is_killed(tmp_path):
    port = free_port()
    server = ServerProcess([sys.executable, "-c", STUBBORN, str(port)], port, tmp_path / "stubborn.log")
    server.start(timeout_s=30)
    pid = server.process.pid
    server.stop(timeout_s=0.5)
    assert gone(pid) and not server.running


def test_a_missing_program_fails_with_the_projects_error(tmp_path):
    server = ServerProcess([str(tmp_path / "no-such-server")], free_port(), tmp_path / "missing.log")
    with pytest.raises(ServerStartError, match="could not be run"):
        server.start()


def test_a_missing_emulator_is_the_projects_error(tmp_path):
    with pytest.raises(ServerNotInstalledError, match="install the google-cloud-cli-pubsub-emulator") as missing:
        find_emulator(str(tmp_path / "no-emulator-*.jar"))
    assert isinstance(missing.value, MyLLMError)
