//! Supervision end to end with a real server process: a review made on the server
//! while a device amends offline, rectification tasks through sync and the supervisor API,
//! rankings, bulletins read back from XLSX/CSV/HTML, planning through the route and the CLI.

mod common;

use common::*;
use fenlei_core::answer::{AnswerValue, ItemAnswer, OccurrenceCount};
use fenlei_core::inspection::{
    EditContext, EvidenceRef, InspectionKind, InspectionStatus, MediaKind, NewInspection,
};
use fenlei_core::rectification::{ClosureEvidence, RectificationStatus};
use fenlei_core::store::Store;
use serde_json::{Value, json};

const PHOTO: &str = "5f5f5f5f5f5f5f5f5f5f5f5f5f5f5f5f5f5f5f5f5f5f5f5f5f5f5f5f5f5f5f5f";

fn http(method: &str, url: &str, token: &str, body: Option<Value>) -> (u16, Vec<u8>) {
    let client = reqwest::blocking::Client::new();
    let mut req = match method {
        "POST" => client.post(url),
        _ => client.get(url),
    }
    .bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().expect("request");
    let status = resp.status().as_u16();
    (status, resp.bytes().unwrap().to_vec())
}

fn json_of(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap_or(Value::Null)
}

/// An inspection with a C01 finding (two overflowing bins: −4, which the sample standard's rule
/// turns into a task for the property manager) and a photo of it, submitted.
fn submitted_with_finding(d: &Device, community: &str) -> String {
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
                        finding: "overflow".into(),
                        count: 2,
                    }],
                },
                sampled_units: None,
                note: Some("两处满溢".into()),
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
    d.store
        .set_status(&id, InspectionStatus::Submitted, &ctx, None)
        .unwrap();
    id
}

fn tasks_of(store: &Store) -> Vec<fenlei_core::store::RectificationSummary> {
    store.list_rectifications(None).unwrap()
}

