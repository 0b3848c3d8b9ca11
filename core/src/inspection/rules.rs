//! The inspection document's rules (docs/inspection-document.md, "Rules"), each stated once:
//! - [`check_schema`]: the layout and every value's type, on the whole document;
//! - [`check_received`]: what any change must respect whoever made it (header written once,
//!   entries never edited in place, lists and sets only grow, new entries name their author);
//! - [`check_write`]: the server's judgement of a request's changes against the stored
//!   document: the above plus the workflow, the writer's role and the pinned standard;
//! - [`edit_allowed`] and [`return_comment`]: the workflow rules the edit methods ask before
//!   writing, the same functions the server applies to what it receives.

use super::doc::{DOC_TYPE, DOCUMENT_SCHEMA, evidence_key, read_event};
use super::{
    Inspection, InspectionDoc, InspectionKind, InspectionStatus, MediaKind, WorkflowEvent,
    WorkflowEventKind,
};
use crate::docrules::{
    self, Authored, Checked, Field, NewChanges, ObjKey, OpAction, OpKey, Rule, RuleBreak, Shape,
    Writer, WriterRole, identity, key_of,
};
use crate::standard::Standard;
use automerge::{AutoCommit, Change, ObjId, ObjType, ReadDoc, ScalarValue, Value};
use std::collections::{BTreeSet, HashMap};

const ROOT_KEYS: &[&str] = &[
    "schema",
    "type",
    "id",
    "community_id",
    "standard_id",
    "standard_version",
    "kind",
    "created_by",
    "created_device",
    "started_at",
    "ended_at",
    "status",
    "inspectors",
    "answers",
    "gps",
    "evidence",
    "events",
];
const ANSWER_KEYS: &[&str] = &[
    "value",
    "counts",
    "points",
    "percent",
    "sampled_units",
    "note",
    "by",
    "device",
    "at",
    "lat",
    "lon",
];
const FIX_KEYS: &[&str] = &[
    "lat",
    "lon",
    "accuracy_m",
    "altitude_m",
    "provider",
    "at",
    "mock",
];
const EVIDENCE_KEYS: &[&str] = &["sha256", "item", "media", "by", "at", "thumb", "upload"];
const EVENT_KEYS: &[&str] = &["kind", "to", "by", "device", "at", "text", "item"];

/// What an object of the document is.
#[derive(Debug, Clone, PartialEq)]
enum Part {
    Answers,
    Answer(String),
    Counts(String),
    Gps,
    Fix,
    Evidence,
    EvidenceEntry(String),
    Events,
    Event,
    Inspectors,
}

/// The document's objects as the schema check found them.
pub(crate) struct Walk {
    parts: HashMap<ObjKey, Part>,
    authored: Vec<Authored>,
    /// Every event in list order, with its object id.
    events: Vec<(ObjId, WorkflowEvent)>,
}

