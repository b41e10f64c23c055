//! The real server as a child process, so that its memory is its own: `ladder
//! serve` on a loopback port, on the benchmark's database, trusting the test
//! issuer's key. By default the child is this very executable running the
//! `ladder` command line (`ladder::app::cli::main`, the whole of the `ladder`
//! binary's `main`), so that `cargo run --bin ladder-bench` needs no second
//! build; `--server-bin` runs another executable instead.

use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::{Failure, floor};

/// Set in the child's environment: this executable then runs `ladder`.
pub const RUN_SERVER: &str = "LADDER_BENCH_RUN_SERVER";
const START_TIMEOUT: Duration = Duration::from_secs(60);
const STOP_TIMEOUT: Duration = Duration::from_secs(20);

pub struct Server {
    child: Child,
    pub addr: SocketAddr,
    log: PathBuf,
}

/// A server process's resident memory, from `/proc/<pid>/status`.
#[derive(Debug, Clone, Copy)]
pub struct Memory {
    /// VmRSS: resident now.
    pub rss_mib: f64,
    /// VmHWM: the most it has been resident since it started.
    pub peak_mib: f64,
}

impl Server {
    /// Starts the real server and waits until its health check answers SERVING.
    pub async fn start(
        server_bin: Option<&Path>,
        database_url: &str,
        public_key: &Path,
        log: PathBuf,
    ) -> Result<Self, Failure> {
        let addr = free_loopback_port()?;
        let mut command = match server_bin {
            Some(bin) => Command::new(bin),
            None => {
                let mut command = Command::new(std::env::current_exe()?);
                command.env(RUN_SERVER, "1");
                command
            }
        };
        command
            .arg("serve")
            .arg("--listen")
            .arg(addr.to_string())
            .arg("--jwt-public-key")
            .arg(public_key)
            .arg("--jwt-any-audience")
            // The benchmark migrated the database as its owner.
            .arg("--no-migrate");
        Self::spawn(command, addr, database_url, log).await
    }

    /// Starts the stack-alone server ([`crate::floor`]) and waits until it answers.
    pub async fn start_stack_alone(database_url: &str, log: PathBuf) -> Result<Self, Failure> {
        let addr = free_loopback_port()?;
        let mut command = Command::new(std::env::current_exe()?);
        command.env(floor::RUN_FLOOR, "1").arg(addr.to_string());
        Self::spawn(command, addr, database_url, log).await
    }

    async fn spawn(
        mut command: Command,
        addr: SocketAddr,
        database_url: &str,
        log: PathBuf,
    ) -> Result<Self, Failure> {
        let log_file = std::fs::File::create(&log)?;
        command
            // In the environment, not the arguments: `ps` shows those, password and all.
            .env("DATABASE_URL", database_url)
            .stdin(Stdio::null())
            .stdout(log_file.try_clone()?)
            .stderr(log_file);
        // SAFETY: prctl only asks the kernel to end the child with SIGTERM if
        // the benchmark dies first; it touches no memory of the parent.
        unsafe {
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                Ok(())
            });
        }
        let child = command.spawn()?;
        let mut server = Self { child, addr, log };
        server.wait_until_serving().await?;
        Ok(server)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    async fn wait_until_serving(&mut self) -> Result<(), Failure> {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Err(self.failed(&format!("the server exited ({status})")));
            }
            if self.serving().await {
                return Ok(());
            }
            if started.elapsed() > START_TIMEOUT {
                return Err(self.failed("the server did not answer within a minute"));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn serving(&self) -> bool {
        let Ok(endpoint) = Channel::from_shared(format!("http://{}", self.addr)) else {
            return false;
        };
        let Ok(channel) = endpoint.connect().await else {
            return false;
        };
        let mut health = HealthClient::new(channel);
        health
            .check(HealthCheckRequest::default())
            .await
            .is_ok_and(|r| r.into_inner().status == ServingStatus::Serving as i32)
    }

    fn failed(&self, what: &str) -> Failure {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(20).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        format!(
            "{what}; its log ({}):\n{}",
            self.log.display(),
            tail.join("\n")
        )
        .into()
    }

    pub fn memory(&self) -> Result<Memory, Failure> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))?;
        let kib = |key: &str| -> Result<f64, Failure> {
            status
                .lines()
                .find_map(|line| line.strip_prefix(key))
                .and_then(|rest| {
                    rest.trim()
                        .trim_end_matches("kB")
                        .trim()
                        .parse::<f64>()
                        .ok()
                })
                .ok_or_else(|| format!("no {key} in /proc/{}/status", self.pid()).into())
        };
        Ok(Memory {
            rss_mib: kib("VmRSS:")? / 1024.0,
            peak_mib: kib("VmHWM:")? / 1024.0,
        })
    }

    /// SIGTERM (the server drains and stops), then waits for it.
    pub fn stop(mut self) {
        self.terminate();
    }

    fn terminate(&mut self) {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        // SAFETY: signals our own child by its pid; no memory is involved.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        let started = Instant::now();
        while started.elapsed() < STOP_TIMEOUT {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.terminate();
    }
}

/// A loopback port free right now (the kernel's choice), for the child to bind.
fn free_loopback_port() -> Result<SocketAddr, Failure> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?)
}
