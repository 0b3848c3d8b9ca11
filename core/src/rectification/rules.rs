//! The rectification task document's rules (docs/rectification.md, "Rules"), each stated once,
//! in the same three layers as an inspection's (`crate::docrules`): the schema of the whole
//! document, the structure every change obeys whoever made it, and the server's judgement of a
//! request's changes by workflow and role.

use super::doc::DOC_TYPE;
use super::{EVIDENCE_KINDS, Rectification, RectificationDoc, RectificationStatus, TASK_SCHEMA};
use crate::docrules::{
    self, Authored, Checked, Field, NewChanges, ObjKey, OpAction, OpKey, Rule, RuleBreak, Shape,
    Writer, WriterRole, identity, is_sha256, key_of,
};
use crate::inspection::{list_entries, map_entries};
use automerge::{AutoCommit, Change, ObjId, ObjType, ScalarValue};
use std::collections::HashMap;

const ROOT_KEYS: &[&str] = &[
    "schema",
    "type",
    "id",
    "community_id",
    "inspection_id",
    "item_code",
    "item_title",
    "responsible",
    "source",
    "opened_by",
    "opened_device",
    "opened_at",
    "deadline",
    "closed_at",
    "deduction",
    "status",
    "required",
    "finding",
    "closure",
    "follow_ups",
    "events",
];
const CLOSURE_KEYS: &[&str] = &["kind", "text", "sha256", "by", "at", "thumb", "upload"];
const FOLLOW_UP_KEYS: &[&str] = &["rectified", "by", "at", "note"];
const EVENT_KEYS: &[&str] = &["to", "by", "device", "at", "text"];

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Fixed(&'static str),
    Closure,
    ClosureEntry(String),
    FollowUps,
    FollowUp(String),
    Events,
    Event,
}

/// One status event with its object id.
struct StatusEvent {
    id: ObjId,
    to: RectificationStatus,
    text: Option<String>,
}

pub(crate) struct Walk {
    parts: HashMap<ObjKey, Part>,
    authored: Vec<Authored>,
    events: Vec<StatusEvent>,
    /// Follow-ups (object id, found rectified).
    follow_ups: Vec<(ObjId, bool)>,
}

/// Checks the whole task document against its layout.
pub(crate) fn check_schema(doc: &AutoCommit, id: &str) -> Checked<Walk> {
    let root = Shape::document_root(doc, ROOT_KEYS, DOC_TYPE, TASK_SCHEMA, id)?;
    for key in [
        "community_id",
        "inspection_id",
        "item_code",
        "responsible",
        "opened_by",
    ] {
        root.non_blank(key)?;
    }
    root.req_str("item_title")?;
    root.req_str("opened_device")?;
    let source = root.req_str("source")?;
    if source != "inspector" && source != "standard" {
        return Err(root.invalid("source", "must be \"standard\" or \"inspector\""));
    }
    root.req_time("opened_at")?;
    root.req_time("deadline")?;
    root.time("closed_at")?;
    root.f64("deduction")?;
    let status = root.req_str("status")?;
    if RectificationStatus::parse(&status).is_none() {
        return Err(root.invalid("status", format!("unknown task status {status:?}")));
    }

    let mut walk = Walk {
        parts: HashMap::new(),
        authored: Vec::new(),
        events: Vec::new(),
        follow_ups: Vec::new(),
    };
    let mut part = |id: &ObjId, p: Part| {
        if let Some(k) = key_of(id) {
            walk.parts.insert(k, p);
        }
    };
    let required = root.obj("required", ObjType::Map)?;
    part(&required, Part::Fixed("required"));
    let r = Shape::of(doc, &required, "required");
    for (kind, value) in &r.fields.0 {
        if !EVIDENCE_KINDS.contains(&kind.as_str())
            || !matches!(value, Field::Scalar(ScalarValue::Boolean(true)))
        {
            return Err(r.invalid(
                kind,
                format!(
                    "a required evidence kind ({}) mapped to true",
                    EVIDENCE_KINDS.join(", ")
                ),
            ));
        }
    }
    let finding = root.obj("finding", ObjType::Map)?;
    part(&finding, Part::Fixed("finding"));
    let f = Shape::of(doc, &finding, "finding");
    for (hash, value) in &f.fields.0 {
        if !is_sha256(hash) || !matches!(value, Field::Scalar(ScalarValue::Boolean(true))) {
            return Err(f.invalid(hash, "a photo's SHA-256 (64 lower-case hex) mapped to true"));
        }
    }
    let closure = root.obj("closure", ObjType::Map)?;
    part(&closure, Part::Closure);
    for (key, entry) in map_entries(doc, &closure, "closure")? {
        let path = format!("closure[{key:?}]");
        let s = Shape::of(doc, &entry, path.clone());
        s.only(CLOSURE_KEYS)?;
        let kind = s.req_str("kind")?;
        if !EVIDENCE_KINDS.contains(&kind.as_str()) {
            return Err(s.invalid("kind", format!("unknown evidence kind {kind:?}")));
        }
        let text = s.str("text")?.filter(|t| !t.trim().is_empty());
        let sha = s.sha256("sha256")?;
        let expected_key = match &sha {
            Some(h) => key == format!("{kind}/{h}"),
            None if text.is_some() => key.starts_with(&format!("{kind}/")),
            None => return Err(s.invalid("text", "closure evidence has a text or a photo")),
        };
        if !expected_key {
            return Err(s.invalid(
                "kind",
                "the key is \"{kind}/{sha256}\" for a photo, \"{kind}/{by}/{at}\" for a text",
            ));
        }
        s.sha256("thumb")?;
        s.sha256("upload")?;
        s.req_time("at")?;
        let by = s.non_blank("by")?;
        part(&entry, Part::ClosureEntry(key.clone()));
        walk.authored.push(Authored {
            id: entry,
            path,
            by,
            device: None,
        });
    }
    let follow_ups = root.obj("follow_ups", ObjType::Map)?;
    part(&follow_ups, Part::FollowUps);
    for (key, entry) in map_entries(doc, &follow_ups, "follow_ups")? {
        let path = format!("follow_ups[{key:?}]");
        let s = Shape::of(doc, &entry, path.clone());
        s.only(FOLLOW_UP_KEYS)?;
        let rectified = s.req_bool("rectified")?;
        s.req_time("at")?;
        s.str("note")?;
        let by = s.non_blank("by")?;
        part(&entry, Part::FollowUp(key.clone()));
        walk.follow_ups.push((entry.clone(), rectified));
        walk.authored.push(Authored {
            id: entry,
            path,
            by,
            device: None,
        });
    }
    let events = root.obj("events", ObjType::List)?;
    part(&events, Part::Events);
    for (n, entry) in list_entries(doc, &events, "events")? {
        let path = format!("events[{n}]");
        let s = Shape::of(doc, &entry, path.clone());
        s.only(EVENT_KEYS)?;
        let to = s.req_str("to")?;
        let to = RectificationStatus::parse(&to)
            .ok_or_else(|| s.invalid("to", format!("unknown task status {to:?}")))?;
        let by = s.non_blank("by")?;
        let device = s.req_str("device")?;
        s.req_time("at")?;
        let text = s.str("text")?;
        part(&entry, Part::Event);
        walk.events.push(StatusEvent {
            id: entry.clone(),
            to,
            text,
        });
        walk.authored.push(Authored {
            id: entry,
            path,
            by,
            device: Some(device),
        });
    }
    Ok(walk)
}

