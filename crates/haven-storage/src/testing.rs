//! Throwaway Postgres for tests.
//!
//! [`postgres`] starts one cluster per test process (`initdb` + `postgres` from PATH
//! or `/usr/lib/postgresql/*/bin`, temp dir, free port, fsync off) and hands out a
//! fresh database per call to [`TestPostgres::fresh_database`]. A small supervisor
//! shell stops the cluster and removes its directory when the test process exits.
//! `HAVEN_TEST_DATABASE_URL` points at an existing server instead. Under `CI=true` a
//! missing Postgres is a failure, never a silent skip.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use sqlx::Connection;
use sqlx::postgres::PgConnection;
use tokio::sync::OnceCell;

/// Environment variable naming an existing server to use instead of a throwaway one.
pub const TEST_DATABASE_URL_ENV: &str = "HAVEN_TEST_DATABASE_URL";

/// A Postgres server tests may create databases on.
#[derive(Debug)]
pub struct TestPostgres {
    admin_url: String,
}

static SERVER: OnceCell<Option<TestPostgres>> = OnceCell::const_new();

/// The process's test server: `None` when Postgres is not available (tests then skip
/// their Postgres half). Panics under `CI=true` if none can be had.
pub async fn postgres() -> Option<&'static TestPostgres> {
    let server = SERVER
        .get_or_init(|| async {
            match start().await {
                Ok(server) => Some(server),
                Err(error) if std::env::var("CI").is_ok_and(|value| value == "true") => {
                    panic!("CI=true but no Postgres for tests: {error:#}")
                }
                Err(error) => {
                    eprintln!("postgres tests skipped: {error:#}");
                    None
                }
            }
        })
        .await;
    server.as_ref()
}

impl TestPostgres {
    /// Creates an empty database and returns its URL.
    pub async fn fresh_database(&self) -> String {
        let name = format!("t_{}", uuid::Uuid::new_v4().simple());
        let mut connection = PgConnection::connect(&self.admin_url)
            .await
            .unwrap_or_else(|error| panic!("connect to test Postgres: {error}"));
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut connection)
            .await
            .unwrap_or_else(|error| panic!("create test database: {error}"));
        let _ = connection.close().await;
        with_database(&self.admin_url, &name)
    }
}

fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_end = base.find("://").map_or(0, |i| i + 3);
    let base = match base[authority_end..].find('/') {
        Some(slash) => &base[..authority_end + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{base}/{database}?{query}"),
        None => format!("{base}/{database}"),
    }
}

