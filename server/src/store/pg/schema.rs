//! The PostgreSQL schema, as versioned migrations (applied in order, the version kept in
//! `server_meta`). It mirrors the SQLite tables the server uses (the core store's documents,
//! change feed, projection, communities, standards and rectifications, plus the server's own
//! tables) with the same table and column names, so queries port directly: INTEGER → BIGINT
//! (0/1 flags included), REAL → DOUBLE PRECISION, TEXT → TEXT, BLOB → BYTEA.
//!
//! Append new migrations at the end; never edit one that has shipped.

pub const MIGRATIONS: &[&str] = &[
    // 1: everything the SQLite server database holds.
    r#"
CREATE TABLE communities (
    id               TEXT PRIMARY KEY NOT NULL,
    name             TEXT NOT NULL,
    district         TEXT NOT NULL,
    street           TEXT NOT NULL,
    committee        TEXT NOT NULL,
    address          TEXT NOT NULL,
    lat              DOUBLE PRECISION NOT NULL,
    lon              DOUBLE PRECISION NOT NULL,
    geofence_m       DOUBLE PRECISION NOT NULL,
    property_manager TEXT NOT NULL,
    households       BIGINT NOT NULL
);
CREATE INDEX communities_by_lat ON communities(lat, lon);
CREATE INDEX communities_by_street ON communities(street);
CREATE INDEX communities_by_district ON communities(district);

CREATE TABLE standards (
    id          TEXT NOT NULL,
    version     TEXT NOT NULL,
    name        TEXT NOT NULL,
    source      TEXT NOT NULL,
    imported_at BIGINT NOT NULL,
    PRIMARY KEY (id, version)
);

-- One row per automerge document (kind 'inspection' or 'rectification'): a full save in
-- `snapshot`, and changes saved since then in document_changes (compacted into the snapshot).
CREATE TABLE documents (
    id         TEXT PRIMARY KEY NOT NULL,
    kind       TEXT NOT NULL,
    snapshot   BYTEA NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE TABLE document_changes (
    doc_id TEXT NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    seq    BIGINT NOT NULL,
    bytes  BYTEA NOT NULL,
    PRIMARY KEY (doc_id, seq)
);

-- The change feed: each document's latest sequence number. Numbers come from the single
-- change_counter row, bumped as the last statement of the writing transaction, so its row lock
-- makes commits visible in sequence order and a device's cursor never skips a late commit.
CREATE TABLE change_counter (
    id  BIGINT PRIMARY KEY NOT NULL CHECK (id = 1),
    seq BIGINT NOT NULL
);
INSERT INTO change_counter (id, seq) VALUES (1, 0);
CREATE TABLE change_feed (
    doc_id TEXT PRIMARY KEY NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    seq    BIGINT NOT NULL UNIQUE
);

-- The projection of inspection documents (derived, rebuildable).
CREATE TABLE inspections (
    id               TEXT PRIMARY KEY NOT NULL,
    community_id     TEXT NOT NULL,
    standard_id      TEXT NOT NULL,
    standard_version TEXT NOT NULL,
    kind             TEXT NOT NULL,
    status           TEXT NOT NULL,
    created_by       TEXT NOT NULL,
    started_at       BIGINT NOT NULL,
    ended_at         BIGINT,
    updated_at       BIGINT NOT NULL,
    total            DOUBLE PRECISION,
    grade            TEXT,
    vetoed           BIGINT NOT NULL DEFAULT 0,
    conflict_count   BIGINT NOT NULL DEFAULT 0,
    max_points       DOUBLE PRECISION
);
CREATE INDEX inspections_by_community ON inspections(community_id, started_at);
CREATE INDEX inspections_by_status ON inspections(status, started_at);
CREATE INDEX inspections_by_started ON inspections(started_at);
CREATE TABLE inspection_inspectors (
    inspection_id TEXT NOT NULL REFERENCES inspections(id) ON DELETE CASCADE,
    user_id       TEXT NOT NULL,
    PRIMARY KEY (inspection_id, user_id)
);
CREATE INDEX inspection_inspectors_by_user ON inspection_inspectors(user_id);
CREATE TABLE item_answers (
    inspection_id TEXT NOT NULL REFERENCES inspections(id) ON DELETE CASCADE,
    item_code     TEXT NOT NULL,
    value_kind    TEXT NOT NULL,
    value_json    TEXT NOT NULL,
    note          TEXT,
    answered_by   TEXT NOT NULL,
    answered_at   BIGINT NOT NULL,
    deduction     DOUBLE PRECISION,
    bonus         DOUBLE PRECISION,
    in_conflict   BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (inspection_id, item_code)
);
CREATE TABLE evidence_refs (
    inspection_id TEXT NOT NULL REFERENCES inspections(id) ON DELETE CASCADE,
    item_code     TEXT NOT NULL,
    sha256        TEXT NOT NULL,
    media         TEXT NOT NULL,
    added_by      TEXT NOT NULL,
    added_at      BIGINT NOT NULL,
    PRIMARY KEY (inspection_id, item_code, sha256)
);
CREATE INDEX evidence_refs_by_hash ON evidence_refs(sha256);
CREATE TABLE section_scores (
    inspection_id TEXT NOT NULL REFERENCES inspections(id) ON DELETE CASCADE,
    section_code  TEXT NOT NULL,
    max_points    DOUBLE PRECISION NOT NULL,
    subtotal      DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (inspection_id, section_code)
);

-- The projection of rectification task documents.
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
    opened_at     BIGINT NOT NULL,
    deadline      BIGINT NOT NULL,
    deduction     DOUBLE PRECISION,
    closed_at     BIGINT,
    updated_at    BIGINT NOT NULL
);
CREATE INDEX rectifications_by_community ON rectifications(community_id, status);
CREATE INDEX rectifications_by_inspection ON rectifications(inspection_id, item_code);
CREATE INDEX rectifications_by_deadline ON rectifications(status, deadline);
CREATE TABLE rectification_evidence (
    task_id TEXT NOT NULL REFERENCES rectifications(id) ON DELETE CASCADE,
    phase   TEXT NOT NULL CHECK (phase IN ('finding', 'closure')),
    kind    TEXT NOT NULL,
    sha256  TEXT NOT NULL,
    PRIMARY KEY (task_id, phase, kind, sha256)
);
CREATE INDEX rectification_evidence_by_hash ON rectification_evidence(sha256);

-- Accounts.
CREATE TABLE users (
    id          TEXT PRIMARY KEY NOT NULL,
    name        TEXT NOT NULL,
    role        TEXT NOT NULL CHECK (role IN ('inspector', 'supervisor', 'admin')),
    scope_epoch BIGINT NOT NULL DEFAULT 0
);
CREATE TABLE user_scopes (
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    kind    TEXT NOT NULL CHECK (kind IN ('community', 'street', 'district')),
    value   TEXT NOT NULL,
    PRIMARY KEY (user_id, kind, value)
);
CREATE INDEX user_scopes_by_value ON user_scopes(kind, value);
CREATE TABLE devices (
    id          TEXT PRIMARY KEY NOT NULL,
    user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    token_hash  TEXT NOT NULL UNIQUE,
    enrolled_at BIGINT NOT NULL,
    revoked     BIGINT NOT NULL DEFAULT 0,
    public_key  TEXT
);
CREATE TABLE enrollment_codes (
    code_hash  TEXT PRIMARY KEY NOT NULL,
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    expires_at BIGINT NOT NULL,
    used_by    TEXT
);

-- Reference data devices download, by cursor. `seq` comes from reference_counter like the
-- change feed's (never a SEQUENCE: a cursor must not skip a late commit).
CREATE TABLE reference_counter (
    id  BIGINT PRIMARY KEY NOT NULL CHECK (id = 1),
    seq BIGINT NOT NULL
);
INSERT INTO reference_counter (id, seq) VALUES (1, 0);
CREATE TABLE reference_log (
    seq  BIGINT PRIMARY KEY NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('community', 'standard', 'assignments')),
    key  TEXT NOT NULL,
    UNIQUE (kind, key)
);