/// What changes did to a task that existed before them.
#[derive(Debug, Default)]
struct Edits {
    closure_added: bool,
    closed_at_put: bool,
}

fn structure(walk: &Walk, new: &NewChanges) -> Checked<Edits> {
    let mut edits = Edits::default();
    for op in &new.ops {
        if new.writes_into_new(op) {
            continue;
        }
        let key = match &op.key {
            OpKey::Map(k) => Some(k.as_str()),
            OpKey::Seq { .. } => None,
        };
        let Some(obj) = &op.obj else {
            match (key, &op.action) {
                (Some("status"), OpAction::Put(ScalarValue::Str(s)))
                    if RectificationStatus::parse(s).is_some() => {}
                (Some("status"), _) => {
                    return Err(RuleBreak::new(
                        Rule::Schema,
                        "status must be a known task status",
                    ));
                }
                (
                    Some("closed_at"),
                    OpAction::Put(ScalarValue::Timestamp(_) | ScalarValue::Int(_)),
                ) => edits.closed_at_put = true,
                (Some(k), _) => {
                    return Err(RuleBreak::new(
                        Rule::HeaderFixed,
                        format!("{k} is written once, when the task is opened"),
                    ));
                }
                (None, _) => return Err(RuleBreak::new(Rule::Schema, "the root is a map")),
            }
            continue;
        };
        let adds = op.action == OpAction::Make(ObjType::Map) && !op.overwrites;
        match walk.parts.get(obj) {
            Some(Part::Fixed(what)) => {
                return Err(RuleBreak::new(
                    Rule::HeaderFixed,
                    format!("{what} is written once, when the task is opened"),
                ));
            }
            Some(Part::Closure) if adds && key.is_some() => edits.closure_added = true,
            // A follow-up inspection recorded again replaces its verdict with a new entry.
            Some(Part::FollowUps) if op.action == OpAction::Make(ObjType::Map) && key.is_some() => {
            }
            Some(Part::Events) if adds && matches!(op.key, OpKey::Seq { insert: true }) => {}
            Some(Part::Closure | Part::FollowUps | Part::Events) => {
                return Err(RuleBreak::new(
                    Rule::AppendOnly,
                    "closure evidence and events are added, never replaced or removed; follow-ups are never removed",
                ));
            }
            Some(Part::ClosureEntry(k)) => {
                return Err(RuleBreak::new(
                    Rule::EntriesImmutable,
                    format!("closure[{k:?}] is never edited"),
                ));
            }
            Some(Part::FollowUp(k)) => {
                return Err(RuleBreak::new(
                    Rule::EntriesImmutable,
                    format!("follow_ups[{k:?}] is never edited"),
                ));
            }
            Some(Part::Event) => {
                return Err(RuleBreak::new(
                    Rule::EntriesImmutable,
                    "events are never edited",
                ));
            }
            None => {
                return Err(RuleBreak::new(
                    Rule::EntriesImmutable,
                    "a change writes into an object that is not part of the task any more",
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

/// Submitting for closure and closing need every required evidence kind.
pub(crate) fn closure_evidence_complete(task: &Rectification, to: RectificationStatus) -> Checked {
    if matches!(
        to,
        RectificationStatus::Submitted | RectificationStatus::Closed
    ) {
        let missing = task.missing_evidence();
        if !missing.is_empty() {
            return Err(RuleBreak::new(
                Rule::ClosureEvidence,
                format!("closure evidence missing: {}", missing.join(", ")),
            ));
        }
    }
    Ok(())
}

/// Reopening needs a comment saying what is still wrong.
pub(crate) fn reopen_comment(to: RectificationStatus, comment: Option<&str>) -> Checked {
    if to == RectificationStatus::Reopened && comment.is_none_or(|c| c.trim().is_empty()) {
        return Err(RuleBreak::new(
            Rule::ReviewComment,
            "reopening a rectification task needs a comment",
        ));
    }
    Ok(())
}

fn role(reason: &str) -> RuleBreak {
    RuleBreak::new(Rule::Role, reason)
}

/// The server's judgement of one request's changes to one task (see
/// [`crate::inspection::check_write`]): `before` is the stored task (`None`: the request opens
/// it), `after` the merged result, `changes` the request's changes, all by `writer`.
pub fn check_write(
    before: Option<&Rectification>,
    after: &RectificationDoc,
    changes: &[Change],
    writer: &Writer,
) -> crate::Result<()> {
    let id = after.id();
    let new = NewChanges::of(id, changes)?;
    let walk = check_schema(after.doc(), id).map_err(|b| b.into_error(id))?;
    let read = after.read()?;
    judge(before, &read, &walk, &new, writer).map_err(|b| b.into_error(id))
}

fn judge(
    before: Option<&Rectification>,
    after: &Rectification,
    walk: &Walk,
    new: &NewChanges,
    writer: &Writer,
) -> Checked {
    identity(&walk.authored, new)?;
    let (from, edits) = match before {
        None => {
            if after.opened_by != writer.user_id || after.opened_device_id != writer.device_id {
                return Err(RuleBreak::new(
                    Rule::Identity,
                    "a new task is opened by this device's user on this device",
                ));
            }
            if after.source != "inspector" {
                return Err(role(
                    "tasks the standard's rules open are opened by the server, not a device",
                ));
            }
            let edits = Edits {
                closure_added: !after.closure_evidence.is_empty(),
                closed_at_put: walk
                    .events
                    .iter()
                    .any(|e| e.to == RectificationStatus::Closed),
            };
            (RectificationStatus::Open, edits)
        }
        Some(b) => (b.status, structure(walk, new)?),
    };
    if edits.closure_added && from == RectificationStatus::Closed {
        return Err(RuleBreak::new(
            Rule::Workflow,
            "a closed task takes no more closure evidence",
        ));
    }
    let failed_follow_up = walk
        .follow_ups
        .iter()
        .any(|(id, rectified)| !rectified && new.created(id));
    let mut status = from;
    let mut closed = false;
    for e in walk.events.iter().filter(|e| new.created(&e.id)) {
        if !status.can_become(e.to) {
            return Err(RuleBreak::new(
                Rule::Workflow,
                format!("a task cannot go from {status} to {}", e.to),
            ));
        }
        closure_evidence_complete(after, e.to)?;
        match e.to {
            RectificationStatus::Closed if writer.role != WriterRole::Reviewer => {
                return Err(role("only supervisors approve a task's closure"));
            }
            RectificationStatus::Reopened => {
                reopen_comment(e.to, e.text.as_deref())?;
                if writer.role != WriterRole::Reviewer && !failed_follow_up {
                    return Err(role(
                        "inspectors reopen a task only through a follow-up inspection that found the problem not fixed",
                    ));
                }
            }
            _ => {}
        }
        closed |= e.to == RectificationStatus::Closed;
        status = e.to;
    }
    if after.status != status {
        return Err(RuleBreak::new(
            Rule::Workflow,
            format!(
                "status is {} but the task's events lead to {status}",
                after.status
            ),
        ));
    }
    if edits.closed_at_put && !closed {
        return Err(RuleBreak::new(
            Rule::Workflow,
            "closed_at is set by a closure",
        ));
    }
    Ok(())
}
