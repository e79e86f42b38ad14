"""Our runtime's task checkpoints against the real platform over HTTP (pytest-django's
``live_server``): what it writes, reads back after a restart and deletes — the wire the runtime's
tests check against the fake platform."""

from __future__ import annotations

import asyncio

import pytest

from checkpoints.models import WorkflowCheckpoint
from molecule_site.tests.runtime_contract import dev, platform_client  # noqa: F401 - fixture

molecule_runtime = pytest.importorskip("molecule_runtime")
from molecule_runtime.checkpoints import TaskCheckpoints  # noqa: E402

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_runtime_checkpoints_a_task_and_a_restart_reads_it_back(live_server, dev, tmp_path):
    async def first_process():
        client = platform_client(live_server, dev, tmp_path)
        try:
            checkpoints = TaskCheckpoints(client)
            assert await checkpoints.load_interrupted() is None  # 404: nothing to resume
            record, text = await checkpoints.begin("t-1", "migrate the database")
            assert text == "migrate the database"
            await record.tool_step("run_code", {"code": "plan()"}, '{"ok": true}')
            await record.tool_step("run_code", {"code": "apply()"}, '{"ok": true, "tables": 3}')
        finally:
            await client.aclose()  # the process dies here: the task never ended

    async def second_process():
        client = platform_client(live_server, dev, tmp_path)
        try:
            checkpoints = TaskCheckpoints(client)
            interrupted = await checkpoints.load_interrupted()
            record, text = await checkpoints.begin("t-2", "go on")
            await checkpoints.end(record)
            return interrupted, text
        finally:
            await client.aclose()

    asyncio.run(first_process())
    assert sorted(WorkflowCheckpoint.objects.values_list("workflow_id", "step_name", "step_index")) == [
        ("task-t-1", "task", 0), ("task-t-1", "tool-1", 1), ("task-t-1", "tool-2", 2)]
    interrupted, text = asyncio.run(second_process())
    assert interrupted.text == "migrate the database"
    assert [step["input"] for step in interrupted.steps] == ['{"code": "plan()"}', '{"code": "apply()"}']
    assert text.startswith("[Resumed after a restart]") and text.endswith("\n\ngo on")
    assert WorkflowCheckpoint.objects.count() == 0  # the old workflow and the resumed task's are gone
