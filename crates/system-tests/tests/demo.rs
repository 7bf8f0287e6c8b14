//! The embedded default as a user runs it: the built `demo` binary in an empty directory, its
//! output piped, then Ctrl-C.

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use nix::{sys::signal::Signal, unistd::Pid};
use system_tests::{binary_path, free_port};

/// Every span of SPEC §2, as the waterfall labels it.
const SPEC_SPANS: [&str; system_tests::ORDER_SPANS] = [
    "[order-service] POST /orders",
    "[order-service] process_order",
    "[order-service] validate_order",
    "[order-service] check_inventory",
    "[order-service] GET",
    "[inventory-service] GET /stock/{item}",
    "[order-service] reserve_inventory",
    "[order-service] POST",
    "[inventory-service] POST /stock/{item}/reserve",
    "[inventory-service] reserve_stock",
    "[inventory-service] slow_lookup",
    "[order-service] charge_payment",
    "[order-service] POST",
    "[payment-service] POST /charges",
    "[order-service] confirm_inventory",
    "[order-service] POST",
    "[inventory-service] POST /stock/{item}/confirm",
    "[inventory-service] confirm_reservation",
    "[order-service] send_notification",
    "[order-service] POST",
    "[notification-service] POST /notify",
];

struct Demo {
    child: Child,
    output: Arc<Mutex<String>>,
    api: String,
    _dir: tempfile::TempDir,
}

impl Demo {
    fn start(extra: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let ports: Vec<String> = (0..7).map(|_| free_port().to_string()).collect();
        let flags = [
            "--order-port",
            "--inventory-port",
            "--payment-port",
            "--notification-port",
            "--otlp-grpc-port",
            "--otlp-http-port",
            "--api-port",
        ];
        let mut command = Command::new(binary_path("demo"));
        for (flag, port) in flags.iter().zip(&ports) {
            command.args([flag, port.as_str()]);
        }
        let mut child = command
            .args(extra)
            .current_dir(dir.path())
            .env_remove("RUST_LOG")
            .env("COLUMNS", "140")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("demo starts");
        let output = Arc::new(Mutex::new(String::new()));
        let sink = output.clone();
        let stdout = child.stdout.take().expect("piped stdout");
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let mut out = sink.lock().expect("lock");
                out.push_str(&line);
                out.push('\n');
            }
        });
        Self {
            child,
            output,
            api: format!("http://127.0.0.1:{}", ports[6]),
            _dir: dir,
        }
    }

    fn output(&self) -> String {
        self.output.lock().expect("lock").clone()
    }

    fn wait_for(&self, text: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let output = self.output();
            if output.contains(text) {
                return output;
            }
            assert!(
                Instant::now() < deadline,
                "no {text:?} after {timeout:?}:\n{output}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn pid(&self) -> i32 {
        self.child.id() as i32
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Processes whose parent is `parent`, from /proc.
fn children_of(parent: i32) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return vec![];
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            // pid (comm) state ppid …: comm may hold spaces, so read after the last ')'.
            stat.rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<i32>().ok())
                == Some(parent)
        })
        .collect()
}

/// The waterfalls in `output`: each starts at a `trace <id> ·` line and ends at a blank line.
fn waterfalls(output: &str) -> Vec<Vec<&str>> {
    let mut blocks = Vec::new();
    let mut current: Option<Vec<&str>> = None;
    for line in output.lines() {
        if line.starts_with("trace ") && line.contains(" · ") {
            current = Some(vec![line]);
        } else if let Some(block) = current.as_mut() {
            if line.trim().is_empty() {
                blocks.extend(current.take());
            } else {
                block.push(line);
            }
        }
    }
    blocks
}