async fn start() -> anyhow::Result<TestPostgres> {
    if let Ok(url) = std::env::var(TEST_DATABASE_URL_ENV) {
        return Ok(TestPostgres { admin_url: url });
    }
    let bin = find_binaries()?;
    let is_root = Command::new("id")
        .arg("-u")
        .output()?
        .stdout
        .starts_with(b"0\n");
    let dir = tempfile::Builder::new()
        .prefix("haven-pg-")
        .tempdir()?
        .keep();
    if is_root {
        let status = Command::new("chown")
            .arg("-R")
            .arg("postgres:")
            .arg(&dir)
            .status()?;
        anyhow::ensure!(
            status.success(),
            "chown of the test cluster directory failed"
        );
    }
    let port = free_port()?;
    let run_as = if is_root {
        "runuser -u postgres --"
    } else {
        ""
    };
    // Supervisor: init, start, wait for the test process to exit, stop, clean up.
    let script = format!(
        r#"set -e
{run_as} "{bin}/initdb" -D "$1/data" -A trust -U postgres --no-sync > "$1/initdb.log" 2>&1
{run_as} "{bin}/postgres" -D "$1/data" -p "$2" -k "$1" -c fsync=off -c synchronous_commit=off \
  -c full_page_writes=off -c listen_addresses=127.0.0.1 -c max_connections=500 > "$1/postgres.log" 2>&1 &
pg=$!
while kill -0 "$3" 2>/dev/null && kill -0 "$pg" 2>/dev/null; do sleep 0.5; done
# Stop the postmaster itself: `runuser` does not pass the signal on.
kill -INT "$(head -n 1 "$1/data/postmaster.pid" 2>/dev/null)" 2>/dev/null || kill -INT "$pg" 2>/dev/null || true
wait "$pg" 2>/dev/null || true
rm -rf "$1"
"#,
        bin = bin.display()
    );
    Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg("haven-test-postgres")
        .arg(&dir)
        .arg(port.to_string())
        .arg(std::process::id().to_string())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()?;
    let admin_url = format!("postgres://postgres@127.0.0.1:{port}/postgres");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        match PgConnection::connect(&admin_url).await {
            Ok(connection) => {
                let _ = connection.close().await;
                return Ok(TestPostgres { admin_url });
            }
            Err(error) if tokio::time::Instant::now() > deadline => {
                let log = std::fs::read_to_string(dir.join("initdb.log")).unwrap_or_default()
                    + &std::fs::read_to_string(dir.join("postgres.log")).unwrap_or_default();
                anyhow::bail!("test Postgres did not start: {error}\n{log}");
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

/// The directory holding `initdb` and `postgres`: on PATH, else the newest
/// `/usr/lib/postgresql/*/bin`.
pub fn find_binaries() -> anyhow::Result<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .unwrap_or_default();
    let mut candidates = on_path;
    if let Ok(entries) = std::fs::read_dir("/usr/lib/postgresql") {
        let mut versions: Vec<PathBuf> = entries
            .flatten()
            .map(|entry| entry.path().join("bin"))
            .collect();
        versions.sort();
        candidates.extend(versions.into_iter().rev());
    }
    candidates
        .into_iter()
        .find(|dir| is_file(&dir.join("initdb")) && is_file(&dir.join("postgres")))
        .ok_or_else(|| {
            anyhow::anyhow!("initdb/postgres not found on PATH or in /usr/lib/postgresql")
        })
}

fn is_file(path: &Path) -> bool {
    path.is_file()
}

/// A free port, never one of the ports Haven's services listen on by default (the
/// compose test binds those).
fn free_port() -> std::io::Result<u16> {
    loop {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        if !(50051..=50054).contains(&port) && port != 8080 {
            return Ok(port);
        }
    }
}

/// Settings for a test on embedded SQLite: a fresh data directory.
pub fn sqlite_settings() -> (tempfile::TempDir, haven_config::Settings) {
    let dir = tempfile::tempdir().unwrap_or_else(|error| panic!("temp dir: {error}"));
    let settings = haven_config::Settings {
        data_dir: dir.path().to_path_buf(),
        ..haven_config::Settings::default()
    };
    (dir, settings)
}

/// Settings for a test on a fresh Postgres database, or `None` when Postgres is not
/// available outside CI.
pub async fn postgres_settings() -> Option<(tempfile::TempDir, haven_config::Settings)> {
    let server = postgres().await?;
    let url = server.fresh_database().await;
    let (dir, mut settings) = sqlite_settings();
    settings.database.url = Some(haven_config::Secret::new(url));
    Some((dir, settings))
}

/// Runs each listed async test function against SQLite and Postgres.
///
/// `setup` is a function in the calling module, `async fn(&Settings) -> T`; each test
/// is `async fn(T)`. Generates `sqlite::<test>` and `postgres::<test>`; the Postgres
/// half skips only when no server can be had outside CI.
#[macro_export]
macro_rules! backend_suite {
    (setup = $setup:ident; $($test:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $test() {
                    let (_dir, settings) = $crate::testing::sqlite_settings();
                    super::$test(super::$setup(&settings).await).await;
                }
            )+
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $test() {
                    let Some((_dir, settings)) = $crate::testing::postgres_settings().await else {
                        return;
                    };
                    super::$test(super::$setup(&settings).await).await;
                }
            )+
        }
    };
}

#[cfg(test)]
mod tests {
    #[test]
    fn database_name_replaces_the_path_and_keeps_the_query() {
        assert_eq!(
            super::with_database("postgres://u:p@h:5/postgres?sslmode=disable", "t1"),
            "postgres://u:p@h:5/t1?sslmode=disable"
        );
        assert_eq!(
            super::with_database("postgres://h:5", "t1"),
            "postgres://h:5/t1"
        );
    }
}
