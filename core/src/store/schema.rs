//! The store's SQL schema and its migrations (rusqlite_migration keeps the version in SQLite's
//! `user_version`). A migration is never edited once released: add a new one at the end.
//! `tests/store_migrations.rs` proves a database migrated from every earlier version, with
//! data in it, has exactly the schema of a fresh one and keeps its data.

use crate::{CoreError, Result};
use rusqlite::Connection;
use rusqlite_migration::{M, Migrations};

/// Version 1: reference data, documents, and the relational projection of inspections.
const V1: &str = r#"
CREATE TABLE meta (
    key   TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
) STRICT;

CREATE TABLE communities (
    id               TEXT PRIMARY KEY NOT NULL,
    name             TEXT NOT NULL,
    district         TEXT NOT NULL,
    street           TEXT NOT NULL,
    committee        TEXT NOT NULL,
    address          TEXT NOT NULL,
    lat              REAL NOT NULL,
    lon              REAL NOT NULL,
    geofence_m       REAL NOT NULL,
    property_manager TEXT NOT NULL,
    households       INTEGER NOT NULL
) STRICT;
CREATE INDEX communities_by_lat ON communities(lat, lon);

CREATE TABLE standards (
    id          TEXT NOT NULL,
    version     TEXT NOT NULL,
    name        TEXT NOT NULL,
    source      TEXT NOT NULL,
    imported_at INTEGER NOT NULL,
    PRIMARY KEY (id, version)
) STRICT;

-- Automerge documents: a snapshot plus the incremental changes saved since it.
CREATE TABLE documents (
    id         TEXT PRIMARY KEY NOT NULL,
    kind       TEXT NOT NULL,
    snapshot   BLOB NOT NULL,
    updated_at INTEGER NOT NULL
) STRICT;
CREATE TABLE document_changes (
    doc_id TEXT NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    seq    INTEGER NOT NULL,
    bytes  BLOB NOT NULL,
    PRIMARY KEY (doc_id, seq)
) STRICT;

