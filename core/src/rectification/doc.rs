//! The automerge document of one rectification task. Layout: docs/rectification.md. Every edit
//! is one change whose message is the same small JSON note inspections use (who, what), so the
//! task's history reads like an inspection's.

use super::rules;
use super::{
    ClosureEvidence, EVIDENCE_KINDS, FollowUp, NewRectification, Rectification, RectificationEvent,
    RectificationStatus,
};
use crate::docrules::ChangeNote;
use crate::docrules::{actor_of, device_id_of};
use crate::guard::{apply_strictly, guarded, refuse_foreign_chunks};
use crate::inspection::{HistoryEntry, creator_of, written_by};
use crate::{CoreError, Result};
use automerge::transaction::{CommitOptions, Transactable};
use automerge::{AutoCommit, ChangeHash, ObjId, ObjType, ROOT, ReadDoc, ScalarValue, Value};

/// The layout version written into every task document (`schema`).
pub const TASK_SCHEMA: u64 = 1;
pub(crate) const DOC_TYPE: &str = "rectification";
const DAY_MS: i64 = 86_400_000;
/// Deadlines fall at the end of a day in China Standard Time (UTC+8).
const CST_MS: i64 = 8 * 3_600_000;

#[derive(Debug, Clone)]
pub struct RectificationDoc {
    id: String,
    doc: AutoCommit,
}

fn corrupt(id: &str, reason: impl Into<String>) -> CoreError {
    CoreError::CorruptDocument {
        id: id.to_string(),
        reason: reason.into(),
    }
}

fn invalid(what: impl Into<String>) -> CoreError {
    CoreError::InvalidArgument(what.into())
}

fn am(e: automerge::AutomergeError) -> CoreError {
    CoreError::InvalidArgument(e.to_string())
}

fn non_blank(text: &str, what: &str) -> Result<()> {
    if text.trim().is_empty() {
        return Err(invalid(format!("{what} must not be empty")));
    }
    Ok(())
}

fn check_sha256(hex: &str) -> Result<()> {
    if hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        Ok(())
    } else {
        Err(invalid("sha256 must be 64 lower-case hex digits"))
    }
}

/// The end of the day `days` days after `at_ms` (China Standard Time).
pub(crate) fn deadline_after(at_ms: i64, days: u32) -> i64 {
    let day = (at_ms + CST_MS).div_euclid(DAY_MS);
    (day + 1 + days as i64) * DAY_MS - CST_MS - 1
}

