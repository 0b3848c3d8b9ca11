//! The embedded engine: one SQLite file holding a fenlei-core `Store` (documents, change feed,
//! projection, communities, standards) plus the server's own tables (users, scopes, devices,
//! enrollment codes, the reference-data log), which this module creates and migrates.

mod chain;
mod media;
mod session;
mod signing_key;
mod supervision;

pub(crate) use chain::chain_row;
pub use chain::{verify_chain, verify_chain_conn};
pub use signing_key::{KEY_FILE, load_or_create_key};

use crate::error::{ServerError, ServerResult};
use crate::model::*;
use crate::model::{Finding, PeriodInspection, ScopedCommunity, TaskFilter, TaskRow};
use crate::store::sql::*;
use crate::store::*;
use fenlei_core::community::Community;
use fenlei_core::inspection::{Inspection, InspectionDoc, InspectionStatus};
use fenlei_core::protocol::{Assignments, FeedEntry, ReferenceUpdate, StandardSource};
use fenlei_core::scoring::ScoreCard;
use fenlei_core::store::{AppliedDocument, StandardInfo, Store};
use rusqlite::{Connection, OpenFlags, OptionalExtension, params, params_from_iter, types::Value};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

/// The server's tables, in the same file as the core store's. Versioned in `server_meta` (the
/// core store owns SQLite's user_version). Append new versions; never edit a released one.
const SERVER_SCHEMA: &[&str] = &[
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

pub struct SqliteStorage {
    store: Store,
    path: PathBuf,
    signing_key: ed25519_dalek::SigningKey,
    pub(crate) writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
    /// Photo and voice-note bytes: `<data>/blobs/` unless `--blobs` names another store.
    pub(crate) blobs: Box<dyn crate::blobs::BlobStore>,
}

/// How long a server connection waits for another connection's (or process's) lock.
pub const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// A connection to the server's SQLite file, configured as every one must be: the busy
/// timeout, and on writers immediate transactions, synchronous=FULL and foreign keys.
pub(crate) fn open_conn(path: &Path, read_only: bool) -> ServerResult<Connection> {
    let flags = if read_only {
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX
    } else {
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
    };
    let mut conn = Connection::open_with_flags(path, flags)?;
    // Admin commands run beside the serving process on the same file: both wait for the
    // other's lock instead of failing with "database is locked".
    conn.busy_timeout(BUSY_TIMEOUT)?;
    if !read_only {
        // A write transaction takes the write lock when it begins: a deferred one that read
        // first would get SQLITE_BUSY at once (no waiting) when another process wrote meanwhile.
        conn.set_transaction_behavior(rusqlite::TransactionBehavior::Immediate);
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
    }
    Ok(conn)
}

impl SqliteStorage {
    /// Opens (or creates) the server's database in `dir` (`dir/fenlei-server.sqlite`), with
    /// blobs in `dir/blobs/`.
    pub fn open(dir: &Path) -> ServerResult<SqliteStorage> {
        let blobs = crate::blobs::open_blob_store(dir, None)?;
        SqliteStorage::open_with_blobs(dir, blobs)
    }

    /// Opens (or creates) the server's database in `dir`, with blobs in `blobs`.
    pub fn open_with_blobs(
        dir: &Path,
        blobs: Box<dyn crate::blobs::BlobStore>,
    ) -> ServerResult<SqliteStorage> {
        crate::files::create_private_dir(dir)?;
        let path = dir.join("fenlei-server.sqlite");
        // Created empty and private first: SQLite would create it with the umask's mode, and it
        // gives the WAL and shared-memory files the database file's mode.
        crate::files::touch_private(&path)?;
        // The core store switches the file to WAL and migrates its own tables.
        let store = Store::open(&path)?;
        let mut writer = open_conn(&path, false)?;
        migrate(&mut writer)?;
        Ok(SqliteStorage {
            store,
            path,
            signing_key: load_or_create_key(dir)?,
            writer: Mutex::new(writer),
            readers: Mutex::new(Vec::new()),
            blobs,
        })
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The server's writer connection (one at a time), for the storage traits in other modules.
    pub(crate) fn writer(&self) -> MutexGuard<'_, Connection> {
        lock(&self.writer)
    }

    pub(crate) fn read<T>(
        &self,
        f: impl FnOnce(&Connection) -> ServerResult<T>,
    ) -> ServerResult<T> {
        let conn = match lock(&self.readers).pop() {
            Some(c) => c,
            None => open_conn(&self.path, true)?,
        };
        let out = f(&conn);
        let mut pool = lock(&self.readers);
        if pool.len() < 8 {
            pool.push(conn);
        }
        out
    }

    fn log_reference(conn: &Connection, kind: &str, key: &str) -> ServerResult<()> {
        conn.execute(
            "DELETE FROM reference_log WHERE kind = ?1 AND key = ?2",
            params![kind, key],
        )?;
        conn.execute(
            "INSERT INTO reference_log (kind, key) VALUES (?1, ?2)",
            params![kind, key],
        )?;
        Ok(())
    }
}

fn migrate(conn: &mut Connection) -> ServerResult<()> {
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

fn user_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<User> {
    let role: String = r.get(2)?;
    Ok(User {
        id: r.get(0)?,
        name: r.get(1)?,
        role: Role::parse(&role).unwrap_or(Role::Inspector),
        scope_epoch: r.get(3)?,
    })
}

fn inspection_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<InspectionRow> {
    Ok(InspectionRow {
        id: r.get(0)?,
        community_id: r.get(1)?,
        community_name: r.get(2)?,
        district: r.get(3)?,
        street: r.get(4)?,
        kind: r.get(5)?,
        status: r.get(6)?,
        created_by: r.get(7)?,
        started_at_ms: r.get(8)?,
        ended_at_ms: r.get(9)?,
        total: r.get(10)?,
        max_points: r.get(11)?,
        grade: r.get(12)?,
        vetoed: r.get(13)?,
        conflict_count: r.get(14)?,
    })
}

impl AccountStore for SqliteStorage {
    fn add_user(&self, id: &str, name: &str, role: Role) -> ServerResult<()> {
        if id.trim().is_empty() {
            return Err(ServerError::BadRequest("user id must not be empty".into()));
        }
        lock(&self.writer).execute(
            "INSERT INTO users (id, name, role) VALUES (?1, ?2, ?3)
             ON CONFLICT(id) DO UPDATE SET name = excluded.name, role = excluded.role,
                 scope_epoch = users.scope_epoch + 1",
            params![id, name, role.as_str()],
        )?;
        Ok(())
    }

    fn user(&self, id: &str) -> ServerResult<Option<User>> {
        self.read(|c| {
            Ok(c.query_row(
                "SELECT id, name, role, scope_epoch FROM users WHERE id = ?1",
                [id],
                user_row,
            )
            .optional()?)
        })
    }

    fn add_scope(&self, user_id: &str, kind: ScopeKind, value: &str) -> ServerResult<()> {
        let mut w = lock(&self.writer);
        let tx = w.transaction()?;
        let exists: bool = tx.query_row(
            "SELECT count(*) > 0 FROM users WHERE id = ?1",
            [user_id],
            |r| r.get(0),
        )?;
        if !exists {
            return Err(ServerError::NotFound(format!("no user {user_id}")));
        }
        tx.execute(
            "INSERT OR IGNORE INTO user_scopes (user_id, kind, value) VALUES (?1, ?2, ?3)",
            params![user_id, kind.as_str(), value],
        )?;
        tx.execute(
            "UPDATE users SET scope_epoch = scope_epoch + 1 WHERE id = ?1",
            [user_id],
        )?;
        SqliteStorage::log_reference(&tx, "assignments", user_id)?;
        tx.commit()?;
        Ok(())
    }

    fn scope(&self, user: &User) -> ServerResult<Assignments> {
        self.read(|c| {
            let mut out = Assignments {
                user_id: user.id.clone(),
                role: user.role.as_str().into(),
                ..Default::default()
            };
            let mut stmt = c.prepare_cached(
                "SELECT kind, value FROM user_scopes WHERE user_id = ?1 ORDER BY kind, value",
            )?;
            let rows = stmt.query_map([&user.id], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
            })?;
            for row in rows {
                let (kind, value) = row?;
                match kind.as_str() {
                    "community" => out.communities.push(value),
                    "street" => out.streets.push(value),
                    _ => out.districts.push(value),
                }
            }
            Ok(out)
        })
    }

    fn add_enrollment_code(
        &self,
        user_id: &str,
        code_hash: &str,
        expires_ms: i64,
    ) -> ServerResult<()> {
        if self.user(user_id)?.is_none() {
            return Err(ServerError::NotFound(format!("no user {user_id}")));
        }
        lock(&self.writer).execute(
            "INSERT INTO enrollment_codes (code_hash, user_id, expires_at) VALUES (?1, ?2, ?3)",
            params![code_hash, user_id, expires_ms],
        )?;
        Ok(())
    }

    fn redeem_enrollment(
        &self,
        code_hash: &str,
        device_id: &str,
        token_hash: &str,
        now_ms: i64,
    ) -> ServerResult<Option<User>> {
        let mut w = lock(&self.writer);
        let tx = w.transaction()?;
        let user_id: Option<String> = tx
            .query_row(
                "SELECT user_id FROM enrollment_codes
                 WHERE code_hash = ?1 AND used_by IS NULL AND expires_at > ?2",
                params![code_hash, now_ms],
                |r| r.get(0),
            )
            .optional()?;
        let Some(user_id) = user_id else {
            return Ok(None);
        };
        let bound_to: Option<String> = tx
            .query_row(
                "SELECT user_id FROM devices WHERE id = ?1",
                [device_id],
                |r| r.get(0),
            )
            .optional()?;
        if bound_to.as_deref().is_some_and(|u| u != user_id) {
            return Err(ServerError::Forbidden(
                "this device is enrolled for another user".into(),
            ));
        }
        tx.execute(
            "UPDATE enrollment_codes SET used_by = ?2 WHERE code_hash = ?1",
            params![code_hash, device_id],
        )?;
        // Re-enrolling a device (a lost token) replaces its credential.
        tx.execute(
            "INSERT INTO devices (id, user_id, token_hash, enrolled_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT(id) DO UPDATE SET token_hash = excluded.token_hash,
                 enrolled_at = excluded.enrolled_at, revoked = 0",
            params![device_id, user_id, token_hash, now_ms],
        )?;
        let user = tx.query_row(
            "SELECT id, name, role, scope_epoch FROM users WHERE id = ?1",
            [&user_id],
            user_row,
        )?;
        tx.commit()?;
        Ok(Some(user))
    }

    fn device_by_token(&self, token_hash: &str) -> ServerResult<Option<DeviceAuth>> {
        let found = self.read(|c| {
            Ok(c.prepare_cached(
                "SELECT d.id, u.id, u.name, u.role, u.scope_epoch FROM devices d
                 JOIN users u ON u.id = d.user_id WHERE d.token_hash = ?1 AND d.revoked = 0",
            )?
            .query_row([token_hash], |r| {
                let role: String = r.get(3)?;
                Ok((
                    r.get::<_, String>(0)?,
                    User {
                        id: r.get(1)?,
                        name: r.get(2)?,
                        role: Role::parse(&role).unwrap_or(Role::Inspector),
                        scope_epoch: r.get(4)?,
                    },
                ))
            })
            .optional()?)
        })?;
        match found {
            None => Ok(None),
            Some((device_id, user)) => {
                let scope = self.scope(&user)?;
                Ok(Some(DeviceAuth {
                    device_id,
                    user,
                    scope,
                }))
            }
        }
    }

    fn revoke_device(&self, device_id: &str) -> ServerResult<bool> {
        let n = lock(&self.writer)
            .execute("UPDATE devices SET revoked = 1 WHERE id = ?1", [device_id])?;
        Ok(n > 0)
    }
}

impl ReferenceStore for SqliteStorage {
    fn import_communities_csv(&self, bytes: &[u8]) -> ServerResult<u32> {
        let communities = fenlei_core::community::parse_csv(bytes)?;
        let n = self.store.upsert_communities(&communities)?;
        let mut w = lock(&self.writer);
        let tx = w.transaction()?;
        for c in &communities {
            SqliteStorage::log_reference(&tx, "community", &c.id)?;
        }
        tx.commit()?;
        Ok(n)
    }

    fn publish_standard(&self, source: &str) -> ServerResult<StandardInfo> {
        let info = self.store.import_standard(source)?;
        let w = lock(&self.writer);
        let key = format!("{}\u{1f}{}", info.id, info.version);
        let known: bool = w.query_row(
            "SELECT count(*) > 0 FROM reference_log WHERE kind = 'standard' AND key = ?1",
            [&key],
            |r| r.get(0),
        )?;
        if !known {
            SqliteStorage::log_reference(&w, "standard", &key)?;
        }
        Ok(info)
    }

    fn reference_after(
        &self,
        cursor: u64,
        user: &User,
        limit: usize,
    ) -> ServerResult<ReferenceUpdate> {
        let rows: Vec<(i64, String, String)> = self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT seq, kind, key FROM reference_log WHERE seq > ?1
                   AND (kind != 'assignments' OR key = ?2)
                 ORDER BY seq LIMIT ?3",
            )?;
            let rows = stmt
                .query_map(params![cursor as i64, user.id, limit as i64], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })?
                .collect::<rusqlite::Result<_>>()?;
            Ok(rows)
        })?;
        let latest: i64 = self.read(|c| {
            Ok(
                c.query_row("SELECT coalesce(max(seq), 0) FROM reference_log", [], |r| {
                    r.get(0)
                })?,
            )
        })?;
        let more = rows.len() == limit;
        let mut update = ReferenceUpdate {
            cursor: if more {
                rows.last().map(|r| r.0).unwrap_or(0) as u64
            } else {
                (latest as u64).max(cursor)
            },
            more,
            ..Default::default()
        };
        for (_, kind, key) in rows {
            match kind.as_str() {
                "community" => {
                    if let Some(c) = self.community(&key)? {
                        update.communities.push(c);
                    }
                }
                "standard" => {
                    let Some((id, version)) = key.split_once('\u{1f}') else {
                        continue;
                    };
                    let source: Option<String> = self.read(|c| {
                        Ok(c.query_row(
                            "SELECT source FROM standards WHERE id = ?1 AND version = ?2",
                            params![id, version],
                            |r| r.get(0),
                        )
                        .optional()?)
                    })?;
                    if let Some(source) = source {
                        update.standards.push(StandardSource {
                            id: id.into(),
                            version: version.into(),
                            source,
                        });
                    }
                }
                _ => update.assignments = Some(self.scope(user)?),
            }
        }
        Ok(update)
    }

    fn community(&self, id: &str) -> ServerResult<Option<Community>> {
        match self.store.community(id) {
            Ok(c) => Ok(Some(c)),
            Err(fenlei_core::CoreError::UnknownCommunity(_)) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    fn score_of(&self, i: &Inspection) -> ServerResult<Option<ScoreCard>> {
        match self.store.score_inspection(i) {
            Ok(card) => Ok(Some(card)),
            Err(fenlei_core::CoreError::UnknownStandard { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    fn published_standard(
        &self,
        id: &str,
        version: &str,
    ) -> ServerResult<Option<std::sync::Arc<fenlei_core::standard::Standard>>> {
        match self.store.standard(id, version) {
            Ok(s) => Ok(Some(s)),
            Err(fenlei_core::CoreError::UnknownStandard { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

impl DocumentStore for SqliteStorage {
    fn opening_actor(&self) -> String {
        // The core store opens documents with its own (random) device id.
        self.store.device_id().to_string()
    }

    fn sync_view(&self, id: &str) -> ServerResult<SyncView> {
        SyncView::parse(id, self.store.stored_document(id)?, self.store.device_id())
    }

    fn load_document(&self, id: &str) -> ServerResult<Option<InspectionDoc>> {
        Ok(self.store.load_document(id)?)
    }

    fn apply_documents(&self, batch: &[(String, Vec<u8>)]) -> ServerResult<Vec<AppliedDocument>> {
        Ok(self.store.apply_documents(batch)?)
    }

    fn feed_after(
        &self,
        auth: &DeviceAuth,
        after: i64,
        limit: usize,
    ) -> ServerResult<(Vec<FeedEntry>, i64, bool)> {
        self.read(|c| {
            let tx = c.unchecked_transaction()?;
            let latest: i64 =
                tx.query_row("SELECT seq FROM change_counter WHERE id = 1", [], |r| {
                    r.get(0)
                })?;
            let sql = format!(
                "SELECT f.doc_id, f.seq FROM change_feed f
                 JOIN inspections i ON i.id = f.doc_id
                 LEFT JOIN communities c ON c.id = i.community_id
                 WHERE f.seq > ?1 AND f.seq <= ?2 AND {}
                 ORDER BY f.seq LIMIT ?5",
                readable(3, 4)
            );
            let mut stmt = tx.prepare_cached(&sql)?;
            let entries: Vec<FeedEntry> = stmt
                .query_map(
                    params![
                        after,
                        latest,
                        auth.user.role.as_str(),
                        auth.user.id,
                        limit as i64
                    ],
                    |r| {
                        Ok(FeedEntry {
                            id: r.get(0)?,
                            seq: r.get::<_, i64>(1)? as u64,
                        })
                    },
                )?
                .collect::<rusqlite::Result<_>>()?;
            let more = entries.len() == limit;
            let next = if more {
                entries.last().map(|e| e.seq as i64).unwrap_or(after)
            } else {
                latest.max(after)
            };
            Ok((entries, next, more))
        })
    }

    fn review_inspection(
        &self,
        auth: &DeviceAuth,
        id: &str,
        approve: bool,
        comment: Option<&str>,
    ) -> ServerResult<InspectionStatus> {
        self.review(auth, id, approve, comment)
    }
    fn open_due_rectifications(&self, inspection_id: &str) -> ServerResult<Vec<String>> {
        SqliteStorage::open_due_rectifications(self, inspection_id)
    }
    fn document_kind(&self, id: &str) -> ServerResult<Option<String>> {
        Ok(self.store.document_kind(id)?)
    }
    fn feed_with_tasks(
        &self,
        auth: &DeviceAuth,
        after: i64,
        limit: usize,
    ) -> ServerResult<(Vec<FeedEntry>, i64, bool)> {
        SqliteStorage::feed_with_tasks(self, auth, after, limit)
    }
    fn decide_task(
        &self,
        auth: &DeviceAuth,
        id: &str,
        approve: bool,
        comment: Option<&str>,
    ) -> ServerResult<TaskRow> {
        SqliteStorage::decide_task(self, auth, id, approve, comment)
    }
}

impl SupervisorQueries for SqliteStorage {
    fn list_inspections(
        &self,
        auth: &DeviceAuth,
        f: &ListFilter,
    ) -> ServerResult<Vec<InspectionRow>> {
        let mut args: Vec<Value> = vec![
            Value::Text(auth.user.role.as_str().into()),
            Value::Text(auth.user.id.clone()),
        ];
        let mut sql = format!(
            "SELECT {INSPECTION_COLUMNS} FROM inspections i
             LEFT JOIN communities c ON c.id = i.community_id WHERE {}",
            readable(1, 2)
        );
        let mut add = |sql: &mut String, clause: &str, v: Value| {
            args.push(v);
            *sql += &clause.replace("?N", &format!("?{}", args.len()));
        };
        if let Some(v) = &f.community {
            add(&mut sql, " AND i.community_id = ?N", Value::Text(v.clone()));
        }
        if let Some(v) = &f.street {
            add(&mut sql, " AND c.street = ?N", Value::Text(v.clone()));
        }
        if let Some(v) = &f.district {
            add(&mut sql, " AND c.district = ?N", Value::Text(v.clone()));
        }
        if let Some(v) = &f.inspector {
            add(
                &mut sql,
                " AND EXISTS (SELECT 1 FROM inspection_inspectors x WHERE x.inspection_id = i.id AND x.user_id = ?N)",
                Value::Text(v.clone()),
            );
        }
        if let Some(v) = &f.status {
            if InspectionStatus::parse(v).is_none() {
                return Err(ServerError::BadRequest(format!("unknown status {v:?}")));
            }
            add(&mut sql, " AND i.status = ?N", Value::Text(v.clone()));
        }
        if let Some(v) = f.from_ms {
            add(&mut sql, " AND i.started_at >= ?N", Value::Integer(v));
        }
        if let Some(v) = f.to_ms {
            add(&mut sql, " AND i.started_at < ?N", Value::Integer(v));
        }
        let limit = f.limit.unwrap_or(100).clamp(1, 1000);
        sql += &format!(" ORDER BY i.started_at DESC, i.id DESC LIMIT {limit}");
        self.read(|c| {
            let mut stmt = c.prepare_cached(&sql)?;
            let rows = stmt
                .query_map(params_from_iter(args), inspection_row)?
                .collect::<rusqlite::Result<_>>()?;
            Ok(rows)
        })
    }

    fn score_history(
        &self,
        auth: &DeviceAuth,
        community_id: &str,
    ) -> ServerResult<Vec<InspectionRow>> {
        let sql = format!(
            "SELECT {INSPECTION_COLUMNS} FROM inspections i
             LEFT JOIN communities c ON c.id = i.community_id
             WHERE {} AND i.community_id = ?3 AND i.status IN ('submitted', 'approved')
               AND i.total IS NOT NULL
             ORDER BY i.started_at DESC, i.id DESC LIMIT 500",
            readable(1, 2)
        );
        self.read(|c| {
            let mut stmt = c.prepare_cached(&sql)?;
            let rows = stmt
                .query_map(
                    params![auth.user.role.as_str(), auth.user.id, community_id],
                    inspection_row,
                )?
                .collect::<rusqlite::Result<_>>()?;
            Ok(rows)
        })
    }

    fn rankings(
        &self,
        auth: &DeviceAuth,
        by: ScopeKind,
        from_ms: i64,
        to_ms: i64,
    ) -> ServerResult<Vec<RankingRow>> {
        let (key, name) = ranking_columns(by);
        // Scores are compared as a percentage of the standard's full marks, so inspections under
        // standards of different sizes rank together; a veto counts as it stands (the total).
        let sql = format!(
            "SELECT {key}, {name}, count(*),
                    avg(i.total * 100.0 / i.max_points), min(i.total * 100.0 / i.max_points),
                    sum(i.vetoed)
             FROM inspections i LEFT JOIN communities c ON c.id = i.community_id
             WHERE {} AND i.status IN ('submitted', 'approved') AND i.total IS NOT NULL
               AND i.max_points > 0 AND i.started_at >= ?3 AND i.started_at < ?4
             GROUP BY 1 ORDER BY 4 DESC, 1",
            readable(1, 2)
        );
        let rows = self.read(|c| {
            let mut stmt = c.prepare_cached(&sql)?;
            let rows = stmt
                .query_map(
                    params![auth.user.role.as_str(), auth.user.id, from_ms, to_ms],
                    |r| {
                        Ok(crate::domain::rankings::ranking_row(
                            r.get(0)?,
                            r.get(1)?,
                            r.get(2)?,
                            r.get(3)?,
                            r.get(4)?,
                            r.get(5)?,
                        ))
                    },
                )?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })?;
        Ok(crate::domain::rankings::finish_rankings(
            by,
            &self.scope_communities(auth)?,
            self.period_inspections(auth, from_ms, to_ms)?,
            self.unclosed_tasks()?,
            rows,
        ))
    }
    fn list_tasks(&self, auth: &DeviceAuth, filter: &TaskFilter) -> ServerResult<Vec<TaskRow>> {
        SqliteStorage::list_tasks(self, auth, filter)
    }
    fn scope_communities(&self, auth: &DeviceAuth) -> ServerResult<Vec<ScopedCommunity>> {
        SqliteStorage::scope_communities(self, auth)
    }
    fn period_inspections(
        &self,
        auth: &DeviceAuth,
        from_ms: i64,
        to_ms: i64,
    ) -> ServerResult<Vec<PeriodInspection>> {
        SqliteStorage::period_inspections(self, auth, from_ms, to_ms)
    }
    fn last_visits(
        &self,
        auth: &DeviceAuth,
        to_ms: i64,
    ) -> ServerResult<Vec<(String, String, i64)>> {
        SqliteStorage::last_visits(self, auth, to_ms)
    }
    fn worst_findings(
        &self,
        auth: &DeviceAuth,
        from_ms: i64,
        to_ms: i64,
        limit: u32,
    ) -> ServerResult<Vec<Finding>> {
        SqliteStorage::worst_findings(self, auth, from_ms, to_ms, limit)
    }
}

impl ChainStore for SqliteStorage {
    fn set_device_key(&self, device_id: &str, public_key: &str) -> ServerResult<()> {
        let n = lock(&self.writer).execute(
            "UPDATE devices SET public_key = ?2 WHERE id = ?1",
            params![device_id, public_key],
        )?;
        if n == 0 {
            return Err(ServerError::NotFound(format!("no device {device_id}")));
        }
        Ok(())
    }

    fn device_key(&self, device_id: &str) -> ServerResult<Option<String>> {
        self.read(|c| {
            Ok(c.query_row(
                "SELECT public_key FROM devices WHERE id = ?1 AND revoked = 0",
                [device_id],
                |r| r.get::<_, Option<String>>(0),
            )
            .optional()?
            .flatten())
        })
    }

    fn server_key(&self) -> &ed25519_dalek::SigningKey {
        &self.signing_key
    }

    fn chain_append(
        &self,
        entry: crate::model::NewEntry<'_>,
    ) -> ServerResult<crate::model::ChainRow> {
        let sha = fenlei_core::tamper::sha256_hex(entry.statement);
        let mut w = lock(&self.writer);
        let tx = w.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        if let Some(row) = tx
            .query_row(
                &format!(
                    "{} WHERE statement_sha256 = ?1",
                    crate::store::sql::ROW_SELECT
                ),
                [&sha],
                crate::store::sqlite::chain_row,
            )
            .optional()?
        {
            return Ok(row);
        }
        let (index, prev_hash) = Self::chain_tail(&tx)?;
        let link = fenlei_core::tamper::ChainLink {
            index,
            prev_hash,
            received_at_ms: entry.received_at_ms,
            statement_sha256: sha,
            device_signature: entry.device_signature.to_string(),
        };
        let entry_hash = link.hash();
        tx.execute(
            "INSERT INTO chain_entries (idx, prev_hash, entry_hash, received_at, statement_sha256,
                 device_signature, statement, device_id, inspection_id)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![
                index as i64,
                link.prev_hash,
                entry_hash,
                link.received_at_ms,
                link.statement_sha256,
                link.device_signature,
                entry.statement,
                entry.device_id,
                entry.inspection_id
            ],
        )?;
        tx.commit()?;
        Ok(crate::model::ChainRow {
            link,
            entry_hash,
            statement: entry.statement.to_vec(),
            device_id: entry.device_id.to_string(),
            inspection_id: entry.inspection_id.to_string(),
        })
    }

    fn chain_entry(&self, index: u64) -> ServerResult<Option<crate::model::ChainRow>> {
        self.read(|c| {
            Ok(c.query_row(
                &format!("{} WHERE idx = ?1", crate::store::sql::ROW_SELECT),
                [index as i64],
                crate::store::sqlite::chain_row,
            )
            .optional()?)
        })
    }

    fn chain_rows_of(&self, inspection_id: &str) -> ServerResult<Vec<crate::model::ChainRow>> {
        self.read(|c| {
            let sql = format!(
                "{} WHERE inspection_id = ?1 ORDER BY idx",
                crate::store::sql::ROW_SELECT
            );
            let rows = c
                .prepare(&sql)?
                .query_map([inspection_id], crate::store::sqlite::chain_row)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })
    }

    fn chain_head(&self) -> ServerResult<(u64, String)> {
        self.read(Self::chain_tail)
    }
}

impl SqliteStorage {
    fn chain_tail(conn: &Connection) -> ServerResult<(u64, String)> {
        Ok(conn
            .query_row(
                "SELECT idx + 1, entry_hash FROM chain_entries ORDER BY idx DESC LIMIT 1",
                [],
                |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, String>(1)?)),
            )
            .optional()?
            .unwrap_or((0, fenlei_core::tamper::GENESIS.to_string())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MediaIndex;
    use fenlei_core::protocol::media::MediaRendition;

    /// A database left by the release before renditions were bound to documents (server schema
    /// 4): its kept blobs stay, each uploading device is known to hold what it uploaded, and a
    /// second rendition of the same photo can now be kept beside the first.
    #[test]
    fn kept_blobs_survive_the_move_to_bound_renditions() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fenlei-server.sqlite");
        drop(Store::open(&path).unwrap());
        let conn = Connection::open(&path).unwrap();
        for sql in &SERVER_SCHEMA[..4] {
            conn.execute_batch(sql).unwrap();
        }
        let (h, t1, t2) = ("a".repeat(64), "b".repeat(64), "c".repeat(64));
        conn.execute_batch(&format!(
            "INSERT INTO server_meta (key, value) VALUES ('schema_version', '4');
             INSERT INTO media_blobs VALUES ('{h}', 'original', '{h}', 10, 'image/jpeg', 'dev-1', 5);
             INSERT INTO media_blobs VALUES ('{h}', 'thumb', '{t1}', 3, 'image/jpeg', 'dev-2', 6);"
        ))
        .unwrap();
        drop(conn);

        let s = SqliteStorage::open(dir.path()).unwrap();
        let kept = s
            .media_blob(&h, MediaRendition::Thumb, &t1)
            .unwrap()
            .unwrap();
        assert_eq!((kept.bytes, kept.device_id.as_str()), (3, "dev-2"));
        assert_eq!(s.proved_at("dev-1", &h).unwrap(), Some(5));
        assert_eq!(s.proved_at("dev-2", &t1).unwrap(), Some(6));
        assert_eq!(s.proved_at("dev-1", &t1).unwrap(), None);
        s.record_media_blob(&crate::model::StoredBlob {
            sha256: h.clone(),
            rendition: MediaRendition::Thumb,
            blob: t2.clone(),
            bytes: 4,
            mime: "image/jpeg".into(),
            device_id: "dev-1".into(),
        })
        .unwrap();
        let held = s.held_blobs("dev-1", &h, MediaRendition::Thumb).unwrap();
        assert_eq!(held.len(), 1);
        assert_eq!(held[0].0.blob, t2);
        assert!(
            s.media_blob(&h, MediaRendition::Thumb, &t1)
                .unwrap()
                .is_some()
        );
    }
}
