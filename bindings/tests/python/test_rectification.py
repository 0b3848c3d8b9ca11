"""Rectification tasks (整改) through the Python bindings: open, evidence, the loop's rules,
follow-up inspections, community lists; and a task opened on a device synced to a real server."""

import pytest

import fenlei
from conftest import COMMUNITY, INSPECTOR, STANDARD_ID, VERSION, ctx
from test_sync import SERVER_BIN, Server, device

PHOTO = "ab" * 32
AFTER = "cd" * 32


def new_task(inspection_id, required=("actions", "photo_after")):
    return fenlei.NewRectification(
        community_id=COMMUNITY,
        inspection_id=inspection_id,
        item_code="C01",
        item_title="收集容器脏污、未加盖、破损或满溢",
        responsible="物业",
        deadline_days=3,
        deduction=4.0,
        required_evidence=list(required),
        finding_evidence=[PHOTO],
    )


def evidence(kind, text=None, sha256=None):
    return fenlei.ClosureEvidence(kind=kind, text=text, sha256=sha256, by=INSPECTOR, at_ms=0)


def test_a_task_moves_through_its_loop_with_the_evidence_it_needs(loaded, inspection_id):
    tasks = fenlei.FenleiRectifications(loaded)
    task_id = tasks.open(new_task(inspection_id), INSPECTOR)
    task = tasks.get(task_id)
    assert task.status == fenlei.RectificationStatus.OPEN
    assert task.source == "inspector"
    assert task.finding_evidence == [PHOTO]
    assert task.deadline_ms > task.opened_at_ms

    tasks.set_status(task_id, fenlei.RectificationStatus.IN_PROGRESS, INSPECTOR)
    with pytest.raises(fenlei.FenleiError.InvalidInput):
        tasks.set_status(task_id, fenlei.RectificationStatus.SUBMITTED, INSPECTOR)
    with pytest.raises(fenlei.FenleiError.InvalidState):
        tasks.set_status(task_id, fenlei.RectificationStatus.CLOSED, "sup")
    with pytest.raises(fenlei.FenleiError.InvalidInput):
        tasks.add_closure_evidence(task_id, evidence("selfie", text="x"))
    tasks.add_closure_evidence(task_id, evidence("actions", text="更换满溢桶"))
    tasks.add_closure_evidence(task_id, evidence("photo_after", sha256=AFTER))
    tasks.set_status(task_id, fenlei.RectificationStatus.SUBMITTED, INSPECTOR)
    tasks.set_status(task_id, fenlei.RectificationStatus.CLOSED, "sup", comment="同意销号")
    task = tasks.get(task_id)
    assert task.status == fenlei.RectificationStatus.CLOSED
    assert [e.to for e in task.events] == [
        fenlei.RectificationStatus.IN_PROGRESS,
        fenlei.RectificationStatus.SUBMITTED,
        fenlei.RectificationStatus.CLOSED,
    ]
    assert tasks.history(task_id)[-1].by == "sup"
    assert tasks.of_community(COMMUNITY) == []
    assert [t.id for t in tasks.of_community(COMMUNITY, pending_only=False)] == [task_id]
    assert [t.id for t in tasks.list(status=fenlei.RectificationStatus.CLOSED)] == [task_id]


def test_a_follow_up_inspection_submits_or_reopens(loaded, inspection_id):
    tasks = fenlei.FenleiRectifications(loaded)
    task_id = tasks.open(new_task(inspection_id, required=["photo_after"]), INSPECTOR)
    follow = loaded.create_inspection(
        fenlei.NewInspection(
            community_id=COMMUNITY,
            standard_id=STANDARD_ID,
            standard_version=VERSION,
            kind=fenlei.InspectionKind.FOLLOW_UP,
        ),
        INSPECTOR,
    )
    status = tasks.record_follow_up(task_id, follow, True, [AFTER], INSPECTOR, note="已整改")
    assert status == fenlei.RectificationStatus.SUBMITTED
    status = tasks.record_follow_up(task_id, follow, False, [], INSPECTOR)
    assert status == fenlei.RectificationStatus.REOPENED
    task = tasks.get(task_id)
    assert task.follow_ups[0].inspection_id == follow
    assert [e.sha256 for e in task.closure_evidence] == [AFTER]
    with pytest.raises(fenlei.FenleiError.InvalidInput):
        tasks.get("no-such-task")


@pytest.mark.skipif(not SERVER_BIN, reason="FENLEI_SERVER_BIN not set")
def test_a_task_opened_on_the_phone_reaches_the_supervisor(tmp_path):
    server = Server(tmp_path / "server")
    try:
        phone = device(tmp_path, "phone")
        tablet = device(tmp_path, "tablet")
        phone_client = fenlei.FenleiSyncClient(server.url, server.enroll(INSPECTOR, phone))
        tablet_client = fenlei.FenleiSyncClient(server.url, server.enroll("supervisor-1", tablet))
        phone_client.sync(phone)
        inspection = phone.create_inspection(
            fenlei.NewInspection(
                community_id=COMMUNITY,
                standard_id=STANDARD_ID,
                standard_version=VERSION,
                kind=fenlei.InspectionKind.DAILY_PATROL,
            ),
            INSPECTOR,
        )
        task_id = fenlei.FenleiRectifications(phone).open(new_task(inspection), INSPECTOR)
        report = phone_client.sync(phone)
        assert report.rejected == []
        tablet_client.sync(tablet)
        seen = fenlei.FenleiRectifications(tablet).of_community(COMMUNITY)
        assert [t.id for t in seen] == [task_id]
        assert seen[0].responsible == "物业"
    finally:
        server.stop()
