"""Media sync through the Python bindings against a real fenlei-server process: photos and voice
notes go up after their document, originals wait for Wi-Fi, and a supervisor downloads them
through the server's media route. The protocol itself is tested in tests/ (Rust, fenlei-e2e)."""

import base64
import hashlib
import urllib.error
import urllib.request

import fenlei
from conftest import COMMUNITY, INSPECTOR, STANDARD_ID, VERSION
from test_media import write_wav
from test_sync import SUPERVISOR, Counter, device, pytestmark, server  # noqa: F401 (fixture, skip mark)

# A 96x64 baseline JPEG (made with libvips): a real photo file, small enough to keep here.
SMALL_JPEG = base64.b64decode("/9j/4QC8RXhpZgAASUkqAAgAAAAGABIBAwABAAAAAQAAABoBBQABAAAAVgAAABsBBQABAAAAXgAAACgBAwABAAAAAgAAABMCAwABAAAAAQAAAGmHBAABAAAAZgAAAAAAAAA4YwAA6AMAADhjAADoAwAABgAAkAcABAAAADAyMTABkQcABAAAAAECAwAAoAcABAAAADAxMDABoAMAAQAAAP//AAACoAQAAQAAAGAAAAADoAQAAQAAAEAAAAAAAAAA/9sAQwAGBAUGBQQGBgUGBwcGCAoQCgoJCQoUDg8MEBcUGBgXFBYWGh0lHxobIxwWFiAsICMmJykqKRkfLTAtKDAlKCko/9sAQwEHBwcKCAoTCgoTKBoWGigoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgo/8AAEQgAQABgAwEiAAIRAQMRAf/EAB8AAAEFAQEBAQEBAAAAAAAAAAABAgMEBQYHCAkKC//EALUQAAIBAwMCBAMFBQQEAAABfQECAwAEEQUSITFBBhNRYQcicRQygZGhCCNCscEVUtHwJDNicoIJChYXGBkaJSYnKCkqNDU2Nzg5OkNERUZHSElKU1RVVldYWVpjZGVmZ2hpanN0dXZ3eHl6g4SFhoeIiYqSk5SVlpeYmZqio6Slpqeoqaqys7S1tre4ubrCw8TFxsfIycrS09TV1tfY2drh4uPk5ebn6Onq8fLz9PX29/j5+v/EAB8BAAMBAQEBAQEBAQEAAAAAAAABAgMEBQYHCAkKC//EALURAAIBAgQEAwQHBQQEAAECdwABAgMRBAUhMQYSQVEHYXETIjKBCBRCkaGxwQkjM1LwFWJy0QoWJDThJfEXGBkaJicoKSo1Njc4OTpDREVGR0hJSlNUVVZXWFlaY2RlZmdoaWpzdHV2d3h5eoKDhIWGh4iJipKTlJWWl5iZmqKjpKWmp6ipqrKztLW2t7i5usLDxMXGx8jJytLT1NXW19jZ2uLj5OXm5+jp6vLz9PX29/j5+v/aAAwDAQACEQMRAD8A+VKKKKACiiigAooooAKKKKACiiigAooooAKKKKACiiigAooooAKKKKACiiigAooooAKKKKACiiigAooooAKKKKACiiigAooooAKKKKACiiigAooooAKKKKACiiigAooooA//2Q==")


def fetch(url, token):
    req = urllib.request.Request(url, headers={"Authorization": "Bearer " + token})
    try:
        with urllib.request.urlopen(req) as resp:
            return resp.status, resp.headers.get("Content-Type"), resp.read()
    except urllib.error.HTTPError as e:
        return e.code, None, b""


def test_media_sync_holds_originals_for_wifi_and_supervisors_download(server, tmp_path):
    phone = device(tmp_path, "phone")
    client = fenlei.FenleiSyncClient(server.url, server.enroll(INSPECTOR, phone))
    client.sync(phone)
    media = fenlei.FenleiMedia.open(phone, str(tmp_path / "media"))
    iid = phone.create_inspection(
        fenlei.NewInspection(
            community_id=COMMUNITY,
            standard_id=STANDARD_ID,
            standard_version=VERSION,
            kind=fenlei.InspectionKind.DAILY_PATROL,
        ),
        INSPECTOR,
    )
    photo_path = tmp_path / "bin.jpg"
    photo_path.write_bytes(SMALL_JPEG)
    photo = media.attach_photo(iid, "A01", str(photo_path), by=INSPECTOR).record
    note = media.attach_voice_note(iid, "A01", write_wav(tmp_path / "n.wav", 16_000), by=INSPECTOR).record

    progress = Counter()
    cellular = fenlei.MediaSyncOptions(
        network=fenlei.NetworkKind.CELLULAR,
        originals_on_metered=False,
        sync_documents_first=True,
        chunk_bytes=64 * 1024,
    )
    first = client.sync_media(media, cellular, progress=progress)
    assert first.documents.documents_exchanged == 1
    assert (first.uploaded, first.held_for_wifi, first.held_bytes) == (3, 1, len(SMALL_JPEG))
    assert first.failed == [] and progress.calls and progress.calls[-1][0] == progress.calls[-1][1]
    states = {(s.sha256, s.rendition): s for s in media.upload_states(iid)}
    assert not states[(photo.sha256, fenlei.MediaRendition.ORIGINAL)].done
    assert states[(photo.sha256, fenlei.MediaRendition.THUMB)].done
    assert states[(note.sha256, fenlei.MediaRendition.ORIGINAL)].done

    wifi = fenlei.MediaSyncOptions(
        network=fenlei.NetworkKind.WIFI, originals_on_metered=False, sync_documents_first=True, chunk_bytes=64 * 1024
    )
    second = client.sync_media(media, wifi)
    assert (second.uploaded, second.held_for_wifi) == (1, 0)
    assert all(s.done for s in media.upload_states(iid))

    # The district supervisor downloads the original; the bytes are the photo's evidence hash.
    tablet = device(tmp_path, "tablet")
    sup_token = server.enroll(SUPERVISOR, tablet)
    status, ctype, body = fetch("%s/v1/media/%s?rendition=original" % (server.url, photo.sha256), sup_token)
    assert (status, ctype) == (200, "image/jpeg")
    assert hashlib.sha256(body).hexdigest() == photo.sha256 and body == SMALL_JPEG
    status, ctype, _ = fetch("%s/v1/media/%s?rendition=thumb" % (server.url, photo.sha256), sup_token)
    assert (status, ctype) == (200, "image/jpeg")
    status, _, _ = fetch("%s/v1/media/%s?rendition=original" % (server.url, "0" * 64), sup_token)
    assert status == 403


def test_a_cancelled_media_sync_stops_with_cancelled(server, tmp_path):
    phone = device(tmp_path, "phone")
    client = fenlei.FenleiSyncClient(server.url, server.enroll(INSPECTOR, phone))
    media = fenlei.FenleiMedia.open(phone, str(tmp_path / "media"))
    handle = fenlei.CancelHandle()
    handle.cancel()
    try:
        client.sync_media(media, cancel=handle)
        raise AssertionError("expected Cancelled")
    except fenlei.FenleiError.Cancelled:
        pass
    assert client.sync_media(media).uploaded == 0, "the client stays usable"
