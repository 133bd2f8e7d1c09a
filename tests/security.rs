//! Access control: API keys (full and read-only, header and bearer forms) and CORS.

mod common;

use common::Server;
use serde_json::{json, Value};

const FULL: &str = "full-7f3a9c";
const READ: &str = "read-41be02";

/// Sends a request with optional auth header; returns (status, JSON body).
fn send(
    s: &Server,
    method: &str,
    path: &str,
    auth: Option<(&str, &str)>,
    body: Option<Value>,
) -> (u16, Value) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut req = s.client.request(method, format!("{}{}", s.base, path));
    if let Some((name, value)) = auth {
        req = req.header(name, value);
    }
    if let Some(body) = body {
        req = req.json(&body);
    }
    let resp = req.send().expect("send");
    let status = resp.status().as_u16();
    let text = resp.text().unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn keyed_server() -> (Server, tempfile::TempDir) {
    let dir = common::temp_dir();
    let s = Server::start_in(
        dir.path(),
        &[
            ("VECDB__SERVICE__API_KEY", FULL),
            ("VECDB__SERVICE__READ_ONLY_API_KEY", READ),
        ],
    );
    (s, dir)
}

#[test]
fn api_keys_guard_every_endpoint_but_the_probes() {
    let (s, _dir) = keyed_server();
    for probe in ["/healthz", "/livez", "/readyz"] {
        assert_eq!(
            send(&s, "GET", probe, None, None).0,
            200,
            "{probe} stays open"
        );
    }
    let full = Some(("api-key", FULL));
    let create = json!({"vectors": {"size": 2, "distance": "Dot"}});
    let (status, body) = send(&s, "PUT", "/collections/k", full, Some(create.clone()));
    assert_eq!(status, 200, "{body}");
    let point = json!({"points": [{"id": 1, "vector": [1.0, 0.5], "payload": {"a": 1}}]});
    let (status, body) = send(
        &s,
        "PUT",
        "/collections/k/points?wait=true",
        Some(("authorization", &format!("Bearer {FULL}"))),
        Some(point),
    );
    assert_eq!(status, 200, "bearer form: {body}");

    for (method, path, body) in [
        ("GET", "/collections", None),
        ("GET", "/metrics", None),
        ("GET", "/telemetry", None),
        (
            "POST",
            "/collections/k/points/query",
            Some(json!({"query": [1.0, 0.0]})),
        ),
        ("PUT", "/collections/k2", Some(create.clone())),
    ] {
        for auth in [
            None,
            Some(("api-key", "wrong")),
            Some(("authorization", "Bearer wrong")),
            Some(("api-key", "")),
        ] {
            let (status, err) = send(&s, method, path, auth, body.clone());
            assert_eq!(status, 401, "{method} {path} with {auth:?}: {err}");
            let msg = common::error(&err);
            assert!(
                !msg.contains(FULL) && !msg.contains(READ) && !msg.contains("wrong"),
                "{msg}"
            );
        }
    }

    let read = Some(("authorization", &*format!("Bearer {READ}")));
    assert_eq!(send(&s, "GET", "/collections/k", read, None).0, 200);
    let (status, body) = send(
        &s,
        "POST",
        "/collections/k/points/query",
        read,
        Some(json!({"query": [1.0, 0.0]})),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["result"]["points"][0]["id"], 1);
    let read_header = Some(("api-key", READ));
    let (status, body) = send(
        &s,
        "POST",
        "/collections/k/points/count",
        read_header,
        Some(json!({})),
    );
    assert_eq!(
        (status, &body["result"]["count"]),
        (200, &json!(1)),
        "{body}"
    );
    for (method, path, body) in [
        (
            "PUT",
            "/collections/k/points?wait=true",
            json!({"points": [{"id": 2, "vector": [0.0, 1.0]}]}),
        ),
        (
            "POST",
            "/collections/k/points/delete?wait=true",
            json!({"points": [1]}),
        ),
        (
            "POST",
            "/collections/k/points/payload?wait=true",
            json!({"payload": {"b": 2}, "points": [1]}),
        ),
        ("PUT", "/collections/k3", create.clone()),
    ] {
        let (status, err) = send(&s, method, path, read_header, Some(body));
        assert_eq!(status, 403, "{method} {path}: {err}");
        assert!(common::error(&err).contains("reads only"), "{err}");
    }
    let (status, body) = send(&s, "DELETE", "/collections/k", read_header, None);
    assert_eq!(status, 403, "{body}");

    // Nothing the refused requests asked for happened.
    let (_, body) = send(
        &s,
        "POST",
        "/collections/k/points/scroll",
        full,
        Some(json!({"with_payload": true})),
    );
    assert_eq!(
        body["result"]["points"],
        json!([{"id": 1, "payload": {"a": 1}}]),
        "{body}"
    );
    let (_, body) = send(&s, "GET", "/collections", full, None);
    assert_eq!(
        body["result"]["collections"],
        json!([{"name": "k"}]),
        "{body}"
    );
}

#[test]
fn cors_is_off_by_default_and_allows_only_configured_origins() {
    let preflight = |s: &Server, origin: &str| {
        let resp = s
            .client
            .request(reqwest::Method::OPTIONS, format!("{}/collections", s.base))
            .header("origin", origin)
            .header("access-control-request-method", "GET")
            .send()
            .unwrap();
        resp.headers()
            .get("access-control-allow-origin")
            .map(|v| v.to_str().unwrap().to_string())
    };
    let (plain, _dir) = Server::start();
    assert_eq!(preflight(&plain, "https://app.example.com"), None);

    let dir = common::temp_dir();
    let s = Server::start_in(
        dir.path(),
        &[(
            "VECDB__SERVICE__CORS_ORIGINS",
            "[\"https://app.example.com\"]",
        )],
    );
    assert_eq!(
        preflight(&s, "https://app.example.com").as_deref(),
        Some("https://app.example.com")
    );
    assert_eq!(preflight(&s, "https://evil.example.net"), None);
}
