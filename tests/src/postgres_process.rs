//! A Postgres cluster a test owns, to stop the way a crash or an operator would
//! (`-m immediate`: no checkpoint, clients cut off) and start again on the same
//! data and port. The shared test cluster of `haven_storage::testing` cannot be
//! stopped: other tests of the process use it.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use sqlx::Connection as _;
use sqlx::postgres::PgConnection;

/// One cluster in a temporary directory, removed when dropped.
pub struct PostgresProcess {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
    as_postgres_user: bool,
    server: Option<Child>,
}

impl PostgresProcess {
    /// Initialises and starts a cluster; `None` when Postgres is not installed
    /// (a failure under `CI=true`).
    pub async fn start() -> Option<Self> {
        let bin = match haven_storage::testing::find_binaries() {
            Ok(bin) => bin,
            Err(error) if std::env::var("CI").is_ok_and(|value| value == "true") => {
                panic!("CI=true but no Postgres: {error:#}")
            }
            Err(error) => {
                eprintln!("skipped: {error:#}");
                return None;
            }
        };
        let as_postgres_user = Command::new("id")
            .arg("-u")
            .output()
            .unwrap()
            .stdout
            .starts_with(b"0\n");
        let dir = tempfile::Builder::new()
            .prefix("haven-chaos-pg-")
            .tempdir()
            .unwrap()
            .keep();
        if as_postgres_user {
            let owned = Command::new("chown")
                .arg("-R")
                .arg("postgres:")
                .arg(&dir)
                .status()
                .unwrap();
            assert!(owned.success());
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut cluster = Self {
            bin,
            dir,
            port,
            as_postgres_user,
            server: None,
        };
        let initdb = cluster
            .command("initdb")
            .args(["-A", "trust", "-U", "postgres", "--no-sync", "-D"])
            .arg(cluster.dir.join("data"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(initdb.success(), "initdb failed");
        cluster.resume().await;
        Some(cluster)
    }

    fn command(&self, program: &str) -> Command {
        let program = self.bin.join(program);
        if self.as_postgres_user {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(program);
            command
        } else {
            Command::new(program)
        }
    }

    /// The URL of database `name` (`postgres` always exists).
    pub fn url(&self, name: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{name}", self.port)
    }

    /// Creates database `name`.
    pub async fn create_database(&self, name: &str) {
        let mut connection = PgConnection::connect(&self.url("postgres")).await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut connection)
            .await
            .unwrap();
        let _ = connection.close().await;
    }

    /// Starts the server (again) and waits until it accepts connections.
    pub async fn resume(&mut self) {
        assert!(self.server.is_none(), "already running");
        let log = std::fs::File::create(self.dir.join("postgres.log")).unwrap();
        let server = self
            .command("postgres")
            .arg("-D")
            .arg(self.dir.join("data"))
            .args(["-p", &self.port.to_string(), "-k"])
            .arg(&self.dir)
            .args([
                "-c",
                "fsync=off",
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "max_connections=300",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.server = Some(server);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(connection) = PgConnection::connect(&self.url("postgres")).await {
                let _ = connection.close().await;
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "Postgres did not start: {}",
                std::fs::read_to_string(self.dir.join("postgres.log")).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Stops the server as `pg_ctl stop -m immediate` does (SIGQUIT to the
    /// postmaster): every session is cut off, nothing is checkpointed.
    pub fn stop_immediately(&mut self) {
        let Some(mut server) = self.server.take() else {
            return;
        };
        let pid = std::fs::read_to_string(self.dir.join("data/postmaster.pid"))
            .ok()
            .and_then(|file| file.lines().next().map(str::to_owned));
        match pid {
            Some(pid) => {
                let _ = Command::new("kill").args(["-QUIT", &pid]).status();
            }
            None => {
                let _ = server.kill();
            }
        }
        let _ = server.wait();
        // The postmaster is gone once its pid file is.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while self.dir.join("data/postmaster.pid").exists() && std::time::Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for PostgresProcess {
    fn drop(&mut self) {
        self.stop_immediately();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
