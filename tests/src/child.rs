//! One Haven service in a child process of the test, so a test can freeze it
//! (SIGSTOP), kill it (SIGKILL) or stop it (SIGTERM) like an orchestrator or a crash
//! would.
//!
//! The child is the test binary itself, running only the test that calls
//! [`run_child_if_asked`] (an ignored test in the same file), with settings from
//! its environment as `haven serve <service>` reads them.

use std::io::BufRead as _;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use haven_cli::ServiceName;
use haven_config::Settings;

/// Set (to the parent's process id) in the child's environment.
pub const CHILD_ENV: &str = "HAVEN_E2E_SERVICE_CHILD";
/// Which service the child serves (`ServiceName::as_str`).
pub const SERVICE_ENV: &str = "HAVEN_E2E_SERVICE";
/// The line the child prints once it listens.
const LISTENING: &str = "haven child service listening on ";

/// The body of the child's entry point: serves the service named in the
/// environment, with settings from the environment exactly as `haven serve
/// <service>` reads them, until killed or stopped by SIGTERM (which drains, as in
/// production). Without the child's environment it returns at once, so the ignored
/// test is harmless when run by hand.
pub fn run_child_if_asked() {
    let Some(parent) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let parent: u32 = parent.to_str().unwrap().parse().unwrap();
    // Never outlive the test that started us, however it ends.
    std::thread::spawn(move || {
        loop {
            if std::os::unix::process::parent_id() != parent {
                std::process::exit(1);
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    });
    let service = std::env::var(SERVICE_ENV).unwrap();
    let service = ServiceName::ALL
        .into_iter()
        .find(|candidate| candidate.as_str() == service)
        .unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let served = runtime.block_on(async {
        let settings = Settings::load()?;
        let telemetry =
            haven_telemetry::init(&settings.telemetry, &format!("haven-{}", service.as_str()))?;
        let listener = haven_cli::bind(service, &settings).await?;
        println!("{LISTENING}{}", listener.local_addr()?);
        let shutdown = haven_server::shutdown_on_signal();
        let served = haven_cli::serve(service, listener, settings, shutdown).await;
        telemetry.shutdown();
        served
    });
    if let Err(error) = served {
        eprintln!("{} process failed: {error:#}", service.as_str());
        std::process::exit(2);
    }
}

/// The command that runs `service` in a child: the ignored test `entry_point` of the
/// current test binary, with exactly `environment` as its `HAVEN__` settings (none
/// inherited from the test's own environment) and `dir` as its working directory.
pub fn command(
    entry_point: &str,
    service: ServiceName,
    environment: &[(String, String)],
    dir: &Path,
) -> Command {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args([
            "--exact",
            entry_point,
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .current_dir(dir)
        .env(CHILD_ENV, std::process::id().to_string())
        .env(SERVICE_ENV, service.as_str())
        .stdin(Stdio::null());
    for (name, _) in std::env::vars() {
        if name.starts_with("HAVEN__") || name == haven_config::CONFIG_FILE_ENV {
            command.env_remove(name);
        }
    }
    command.envs(environment.iter().map(|(name, value)| (name, value)));
    command
}

/// A running child service; killed (SIGKILL) when dropped, so it never outlives a
/// failing test.
pub struct ServiceProcess {
    process: std::process::Child,
    /// Where it listens.
    pub address: SocketAddr,
}

impl ServiceProcess {
    /// Starts `service` in a child running the ignored test `entry_point` of the
    /// current test binary, with exactly `environment` as its `HAVEN__` settings and
    /// `dir` as its working directory, and waits until it listens.
    pub fn start(
        entry_point: &str,
        service: ServiceName,
        environment: &[(String, String)],
        dir: &Path,
    ) -> Self {
        let mut process = command(entry_point, service, environment, dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = process.stdout.take().unwrap();
        let (sender, receiver) = std::sync::mpsc::channel();
        // Reads until the child exits, so its output never blocks it.
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some((_, address)) = line.split_once(LISTENING) {
                    let _ = sender.send(address.trim().parse::<SocketAddr>().unwrap());
                }
            }
        });
        let address = receiver
            .recv_timeout(Duration::from_secs(30))
            .expect("the child service did not start listening within 30 s");
        Self { process, address }
    }

    /// The process id.
    pub fn id(&self) -> u32 {
        self.process.id()
    }

    /// `http://address`, for a gRPC client or a gateway's endpoint setting.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Sends `signal` (`STOP`, `CONT`, `TERM`, `KILL`) to the process.
    pub fn signal(&self, signal: &str) {
        let sent = Command::new("kill")
            .args([&format!("-{signal}"), &self.process.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success(), "kill -{signal} failed");
    }

    /// Kills the process at once (SIGKILL) and reaps it.
    pub fn kill(mut self) {
        self.process.kill().unwrap();
        self.process.wait().unwrap();
    }

    /// Waits for the process to exit, at most `within`; whether it exited.
    pub fn wait_for_exit(&mut self, within: Duration) -> bool {
        let deadline = std::time::Instant::now() + within;
        while std::time::Instant::now() < deadline {
            if self.process.try_wait().unwrap().is_some() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

/// Copies the key files of `from_data_dir` (token keys, master keyring, ...) into
/// `to_data_dir`, so a child with its own data directory verifies the same tokens
/// and reads the same encrypted records.
pub fn copy_keys(from_data_dir: &Path, to_data_dir: &Path) {
    let from = haven_auth::keys::keys_dir(from_data_dir);
    let to = haven_auth::keys::keys_dir(to_data_dir);
    std::fs::create_dir_all(&to).unwrap();
    for entry in std::fs::read_dir(&from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
}