#[test]
fn an_amendment_made_offline_while_approved_waits_for_the_return() {
    let c = city();
    let url = c.server.url();
    let id = submitted_with_finding(&c.a, &c.communities[0]);
    c.a.sync();

    // The inspector amends offline while the supervisor approves on the server.
    c.a.store
        .record_answer(
            &id,
            &ItemAnswer {
                item_code: "A01".into(),
                value: AnswerValue::Observed,
                sampled_units: None,
                note: None,
            },
            &EditContext::amending("insp.a", "补录宣传栏问题"),
        )
        .unwrap();
    let review = format!("{url}/v1/inspections/{id}/review");
    let (status, body) = http(
        "POST",
        &review,
        &c.sup.token,
        Some(json!({"decision": "approve", "comment": "同意"})),
    );
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(json_of(&body), json!({"id": id, "status": "approved"}));

    // The workflow decides what is allowed: approving twice is a conflict; returning needs a
    // comment; inspectors cannot review; unknown inspections are 404.
    let (status, _) = http(
        "POST",
        &review,
        &c.sup.token,
        Some(json!({"decision": "approve"})),
    );
    assert_eq!(status, 409);
    let (status, _) = http(
        "POST",
        &review,
        &c.sup.token,
        Some(json!({"decision": "return"})),
    );
    assert_eq!(status, 400);
    let (status, _) = http(
        "POST",
        &review,
        &c.a.token,
        Some(json!({"decision": "return", "comment": "x"})),
    );
    assert_eq!(status, 403);
    let (status, _) = http(
        "POST",
        &review,
        &c.sup.token,
        Some(json!({"decision": "maybe"})),
    );
    assert_eq!(status, 400);
    let (status, _) = http(
        "POST",
        &format!("{url}/v1/inspections/nope/review"),
        &c.sup.token,
        Some(json!({"decision": "approve"})),
    );
    assert_eq!(status, 404);

    // The device syncs: the review comes down; the amendment made offline while the
    // supervisor approved is refused (an approved inspection is not edited), stays on the
    // device and is reported, and nothing of it reaches the server.
    let report = c.a.sync_allowing_refusals();
    assert_eq!(report.rejected.len(), 1, "{:?}", report.rejected);
    assert_eq!(report.rejected[0].id, id);
    assert!(
        report.rejected[0]
            .reason
            .contains("approved inspection is not edited"),
        "{}",
        report.rejected[0].reason
    );
    let i = c.a.store.inspection(&id).unwrap();
    assert_eq!(i.status, InspectionStatus::Approved);
    assert!(i.answers.iter().any(|a| a.answer.item_code == "A01"));
    let history = c.a.store.history(&id).unwrap();
    let by_sup = history
        .iter()
        .find(|h| h.by == "sup")
        .expect("the review in the history");
    assert_eq!(by_sup.action, "status");
    assert_eq!(
        by_sup.device_id,
        fenlei_server::domain::review::server_actor("review", "sup"),
        "the server's review actor for this supervisor"
    );
    let (status, body) = http(
        "GET",
        &format!("{url}/v1/inspections/{id}"),
        &c.sup.token,
        None,
    );
    assert_eq!(status, 200);
    let detail = json_of(&body);
    assert_eq!(detail["inspection"]["status"], "approved");
    let server_answers = detail["inspection"]["answers"].as_array().unwrap();
    assert!(
        !server_answers
            .iter()
            .any(|a| a["answer"]["item_code"] == "A01"),
        "the approved inspection on the server keeps the answers the supervisor approved"
    );

    // The supervisor returns it (approved → returned); the waiting amendment then goes up on
    // the next sync, with its reason, and both devices and the server agree.
    let (status, body) = http(
        "POST",
        &review,
        &c.sup.token,
        Some(json!({"decision": "return", "comment": "补充照片"})),
    );
    assert_eq!(status, 200);
    assert_eq!(json_of(&body)["status"], "returned");
    c.a.sync();
    let i = c.a.store.inspection(&id).unwrap();
    assert_eq!(i.status, InspectionStatus::Returned);
    assert!(i.answers.iter().any(|a| a.answer.item_code == "A01"));
    assert!(
        c.a.store
            .history(&id)
            .unwrap()
            .iter()
            .any(|h| h.by == "insp.a" && h.text.as_deref() == Some("补录宣传栏问题"))
    );
    c.sup.sync();
    assert_eq!(c.sup.store.inspection(&id).unwrap(), i);
    let (_, body) = http(
        "GET",
        &format!("{url}/v1/inspections/{id}"),
        &c.sup.token,
        None,
    );
    let detail = json_of(&body);
    assert_eq!(detail["inspection"]["status"], "returned");
    assert!(
        detail["inspection"]["answers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["answer"]["item_code"] == "A01")
    );
}

#[test]
fn rectification_tasks_open_from_findings_sync_and_close_with_a_supervisor() {
    let c = city();
    let url = c.server.url();
    let id = submitted_with_finding(&c.a, &c.communities[0]);
    c.a.sync();
    // The standard's rule opened a task on the server; it came back in the same sync.
    let tasks = tasks_of(&c.a.store);
    assert_eq!(tasks.len(), 1, "{tasks:?}");
    let task_id = tasks[0].id.clone();
    assert_eq!(tasks[0].inspection_id, id);
    assert_eq!(tasks[0].responsible, "物业");
    let full = c.a.store.rectification(&task_id).unwrap();
    assert_eq!(full.finding_evidence, vec![PHOTO.to_string()]);
    assert_eq!(full.required_evidence, vec!["actions", "photo_after"]);

    // The board, filtered.
    let (status, body) = http(
        "GET",
        &format!(
            "{url}/v1/rectifications?status=open&community={}",
            c.communities[0]
        ),
        &c.sup.token,
        None,
    );
    assert_eq!(status, 200);
    let board = json_of(&body);
    let row = &board["tasks"][0];
    assert_eq!(row["id"], task_id.as_str());
    for field in [
        "community_name",
        "item_title",
        "opened_at_ms",
        "deadline_ms",
        "deduction",
    ] {
        assert!(!row[field].is_null(), "{field} in {row}");
    }
    assert_eq!(row["evidence"], json!([PHOTO]));
    assert_eq!(row["overdue"], false);
    let (_, body) = http(
        "GET",
        &format!("{url}/v1/rectifications?overdue=true"),
        &c.sup.token,
        None,
    );
    assert_eq!(json_of(&body)["tasks"], json!([]));
    let (status, _) = http(
        "GET",
        &format!("{url}/v1/rectifications?status=bogus"),
        &c.sup.token,
        None,
    );
    assert_eq!(status, 400);
    let (status, _) = http("GET", &format!("{url}/v1/rectifications"), &c.a.token, None);
    assert_eq!(status, 403);

    // Approving before the evidence is in is refused.
    let approve = format!("{url}/v1/rectifications/{task_id}/approve");
    let reopen = format!("{url}/v1/rectifications/{task_id}/reopen");
    let (status, _) = http(
        "POST",
        &approve,
        &c.sup.token,
        Some(json!({"comment": "好"})),
    );
    assert_eq!(status, 409);

    // The property manager's work, recorded by the inspector: evidence, submitted.
    let s = &c.a.store;
    s.set_rectification_status(&task_id, RectificationStatus::InProgress, "insp.a", None)
        .unwrap();
    s.add_closure_evidence(
        &task_id,
        &ClosureEvidence {
            kind: "actions".into(),
            text: Some("增加清运频次".into()),
            sha256: None,
            by: "insp.a".into(),
            at_ms: 0,
            ..Default::default()
        },
    )
    .unwrap();
    s.add_closure_evidence(
        &task_id,
        &ClosureEvidence {
            kind: "photo_after".into(),
            text: None,
            sha256: Some(PHOTO.replace('5', "6")),
            by: "insp.a".into(),
            at_ms: 0,
            ..Default::default()
        },
    )
    .unwrap();
    s.set_rectification_status(&task_id, RectificationStatus::Submitted, "insp.a", None)
        .unwrap();
    c.a.sync();

    // Another inspector may not close it: the server refuses the change.
    c.b.sync();
    c.b.store
        .set_rectification_status(&task_id, RectificationStatus::Closed, "insp.b", None)
        .unwrap();
    let refused =
        c.b.client()
            .sync(
                &c.b.store,
                &fenlei_core::progress::NoProgress,
                &fenlei_core::progress::CancelToken::new(),
            )
            .unwrap();
    assert!(
        refused.rejected.iter().any(|r| r.id == task_id),
        "{refused:?}"
    );

    // The supervisor approves; a reopen needs a comment; a closed task can be reopened.
    let (status, body) = http(
        "POST",
        &approve,
        &c.sup.token,
        Some(json!({"comment": "同意销号"})),
    );
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let row = json_of(&body);
    assert_eq!(row["status"], "closed");
    assert_eq!(row["closure_evidence"].as_array().unwrap().len(), 1);
    let (status, _) = http("POST", &approve, &c.sup.token, Some(json!({})));
    assert_eq!(status, 409);
    let (status, _) = http("POST", &reopen, &c.sup.token, Some(json!({})));
    assert_eq!(status, 400);
    let (status, body) = http(
        "POST",
        &reopen,
        &c.sup.token,
        Some(json!({"comment": "复查发现反弹"})),
    );
    assert_eq!(status, 200);
    assert_eq!(json_of(&body)["status"], "reopened");
    c.a.sync();
    let t = c.a.store.rectification(&task_id).unwrap();
    assert_eq!(t.status, RectificationStatus::Reopened);
    let statuses: Vec<_> = t.events.iter().map(|e| (e.to, e.by.as_str())).collect();
    assert_eq!(
        statuses,
        vec![
            (RectificationStatus::InProgress, "insp.a"),
            (RectificationStatus::Submitted, "insp.a"),
            (RectificationStatus::Closed, "sup"),
            (RectificationStatus::Reopened, "sup"),
        ]
    );

    // A follow-up inspection by the other inspector links to the reopened task and submits it.
    c.b.store.rebuild_projection().unwrap();
    let mut follow = NewInspection {
        community_id: c.communities[0].clone(),
        standard_id: "hohhot-residential".into(),
        standard_version: "2026.1".into(),
        kind: InspectionKind::FollowUp,
        co_inspectors: vec![],
    };
    follow.kind = InspectionKind::FollowUp;
    let fresh_b = Device::enroll(&c.server, c.dir.path(), "insp.b");
    fresh_b.sync();
    let follow_id = fresh_b.store.create_inspection(&follow, "insp.b").unwrap();
    let pending = fresh_b
        .store
        .rectifications_of_community(&c.communities[0], true)
        .unwrap();
    assert_eq!(pending.len(), 1);
    let status = fresh_b
        .store
        .record_follow_up(
            &task_id,
            &follow_id,
            true,
            &[PHOTO.replace('5', "7")],
            "insp.b",
            Some("复查已整改"),
        )
        .unwrap();
    assert_eq!(status, RectificationStatus::Submitted);
    fresh_b.sync();

    // Rankings count the open task; a protocol-1 client never sees task documents.
    let (_, body) = http(
        "GET",
        &format!("{url}/v1/rankings?by=community&period=week"),
        &c.sup.token,
        None,
    );
    let rankings = json_of(&body);
    let row = rankings["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["key"] == c.communities[0].as_str())
        .unwrap()
        .clone();
    assert_eq!(row["open_rectifications"], 1);
    assert_eq!(row["communities_in_scope"], 1);
    assert_eq!(row["coverage"], 1.0);
    let (status, body) = {
        let resp = reqwest::blocking::Client::new()
            .post(format!("{url}/v1/sync"))
            .bearer_auth(&c.a.token)
            .json(&json!({"protocol": 1, "feed": true}))
            .send()
            .unwrap();
        (resp.status().as_u16(), resp.bytes().unwrap().to_vec())
    };
    assert_eq!(status, 200);
    let changed: Vec<String> = json_of(&body)["changed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect();
    assert!(changed.contains(&id) && !changed.contains(&task_id));
    let resp = reqwest::blocking::Client::new()
        .post(format!("{url}/v1/sync"))
        .bearer_auth(&c.a.token)
        .json(&json!({"protocol": 3, "feed": true}))
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
}

#[test]
fn bulletins_read_back_and_plans_are_reproducible() {
    use calamine::{Data, Reader, Xlsx};
    let c = city();
    let url = c.server.url();
    for community in &c.communities[..3] {
        submitted_with_finding(&c.a, community);
    }
    c.a.sync();
    let (status, body) = http(
        "GET",
        &format!("{url}/v1/rankings?by=community&period=week"),
        &c.sup.token,
        None,
    );
    assert_eq!(status, 200);
    let rankings = json_of(&body);
    let rows = rankings["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 3);

    let (status, xlsx) = http(
        "GET",
        &format!("{url}/v1/reports/weekly.xlsx"),
        &c.sup.token,
        None,
    );
    assert_eq!(status, 200);
    let mut book: Xlsx<_> = Xlsx::new(std::io::Cursor::new(xlsx)).unwrap();
    assert_eq!(
        book.sheet_names(),
        vec!["排名".to_string(), "问题清单".to_string()]
    );
    let sheet = book.worksheet_range("排名").unwrap();
    let text = |r: u32, c: u32| {
        sheet
            .get_value((r, c))
            .map(|v| v.to_string())
            .unwrap_or_default()
    };
    assert_eq!(text(0, 0), "生活垃圾分类工作周通报");
    let headers: Vec<String> = (0..17).map(|c| text(3, c)).collect();
    assert_eq!(
        headers,
        fenlei_server::reports::ranking_headers(fenlei_server::model::ScopeKind::Community)
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>()
    );
    for (n, row) in rows.iter().enumerate() {
        let r = 4 + n as u32;
        assert_eq!(
            sheet.get_value((r, 0)),
            Some(&Data::Float(row["rank"].as_f64().unwrap()))
        );
        assert_eq!(text(r, 1), row["key"].as_str().unwrap());
        assert_eq!(
            sheet.get_value((r, 3)),
            Some(&Data::Float(1.0)),
            "one inspection each"
        );
        assert_eq!(
            sheet.get_value((r, 4)),
            Some(&Data::Float(row["average"].as_f64().unwrap()))
        );
        assert_eq!(
            sheet.get_value((r, 10)),
            Some(&Data::Float(1.0)),
            "one open task each"
        );
    }
    let findings = book.worksheet_range("问题清单").unwrap();
    assert_eq!(
        findings.get_value((0, 6)).map(|v| v.to_string()).as_deref(),
        Some("扣分")
    );
    assert_eq!(findings.get_value((1, 6)), Some(&Data::Float(4.0)));
    assert_eq!(
        findings.get_value((1, 8)),
        Some(&Data::Float(1.0)),
        "one photo"
    );

    let (status, csv) = http(
        "GET",
        &format!("{url}/v1/reports/weekly.csv"),
        &c.sup.token,
        None,
    );
    assert_eq!(status, 200);
    let csv = String::from_utf8(csv).unwrap();
    let mut lines = csv.trim_start_matches('\u{feff}').lines();
    assert!(lines.next().unwrap().starts_with("排名,编码,小区,检查次数"));
    assert_eq!(lines.count(), 3);

    let (status, html) = http(
        "GET",
        &format!("{url}/v1/reports/weekly.html?base={url}"),
        &c.sup.token,
        None,
    );
    assert_eq!(status, 200);
    let html = String::from_utf8(html).unwrap();
    assert!(
        html.contains(&format!("{url}/v1/media/{PHOTO}?rendition=thumb")),
        "{html}"
    );
    assert!(html.contains("突出问题"));
    let (status, _) = http(
        "GET",
        &format!("{url}/v1/reports/yearly.xlsx"),
        &c.sup.token,
        None,
    );
    assert_eq!(status, 404);
    let (status, _) = http(
        "GET",
        &format!("{url}/v1/reports/weekly.xlsx"),
        &c.a.token,
        None,
    );
    assert_eq!(status, 403);

    // The CLI writes the same bulletin to files.
    let out = c.dir.path().join("bulletins");
    let printed = c.server.admin(&[
        "report",
        "--kind",
        "monthly",
        "--user",
        "sup",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(printed.lines().count(), 3);
    for ext in ["xlsx", "csv", "html"] {
        assert!(
            std::fs::read_dir(&out).unwrap().any(|e| e
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == ext))
        );
    }

    // Planning: the uninspected list, and a plan that is the same for the same seed.
    let (_, body) = http(
        "GET",
        &format!("{url}/v1/planning/uninspected?period=week"),
        &c.sup.token,
        None,
    );
    let missing = json_of(&body)["communities"].as_array().unwrap().len();
    let (_, body) = http(
        "GET",
        &format!("{url}/v1/planning/visits?days=3&per_day=2&seed=42&inspectors=insp.a,insp.b"),
        &c.sup.token,
        None,
    );
    let plan = json_of(&body);
    let (_, again) = http(
        "GET",
        &format!("{url}/v1/planning/visits?days=3&per_day=2&seed=42&inspectors=insp.a,insp.b"),
        &c.sup.token,
        None,
    );
    assert_eq!(plan, json_of(&again));
    let visits = plan["visits"].as_array().unwrap();
    assert_eq!(visits.len(), 12);
    assert!(
        visits.iter().all(|v| v["uninspected"] == true),
        "{missing} uninspected come first"
    );
    assert!(!visits.iter().any(|v| v["inspector"] == "insp.a"
        && c.communities[..3].contains(&v["community_id"].as_str().unwrap().to_string())));
    let cli = c.server.admin(&[
        "plan",
        "--user",
        "sup",
        "--period",
        "week",
        "--days",
        "3",
        "--per-day",
        "2",
        "--seed",
        "42",
        "--inspectors",
        "insp.a,insp.b",
    ]);
    let cli: Value = serde_json::from_str(&cli).unwrap();
    assert_eq!(cli["uninspected"].as_array().unwrap().len(), missing);
    assert_eq!(cli["plan"]["visits"].as_array().unwrap().len(), 12);
}
