//! PostgreSQL storage (issue #8, docs/deploy.md): the same storage traits as
//! [`crate::storage::SqliteStorage`], on a database shared by any number of server instances.
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
mod documents;
mod media;
mod queries;
mod reference;
pub mod schema;
mod session;

use crate::blobs::BlobStore;
use crate::error::{ServerError, ServerResult};
use ed25519_dalek::SigningKey;
use r2d2_postgres::PostgresConnectionManager;
use r2d2_postgres::postgres::NoTls;
use std::time::Duration;

pub type PgPool = r2d2::Pool<PostgresConnectionManager<NoTls>>;
pub type PgClient = r2d2::PooledConnection<PostgresConnectionManager<NoTls>>;

/// Connections per instance. PostgreSQL's default max_connections is 100; two instances and the
/// admin tools fit under it.
const POOL_SIZE: u32 = 32;

/// Taken (as a session advisory lock) while migrating, so instances starting together migrate once.
const MIGRATION_LOCK: i64 = 0x6665_6e6c_6569_0001;

pub struct PgStorage {
    pool: PgPool,
    signing_key: SigningKey,
    blobs: Box<dyn BlobStore>,
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
        let config: postgres::Config = url
            .parse()
            .map_err(|e| ServerError::BadRequest(format!("database URL: {e}")))?;
        let manager = PostgresConnectionManager::new(config, NoTls);
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
        &[&seed.as_slice(), &crate::storage::now()],
    )?;
    let secret: Vec<u8> = client
        .query_one("SELECT secret FROM server_keys WHERE id = 1", &[])?
        .get(0);
    let bytes: [u8; 32] = secret
        .try_into()
        .map_err(|_| ServerError::Internal("server_keys.secret is not 32 bytes".into()))?;
    Ok(SigningKey::from_bytes(&bytes))
}

/// The error of a method not yet built on PostgreSQL (removed as each one lands).
pub(crate) fn not_yet(what: &str) -> ServerError {
    ServerError::Internal(format!("{what} is not yet on PostgreSQL"))
}