impl RectificationDoc {
    /// Opens a task. Created once, here; everyone else receives it.
    pub fn create(
        id: &str,
        new: &NewRectification,
        device_id: &str,
        by: &str,
        at_ms: i64,
    ) -> Result<RectificationDoc> {
        non_blank(id, "task id")?;
        non_blank(by, "user id")?;
        non_blank(&new.community_id, "community id")?;
        non_blank(&new.inspection_id, "inspection id")?;
        non_blank(&new.item_code, "item code")?;
        non_blank(&new.responsible, "responsible party")?;
        if new.deadline_days > 366 {
            return Err(invalid("a rectification deadline is at most a year away"));
        }
        if new.deduction.is_some_and(|d| !d.is_finite()) {
            return Err(invalid("deduction must be a finite number"));
        }
        for k in &new.required_evidence {
            if !EVIDENCE_KINDS.contains(&k.as_str()) {
                return Err(invalid(format!("unknown evidence kind {k:?}")));
            }
        }
        for h in &new.finding_evidence {
            check_sha256(h)?;
        }
        let source = if new.source.is_empty() {
            "inspector"
        } else {
            new.source.as_str()
        };
        if source != "inspector" && source != "standard" {
            return Err(invalid("source must be \"standard\" or \"inspector\""));
        }
        let mut doc = AutoCommit::new().with_actor(actor_of(device_id)?);
        doc.put(ROOT, "schema", TASK_SCHEMA).map_err(am)?;
        doc.put(ROOT, "type", DOC_TYPE).map_err(am)?;
        doc.put(ROOT, "id", id).map_err(am)?;
        for (k, v) in [
            ("community_id", new.community_id.as_str()),
            ("inspection_id", new.inspection_id.as_str()),
            ("item_code", new.item_code.as_str()),
            ("item_title", new.item_title.as_str()),
            ("responsible", new.responsible.trim()),
            ("source", source),
            ("opened_by", by),
            ("opened_device", device_id),
            ("status", RectificationStatus::Open.as_str()),
        ] {
            doc.put(ROOT, k, v).map_err(am)?;
        }
        doc.put(ROOT, "opened_at", ScalarValue::Timestamp(at_ms))
            .map_err(am)?;
        doc.put(
            ROOT,
            "deadline",
            ScalarValue::Timestamp(deadline_after(at_ms, new.deadline_days)),
        )
        .map_err(am)?;
        if let Some(d) = new.deduction {
            doc.put(ROOT, "deduction", d).map_err(am)?;
        }
        let required = doc.put_object(ROOT, "required", ObjType::Map).map_err(am)?;
        for k in &new.required_evidence {
            doc.put(&required, k.as_str(), true).map_err(am)?;
        }
        let finding = doc.put_object(ROOT, "finding", ObjType::Map).map_err(am)?;
        for h in &new.finding_evidence {
            doc.put(&finding, h.as_str(), true).map_err(am)?;
        }
        doc.put_object(ROOT, "closure", ObjType::Map).map_err(am)?;
        doc.put_object(ROOT, "follow_ups", ObjType::Map)
            .map_err(am)?;
        doc.put_object(ROOT, "events", ObjType::List).map_err(am)?;
        let mut made = RectificationDoc {
            id: id.to_string(),
            doc,
        };
        made.commit(by, "create", Some(&new.item_code), None, at_ms);
        Ok(made)
    }

    /// Loads saved bytes; failures and decoder panics become `CorruptDocument`.
    pub fn load(id: &str, bytes: &[u8], device_id: &str) -> Result<RectificationDoc> {
        let actor = actor_of(device_id)?;
        refuse_foreign_chunks(id, bytes)?;
        guarded(id, || {
            let doc = AutoCommit::load(bytes).map_err(|e| corrupt(id, e.to_string()))?;
            let made = RectificationDoc {
                id: id.to_string(),
                doc: doc.with_actor(actor),
            };
            made.check_layout()?;
            rules::check_schema(&made.doc, id).map_err(|b| b.into_error(id))?;
            Ok(made)
        })
    }

