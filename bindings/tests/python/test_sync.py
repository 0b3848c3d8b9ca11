"""Sync through the Python bindings against a real fenlei-server process on loopback: the glue
(enrollment, the sync client object, progress, error kinds). The protocol itself is tested in
tests/ (Rust, fenlei-e2e)."""

import os
import subprocess
import time

import pytest

import fenlei
from conftest import COMMUNITY, INSPECTOR, STANDARD_ID, VERSION, ctx

SERVER_BIN = os.environ.get("FENLEI_SERVER_BIN")
SUPERVISOR = "supervisor-1"

pytestmark = pytest.mark.skipif(
    not SERVER_BIN, reason="FENLEI_SERVER_BIN not set (scripts/test-python.sh builds and sets it)"
)


class Server:
    def __init__(self, data):
        self.data = str(data)
        self.admin("init", "--sample")
        self.admin("add-user", "--id", INSPECTOR, "--role", "inspector")
        self.admin("assign", "--user", INSPECTOR, "--community", COMMUNITY)
        self.admin("add-user", "--id", SUPERVISOR, "--role", "supervisor")
        community = fenlei.FenleiStore.open(os.path.join(self.data, "probe.sqlite"))
        community.import_communities_csv(fenlei.sample_city_csv())
        self.admin("assign", "--user", SUPERVISOR, "--district", community.community(COMMUNITY).district)
        port_file = os.path.join(self.data, "port")
        self.process = subprocess.Popen(
            [SERVER_BIN, "--data", self.data, "serve", "--addr", "127.0.0.1:0", "--port-file", port_file],
            stdout=subprocess.DEVNULL,
        )
        deadline = time.time() + 60
        while not (os.path.exists(port_file) and open(port_file).read().strip()):
            assert time.time() < deadline, "server did not start"
            assert self.process.poll() is None, "server exited"
            time.sleep(0.02)
        self.url = "http://127.0.0.1:%s" % open(port_file).read().strip()

    def admin(self, *args):
        out = subprocess.run([SERVER_BIN, "--data", self.data, *args], capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        return out.stdout.strip()

    def enroll(self, user, store):
        code = self.admin("enroll", "--user", user).split()[-1]
        return fenlei.enroll_device(self.url, code, store).token

    def stop(self):
        self.process.kill()
        self.process.wait()


@pytest.fixture
def server(tmp_path):
    s = Server(tmp_path / "server")
    yield s
    s.stop()


def device(tmp_path, name):
    return fenlei.FenleiStore.open(str(tmp_path / ("%s.sqlite" % name)))


class Counter(fenlei.ProgressListener):
    def __init__(self):
        self.calls = []

    def on_progress(self, done, total):
        self.calls.append((done, total))


def test_inspector_and_supervisor_devices_sync_through_the_server(server, tmp_path):
    phone = device(tmp_path, "phone")
    tablet = device(tmp_path, "tablet")
    phone_client = fenlei.FenleiSyncClient(server.url, server.enroll(INSPECTOR, phone))
    tablet_client = fenlei.FenleiSyncClient(server.url, server.enroll(SUPERVISOR, tablet))

    # Reference data comes down with the first sync.
    first = phone_client.sync(phone)
    assert first.standards_received >= 1 and first.communities_received >= 1
    assert fenlei.sync_assignments(phone).communities == [COMMUNITY]

    iid = phone.create_inspection(
        fenlei.NewInspection(
            community_id=COMMUNITY,
            standard_id=STANDARD_ID,
            standard_version=VERSION,
            kind=fenlei.InspectionKind.DAILY_PATROL,
        ),
        INSPECTOR,
    )
    phone.record_answer(iid, fenlei.ItemAnswer(item_code="A01", value=fenlei.AnswerValue.OBSERVED()), ctx())
    phone.set_status(iid, fenlei.InspectionStatus.SUBMITTED, ctx())
    progress = Counter()
    pushed = phone_client.sync(phone, progress=progress)
    assert pushed.documents_exchanged >= 1 and pushed.rejected == []
    assert progress.calls, "progress was reported"

    tablet_client.sync(tablet)
    assert tablet.score(iid).total == phone.score(iid).total
    tablet.set_status(iid, fenlei.InspectionStatus.RETURNED, ctx(SUPERVISOR), "请补充照片")
    tablet_client.sync(tablet)
    phone_client.sync(phone)
    assert phone.inspection(iid).status == fenlei.InspectionStatus.RETURNED

    # Nothing changed: one small round trip.
    again = phone_client.sync(phone)
    assert again.round_trips == 1 and again.documents_received == 0


def test_sync_errors_arrive_as_typed_exceptions(server, tmp_path):
    phone = device(tmp_path, "phone")
    with pytest.raises(fenlei.FenleiError.AccessDenied):
        fenlei.FenleiSyncClient(server.url, "not-a-token").sync(phone)
    with pytest.raises(fenlei.FenleiError.AccessDenied):
        fenlei.enroll_device(server.url, "000000", phone)
    with pytest.raises(fenlei.FenleiError.InvalidInput):
        fenlei.FenleiSyncClient("http://example.org", "token")  # plain HTTP off this machine
    with pytest.raises(fenlei.FenleiError.InvalidInput):
        fenlei.FenleiSyncClient(server.url, "   ")
    quick = fenlei.SyncOptions(batch_docs=50, every_document=False, max_retries=0, retry_base_ms=10, timeout_ms=2000)
    token = server.enroll(INSPECTOR, phone)
    server.stop()
    with pytest.raises(fenlei.FenleiError.Network):
        fenlei.FenleiSyncClient(server.url, token, quick).sync(phone)


def test_a_cancelled_sync_stops_with_cancelled(server, tmp_path):
    phone = device(tmp_path, "phone")
    client = fenlei.FenleiSyncClient(server.url, server.enroll(INSPECTOR, phone))
    handle = fenlei.CancelHandle()
    handle.cancel()
    with pytest.raises(fenlei.FenleiError.Cancelled):
        client.sync(phone, cancel=handle)
    assert client.sync(phone).round_trips >= 1, "the client stays usable"
