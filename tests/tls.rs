//! TLS: the server with a self-signed certificate made by the test answers HTTPS (checked with
//! curl against that certificate), refuses plain HTTP on the same port, and shuts down cleanly;
//! a missing key file stops start-up with a message naming it.

mod common;

use std::path::Path;
use std::process::Command;

use common::Server;

fn make_certificate(dir: &Path) {
    let made = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "1",
        ])
        .args([
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
        ])
        .arg("-keyout")
        .arg(dir.join("key.pem"))
        .arg("-out")
        .arg(dir.join("cert.pem"))
        .output()
        .expect("run openssl");
    assert!(made.status.success(), "{made:?}");
}

/// curl with the test's certificate as the only trusted one; returns (exit ok, stdout).
fn curl(cert: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "10", "--cacert"])
        .arg(cert)
        .args(args)
        .output()
        .expect("run curl");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn https_with_a_self_signed_certificate() {
    let certs = common::temp_dir();
    make_certificate(certs.path());
    let (cert, key) = (certs.path().join("cert.pem"), certs.path().join("key.pem"));
    let data = common::temp_dir();
    let s = Server::start_in(
        data.path(),
        &[
            ("VECDB__SERVICE__TLS_CERT_PATH", cert.to_str().unwrap()),
            ("VECDB__SERVICE__TLS_KEY_PATH", key.to_str().unwrap()),
        ],
    );
    let base = s.base.clone();
    assert!(base.starts_with("https://127.0.0.1:"), "{base}");

    let (ok, body) = curl(&cert, &[&format!("{base}/healthz")]);
    assert!(ok, "{body}");
    let json = ["-H", "content-type: application/json"];
    let (ok, body) = curl(
        &cert,
        &[
            &json[..],
            &[
                "-X",
                "PUT",
                &format!("{base}/collections/t"),
                "-d",
                r#"{"vectors": {"size": 2, "distance": "Dot"}}"#,
            ],
        ]
        .concat(),
    );
    assert!(ok && body.contains(r#""result":true"#), "{body}");
    let upsert = r#"{"points": [{"id": 7, "vector": [1.0, 0.0]}]}"#;
    let (ok, body) = curl(
        &cert,
        &[
            &json[..],
            &[
                "-X",
                "PUT",
                &format!("{base}/collections/t/points?wait=true"),
                "-d",
                upsert,
            ],
        ]
        .concat(),
    );
    assert!(ok && body.contains("completed"), "{body}");
    let (ok, body) = curl(
        &cert,
        &[
            &json[..],
            &[
                "-X",
                "POST",
                &format!("{base}/collections/t/points/query"),
                "-d",
                r#"{"query": [1.0, 0.0]}"#,
            ],
        ]
        .concat(),
    );
    assert!(ok && body.contains(r#""id":7"#), "{body}");

    // The gRPC port speaks HTTP/2 over the same certificate (ALPN h2): a health check, an
    // empty message framed for gRPC, answers with the service's title.
    let grpc = s.grpc.clone();
    assert!(grpc.starts_with("https://127.0.0.1:"), "{grpc}");
    let empty = certs.path().join("empty.grpc");
    std::fs::write(&empty, [0u8; 5]).unwrap();
    let health = Command::new("curl")
        .args(["-sS", "--max-time", "10", "--http2", "--cacert"])
        .arg(&cert)
        .args(["-H", "content-type: application/grpc", "-H", "te: trailers"])
        .arg("--data-binary")
        .arg(format!("@{}", empty.display()))
        .arg(format!("{grpc}/qdrant.Qdrant/HealthCheck"))
        .output()
        .expect("run curl");
    assert!(health.status.success(), "{health:?}");
    let reply = String::from_utf8_lossy(&health.stdout);
    assert!(reply.contains("vecdb - vector search engine"), "{reply:?}");

    // Plain HTTP on the TLS port gets no HTTP answer.
    let plain = base.replace("https://", "http://");
    let (ok, body) = curl(&cert, &[&format!("{plain}/healthz")]);
    assert!(!ok, "plain HTTP answered: {body}");
    // A client that does not trust the certificate is refused by its own TLS check.
    let untrusted = Command::new("curl")
        .args(["-sS", "--max-time", "10", &format!("{base}/healthz")])
        .output()
        .unwrap();
    assert!(!untrusted.status.success());

    assert!(s.terminate().success(), "clean shutdown");
}

#[test]
fn a_missing_key_file_stops_start_up_naming_it() {
    let certs = common::temp_dir();
    make_certificate(certs.path());
    let data = common::temp_dir();
    let (cert, key) = (
        certs.path().join("cert.pem"),
        certs.path().join("missing.pem"),
    );
    let stderr = common::start_failure(
        data.path(),
        &[
            ("VECDB__SERVICE__TLS_CERT_PATH", cert.to_str().unwrap()),
            ("VECDB__SERVICE__TLS_KEY_PATH", key.to_str().unwrap()),
        ],
    );
    assert!(stderr.contains("missing.pem"), "{stderr}");
}