/// Checks the whole document against the layout: every key known, every value of its type.
pub(crate) fn check_schema(doc: &AutoCommit, id: &str) -> Checked<Walk> {
    let root = Shape::document_root(doc, ROOT_KEYS, DOC_TYPE, DOCUMENT_SCHEMA, id)?;
    for key in [
        "community_id",
        "standard_id",
        "standard_version",
        "created_by",
    ] {
        root.non_blank(key)?;
    }
    root.req_str("created_device")?;
    let kind = root.req_str("kind")?;
    if InspectionKind::parse(&kind).is_none() {
        return Err(root.invalid("kind", format!("unknown inspection kind {kind:?}")));
    }
    let status = root.req_str("status")?;
    if InspectionStatus::parse(&status).is_none() {
        return Err(root.invalid("status", format!("unknown status {status:?}")));
    }
    root.req_time("started_at")?;
    root.time("ended_at")?;

    let mut walk = Walk {
        parts: HashMap::new(),
        authored: Vec::new(),
        events: Vec::new(),
    };
    let mut part = |id: &ObjId, p: Part| {
        if let Some(k) = key_of(id) {
            walk.parts.insert(k, p);
        }
    };
    let inspectors = root.obj("inspectors", ObjType::Map)?;
    part(&inspectors, Part::Inspectors);
    let set = Shape::of(doc, &inspectors, "inspectors");
    for (user, value) in &set.fields.0 {
        if user.trim().is_empty() || !matches!(value, Field::Scalar(ScalarValue::Boolean(true))) {
            return Err(set.invalid(user, "a co-inspector is a user id mapped to true"));
        }
    }
    let answers = root.obj("answers", ObjType::Map)?;
    let gps = root.obj("gps", ObjType::List)?;
    let evidence = root.obj("evidence", ObjType::Map)?;
    let events = root.obj("events", ObjType::List)?;
    part(&answers, Part::Answers);
    part(&gps, Part::Gps);
    part(&evidence, Part::Evidence);
    part(&events, Part::Events);

    // Every value a map key holds, the conflicting ones too: a losing value is still shown
    // (conflicts list every candidate) and may win later.
    for (item, entry) in map_entries(doc, &answers, "answers")? {
        let path = format!("answers[{item:?}]");
        let (by, device, counts) = check_answer(doc, &entry, &path)?;
        part(&entry, Part::Answer(item.clone()));
        if let Some(c) = counts {
            part(&c, Part::Counts(item.clone()));
        }
        walk_authored(&mut walk.authored, entry, path, by, Some(device));
    }
    for (n, fix) in list_entries(doc, &gps, "gps")? {
        check_fix(doc, &fix, &format!("gps[{n}]"))?;
        part(&fix, Part::Fix);
    }
    for (key, entry) in map_entries(doc, &evidence, "evidence")? {
        let path = format!("evidence[{key:?}]");
        let by = check_evidence(doc, &entry, &key, &path)?;
        part(&entry, Part::EvidenceEntry(key.clone()));
        walk_authored(&mut walk.authored, entry, path, by, None);
    }
    for (n, entry) in list_entries(doc, &events, "events")? {
        let path = format!("events[{n}]");
        let event = check_event(doc, &entry, &path)?;
        part(&entry, Part::Event);
        walk_authored(
            &mut walk.authored,
            entry.clone(),
            path,
            event.by.clone(),
            Some(event.device_id.clone()),
        );
        walk.events.push((entry, event));
    }
    Ok(walk)
}

fn walk_authored(
    authored: &mut Vec<Authored>,
    id: ObjId,
    path: String,
    by: String,
    device: Option<String>,
) {
    authored.push(Authored {
        id,
        path,
        by,
        device,
    });
}

/// Every (key, map) of a map of entries, conflicting values included; anything but a map is
/// refused.
pub(crate) fn map_entries(
    doc: &AutoCommit,
    map: &ObjId,
    path: &str,
) -> Checked<Vec<(String, ObjId)>> {
    let not_a_map =
        |key: &str| RuleBreak::new(Rule::Schema, format!("{path}[{key:?}] must be a map"));
    let mut out = Vec::new();
    for item in doc.map_range(map, ..) {
        if !item.conflict {
            // One value: the range has it (a seek per key costs ~10× a pass over the map).
            if !matches!(item.value, automerge::ValueRef::Object(ObjType::Map)) {
                return Err(not_a_map(&item.key));
            }
            out.push((item.key.to_string(), item.id()));
            continue;
        }
        for (value, id) in doc.get_all(map, item.key.as_ref()).unwrap_or_default() {
            if !matches!(value, Value::Object(ObjType::Map)) {
                return Err(not_a_map(&item.key));
            }
            out.push((item.key.to_string(), id));
        }
    }
    Ok(out)
}

/// Every (index, map) of a list of entries; anything but a map is refused.
pub(crate) fn list_entries(
    doc: &AutoCommit,
    list: &ObjId,
    path: &str,
) -> Checked<Vec<(usize, ObjId)>> {
    doc.list_range(list, ..)
        .enumerate()
        .map(|(n, item)| match item.value {
            automerge::ValueRef::Object(ObjType::Map) => Ok((n, item.id())),
            _ => Err(RuleBreak::new(
                Rule::Schema,
                format!("{path}[{n}] must be a map"),
            )),
        })
        .collect()
}

