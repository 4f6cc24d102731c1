//! Throwaway PostgreSQL databases for tests (feature `testing`).
//!
//! Each [`TestDatabase`] is a fresh database named `flowfuse_test_<uuid>` on the server of
//! `DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/flowfuse`), with every migration
//! applied; it is dropped when the value is dropped. A test that cannot reach the server fails
//! with a message saying so: it never passes without a database.

use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection, PgConnection, PgPool};

use crate::postgres::{MIGRATOR, PgEventStore};

pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/flowfuse";

pub struct TestDatabase {
    name: String,
    server: PgConnectOptions,
    pub pool: PgPool,
}

impl TestDatabase {
    /// Creates and migrates a fresh database with a pool of up to 20 connections.
    pub async fn create() -> Self {
        let url = std::env::var("DATABASE_URL").unwrap_or_else(|_| DEFAULT_DATABASE_URL.to_owned());
        let server: PgConnectOptions = url.parse().expect("DATABASE_URL is a valid PostgreSQL URL");
        let server = server.database("postgres");
        let name = format!("flowfuse_test_{}", uuid::Uuid::new_v4().simple());
        let mut admin = PgConnection::connect_with(&server)
            .await
            .unwrap_or_else(|e| panic!("tests need PostgreSQL at {url} (set DATABASE_URL): cannot connect: {e}"));
        sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut admin).await.expect("create test database");
        admin.close().await.ok();
        let pool = crate::pool_options(20)
            .connect_with(server.clone().database(&name))
            .await
            .expect("connect to test database");
        MIGRATOR.run(&pool).await.expect("migrate test database");
        Self { name, server, pool }
    }

    pub fn store(&self) -> PgEventStore {
        PgEventStore::new(self.pool.clone())
    }

    /// The URL of this database, for child processes such as the CLI.
    pub fn url(&self) -> String {
        self.server.clone().database(&self.name).to_url_lossy().to_string()
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        // Drop runs outside async code: drop the database from a thread with its own runtime.
        let (name, server) = (self.name.clone(), self.server.clone());
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            runtime.block_on(async move {
                let mut admin = PgConnection::connect_with(&server).await.map_err(std::io::Error::other)?;
                sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut admin)
                    .await
                    .map_err(std::io::Error::other)?;
                Ok::<_, std::io::Error>(())
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("warning: could not drop test database {}", self.name);
        }
    }
}
