//! PostgreSQL storage against a real cluster: `FENLEI_TEST_DATABASE_URL` (scripts/test.sh starts
//! one with scripts/postgres.sh). Each test gets a fresh database. The tests are `#[ignore]`d, so
//! the default `cargo test` lists them as ignored rather than passed; run with
//! `--include-ignored` and no variable, they fail.

use super::PgStorage;
use crate::model::{DeviceAuth, Role, ScopeKind, User};
use crate::store::sqlite::SqliteStorage;
use crate::store::traits::*;
use fenlei_core::inspection::{EditContext, InspectionKind, InspectionStatus, NewInspection};
use fenlei_core::store::Store;
use std::sync::Arc;

/// The test cluster's URL. The tests that need it are `#[ignore]`d; run anyway without it, they
/// fail here rather than pass having checked nothing.
pub(crate) fn test_cluster() -> String {
    std::env::var("FENLEI_TEST_DATABASE_URL")
        .ok()
        .filter(|u| !u.trim().is_empty())
        .expect(
            "FENLEI_TEST_DATABASE_URL names no PostgreSQL cluster \
             (scripts/postgres.sh start DIR prints one)",
        )
}

/// A fresh database on the cluster; its URL.
fn fresh_database(cluster: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let name = format!(
        "fenlei_u{}_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos()
    );
    let mut c = postgres::Client::connect(cluster, postgres::NoTls).unwrap();
    c.batch_execute(&format!("CREATE DATABASE {name}")).unwrap();
    let base = cluster.split('?').next().unwrap();
    format!("{}/{name}", base.rsplit_once('/').unwrap().0)
}

fn open(url: &str, dir: &std::path::Path) -> PgStorage {
    let blobs = crate::blobs::open_blob_store(dir, None).unwrap();
    PgStorage::open(url, blobs).unwrap()
}

/// A PostgreSQL storage with the sample city and standards, and a device store to write
/// documents with.
struct World {
    _dir: tempfile::TempDir,
    url: String,
    pg: PgStorage,
    device: Store,
}

impl Drop for World {
    fn drop(&mut self) {
        // The cluster is a throwaway one, but it lives across runs: do not let databases pile up.
        let name = self.url.rsplit_once('/').unwrap().1;
        if let Ok(mut c) = postgres::Client::connect(&test_cluster(), postgres::NoTls) {
            let _ = c.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
        }
    }
}

fn world() -> World {
    let cluster = test_cluster();
    let url = fresh_database(&cluster);
    let dir = tempfile::tempdir().unwrap();
    let pg = open(&url, dir.path());
    crate::load_sample(&pg).unwrap();
    let device = Store::open(dir.path().join("device.sqlite")).unwrap();
    fenlei_core::sample::load_into(&device).unwrap();
    World {
        _dir: dir,
        url,
        pg,
        device,
    }
}

fn first_community() -> String {
    fenlei_core::community::parse_csv(fenlei_core::sample::CITY_CSV.as_bytes()).unwrap()[0]
        .id
        .clone()
}

/// A draft inspection made on the device; its id.
fn draft_inspection(store: &Store, by: &str) -> String {
    store
        .create_inspection(
            &NewInspection {
                community_id: first_community(),
                standard_id: "hohhot-residential".into(),
                standard_version: "2026.1".into(),
                kind: InspectionKind::DailyPatrol,
                co_inspectors: vec![],
            },
            by,
        )
        .unwrap()
}

/// An inspection made on the device with a few answers and submitted; its id.
fn submitted_inspection(store: &Store, by: &str) -> String {
    let id = draft_inspection(store, by);
    let standard = store.standard("hohhot-residential", "2026.1").unwrap();
    let mut rng = fenlei_core::sample::SampleRng::new(7);
    for a in fenlei_core::sample::simulated_answers(&standard, &mut rng) {
        store.record_answer(&id, &a, &EditContext::by(by)).unwrap();
    }
    store
        .set_status(&id, InspectionStatus::Submitted, &EditContext::by(by), None)
        .unwrap();
    id
}

