//! The authorization matrix (docs/reliability.md): every role × endpoint × ownership case
//! against a real server process, as two tables.
//!
//! - `HTTP`: one row per (principal, method, path, expected status, ids the body must and must
//!   not contain). Adding an endpoint is adding rows; paths use the placeholders below.
//! - `WRITES`: one row per document write pushed through `/v1/sync` (create, answer, approve,
//!   forged actor) by a principal on an inspection of some ownership, and whether the server
//!   accepts it; `TASK_WRITES` the same for rectification task documents (open, evidence,
//!   submit for closure, close, reopen, follow-up, header change, forged opener/device/actor).
//!
//! The world: district D (street S) and a far district F. `insp` is assigned street S,
//! `insp2` (a second device of the same user) too, `insp_s2` another street of D, `insp_far` a
//! community of F; `sup` supervises D, `sup_far` F; `admin`; `revoked` is an inspector of S
//! whose device was revoked (`fenlei-server revoke-device`); `anon` sends no token, `forged` a
//! made-up one.

mod common;

use common::raw::*;
use common::*;
use fenlei_core::answer::{AnswerValue, ItemAnswer};
use fenlei_core::inspection::{
    EditContext, InspectionDoc, InspectionKind, InspectionStatus, NewInspection,
};
use fenlei_core::progress::{CancelToken, NoProgress};
use fenlei_core::rectification::{
    ClosureEvidence, FollowUp, NewRectification, RectificationDoc, RectificationStatus,
};
use std::collections::HashMap;

/// Placeholders: {own} a draft inspection in street S (district D) by `insp`, {sub} a submitted
/// one there (score lists show submitted work only); {far} a submitted one in district F by
/// `insp_far`; {c_own}/{c_far} their communities; {s_far} the far community's street.
type HttpRow = (
    &'static str,
    &'static str,
    &'static str,
    u16,
    &'static [&'static str],
    &'static [&'static str],
);

