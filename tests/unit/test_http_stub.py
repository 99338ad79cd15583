"""The HTTP stub the other tests build on: scripts per method and path, sequences, delays, restarts."""

from __future__ import annotations

import threading
import urllib.error
import urllib.request

import pytest

from tests.support import wait_until
from tests.support.http_stub import HttpStub, Reply, json_reply


def call(url: str, method: str = "GET", body: bytes | None = None, timeout: float = 5) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, method=method, headers={"X-Trace": "t1"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def test_scripts_by_method_and_path_then_the_default_and_records_each_request(http_stub: HttpStub) -> None:
    http_stub.answer(Reply(503), Reply(503), json_reply({"ok": True}), method="POST", path="/-/reload")
    http_stub.answer(Reply(204), path="/-/reload")
    posts = [call(http_stub.url + "/-/reload?x=1", "POST", b'{"v": 1}')[0] for _ in range(4)]
    assert posts == [503, 503, 200, 200]  # the last answer repeats
    assert call(http_stub.url + "/-/reload")[0] == 204  # any other method
    assert call(http_stub.url + "/elsewhere") == (404, b'{"error": "not found"}')
    first = http_stub.requests[0]
    assert (first.method, first.path, first.route, first.json()) == ("POST", "/-/reload?x=1", "/-/reload", {"v": 1})
    assert first.headers["x-trace"] == "t1"
    assert len(http_stub.requests) == 6


def test_a_cycle_starts_over(http_stub: HttpStub) -> None:
    http_stub.answer(Reply(503), Reply(200), cycle=True)
    assert [call(http_stub.url)[0] for _ in range(4)] == [503, 200, 503, 200]


def test_stop_refuses_connections_and_start_listens_again_on_the_same_port() -> None:
    stub = HttpStub(Reply(200)).start()
    port = stub.port
    stub.stop()
    with pytest.raises(urllib.error.URLError):
        call(stub.url)
    with stub:
        assert (stub.port, call(stub.url)[0]) == (port, 200)


def test_a_delayed_answer_goes_out_when_the_stub_stops() -> None:
    stub = HttpStub(Reply(200, b"late", delay=60)).start()
    answers: list[tuple[int, bytes]] = []
    caller = threading.Thread(target=lambda: answers.append(call(stub.url, timeout=50)))
    caller.start()
    wait_until(lambda: stub.requests, message="the request received")
    stub.stop()
    caller.join(40)
    assert answers == [(200, b"late")], "the answer waited out its 60 s delay"
