//! The server's own tables in the SQLite file and their migrations.

use super::*;

/// The server's tables, in the same file as the core store's. Versioned in `server_meta` (the
/// core store owns SQLite's user_version). Append new versions; never edit a released one.
pub(super) const SERVER_SCHEMA: &[&str] = &[
    r#"
CREATE TABLE server_meta (key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL) STRICT;
CREATE TABLE users (
    id          TEXT PRIMARY KEY NOT NULL,
    name        TEXT NOT NULL,
    role        TEXT NOT NULL CHECK (role IN ('inspector', 'supervisor', 'admin')),
    scope_epoch INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE TABLE user_scopes (
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    kind    TEXT NOT NULL CHECK (kind IN ('community', 'street', 'district')),
    value   TEXT NOT NULL,
    PRIMARY KEY (user_id, kind, value)
) STRICT;
CREATE INDEX user_scopes_by_value ON user_scopes(kind, value);
CREATE TABLE devices (
    id          TEXT PRIMARY KEY NOT NULL,
    user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    token_hash  TEXT NOT NULL UNIQUE,
    enrolled_at INTEGER NOT NULL,
    revoked     INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE TABLE enrollment_codes (
    code_hash  TEXT PRIMARY KEY NOT NULL,
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    expires_at INTEGER NOT NULL,
    used_by    TEXT
) STRICT;
-- Reference data changes in order: a device asks for everything after its cursor.
CREATE TABLE reference_log (
    seq  INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL CHECK (kind IN ('community', 'standard', 'assignments')),
    key  TEXT NOT NULL,
    UNIQUE (kind, key)
);
"#,
    // Media sync (docs/media-sync.md): the verified blob kept for each evidence hash and rendition.
    r#"
CREATE TABLE media_blobs (
    sha256      TEXT NOT NULL,
    rendition   TEXT NOT NULL CHECK (rendition IN ('thumb', 'upload', 'original')),
    blob_sha256 TEXT NOT NULL,
    bytes       INTEGER NOT NULL,
    mime        TEXT NOT NULL,
    device_id   TEXT NOT NULL,
    stored_at   INTEGER NOT NULL,
    PRIMARY KEY (sha256, rendition)
) STRICT;
CREATE INDEX media_blobs_by_blob ON media_blobs(blob_sha256);
"#,
    // Dashboard sign-in (server/src/session.rs): Argon2id password hashes (PHC strings) with a
    // failure counter for the lockout, and server-side web sessions (only the cookie's hash).
    r#"
CREATE TABLE user_passwords (
    user_id         TEXT PRIMARY KEY NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    phc             TEXT NOT NULL,
    set_at          INTEGER NOT NULL,
    failed_attempts INTEGER NOT NULL DEFAULT 0,
    locked_until    INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE TABLE web_sessions (
    id         TEXT PRIMARY KEY NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    csrf_token TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    last_seen  INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
) STRICT;
CREATE INDEX web_sessions_by_user ON web_sessions(user_id);
"#,
    // Tamper evidence (docs/tamper-evidence.md): each device's Ed25519 public key, and the
    // append-only hash chain of signed submissions. The triggers refuse updates and deletes through
    // SQL; `fenlei-server verify-chain` detects changes made around them.
    r#"
ALTER TABLE devices ADD COLUMN public_key TEXT;
CREATE TABLE chain_entries (
    idx              INTEGER PRIMARY KEY NOT NULL,
    prev_hash        TEXT NOT NULL,
    entry_hash       TEXT NOT NULL,
    received_at      INTEGER NOT NULL,
    statement_sha256 TEXT NOT NULL UNIQUE,
    device_signature TEXT NOT NULL,
    statement        BLOB NOT NULL,
    device_id        TEXT NOT NULL,
    inspection_id    TEXT NOT NULL
) STRICT;
CREATE INDEX chain_entries_by_inspection ON chain_entries(inspection_id);
CREATE TRIGGER chain_entries_no_update BEFORE UPDATE ON chain_entries
BEGIN SELECT RAISE(ABORT, 'the chain is append-only'); END;
CREATE TRIGGER chain_entries_no_delete BEFORE DELETE ON chain_entries
BEGIN SELECT RAISE(ABORT, 'the chain is append-only'); END;
"#,
    // Sign-in limits (docs/dashboard.md): failures counted per name typed (known or not) and
    // client (IPv4 address or IPv6 /64). user_passwords.failed_attempts and locked_until are
    // no longer used.
    r#"
CREATE TABLE sign_in_failures (
    name         TEXT NOT NULL,
    client       TEXT NOT NULL,
    failures     INTEGER NOT NULL,
    last_at      INTEGER NOT NULL,
    locked_until INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (name, client)
) STRICT;
CREATE INDEX sign_in_failures_by_client ON sign_in_failures(client, last_at);
"#,
    // Media bound to documents (docs/media-sync.md): a blob per evidence hash, rendition AND the
    // blob's own hash (no upload replaces what a document declares); which device proved it holds
    // which blob (every upload so far was verified from its device); the uploads in progress,
    // each reserving its declared size against its user's staging quota.
    r#"
CREATE TABLE media_blobs_bound (
    sha256      TEXT NOT NULL,
    rendition   TEXT NOT NULL CHECK (rendition IN ('thumb', 'upload', 'original')),
    blob_sha256 TEXT NOT NULL,
    bytes       INTEGER NOT NULL,
    mime        TEXT NOT NULL,
    device_id   TEXT NOT NULL,
    stored_at   INTEGER NOT NULL,
    PRIMARY KEY (sha256, rendition, blob_sha256)
) STRICT;
INSERT INTO media_blobs_bound
    SELECT sha256, rendition, blob_sha256, bytes, mime, device_id, stored_at
    FROM media_blobs ORDER BY rowid;
DROP TABLE media_blobs;
ALTER TABLE media_blobs_bound RENAME TO media_blobs;
CREATE INDEX media_blobs_by_blob ON media_blobs(blob_sha256);
CREATE TABLE media_proofs (
    device_id   TEXT NOT NULL,
    blob_sha256 TEXT NOT NULL,
    proved_at   INTEGER NOT NULL,
    PRIMARY KEY (device_id, blob_sha256)
) STRICT;
INSERT INTO media_proofs
    SELECT device_id, blob_sha256, min(stored_at) FROM media_blobs GROUP BY device_id, blob_sha256;
CREATE TABLE media_staging (
    device_id   TEXT NOT NULL,
    sha256      TEXT NOT NULL,
    rendition   TEXT NOT NULL,
    blob_sha256 TEXT NOT NULL,
    user_id     TEXT NOT NULL,
    total       INTEGER NOT NULL,
    opened_at   INTEGER NOT NULL,
    touched_at  INTEGER NOT NULL,
    PRIMARY KEY (device_id, sha256, rendition, blob_sha256)
) STRICT;
CREATE INDEX media_staging_by_user ON media_staging(user_id);
CREATE INDEX media_staging_by_touch ON media_staging(touched_at);
"#,
];

pub(super) fn migrate(conn: &mut Connection) -> ServerResult<()> {
    let has_meta: bool = conn.query_row(
        "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'server_meta'",
        [],
        |r| r.get(0),
    )?;
    let version: usize = if has_meta {
        conn.query_row(
            "SELECT value FROM server_meta WHERE key = 'schema_version'",
            [],
            |r| r.get::<_, String>(0),
        )
        .optional()?
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
    } else {
        0
    };
    if version > SERVER_SCHEMA.len() {
        return Err(ServerError::Internal(format!(
            "server schema version {version} is newer than this build ({})",
            SERVER_SCHEMA.len()
        )));
    }
    for (n, sql) in SERVER_SCHEMA.iter().enumerate().skip(version) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.execute(
            "INSERT INTO server_meta (key, value) VALUES ('schema_version', ?1)
             ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            [(n + 1).to_string()],
        )?;
        tx.commit()?;
    }
    Ok(())
}