fn admin(pg: &PgStorage) -> DeviceAuth {
    pg.add_user("root", "root", Role::Admin).unwrap();
    let user = pg.user("root").unwrap().unwrap();
    DeviceAuth {
        device_id: "00000000-0000-4000-8000-000000000001".into(),
        scope: pg.scope(&user).unwrap(),
        user,
    }
}

fn counter(url: &str) -> i64 {
    let mut c = postgres::Client::connect(url, postgres::NoTls).unwrap();
    c.query_one("SELECT seq FROM change_counter WHERE id = 1", &[])
        .unwrap()
        .get(0)
}

#[test]
#[ignore = "needs PostgreSQL: FENLEI_TEST_DATABASE_URL (scripts/test.sh starts one)"]
fn pg_reapplying_the_same_bytes_changes_nothing() {
    let w = world();
    let id = submitted_inspection(&w.device, "insp");
    let bytes = w.device.document_bytes(&id).unwrap();
    let first =
        w.pg.apply_documents(&[(id.clone(), bytes.clone())])
            .unwrap();
    assert!(first[0].error.is_none());
    assert_eq!(first[0].seq_before, None);
    let seq = first[0].seq_after.unwrap();
    let before = counter(&w.url);
    let again = w.pg.apply_documents(&[(id.clone(), bytes)]).unwrap();
    assert!(again[0].error.is_none());
    assert_eq!(again[0].seq_before, Some(seq));
    assert_eq!(again[0].seq_after, Some(seq));
    assert_eq!(
        counter(&w.url),
        before,
        "an unchanged document bumped the feed"
    );
    assert_eq!(
        w.pg.load_document(&id).unwrap().unwrap().read().unwrap(),
        w.device.inspection(&id).unwrap()
    );
}

#[test]
#[ignore = "needs PostgreSQL: FENLEI_TEST_DATABASE_URL (scripts/test.sh starts one)"]
fn pg_a_refused_document_leaves_the_rest_of_the_batch_applied() {
    let w = world();
    let good = submitted_inspection(&w.device, "insp");
    let bytes = w.device.document_bytes(&good).unwrap();
    let bad = "0193aaaa-0000-7000-8000-000000000000".to_string();
    let applied =
        w.pg.apply_documents(&[
            (bad.clone(), b"not automerge".to_vec()),
            (good.clone(), bytes),
        ])
        .unwrap();
    assert!(applied[0].error.is_some());
    assert_eq!(applied[0].seq_after, None);
    assert!(applied[1].error.is_none());
    assert!(w.pg.document_kind(&bad).unwrap().is_none());
    assert_eq!(
        w.pg.document_kind(&good).unwrap().as_deref(),
        Some("inspection")
    );
}

