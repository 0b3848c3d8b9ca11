//! PostgreSQL storage (docs/deploy.md): the same storage traits as
//! [`crate::store::sqlite::SqliteStorage`], on a database shared by any number of server instances.
//!
//! Nothing that must be shared lives in the process: cursors, locks, idempotency, sessions,
//! lockout counters and the receipt-signing key are rows, and blobs (with upload staging) are in
//! the blob store. Clients are the sync `postgres` crate's, pooled by r2d2: the storage traits are
//! blocking and handlers call them on tokio's blocking pool, where a sync client may run.
//!
//! One file per trait: `accounts.rs`, `reference.rs`, `documents.rs` (documents, change feed,
//! projection, review and task writes), `queries.rs` (supervisor reads), `chain.rs`, `media.rs`,
//! `session.rs`.

mod accounts;
mod chain;
pub mod conn;
mod documents;
mod media;
mod queries;
mod reference;
pub mod schema;
mod session;
#[cfg(test)]
mod tests;
pub mod tls;
#[cfg(test)]
mod tls_tests;

use crate::blobs::BlobStore;
use crate::error::{ServerError, ServerResult};
use conn::{CachingManager, Sql};
use ed25519_dalek::SigningKey;
use fenlei_core::standard::Standard;
use r2d2_postgres::PostgresConnectionManager;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tls::RustlsMakeTls;

pub type PgPool = r2d2::Pool<CachingManager>;
pub type PgClient = r2d2::PooledConnection<CachingManager>;

/// Connections per instance. PostgreSQL's default max_connections is 100; two instances and the
/// admin tools fit under it.
const POOL_SIZE: u32 = 32;

/// Taken (as a session advisory lock) while migrating, so instances starting together migrate once.
const MIGRATION_LOCK: i64 = 0x6665_6e6c_6569_0001;

pub struct PgStorage {
    pool: PgPool,
    signing_key: SigningKey,
    blobs: Box<dyn BlobStore>,
    /// Parsed standards by (id, version): immutable once published, so a per-process cache is
    /// safe with any number of instances.
    standards: Mutex<HashMap<(String, String), Arc<Standard>>>,
}

impl From<postgres::Error> for ServerError {
    fn from(e: postgres::Error) -> Self {
        ServerError::Internal(format!("database: {e}"))
    }
}

impl From<r2d2::Error> for ServerError {
    fn from(e: r2d2::Error) -> Self {
        ServerError::Internal(format!("database pool: {e}"))
    }
}

impl PgStorage {
    /// Connects to `url` (`postgres://user[:password]@host[:port]/database`), migrates the schema
    /// and loads (or, on a new database, creates) the shared receipt-signing key.
    pub fn open(url: &str, blobs: Box<dyn BlobStore>) -> ServerResult<PgStorage> {
        let mut config: postgres::Config = url
            .parse()
            .map_err(|e| ServerError::BadRequest(format!("database URL: {e}")))?;
        require_tls_off_this_machine(&mut config);
        let tls = RustlsMakeTls::from_env().map_err(ServerError::BadRequest)?;
        let manager = CachingManager(PostgresConnectionManager::new(config, tls));
        let pool = r2d2::Pool::builder()
            .max_size(POOL_SIZE)
            .min_idle(Some(1))
            .connection_timeout(Duration::from_secs(30))
            .build(manager)?;
        let mut client = pool.get()?;
        migrate(&mut client)?;
        let signing_key = load_or_create_key(&mut client)?;
        drop(client);
        Ok(PgStorage {
            pool,
            signing_key,
            blobs,
            standards: Mutex::new(HashMap::new()),
        })
    }

    /// A pooled connection.
    pub(crate) fn client(&self) -> ServerResult<PgClient> {
        Ok(self.pool.get()?)
    }

    pub(crate) fn signing_key(&self) -> &SigningKey {
        &self.signing_key
    }

    pub(crate) fn blob_store(&self) -> &dyn BlobStore {
        self.blobs.as_ref()
    }
}

fn migrate(client: &mut PgClient) -> ServerResult<()> {
    client.execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])?;
    let result = migrate_locked(client);
    client.execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])?;
    result
}

