"""Photos and voice notes through FenleiMedia: the glue (paths in, records and flag enums out,
errors mapped), not the checks themselves, which core's tests own."""

import os
import wave

import pytest

import fenlei
from fenlei import FenleiError
from conftest import COMMUNITY, INSPECTOR, STANDARD_ID, VERSION, ctx

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
CORPUS = os.path.join(ROOT, "..", "shared", "fixtures", "photos")


@pytest.fixture
def media(loaded, tmp_path):
    return fenlei.FenleiMedia.open(loaded, str(tmp_path / "media"))


def write_wav(path, frames):
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16_000)
        w.writeframes(b"\0\0" * frames)
    return str(path)


def test_voice_note_round_trip(loaded, media, inspection_id, tmp_path):
    note = write_wav(tmp_path / "note.wav", 8_000)
    attached = media.attach_voice_note(inspection_id, "A01", note, transcript="厨余桶满溢", by=INSPECTOR)
    assert attached.record.kind == fenlei.MediaKind.VOICE_NOTE
    assert attached.record.duration_ms == 500
    assert attached.record.transcript == "厨余桶满溢"
    assert attached.evidence.item_code == "A01"
    assert len(attached.flags) == 1 and attached.flags[0].is_NO_DEVICE_FIX()
    assert os.path.isfile(media.file_path(attached.record.original_path))

    stored = media.media(attached.record.sha256)
    assert (stored.sha256, stored.mime, stored.duration_ms, stored.transcript, stored.original_path) == (
        attached.record.sha256,
        attached.record.mime,
        500,
        "厨余桶满溢",
        attached.record.original_path,
    )
    assert media.media("0" * 64) is None
    assert [m.sha256 for m in media.inspection_media(inspection_id)] == [attached.record.sha256]
    checks = media.evidence_flags(inspection_id)
    assert [(c.item_code, c.sha256, c.kind) for c in checks] == [
        ("A01", attached.record.sha256, fenlei.MediaKind.VOICE_NOTE)
    ]
    assert [e.sha256 for e in loaded.inspection(inspection_id).evidence] == [attached.record.sha256]


def test_bad_files_and_ids_are_typed_errors(loaded, media, inspection_id, tmp_path):
    junk = tmp_path / "junk.jpg"
    junk.write_bytes(b"not a photo")
    with pytest.raises(FenleiError.InvalidInput):
        media.attach_photo(inspection_id, "A01", str(junk), by=INSPECTOR)
    with pytest.raises(FenleiError.NotFound):
        media.attach_voice_note(inspection_id, "ZZ99", write_wav(tmp_path / "n.wav", 10), by=INSPECTOR)
    with pytest.raises(FenleiError.Storage):
        media.attach_photo(inspection_id, "A01", str(tmp_path / "missing.jpg"), by=INSPECTOR)
    assert media.inspection_media(inspection_id) == []
    assert loaded.inspection(inspection_id).evidence == []


def test_geofence_checks_at_first_fix_and_submit(loaded, media, inspection_id):
    here = loaded.community(COMMUNITY).location
    fix = fenlei.GpsFix(location=here, accuracy_m=5.0, provider="gps", at_ms=loaded.inspection(inspection_id).started_at_ms, is_mock=False)
    loaded.add_gps_fix(inspection_id, fix, INSPECTOR)
    loaded.set_status(inspection_id, fenlei.InspectionStatus.SUBMITTED, ctx())
    checks = media.geofence_checks(inspection_id)
    assert [c.stage for c in checks] == [fenlei.GeofenceStage.START, fenlei.GeofenceStage.SUBMIT]
    assert checks[0].check.status == fenlei.GeofenceStatus.INSIDE
    assert checks[0].fix == fix


@pytest.mark.skipif(not os.path.isdir(CORPUS), reason="shared photo corpus (../shared/fixtures/photos) not present")
def test_real_photo_far_away_and_reused(loaded, media, inspection_id):
    photo = os.path.join(CORPUS, "gps", "DSCN0010.jpg")
    first = media.attach_photo(inspection_id, "A01", photo, by=INSPECTOR)
    assert first.record.kind == fenlei.MediaKind.PHOTO
    assert first.record.exif.gps is not None
    assert os.path.isfile(media.file_path(first.record.thumbnail.path))
    far = [f for f in first.flags if f.is_PHOTO_FAR_FROM_COMMUNITY()]
    assert far and far[0].distance_m > 1_000_000

    second_id = loaded.create_inspection(
        fenlei.NewInspection(
            community_id=COMMUNITY,
            standard_id=STANDARD_ID,
            standard_version=VERSION,
            kind=fenlei.InspectionKind.DAILY_PATROL,
        ),
        INSPECTOR,
    )
    second = media.attach_photo(second_id, "A01", photo, by=INSPECTOR)
    reused = [f for f in second.flags if f.is_REUSED_PHOTO()]
    assert reused and reused[0].inspection_ids == [inspection_id]


@pytest.mark.skipif(not os.path.isdir(CORPUS), reason="shared photo corpus (../shared/fixtures/photos) not present")
def test_closure_photo_is_ingested_and_recorded_on_the_task(loaded, media, inspection_id):
    tasks = fenlei.FenleiRectifications(loaded)
    task_id = tasks.open(
        fenlei.NewRectification(
            community_id=COMMUNITY,
            inspection_id=inspection_id,
            item_code="C01",
            item_title="收集容器脏污、未加盖、破损或满溢",
            responsible="物业",
            deadline_days=3,
            required_evidence=["photo_after"],
        ),
        INSPECTOR,
    )
    photo = os.path.join(CORPUS, "phone", "iphone6_gps.jpg")
    record = media.attach_closure_photo(task_id, "photo_after", photo, by=INSPECTOR)
    assert record.kind == fenlei.MediaKind.PHOTO
    assert os.path.isfile(media.file_path(record.thumbnail.path))
    assert media.media(record.sha256).sha256 == record.sha256
    assert [(e.kind, e.sha256) for e in tasks.get(task_id).closure_evidence] == [("photo_after", record.sha256)]
    with pytest.raises(fenlei.FenleiError.InvalidInput):
        media.attach_closure_photo(task_id, "selfie", photo, by=INSPECTOR)