/// An answer entry; returns its `by`, `device` and the `counts` map.
fn check_answer(
    doc: &AutoCommit,
    entry: &ObjId,
    path: &str,
) -> Checked<(String, String, Option<ObjId>)> {
    let s = Shape::of(doc, entry, path);
    s.only(ANSWER_KEYS)?;
    let value = s.req_str("value")?;
    let needs: &[&str] = match value.as_str() {
        "not_applicable" | "compliant" | "observed" => &[],
        "occurrences" => &["counts"],
        "deduction" | "bonus" => &["points"],
        "rate" => &["percent"],
        other => return Err(s.invalid("value", format!("unknown answer value {other:?}"))),
    };
    for key in ["counts", "points", "percent"] {
        if !needs.contains(&key) && s.fields.get(key).is_some() {
            return Err(s.invalid(key, format!("is not part of a {value:?} answer")));
        }
    }
    let mut counts = None;
    if needs.contains(&"counts") {
        let map = s.obj("counts", ObjType::Map)?;
        let c = Shape::of(doc, &map, s.path("counts"));
        for (finding, _) in &c.fields.0 {
            if finding.trim().is_empty() {
                return Err(c.invalid(finding, "a finding code must not be empty"));
            }
            if c.uint(finding)?.is_none_or(|n| n > u64::from(u32::MAX)) {
                return Err(c.invalid(finding, "a count is a uint up to 2^32-1"));
            }
        }
        counts = Some(map);
    }
    if needs.contains(&"points") {
        s.req_f64("points")?;
    }
    if needs.contains(&"percent") {
        let p = s.req_f64("percent")?;
        if !(0.0..=100.0).contains(&p) {
            return Err(s.invalid("percent", "must be from 0 to 100"));
        }
    }
    if s.uint("sampled_units")?
        .is_some_and(|n| n > u64::from(u32::MAX))
    {
        return Err(s.invalid("sampled_units", "must be at most 2^32-1"));
    }
    s.str("note")?;
    let by = s.non_blank("by")?;
    let device = s.req_str("device")?;
    s.req_time("at")?;
    check_location(&s)?;
    Ok((by, device, counts))
}

/// Optional `lat`/`lon`: both or neither, a valid WGS-84 point.
fn check_location(s: &Shape) -> Checked {
    match (s.f64("lat")?, s.f64("lon")?) {
        (None, None) => Ok(()),
        (Some(lat), Some(lon)) => crate::geo::validate(crate::geo::LatLon { lat, lon })
            .map(|_| ())
            .map_err(|e| s.invalid("lat", e)),
        _ => Err(s.invalid("lat", "lat and lon come together")),
    }
}

fn check_fix(doc: &AutoCommit, fix: &ObjId, path: &str) -> Checked {
    let s = Shape::of(doc, fix, path);
    s.only(FIX_KEYS)?;
    s.req_f64("lat")?;
    s.req_f64("lon")?;
    check_location(&s)?;
    if s.f64("accuracy_m")?.is_some_and(|a| a < 0.0) {
        return Err(s.invalid("accuracy_m", "must not be negative"));
    }
    s.f64("altitude_m")?;
    s.req_str("provider")?;
    s.req_time("at")?;
    s.req_bool("mock")?;
    Ok(())
}

/// An evidence entry under `key` (`"{item}/{sha256}"`); returns its `by`.
fn check_evidence(doc: &AutoCommit, entry: &ObjId, key: &str, path: &str) -> Checked<String> {
    let s = Shape::of(doc, entry, path);
    s.only(EVIDENCE_KEYS)?;
    let sha = s
        .sha256("sha256")?
        .ok_or_else(|| s.invalid("sha256", "missing"))?;
    let item = s.non_blank("item")?;
    if evidence_key(&item, &sha) != key {
        return Err(s.invalid("item", "the key must be \"{item}/{sha256}\" of the entry"));
    }
    let media = s.req_str("media")?;
    if MediaKind::parse(&media).is_none() {
        return Err(s.invalid("media", format!("unknown media {media:?}")));
    }
    s.sha256("thumb")?;
    s.sha256("upload")?;
    s.req_time("at")?;
    s.non_blank("by")
}

fn check_event(doc: &AutoCommit, entry: &ObjId, path: &str) -> Checked<WorkflowEvent> {
    let s = Shape::of(doc, entry, path);
    s.only(EVENT_KEYS)?;
    match s.req_str("kind")?.as_str() {
        "status" => {
            let to = s.req_str("to")?;
            if InspectionStatus::parse(&to).is_none() {
                return Err(s.invalid("to", format!("unknown status {to:?}")));
            }
            if s.fields.get("item").is_some() {
                return Err(s.invalid("item", "is not part of a status event"));
            }
        }
        "amendment" => {
            if s.fields.get("to").is_some() {
                return Err(s.invalid("to", "is not part of an amendment event"));
            }
            s.non_blank("item")?;
            s.non_blank("text")?;
        }
        other => return Err(s.invalid("kind", format!("unknown event kind {other:?}"))),
    }
    s.non_blank("by")?;
    s.req_str("device")?;
    s.req_time("at")?;
    s.str("text")?;
    read_event(&s.fields).ok_or_else(|| s.invalid("kind", "unreadable event"))
}

