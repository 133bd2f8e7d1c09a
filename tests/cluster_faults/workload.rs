//! The fault harness's clients: writes (upserts with and without `wait`, deletes by id and by
//! filter, payload edits) and reads at every consistency level on a few keys, each recorded
//! with its outcome; the session checks of token reads; and the check that nothing
//! acknowledged was lost.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use reqwest::blocking::Client;
use serde_json::{json, Value};

use super::common::Rng;
use super::linearizable::{Action, Op};

pub const COLLECTION: &str = "faults";
/// Few keys, so that clients contend on each.
pub const KEYS: u64 = 16;
const TOKEN: &str = "x-vecdb-consistency-token";
const LEVELS: [&str; 4] = ["eventual", "monotonic", "read_your_writes", "strong"];

/// How a write ended.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Outcome {
    /// Acknowledged, at this LSN of its key's shard (unknown for deletes by filter, which
    /// touch every shard).
    Acked(Option<u64>),
    /// Refused: it changed nothing.
    Failed,
    /// No answer, or 503: it may or may not have been applied.
    Unknown,
}

#[derive(Clone, Debug)]
struct Write {
    key: u64,
    action: Action,
    outcome: Outcome,
}

/// What the clients and the test share.
pub struct Shared {
    urls: Vec<String>,
    pub stop: AtomicBool,
    paused: AtomicBool,
    in_flight: AtomicUsize,
    start: Instant,
    /// Writes and strong reads, for the linearizability check.
    pub history: Mutex<Vec<Op>>,
    pub violations: Mutex<Vec<String>>,
    writes: Mutex<Vec<Write>>,
}

impl Shared {
    pub fn new(urls: Vec<String>) -> Shared {
        Shared {
            urls,
            stop: AtomicBool::new(false),
            paused: AtomicBool::new(false),
            in_flight: AtomicUsize::new(0),
            start: Instant::now(),
            history: Mutex::default(),
            violations: Mutex::default(),
            writes: Mutex::default(),
        }
    }

    fn now(&self) -> u128 {
        self.start.elapsed().as_nanos()
    }