const HTTP: &[HttpRow] = &[
    // principal, method, path, status, body contains, body lacks
    ("anon", "GET", "/v1/me", 401, &[], &[]),
    ("forged", "GET", "/v1/me", 401, &[], &[]),
    ("revoked", "GET", "/v1/me", 401, &[], &[]),
    ("insp", "GET", "/v1/me", 200, &["insp"], &[]),
    ("sup", "GET", "/v1/me", 200, &["supervisor"], &[]),
    ("admin", "GET", "/v1/me", 200, &["admin"], &[]),
    ("anon", "GET", "/v1/inspections", 401, &[], &[]),
    ("revoked", "GET", "/v1/inspections", 401, &[], &[]),
    ("insp", "GET", "/v1/inspections", 403, &[], &[]),
    ("insp_far", "GET", "/v1/inspections", 403, &[], &[]),
    ("sup", "GET", "/v1/inspections", 200, &["{own}"], &["{far}"]),
    (
        "sup_far",
        "GET",
        "/v1/inspections",
        200,
        &["{far}"],
        &["{own}"],
    ),
    (
        "admin",
        "GET",
        "/v1/inspections",
        200,
        &["{own}", "{far}"],
        &[],
    ),
    ("anon", "GET", "/v1/inspections/{own}", 401, &[], &[]),
    ("revoked", "GET", "/v1/inspections/{own}", 401, &[], &[]),
    ("insp", "GET", "/v1/inspections/{own}", 403, &[], &[]),
    ("sup", "GET", "/v1/inspections/{own}", 200, &["{own}"], &[]),
    ("sup", "GET", "/v1/inspections/{far}", 403, &[], &[]),
    ("sup_far", "GET", "/v1/inspections/{own}", 403, &[], &[]),
    (
        "sup_far",
        "GET",
        "/v1/inspections/{far}",
        200,
        &["{far}"],
        &[],
    ),
    (
        "admin",
        "GET",
        "/v1/inspections/{own}",
        200,
        &["{own}"],
        &[],
    ),
    (
        "admin",
        "GET",
        "/v1/inspections/{far}",
        200,
        &["{far}"],
        &[],
    ),
    ("sup", "GET", "/v1/inspections/no-such-id", 404, &[], &[]),
    (
        "anon",
        "GET",
        "/v1/communities/{c_own}/scores",
        401,
        &[],
        &[],
    ),
    (
        "insp",
        "GET",
        "/v1/communities/{c_own}/scores",
        403,
        &[],
        &[],
    ),
    (
        "sup",
        "GET",
        "/v1/communities/{c_own}/scores",
        200,
        &["{sub}"],
        &[],
    ),
    (
        "sup_far",
        "GET",
        "/v1/communities/{c_own}/scores",
        200,
        &[],
        &["{sub}"],
    ),
    (
        "admin",
        "GET",
        "/v1/communities/{c_far}/scores",
        200,
        &["{far}"],
        &[],
    ),
    (
        "anon",
        "GET",
        "/v1/rankings?by=street&period=week",
        401,
        &[],
        &[],
    ),
    (
        "insp",
        "GET",
        "/v1/rankings?by=street&period=week",
        403,
        &[],
        &[],
    ),
    (
        "sup",
        "GET",
        "/v1/rankings?by=community&period=week",
        200,
        &["{c_own}"],
        &["{c_far}"],
    ),
    (
        "admin",
        "GET",
        "/v1/rankings?by=community&period=week",
        200,
        &["{c_own}", "{c_far}"],
        &[],
    ),
    ("anon", "POST", "/v1/sync", 401, &[], &[]),
    ("forged", "POST", "/v1/sync", 401, &[], &[]),
    ("revoked", "POST", "/v1/sync", 401, &[], &[]),
    ("insp", "POST", "/v1/sync", 200, &["{own}"], &["{far}"]),
    ("insp_s2", "POST", "/v1/sync", 200, &[], &["{own}", "{far}"]),
    ("sup", "POST", "/v1/sync", 200, &["{own}"], &["{far}"]),
    ("sup_far", "POST", "/v1/sync", 200, &["{far}"], &["{own}"]),
    ("admin", "POST", "/v1/sync", 200, &["{own}", "{far}"], &[]),
    // Endpoints added with media sync, supervision, tamper evidence and the dashboard.
    ("anon", "GET", "/v1/communities", 401, &[], &[]),
    ("revoked", "GET", "/v1/communities", 401, &[], &[]),
    ("insp", "GET", "/v1/communities", 403, &[], &[]),
    (
        "sup",
        "GET",
        "/v1/communities",
        200,
        &["{c_own}"],
        &["{c_far}"],
    ),
    (
        "sup_far",
        "GET",
        "/v1/communities",
        200,
        &["{c_far}"],
        &["{c_own}"],
    ),
    (
        "admin",
        "GET",
        "/v1/communities",
        200,
        &["{c_own}", "{c_far}"],
        &[],
    ),
    ("anon", "GET", "/v1/rectifications", 401, &[], &[]),
    ("revoked", "GET", "/v1/rectifications", 401, &[], &[]),
    ("insp", "GET", "/v1/rectifications", 403, &[], &[]),
    ("sup", "GET", "/v1/rectifications", 200, &[], &["{c_far}"]),
    (
        "sup_far",
        "GET",
        "/v1/rectifications",
        200,
        &[],
        &["{c_own}"],
    ),
    ("anon", "GET", "/v1/planning/uninspected", 401, &[], &[]),
    ("insp", "GET", "/v1/planning/uninspected", 403, &[], &[]),
    (
        "sup",
        "GET",
        "/v1/planning/uninspected",
        200,
        &[],
        &["{c_far}"],
    ),
    (
        "sup_far",
        "GET",
        "/v1/planning/uninspected",
        200,
        &[],
        &["{c_own}"],
    ),
    ("anon", "GET", "/v1/reports/weekly.csv", 401, &[], &[]),
    ("revoked", "GET", "/v1/reports/weekly.csv", 401, &[], &[]),
    ("insp", "GET", "/v1/reports/weekly.csv", 403, &[], &[]),
    ("sup", "GET", "/v1/reports/weekly.csv", 200, &[], &[]),
    ("anon", "GET", "/v1/chain/head", 401, &[], &[]),
    ("revoked", "GET", "/v1/chain/head", 401, &[], &[]),
    ("insp", "GET", "/v1/chain/head", 200, &[], &[]),
    ("anon", "GET", "/v1/chain/links?from=0", 401, &[], &[]),
    ("revoked", "GET", "/v1/chain/links?from=0", 401, &[], &[]),
    (
        "insp",
        "GET",
        "/v1/chain/links?from=0",
        200,
        &["\"links\""],
        &[],
    ),
    (
        "anon",
        "GET",
        "/v1/receipts?inspection={own}",
        401,
        &[],
        &[],
    ),
    (
        "revoked",
        "GET",
        "/v1/receipts?inspection={own}",
        401,
        &[],
        &[],
    ),
    ("anon", "GET", "/v1/session", 401, &[], &[]),
    (
        "anon",
        "GET",
        "/v1/media/{sha_unknown}?rendition=thumb",
        401,
        &[],
        &[],
    ),
    (
        "revoked",
        "GET",
        "/v1/media/{sha_unknown}?rendition=thumb",
        401,
        &[],
        &[],
    ),
    (
        "sup",
        "GET",
        "/v1/media/{sha_unknown}?rendition=thumb",
        403,
        &[],
        &[],
    ),
    (
        "admin",
        "GET",
        "/v1/media/{sha_unknown}?rendition=thumb",
        403,
        &[],
        &[],
    ),
    (
        "anon",
        "POST",
        "/v1/inspections/{own}/review",
        401,
        &[],
        &[],
    ),
    (
        "revoked",
        "POST",
        "/v1/inspections/{own}/review",
        401,
        &[],
        &[],
    ),
    (
        "insp",
        "POST",
        "/v1/inspections/{own}/review",
        403,
        &[],
        &[],
    ),
    (
        "sup_far",
        "POST",
        "/v1/inspections/{own}/review",
        403,
        &[],
        &[],
    ),
    (
        "anon",
        "POST",
        "/v1/rectifications/no-such-task/approve",
        401,
        &[],
        &[],
    ),
    (
        "insp",
        "POST",
        "/v1/rectifications/no-such-task/approve",
        403,
        &[],
        &[],
    ),
];