/// The projection rows are the device store's own computation: PostgreSQL and SQLite hold the
/// same rows for the same document.
#[test]
#[ignore = "needs PostgreSQL: FENLEI_TEST_DATABASE_URL (scripts/test.sh starts one)"]
fn pg_projection_matches_sqlite() {
    let w = world();
    let id = submitted_inspection(&w.device, "insp");
    let bytes = w.device.document_bytes(&id).unwrap();
    w.pg.apply_documents(&[(id.clone(), bytes.clone())])
        .unwrap();
    let lite_dir = tempfile::tempdir().unwrap();
    let lite = SqliteStorage::open(lite_dir.path()).unwrap();
    crate::load_sample(&lite).unwrap();
    lite.apply_documents(&[(id.clone(), bytes)]).unwrap();

    let sql_rows = |sql: &str| -> Vec<String> {
        let mut c = postgres::Client::connect(&w.url, postgres::NoTls).unwrap();
        c.query(sql, &[&id])
            .unwrap()
            .iter()
            .map(|r| r.get::<_, String>(0))
            .collect()
    };
    let lite_rows = |sql: &str| -> Vec<String> {
        let conn = lite.writer();
        let mut stmt = conn.prepare(&sql.replace("$1", "?1")).unwrap();
        stmt.query_map([&id], |r| r.get::<_, String>(0))
            .unwrap()
            .map(|r| r.unwrap())
            .collect()
    };
    for sql in [
        "SELECT status || '|' || coalesce(grade, '') || '|' || coalesce(round(total::numeric, 4)::text, '')
           || '|' || vetoed || '|' || conflict_count FROM inspections WHERE id = $1",
        "SELECT item_code || '|' || value_kind || '|' || value_json || '|' || coalesce(round(deduction::numeric, 4)::text, '')
           FROM item_answers WHERE inspection_id = $1 ORDER BY item_code",
        "SELECT section_code || '|' || round(subtotal::numeric, 4) FROM section_scores
           WHERE inspection_id = $1 ORDER BY section_code",
        "SELECT user_id FROM inspection_inspectors WHERE inspection_id = $1 ORDER BY user_id",
    ] {
        // SQLite has no numeric type: compare the values it prints through the same rounding.
        let lite_sql = sql
            .replace("::numeric", "")
            .replace("::text", "")
            .replace("round(", "printf('%.4f', ")
            .replace(", 4)", ")");
        let pg = sql_rows(sql);
        assert!(!pg.is_empty(), "{sql}");
        assert_eq!(pg, lite_rows(&lite_sql), "{sql}");
    }
}

/// The feed-ordering rule: a transaction holding the change counter (bumped, not yet committed)
/// keeps later writers behind it, and a reader's cursor never passes a position whose commit is
/// still to come.
#[test]
#[ignore = "needs PostgreSQL: FENLEI_TEST_DATABASE_URL (scripts/test.sh starts one)"]
fn pg_a_cursor_never_skips_a_late_commit() {
    let w = world();
    let auth = admin(&w.pg);
    let first = submitted_inspection(&w.device, "insp");
    w.pg.apply_documents(&[(first.clone(), w.device.document_bytes(&first).unwrap())])
        .unwrap();
    let (_, cursor, _) = w.pg.feed_after(&auth, 0, 100).unwrap();

    // A slow writer: bumped the counter, not committed.
    let mut slow = postgres::Client::connect(&w.url, postgres::NoTls).unwrap();
    let mut slow_tx = slow.transaction().unwrap();
    let slow_seq: i64 = slow_tx
        .query_one(
            "UPDATE change_counter SET seq = seq + 1 WHERE id = 1 RETURNING seq",
            &[],
        )
        .unwrap()
        .get(0);
    slow_tx
        .execute(
            "UPDATE change_feed SET seq = $1 WHERE doc_id = $2",
            &[&slow_seq, &first],
        )
        .unwrap();

    // A second instance writes another document meanwhile: it must wait for the slow one.
    let second = submitted_inspection(&w.device, "insp");
    let bytes = w.device.document_bytes(&second).unwrap();
    let other = Arc::new(open(&w.url, w._dir.path()));
    let writer = {
        let (other, second) = (other.clone(), second.clone());
        std::thread::spawn(move || other.apply_documents(&[(second, bytes)]).unwrap())
    };
    std::thread::sleep(std::time::Duration::from_millis(300));
    let (seen, next, _) = w.pg.feed_after(&auth, cursor, 100).unwrap();
    assert!(seen.is_empty(), "nothing new is committed yet: {seen:?}");
    assert_eq!(
        next, cursor,
        "the cursor moved past an uncommitted position"
    );
    assert!(
        !writer.is_finished(),
        "the second writer did not wait for the counter"
    );

    slow_tx.commit().unwrap();
    let applied = writer.join().unwrap();
    assert!(applied[0].seq_after.unwrap() > slow_seq);
    let (seen, _, _) = w.pg.feed_after(&auth, next, 100).unwrap();
    let ids: Vec<&str> = seen.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids, vec![first.as_str(), second.as_str()]);
}