-- The projection: rebuilt from the documents alone by Store::rebuild_projection.
CREATE TABLE inspections (
    id               TEXT PRIMARY KEY NOT NULL,
    community_id     TEXT NOT NULL,
    standard_id      TEXT NOT NULL,
    standard_version TEXT NOT NULL,
    kind             TEXT NOT NULL,
    status           TEXT NOT NULL,
    created_by       TEXT NOT NULL,
    started_at       INTEGER NOT NULL,
    ended_at         INTEGER,
    updated_at       INTEGER NOT NULL,
    total            REAL,
    grade            TEXT,
    vetoed           INTEGER NOT NULL DEFAULT 0,
    conflict_count   INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE INDEX inspections_by_community ON inspections(community_id, started_at);
CREATE INDEX inspections_by_status ON inspections(status, started_at);
CREATE INDEX inspections_by_started ON inspections(started_at);

CREATE TABLE inspection_inspectors (
    inspection_id TEXT NOT NULL REFERENCES inspections(id) ON DELETE CASCADE,
    user_id       TEXT NOT NULL,
    PRIMARY KEY (inspection_id, user_id)
) STRICT;
CREATE INDEX inspection_inspectors_by_user ON inspection_inspectors(user_id);

CREATE TABLE item_answers (
    inspection_id TEXT NOT NULL REFERENCES inspections(id) ON DELETE CASCADE,
    item_code     TEXT NOT NULL,
    value_kind    TEXT NOT NULL,
    value_json    TEXT NOT NULL,
    note          TEXT,
    answered_by   TEXT NOT NULL,
    answered_at   INTEGER NOT NULL,
    deduction     REAL,
    bonus         REAL,
    in_conflict   INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (inspection_id, item_code)
) STRICT;

CREATE TABLE evidence_refs (
    inspection_id TEXT NOT NULL REFERENCES inspections(id) ON DELETE CASCADE,
    item_code     TEXT NOT NULL,
    sha256        TEXT NOT NULL,
    media         TEXT NOT NULL,
    added_by      TEXT NOT NULL,
    added_at      INTEGER NOT NULL,
    PRIMARY KEY (inspection_id, item_code, sha256)
) STRICT;
CREATE INDEX evidence_refs_by_hash ON evidence_refs(sha256);
"#;

/// Version 2: full marks on the inspection row (a score is read as total/max) and per-section
/// subtotals, which supervisors' bulletins break scores down by.
const V2: &str = r#"
ALTER TABLE inspections ADD COLUMN max_points REAL;
CREATE TABLE section_scores (
    inspection_id TEXT NOT NULL REFERENCES inspections(id) ON DELETE CASCADE,
    section_code  TEXT NOT NULL,
    max_points    REAL NOT NULL,
    subtotal      REAL NOT NULL,
    PRIMARY KEY (inspection_id, section_code)
) STRICT;
"#;

/// Version 3: sync. `change_feed` holds, for every document, the sequence number of its latest
/// change (a counter that only grows, so a cursor never misses a change); triggers keep it in
/// the same transaction as the document write. `sync_documents` is what this store last agreed
/// with the server per document; `sync_meta` holds the feed cursors.
const V3: &str = r#"
CREATE TABLE change_counter (
    id  INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
    seq INTEGER NOT NULL
) STRICT;
INSERT INTO change_counter (id, seq) VALUES (1, 0);
CREATE TABLE change_feed (
    doc_id TEXT PRIMARY KEY NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    seq    INTEGER NOT NULL
) STRICT;
CREATE UNIQUE INDEX change_feed_by_seq ON change_feed(seq);
CREATE TRIGGER change_feed_on_document AFTER INSERT ON documents BEGIN
    UPDATE change_counter SET seq = seq + 1 WHERE id = 1;
    INSERT OR REPLACE INTO change_feed (doc_id, seq)
        VALUES (NEW.id, (SELECT seq FROM change_counter WHERE id = 1));
END;
CREATE TRIGGER change_feed_on_change AFTER INSERT ON document_changes BEGIN
    UPDATE change_counter SET seq = seq + 1 WHERE id = 1;
    INSERT OR REPLACE INTO change_feed (doc_id, seq)
        VALUES (NEW.doc_id, (SELECT seq FROM change_counter WHERE id = 1));
END;
INSERT INTO change_feed (doc_id, seq) SELECT id, row_number() OVER (ORDER BY id) FROM documents;
UPDATE change_counter SET seq = (SELECT count(*) FROM documents) WHERE id = 1;

CREATE TABLE sync_documents (
    doc_id     TEXT PRIMARY KEY NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    synced_seq INTEGER NOT NULL,
    server_seq INTEGER NOT NULL,
    state      BLOB NOT NULL
) STRICT;
CREATE TABLE sync_meta (
    key   TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
) STRICT;
"#;

/// Version 4: photos and voice notes. `media` is one row per stored file (by the SHA-256 of the
/// original; paths are relative to the media folder), written only after its files are complete
/// on disk. `evidence_checks` holds the flags computed when a photo or voice note was attached
/// to an item; `geofence_checks` the "inspector within the fence" checks at start and submit.
/// Both hang off `documents`, not `inspections`: the projection is deleted and rebuilt from the
/// documents, but these results are not derivable from them (they depend on when they ran).
const V4: &str = r#"
CREATE TABLE media (
    sha256         TEXT PRIMARY KEY NOT NULL,
    kind           TEXT NOT NULL,
    mime           TEXT NOT NULL,
    bytes          INTEGER NOT NULL,
    original_path  TEXT NOT NULL,
    thumb_path     TEXT,
    thumb_sha256   TEXT,
    thumb_bytes    INTEGER,
    thumb_width    INTEGER,
    thumb_height   INTEGER,
    upload_path    TEXT,
    upload_sha256  TEXT,
    upload_bytes   INTEGER,
    upload_width   INTEGER,
    upload_height  INTEGER,
    width          INTEGER,
    height         INTEGER,
    taken_local    TEXT,
    taken_local_ms INTEGER,
    offset_minutes INTEGER,
    lat            REAL,
    lon            REAL,
    altitude_m     REAL,
    h_error_m      REAL,
    orientation    INTEGER,
    make           TEXT,
    model          TEXT,
    software       TEXT,
    exif_json      TEXT,
    duration_ms    INTEGER,
    transcript     TEXT,
    flags_json     TEXT NOT NULL,
    created_at     INTEGER NOT NULL
) STRICT;
CREATE INDEX media_by_created ON media(created_at);

CREATE TABLE evidence_checks (
    inspection_id TEXT NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    item_code     TEXT NOT NULL,
    sha256        TEXT NOT NULL REFERENCES media(sha256),
    flags_json    TEXT NOT NULL,
    checked_at    INTEGER NOT NULL,
    PRIMARY KEY (inspection_id, item_code, sha256)
) STRICT;
CREATE INDEX evidence_checks_by_hash ON evidence_checks(sha256);

CREATE TABLE geofence_checks (
    id            INTEGER PRIMARY KEY,
    inspection_id TEXT NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    stage         TEXT NOT NULL,
    status        TEXT NOT NULL,
    distance_m    REAL,
    geofence_m    REAL NOT NULL,
    fix_json      TEXT,
    flags_json    TEXT NOT NULL,
    checked_at    INTEGER NOT NULL
) STRICT;
CREATE INDEX geofence_checks_by_inspection ON geofence_checks(inspection_id, checked_at);
"#;

/// Version 5: media sync. `media_uploads` is what the server confirmed of each file of a photo
/// or voice note (thumbnail, upload rendition, original; docs/media-sync.md), so a restarted app
/// asks the server only about files not done. The server's answer decides where to resume.
const V5: &str = r#"
CREATE TABLE media_uploads (
    sha256      TEXT NOT NULL REFERENCES media(sha256),
    rendition   TEXT NOT NULL CHECK (rendition IN ('thumb', 'upload', 'original')),
    blob_sha256 TEXT NOT NULL,
    bytes       INTEGER NOT NULL,
    confirmed   INTEGER NOT NULL,
    done_at     INTEGER,
    note        TEXT,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (sha256, rendition)
) STRICT;
"#;

/// Version 6: rectification tasks (整改). Their documents live in `documents` with kind
/// 'rectification'; these tables are their projection (rebuilt from the documents like
/// `inspections`). `rectification_evidence` holds the photos: the finding's ("finding") and
/// the closure's ("closure", with its evidence kind).
const V6: &str = r#"
CREATE TABLE rectifications (
    id            TEXT PRIMARY KEY NOT NULL,
    community_id  TEXT NOT NULL,
    inspection_id TEXT NOT NULL,
    item_code     TEXT NOT NULL,
    item_title    TEXT NOT NULL,
    responsible   TEXT NOT NULL,
    source        TEXT NOT NULL,
    status        TEXT NOT NULL,
    opened_by     TEXT NOT NULL,
    opened_at     INTEGER NOT NULL,
    deadline      INTEGER NOT NULL,
    deduction     REAL,
    closed_at     INTEGER,
    updated_at    INTEGER NOT NULL
) STRICT;
CREATE INDEX rectifications_by_community ON rectifications(community_id, status);
CREATE INDEX rectifications_by_inspection ON rectifications(inspection_id, item_code);
CREATE INDEX rectifications_by_deadline ON rectifications(status, deadline);
CREATE TABLE rectification_evidence (
    task_id TEXT NOT NULL REFERENCES rectifications(id) ON DELETE CASCADE,
    phase   TEXT NOT NULL CHECK (phase IN ('finding', 'closure')),
    kind    TEXT NOT NULL,
    sha256  TEXT NOT NULL,
    PRIMARY KEY (task_id, phase, kind, sha256)
) STRICT;
"#;

/// Version 7: tamper evidence (docs/tamper-evidence.md). `signing_keys` holds this device's
/// Ed25519 key (created once, registered with the server at enrollment; encrypted with the rest
/// of the file when the store is opened with a key). `statements` holds every submission this
/// device signed, by the SHA-256 of its canonical bytes; `receipts` the server's receipt for it.
const V7: &str = r#"
CREATE TABLE signing_keys (
    id         INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
    secret     BLOB NOT NULL,
    public_key TEXT NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;
CREATE TABLE statements (
    sha256          TEXT PRIMARY KEY NOT NULL,
    inspection_id   TEXT NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    submitted_at_ms INTEGER NOT NULL,
    bytes           BLOB NOT NULL,
    signature       TEXT NOT NULL,
    signed_at       INTEGER NOT NULL,
    UNIQUE (inspection_id, submitted_at_ms)
) STRICT;
CREATE TABLE receipts (
    statement_sha256 TEXT PRIMARY KEY NOT NULL REFERENCES statements(sha256) ON DELETE CASCADE,
    chain_index      INTEGER NOT NULL,
    prev_hash        TEXT NOT NULL,
    entry_hash       TEXT NOT NULL,
    received_at_ms   INTEGER NOT NULL,
    server_key       TEXT NOT NULL,
    server_signature TEXT NOT NULL,
    stored_at        INTEGER NOT NULL
) STRICT;
CREATE INDEX receipts_by_index ON receipts(chain_index);
"#;

pub(crate) fn migrations() -> Migrations<'static> {
    Migrations::new(vec![
        M::up(V1),
        M::up(V2),
        M::up(V3),
        M::up(V4),
        M::up(V5),
        M::up(V6),
        M::up(V7),
    ])
}

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = 7;

/// Brings a database to the current schema. A database from a newer build is refused
/// untouched rather than downgraded.
pub(crate) fn upgrade(conn: &mut Connection) -> Result<()> {
    let found: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if found > SCHEMA_VERSION {
        return Err(CoreError::DatabaseTooNew {
            found,
            supported: SCHEMA_VERSION,
        });
    }
    migrations().to_latest(conn)?;
    Ok(())
}

/// Migrates to an older version: for the migration tests only.
#[doc(hidden)]
pub fn migrate_to_version(conn: &mut Connection, version: usize) -> Result<()> {
    migrations().to_version(conn, version)?;
    Ok(())
}