    /// Holds the clients (waiting for their requests in flight), or lets them go.
    pub fn pause(&self, paused: bool) {
        self.paused.store(paused, Ordering::SeqCst);
        while paused && self.in_flight.load(Ordering::SeqCst) > 0 {
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Acknowledged, failed and indeterminate writes so far.
    pub fn outcomes(&self) -> (usize, usize, usize) {
        let writes = self.writes.lock().unwrap();
        let count = |f: fn(&Outcome) -> bool| writes.iter().filter(|w| f(&w.outcome)).count();
        (
            count(|o| matches!(o, Outcome::Acked(_))),
            count(|o| *o == Outcome::Failed),
            count(|o| *o == Outcome::Unknown),
        )
    }

    fn violation(&self, what: String) {
        self.violations.lock().unwrap().push(what);
    }

    /// Checks a settled state (id → version, value) against every write: the latest
    /// acknowledged write of each key is reflected, and only values that were written appear.
    pub fn nothing_lost(&self, state: &BTreeMap<u64, (u64, Option<u64>)>) -> Result<(), String> {
        let writes = self.writes.lock().unwrap();
        let sent: BTreeSet<u64> = writes
            .iter()
            .filter_map(|w| match w.action {
                Action::Write(Some(v)) | Action::SetIfPresent(v) => Some(v),
                _ => None,
            })
            .collect();
        for key in 0..KEYS {
            let mine: Vec<&Write> = writes.iter().filter(|w| w.key == key).collect();
            let latest = mine
                .iter()
                .filter_map(|w| match w.outcome {
                    Outcome::Acked(Some(lsn)) => Some((lsn, *w)),
                    _ => None,
                })
                .max_by_key(|(lsn, _)| *lsn);
            let may_delete = mine
                .iter()
                .any(|w| w.action == Action::Write(None) && w.outcome != Outcome::Failed);
            match (state.get(&key), latest) {
                (Some((_, value)), _) if !value.is_some_and(|v| sent.contains(&v)) => {
                    return Err(format!("key {key} holds {value:?}, which no client wrote"));
                }
                (Some((version, _)), Some((lsn, w))) if *version < lsn => {
                    return Err(format!(
                        "key {key} is at version {version}, but {:?} was acknowledged at LSN {lsn}: lost",
                        w.action
                    ));
                }
                (Some((version, value)), Some((lsn, w))) if *version == lsn => {
                    if let Action::Write(Some(v)) | Action::SetIfPresent(v) = w.action {
                        if *value != Some(v) {
                            return Err(format!(
                                "key {key} at LSN {lsn} holds {value:?}, not the acknowledged {v}"
                            ));
                        }
                    }
                }
                (None, Some((lsn, w))) if w.action != Action::Write(None) && !may_delete => {
                    if let Action::Write(Some(_)) = w.action {
                        return Err(format!(
                            "key {key} is gone, but its upsert at LSN {lsn} was acknowledged and nothing deleted it"
                        ));
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// Every point with its version and value, read at `eventual` from `url` (which reads its own
/// replicas first).
pub fn list_all(client: &Client, url: &str) -> Result<BTreeMap<u64, (u64, Option<u64>)>, String> {
    let answer = client
        .post(format!(
            "{url}/collections/{COLLECTION}/points/query?consistency=eventual&timeout=5"
        ))
        .json(&json!({"limit": 10_000, "with_payload": true}))
        .send()
        .map_err(|e| e.to_string())?;
    let status = answer.status();
    let body: Value = answer.json().map_err(|e| e.to_string())?;
    if !status.is_success() {
        return Err(format!("{url}: {status} {body}"));
    }
    let points = body["result"]["points"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    Ok(points
        .iter()
        .filter(|p| p["id"].as_u64().is_some_and(|id| id < KEYS))
        .map(|p| {
            let id = p["id"].as_u64().unwrap();
            (
                id,
                (p["version"].as_u64().unwrap(), p["payload"]["v"].as_u64()),
            )
        })
        .collect())
}

/// What one client remembers of its session.
#[derive(Default)]
struct Session {
    token: String,
    /// The LSN of its last acknowledged write of each key, and whether it was a delete.
    wrote: BTreeMap<u64, (u64, bool)>,
    /// The highest version each key had in its token reads.
    seen: BTreeMap<u64, u64>,
}

/// One client: random operations on random keys through random nodes until told to stop.
pub fn client(c: usize, shared: &Shared, seed: u64) {
    let http = Client::builder()
        .timeout(Duration::from_secs(8))
        .build()
        .unwrap();
    let mut rng = Rng(seed ^ (c as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let mut session = Session::default();
    let mut seq = 0u64;
    while !shared.stop.load(Ordering::SeqCst) {
        shared.in_flight.fetch_add(1, Ordering::SeqCst);
        if shared.paused.load(Ordering::SeqCst) {
            shared.in_flight.fetch_sub(1, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(20));
            continue;
        }
        let url = &shared.urls[rng.below(shared.urls.len() as u64) as usize];
        let key = rng.below(KEYS);
        seq += 1;
        let value = (c as u64 + 1) * 1_000_000_000 + seq;
        match pick(&mut rng, key, value) {
            Step::Write(request, action) => {
                write(shared, &http, &mut session, url, request, key, action)
            }
            Step::Read(level) => read(shared, &http, &mut session, url, key, level),
        }
        shared.in_flight.fetch_sub(1, Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(2 + rng.below(8)));
    }
}

/// A request: method, path under the collection, body.
type Request = (&'static str, String, Value);

enum Step {
    Write(Request, Action),
    Read(&'static str),
}

/// The next operation: 35% upserts (half with `wait`), 10% deletes by id, 5% by filter, 10%
/// payload edits, 40% reads at a random level.
fn pick(rng: &mut Rng, key: u64, value: u64) -> Step {
    let (request, action) = match rng.below(100) {
        0..=34 => {
            let wait = rng.below(2) == 0;
            let point = json!({"id": key, "vector": [1.0, (key as f32) / 16.0], "payload": {"k": key, "v": value}});
            let path = format!("points?wait={wait}&timeout=3");
            (
                ("PUT", path, json!({"points": [point]})),
                Action::Write(Some(value)),
            )
        }
        35..=44 => {
            let path = "points/delete?wait=true&timeout=3".to_string();
            (
                ("POST", path, json!({"points": [key]})),
                Action::Write(None),
            )
        }
        45..=49 => {
            let body = json!({"filter": {"must": [{"key": "k", "match": {"value": key}}]}});
            let path = "points/delete?wait=true&timeout=3".to_string();
            (("POST", path, body), Action::Write(None))
        }
        50..=59 => {
            let body = json!({"payload": {"v": value}, "points": [key]});
            let path = "points/payload?wait=true&timeout=3".to_string();
            (("POST", path, body), Action::SetIfPresent(value))
        }
        _ => return Step::Read(LEVELS[rng.below(4) as usize]),
    };
    Step::Write(request, action)
}

/// Sends a request; the status, the body, and the response's token.
fn send(
    http: &Client,
    session: &Session,
    url: &str,
    (method, path, body): Request,
) -> Option<(u16, Value, Option<String>)> {
    let url = format!("{url}/collections/{COLLECTION}/{path}");
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut request = http.request(method, url).json(&body);
    if !session.token.is_empty() {
        request = request.header(TOKEN, &session.token);
    }
    let response = request.send().ok()?;
    let status = response.status().as_u16();
    let token = response
        .headers()
        .get(TOKEN)
        .and_then(|t| t.to_str().ok())
        .map(str::to_string);
    let body = response.json().unwrap_or(Value::Null);
    Some((status, body, token))
}

fn write(
    shared: &Shared,
    http: &Client,
    session: &mut Session,
    url: &str,
    request: Request,
    key: u64,
    action: Action,
) {
    let by_filter = request.2.get("filter").is_some();
    let call = shared.now();
    let answer = send(http, session, url, request);
    let ret = shared.now();
    let outcome = match &answer {
        Some((200, body, token)) => {
            if let Some(token) = token {
                session.token = token.clone();
            }
            let lsn = body["result"]["operation_id"]
                .as_u64()
                .filter(|_| !by_filter);
            if let Some(lsn) = lsn {
                session
                    .wrote
                    .insert(key, (lsn, action == Action::Write(None)));
            }
            Outcome::Acked(lsn)
        }
        Some((status, _, _)) if (400..500).contains(status) => Outcome::Failed,
        _ => Outcome::Unknown,
    };
    if outcome != Outcome::Failed {
        let ret = (outcome != Outcome::Unknown).then_some(ret);
        shared.history.lock().unwrap().push(Op {
            key,
            action,
            call,
            ret,
        });
    }
    shared.writes.lock().unwrap().push(Write {
        key,
        action,
        outcome,
    });
}

fn read(shared: &Shared, http: &Client, session: &mut Session, url: &str, key: u64, level: &str) {
    let body = json!({"filter": {"must": [{"has_id": [key]}]}, "limit": 1, "with_payload": true});
    let path = format!("points/query?consistency={level}&timeout=3");
    let call = shared.now();
    let Some((200, answer, token)) = send(http, session, url, ("POST", path, body)) else {
        return;
    };
    let ret = shared.now();
    let point = &answer["result"]["points"][0];
    let (version, value) = (point["version"].as_u64(), point["payload"]["v"].as_u64());
    if level == "strong" {
        let action = Action::Read(value);
        let ret = Some(ret);
        shared.history.lock().unwrap().push(Op {
            key,
            action,
            call,
            ret,
        });
    }
    if level == "monotonic" || level == "read_your_writes" {
        check_session(shared, session, key, version, level);
    }
    if let Some(token) = token {
        session.token = token;
    }
}

/// A token read never goes back in time, and sees this client's own acknowledged writes.
fn check_session(
    shared: &Shared,
    session: &mut Session,
    key: u64,
    version: Option<u64>,
    level: &str,
) {
    if let Some(version) = version {
        let seen = session.seen.entry(key).or_insert(0);
        if version < *seen {
            shared.violation(format!(
                "{level} read of key {key} went back from version {seen} to {version}"
            ));
        }
        *seen = (*seen).max(version);
    }
    if let Some(&(lsn, deleted)) = session.wrote.get(&key) {
        let stale = match version {
            Some(version) => version < lsn,
            // Gone: fine after its own delete, or someone else's (which it cannot tell).
            None => false,
        };
        if stale {
            let what = if deleted { "delete" } else { "write" };
            shared.violation(format!(
                "{level} read of key {key} saw version {version:?} after this client's {what} at LSN {lsn}"
            ));
        }
    }
}