fn migrate_locked(client: &mut PgClient) -> ServerResult<()> {
    client.batch_execute(
        "CREATE TABLE IF NOT EXISTS server_meta (key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL)",
    )?;
    let version: usize = client
        .query_opt(
            "SELECT value FROM server_meta WHERE key = 'schema_version'",
            &[],
        )?
        .and_then(|r| r.get::<_, String>(0).parse().ok())
        .unwrap_or(0);
    if version > schema::MIGRATIONS.len() {
        return Err(ServerError::Internal(format!(
            "database schema version {version} is newer than this build ({})",
            schema::MIGRATIONS.len()
        )));
    }
    for (n, sql) in schema::MIGRATIONS.iter().enumerate().skip(version) {
        let mut tx = client.transaction()?;
        tx.batch_execute(sql)?;
        tx.execute(
            "INSERT INTO server_meta (key, value) VALUES ('schema_version', $1)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            &[&(n + 1).to_string()],
        )?;
        tx.commit()?;
    }
    Ok(())
}

fn load_or_create_key(client: &mut PgClient) -> ServerResult<SigningKey> {
    let seed: [u8; 32] = rand::random();
    client.execute(
        "INSERT INTO server_keys (id, secret, created_at) VALUES (1, $1, $2)
         ON CONFLICT (id) DO NOTHING",
        &[&seed.as_slice(), &crate::model::now()],
    )?;
    let secret: Vec<u8> = client
        .query_one("SELECT secret FROM server_keys WHERE id = 1", &[])?
        .get(0);
    let bytes: [u8; 32] = secret
        .try_into()
        .map_err(|_| ServerError::Internal("server_keys.secret is not 32 bytes".into()))?;
    Ok(SigningKey::from_bytes(&bytes))
}

/// A database on another machine is reached over TLS (rustls, `tls.rs`): the default
/// `sslmode=prefer` becomes `require` there, so a server that does not offer TLS (or a network
/// that strips it) fails the connection instead of downgrading it to clear text. `sslmode=disable`
/// stays possible, as an explicit statement that the network path is private. Loopback and Unix
/// sockets keep `prefer`.
fn require_tls_off_this_machine(config: &mut postgres::Config) {
    use postgres::config::{Host, SslMode};
    let remote = config.get_hosts().iter().any(|h| match h {
        Host::Tcp(name) => !is_loopback(name),
        #[cfg(unix)]
        Host::Unix(_) => false,
    }) || config.get_hostaddrs().iter().any(|a| !a.is_loopback());
    if remote && config.get_ssl_mode() == SslMode::Prefer {
        config.ssl_mode(SslMode::Require);
    }
}

fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|a| a.is_loopback())
}

/// Appends reference-log entries for `keys` (distinct) of `kind`, replacing the older entry of
/// each key. Their numbers come from `reference_counter`, bumped by this very statement: call it
/// LAST in the transaction, so the counter's row lock (held to COMMIT) makes transactions commit
/// in the order of their numbers and a device's cursor never skips a late commit.
pub(crate) fn log_reference(tx: &mut impl Sql, kind: &str, keys: &[&str]) -> ServerResult<()> {
    if keys.is_empty() {
        return Ok(());
    }
    tx.execute(
        "WITH c AS (UPDATE reference_counter SET seq = seq + $3 WHERE id = 1 RETURNING seq)
         INSERT INTO reference_log (seq, kind, key)
         SELECT c.seq - $3 + k.ord, $1, k.key FROM c, unnest($2::text[]) WITH ORDINALITY AS k(key, ord)
         ON CONFLICT (kind, key) DO UPDATE SET seq = excluded.seq",
        &[&kind, &keys, &(keys.len() as i64)],
    )?;
    Ok(())
}

/// Gives each of the (distinct) documents `ids` a new change-feed position, numbered from
/// `change_counter`, and returns the positions. Like [`log_reference`]: the LAST statement before
/// COMMIT, so feed positions become visible in order (docs/postgres.md, "The feed-ordering rule").
pub(crate) fn bump_feed(tx: &mut impl Sql, ids: &[&str]) -> ServerResult<HashMap<String, i64>> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows = tx.query(
        "WITH c AS (UPDATE change_counter SET seq = seq + $2 WHERE id = 1 RETURNING seq)
         INSERT INTO change_feed (doc_id, seq)
         SELECT k.id, c.seq - $2 + k.ord FROM c, unnest($1::text[]) WITH ORDINALITY AS k(id, ord)
         ON CONFLICT (doc_id) DO UPDATE SET seq = excluded.seq
         RETURNING doc_id, seq",
        &[&ids, &(ids.len() as i64)],
    )?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// SQLite-style numbered parameters (`?3`, shared SQL fragments such as
/// [`crate::store::sql::readable`]) as PostgreSQL's (`$3`).
pub(crate) fn pg_params(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '?' && chars.peek().is_some_and(|n| n.is_ascii_digit()) {
            out.push('$');
        } else {
            out.push(c);
        }
    }
    out
}