    /// Applies received bytes to a copy, strictly; nothing changes if they are refused.
    pub fn apply_bytes(&mut self, bytes: &[u8]) -> Result<usize> {
        let id = self.id.clone();
        let (doc, n) = apply_strictly(&id, &self.doc, bytes, |before, after| {
            RectificationDoc {
                id: id.clone(),
                doc: after.clone(),
            }
            .check_layout()?;
            rules::check_received(&id, before, after)
        })?;
        self.doc = doc;
        Ok(n)
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn device_id(&self) -> String {
        device_id_of(self.doc.get_actor())
    }

    pub fn set_device(&mut self, device_id: &str) -> Result<()> {
        self.doc.set_actor(actor_of(device_id)?);
        Ok(())
    }

    pub fn save(&mut self) -> Vec<u8> {
        self.doc.save()
    }

    pub fn save_incremental(&mut self) -> Vec<u8> {
        self.doc.save_incremental()
    }

    pub fn heads(&mut self) -> Vec<ChangeHash> {
        self.doc.get_heads()
    }

    pub fn automerge(&mut self) -> &mut AutoCommit {
        &mut self.doc
    }

    pub(crate) fn doc(&self) -> &AutoCommit {
        &self.doc
    }

    // ----- edits -------------------------------------------------------------------------

    /// Moves the task along its loop. Submitting for closure and closing need every required
    /// evidence kind; reopening needs a comment. Who may make which move is the server's rule
    /// (supervisors close and reopen); the document checks the order.
    pub fn set_status(
        &mut self,
        to: RectificationStatus,
        by: &str,
        comment: Option<&str>,
        at_ms: i64,
    ) -> Result<()> {
        non_blank(by, "user id")?;
        let from = self.status()?;
        if !from.can_become(to) {
            return Err(CoreError::InvalidTransition {
                from: from.to_string(),
                to: to.to_string(),
            });
        }
        rules::reopen_comment(to, comment).map_err(|b| invalid(b.reason))?;
        rules::closure_evidence_complete(&self.read()?, to).map_err(|b| invalid(b.reason))?;
        let device = self.device_id();
        let result = (|| -> std::result::Result<(), automerge::AutomergeError> {
            self.doc.put(ROOT, "status", to.as_str())?;
            if to == RectificationStatus::Closed {
                self.doc
                    .put(ROOT, "closed_at", ScalarValue::Timestamp(at_ms))?;
            }
            let events = self.obj("events")?;
            let at = self.doc.length(&events);
            let e = self.doc.insert_object(&events, at, ObjType::Map)?;
            self.doc.put(&e, "to", to.as_str())?;
            self.doc.put(&e, "by", by)?;
            self.doc.put(&e, "device", device.as_str())?;
            self.doc.put(&e, "at", ScalarValue::Timestamp(at_ms))?;
            if let Some(c) = comment.filter(|c| !c.trim().is_empty()) {
                self.doc.put(&e, "text", c)?;
            }
            Ok(())
        })();
        self.finish(result, by, "status", None, comment, at_ms)
    }

    /// Adds closure evidence: a text, a photo by hash, or both.
    pub fn add_closure_evidence(&mut self, e: &ClosureEvidence) -> Result<()> {
        non_blank(&e.by, "user id")?;
        if !EVIDENCE_KINDS.contains(&e.kind.as_str()) {
            return Err(invalid(format!(
                "unknown evidence kind {:?} (expected one of {})",
                e.kind,
                EVIDENCE_KINDS.join(", ")
            )));
        }
        let text = e.text.as_deref().map(str::trim).filter(|t| !t.is_empty());
        if text.is_none() && e.sha256.is_none() {
            return Err(invalid("closure evidence needs a text or a photo"));
        }
        if let Some(h) = &e.sha256 {
            check_sha256(h)?;
        }
        for h in [&e.thumb, &e.upload].into_iter().flatten() {
            if e.sha256.is_none() {
                return Err(invalid(
                    "a thumbnail or upload rendition belongs to a photo",
                ));
            }
            check_sha256(h)?;
        }
        if self.status()? == RectificationStatus::Closed {
            return Err(CoreError::InvalidTransition {
                from: "closed".into(),
                to: "evidence added".into(),
            });
        }
        // Keyed by kind and hash (or the change's time and author for a text), so the same
        // photo twice is one entry and texts from two devices both stay.
        let key = match &e.sha256 {
            Some(h) => format!("{}/{h}", e.kind),
            None => format!("{}/{}/{}", e.kind, e.by, e.at_ms),
        };
        // Entries are never replaced (docs/rectification.md, "Rules"): the same photo again is
        // already there.
        let closure = self.obj("closure").map_err(am)?;
        if matches!(self.doc.get(&closure, key.as_str()), Ok(Some(_))) {
            return Ok(());
        }
        let result = (|| -> std::result::Result<(), automerge::AutomergeError> {
            let map = self.obj("closure")?;
            let entry = self.doc.put_object(&map, key.as_str(), ObjType::Map)?;
            self.doc.put(&entry, "kind", e.kind.as_str())?;
            if let Some(t) = text {
                self.doc.put(&entry, "text", t)?;
            }
            if let Some(h) = &e.sha256 {
                self.doc.put(&entry, "sha256", h.as_str())?;
            }
            if let Some(h) = &e.thumb {
                self.doc.put(&entry, "thumb", h.as_str())?;
            }
            if let Some(h) = &e.upload {
                self.doc.put(&entry, "upload", h.as_str())?;
            }
            self.doc.put(&entry, "by", e.by.as_str())?;
            self.doc
                .put(&entry, "at", ScalarValue::Timestamp(e.at_ms))?;
            Ok(())
        })();
        self.finish(result, &e.by, "evidence", Some(&e.kind), None, e.at_ms)
    }

    /// Records a follow-up inspection (复查) of the task.
    pub fn link_follow_up(&mut self, f: &FollowUp) -> Result<()> {
        non_blank(&f.by, "user id")?;
        non_blank(&f.inspection_id, "inspection id")?;
        let result = (|| -> std::result::Result<(), automerge::AutomergeError> {
            let map = self.obj("follow_ups")?;
            let entry = self
                .doc
                .put_object(&map, f.inspection_id.as_str(), ObjType::Map)?;
            self.doc.put(&entry, "rectified", f.rectified)?;
            self.doc.put(&entry, "by", f.by.as_str())?;
            self.doc
                .put(&entry, "at", ScalarValue::Timestamp(f.at_ms))?;
            if let Some(n) = f.note.as_deref().filter(|n| !n.trim().is_empty()) {
                self.doc.put(&entry, "note", n)?;
            }
            Ok(())
        })();
        self.finish(
            result,
            &f.by,
            "follow_up",
            Some(&f.inspection_id),
            f.note.as_deref(),
            f.at_ms,
        )
    }

    fn finish(
        &mut self,
        result: std::result::Result<(), automerge::AutomergeError>,
        by: &str,
        action: &str,
        item: Option<&str>,
        text: Option<&str>,
        at_ms: i64,
    ) -> Result<()> {
        match result {
            Ok(()) => {
                self.commit(by, action, item, text, at_ms);
                Ok(())
            }
            Err(e) => {
                self.doc.rollback();
                Err(invalid(e.to_string()))
            }
        }
    }

    fn commit(&mut self, by: &str, action: &str, item: Option<&str>, text: Option<&str>, at: i64) {
        let note = ChangeNote {
            by: by.into(),
            action: action.into(),
            item: item.map(str::to_string),
            text: text.map(str::to_string),
        };
        let message = note.encode();
        self.doc
            .commit_with(CommitOptions::default().with_message(message).with_time(at));
    }

    // ----- reads -------------------------------------------------------------------------

    fn obj(&self, key: &str) -> std::result::Result<ObjId, automerge::AutomergeError> {
        match self.doc.get(ROOT, key) {
            Ok(Some((Value::Object(_), id))) => Ok(id),
            _ => Err(automerge::AutomergeError::InvalidObjId(key.to_string())),
        }
    }

    fn check_layout(&self) -> Result<()> {
        let id = &self.id;
        if self.str_at(&ROOT, "type").as_deref() != Some(DOC_TYPE) {
            return Err(corrupt(id, "not a rectification document"));
        }
        match self.scalar(&ROOT, "schema") {
            Some(ScalarValue::Uint(v)) if v <= TASK_SCHEMA => {}
            Some(ScalarValue::Uint(v)) => {
                return Err(corrupt(
                    id,
                    format!("task schema {v} is newer than this build reads"),
                ));
            }
            _ => return Err(corrupt(id, "missing schema")),
        }
        if self.str_at(&ROOT, "id").as_deref() != Some(id.as_str()) {
            return Err(corrupt(id, "document id does not match"));
        }
        for (key, kind) in [
            ("required", ObjType::Map),
            ("finding", ObjType::Map),
            ("closure", ObjType::Map),
            ("follow_ups", ObjType::Map),
            ("events", ObjType::List),
        ] {
            match self.doc.get(ROOT, key) {
                Ok(Some((Value::Object(t), _))) if t == kind => {}
                _ => return Err(corrupt(id, format!("missing or mistyped {key}"))),
            }
        }
        for key in ["community_id", "inspection_id", "item_code", "responsible"] {
            if self.str_at(&ROOT, key).is_none() {
                return Err(corrupt(id, format!("missing {key}")));
            }
        }
        self.status()?;
        Ok(())
    }

    fn scalar(&self, obj: &ObjId, key: &str) -> Option<ScalarValue> {
        match self.doc.get(obj, key) {
            Ok(Some((Value::Scalar(s), _))) => Some(s.into_owned()),
            _ => None,
        }
    }

    fn str_at(&self, obj: &ObjId, key: &str) -> Option<String> {
        match self.scalar(obj, key)? {
            ScalarValue::Str(s) => Some(s.to_string()),
            _ => None,
        }
    }

    fn time_at(&self, obj: &ObjId, key: &str) -> Option<i64> {
        match self.scalar(obj, key)? {
            ScalarValue::Timestamp(t) | ScalarValue::Int(t) => Some(t),
            _ => None,
        }
    }

    fn f64_at(&self, obj: &ObjId, key: &str) -> Option<f64> {
        match self.scalar(obj, key)? {
            ScalarValue::F64(x) if x.is_finite() => Some(x),
            ScalarValue::Int(n) => Some(n as f64),
            ScalarValue::Uint(n) => Some(n as f64),
            _ => None,
        }
    }

    fn keys_of(&self, key: &str) -> Vec<String> {
        self.obj(key)
            .map(|m| self.doc.keys(&m).collect())
            .unwrap_or_default()
    }

    pub fn status(&self) -> Result<RectificationStatus> {
        self.str_at(&ROOT, "status")
            .and_then(|s| RectificationStatus::parse(&s))
            .ok_or_else(|| corrupt(&self.id, "unknown task status"))
    }

    pub fn community_id(&self) -> String {
        self.str_at(&ROOT, "community_id").unwrap_or_default()
    }

    pub fn read(&self) -> Result<Rectification> {
        let s = |k: &str| self.str_at(&ROOT, k).unwrap_or_default();
        let mut closure_evidence = Vec::new();
        if let Ok(map) = self.obj("closure") {
            for key in self.doc.keys(&map).collect::<Vec<_>>() {
                let Ok(Some((Value::Object(ObjType::Map), e))) = self.doc.get(&map, key.as_str())
                else {
                    continue;
                };
                let Some(kind) = self.str_at(&e, "kind") else {
                    continue;
                };
                // Hashes as in `InspectionDoc::evidence`: 64 lower-case hex digits, renditions
                // only as the entry's creator wrote them, the creator only if it wrote the hash.
                let creator = creator_of(&e);
                let by_creator =
                    |key: &str| creator.is_some() && written_by(&self.doc, &e, key) == creator;
                let hash = |key: &str| self.str_at(&e, key).filter(|h| check_sha256(h).is_ok());
                let sha256 = hash("sha256");
                let rendition = |key: &str| {
                    sha256.as_ref()?;
                    hash(key).filter(|_| by_creator(key))
                };
                closure_evidence.push(ClosureEvidence {
                    kind,
                    text: self.str_at(&e, "text"),
                    thumb: rendition("thumb"),
                    upload: rendition("upload"),
                    device_id: match &creator {
                        Some(a) if sha256.is_some() && by_creator("sha256") => device_id_of(a),
                        _ => String::new(),
                    },
                    sha256,
                    by: self.str_at(&e, "by").unwrap_or_default(),
                    at_ms: self.time_at(&e, "at").unwrap_or_default(),
                });
            }
        }
        closure_evidence.sort_by(|a, b| a.at_ms.cmp(&b.at_ms).then(a.kind.cmp(&b.kind)));
        let mut follow_ups = Vec::new();
        if let Ok(map) = self.obj("follow_ups") {
            for key in self.doc.keys(&map).collect::<Vec<_>>() {
                let Ok(Some((Value::Object(ObjType::Map), e))) = self.doc.get(&map, key.as_str())
                else {
                    continue;
                };
                follow_ups.push(FollowUp {
                    rectified: matches!(
                        self.scalar(&e, "rectified"),
                        Some(ScalarValue::Boolean(true))
                    ),
                    by: self.str_at(&e, "by").unwrap_or_default(),
                    at_ms: self.time_at(&e, "at").unwrap_or_default(),
                    note: self.str_at(&e, "note"),
                    inspection_id: key,
                });
            }
        }
        follow_ups.sort_by_key(|f| f.at_ms);
        let mut events = Vec::new();
        if let Ok(list) = self.obj("events") {
            for n in 0..self.doc.length(&list) {
                let Ok(Some((Value::Object(ObjType::Map), e))) = self.doc.get(&list, n) else {
                    continue;
                };
                let Some(to) = self
                    .str_at(&e, "to")
                    .and_then(|t| RectificationStatus::parse(&t))
                else {
                    continue;
                };
                events.push(RectificationEvent {
                    to,
                    by: self.str_at(&e, "by").unwrap_or_default(),
                    device_id: self.str_at(&e, "device").unwrap_or_default(),
                    at_ms: self.time_at(&e, "at").unwrap_or_default(),
                    text: self.str_at(&e, "text"),
                });
            }
        }
        Ok(Rectification {
            id: self.id.clone(),
            community_id: s("community_id"),
            inspection_id: s("inspection_id"),
            item_code: s("item_code"),
            item_title: s("item_title"),
            responsible: s("responsible"),
            source: s("source"),
            opened_by: s("opened_by"),
            opened_device_id: s("opened_device"),
            opened_at_ms: self.time_at(&ROOT, "opened_at").unwrap_or_default(),
            deadline_ms: self.time_at(&ROOT, "deadline").unwrap_or_default(),
            deduction: self.f64_at(&ROOT, "deduction"),
            status: self.status()?,
            required_evidence: self.keys_of("required"),
            finding_evidence: self.keys_of("finding"),
            closure_evidence,
            follow_ups,
            events,
        })
    }

    /// Every change to the task: who, which device, when, what.
    pub fn history(&mut self) -> Vec<HistoryEntry> {
        self.doc
            .get_changes(&[])
            .iter()
            .map(|change| {
                let note = change
                    .message()
                    .and_then(|m| ChangeNote::parse(Some(m)))
                    .unwrap_or_else(|| ChangeNote {
                        action: "other".into(),
                        ..Default::default()
                    });
                HistoryEntry {
                    change_hash: change.hash().to_string(),
                    device_id: device_id_of(change.actor_id()),
                    seq: change.seq(),
                    at_ms: change.timestamp(),
                    by: note.by,
                    action: note.action,
                    item_code: note.item,
                    text: note.text,
                }
            })
            .collect()
    }
}

/// The `type` a stored document declares ("inspection", "rectification"), read without
/// checking the rest of its layout. `None` when the bytes do not decode.
pub fn document_type(id: &str, bytes: &[u8]) -> Option<String> {
    refuse_foreign_chunks(id, bytes).ok()?;
    guarded(id, || {
        let doc = AutoCommit::load(bytes).map_err(|e| corrupt(id, e.to_string()))?;
        Ok(match doc.get(ROOT, "type") {
            Ok(Some((Value::Scalar(s), _))) => match s.into_owned() {
                ScalarValue::Str(t) => Some(t.to_string()),
                _ => None,
            },
            _ => None,
        })
    })
    .ok()
    .flatten()
}
