//! The fuzz harnesses (docs/reliability.md, "Fuzzing"): one function per target, called by the
//! cargo-fuzz targets in `fuzz/` and, in every `cargo test`, by tests/tests/fuzz_corpus.rs over
//! the seed corpora and every crash input kept as a regression. A harness returns normally for
//! any input; a panic that escapes is a crash.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use fenlei_core::inspection::InspectionDoc;
use fenlei_core::media::MediaStore;
use fenlei_core::protocol::{DocMessage, PROTOCOL_VERSION, SyncRequest};
use fenlei_server::model::{DeviceAuth, Role, User};
use fenlei_server::store::sqlite::SqliteStorage;
use std::io::Write;
use std::sync::OnceLock;

/// A harness: takes any bytes, returns normally.
pub type Harness = fn(&[u8]);

/// The targets, by name (the fuzz/ target names and corpus folders).
pub const TARGETS: &[(&str, Harness)] = &[
    ("sync_request", sync_request),
    ("sync_message", sync_message),
    ("document_load", document_load),
    ("photo_ingest", photo_ingest),
    ("standard_parse", standard_parse),
    ("csv_import", csv_import),
];

/// Fuzz-target init: libfuzzer-sys aborts on every panic, even one the product catches. The
/// product's contract is that decoder panics (automerge has a few) never escape its guard and
/// become typed errors, so a caught panic is reported once per location on stderr (and goes
/// upstream) while the run goes on. A panic that escapes a harness still aborts: libfuzzer-sys
/// wraps each input in catch_unwind and aborts on an escaped panic, so crashes stay crashes.
pub fn report_caught_panics() {
    static SEEN: OnceLock<std::sync::Mutex<std::collections::HashSet<String>>> = OnceLock::new();
    std::panic::set_hook(Box::new(|info| {
        let at = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let seen = SEEN.get_or_init(Default::default);
        if seen
            .lock()
            .map(|mut s| s.insert(at.clone()))
            .unwrap_or(false)
        {
            eprintln!(
                "fuzz: panic at {at} (caught by the product's guard unless the run aborts now): {info}"
            );
        }
    }));
}

/// A fixed device of an inspector of the sample city's first street.
const DEVICE: &str = "6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b";
/// The document id the raw sync messages are for.
const DOC: &str = "0190f0a0-0000-7000-8000-00000000f022";

struct Server {
    _dir: tempfile::TempDir,
    storage: SqliteStorage,
    auth: DeviceAuth,
}

fn server() -> &'static Server {
    static S: OnceLock<Server> = OnceLock::new();
    S.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        let storage = SqliteStorage::open(dir.path()).expect("server storage");
        fenlei_server::load_sample(&storage).expect("sample city");
        let cs = fenlei_core::community::parse_csv(fenlei_core::sample::CITY_CSV.as_bytes())
            .expect("sample city");
        let auth = DeviceAuth {
            device_id: DEVICE.into(),
            user: User {
                id: "insp.fuzz".into(),
                name: "insp.fuzz".into(),
                role: Role::Inspector,
                scope_epoch: 0,
            },
            scope: fenlei_core::protocol::Assignments {
                user_id: "insp.fuzz".into(),
                role: "inspector".into(),
                communities: vec![],
                streets: vec![cs[0].street.clone()],
                districts: vec![],
            },
        };
        Server {
            _dir: dir,
            storage,
            auth,
        }
    })
}

/// `POST /v1/sync` bodies: what the server does with the bytes of a request (JSON decode, then
/// the sync handler with its base64 and automerge decoding, authorisation and storage).
pub fn sync_request(data: &[u8]) {
    let s = server();
    if let Ok(request) = serde_json::from_slice::<SyncRequest>(data) {
        let _ = fenlei_server::sync::handle_sync(&s.storage, &s.auth, request);
    }
}

/// Raw automerge sync messages for one document, through the same sync handler.
pub fn sync_message(data: &[u8]) {
    let s = server();
    let request = SyncRequest {
        protocol: PROTOCOL_VERSION,
        docs: vec![DocMessage {
            id: DOC.into(),
            message: B64.encode(data),
        }],
        ..Default::default()
    };
    let _ = fenlei_server::sync::handle_sync(&s.storage, &s.auth, request);
}

/// Stored document bytes: load, read every part, save again.
pub fn document_load(data: &[u8]) {
    if let Ok(mut doc) = InspectionDoc::load(DOC, data, DEVICE) {
        let _ = doc.read();
        let _ = doc.history();
        let _ = doc.conflicts();
        let _ = doc.save();
    }
}

/// Photo ingest: the bytes as a photo file, into a media folder (sniffing, EXIF, decoding,
/// renditions, content-addressed storage).
pub fn photo_ingest(data: &[u8]) {
    struct Media {
        dir: tempfile::TempDir,
        store: MediaStore,
    }
    static M: OnceLock<Media> = OnceLock::new();
    let m = M.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = MediaStore::open(dir.path().join("media")).expect("media folder");
        Media { dir, store }
    });
    // One input file per thread (libFuzzer runs one input at a time; cargo test may not).
    let path = m
        .dir
        .path()
        .join(format!("input-{:?}", std::thread::current().id()));
    let mut f = std::fs::File::create(&path).expect("input file");
    f.write_all(data).expect("input file");
    drop(f);
    let _ = m.store.ingest_photo(&path, None);
    let _ = m.store.ingest_voice_note(&path, None);
}

/// Standard files: parse and validate, then score an empty inspection with it.
pub fn standard_parse(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(standard) = fenlei_core::standard::Standard::from_toml_str(text)
    {
        let _ = fenlei_core::scoring::score(&standard, &[]);
    }
}

/// Community lists (CSV import).
pub fn csv_import(data: &[u8]) {
    let _ = fenlei_core::community::parse_csv(data);
}