/// What a write does.
#[derive(Clone, Copy, Debug)]
enum Edit {
    /// A new inspection in the community of the target.
    Create,
    /// An answer on the target inspection.
    Answer,
    /// Submit (as an inspector does).
    Submit,
    /// Approve the target (which is submitted).
    Approve,
    /// An answer made under the actor of another device of the same user (`insp2`).
    ForgedActor,
}

/// principal, edit, target ({own}, {far}, {sub}: a submitted inspection in S), accepted
const WRITES: &[(&str, Edit, &str, bool)] = &[
    ("insp", Edit::Create, "{own}", true),
    ("insp", Edit::Create, "{far}", false),
    ("insp_s2", Edit::Create, "{own}", false),
    ("sup", Edit::Create, "{own}", false),
    ("admin", Edit::Create, "{own}", false),
    ("insp", Edit::Answer, "{own}", true),
    ("insp2", Edit::Answer, "{own}", true),
    ("insp_s2", Edit::Answer, "{own}", false),
    ("insp_far", Edit::Answer, "{own}", false),
    ("sup", Edit::Answer, "{own}", false),
    ("admin", Edit::Answer, "{own}", false),
    ("insp", Edit::ForgedActor, "{own}", false),
    ("insp", Edit::Submit, "{own}", true),
    ("insp", Edit::Approve, "{sub}", false),
    ("sup_far", Edit::Approve, "{sub}", false),
    ("sup", Edit::Approve, "{far}", false),
    ("sup", Edit::Approve, "{sub}", true),
    ("admin", Edit::Approve, "{far}", true),
];

/// What a write on a rectification task does (docs/rectification.md; the server's rules are
/// `supervision::authorise_task_write`).
#[derive(Clone, Copy, Debug)]
enum TaskEdit {
    /// A new task in the target inspection's community, opened by this principal.
    Open,
    /// A new task whose `opened_by` names another user (the changes name this one).
    OpenAsOther,
    /// A new task whose `opened_device` is another device of the same user.
    OpenOnOtherDevice,
    /// A new task already submitted and closed on the device before its first sync.
    OpenClosed,
    /// A closure evidence text (cause analysis).
    Evidence,
    /// Submit for closure (销号申请), with the required evidence.
    Submit,
    /// Approve the closure: submitted → closed.
    Close,
    /// Reopen with a comment, without a follow-up inspection.
    Reopen,
    /// A follow-up inspection found it not fixed, and the task reopens.
    FollowUpNotFixed,
    /// Move the deadline (a header field).
    MoveDeadline,
    /// Evidence added under the actor of another device of the same user (`insp2`).
    ForgedActor,
}

