//! The user store: SQLite behind a mutex, queried on the blocking pool, one span per operation.

use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;
use tracing::Span;

use crate::config::DatabaseLocation;

/// Demo users inserted into an empty store, so `GET /api/users/1` works on a fresh start.
const SEED_USERS: [&str; 3] = ["Alice", "Bob", "Carol"];

/// A stored user, as the API returns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct User {
    /// Primary key, assigned by the store.
    pub id: i64,
    /// Display name.
    pub name: String,
}

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite refused the operation (I/O error, corrupt file, locked database...).
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The blocking task running the query was cancelled or panicked.
    #[error("database task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
    /// A previous operation panicked while holding the connection.
    #[error("database connection is poisoned")]
    Poisoned,
}

/// Handle to the user store; cheap to clone.
#[derive(Clone)]
pub struct Store {
    conn: Arc<Mutex<Connection>>,
}

impl Store {
    /// Opens (creating if needed) the database, applies the schema and seeds demo users.
    pub fn open(location: &DatabaseLocation) -> Result<Self, StoreError> {
        let conn = match location {
            DatabaseLocation::Memory => Connection::open_in_memory()?,
            DatabaseLocation::File(path) => Connection::open(path)?,
        };
        // WAL keeps readers from blocking on writers; NORMAL sync is durable across app crashes.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS users (
                 id INTEGER PRIMARY KEY AUTOINCREMENT,
                 name TEXT NOT NULL
             );",
        )?;
        let count: i64 = conn.query_row("SELECT COUNT(*) FROM users", [], |row| row.get(0))?;
        if count == 0 {
            for name in SEED_USERS {
                conn.execute("INSERT INTO users (name) VALUES (?1)", params![name])?;
            }
        }
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    /// Looks a user up by id.
    pub async fn get_user(&self, id: i64) -> Result<Option<User>, StoreError> {
        self.run("SELECT", move |conn| {
            conn.query_row(
                "SELECT id, name FROM users WHERE id = ?1",
                params![id],
                |row| {
                    Ok(User {
                        id: row.get(0)?,
                        name: row.get(1)?,
                    })
                },
            )
            .optional()
        })
        .await
    }

    /// Inserts a user and returns it with its new id.
    pub async fn create_user(&self, name: String) -> Result<User, StoreError> {
        self.run("INSERT", move |conn| {
            conn.execute("INSERT INTO users (name) VALUES (?1)", params![name])?;
            Ok(User {
                id: conn.last_insert_rowid(),
                name,
            })
        })
        .await
    }

    /// Proves the database answers, for `/health`.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.run("SELECT", |conn| conn.query_row("SELECT 1", [], |_| Ok(())))
            .await
    }

    /// Runs `op` on the blocking pool inside a CLIENT span named `{operation} users`, with the
    /// OpenTelemetry database attributes, as a child of the caller's current span.
    async fn run<T, F>(&self, operation: &'static str, op: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let span = tracing::info_span!(
            parent: Span::current(),
            "db",
            otel.name = format!("{operation} users"),
            otel.kind = "client",
            otel.status_code = tracing::field::Empty,
            db.system = "sqlite",
            db.system.name = "sqlite",
            db.operation = operation,
            db.operation.name = operation,
            db.collection.name = "users",
        );
        let conn = Arc::clone(&self.conn);
        tokio::task::spawn_blocking(move || {
            span.in_scope(|| {
                let guard = conn.lock().map_err(|_| StoreError::Poisoned)?;
                let result = op(&guard).map_err(StoreError::from);
                if result.is_err() {
                    span.record("otel.status_code", "ERROR");
                }
                result
            })
        })
        .await?
    }
}
