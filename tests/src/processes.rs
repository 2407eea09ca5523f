//! Haven as separate OS processes: N replicas of each service on one Postgres, as a
//! Kubernetes deployment runs them, for tests that kill, freeze and restart them.
//!
//! Each process is this test binary again, running only the test named by
//! [`ClusterSpec::child_test`], whose body calls
//! [`crate::child::run_child_if_asked`]: it reads its
//! settings from the environment exactly as `haven serve <service>` does and serves
//! one service until it is killed. Every process has its own port. In front of the
//! replicas of each gRPC service a [`Balancer`] stands in for the Kubernetes Service:
//! it hands each new TCP connection to the next replica that accepts it, and skips a
//! frozen one (as endpoints drop a pod that fails its readiness probe). The gateways
//! are reached directly, one URL each, as a load balancer in front of them would.
//!
//! The keys are created once in a shared data directory before any process starts,
//! as the operator's Secret would be mounted into every pod, and the migrations run
//! once first, as the migrate Job does. Every child is killed when the [`Cluster`] is
//! dropped, and exits by itself if the test process goes away.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use haven_cli::ServiceName;
use haven_config::Settings;

/// How long a process may take to become ready after it was started.
const READY_WITHIN: Duration = Duration::from_secs(60);
/// How long a balancer waits for a replica to accept a connection.
const CONNECT_WITHIN: Duration = Duration::from_secs(2);

/// What to start.
#[derive(Debug, Clone)]
pub struct ClusterSpec {
    /// Replicas of each gRPC service (intake, case, referral, reporting).
    pub replicas: usize,
    /// Gateway processes.
    pub gateways: usize,
    /// The `#[ignore]`d test of the calling test binary whose body is
    /// [`crate::child::run_child_if_asked`].
    pub child_test: &'static str,
}

/// One OS process of one service.
#[derive(Debug)]
pub struct Process {
    /// The service it runs.
    pub service: ServiceName,
    /// Its index among that service's processes.
    pub replica: usize,
    address: SocketAddr,
    child: Option<std::process::Child>,
    frozen: bool,
    log: PathBuf,
}

impl Process {
    /// Where it listens (a restart moves it to a new port).
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Whether it runs and is not frozen.
    pub fn is_up(&self) -> bool {
        self.child.is_some() && !self.frozen
    }

    /// Its process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(std::process::Child::id)
    }

    /// A short name for messages, e.g. `case#2`.
    pub fn name(&self) -> String {
        format!("{}#{}", self.service.as_str(), self.replica)
    }
}

/// The replicas of one gRPC service behind one address, like a Kubernetes Service.
#[derive(Debug)]
struct Balancer {
    address: SocketAddr,
    /// Per replica: its address, or `None` while it is frozen or down.
    backends: Arc<Mutex<Vec<Option<SocketAddr>>>>,
    task: JoinHandle<()>,
}

impl Balancer {
    async fn start(replicas: usize) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("local address");
        let backends = Arc::new(Mutex::new(vec![None; replicas]));
        let task = tokio::spawn(balance(listener, backends.clone()));
        Self {
            address,
            backends,
            task,
        }
    }

    fn set(&self, replica: usize, backend: Option<SocketAddr>) {
        self.backends.lock().expect("backends")[replica] = backend;
    }
}

impl Drop for Balancer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn balance(listener: TcpListener, backends: Arc<Mutex<Vec<Option<SocketAddr>>>>) {
    let mut next = 0usize;
    loop {
        let Ok((mut inbound, _)) = listener.accept().await else {
            continue;
        };
        let candidates: Vec<SocketAddr> = {
            let backends = backends.lock().expect("backends");
            let count = backends.len();
            (0..count)
                .filter_map(|offset| backends[(next + offset) % count])
                .collect()
        };
        next = next.wrapping_add(1);
        tokio::spawn(async move {
            for candidate in candidates {
                let connected =
                    tokio::time::timeout(CONNECT_WITHIN, TcpStream::connect(candidate)).await;
                if let Ok(Ok(mut outbound)) = connected {
                    let _ = outbound.set_nodelay(true);
                    let _ = inbound.set_nodelay(true);
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    return;
                }
            }
            // No replica accepts: the caller sees its connection closed.
        });
    }
}

/// Replicas of every service on one throwaway Postgres database.
#[derive(Debug)]
pub struct Cluster {
    /// Every process, gRPC services first, then the gateways.
    pub processes: Vec<Process>,
    /// The database every process uses (each service in its own schema).
    pub database_url: String,
    /// Settings as the processes read them, for reading keys and databases.
    pub settings: Settings,
    balancers: Vec<(ServiceName, Balancer)>,
    environment: Vec<(String, String)>,
    child_test: &'static str,
    dir: tempfile::TempDir,
}