-- Media blobs the server holds (the bytes are in the blob store).
CREATE TABLE media_blobs (
    sha256      TEXT NOT NULL,
    rendition   TEXT NOT NULL CHECK (rendition IN ('thumb', 'upload', 'original')),
    blob_sha256 TEXT NOT NULL,
    bytes       BIGINT NOT NULL,
    mime        TEXT NOT NULL,
    device_id   TEXT NOT NULL,
    stored_at   BIGINT NOT NULL,
    PRIMARY KEY (sha256, rendition)
);
CREATE INDEX media_blobs_by_blob ON media_blobs(blob_sha256);

-- Dashboard sign-in.
CREATE TABLE user_passwords (
    user_id         TEXT PRIMARY KEY NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    phc             TEXT NOT NULL,
    set_at          BIGINT NOT NULL,
    failed_attempts BIGINT NOT NULL DEFAULT 0,
    locked_until    BIGINT NOT NULL DEFAULT 0
);
CREATE TABLE web_sessions (
    id         TEXT PRIMARY KEY NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    csrf_token TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    last_seen  BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX web_sessions_by_user ON web_sessions(user_id);

-- Tamper evidence: the append-only chain of signed submissions.
CREATE TABLE chain_entries (
    idx              BIGINT PRIMARY KEY NOT NULL,
    prev_hash        TEXT NOT NULL,
    entry_hash       TEXT NOT NULL,
    received_at      BIGINT NOT NULL,
    statement_sha256 TEXT NOT NULL UNIQUE,
    device_signature TEXT NOT NULL,
    statement        BYTEA NOT NULL,
    device_id        TEXT NOT NULL,
    inspection_id    TEXT NOT NULL
);
CREATE INDEX chain_entries_by_inspection ON chain_entries(inspection_id);
CREATE FUNCTION chain_entries_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the chain is append-only';
END;
$$;
CREATE TRIGGER chain_entries_no_update BEFORE UPDATE OR DELETE ON chain_entries
    FOR EACH ROW EXECUTE FUNCTION chain_entries_append_only();
CREATE TRIGGER chain_entries_no_truncate BEFORE TRUNCATE ON chain_entries
    FOR EACH STATEMENT EXECUTE FUNCTION chain_entries_append_only();

-- The server's receipt-signing key, shared by every instance (created once by the first).
CREATE TABLE server_keys (
    id         BIGINT PRIMARY KEY NOT NULL CHECK (id = 1),
    secret     BYTEA NOT NULL,
    created_at BIGINT NOT NULL
);
"#,
    // 2: sign-in limits per name and client (docs/dashboard.md); user_passwords.failed_attempts
    // and locked_until are no longer used.
    r#"
CREATE TABLE sign_in_failures (
    name         TEXT NOT NULL,
    client       TEXT NOT NULL,
    failures     BIGINT NOT NULL,
    last_at      BIGINT NOT NULL,
    locked_until BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (name, client)
);
CREATE INDEX sign_in_failures_by_client ON sign_in_failures(client, last_at);
"#,
    // 3: media bound to documents (SQLite's server schema 5): a blob per evidence hash,
    // rendition and blob hash; which device proved it holds which blob; uploads in progress
    // with their reservation against the user's staging quota.
    r#"
ALTER TABLE media_blobs DROP CONSTRAINT media_blobs_pkey;
ALTER TABLE media_blobs ADD PRIMARY KEY (sha256, rendition, blob_sha256);
CREATE TABLE media_proofs (
    device_id   TEXT NOT NULL,
    blob_sha256 TEXT NOT NULL,
    proved_at   BIGINT NOT NULL,
    PRIMARY KEY (device_id, blob_sha256)
);
INSERT INTO media_proofs
    SELECT device_id, blob_sha256, min(stored_at) FROM media_blobs GROUP BY device_id, blob_sha256;
CREATE TABLE media_staging (
    device_id   TEXT NOT NULL,
    sha256      TEXT NOT NULL,
    rendition   TEXT NOT NULL,
    blob_sha256 TEXT NOT NULL,
    user_id     TEXT NOT NULL,
    total       BIGINT NOT NULL,
    opened_at   BIGINT NOT NULL,
    touched_at  BIGINT NOT NULL,
    PRIMARY KEY (device_id, sha256, rendition, blob_sha256)
);
CREATE INDEX media_staging_by_user ON media_staging(user_id);
CREATE INDEX media_staging_by_touch ON media_staging(touched_at);
"#,
];