/// Two instances merging edits of one document at the same moment: both edits are kept.
#[test]
#[ignore = "needs PostgreSQL: FENLEI_TEST_DATABASE_URL (scripts/test.sh starts one)"]
fn pg_two_instances_merge_concurrent_edits_of_one_document() {
    let w = world();
    let id = draft_inspection(&w.device, "insp");
    let base = w.device.document_bytes(&id).unwrap();
    w.pg.apply_documents(&[(id.clone(), base.clone())]).unwrap();
    // Two more devices, each answering another item of the same draft.
    let dir = tempfile::tempdir().unwrap();
    let standard = w.device.standard("hohhot-residential", "2026.1").unwrap();
    let mut rng = fenlei_core::sample::SampleRng::new(11);
    let answers = fenlei_core::sample::simulated_answers(&standard, &mut rng);
    let mut edits = Vec::new();
    for answer in &answers[..2] {
        let d = Store::open(dir.path().join(format!("{}.sqlite", answer.item_code))).unwrap();
        fenlei_core::sample::load_into(&d).unwrap();
        d.apply_document_bytes(&id, &base).unwrap();
        d.record_answer(&id, answer, &EditContext::by("insp"))
            .unwrap();
        edits.push(d.document_bytes(&id).unwrap());
    }
    let second = Arc::new(open(&w.url, w._dir.path()));
    let first = Arc::new(open(&w.url, w._dir.path()));
    let threads: Vec<_> = edits
        .into_iter()
        .zip([first.clone(), second])
        .map(|(bytes, s)| {
            let id = id.clone();
            std::thread::spawn(move || s.apply_documents(&[(id, bytes)]).unwrap())
        })
        .collect();
    for t in threads {
        assert!(t.join().unwrap()[0].error.is_none());
    }
    let merged = w.pg.load_document(&id).unwrap().unwrap();
    assert_eq!(merged.answers().len(), 2, "an edit was lost");
}

#[test]
#[ignore = "needs PostgreSQL: FENLEI_TEST_DATABASE_URL (scripts/test.sh starts one)"]
fn pg_reference_log_is_ordered_and_scoped() {
    let w = world();
    let user = |pg: &PgStorage, id: &str| -> User { pg.user(id).unwrap().unwrap() };
    w.pg.add_user("a", "A", Role::Inspector).unwrap();
    w.pg.add_user("b", "B", Role::Inspector).unwrap();
    let all = w.pg.reference_after(0, &user(&w.pg, "a"), 10_000).unwrap();
    assert!(!all.more);
    assert!(all.communities.len() > 10);
    assert_eq!(all.standards.len(), 2);
    assert!(all.assignments.is_none());
    let cursor = all.cursor;
    w.pg.add_scope("a", ScopeKind::Street, "somewhere").unwrap();
    let a =
        w.pg.reference_after(cursor, &user(&w.pg, "a"), 100)
            .unwrap();
    assert_eq!(
        a.assignments.unwrap().streets,
        vec!["somewhere".to_string()]
    );
    assert!(a.cursor > cursor);
    let b =
        w.pg.reference_after(cursor, &user(&w.pg, "b"), 100)
            .unwrap();
    assert!(b.assignments.is_none(), "another user's assignments leaked");
    // Paging: one entry at a time walks the whole log in order.
    let mut c = 0;
    let mut seen = 0;
    loop {
        let page = w.pg.reference_after(c, &user(&w.pg, "a"), 1).unwrap();
        assert!(page.cursor >= c);
        seen += page.communities.len() + page.standards.len();
        c = page.cursor;
        if !page.more {
            break;
        }
    }
    assert_eq!(seen, all.communities.len() + all.standards.len());
    // A standard version is immutable.
    let changed = fenlei_core::sample::STANDARD_TOML.replacen("name", "name ", 1);
    assert!(w.pg.publish_standard(&changed).is_err());
    assert!(
        w.pg.publish_standard(fenlei_core::sample::STANDARD_TOML)
            .is_ok()
    );
}