const GRPC_SERVICES: [ServiceName; 4] = [
    ServiceName::Intake,
    ServiceName::Case,
    ServiceName::Referral,
    ServiceName::Reporting,
];

fn upper(service: ServiceName) -> String {
    service.as_str().to_uppercase()
}

impl Cluster {
    /// Creates the keys, runs the migrations and starts every process, then waits
    /// until each is ready. `None` when no Postgres is available outside CI.
    pub async fn start(spec: ClusterSpec) -> Option<Self> {
        let server = haven_storage::testing::postgres().await?;
        let database_url = server.fresh_database().await;
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir_all(dir.path().join("logs")).expect("log dir");
        let mut balancers = Vec::new();
        for service in GRPC_SERVICES {
            balancers.push((service, Balancer::start(spec.replicas).await));
        }
        let mut environment = vec![
            (
                "HAVEN__DATA_DIR".to_owned(),
                dir.path().display().to_string(),
            ),
            ("HAVEN__DATABASE__URL".to_owned(), database_url.clone()),
            (
                "HAVEN__DATABASE__MAX_CONNECTIONS".to_owned(),
                "4".to_owned(),
            ),
            (
                "HAVEN__GATEWAY__METRICS_LISTEN".to_owned(),
                "127.0.0.1:0".to_owned(),
            ),
            // The load comes from one user; the limiter has tests of its own.
            (
                "HAVEN__GATEWAY__RATE_LIMIT_PER_MINUTE".to_owned(),
                "1000000".to_owned(),
            ),
            (
                "HAVEN__GATEWAY__RATE_LIMIT_BURST".to_owned(),
                "100000".to_owned(),
            ),
        ];
        for (service, balancer) in &balancers {
            environment.push((
                format!("HAVEN__{}__ENDPOINT", upper(*service)),
                format!("http://{}", balancer.address),
            ));
        }
        let settings =
            Settings::load_from(None, environment.clone()).expect("the cluster's settings");
        // The Secret every pod mounts, and the migrate Job.
        haven_cli::operations::init_keys(&haven_auth::keys::keys_dir(&settings.data_dir))
            .expect("keys");
        haven_auth::keys::KeyMaterial::load_or_create(&settings).expect("auth keys");
        haven_cli::migrate(&settings).await.expect("migrations");

        let mut cluster = Self {
            processes: Vec::new(),
            database_url,
            settings,
            balancers,
            environment,
            child_test: spec.child_test,
            dir,
        };
        for service in GRPC_SERVICES {
            for replica in 0..spec.replicas {
                cluster.push(service, replica);
            }
        }
        for replica in 0..spec.gateways {
            cluster.push(ServiceName::Gateway, replica);
        }
        // All start together, as a rollout does.
        for index in 0..cluster.processes.len() {
            cluster.spawn(index);
        }
        for index in 0..cluster.processes.len() {
            cluster.wait_ready(index).await;
        }
        Some(cluster)
    }

    fn push(&mut self, service: ServiceName, replica: usize) {
        let log = self
            .dir
            .path()
            .join("logs")
            .join(format!("{}-{replica}.log", service.as_str()));
        self.processes.push(Process {
            service,
            replica,
            address: SocketAddr::from(([127, 0, 0, 1], 0)),
            child: None,
            frozen: false,
            log,
        });
    }

    /// The base URLs of the gateways.
    pub fn gateway_urls(&self) -> Vec<String> {
        self.processes
            .iter()
            .filter(|process| process.service == ServiceName::Gateway)
            .map(|process| format!("http://{}", process.address))
            .collect()
    }

    /// The address through which the replicas of a gRPC service are reached.
    pub fn service_address(&self, service: ServiceName) -> SocketAddr {
        self.balancer(service)
            .map(|balancer| balancer.address)
            .expect("a gRPC service")
    }

    fn balancer(&self, service: ServiceName) -> Option<&Balancer> {
        self.balancers
            .iter()
            .find(|(candidate, _)| *candidate == service)
            .map(|(_, balancer)| balancer)
    }

