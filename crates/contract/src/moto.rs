//! The moto AWS emulator for the tests that need DynamoDB and SQS: the adapters' contract and
//! adapter tests, the Lambda end-to-end test, and the system tests of `herald dev` on AWS.
//!
//! One `moto_server` per test binary, started on first use on 127.0.0.1 at a free port. It runs
//! under a tiny `sh` watchdog that holds the read end of a pipe whose write end only this process
//! has: when the test process exits (however it exits) the pipe closes and the watchdog kills
//! moto. `MotoServer`'s `Drop` does the same for an instance that is dropped earlier.
//!
//! Tests run in parallel on the one instance; each uses its own table and queue names. Without
//! moto (`$HERALD_MOTO_SERVER`, else `<workspace>/.venv/bin/moto_server`) a test fails, saying how
//! to install it; it never passes silently.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Runs moto, and kills it when the pipe on its stdin closes (this process exited or dropped
/// the `MotoServer`). fd 3 keeps the pipe: a background job's stdin is /dev/null.
const WATCHDOG: &str = r#"exec 3<&0
"$0" -H 127.0.0.1 -p "$1" >"$2" 2>&1 &
pid=$!
{ read -r _ <&3; kill "$pid" 2>/dev/null; } &
wait "$pid""#;

const STARTUP_TIMEOUT: Duration = Duration::from_secs(90);

pub struct MotoServer {
    child: Child,
    endpoint: String,
    log: PathBuf,
}

/// The workspace root (this crate lives in `crates/contract`).
fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.."))
}

/// `$HERALD_MOTO_SERVER`, else `<workspace>/.venv/bin/moto_server`.
fn find_moto() -> Result<PathBuf, String> {
    let default = workspace_root().join(".venv/bin/moto_server");
    let (path, origin) = match std::env::var_os("HERALD_MOTO_SERVER") {
        Some(p) if !p.is_empty() => (PathBuf::from(p), "HERALD_MOTO_SERVER"),
        _ => (default, "the default location"),
    };
    if path.is_file() {
        Ok(path)
    } else {
        Err(format!(
            "these tests need the moto emulator, and `moto_server` is not at {} \
             ({origin}). Run `scripts/test.sh`, which installs it into <workspace>/.venv, or set \
             HERALD_MOTO_SERVER to a moto_server executable.",
            path.display()
        ))
    }
}

fn free_port() -> Result<u16, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    let port = listener.local_addr().map_err(|e| e.to_string())?.port();
    Ok(port)
}

/// Whether an HTTP server answers at `addr`.
fn answers(addr: SocketAddr) -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_secs(1)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let request = "GET /moto-api/ HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.")
}

impl MotoServer {
    pub fn start() -> Result<Self, String> {
        let moto = find_moto()?;
        let mut last_error = String::new();
        // A port taken between the probe and moto's bind makes moto exit: try another.
        for _ in 0..3 {
            match Self::start_on(&moto, free_port()?) {
                Ok(server) => return Ok(server),
                Err(e) => last_error = e,
            }
        }
        Err(last_error)
    }

    fn start_on(moto: &PathBuf, port: u16) -> Result<Self, String> {
        // One log per test binary, overwritten by the next run: nothing piles up.
        let binary = std::env::current_exe()
            .ok()
            .and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
            .unwrap_or_else(|| "tests".into());
        let dir = workspace_root().join("target/tmp");
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let log = dir.join(format!("moto-{binary}.log"));
        let child = Command::new("sh")
            .arg("-c")
            .arg(WATCHDOG)
            .arg(moto)
            .arg(port.to_string())
            .arg(&log)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", moto.display()))?;
        let mut server = Self {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
            log,
        };
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let start = Instant::now();
        loop {
            if answers(addr) {
                return Ok(server);
            }
            if let Ok(Some(status)) = server.child.try_wait() {
                return Err(format!(
                    "moto_server exited ({status}) before answering:\n{}",
                    server.log_text()
                ));
            }
            if start.elapsed() > STARTUP_TIMEOUT {
                return Err(format!(
                    "moto_server did not answer on {addr} within {STARTUP_TIMEOUT:?}:\n{}",
                    server.log_text()
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        // Closing the pipe makes the watchdog kill moto; then the shell's `wait` returns.
        drop(self.child.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

static MOTO: OnceLock<Result<MotoServer, String>> = OnceLock::new();

/// The moto instance of this test binary; fails the test if moto cannot be started.
pub fn moto() -> &'static MotoServer {
    match MOTO.get_or_init(MotoServer::start) {
        Ok(server) => server,
        Err(e) => panic!("{e}"),
    }
}

/// A name no other test of this run uses.
pub fn unique(prefix: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}
