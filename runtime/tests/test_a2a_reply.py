"""reply_text: a peer's A2A reply in every shape it can take, joined as the peer sent it."""

import pytest

from molecule_runtime.a2a_reply import reply_text
from molecule_runtime.tools import sse_results


def text_part(text, **extra):
    return {"kind": "text", "text": text, **extra}


def test_a_03_message_joins_its_parts_with_nothing_in_between():
    assert reply_text({"kind": "message", "parts": [text_part("Hel"), text_part("lo")]}) == "Hello"


def test_non_text_parts_are_skipped():
    message = {"kind": "message", "parts": [text_part("see "), {"kind": "file", "file": {"uri": "x"}},
                                            {"kind": "data", "data": {"a": 1}}, text_part("the file")]}
    assert reply_text(message) == "see the file"


def test_a_task_status_message_is_read_when_there_are_no_artifacts():
    task = {"kind": "task", "status": {"state": "completed", "message": {"parts": [text_part("final answer")]}}}
    assert reply_text(task) == "final answer"


def test_a_status_message_that_repeats_the_artifacts_is_not_added_twice():
    task = {"kind": "task", "artifacts": [{"artifactId": "a", "parts": [text_part("The answer is 42.")]}],
            "status": {"message": {"parts": [text_part("The answer is 42.")]}}}
    assert reply_text(task) == "The answer is 42."


def test_separate_artifacts_are_separated_by_a_blank_line():
    task = {"kind": "task", "artifacts": [{"artifactId": "a", "parts": [text_part("Plan")]},
                                          {"artifactId": "b", "parts": [text_part("Result")]}]}
    assert reply_text(task) == "Plan\n\nResult"


def test_streamed_chunks_are_reassembled_by_artifact_id():
    events = [
        {"kind": "task", "id": "t", "status": {"state": "submitted"}},
        {"kind": "status-update", "status": {"state": "working"}},
        {"kind": "artifact-update", "artifact": {"artifactId": "a", "parts": [text_part("Stream")]}},
        {"kind": "artifact-update", "append": True, "artifact": {"artifactId": "a", "parts": [text_part("ed te")]}},
        {"kind": "artifact-update", "append": True, "artifact": {"artifactId": "a", "parts": [text_part("xt")]}},
        {"kind": "status-update", "final": True,
         "status": {"state": "completed", "message": {"kind": "message", "parts": [text_part("Streamed text")]}}},
    ]
    assert reply_text(events) == "Streamed text"


def test_a_chunk_without_append_restarts_its_artifact():
    events = [{"kind": "artifact-update", "artifact": {"artifactId": "a", "parts": [text_part("draft")]}},
              {"kind": "artifact-update", "artifact": {"artifactId": "a", "parts": [text_part("final")]}}]
    assert reply_text(events) == "final"


def test_10_wrapped_results_and_parts_without_kind():
    assert reply_text({"message": {"role": "ROLE_AGENT", "parts": [{"text": "one"}, {"text": " two"}]}}) == "one two"
    assert reply_text({"task": {"artifacts": [{"artifactId": "x", "parts": [{"text": "out"}]}]}}) == "out"
    events = [{"artifactUpdate": {"artifact": {"artifactId": "x", "parts": [{"text": "a"}]}}},
              {"artifactUpdate": {"append": True, "artifact": {"artifactId": "x", "parts": [{"text": "b"}]}}}]
    assert reply_text(events) == "ab"


def test_a_status_message_that_adds_to_the_artifacts_follows_them():
    task = {"kind": "task", "artifacts": [{"artifactId": "a", "parts": [text_part("report.md written")]}],
            "status": {"message": {"parts": [text_part("Review it before Friday.")]}}}
    assert reply_text(task) == "report.md written\n\nReview it before Friday."


@pytest.mark.parametrize("result", [None, {}, [], {"kind": "task"}, {"parts": "not a list"}, [1, "x", None]])
def test_malformed_or_empty_results_give_empty_text(result):
    assert reply_text(result) == ""


def test_sse_results_reads_the_result_of_each_data_event():
    body = ('event: message\ndata: {"jsonrpc":"2.0","id":1,"result":{"kind":"task","id":"t"}}\n\n'
            ': keep-alive\n\ndata: not json\n\n'
            'data: {"jsonrpc":"2.0","id":1,"result":{"kind":"artifact-update","artifact":{"artifactId":"a",'
            '"parts":[{"kind":"text","text":"hi"}]}}}\n\n')
    assert reply_text(sse_results(body)) == "hi"