/// What changes did to an inspection that existed before them, by part.
#[derive(Debug, Default)]
pub(crate) struct Edits {
    answers: BTreeSet<String>,
    evidence_added: BTreeSet<String>,
    evidence_removed: BTreeSet<String>,
    fixes_added: usize,
    inspectors_added: BTreeSet<String>,
    ended_at_put: bool,
}

/// The structure rules: what each operation of the new changes may write where.
fn structure(walk: &Walk, new: &NewChanges) -> Checked<Edits> {
    let mut edits = Edits::default();
    for op in &new.ops {
        if new.writes_into_new(op) {
            continue; // a new entry's content is the schema's business
        }
        let key = match &op.key {
            OpKey::Map(k) => Some(k.as_str()),
            OpKey::Seq { .. } => None,
        };
        let Some(obj) = &op.obj else {
            match (key, &op.action) {
                (Some("status"), OpAction::Put(ScalarValue::Str(s)))
                    if InspectionStatus::parse(s).is_some() => {}
                (Some("status"), _) => {
                    return Err(RuleBreak::new(
                        Rule::Schema,
                        "status must be a str: draft, submitted, approved or returned",
                    ));
                }
                (
                    Some("ended_at"),
                    OpAction::Put(ScalarValue::Timestamp(_) | ScalarValue::Int(_)),
                ) => edits.ended_at_put = true,
                (Some(k), _) => {
                    return Err(RuleBreak::new(
                        Rule::HeaderFixed,
                        format!("{k} is written once, when the inspection is created"),
                    ));
                }
                (None, _) => return Err(RuleBreak::new(Rule::Schema, "the root is a map")),
            }
            continue;
        };
        let grows = matches!(op.key, OpKey::Seq { insert: true })
            && op.action == OpAction::Make(ObjType::Map)
            && !op.overwrites;
        match (walk.parts.get(obj), key) {
            (Some(Part::Answers), Some(k)) => match op.action {
                OpAction::Make(ObjType::Map) | OpAction::Delete => {
                    edits.answers.insert(k.to_string());
                }
                _ => {
                    return Err(RuleBreak::new(
                        Rule::Schema,
                        format!("answers[{k:?}] must be a map"),
                    ));
                }
            },
            (Some(Part::Evidence), Some(_)) if op.overwrites_others => {
                return Err(RuleBreak::new(
                    Rule::EntriesImmutable,
                    "an evidence entry is replaced or removed only by the device that attached it",
                ));
            }
            (Some(Part::Evidence), Some(k)) => match op.action {
                OpAction::Make(ObjType::Map) => {
                    edits.evidence_added.insert(k.to_string());
                }
                OpAction::Delete => {
                    edits.evidence_removed.insert(k.to_string());
                }
                _ => {
                    return Err(RuleBreak::new(
                        Rule::Schema,
                        format!("evidence[{k:?}] must be a map"),
                    ));
                }
            },
            (Some(Part::Gps), None) if grows => edits.fixes_added += 1,
            (Some(Part::Events), None) if grows => {}
            (Some(Part::Gps | Part::Events), _) => {
                return Err(RuleBreak::new(
                    Rule::AppendOnly,
                    "events and GPS fixes only grow: an entry is never replaced or removed",
                ));
            }
            (Some(Part::Inspectors), Some(k))
                if op.action == OpAction::Put(ScalarValue::Boolean(true)) && !op.overwrites =>
            {
                edits.inspectors_added.insert(k.to_string());
            }
            (Some(Part::Inspectors), _) => {
                return Err(RuleBreak::new(
                    Rule::AppendOnly,
                    "co-inspectors are added, never removed or changed",
                ));
            }
            (Some(Part::Answer(item) | Part::Counts(item)), _) => {
                return Err(RuleBreak::new(
                    Rule::EntriesImmutable,
                    format!("answers[{item:?}] is never edited in place: record the item again"),
                ));
            }
            (Some(Part::EvidenceEntry(k)), _) => {
                return Err(RuleBreak::new(
                    Rule::EntriesImmutable,
                    format!("evidence[{k:?}] is never edited in place"),
                ));
            }
            (Some(Part::Fix | Part::Event), _) => {
                return Err(RuleBreak::new(
                    Rule::EntriesImmutable,
                    "events and GPS fixes are never edited",
                ));
            }
            (_, _) => {
                return Err(RuleBreak::new(
                    Rule::EntriesImmutable,
                    "a change writes into an object that is not part of the inspection any more",
                ));
            }
        }
    }
    Ok(edits)
}

