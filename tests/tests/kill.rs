//! Kill test (docs/reliability.md): a child process records inspections through the real store
//! (photos through the real media ingest) and acknowledges each write on stdout after it
//! returned; the parent SIGKILLs it at random moments, reopens the store, runs SQLite's
//! `PRAGMA integrity_check`, and checks that every acknowledged answer and photo is there and
//! that no record points at a missing or partial file.
//!
//! `FENLEI_KILLS` sets the number of kills (default 30, the CI run); `FENLEI_KILL_SEED` replays
//! a schedule. The long run: `scripts/reliability.sh kill` (1,000 kills).

use fenlei_core::media::MediaStore;
use fenlei_core::store::Store;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const RECORDER: &str = env!("CARGO_BIN_EXE_fenlei-e2e-recorder");

/// What the children acknowledged.
#[derive(Default)]
struct Acked {
    inspections: BTreeSet<String>,
    /// (inspection, item) → note
    answers: BTreeMap<(String, String), String>,
    /// (inspection, item, sha256)
    photos: BTreeSet<(String, String, String)>,
}

impl Acked {
    fn take(&mut self, line: &str) {
        let parts: Vec<&str> = line.split(' ').collect();
        match parts.as_slice() {
            ["I", id] => {
                self.inspections.insert(id.to_string());
            }
            ["A", id, item, note] => {
                self.answers
                    .insert((id.to_string(), item.to_string()), note.to_string());
            }
            ["P", id, item, sha] => {
                self.photos
                    .insert((id.to_string(), item.to_string(), sha.to_string()));
            }
            _ => panic!("unexpected line from the recorder: {line:?}"),
        }
    }
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*: enough for kill timing, and replayable from the printed seed.
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545F4914F6CDD1D)
    }
}

fn sha256_file(path: &Path) -> Option<String> {
    let bytes = std::fs::read(path).ok()?;
    Some(
        Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect(),
    )
}

fn integrity_check(db: &Path) {
    let conn = rusqlite::Connection::open(db).unwrap();
    let rows: Vec<String> = conn
        .prepare("PRAGMA integrity_check")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(rows, vec!["ok".to_string()], "integrity_check");
}

/// Checks everything acknowledged so far is in the store, and that every media record of
/// every inspection points at complete files. Returns the number of losses found.
fn verify(db: &Path, media_root: &Path, acked: &Acked) -> u64 {
    integrity_check(db);
    let store = Store::open(db).unwrap();
    let media = MediaStore::open(media_root).unwrap();
    let mut losses = 0;
    for id in &acked.inspections {
        if store.inspection(id).is_err() {
            eprintln!("LOST inspection {id}");
            losses += 1;
        }
    }
    let mut by_inspection: BTreeMap<&str, Vec<(&str, &str)>> = BTreeMap::new();
    for ((id, item), note) in &acked.answers {
        by_inspection.entry(id).or_default().push((item, note));
    }
    for (id, answers) in by_inspection {
        let Ok(inspection) = store.inspection(id) else {
            losses += answers.len() as u64;
            continue;
        };
        for (item, note) in answers {
            let found = inspection
                .answers
                .iter()
                .any(|a| a.answer.item_code == item && a.answer.note.as_deref() == Some(note));
            if !found {
                eprintln!("LOST answer {id} {item} {note}");
                losses += 1;
            }
        }
    }
    for (id, item, sha) in &acked.photos {
        let ok = store.inspection(id).is_ok_and(|i| {
            i.evidence
                .iter()
                .any(|e| &e.sha256 == sha && &e.item_code == item)
        });
        if !ok {
            eprintln!("LOST photo {id} {item} {sha}");
            losses += 1;
        }
    }
    // No record points at a missing or partial file: every evidence reference of every
    // inspection (acknowledged or not) has its media row, and the row's files hash right.
    for id in store.document_ids().unwrap() {
        let inspection = store.inspection(&id).unwrap();
        for e in &inspection.evidence {
            let record = store
                .media(&e.sha256)
                .unwrap()
                .unwrap_or_else(|| panic!("evidence {} of {id} has no media row", e.sha256));
            assert_eq!(
                sha256_file(&media.resolve(&record.original_path)).as_deref(),
                Some(record.sha256.as_str()),
                "original of {} missing or partial",
                record.sha256
            );
            for r in [&record.thumbnail, &record.upload].into_iter().flatten() {
                assert_eq!(
                    sha256_file(&media.resolve(&r.path)).as_deref(),
                    Some(r.sha256.as_str()),
                    "rendition {} missing or partial",
                    r.path
                );
            }
        }
    }
    losses
}

