//! Disk and I/O faults on real filesystems the test mounts (it needs root, as CI has): a small
//! tmpfs that fills up, an ext4 image that fails after an error (its emergency read-only state),
//! a read-only data directory at start-up, and a WAL with a torn tail.
//!
//! Expectations: writes get 507/503 with a message saying what is wrong and nothing applied;
//! searches keep working; the process does not crash; writes resume once space is freed; no
//! acknowledged write is lost.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{Rng, Server};
use serde_json::{json, Value};

/// A filesystem mounted for the test, unmounted when dropped.
struct Mount {
    path: PathBuf,
    _dir: tempfile::TempDir,
}

impl Mount {
    fn new(args: &[&str], source: &str) -> Mount {
        let dir = common::temp_dir();
        let path = dir.path().to_path_buf();
        let status = Command::new("mount")
            .args(args)
            .arg(source)
            .arg(&path)
            .status()
            .expect("run mount");
        assert!(
            status.success(),
            "mounting a test filesystem failed (these tests need root): mount {args:?} {source}"
        );
        Mount { path, _dir: dir }
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

fn points(rng: &mut Rng, from: u64, n: u64) -> Value {
    let pts: Vec<Value> = (from..from + n)
        .map(|id| json!({"id": id, "vector": rng.vector(128), "payload": {"id": id}}))
        .collect();
    json!({ "points": pts })
}

fn count(s: &Server) -> u64 {
    s.ok("POST", "/collections/f/points/count", Some(json!({})))["count"]
        .as_u64()
        .unwrap()
}

fn searches_work(s: &Server) {
    let r = s.ok(
        "POST",
        "/collections/f/points/query",
        Some(json!({"query": vec![0.5; 128], "limit": 3})),
    );
    assert_eq!(r["points"].as_array().unwrap().len(), 3, "{r}");
}

#[test]
fn a_full_disk_refuses_writes_keeps_searches_and_resumes_when_space_is_freed() {
    let fs = Mount::new(&["-t", "tmpfs", "-o", "size=64m"], "tmpfs");
    let ballast = fs.path.join("ballast");
    std::fs::write(&ballast, vec![1u8; 36 << 20]).unwrap();
    let data = fs.path.join("data");
    let env = [("VECDB__STORAGE__MIN_FREE_DISK_MB", "8")];
    let s = Server::start_in(&data, &env);
    s.create("f", json!({"vectors": {"size": 128, "distance": "Dot"}, "optimizers_config": {"indexing_threshold": 0}}));
    let mut rng = Rng(3);
    let mut acked = 0;
    let refusal = loop {
        let (status, body) = s.call(
            "PUT",
            "/collections/f/points?wait=true",
            Some(points(&mut rng, acked, 200)),
        );
        if status != 200 {
            break (status, body);
        }
        acked += 200;
        assert!(acked < 200_000, "the disk never filled up");
    };
    assert_eq!(refusal.0, 507, "{}", refusal.1);
    let msg = common::error(&refusal.1);
    assert!(
        msg.contains("min_free_disk_mb") && msg.contains("nothing was applied"),
        "{msg}"
    );
    assert!(acked > 0);
    searches_work(&s);
    assert_eq!(count(&s), acked, "exactly the acknowledged points");
    let (status, _) = s.call(
        "PUT",
        "/collections/f/points?wait=true",
        Some(points(&mut rng, acked, 1)),
    );
    assert_eq!(status, 507, "still full");

    std::fs::remove_file(&ballast).unwrap();
    s.ok(
        "PUT",
        "/collections/f/points?wait=true",
        Some(points(&mut rng, acked, 200)),
    );
    acked += 200;
    assert!(s.terminate().success(), "clean shutdown");
    let s = Server::start_in(&data, &env);
    assert_eq!(
        count(&s),
        acked,
        "nothing acknowledged lost across the restart"
    );
}

#[test]
fn a_filesystem_that_fails_writes_gets_503_and_the_process_survives() {
    let image = common::temp_dir();
    let img = image.path().join("ext4.img");
    std::fs::File::create(&img)
        .unwrap()
        .set_len(256 << 20)
        .unwrap();
    let made = Command::new("mkfs.ext4")
        .args(["-q", "-F"])
        .arg(&img)
        .status()
        .expect("mkfs.ext4");
    assert!(made.success());
    let fs = Mount::new(&["-o", "loop,errors=remount-ro"], img.to_str().unwrap());
    let data = fs.path.join("data");
    let env = [("VECDB__STORAGE__MIN_FREE_DISK_MB", "1")];
    let s = Server::start_in(&data, &env);
    s.create("f", json!({"vectors": {"size": 128, "distance": "Dot"}}));
    let mut rng = Rng(4);
    s.ok(
        "PUT",
        "/collections/f/points?wait=true",
        Some(points(&mut rng, 0, 100)),
    );

    // What ext4 does after a metadata error: it stops taking writes at once.
    let device = device_of(&fs.path);
    std::fs::write(format!("/sys/fs/ext4/{device}/trigger_fs_error"), "test\n")
        .expect("trigger an ext4 error");
    let (status, body) = s.call(
        "PUT",
        "/collections/f/points?wait=true",
        Some(points(&mut rng, 100, 10)),
    );
    assert_eq!(status, 503, "{body}");
    assert!(
        common::error(&body).contains("nothing was applied"),
        "{body}"
    );
    searches_work(&s);
    assert_eq!(count(&s), 100);
    let (status, _) = s.call(
        "PUT",
        "/collections/f/points?wait=true",
        Some(points(&mut rng, 100, 10)),
    );
    assert_eq!(status, 503, "refused again, not crashed");
    assert!(
        s.terminate().success(),
        "clean shutdown on a failed filesystem"
    );
    drop(fs);

    // Repaired and mounted again: every acknowledged point is there.
    let fsck = Command::new("e2fsck")
        .args(["-f", "-y"])
        .arg(&img)
        .output()
        .expect("e2fsck");
    assert!(fsck.status.code().is_some_and(|c| c <= 1), "{fsck:?}");
    let fs = Mount::new(&["-o", "loop"], img.to_str().unwrap());
    let s = Server::start_in(&fs.path.join("data"), &env);
    assert_eq!(count(&s), 100);
}

/// The block device behind a mount point, as /sys/fs/ext4 names it (`loop3`).
fn device_of(path: &Path) -> String {
    let out = Command::new("findmnt")
        .args(["-n", "-o", "SOURCE"])
        .arg(path)
        .output()
        .unwrap();
    let source = String::from_utf8(out.stdout).unwrap();
    source.trim().rsplit('/').next().unwrap().to_string()
}

#[test]
fn a_read_only_data_directory_stops_start_up_with_a_clear_message() {
    let fs = Mount::new(&["-t", "tmpfs", "-o", "size=16m"], "tmpfs");
    let data = fs.path.join("data");
    let s = Server::start_in(&data, &[]);
    s.create("f", json!({"vectors": {"size": 2, "distance": "Dot"}}));
    assert!(s.terminate().success());
    let ro = Command::new("mount")
        .args(["-o", "remount,ro"])
        .arg(&fs.path)
        .status()
        .unwrap();
    assert!(ro.success());
    let stderr = common::start_failure(&data, &[]);
    assert!(
        stderr.contains("opening the data directory") && stderr.contains("Read-only file system"),
        "{stderr}"
    );
}

#[test]
fn a_torn_wal_tail_is_dropped_and_everything_before_it_kept() {
    let dir = common::temp_dir();
    let s = Server::start_in(dir.path(), &[]);
    s.create("f", json!({"vectors": {"size": 128, "distance": "Dot"}}));
    let mut rng = Rng(5);
    for batch in 0..10 {
        s.ok(
            "PUT",
            "/collections/f/points?wait=true",
            Some(points(&mut rng, batch * 50, 50)),
        );
    }
    s.kill9();
    // Cut into the last record of the newest WAL file, as a crash in mid-write would.
    let wal = std::fs::read_dir(dir.path().join("rocksdb"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .max_by_key(|p| std::fs::metadata(p).unwrap().len())
        .expect("a WAL file");
    let len = std::fs::metadata(&wal).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&wal)
        .unwrap()
        .set_len(len - 100)
        .unwrap();
    let s = Server::start_in(dir.path(), &[]);
    // The torn batch is gone whole; the nine before it are there whole.
    assert_eq!(count(&s), 450);
    let (status, _) = s.call("GET", "/collections/f/points/449", None);
    assert_eq!(status, 200);
    let (status, _) = s.call("GET", "/collections/f/points/450", None);
    assert_eq!(status, 404);
}
