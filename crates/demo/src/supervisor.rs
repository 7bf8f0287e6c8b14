//! The child processes: one per service, each this binary running `serve <service>`.

use std::{
    fs::File,
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use nix::{sys::signal::Signal, unistd::Pid};
use tokio::process::{Child, Command};

use crate::cli::ServiceName;

/// How long a service may take to answer its health check after start.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a service may take to stop after SIGTERM before it is killed (it needs at most 5).
const STOP_TIMEOUT: Duration = Duration::from_secs(7);

/// Why a service did not come up.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The binary could not be run.
    #[error("cannot start {service}: {source}")]
    Spawn {
        /// The service.
        service: &'static str,
        /// What went wrong.
        source: std::io::Error,
    },
    /// It exited during start-up; `log` holds the end of what it wrote.
    #[error("{service} exited during start-up ({status}):\n{log}")]
    Exited {
        /// The service.
        service: &'static str,
        /// Its exit status.
        status: std::process::ExitStatus,
        /// The end of its stderr.
        log: String,
    },
    /// It did not answer `/health` in time.
    #[error("{service} did not answer GET /health within {START_TIMEOUT:?}; see {log}")]
    Unhealthy {
        /// The service.
        service: &'static str,
        /// Its log file.
        log: String,
    },
}

/// A running service.
pub struct ServiceChild {
    /// Which service.
    pub service: ServiceName,
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    /// Its log file (stdout: JSON lines).
    pub log: PathBuf,
    child: Child,
}

impl ServiceChild {
    /// Starts `service` on `port` with `env`, writing its output into `log_dir`.
    pub fn spawn(
        service: ServiceName,
        port: u16,
        env: &[(String, String)],
        log_dir: &Path,
    ) -> Result<Self, StartError> {
        let name = service.name();
        let spawn_error = |source| StartError::Spawn {
            service: name,
            source,
        };
        let exe = std::env::current_exe().map_err(spawn_error)?;
        let log = log_dir.join(format!("{name}.log"));
        let stdout = File::create(&log).map_err(spawn_error)?;
        let stderr = File::create(log_dir.join(format!("{name}.stderr"))).map_err(spawn_error)?;
        let mut command = Command::new(exe);
        // Settings from the user's shell would make the four alike (one OTEL_SERVICE_NAME) or
        // collide (one ADMIN_PORT): the demo decides these itself.
        for (key, _) in std::env::vars() {
            let owned = matches!(key.as_str(), "SERVICE_NAME" | "ADMIN_PORT" | "TELEMETRY");
            if owned || key.starts_with("OTEL_") || key.ends_with("_SERVICE_URL") {
                command.env_remove(key);
            }
        }
        let child = command
            .args(["serve", name])
            .env("HOST", "127.0.0.1")
            .env("PORT", port.to_string())
            .envs(env.iter().map(|(k, v)| (k, v)))
            // The child stops when this pipe closes, i.e. when the demo is gone.
            .stdin(Stdio::piped())
            .stdout(stdout)
            .stderr(stderr)
            .kill_on_drop(true)
            .spawn()
            .map_err(spawn_error)?;
        Ok(Self {
            service,
            url: format!("http://127.0.0.1:{port}"),
            log,
            child,
        })
    }

    /// The process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Waits until `GET /health` answers 200.
    pub async fn wait_healthy(&mut self, http: &reqwest::Client) -> Result<(), StartError> {
        let name = self.service.name();
        let deadline = tokio::time::Instant::now() + START_TIMEOUT;
        let health = format!("{}/health", self.url);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                let stderr = self.log.with_extension("stderr");
                let log = std::fs::read_to_string(&stderr).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(5).collect();
                let log = tail.into_iter().rev().collect::<Vec<_>>().join("\n");
                return Err(StartError::Exited {
                    service: name,
                    status,
                    log,
                });
            }
            let answer = http
                .get(&health)
                .timeout(Duration::from_millis(500))
                .send()
                .await;
            if answer.is_ok_and(|r| r.status().is_success()) {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(StartError::Unhealthy {
                    service: name,
                    log: self.log.display().to_string(),
                });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGTERM, then SIGKILL if it has not stopped within [`STOP_TIMEOUT`]. Returns whether it
    /// stopped by itself with status 0.
    pub async fn stop(mut self) -> bool {
        if let Some(pid) = self.child.id() {
            let _ = nix::sys::signal::kill(Pid::from_raw(pid as i32), Signal::SIGTERM);
        }
        match tokio::time::timeout(STOP_TIMEOUT, self.child.wait()).await {
            Ok(Ok(status)) => status.success(),
            _ => {
                let _ = self.child.kill().await;
                false
            }
        }
    }
}
