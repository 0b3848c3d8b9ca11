//! A database migrated from every earlier schema version, with data in it, ends with exactly
//! the schema of a fresh database and keeps its data.

use fenlei_core::store::Store;
use fenlei_core::store::schema::{SCHEMA_VERSION, migrate_to_version};
use rusqlite::Connection;

/// Tables, columns (name, type, not null, default, pk), indexes and foreign keys, sorted.
fn schema_of(conn: &Connection) -> Vec<String> {
    let mut out = Vec::new();
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    for t in &tables {
        let mut cols = conn.prepare(&format!("PRAGMA table_info({t})")).unwrap();
        let mut columns: Vec<String> = cols
            .query_map([], |r| {
                Ok(format!(
                    "{t}.{}: {} notnull={} default={:?} pk={}",
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, Option<String>>(4)?,
                    r.get::<_, i64>(5)?
                ))
            })
            .unwrap()
            .map(|r| r.unwrap())
            .collect();
        columns.sort();
        out.extend(columns);
        let mut fks = conn
            .prepare(&format!("PRAGMA foreign_key_list({t})"))
            .unwrap();
        out.extend(
            fks.query_map([], |r| {
                Ok(format!(
                    "{t} fk {} -> {}.{} on delete {}",
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, String>(6)?
                ))
            })
            .unwrap()
            .map(|r| r.unwrap()),
        );
        let strict: i64 = conn
            .query_row(
                "SELECT strict FROM pragma_table_list WHERE name = ?1",
                [t],
                |r| r.get(0),
            )
            .unwrap();
        out.push(format!("{t} strict={strict}"));
    }
    let mut idx = conn
        .prepare("SELECT tbl_name, name, sql FROM sqlite_master WHERE type = 'index' ORDER BY name")
        .unwrap();
    out.extend(
        idx.query_map([], |r| {
            Ok(format!(
                "index {:?}",
                (
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, Option<String>>(2)?
                )
            ))
        })
        .unwrap()
        .map(|r| r.unwrap()),
    );
    out.sort();
    out
}

/// Rows a database of schema `version` can hold, written as that version's app would.
fn fill_at_version(conn: &Connection, version: usize) {
    conn.execute_batch(
        "INSERT INTO communities VALUES ('C1', '幸福小区', '新城区', '海拉尔东路街道', '幸福社区', '幸福路1号',
             40.85, 111.68, 150.0, '安居物业', 800);
         INSERT INTO standards VALUES ('std', '1', 'Std', 'source', 0);
         INSERT INTO documents VALUES ('I1', 'inspection', x'00', 0);
         INSERT INTO document_changes VALUES ('I1', 1, x'01');
         INSERT INTO inspections (id, community_id, standard_id, standard_version, kind, status, created_by,
             started_at, updated_at, total, grade)
             VALUES ('I1', 'C1', 'std', '1', 'daily_patrol', 'submitted', 'li.ming', 5, 6, 92.5, '优秀');
         INSERT INTO item_answers VALUES ('I1', 'A01', 'observed', '{}', NULL, 'li.ming', 5, 2.0, 0.0, 0);",
    )
    .unwrap();
    if version >= 2 {
        conn.execute_batch("INSERT INTO section_scores VALUES ('I1', 'A', 10.0, 8.0);")
            .unwrap();
    }
    if version >= 3 {
        conn.execute_batch(
            "INSERT INTO sync_documents VALUES ('I1', 2, 7, x'02');
             INSERT INTO sync_meta VALUES ('feed_cursor', '7');
             INSERT INTO evidence_refs VALUES ('I1', 'A01', 'ab', 'photo', 'li.ming', 5);",
        )
        .unwrap();
    }
}

#[test]
fn every_earlier_version_migrates_to_the_fresh_schema_and_keeps_its_data() {
    let dir = tempfile::tempdir().unwrap();
    let fresh_path = dir.path().join("fresh.sqlite");
    drop(Store::open(&fresh_path).unwrap());
    let fresh = schema_of(&Connection::open(&fresh_path).unwrap());
    assert!(fresh.iter().any(|l| l.starts_with("section_scores")));

    for version in 1..SCHEMA_VERSION as usize {
        let path = dir.path().join(format!("v{version}.sqlite"));
        {
            let mut conn = Connection::open(&path).unwrap();
            migrate_to_version(&mut conn, version).unwrap();
            let at: i64 = conn
                .query_row("PRAGMA user_version", [], |r| r.get(0))
                .unwrap();
            assert_eq!(at, version as i64);
            fill_at_version(&conn, version);
        }
        drop(Store::open(&path).unwrap());
        let conn = Connection::open(&path).unwrap();
        assert_eq!(
            schema_of(&conn),
            fresh,
            "schema after migrating from v{version}"
        );
        let user_version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(user_version, SCHEMA_VERSION);
        let (total, grade): (f64, String) = conn
            .query_row(
                "SELECT total, grade FROM inspections WHERE id = 'I1'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!((total, grade.as_str()), (92.5, "优秀"));
        let answers: i64 = conn
            .query_row("SELECT count(*) FROM item_answers", [], |r| r.get(0))
            .unwrap();
        assert_eq!(answers, 1);
        let households: i64 = conn
            .query_row("SELECT households FROM communities", [], |r| r.get(0))
            .unwrap();
        assert_eq!(households, 800);
        if version >= 3 {
            let (synced, cursor): (i64, String) = conn
                .query_row(
                    "SELECT synced_seq, (SELECT value FROM sync_meta WHERE key = 'feed_cursor')
                     FROM sync_documents WHERE doc_id = 'I1'",
                    [],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .unwrap();
            assert_eq!((synced, cursor.as_str()), (2, "7"));
        }
        // Version 4: evidence references made before media rows existed stay; the new tables
        // start empty (the evidence checks of old photos were never computed).
        let media: i64 = conn
            .query_row(
                "SELECT (SELECT count(*) FROM media) + (SELECT count(*) FROM evidence_checks)
                     + (SELECT count(*) FROM geofence_checks)",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(media, 0);
    }
}
