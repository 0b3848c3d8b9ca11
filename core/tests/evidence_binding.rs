//! What an evidence entry (inspection) or closure photo entry (rectification task) says about
//! its media, as the server reads it to decide uploads and downloads (docs/media-sync.md): the
//! device that created the entry, and the thumbnail and upload rendition it declares — only as
//! that device wrote them.

use automerge::transaction::Transactable;
use automerge::{ObjId, ObjType, ROOT, ReadDoc, Value};
use fenlei_core::docrules::actor_of;
use fenlei_core::inspection::{
    EvidenceRef, InspectionDoc, InspectionKind, MediaKind, NewInspection,
};
use fenlei_core::rectification::{ClosureEvidence, NewRectification, RectificationDoc};

const PHONE_A: &str = "0192f000-0000-7000-8000-00000000000a";
const PHONE_B: &str = "0192f000-0000-7000-8000-00000000000b";
const T0: i64 = 1_790_000_000_000;

fn hex(c: char) -> String {
    std::iter::repeat_n(c, 64).collect()
}

fn photo(item: &str, sha: &str, thumb: Option<&str>, upload: Option<&str>) -> EvidenceRef {
    EvidenceRef {
        sha256: sha.into(),
        item_code: item.into(),
        media: MediaKind::Photo,
        added_by: "li.ming".into(),
        at_ms: T0,
        thumb: thumb.map(str::to_string),
        upload: upload.map(str::to_string),
        // Not written: the entry's device is the one editing.
        device_id: "made-up".into(),
    }
}

fn inspection() -> InspectionDoc {
    InspectionDoc::create(
        "insp-1",
        &NewInspection {
            community_id: "HHHT-XC-001".into(),
            standard_id: "hohhot-residential".into(),
            standard_version: "2026.1".into(),
            kind: InspectionKind::DailyPatrol,
            co_inspectors: vec![],
        },
        PHONE_A,
        "li.ming",
        T0,
    )
    .unwrap()
}

/// The map object under `key` of the root container `container`.
fn entry(doc: &automerge::AutoCommit, container: &str, key: &str) -> ObjId {
    let Ok(Some((Value::Object(_), map))) = doc.get(ROOT, container) else {
        panic!("no {container}");
    };
    let Ok(Some((Value::Object(ObjType::Map), e))) = doc.get(&map, key) else {
        panic!("no {container}/{key}");
    };
    e
}