#[test]
#[ignore = "needs PostgreSQL: FENLEI_TEST_DATABASE_URL (scripts/test.sh starts one)"]
fn pg_review_opens_due_tasks_once_and_decisions_write_the_task() {
    let w = world();
    let auth = admin(&w.pg);
    let id = submitted_inspection(&w.device, "insp");
    w.pg.apply_documents(&[(id.clone(), w.device.document_bytes(&id).unwrap())])
        .unwrap();
    let opened = w.pg.open_due_rectifications(&id).unwrap();
    assert!(!opened.is_empty(), "the sample answers call for tasks");
    assert!(
        w.pg.open_due_rectifications(&id).unwrap().is_empty(),
        "tasks opened twice"
    );
    assert_eq!(
        w.pg.review_inspection(&auth, &id, true, None).unwrap(),
        InspectionStatus::Approved
    );
    assert!(w.pg.review_inspection(&auth, &id, true, None).is_err());
    let status =
        w.pg.load_document(&id)
            .unwrap()
            .unwrap()
            .read()
            .unwrap()
            .status;
    assert_eq!(status, InspectionStatus::Approved);
    let (feed, _, _) = w.pg.feed_with_tasks(&auth, 0, 1000).unwrap();
    for t in &opened {
        assert!(feed.iter().any(|e| &e.id == t));
        assert_eq!(
            w.pg.document_kind(t).unwrap().as_deref(),
            Some("rectification")
        );
        // Reopening needs a comment; with one, the task is reopened... only from submitted.
        assert!(w.pg.decide_task(&auth, t, false, None).is_err());
    }
}

/// A connection prepares a statement text once and reuses it (inside transactions too); a
/// statement a schema change made stale fails once, is dropped from the cache, and works again
/// prepared afresh; a rolled-back transaction leaves the cache usable.
#[test]
#[ignore = "needs PostgreSQL: FENLEI_TEST_DATABASE_URL (scripts/test.sh starts one)"]
fn pg_a_connection_prepares_each_statement_once() {
    let w = world();
    let mut c = w.pg.client().unwrap();
    let before = c.cached_statements();
    let count = "SELECT count(*) FROM communities WHERE district = $1";
    let first: i64 = c.query_one(count, &[&"新城区"]).unwrap().get(0);
    assert_eq!(c.cached_statements(), before + 1);
    let mut tx = c.transaction().unwrap();
    let again: i64 = tx.query_one(count, &[&"新城区"]).unwrap().get(0);
    tx.commit().unwrap();
    assert_eq!((c.cached_statements(), again), (before + 1, first));

    // A rolled-back transaction prepared a statement: it stays valid on the connection.
    let mut tx = c.transaction().unwrap();
    let name = "SELECT name FROM communities WHERE id = $1";
    tx.query_opt(name, &[&"none"]).unwrap();
    drop(tx);
    assert!(c.query_opt(name, &[&"none"]).unwrap().is_none());

    // The table a cached statement reads changes shape: PostgreSQL refuses the old plan once.
    c.batch_execute("CREATE TABLE probe (a INT); INSERT INTO probe VALUES (7)")
        .unwrap();
    let probe = "SELECT * FROM probe";
    assert_eq!(c.query_one(probe, &[]).unwrap().len(), 1);
    c.batch_execute("ALTER TABLE probe ADD COLUMN b INT")
        .unwrap();
    let cached = c.cached_statements();
    assert!(
        c.query_one(probe, &[]).is_err(),
        "the stale plan is refused"
    );
    assert_eq!(c.cached_statements(), cached - 1, "and dropped");
    assert_eq!(c.query_one(probe, &[]).unwrap().len(), 2);
}
