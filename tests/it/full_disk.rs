//! A full disk: the listener refuses events with 503/5 and fails `/readyz` while the disk that
//! holds its SQLite store is full, loses nothing it acknowledged, keeps the store sound, and
//! takes events again by itself once space returns. The disk is a small tmpfs the test mounts
//! (as root, as CI runs); without the right to mount, the test says it was skipped, and fails
//! under `CI`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};

use crate::helpers::*;

/// A tmpfs of `size`, unmounted when dropped.
struct Tmpfs {
    path: PathBuf,
    _dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("disk");
        std::fs::create_dir(&path).unwrap();
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&path)
            .output();
        match mounted {
            Ok(output) if output.status.success() => Some(Tmpfs { path, _dir: dir }),
            outcome => {
                let why = match outcome {
                    Ok(output) => String::from_utf8_lossy(&output.stderr).trim().to_owned(),
                    Err(error) => error.to_string(),
                };
                assert!(
                    std::env::var_os("CI").is_none(),
                    "CI must be able to mount a tmpfs (it runs as root): {why}"
                );
                eprintln!("skipped: cannot mount a tmpfs ({why}); run as root to test a full disk");
                None
            }
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

fn free_bytes(path: &Path) -> u64 {
    let stats = rustix::fs::statvfs(path).unwrap();
    stats.f_bavail * stats.f_frsize
}

/// An event of its own order with about 4 KB of payload.
fn event(index: usize) -> Value {
    let mut event = onap_lifecycle(&format!("SO-full-{index}"), 1).remove(0);
    event["sellerNote"] = json!("n".repeat(4096));
    event
}

#[tokio::test]
async fn a_full_disk_refuses_with_503_loses_nothing_and_recovers_without_a_restart() {
    let Some(disk) = Tmpfs::mount("24m") else {
        return;
    };
    let data = disk.path.join("data");
    let app = start(TestConfig::new(&data).build()).await;
    for index in 0..20 {
        assert_eq!(app.post(&event(index)).await.status().as_u16(), 201);
    }
    // Leave about 600 KB: room for a few more events.
    let filler = disk.path.join("filler");
    let fill = free_bytes(&disk.path).saturating_sub(600 * 1024);
    std::fs::write(&filler, vec![0_u8; usize::try_from(fill).unwrap()]).unwrap();

    let mut acknowledged: BTreeSet<String> = (0..20)
        .map(|index| event(index)["eventId"].as_str().unwrap().to_owned())
        .collect();
    let mut refused = None;
    for index in 20..2_000 {
        let event = event(index);
        let response = app.post(&event).await;
        match response.status().as_u16() {
            201 => {
                acknowledged.insert(event["eventId"].as_str().unwrap().to_owned());
            }
            503 => {
                refused = Some(response);
                break;
            }
            other => panic!("{other}: {}", response.text().await.unwrap()),
        }
    }
    let refused = refused.expect("the disk fills up");
    assert!(refused.headers().contains_key("retry-after"));
    let body = assert_error(refused, 503, 5).await;
    assert!(
        body["message"].as_str().unwrap().contains("disk is full"),
        "{body}"
    );

    // Not ready, and the metric says why.
    let ready = app.get(format!("{}/readyz", app.admin_base), None).await;
    assert_eq!(ready.status().as_u16(), 503);
    let metrics = app.metrics_text().await;
    assert!(
        metrics.contains("order_listener_store_disk_full 1"),
        "{metrics}"
    );
    // Still refused, still nothing lost.
    assert_eq!(app.post(&event(5_000)).await.status().as_u16(), 503);

    // Space returns: the listener is ready and takes events again, with no restart.
    std::fs::remove_file(&filler).unwrap();
    eventually("/readyz to pass again", async || {
        let ready = app.get(format!("{}/readyz", app.admin_base), None).await;
        (ready.status().as_u16() == 200).then_some(())
    })
    .await;
    let again = event(6_000);
    assert_eq!(app.post(&again).await.status().as_u16(), 201);
    acknowledged.insert(again["eventId"].as_str().unwrap().to_owned());
    let metrics = app.metrics_text().await;
    assert!(
        metrics.contains("order_listener_store_disk_full 0"),
        "{metrics}"
    );
    app.stop().await;

    // The store is sound and holds every acknowledged event.
    let connection = rusqlite::Connection::open(data.join("events.sqlite3")).unwrap();
    let verdict: String = connection
        .query_row("PRAGMA integrity_check", [], |row| row.get(0))
        .unwrap();
    assert_eq!(verdict, "ok");
    let stored: BTreeSet<String> = connection
        .prepare("SELECT event_id FROM events")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let lost: Vec<&String> = acknowledged.difference(&stored).collect();
    assert!(lost.is_empty(), "acknowledged and lost: {lost:?}");
    assert!(acknowledged.len() > 20);
}
