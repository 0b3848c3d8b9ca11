//! Pooled PostgreSQL connections that prepare each statement text once.
//!
//! The `postgres` crate's `execute("…")` / `query("…")` prepare the text on every call: a
//! Parse/Describe round trip and a fresh plan before Bind/Execute, so every statement costs two
//! round trips (docs/benchmarks.md measured the PostgreSQL server at ~1.9× the CPU of the SQLite
//! one, which uses rusqlite's `prepare_cached`). [`PgConn`] keeps the statements it prepared, by
//! text, for as long as the connection lives; [`PgTx`] is a transaction on it that shares that
//! cache. Both expose the few calls the storage makes under the same names as the `postgres`
//! crate's, and [`Sql`] lets a helper take either.
//!
//! Prepared statements belong to their connection (PostgreSQL keeps them for the session, not
//! the transaction, so a rolled-back transaction does not invalidate them). A statement that
//! fails is dropped from the cache, so one made stale by a schema change is prepared afresh on
//! its next use. The cache is bounded: the storage's statement texts are a fixed set (filters
//! vary only in parameters), and the bound keeps a mistake from growing it without end.

use super::tls::RustlsMakeTls;
use postgres::types::ToSql;
use postgres::{Client, Error, IsolationLevel, Row, Statement, Transaction};
use r2d2_postgres::PostgresConnectionManager;
use std::collections::HashMap;

/// Statements kept per connection before the cache starts over.
const MAX_CACHED_STATEMENTS: usize = 256;

type Params<'p> = &'p [&'p (dyn ToSql + Sync)];

#[derive(Default)]
struct StatementCache(HashMap<String, Statement>);

impl StatementCache {
    fn get(
        &mut self,
        sql: &str,
        prepare: impl FnOnce(&str) -> Result<Statement, Error>,
    ) -> Result<Statement, Error> {
        if let Some(statement) = self.0.get(sql) {
            return Ok(statement.clone());
        }
        let statement = prepare(sql)?;
        if self.0.len() >= MAX_CACHED_STATEMENTS {
            self.0.clear();
        }
        self.0.insert(sql.to_owned(), statement.clone());
        Ok(statement)
    }

    fn forget_if_failed<T>(&mut self, sql: &str, result: Result<T, Error>) -> Result<T, Error> {
        if result.is_err() {
            self.0.remove(sql);
        }
        result
    }
}

/// A pooled connection with its prepared statements.
pub struct PgConn {
    client: Client,
    statements: StatementCache,
}

/// A transaction on a [`PgConn`], preparing through the connection's cache.
pub struct PgTx<'c> {
    tx: Transaction<'c>,
    statements: &'c mut StatementCache,
}

impl PgConn {
    pub fn transaction(&mut self) -> Result<PgTx<'_>, Error> {
        Ok(PgTx {
            tx: self.client.transaction()?,
            statements: &mut self.statements,
        })
    }

    /// A read-only REPEATABLE READ transaction: every statement sees one snapshot.
    pub fn snapshot(&mut self) -> Result<PgTx<'_>, Error> {
        Ok(PgTx {
            tx: self
                .client
                .build_transaction()
                .isolation_level(IsolationLevel::RepeatableRead)
                .read_only(true)
                .start()?,
            statements: &mut self.statements,
        })
    }

    /// Statements the cache holds (tests).
    #[cfg(test)]
    pub fn cached_statements(&self) -> usize {
        self.statements.0.len()
    }
}

impl PgTx<'_> {
    pub fn commit(self) -> Result<(), Error> {
        self.tx.commit()
    }
}

/// What the storage's helpers need of a connection or a transaction.
pub trait Sql {
    fn execute(&mut self, sql: &str, params: Params<'_>) -> Result<u64, Error>;
    fn query(&mut self, sql: &str, params: Params<'_>) -> Result<Vec<Row>, Error>;
    fn query_one(&mut self, sql: &str, params: Params<'_>) -> Result<Row, Error>;
    fn query_opt(&mut self, sql: &str, params: Params<'_>) -> Result<Option<Row>, Error>;
    /// Runs `sql` (one or more statements, no parameters) as a simple query: not cached.
    fn batch_execute(&mut self, sql: &str) -> Result<(), Error>;
}

/// The same calls as inherent methods (no import needed at a call site) and as [`Sql`], for
/// [`PgConn`] (field `client`) and [`PgTx`] (field `tx`).
macro_rules! cached_sql {
    ($ty:ty, $inner:ident) => {
        impl $ty {
            pub fn execute(&mut self, sql: &str, params: Params<'_>) -> Result<u64, Error> {
                let statement = self.statements.get(sql, |s| self.$inner.prepare(s))?;
                let result = self.$inner.execute(&statement, params);
                self.statements.forget_if_failed(sql, result)
            }

            pub fn query(&mut self, sql: &str, params: Params<'_>) -> Result<Vec<Row>, Error> {
                let statement = self.statements.get(sql, |s| self.$inner.prepare(s))?;
                let result = self.$inner.query(&statement, params);
                self.statements.forget_if_failed(sql, result)
            }

            pub fn query_one(&mut self, sql: &str, params: Params<'_>) -> Result<Row, Error> {
                let statement = self.statements.get(sql, |s| self.$inner.prepare(s))?;
                let result = self.$inner.query_one(&statement, params);
                self.statements.forget_if_failed(sql, result)
            }

            pub fn query_opt(
                &mut self,
                sql: &str,
                params: Params<'_>,
            ) -> Result<Option<Row>, Error> {
                let statement = self.statements.get(sql, |s| self.$inner.prepare(s))?;
                let result = self.$inner.query_opt(&statement, params);
                self.statements.forget_if_failed(sql, result)
            }

            pub fn batch_execute(&mut self, sql: &str) -> Result<(), Error> {
                self.$inner.batch_execute(sql)
            }
        }

        impl Sql for $ty {
            fn execute(&mut self, sql: &str, params: Params<'_>) -> Result<u64, Error> {
                <$ty>::execute(self, sql, params)
            }
            fn query(&mut self, sql: &str, params: Params<'_>) -> Result<Vec<Row>, Error> {
                <$ty>::query(self, sql, params)
            }
            fn query_one(&mut self, sql: &str, params: Params<'_>) -> Result<Row, Error> {
                <$ty>::query_one(self, sql, params)
            }
            fn query_opt(&mut self, sql: &str, params: Params<'_>) -> Result<Option<Row>, Error> {
                <$ty>::query_opt(self, sql, params)
            }
            fn batch_execute(&mut self, sql: &str) -> Result<(), Error> {
                <$ty>::batch_execute(self, sql)
            }
        }
    };
}

cached_sql!(PgConn, client);
cached_sql!(PgTx<'_>, tx);

/// r2d2's manager for [`PgConn`]: `r2d2_postgres`'s, with a statement cache per connection.
pub struct CachingManager(pub PostgresConnectionManager<RustlsMakeTls>);

impl r2d2::ManageConnection for CachingManager {
    type Connection = PgConn;
    type Error = Error;

    fn connect(&self) -> Result<PgConn, Error> {
        Ok(PgConn {
            client: self.0.connect()?,
            statements: StatementCache::default(),
        })
    }

    fn is_valid(&self, conn: &mut PgConn) -> Result<(), Error> {
        self.0.is_valid(&mut conn.client)
    }

    fn has_broken(&self, conn: &mut PgConn) -> bool {
        self.0.has_broken(&mut conn.client)
    }
}
