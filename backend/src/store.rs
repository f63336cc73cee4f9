//! The user store: SQLite, one span per operation. Writes run on the blocking pool behind one
//! connection; point reads (a primary-key lookup, a few microseconds) run on the calling
//! worker, on read connections of their own: handing each one to the blocking pool cost more
//! than a third of the backend's CPU in thread wake-ups.

use std::sync::{Arc, Mutex, TryLockError};

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
    writer: Arc<Mutex<Connection>>,
    /// Connections for reads on the async workers: one per CPU for a file (WAL lets them read
    /// while the writer writes), the writer itself for an in-memory database (a second
    /// connection would open a different, empty database).
    readers: Arc<[Arc<Mutex<Connection>>]>,
}

/// Applies the connection settings every connection of the store needs.
fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    // Statements are reused from the cache instead of being compiled per request.
    conn.set_prepared_statement_cache_capacity(16);
    Ok(())
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
        configure(&conn)?;
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
        let writer = Arc::new(Mutex::new(conn));
        let readers: Arc<[_]> = match location {
            DatabaseLocation::Memory => Arc::new([Arc::clone(&writer)]),
            DatabaseLocation::File(path) => {
                let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
                (0..cpus)
                    .map(|_| {
                        let reader = Connection::open_with_flags(
                            path,
                            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY
                                | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
                        )?;
                        configure(&reader)?;
                        Ok(Arc::new(Mutex::new(reader)))
                    })
                    .collect::<Result<_, StoreError>>()?
            }
        };
        Ok(Self { writer, readers })
    }

    /// Looks a user up by id.
    pub async fn get_user(&self, id: i64) -> Result<Option<User>, StoreError> {
        self.read("SELECT", move |conn| {
            conn.prepare_cached("SELECT id, name FROM users WHERE id = ?1")?
                .query_row(params![id], |row| {
                    Ok(User {
                        id: row.get(0)?,
                        name: row.get(1)?,
                    })
                })
                .optional()
        })
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

    /// Proves the database answers, for `/health`: a read of the users table on a read
    /// connection (a file that became unreadable fails it).
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.read("SELECT", |conn| {
            conn.prepare_cached("SELECT 1 FROM users LIMIT 1")?
                .query_row([], |_| Ok(()))
                .optional()
                .map(|_| ())
        })
    }

    /// Runs the point read `op` on the calling worker, inside the operation's span, on a free
    /// read connection (or waiting for one: reads take microseconds).
    fn read<T>(
        &self,
        operation: &'static str,
        op: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, StoreError> {
        let span = operation_span(operation);
        let _entered = span.enter();
        let guard = self
            .readers
            .iter()
            .find_map(|reader| match reader.try_lock() {
                Ok(guard) => Some(Ok(guard)),
                Err(TryLockError::Poisoned(_)) => Some(Err(StoreError::Poisoned)),
                Err(TryLockError::WouldBlock) => None,
            })
            .unwrap_or_else(|| self.readers[0].lock().map_err(|_| StoreError::Poisoned))?;
        let result = op(&guard).map_err(StoreError::from);
        if result.is_err() {
            span.record("otel.status_code", "ERROR");
        }
        result
    }

    /// Runs `op` on the blocking pool inside a CLIENT span named `{operation} users`, with the
    /// OpenTelemetry database attributes, as a child of the caller's current span.
    async fn run<T, F>(&self, operation: &'static str, op: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let span = operation_span(operation);
        let conn = Arc::clone(&self.writer);
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

/// The CLIENT span of one store operation, named `{operation} users`, with the OpenTelemetry
/// database attributes, as a child of the caller's current span.
fn operation_span(operation: &'static str) -> Span {
    tracing::info_span!(
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
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_file_store_reads_what_it_wrote_on_its_read_connections() {
        let dir = tempfile::tempdir().unwrap();
        let location = DatabaseLocation::File(dir.path().join("users.db"));
        let store = Store::open(&location).unwrap();
        assert_eq!(store.get_user(1).await.unwrap().unwrap().name, "Alice");
        let created = store.create_user("Dora".into()).await.unwrap();
        // The read connections see the committed write at once.
        for _ in 0..store.readers.len() * 2 {
            assert_eq!(
                store.get_user(created.id).await.unwrap(),
                Some(created.clone())
            );
        }
        assert_eq!(store.get_user(created.id + 1).await.unwrap(), None);
        store.ping().await.unwrap();
        // A reopened store keeps its users and seeds nothing more.
        drop(store);
        let store = Store::open(&location).unwrap();
        assert_eq!(store.get_user(created.id).await.unwrap(), Some(created));
        assert_eq!(store.get_user(5).await.unwrap(), None);
    }
}