/// Checks changes a device received against the document it held: the schema and the rules
/// every change obeys whoever made it.
pub(crate) fn check_received(
    id: &str,
    before_heads: &[automerge::ChangeHash],
    after: &mut AutoCommit,
) -> crate::Result<()> {
    docrules::check_received(id, before_heads, after, check_schema, |walk, new| {
        identity(&walk.authored, new)?;
        structure(walk, new).map(|_| ())
    })
}

/// The edits the workflow governs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Edit {
    Answer,
    AddEvidence,
    RemoveEvidence,
    AddFix,
}

/// Which edits an inspection in `status` takes: everything in a draft; after submission
/// answers change only as amendments (each with its event and reason, checked apart), evidence
/// and fixes are added but evidence is never removed; an approved inspection takes nothing
/// until a supervisor returns it.
pub(crate) fn edit_allowed(status: InspectionStatus, edit: Edit) -> Checked {
    use InspectionStatus::*;
    match (status, edit) {
        (Draft, _) => Ok(()),
        (Approved, _) => Err(RuleBreak::new(
            Rule::Amendment,
            "an approved inspection is not edited: a supervisor returns it first",
        )),
        (Submitted | Returned, Edit::RemoveEvidence) => Err(RuleBreak::new(
            Rule::Amendment,
            "evidence of a submitted inspection is never removed",
        )),
        (Submitted | Returned, _) => Ok(()),
    }
}

/// A return needs a comment saying what to fix.
pub(crate) fn return_comment(to: InspectionStatus, comment: Option<&str>) -> Checked {
    if to == InspectionStatus::Returned && comment.is_none_or(|c| c.trim().is_empty()) {
        return Err(RuleBreak::new(
            Rule::ReviewComment,
            "returning an inspection needs a comment",
        ));
    }
    Ok(())
}

fn role(reason: impl Into<String>) -> RuleBreak {
    RuleBreak::new(Rule::Role, reason)
}

/// The server's judgement of one request's changes to one inspection: `before` is the stored
/// inspection (`None`: the request creates it), `after` the result of merging the request's
/// `changes` (all by `writer`) into it, `standard` the version it is pinned to when the server
/// has it. Any break refuses the whole request.
pub fn check_write(
    before: Option<&Inspection>,
    after: &InspectionDoc,
    changes: &[Change],
    writer: &Writer,
    standard: Option<&Standard>,
) -> crate::Result<()> {
    let id = after.id();
    let new = NewChanges::of(id, changes)?;
    let walk = check_schema(after.doc(), id).map_err(|b| b.into_error(id))?;
    let read = after.read()?;
    judge(before, &read, &walk, &new, writer, standard).map_err(|b| b.into_error(id))
}

