//! One service binary running as a child process.

use std::{
    fs::File,
    net::{SocketAddr, TcpListener},
    path::PathBuf,
    process::{Child, Command, ExitStatus, Stdio},
    time::{Duration, Instant},
};

use nix::{sys::signal::Signal, unistd::Pid};

/// A port that was free a moment ago on 127.0.0.1, for a server the test starts.
///
/// Taken from 20000-32000, below Linux's ephemeral range (32768-60999): a port the kernel
/// picked for `bind(0)` can be handed straight to an outgoing connection once released, and a
/// service would then find its port busy. No port is handed out twice in one test process.
pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    for _ in 0..1000 {
        let port = fastrand::u16(20_000..32_000);
        if !given.contains(&port) && TcpListener::bind(("127.0.0.1", port)).is_ok() {
            given.push(port);
            return port;
        }
    }
    panic!("no free port on 127.0.0.1 in 20000-32000");
}

/// A running service binary. Killed when dropped.
pub struct ServiceProcess {
    /// The binary's name.
    pub name: String,
    /// Where it listens.
    pub addr: SocketAddr,
    child: Child,
    /// Its stdout (JSON logs) and stderr, in files so a chatty process never blocks on a pipe.
    stdout_path: PathBuf,
    stderr_path: PathBuf,
}

impl ServiceProcess {
    /// Starts binary `name` with `env` (on top of this process's environment, minus any
    /// `OTEL_*` and service settings that would leak from the developer's shell).
    pub fn spawn(
        name: &str,
        port: u16,
        env: &[(String, String)],
        log_dir: &std::path::Path,
    ) -> Self {
        let mut command = Command::new(crate::binary_path(name));
        command
            .env("HOST", "127.0.0.1")
            .env("PORT", port.to_string())
            .envs(env.iter().map(|(k, v)| (k, v)));
        Self::spawn_command(
            name,
            command,
            SocketAddr::from(([127, 0, 0, 1], port)),
            log_dir,
        )
    }

    /// Starts `command` (any program, listening on `addr`) as process `name`, with its output
    /// in `log_dir`. Variables of the developer's shell that would change a service's
    /// behaviour are removed unless `command` sets them itself.
    pub fn spawn_command(
        name: &str,
        mut command: Command,
        addr: SocketAddr,
        log_dir: &std::path::Path,
    ) -> Self {
        let stdout_path = log_dir.join(format!("{name}.stdout"));
        let stderr_path = log_dir.join(format!("{name}.stderr"));
        let stdout = File::create(&stdout_path).expect("create stdout log");
        let stderr = File::create(&stderr_path).expect("create stderr log");
        let set: Vec<std::ffi::OsString> = command.get_envs().map(|(k, _)| k.to_owned()).collect();
        for (key, _) in std::env::vars() {
            let leaks = key.starts_with("OTEL_")
                || key.ends_with("_SERVICE_URL")
                || key.starts_with("TELEMETRY")
                || key == "RUST_LOG"
                || key == "TOKIO_WORKER_THREADS";
            if leaks && !set.iter().any(|k| *k == *key) {
                command.env_remove(key);
            }
        }
        command.stdin(Stdio::null()).stdout(stdout).stderr(stderr);
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Self {
            name: name.to_owned(),
            addr,
            child,
            stdout_path,
            stderr_path,
        }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Waits until `GET /health` answers 200; panics with the process's stderr if it exits or
    /// takes longer than `timeout`.
    pub async fn wait_healthy(&mut self, timeout: Duration) {
        self.wait_ready("/health", timeout).await;
    }

    /// Waits until `GET <path>` answers 2xx; panics with the process's stderr if it exits or
    /// takes longer than `timeout`.
    pub async fn wait_ready(&mut self, path: &str, timeout: Duration) {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + timeout;
        let health = format!("{}{path}", self.url());
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "{} exited with {status} before it was healthy:\n{}",
                    self.name,
                    self.stderr()
                );
            }
            let answer = client
                .get(&health)
                .timeout(Duration::from_millis(500))
                .send()
                .await;
            if answer.is_ok_and(|r| r.status().is_success()) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{} not healthy after {timeout:?}:\n{}",
                self.name,
                self.stderr()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Resident memory, in bytes (from /proc).
    pub fn rss_bytes(&self) -> Option<u64> {
        rss_bytes_of(self.child.id())
    }

    /// Sends `signal` to the process.
    pub fn signal(&self, signal: Signal) {
        let pid = Pid::from_raw(self.child.id() as i32);
        nix::sys::signal::kill(pid, signal).expect("send signal");
    }

    /// Waits up to `timeout` for the process to exit; `None` if it did not.
    pub async fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Everything the process wrote to stdout so far (its JSON log lines).
    pub fn stdout(&self) -> String {
        std::fs::read_to_string(&self.stdout_path).unwrap_or_default()
    }

    /// Everything the process wrote to stderr so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Runs binary `name` with `env` to completion (for start-up failures), with a timeout.
pub fn run_to_exit(name: &str, env: &[(&str, &str)], timeout: Duration) -> (Option<i32>, String) {
    run_program_to_exit(&crate::binary_path(name), &[], env, timeout)
}

/// [`run_to_exit`] for any program, with `args`: its exit status and stderr.
pub fn run_program_to_exit(
    program: &std::path::Path,
    args: &[&str],
    env: &[(&str, &str)],
    timeout: Duration,
) -> (Option<i32>, String) {
    let (code, _stdout, stderr) = run_program_for_output(program, args, env, timeout);
    (code, stderr)
}

/// [`run_program_to_exit`], with what the program wrote to stdout too: its exit status,
/// stdout and stderr. Both are read as they are written, so that a program that writes more
/// than a pipe holds is not stopped on it. Panics if the program runs past `timeout`.
pub fn run_program_for_output(
    program: &std::path::Path,
    args: &[&str],
    env: &[(&str, &str)],
    timeout: Duration,
) -> (Option<i32>, String, String) {
    let name = program.display();
    let mut child = Command::new(program)
        .args(args)
        .env_remove("RUST_LOG")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
    let stdout = read_in_background(child.stdout.take());
    let stderr = read_in_background(child.stderr.take());
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Ok(Some(status)) = child.try_wait() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{name} did not exit within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let text = |reader: std::thread::JoinHandle<String>| reader.join().unwrap_or_default();
    (status.code(), text(stdout), text(stderr))
}

/// All that `pipe` gives until it is closed, read on a thread of its own, as text.
fn read_in_background(
    pipe: Option<impl std::io::Read + Send + 'static>,
) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut text = Vec::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_end(&mut text);
        }
        String::from_utf8_lossy(&text).into_owned()
    })
}

/// Resident memory of process `pid` (this test's own: `std::process::id()`), in bytes, from
/// /proc.
pub fn rss_bytes_of(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}