#[test]
fn demo_draws_both_orders_then_stops_every_child_on_ctrl_c() {
    let mut demo = Demo::start(&[]);
    let output = demo.wait_for("Ctrl-C stops everything", Duration::from_secs(120));
    assert!(
        !output.contains('\u{1b}'),
        "colour codes in piped output:\n{output}"
    );
    for service in [
        "trace-store",
        "inventory-service",
        "payment-service",
        "notification-service",
        "order-service",
    ] {
        assert!(
            output
                .lines()
                .any(|l| l.starts_with('✓') && l.contains(service)),
            "{service} not shown healthy:\n{output}"
        );
    }

    let drawn = waterfalls(&output);
    assert_eq!(drawn.len(), 2, "{output}");
    for block in &drawn {
        assert!(
            block[0].contains("POST /orders · 201 · 21 spans"),
            "{}",
            block[0]
        );
        // Log lines are drawn beneath their spans, behind a "│".
        let spans: Vec<&&str> = block[2..].iter().filter(|l| !l.contains('│')).collect();
        assert_eq!(spans.len(), SPEC_SPANS.len(), "{}", block.join("\n"));
        for (line, expected) in spans.iter().zip(SPEC_SPANS) {
            assert!(
                line.contains(expected),
                "{line:?} is not {expected:?}\n{}",
                block.join("\n")
            );
        }
        assert!(
            !block.iter().any(|l| l.contains("ERROR")),
            "{}",
            block.join("\n")
        );
    }
    let slow = drawn[1]
        .iter()
        .find(|l| l.contains("slow_lookup"))
        .expect("slow_lookup line");
    let share: u32 = slow
        .split("← ")
        .nth(1)
        .and_then(|rest| rest.split('%').next()?.parse().ok())
        .unwrap_or_else(|| panic!("slow_lookup not marked dominant: {slow}"));
    assert!(share >= 70, "{slow}");
    // The slow order's inventory log line sits inside reserve_stock: the line after that span
    // (its children come after its own log lines).
    let reserve_stock = drawn[1]
        .iter()
        .position(|l| l.contains("reserve_stock"))
        .expect("reserve_stock line");
    let reserved_line = &drawn[1][reserve_stock + 1];
    assert!(
        reserved_line.contains("│ INFO stock reserved") && reserved_line.contains("reserved=8"),
        "{}",
        drawn[1].join("\n")
    );

    // `demo trace` draws the same trace from the demo's Tempo API.
    let slow_id = drawn[1][0]
        .split_whitespace()
        .nth(1)
        .expect("trace id")
        .to_owned();
    let redrawn = Command::new(binary_path("demo"))
        .args(["trace", &slow_id, "--api", &demo.api])
        .output()
        .expect("demo trace runs");
    assert!(redrawn.status.success(), "{redrawn:?}");
    let redrawn = String::from_utf8_lossy(&redrawn.stdout);
    assert!(
        redrawn.contains(&slow_id)
            && redrawn.contains("slow_lookup")
            && redrawn.contains("% of the request")
            && redrawn.contains("│ INFO stock reserved"),
        "{redrawn}"
    );
    let unknown = Command::new(binary_path("demo"))
        .args(["trace", &"0".repeat(31), "--api", &demo.api])
        .output()
        .expect("demo trace runs");
    assert_eq!(unknown.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("not found"));
    let malformed = Command::new(binary_path("demo"))
        .args(["trace", "not-hex"])
        .output()
        .expect("runs");
    assert_eq!(malformed.status.code(), Some(2));

    // A later order shows up as a one-line summary.
    let order_url = output
        .lines()
        .find_map(|l| l.strip_prefix("Serving. Send orders to "))
        .and_then(|l| l.split(';').next())
        .expect("order URL")
        .to_owned();
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let status = runtime.block_on(async {
        reqwest::Client::new()
            .post(&order_url)
            .json(&serde_json::json!({"item": "pen", "quantity": 1, "price": 1.0}))
            .send()
            .await
            .map(|r| r.status().as_u16())
    });
    assert_eq!(status.ok(), Some(201));
    let output = demo.wait_for("→ cargo run --release -- trace", Duration::from_secs(15));
    assert!(
        output
            .lines()
            .any(|l| l.contains("[order-service] POST /orders 201 · 21 spans")),
        "{output}"
    );

    let children = children_of(demo.pid());
    assert_eq!(children.len(), 4, "{children:?}");
    nix::sys::signal::kill(Pid::from_raw(demo.pid()), Signal::SIGINT).expect("SIGINT");
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = demo.child.try_wait().expect("wait") {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "demo still running 20 s after SIGINT"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status}\n{}", demo.output());
    for pid in children {
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists(),
            "child {pid} still there"
        );
    }
    let output = demo.output();
    assert_eq!(output.matches(" stopped\n").count(), 4, "{output}");
}

#[test]
fn a_busy_port_is_named_with_the_flag_that_moves_it() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port().to_string();
    for (flag, what) in [
        ("--api-port", "Tempo API"),
        ("--payment-port", "payment-service"),
    ] {
        let others: Vec<String> = (0..7).map(|_| free_port().to_string()).collect();
        let mut args = vec![
            "--order-port",
            &others[0],
            "--inventory-port",
            &others[1],
            "--payment-port",
            &others[2],
            "--notification-port",
            &others[3],
            "--otlp-grpc-port",
            &others[4],
            "--otlp-http-port",
            &others[5],
            "--api-port",
            &others[6],
        ];
        let at = args.iter().position(|a| *a == flag).expect("flag") + 1;
        args[at] = &port;
        let run = Command::new(binary_path("demo"))
            .args(&args)
            .output()
            .expect("demo runs");
        assert_eq!(run.status.code(), Some(1), "{run:?}");
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert!(
            stderr.contains(&format!("port {port}"))
                && stderr.contains(what)
                && stderr.contains(flag),
            "{stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}