fn judge(
    before: Option<&Inspection>,
    after: &Inspection,
    walk: &Walk,
    new: &NewChanges,
    writer: &Writer,
    standard: Option<&Standard>,
) -> Checked {
    identity(&walk.authored, new)?;
    let new_events: Vec<&WorkflowEvent> = walk
        .events
        .iter()
        .filter(|(obj, _)| new.created(obj))
        .map(|(_, e)| e)
        .collect();
    let Some(standard) = standard else {
        return Err(RuleBreak::new(
            Rule::Standard,
            format!(
                "standard {} version {} is not published on this server",
                after.standard_id, after.standard_version
            ),
        ));
    };
    let (from, edits) = match before {
        None => {
            if writer.role != WriterRole::Inspector {
                return Err(role("only inspectors create inspections"));
            }
            if after.created_by != writer.user_id || after.created_device_id != writer.device_id {
                return Err(RuleBreak::new(
                    Rule::Identity,
                    "a new inspection is created by this device's user on this device",
                ));
            }
            if !after.inspectors.contains(&after.created_by) {
                return Err(RuleBreak::new(
                    Rule::Schema,
                    "inspectors must hold the inspection's creator",
                ));
            }
            // Everything in a new inspection is new: judged as edits of an empty draft.
            let edits = Edits {
                answers: after
                    .answers
                    .iter()
                    .map(|a| a.answer.item_code.clone())
                    .collect(),
                evidence_added: after
                    .evidence
                    .iter()
                    .map(|e| evidence_key(&e.item_code, &e.sha256))
                    .collect(),
                ended_at_put: after.ended_at_ms.is_some(),
                ..Edits::default()
            };
            (InspectionStatus::Draft, edits)
        }
        Some(b) => (b.status, structure(walk, new)?),
    };

    // Status: the new status events, in list order, are each a move the workflow allows,
    // made by the role that makes it, and the status is where they lead.
    let mut status = from;
    let mut submitted = false;
    for e in &new_events {
        let WorkflowEventKind::StatusChanged { to } = e.kind else {
            if writer.role != WriterRole::Inspector {
                return Err(role(
                    "supervisors change only the review status and comments",
                ));
            }
            continue;
        };
        if !status.can_become(to) {
            return Err(RuleBreak::new(
                Rule::Workflow,
                format!("an inspection cannot go from {status} to {to}"),
            ));
        }
        match (to, writer.role) {
            (InspectionStatus::Approved | InspectionStatus::Returned, WriterRole::Inspector) => {
                return Err(role("inspectors cannot approve or return inspections"));
            }
            (InspectionStatus::Submitted, WriterRole::Reviewer) => {
                return Err(role(
                    "supervisors review inspections; inspectors submit them",
                ));
            }
            _ => {}
        }
        return_comment(to, e.text.as_deref())?;
        submitted |= to == InspectionStatus::Submitted;
        status = to;
    }
    if after.status != status {
        return Err(RuleBreak::new(
            Rule::Workflow,
            format!(
                "status is {} but the workflow events lead to {status}",
                after.status
            ),
        ));
    }
    if edits.ended_at_put {
        if before.is_some_and(|b| b.ended_at_ms.is_some()) {
            return Err(RuleBreak::new(
                Rule::HeaderFixed,
                "ended_at is set once, by the first submission",
            ));
        }
        if !submitted {
            return Err(RuleBreak::new(
                Rule::Workflow,
                "ended_at is set by a submission",
            ));
        }
    }

    let touches_content = !edits.answers.is_empty()
        || !edits.evidence_added.is_empty()
        || !edits.evidence_removed.is_empty()
        || edits.fixes_added > 0
        || !edits.inspectors_added.is_empty();
    if touches_content && writer.role != WriterRole::Inspector {
        return Err(role(
            "supervisors change only the review status and comments",
        ));
    }
    let amended = |item: &str| {
        new_events
            .iter()
            .any(|e| e.kind == WorkflowEventKind::Amended && e.item_code.as_deref() == Some(item))
    };
    for item in &edits.answers {
        edit_allowed(from, Edit::Answer)?;
        if from.needs_amendment_reason() && !amended(item) {
            return Err(RuleBreak::new(
                Rule::Amendment,
                format!(
                    "answers[{item:?}] changed after submission without an amendment event naming it"
                ),
            ));
        }
        for candidate in after
            .answers
            .iter()
            .filter(|a| &a.answer.item_code == item)
            .map(|a| &a.answer)
            .chain(
                after
                    .conflicts
                    .iter()
                    .filter(|c| &c.item_code == item)
                    .flat_map(|c| c.candidates.iter().map(|a| &a.answer)),
            )
        {
            crate::scoring::validate_answer(standard, candidate)
                .map_err(|e| RuleBreak::new(Rule::Standard, e.to_string()))?;
        }
    }
    if !edits.evidence_added.is_empty() {
        edit_allowed(from, Edit::AddEvidence)?;
        for e in after.evidence.iter().filter(|e| {
            edits
                .evidence_added
                .contains(&evidence_key(&e.item_code, &e.sha256))
        }) {
            if standard.item(&e.item_code).is_none() {
                return Err(RuleBreak::new(
                    Rule::Standard,
                    format!(
                        "evidence for item {:?}, which the standard does not have",
                        e.item_code
                    ),
                ));
            }
        }
    }
    if !edits.evidence_removed.is_empty() {
        edit_allowed(from, Edit::RemoveEvidence)?;
    }
    if edits.fixes_added > 0 {
        edit_allowed(from, Edit::AddFix)?;
    }
    if !edits.inspectors_added.is_empty() && before.is_some_and(|b| b.created_by != writer.user_id)
    {
        return Err(role("only the inspection's creator adds co-inspectors"));
    }
    Ok(())
}