    /// The data directory every process shares (keys).
    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    /// Starts process `index` on a new port (a killed process's port may be taken
    /// by an outgoing connection by the time it comes back).
    fn spawn(&mut self, index: usize) {
        let port = free_port();
        let process = &mut self.processes[index];
        let address = SocketAddr::from(([127, 0, 0, 1], port));
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&process.log)
            .expect("log file");
        let mut command = crate::child::command(
            self.child_test,
            process.service,
            &self.environment,
            self.dir.path(),
        );
        command
            .stdout(Stdio::from(log.try_clone().expect("log file")))
            .stderr(Stdio::from(log));
        command.env(
            format!("HAVEN__{}__LISTEN", upper(process.service)),
            address.to_string(),
        );
        process.child = Some(command.spawn().expect("spawn a service process"));
        process.address = address;
        process.frozen = false;
    }

    /// Waits until process `index` is ready (gRPC health SERVING, or the gateway's
    /// `/healthz`), then puts it behind its service's address.
    pub async fn wait_ready(&mut self, index: usize) {
        let process = &self.processes[index];
        let target = match process.service {
            ServiceName::Gateway => format!("http://{}/healthz", process.address),
            _ => format!("grpc://{}", process.address),
        };
        let deadline = tokio::time::Instant::now() + READY_WITHIN;
        loop {
            match haven_cli::healthcheck::check(&target).await {
                Ok(()) => break,
                Err(error) => {
                    if tokio::time::Instant::now() > deadline {
                        panic!(
                            "{} never became ready: {error:#}\n{}",
                            process.name(),
                            self.log_tail(index)
                        );
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
        if let Some(balancer) = self.balancer(process.service) {
            balancer.set(process.replica, Some(process.address));
        }
    }

    /// SIGKILL: the process dies at once, mid-transaction or mid-answer.
    pub fn kill(&mut self, index: usize) {
        let process = &mut self.processes[index];
        if let Some(balancer) = self
            .balancers
            .iter()
            .find(|(service, _)| *service == process.service)
        {
            balancer.1.set(process.replica, None);
        }
        if let Some(mut child) = process.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        process.frozen = false;
    }

    /// SIGSTOP: the process keeps its connections, locks and transactions but does
    /// nothing. New connections go to the other replicas.
    pub fn freeze(&mut self, index: usize) {
        let process = &mut self.processes[index];
        if let Some(pid) = process.pid() {
            signal("STOP", pid);
            process.frozen = true;
        }
        if let Some((_, balancer)) = self
            .balancers
            .iter()
            .find(|(service, _)| *service == process.service)
        {
            balancer.set(process.replica, None);
        }
    }

    /// SIGCONT after [`Cluster::freeze`]; it is back behind its service at once.
    pub fn thaw(&mut self, index: usize) {
        let process = &mut self.processes[index];
        if let Some(pid) = process.pid() {
            signal("CONT", pid);
        }
        process.frozen = false;
        if let Some((_, balancer)) = self
            .balancers
            .iter()
            .find(|(service, _)| *service == process.service)
        {
            balancer.set(process.replica, Some(process.address));
        }
    }

    /// Starts a killed process again and waits until it is ready.
    pub async fn restart(&mut self, index: usize) {
        if self.processes[index].child.is_some() {
            self.kill(index);
        }
        self.spawn(index);
        self.wait_ready(index).await;
    }

    /// Whether every process still runs (none exited by itself); names those that
    /// did not, with the end of their logs.
    pub fn exited(&mut self) -> Vec<String> {
        let mut exited = Vec::new();
        for index in 0..self.processes.len() {
            let status = self.processes[index]
                .child
                .as_mut()
                .and_then(|child| child.try_wait().ok().flatten());
            if let Some(status) = status {
                exited.push(format!(
                    "{} exited with {status}\n{}",
                    self.processes[index].name(),
                    self.log_tail(index)
                ));
            }
        }
        exited
    }

    /// Per running process: its name, peak resident memory (MiB) and CPU time used
    /// (seconds), read from `/proc` (Linux), for sizing requests and limits. A
    /// restarted process counts from its restart.
    pub fn usage(&self) -> Vec<(String, u64, f64)> {
        // Clock ticks per second: 100 on every Linux this runs on.
        const TICKS: f64 = 100.0;
        self.processes
            .iter()
            .filter_map(|process| {
                let pid = process.pid()?;
                let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
                let peak_kib: u64 = status
                    .lines()
                    .find_map(|line| line.strip_prefix("VmHWM:"))?
                    .trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse()
                    .ok()?;
                let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
                // Fields after the command name (which may hold spaces): utime and
                // stime are the 12th and 13th.
                let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
                let ticks: u64 =
                    fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
                Some((process.name(), peak_kib / 1024, ticks as f64 / TICKS))
            })
            .collect()
    }

    /// The last lines a process logged.
    pub fn log_tail(&self, index: usize) -> String {
        let text = std::fs::read_to_string(&self.processes[index].log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for process in &mut self.processes {
            if let Some(mut child) = process.child.take() {
                if process.frozen {
                    signal("CONT", child.id());
                }
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

fn signal(name: &str, pid: u32) {
    let status = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{name} {pid} failed");
}

/// A free port, never one of the ports Haven's services listen on by default (the
/// compose test binds those).
fn free_port() -> u16 {
    loop {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("local address").port();
        if !(50051..=50054).contains(&port) && port != 8080 && port != 9090 {
            return port;
        }
    }
}
