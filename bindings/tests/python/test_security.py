"""Encryption at rest and tamper evidence through the Python bindings: an encrypted store, wrong
keys as typed errors, re-keying, a plain store encrypted in place; receipts for a submission
signed on an encrypted device, chain check state. Protocol and rollback detection are tested in tests/ (Rust, fenlei-e2e)."""

import os

import pytest

import fenlei
from conftest import COMMUNITY, INSPECTOR, STANDARD_ID, VERSION, ctx
from test_sync import SERVER_BIN, Server

KEY = bytes(range(32))
OTHER = bytes(reversed(range(32)))


def test_encrypted_store_wrong_key_and_rekey(tmp_path):
    path = str(tmp_path / "secret.sqlite")
    store = fenlei.FenleiStore.open_encrypted(path, KEY)
    assert store.is_encrypted()
    store.import_communities_csv(fenlei.sample_city_csv())
    name = store.community(COMMUNITY).name
    with open(path, "rb") as f:
        assert not f.read(16).startswith(b"SQLite format 3")
    with pytest.raises(fenlei.FenleiError.WrongKey):
        fenlei.FenleiStore.open_encrypted(path, OTHER)
    with pytest.raises(fenlei.FenleiError.InvalidInput):
        fenlei.FenleiStore.open_encrypted(path, b"short")
    store.rekey(OTHER)
    assert store.community(COMMUNITY).name == name
    del store
    with pytest.raises(fenlei.FenleiError.WrongKey):
        fenlei.FenleiStore.open_encrypted(path, KEY)
    again = fenlei.FenleiStore.open_encrypted(path, OTHER)
    assert again.community(COMMUNITY).name == name
    assert not fenlei.FenleiStore.open(str(tmp_path / "plain.sqlite")).is_encrypted()


def test_a_plain_store_is_encrypted_in_place(tmp_path):
    path = str(tmp_path / "fenlei.sqlite")
    plain = fenlei.FenleiStore.open(path)
    plain.import_communities_csv(fenlei.sample_city_csv())
    name = plain.community(COMMUNITY).name
    device = plain.device_id()
    # Still open: refused, and the plain store goes on working.
    with pytest.raises(fenlei.FenleiError.InvalidInput):
        fenlei.FenleiStore.encrypt_plain_store(path, KEY)
    assert plain.community(COMMUNITY).name == name
    del plain
    with open(path, "rb") as f:
        assert f.read(16).startswith(b"SQLite format 3")

    store = fenlei.FenleiStore.encrypt_plain_store(path, KEY)
    assert store.is_encrypted()
    assert store.device_id() == device
    assert store.community(COMMUNITY).name == name
    del store
    # Only the encrypted store's files are left; no plain copy, no plaintext.
    names = os.listdir(tmp_path)
    assert set(names) <= {"fenlei.sqlite", "fenlei.sqlite-wal", "fenlei.sqlite-shm"}, names
    with open(path, "rb") as f:
        assert not f.read(16).startswith(b"SQLite format 3")
    for n in names:
        with open(tmp_path / n, "rb") as f:
            assert name.encode() not in f.read()
    # Safe on every start: an encrypted store just opens; a wrong key is refused.
    with pytest.raises(fenlei.FenleiError.WrongKey):
        fenlei.FenleiStore.encrypt_plain_store(path, OTHER)
    again = fenlei.FenleiStore.encrypt_plain_store(path, KEY)
    assert again.community(COMMUNITY).name == name


@pytest.mark.skipif(not SERVER_BIN, reason="FENLEI_SERVER_BIN not set")
def test_a_submission_gets_a_receipt_and_the_chain_is_checked(tmp_path):
    server = Server(tmp_path / "server")
    try:
        phone = fenlei.FenleiStore.open_encrypted(str(tmp_path / "phone.sqlite"), KEY)
        assert len(phone.device_public_key()) == 64
        client = fenlei.FenleiSyncClient(server.url, server.enroll(INSPECTOR, phone))
        assert phone.chain_check().state == fenlei.ChainState.NOT_CHECKED
        client.sync(phone)
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
        client.sync(phone)
        report = client.exchange_receipts(phone)
        assert report.receipts_received == 1 and report.pending == 0 and report.refused == []
        assert report.chain.state == fenlei.ChainState.CONSISTENT
        [receipt] = phone.receipts(iid)
        assert receipt.chain_index == 0 and len(receipt.entry_hash) == 64
        assert phone.receipts() == [receipt]
        again = client.exchange_receipts(phone)
        assert again.receipts_received == 0
        assert phone.chain_check().state == fenlei.ChainState.CONSISTENT
        assert phone.chain_check().chain_length == 1
    finally:
        server.stop()