/// principal, edit, target, accepted. Targets: {own}/{far} (the inspection whose community a new
/// task is in); {task}: a task in S opened by `insp`, in progress, needing a `cause` text;
/// {task_sub}, {task_sub2}: submitted tasks in S; {task_far}: a submitted task in F by `insp_far`.
/// Rows run in order and accepted writes change the target.
const TASK_WRITES: &[(&str, TaskEdit, &str, bool)] = &[
    ("insp", TaskEdit::Open, "{own}", true),
    ("insp", TaskEdit::Open, "{far}", false),
    ("insp_s2", TaskEdit::Open, "{own}", false),
    ("insp_far", TaskEdit::Open, "{own}", false),
    ("sup", TaskEdit::Open, "{own}", true),
    ("sup_far", TaskEdit::Open, "{own}", false),
    ("admin", TaskEdit::Open, "{far}", true),
    ("insp", TaskEdit::OpenAsOther, "{own}", false),
    ("insp", TaskEdit::OpenOnOtherDevice, "{own}", false),
    ("insp", TaskEdit::OpenClosed, "{own}", false),
    ("sup", TaskEdit::OpenClosed, "{own}", true),
    ("insp", TaskEdit::Evidence, "{task}", true),
    ("insp2", TaskEdit::Evidence, "{task}", true),
    ("insp_s2", TaskEdit::Evidence, "{task}", false),
    ("insp_far", TaskEdit::Evidence, "{task}", false),
    ("sup_far", TaskEdit::Evidence, "{task}", false),
    ("insp", TaskEdit::ForgedActor, "{task}", false),
    ("insp", TaskEdit::MoveDeadline, "{task}", false),
    ("sup", TaskEdit::MoveDeadline, "{task}", false),
    ("insp", TaskEdit::Submit, "{task}", true),
    ("insp", TaskEdit::Close, "{task_sub}", false),
    ("insp_s2", TaskEdit::Close, "{task_sub}", false),
    ("sup_far", TaskEdit::Close, "{task_sub}", false),
    ("insp", TaskEdit::Reopen, "{task_sub}", false),
    ("sup", TaskEdit::Close, "{task_sub}", true),
    ("insp", TaskEdit::FollowUpNotFixed, "{task_sub}", true),
    ("sup_far", TaskEdit::Reopen, "{task_sub2}", false),
    ("sup", TaskEdit::Reopen, "{task_sub2}", true),
    ("sup", TaskEdit::Close, "{task_far}", false),
    ("admin", TaskEdit::Close, "{task_far}", true),
];

struct Principal {
    token: String,
    device_id: String,
    user: String,
}

struct World {
    _dir: tempfile::TempDir,
    server: Server,
    who: HashMap<&'static str, Principal>,
    vars: HashMap<&'static str, String>,
    /// The holder of each inspection's latest bytes (the creator's store).
    devices: HashMap<&'static str, Device>,
}

fn new_inspection(community: &str) -> NewInspection {
    NewInspection {
        community_id: community.into(),
        standard_id: "hohhot-residential".into(),
        standard_version: "2026.1".into(),
        kind: InspectionKind::DailyPatrol,
        co_inspectors: vec![],
    }
}

fn compliant(item: &str) -> ItemAnswer {
    ItemAnswer {
        item_code: item.into(),
        value: AnswerValue::Compliant,
        sampled_units: None,
        note: None,
    }
}

fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("server"));
    let (street, communities, district) = sample_places();
    let cs = fenlei_core::community::parse_csv(fenlei_core::sample::CITY_CSV.as_bytes()).unwrap();
    let far = cs.iter().find(|c| c.district != district).unwrap().clone();
    let s2 = cs
        .iter()
        .find(|c| c.district == district && c.street != street)
        .unwrap()
        .street
        .clone();
    let users: &[(&str, &str, &str, &str)] = &[
        ("insp", "inspector", "--street", &street),
        ("insp_s2", "inspector", "--street", &s2),
        ("insp_far", "inspector", "--community", &far.id),
        ("sup", "supervisor", "--district", &district),
        ("sup_far", "supervisor", "--district", &far.district),
        ("admin", "admin", "--district", &district),
        ("revoked", "inspector", "--street", &street),
    ];
    for (id, role, kind, value) in users {
        server.admin(&["add-user", "--id", id, "--role", role]);
        server.admin(&["assign", "--user", id, kind, value]);
    }
    let mut devices = HashMap::new();
    let mut who = HashMap::new();
    for (name, user) in [
        ("insp", "insp"),
        ("insp2", "insp"),
        ("insp_s2", "insp_s2"),
        ("insp_far", "insp_far"),
        ("sup", "sup"),
        ("sup_far", "sup_far"),
        ("admin", "admin"),
        ("revoked", "revoked"),
    ] {
        let d = Device::enroll(&server, dir.path(), user);
        d.sync();
        who.insert(
            name,
            Principal {
                token: d.token.clone(),
                device_id: d.store.device_id().to_string(),
                user: user.to_string(),
            },
        );
        devices.insert(name, d);
    }
    who.insert(
        "forged",
        Principal {
            token: "bm90LWEtcmVhbC10b2tlbg".into(),
            device_id: String::new(),
            user: String::new(),
        },
    );
    server.admin(&["revoke-device", "--device", &who["revoked"].device_id]);

    // {own}: a draft in S; {sub}: a submitted one in S; {far}: a submitted one in F.
    let mut vars = HashMap::new();
    let create = |name: &str, community: &str, submit: bool| {
        let d = &devices[name];
        let id = d
            .store
            .create_inspection(&new_inspection(community), &d.user)
            .unwrap();
        if submit {
            d.store
                .set_status(
                    &id,
                    InspectionStatus::Submitted,
                    &EditContext::by(&d.user),
                    None,
                )
                .unwrap();
        }
        d.sync();
        id
    };
    vars.insert("{own}", create("insp", &communities[0], false));
    vars.insert("{sub}", create("insp", &communities[0], true));
    vars.insert("{far}", create("insp_far", &far.id, true));
    vars.insert("{c_own}", communities[0].clone());
    vars.insert("{sha_unknown}", "ab".repeat(32));
    vars.insert("{c_far}", far.id.clone());
    vars.insert("{s_far}", far.street.clone());
    World {
        _dir: dir,
        server,
        who,
        vars,
        devices,
    }
}

impl World {
    fn fill(&self, text: &str) -> String {
        self.vars
            .iter()
            .fold(text.to_string(), |t, (k, v)| t.replace(k, v))
    }

    fn token(&self, principal: &str) -> Option<&str> {
        (principal != "anon").then(|| self.who[principal].token.as_str())
    }

    /// The current bytes of an inspection, from the server's view (the admin's device).
    fn bytes(&self, id: &str) -> Vec<u8> {
        let admin = &self.devices["admin"];
        admin
            .client()
            .sync(&admin.store, &NoProgress, &CancelToken::new())
            .unwrap();
        admin.store.document_bytes(id).unwrap()
    }
}

/// The automerge exchange for `doc` by raw HTTP with `token`; the last status and every
/// request body sent.
fn push(url: &str, token: &str, id: &str, doc: &mut automerge::AutoCommit) -> (u16, Vec<Vec<u8>>) {
    let p = push_by_hand(url, token, id, doc);
    (p.status, p.sent)
}

