//! Test harness: runs the real `vecdb` binary on port 0 with a temporary data directory and
//! talks to it over HTTP.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

pub mod cluster;

/// The ids of a list of points, or of the `points` of a result, in order.
pub fn ids(result: &Value) -> Vec<u64> {
    let points = result.get("points").unwrap_or(result);
    points
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_u64().unwrap())
        .collect()
}

/// The (id, score) pairs of a search result.
pub fn scored(result: &Value) -> Vec<(u64, f32)> {
    let points = result.get("points").unwrap_or(result);
    let points = points.as_array().unwrap().iter();
    points
        .map(|p| {
            (
                p["id"].as_u64().unwrap(),
                p["score"].as_f64().unwrap() as f32,
            )
        })
        .collect()
}

/// A running server process. Killed (SIGKILL) when dropped.
pub struct Server {
    pub child: Child,
    pub base: String,
    pub data_dir: PathBuf,
    pub client: reqwest::blocking::Client,
    /// `host:port` of the internal port, in cluster mode.
    pub p2p: Option<String>,
    /// `http://host:port` of the gRPC API.
    pub grpc: String,
}

/// A temporary data directory that outlives server restarts.
pub fn temp_dir() -> tempfile::TempDir {
    tempfile::tempdir().expect("temp dir")
}

impl Server {
    /// Starts a server on a fresh temporary directory (kept alive by the returned guard).
    pub fn start() -> (Server, tempfile::TempDir) {
        let dir = temp_dir();
        let server = Server::start_in(dir.path(), &[]);
        (server, dir)
    }

    /// Starts a server on `data_dir` with extra environment variables.
    pub fn start_in(data_dir: &Path, env: &[(&str, &str)]) -> Server {
        Server::start_on(data_dir, 0, env)
    }

    /// Starts a server on `data_dir` and API port `port` with extra environment variables.
    pub fn start_on(data_dir: &Path, port: u16, env: &[(&str, &str)]) -> Server {
        // VECDB_BIN runs another build (a long crash run on a copy, while this one is rebuilt).
        let bin = std::env::var("VECDB_BIN").unwrap_or(env!("CARGO_BIN_EXE_vecdb").into());
        let mut cmd = Command::new(bin);
        cmd.args([
            "--port",
            &port.to_string(),
            "--grpc-port",
            "0",
            "--host",
            "127.0.0.1",
            "--data-dir",
        ])
        .arg(data_dir)
        .env("RUST_LOG", "warn")
        // Test binaries run side by side on few cores, where a search can wait for a slot
        // longer than the production default before load is shed (the bounded waits are
        // tested in overload.rs and the sync unit tests).
        .env("VECDB__SERVICE__SEARCH_QUEUE_TIMEOUT_MS", "30000")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn vecdb");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let (mut p2p, mut grpc) = (None, String::new());
        let base = loop {
            let line = lines
                .next()
                .expect("vecdb exited before listening")
                .expect("read stdout");
            if let Some(url) = line.strip_prefix("vecdb p2p listening on http://") {
                p2p = Some(url.trim().to_string());
            }
            if let Some(url) = line.strip_prefix("vecdb grpc listening on ") {
                grpc = url.trim().to_string();
            }
            if let Some(url) = line.strip_prefix("vecdb listening on ") {
                break url.trim().to_string();
            }
        };
        // Keep draining stdout so the child never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        let client = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(120))
            .build()
            .expect("client");
        Server {
            child,
            base,
            data_dir: data_dir.to_path_buf(),
            client,
            p2p,
            grpc,
        }
    }

    /// Sends a request and returns (status, JSON body).
    pub fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let url = format!("{}{}", self.base, path);
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut req = self.client.request(method, &url);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().unwrap_or_else(|e| panic!("{url}: {e}"));
        let status = resp.status().as_u16();
        let text = resp.text().expect("body");
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, value)
    }

    /// Sends raw bytes with a JSON content type.
    pub fn raw(&self, method: &str, path: &str, body: Vec<u8>) -> (u16, Value) {
        let url = format!("{}{}", self.base, path);
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let resp = self
            .client
            .request(method, &url)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .expect("send");
        let status = resp.status().as_u16();
        let text = resp.text().expect("body");
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// Calls and asserts 200, returning `result`.
    pub fn ok(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let (status, value) = self.call(method, path, body);
        assert_eq!(status, 200, "{method} {path} -> {value}");
        assert_eq!(value["status"], "ok", "{value}");
        value["result"].clone()
    }

    /// Creates a collection with the given body.
    pub fn create(&self, name: &str, body: Value) {
        assert_eq!(
            self.ok("PUT", &format!("/collections/{name}"), Some(body)),
            json!(true)
        );
    }

    /// Upserts points (list form) and waits for them.
    pub fn upsert(&self, name: &str, points: Value) -> Value {
        self.ok(
            "PUT",
            &format!("/collections/{name}/points?wait=true"),
            Some(json!({"points": points})),
        )
    }

    /// Waits until the collection reports status green (all indexing done).
    pub fn wait_green(&self, name: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let info = self.ok("GET", &format!("/collections/{name}"), None);
            if info["status"] == "green" {
                return info;
            }
            assert!(
                Instant::now() < deadline,
                "collection {name} never became green: {info}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops with SIGTERM and returns the exit status.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "vecdb did not exit after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the process with SIGKILL, as a crash would.
    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The message of an error envelope (`{"status": {"error": ...}}`); panics naming the body if
/// it is not one.
pub fn error(body: &Value) -> &str {
    body["status"]["error"]
        .as_str()
        .unwrap_or_else(|| panic!("not an error envelope: {body}"))
}

/// Runs the binary on `data_dir` with `env`, expecting it to refuse to start; returns stderr.
pub fn start_failure(data_dir: &Path, env: &[(&str, &str)]) -> String {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vecdb"));
    cmd.args(["--port", "0", "--grpc-port", "0", "--data-dir"])
        .arg(data_dir)
        .env("RUST_BACKTRACE", "0");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run vecdb");
    assert!(!out.status.success(), "vecdb started: {out:?}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A small deterministic generator (splitmix64), so tests print and reuse their seed.
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [-1, 1).
    pub fn f32(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }

    pub fn vector(&mut self, dim: usize) -> Vec<f32> {
        (0..dim).map(|_| self.f32()).collect()
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

/// A seed from the environment (`VECDB_TEST_SEED`) or the clock, printed for reproduction.
pub fn seed() -> u64 {
    let seed = std::env::var("VECDB_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(7)
        });
    eprintln!("seed = {seed} (rerun with VECDB_TEST_SEED={seed})");
    seed
}

/// The file with extension `ext` beside each sealed segment file (`<id>.seg`) under
/// `data_dir`: path, bytes and modification time, by path. Panics if one is missing.
pub fn segment_companions(
    data_dir: &Path,
    ext: &str,
) -> Vec<(PathBuf, Vec<u8>, std::time::SystemTime)> {
    let mut files = Vec::new();
    for collection in std::fs::read_dir(data_dir.join("segments")).unwrap() {
        for entry in std::fs::read_dir(collection.unwrap().path()).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "seg") {
                let file = path.with_extension(ext);
                let modified = std::fs::metadata(&file).and_then(|m| m.modified());
                let modified = modified.unwrap_or_else(|e| panic!("{}: {e}", file.display()));
                files.push((file.clone(), std::fs::read(&file).unwrap(), modified));
            }
        }
    }
    files.sort();
    files
}