#[test]
fn sigkill_at_random_moments_loses_nothing_acknowledged() {
    let kills: u64 = std::env::var("FENLEI_KILLS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30);
    let seed: u64 = std::env::var("FENLEI_KILL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    eprintln!("kill test: {kills} kills, FENLEI_KILL_SEED={seed}");
    let mut rng = Rng(seed);
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("device.sqlite");
    let media_root = dir.path().join("media");
    let scratch = dir.path().join("scratch");
    std::fs::create_dir_all(&scratch).unwrap();
    {
        let store = Store::open(&db).unwrap();
        store
            .import_communities_csv(fenlei_core::sample::CITY_CSV.as_bytes())
            .unwrap();
        store
            .import_standard(fenlei_core::sample::STANDARD_TOML)
            .unwrap();
    }

    let started = Instant::now();
    let mut acked = Acked::default();
    let mut losses = 0;
    let mut kills_after_ack = 0;
    for k in 0..kills {
        let mut child = Command::new(RECORDER)
            .arg(&db)
            .arg(&media_root)
            .arg(&scratch)
            .arg(rng.next().to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn recorder");
        let stdout = child.stdout.take().unwrap();
        let first_ack = Arc::new(AtomicBool::new(false));
        let seen = first_ack.clone();
        let reader = std::thread::spawn(move || {
            let mut lines = Vec::new();
            let mut r = BufReader::new(stdout);
            let mut line = String::new();
            while r.read_line(&mut line).unwrap_or(0) > 0 {
                // A line cut by the kill has no newline: it was never acknowledged whole.
                if line.ends_with('\n') {
                    lines.push(line.trim_end().to_string());
                    seen.store(true, Ordering::SeqCst);
                }
                line.clear();
            }
            lines
        });
        // Half the kills at a random moment from the process's first instructions (open,
        // migration check, temp sweep, first writes); half at a random moment after its first
        // acknowledgement, so that a slow start on a loaded machine does not keep kills away
        // from the recording loop.
        if k % 2 == 1 {
            let deadline = Instant::now() + Duration::from_secs(30);
            while !first_ack.load(Ordering::SeqCst) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(1));
            }
            std::thread::sleep(Duration::from_millis(rng.next() % 300));
        } else {
            std::thread::sleep(Duration::from_millis(5 + rng.next() % 400));
        }
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
            panic!("recorder exited by itself ({status}) before kill {k}: {err}");
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let lines = reader.join().unwrap();
        if !lines.is_empty() {
            kills_after_ack += 1;
        }
        for l in &lines {
            acked.take(l);
        }
        // The store must be whole after every kill; the full check of every acknowledged write
        // runs every 25 kills and at the end (it reads every inspection).
        if (k + 1) % 25 == 0 || k + 1 == kills {
            losses += verify(&db, &media_root, &acked);
        } else {
            integrity_check(&db);
        }
    }
    eprintln!(
        "kill test: {kills} kills ({kills_after_ack} after at least one acknowledgement) in {:.1} s; \
         acknowledged {} inspections, {} answers, {} photos; {losses} lost",
        started.elapsed().as_secs_f64(),
        acked.inspections.len(),
        acked.answers.len(),
        acked.photos.len(),
    );
    assert!(!acked.answers.is_empty() && !acked.photos.is_empty());
    assert_eq!(losses, 0, "acknowledged writes lost (seed {seed})");
}