/// Phone B edits a copy of `bytes` with `edit` (raw automerge, as a modified app could) and
/// returns its whole document.
fn as_phone_b(bytes: &[u8], edit: impl FnOnce(&mut automerge::AutoCommit)) -> Vec<u8> {
    let mut b = automerge::AutoCommit::load(bytes)
        .unwrap()
        .with_actor(actor_of(PHONE_B).unwrap());
    edit(&mut b);
    b.commit_with(
        automerge::transaction::CommitOptions::default()
            .with_message(r#"{"by":"wang.wu","action":"evidence"}"#)
            .with_time(T0),
    );
    b.save()
}

/// Whether received bytes were refused under `rule` (docs/inspection-document.md, "Rules").
fn refused_under(result: fenlei_core::Result<usize>, rule: fenlei_core::docrules::Rule) -> bool {
    matches!(result, Err(fenlei_core::CoreError::RuleBroken { rule: r, .. }) if r == rule)
}

#[test]
fn an_entry_names_its_device_and_the_renditions_it_declares() {
    let mut doc = inspection();
    doc.add_evidence(&photo("A01", &hex('a'), Some(&hex('b')), Some(&hex('c'))))
        .unwrap();
    doc.add_evidence(&photo("A02", &hex('d'), None, None))
        .unwrap();
    let ev = doc.evidence();
    assert_eq!(ev.len(), 2);
    assert_eq!(ev[0].device_id, PHONE_A);
    assert_eq!(
        (ev[0].thumb.as_deref(), ev[0].upload.as_deref()),
        (Some(hex('b').as_str()), Some(hex('c').as_str()))
    );
    assert_eq!((ev[1].thumb.as_ref(), ev[1].upload.as_ref()), (None, None));
    assert_eq!(ev[1].device_id, PHONE_A);

    // Renditions must be hashes too.
    let mut bad = photo("A03", &hex('e'), Some("not-a-hash"), None);
    assert!(doc.add_evidence(&bad).is_err());
    bad.thumb = Some(hex('E'));
    assert!(doc.add_evidence(&bad).is_err());
    assert_eq!(doc.evidence().len(), 2);

    // Received by another phone: the entry still names the device that created it.
    let b = InspectionDoc::load("insp-1", &doc.save(), PHONE_B).unwrap();
    assert_eq!(b.evidence()[0].device_id, PHONE_A);
}

#[test]
fn what_another_device_writes_into_an_entry_is_refused() {
    use fenlei_core::docrules::Rule;
    let mut doc = inspection();
    let key_a = format!("A01/{}", hex('a'));
    let key_d = format!("A02/{}", hex('d'));
    doc.add_evidence(&photo("A01", &hex('a'), Some(&hex('b')), None))
        .unwrap();
    doc.add_evidence(&photo("A02", &hex('d'), None, None))
        .unwrap();
    let before = doc.evidence();
    // Another thumbnail into A's first entry; another hash into A's second: entries are never
    // edited in place, so a receiving device refuses both and keeps what it had.
    let bytes = doc.save();
    for (changed, rule) in [
        (
            as_phone_b(&bytes, |b| {
                let first = entry(b, "evidence", &key_a);
                b.put(&first, "thumb", hex('f').as_str()).unwrap();
                b.put(&first, "upload", hex('9').as_str()).unwrap();
            }),
            Rule::EntriesImmutable,
        ),
        (
            // The hash no longer matches the entry's key: the layout refuses it first.
            as_phone_b(&bytes, |b| {
                let second = entry(b, "evidence", &key_d);
                b.put(&second, "sha256", hex('7').as_str()).unwrap();
            }),
            Rule::Schema,
        ),
    ] {
        assert!(refused_under(doc.apply_bytes(&changed), rule));
        assert_eq!(doc.evidence(), before);
    }
    // Nor may phone B replace A's entry with one of its own.
    let replaced = as_phone_b(&bytes, |b| {
        let Ok(Some((_, map))) = b.get(ROOT, "evidence") else {
            panic!()
        };
        let e = b.put_object(&map, key_a.as_str(), ObjType::Map).unwrap();
        for (k, v) in [
            ("sha256", hex('a')),
            ("item", "A01".into()),
            ("media", "photo".into()),
            ("thumb", hex('6')),
            ("by", "wang.wu".into()),
        ] {
            b.put(&e, k, v.as_str()).unwrap();
        }
        b.put(&e, "at", automerge::ScalarValue::Timestamp(T0))
            .unwrap();
    });
    assert!(refused_under(
        doc.apply_bytes(&replaced),
        Rule::EntriesImmutable
    ));
    assert_eq!(doc.evidence(), before);

    // A new entry phone B makes is its own, with what it declares.
    let changed = as_phone_b(&doc.save(), |b| {
        let Ok(Some((_, map))) = b.get(ROOT, "evidence") else {
            panic!()
        };
        let e = b
            .put_object(&map, format!("A03/{}", hex('8')).as_str(), ObjType::Map)
            .unwrap();
        for (k, v) in [
            ("sha256", hex('8')),
            ("item", "A03".into()),
            ("media", "photo".into()),
            ("thumb", hex('6')),
            ("by", "wang.wu".into()),
        ] {
            b.put(&e, k, v.as_str()).unwrap();
        }
        b.put(&e, "at", automerge::ScalarValue::Timestamp(T0))
            .unwrap();
    });
    doc.apply_bytes(&changed).unwrap();
    let third = doc
        .evidence()
        .into_iter()
        .find(|e| e.item_code == "A03")
        .unwrap();
    assert_eq!(
        (third.device_id.as_str(), third.thumb.as_deref()),
        (PHONE_B, Some(hex('6').as_str()))
    );
}

#[test]
fn entries_with_malformed_hashes_are_not_evidence() {
    let mut doc = inspection();
    doc.add_evidence(&photo("A01", &hex('a'), None, None))
        .unwrap();
    let changed = as_phone_b(&doc.save(), |b| {
        let Ok(Some((_, map))) = b.get(ROOT, "evidence") else {
            panic!()
        };
        for (key, sha, thumb) in [
            ("A02/x", "../../etc/passwd", hex('1')),
            ("A03/y", hex('A').as_str(), hex('1')),
            ("A04/z", hex('2').as_str(), "NOT HEX".to_string()),
        ] {
            let e = b.put_object(&map, key, ObjType::Map).unwrap();
            for (k, v) in [
                ("sha256", sha),
                ("item", &key[..3]),
                ("media", "photo"),
                ("thumb", thumb.as_str()),
            ] {
                b.put(&e, k, v).unwrap();
            }
        }
    });
    // Refused as a whole, naming the first bad field: nothing of it is evidence.
    let before = doc.evidence();
    assert!(refused_under(
        doc.apply_bytes(&changed),
        fenlei_core::docrules::Rule::Schema
    ));
    assert_eq!(doc.evidence(), before);
}

#[test]
fn closure_photos_name_their_device_and_renditions_likewise() {
    let mut task = RectificationDoc::create(
        "task-1",
        &NewRectification {
            community_id: "150102-0001".into(),
            inspection_id: "insp-1".into(),
            item_code: "C01".into(),
            item_title: "收集容器".into(),
            responsible: "物业".into(),
            deadline_days: 3,
            deduction: None,
            required_evidence: vec!["photo_after".into()],
            finding_evidence: vec![],
            source: "inspector".into(),
        },
        PHONE_A,
        "li.ming",
        T0,
    )
    .unwrap();
    task.add_closure_evidence(&ClosureEvidence {
        kind: "photo_after".into(),
        sha256: Some(hex('a')),
        thumb: Some(hex('b')),
        upload: Some(hex('c')),
        by: "li.ming".into(),
        at_ms: T0,
        ..Default::default()
    })
    .unwrap();
    // A rendition without a photo, or one that is not a hash, is refused.
    for (sha, thumb) in [
        (None, Some(hex('b'))),
        (Some(hex('d')), Some("x".to_string())),
    ] {
        assert!(
            task.add_closure_evidence(&ClosureEvidence {
                kind: "photo_after".into(),
                text: Some("t".into()),
                sha256: sha,
                thumb,
                by: "li.ming".into(),
                at_ms: T0,
                ..Default::default()
            })
            .is_err()
        );
    }
    let read = task.read().unwrap();
    let e = &read.closure_evidence[0];
    assert_eq!(e.device_id, PHONE_A);
    assert_eq!(
        (e.thumb.as_deref(), e.upload.as_deref()),
        (Some(hex('b').as_str()), Some(hex('c').as_str()))
    );

    let key = format!("photo_after/{}", hex('a'));
    let changed = as_phone_b(&task.save(), |b| {
        let e = entry(b, "closure", &key);
        b.put(&e, "thumb", hex('f').as_str()).unwrap();
        b.put(&e, "sha256", hex('7').as_str()).unwrap();
    });
    let before = task.read().unwrap();
    assert!(matches!(
        task.apply_bytes(&changed),
        Err(fenlei_core::CoreError::RuleBroken { .. })
    ));
    assert_eq!(task.read().unwrap(), before);
}