#[test]
fn every_role_endpoint_and_ownership_case() {
    let w = world();
    let url = w.server.url();
    let http = reqwest::blocking::Client::new();
    let mut failures = Vec::new();
    for (principal, method, path, status, contains, lacks) in HTTP {
        let path = w.fill(path);
        let mut req = match *method {
            "GET" => http.get(format!("{url}{path}")),
            // Supervision routes take a decision; everything else posted here is a sync body.
            "POST" if path.ends_with("/review") => http
                .post(format!("{url}{path}"))
                .json(&serde_json::json!({"decision": "approve", "comment": "ok"})),
            "POST" if path.starts_with("/v1/rectifications/") => http
                .post(format!("{url}{path}"))
                .json(&serde_json::json!({"comment": "ok"})),
            "POST" => http
                .post(format!("{url}{path}"))
                .header("content-type", "application/json")
                .body(sync_body(vec![], true)),
            m => panic!("method {m}"),
        };
        if let Some(t) = w.token(principal) {
            req = req.bearer_auth(t);
        }
        let resp = req.send().unwrap();
        let got = resp.status().as_u16();
        let body = resp.text().unwrap();
        let row = format!("{principal} {method} {path}");
        if got != *status {
            failures.push(format!("{row}: status {got}, expected {status}"));
            continue;
        }
        for c in *contains {
            if !body.contains(&w.fill(c)) {
                failures.push(format!("{row}: body lacks {c}"));
            }
        }
        for l in *lacks {
            if body.contains(&w.fill(l)) {
                failures.push(format!("{row}: body leaks {l}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_document_write_case() {
    let w = world();
    let url = w.server.url();
    let plain = compliant_items(&w.devices["insp"].store)[0].clone();
    let mut failures = Vec::new();
    for (n, (principal, edit, target, accepted)) in WRITES.iter().enumerate() {
        let p = &w.who[principal];
        let target_id = w.fill(target);
        let ctx = EditContext::by(&p.user);
        let at = 1_800_000_000_000 + n as i64;
        let (id, mut doc) = match edit {
            Edit::Create => {
                let community = w
                    .devices
                    .values()
                    .find_map(|d| d.store.inspection(&target_id).ok())
                    .unwrap()
                    .community_id;
                let id = uuid_v4(n);
                let doc = InspectionDoc::create(
                    &id,
                    &new_inspection(&community),
                    &p.device_id,
                    &p.user,
                    at,
                )
                .unwrap();
                (id, doc)
            }
            _ => {
                let bytes = w.bytes(&target_id);
                // The forged case: the bytes carry a change by insp2's actor, pushed with insp's token.
                let actor = match edit {
                    Edit::ForgedActor => &w.who["insp2"].device_id,
                    _ => &p.device_id,
                };
                let mut doc = InspectionDoc::load(&target_id, &bytes, actor).unwrap();
                match edit {
                    Edit::Answer | Edit::ForgedActor => {
                        doc.set_answer(&compliant(&plain), &ctx, at).unwrap()
                    }
                    Edit::Submit => doc
                        .set_status(InspectionStatus::Submitted, &ctx, None, at)
                        .unwrap(),
                    Edit::Approve => doc
                        .set_status(InspectionStatus::Approved, &ctx, None, at)
                        .unwrap(),
                    Edit::Create => unreachable!(),
                }
                (target_id.clone(), doc)
            }
        };
        let (status, _) = push(&url, &p.token, &id, doc.automerge());
        let row = format!("{principal} {edit:?} {target}");
        match (*accepted, status) {
            (true, 200) | (false, 403) => {}
            _ => failures.push(format!(
                "{row}: status {status}, accepted expected {accepted}"
            )),
        }
        // What the server holds now: an accepted write is there, a refused one is not.
        let held = InspectionDoc::load(&id, &w.bytes_or_empty(&id), &w.who["admin"].device_id)
            .ok()
            .map(|mut d| fenlei_core::sync::heads_of(&mut d));
        let pushed = fenlei_core::sync::heads_of(&mut doc);
        let has_it = held.as_ref().is_some_and(|h| *h == pushed);
        if has_it != *accepted {
            failures.push(format!("{row}: server holds the write: {has_it}"));
        }
    }
    failures.extend(task_write_failures(&w, &plain));
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn new_task(community: &str, inspection: &str, item: &str) -> NewRectification {
    NewRectification {
        community_id: community.into(),
        inspection_id: inspection.into(),
        item_code: item.into(),
        item_title: "垃圾满溢".into(),
        responsible: "物业".into(),
        deadline_days: 3,
        deduction: Some(2.0),
        required_evidence: vec!["cause".into()],
        finding_evidence: vec![],
        source: "inspector".into(),
    }
}

fn cause(by: &str, at_ms: i64) -> ClosureEvidence {
    ClosureEvidence {
        kind: "cause".into(),
        text: Some("督导员缺岗".into()),
        sha256: None,
        by: by.into(),
        at_ms,
        ..Default::default()
    }
}

/// A raw change of one root field of a task, committed under `by` (what a modified app could
/// push).
fn raw_put(
    doc: &mut RectificationDoc,
    key: &str,
    value: automerge::ScalarValue,
    by: &str,
    at: i64,
) {
    use automerge::transaction::{CommitOptions, Transactable};
    let am = doc.automerge();
    am.put(automerge::ROOT, key, value).unwrap();
    am.commit_with(
        CommitOptions::default()
            .with_message(serde_json::json!({"by": by, "action": "edit"}).to_string())
            .with_time(at),
    );
}

/// The rectification task rows (`TASK_WRITES`), on the world after the inspection rows.
fn task_write_failures(w: &World, plain: &str) -> Vec<String> {
    let url = w.server.url();
    let mut failures = Vec::new();
    let community_of = |inspection: &str| {
        w.devices
            .values()
            .find_map(|d| d.store.inspection(inspection).ok())
            .unwrap()
            .community_id
    };
    let make_task = |name: &str, inspection: &str, submit: bool| -> String {
        let d = &w.devices[name];
        let id = d
            .store
            .open_rectification(
                &new_task(&community_of(inspection), inspection, plain),
                &d.user,
            )
            .unwrap();
        if submit {
            d.store
                .add_closure_evidence(&id, &cause(&d.user, 0))
                .unwrap();
        }
        let to = if submit {
            RectificationStatus::Submitted
        } else {
            RectificationStatus::InProgress
        };
        d.store
            .set_rectification_status(&id, to, &d.user, None)
            .unwrap();
        d.sync();
        id
    };
    let tasks: HashMap<&str, String> = HashMap::from([
        ("{task}", make_task("insp", &w.vars["{own}"], false)),
        ("{task_sub}", make_task("insp", &w.vars["{own}"], true)),
        ("{task_sub2}", make_task("insp", &w.vars["{own}"], true)),
        ("{task_far}", make_task("insp_far", &w.vars["{far}"], true)),
    ]);
    let admin = &w.who["admin"].device_id;
    for (n, (principal, edit, target, accepted)) in TASK_WRITES.iter().enumerate() {
        let p = &w.who[principal];
        let by = p.user.as_str();
        let at = 1_800_000_100_000 + n as i64;
        let (id, mut doc) = match edit {
            TaskEdit::Open
            | TaskEdit::OpenAsOther
            | TaskEdit::OpenOnOtherDevice
            | TaskEdit::OpenClosed => {
                let inspection = w.fill(target);
                let id = uuid_v4(1000 + n);
                let new = new_task(&community_of(&inspection), &inspection, plain);
                let mut doc = RectificationDoc::create(&id, &new, &p.device_id, by, at).unwrap();
                match edit {
                    TaskEdit::OpenAsOther => {
                        raw_put(&mut doc, "opened_by", "insp_s2".into(), by, at)
                    }
                    TaskEdit::OpenOnOtherDevice => raw_put(
                        &mut doc,
                        "opened_device",
                        w.who["insp2"].device_id.as_str().into(),
                        by,
                        at,
                    ),
                    TaskEdit::OpenClosed => {
                        doc.add_closure_evidence(&cause(by, at)).unwrap();
                        doc.set_status(RectificationStatus::Submitted, by, None, at)
                            .unwrap();
                        doc.set_status(RectificationStatus::Closed, by, None, at)
                            .unwrap();
                    }
                    _ => {}
                }
                (id, doc)
            }
            _ => {
                let id = tasks[target].clone();
                let bytes = w.task_bytes(&id);
                // The forged case: a change by insp2's actor pushed with insp's token.
                let actor = match edit {
                    TaskEdit::ForgedActor => &w.who["insp2"].device_id,
                    _ => &p.device_id,
                };
                let mut doc = RectificationDoc::load(&id, &bytes, actor).unwrap();
                match edit {
                    TaskEdit::Evidence | TaskEdit::ForgedActor => {
                        doc.add_closure_evidence(&cause(by, at)).unwrap()
                    }
                    TaskEdit::Submit => {
                        doc.add_closure_evidence(&cause(by, at)).unwrap();
                        doc.set_status(RectificationStatus::Submitted, by, None, at)
                            .unwrap()
                    }
                    TaskEdit::Close => doc
                        .set_status(RectificationStatus::Closed, by, None, at)
                        .unwrap(),
                    TaskEdit::Reopen => doc
                        .set_status(RectificationStatus::Reopened, by, Some("未整改到位"), at)
                        .unwrap(),
                    TaskEdit::FollowUpNotFixed => {
                        doc.link_follow_up(&FollowUp {
                            inspection_id: w.vars["{own}"].clone(),
                            rectified: false,
                            by: by.into(),
                            at_ms: at,
                            note: None,
                        })
                        .unwrap();
                        doc.set_status(RectificationStatus::Reopened, by, Some("复查未整改"), at)
                            .unwrap()
                    }
                    TaskEdit::MoveDeadline => {
                        let later = doc.read().unwrap().deadline_ms + 86_400_000;
                        raw_put(
                            &mut doc,
                            "deadline",
                            automerge::ScalarValue::Timestamp(later),
                            by,
                            at,
                        )
                    }
                    _ => unreachable!(),
                }
                (id, doc)
            }
        };
        let (status, _) = push(&url, &p.token, &id, doc.automerge());
        let row = format!("{principal} {edit:?} {target}");
        match (*accepted, status) {
            (true, 200) | (false, 403) => {}
            _ => failures.push(format!(
                "{row}: status {status}, accepted expected {accepted}"
            )),
        }
        // Held when the server's document contains every pushed change (the server may have
        // added its own on top, e.g. after a reopen).
        let pushed = doc.heads();
        let has_it = RectificationDoc::load(&id, &w.task_bytes(&id), admin)
            .ok()
            .is_some_and(|mut d| {
                pushed
                    .iter()
                    .all(|h| d.automerge().get_change_by_hash(h).is_some())
            });
        if has_it != *accepted {
            failures.push(format!("{row}: server holds the write: {has_it}"));
        }
    }
    failures
}

#[test]
fn replayed_requests_change_nothing_and_die_with_their_credential() {
    let w = world();
    let url = w.server.url();
    let insp = &w.devices["insp"];
    let own = &w.vars["{own}"];
    // A real exchange, its request bodies kept.
    let bytes = w.bytes(own);
    let mut doc = InspectionDoc::load(own, &bytes, insp.store.device_id()).unwrap();
    let item = compliant_items(&insp.store)[0].clone();
    doc.set_answer(&compliant(&item), &EditContext::by("insp"), 1)
        .unwrap();
    let (status, bodies) = push(&url, &insp.token, own, doc.automerge());
    assert_eq!(status, 200);
    let heads_after = |w: &World| {
        let b = w.bytes(own);
        let mut d = InspectionDoc::load(own, &b, &w.who["admin"].device_id).unwrap();
        fenlei_core::sync::heads_of(&mut d)
    };
    let before = heads_after(&w);
    // Later work moves the document on; replaying the old requests must not roll it back.
    insp.sync();
    insp.store
        .set_status(
            own,
            InspectionStatus::Submitted,
            &EditContext::by("insp"),
            None,
        )
        .unwrap();
    insp.sync();
    let moved = heads_after(&w);
    assert_ne!(before, moved);
    for body in &bodies {
        assert_eq!(post_sync(&url, Some(&insp.token), body.clone()).0, 200);
    }
    assert_eq!(heads_after(&w), moved, "replays changed nothing");
    // A replay with another user's valid token is refused (the changes name insp).
    let (status, _) = post_sync(&url, Some(&w.who["insp_s2"].token), bodies[0].clone());
    assert_eq!(status, 403, "another user's credential");
    // Once the device is revoked its captured requests are worthless.
    w.server
        .admin(&["revoke-device", "--device", insp.store.device_id()]);
    for body in &bodies {
        assert_eq!(post_sync(&url, Some(&insp.token), body.clone()).0, 401);
    }
    assert_eq!(heads_after(&w), moved);
    // An enrollment code replayed: it worked once only.
    let code = w.server.enroll_code("insp_s2");
    let enroll = |code: &str| {
        reqwest::blocking::Client::new()
            .post(format!("{url}/v1/enroll"))
            .json(&serde_json::json!({"code": code, "device_id": "0b6f3f0e-2c4e-4d8a-9c1e-3b5a7d9e1f20"}))
            .send()
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(enroll(&code), 200);
    assert_eq!(enroll(&code), 401);
}

#[test]
fn revoke_device_command_refuses_an_unknown_device() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("server"));
    let out = server
        .command()
        .args(["revoke-device", "--device", "no-such-device"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no device"));
}

impl World {
    /// The current bytes of a rectification task from the server's view (the admin's device),
    /// empty when the server does not hold it.
    fn task_bytes(&self, id: &str) -> Vec<u8> {
        let admin = &self.devices["admin"];
        admin
            .client()
            .sync(&admin.store, &NoProgress, &CancelToken::new())
            .unwrap();
        match admin.store.load_task_document(id).unwrap() {
            Some(mut d) => d.save(),
            None => Vec::new(),
        }
    }

    fn bytes_or_empty(&self, id: &str) -> Vec<u8> {
        let admin = &self.devices["admin"];
        admin
            .client()
            .sync(&admin.store, &NoProgress, &CancelToken::new())
            .unwrap();
        admin.store.document_bytes(id).unwrap_or_default()
    }
}

/// A fixed, valid UUID per write row (documents are keyed by UUID).
fn uuid_v4(n: usize) -> String {
    format!("7c1d0000-0000-4000-8000-{n:012}")
}
