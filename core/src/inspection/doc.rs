//! The automerge document of one inspection. Layout: `docs/inspection-document.md`.
//!
//! Every edit is one automerge change whose message is a small JSON object naming the user and
//! the action, so the history can say who changed what; the change's actor is the device.

use super::rules::{self, Edit};
use super::{
    AnswerConflict, EditContext, EvidenceRef, GpsFix, HistoryEntry, Inspection, InspectionKind,
    InspectionStatus, MediaKind, NewInspection, RecordedAnswer, WorkflowEvent, WorkflowEventKind,
};
use crate::answer::{AnswerValue, ItemAnswer, OccurrenceCount};
use crate::docrules::{ChangeNote, Fields};
use crate::docrules::{actor_of, device_id_of};
use crate::geo::LatLon;
use crate::guard::{apply_strictly, guarded, refuse_foreign_chunks};
use crate::{CoreError, Result};
use automerge::transaction::{CommitOptions, Transactable};
use automerge::{
    ActorId, AutoCommit, ChangeHash, ObjId, ObjType, ROOT, ReadDoc, ScalarValue, Value,
};

/// The layout version written into every document (`schema`).
pub const DOCUMENT_SCHEMA: u64 = 1;
pub(super) const DOC_TYPE: &str = "inspection";

/// One inspection document with the device it is edited on.
#[derive(Debug, Clone)]
pub struct InspectionDoc {
    id: String,
    doc: AutoCommit,
}

fn corrupt(id: &str, reason: impl Into<String>) -> CoreError {
    CoreError::CorruptDocument {
        id: id.to_string(),
        reason: reason.into(),
    }
}

fn non_blank(text: &str, what: &str) -> Result<()> {
    if text.trim().is_empty() {
        return Err(CoreError::InvalidArgument(format!(
            "{what} must not be empty"
        )));
    }
    Ok(())
}

impl InspectionDoc {
    /// Starts a new inspection. The document is created once, here, and every other device
    /// receives it (documents created independently would share no history).
    pub fn create(
        id: &str,
        new: &NewInspection,
        device_id: &str,
        by: &str,
        at_ms: i64,
    ) -> Result<InspectionDoc> {
        non_blank(id, "inspection id")?;
        non_blank(by, "user id")?;
        non_blank(&new.community_id, "community id")?;
        let mut doc = AutoCommit::new().with_actor(actor_of(device_id)?);
        let am = |e: automerge::AutomergeError| CoreError::InvalidArgument(e.to_string());
        doc.put(ROOT, "schema", DOCUMENT_SCHEMA).map_err(am)?;
        doc.put(ROOT, "type", DOC_TYPE).map_err(am)?;
        doc.put(ROOT, "id", id).map_err(am)?;
        doc.put(ROOT, "community_id", new.community_id.as_str())
            .map_err(am)?;
        doc.put(ROOT, "standard_id", new.standard_id.as_str())
            .map_err(am)?;
        doc.put(ROOT, "standard_version", new.standard_version.as_str())
            .map_err(am)?;
        doc.put(ROOT, "kind", new.kind.as_str()).map_err(am)?;
        doc.put(ROOT, "created_by", by).map_err(am)?;
        doc.put(ROOT, "created_device", device_id).map_err(am)?;
        doc.put(ROOT, "started_at", ScalarValue::Timestamp(at_ms))
            .map_err(am)?;
        doc.put(ROOT, "status", InspectionStatus::Draft.as_str())
            .map_err(am)?;
        let inspectors = doc
            .put_object(ROOT, "inspectors", ObjType::Map)
            .map_err(am)?;
        doc.put(&inspectors, by, true).map_err(am)?;
        for co in &new.co_inspectors {
            non_blank(co, "co-inspector id")?;
            doc.put(&inspectors, co.as_str(), true).map_err(am)?;
        }
        doc.put_object(ROOT, "answers", ObjType::Map).map_err(am)?;
        doc.put_object(ROOT, "gps", ObjType::List).map_err(am)?;
        doc.put_object(ROOT, "evidence", ObjType::Map).map_err(am)?;
        doc.put_object(ROOT, "events", ObjType::List).map_err(am)?;
        let mut made = InspectionDoc {
            id: id.to_string(),
            doc,
        };
        made.commit(by, "create", None, None, at_ms);
        Ok(made)
    }

    /// Loads saved bytes (a snapshot, optionally followed by incremental changes) for this
    /// device. Untrusted bytes are welcome: failures and decoder panics become `CorruptDocument`.
    pub fn load(id: &str, bytes: &[u8], device_id: &str) -> Result<InspectionDoc> {
        let actor = actor_of(device_id)?;
        refuse_foreign_chunks(id, bytes)?;
        let doc = guarded(id, || {
            let doc = AutoCommit::load(bytes).map_err(|e| corrupt(id, e.to_string()))?;
            let made = InspectionDoc {
                id: id.to_string(),
                doc: doc.with_actor(actor),
            };
            check_layout(id, &made.doc)?;
            Ok(made)
        })?;
        Ok(doc)
    }

    /// Applies changes received from elsewhere (incremental saves or a whole document). The
    /// bytes are applied to a copy first: if they fail to decode, leave a document that is not
    /// a valid inspection, or make changes no writer may make (docs/inspection-document.md,
    /// "Rules"), nothing changes here.
    pub fn apply_bytes(&mut self, bytes: &[u8]) -> Result<usize> {
        let id = self.id.clone();
        let (doc, n) = apply_strictly(&id, &self.doc, bytes, |before, after| {
            check_layout(&id, after)?;
            rules::check_received(&id, before, after)
        })?;
        self.doc = doc;
        Ok(n)
    }

    /// Merges another copy of the same inspection into this one.
    pub fn merge(&mut self, other: &mut InspectionDoc) -> Result<()> {
        if other.id != self.id {
            return Err(CoreError::InvalidArgument(
                "cannot merge two different inspections".into(),
            ));
        }
        let bytes = other.doc.save();
        self.apply_bytes(&bytes).map(|_| ())
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn device_id(&self) -> String {
        device_id_of(self.doc.get_actor())
    }

    /// Changes this copy's actor, e.g. when a document received from the server is opened on
    /// this device.
    pub fn set_device(&mut self, device_id: &str) -> Result<()> {
        self.doc.set_actor(actor_of(device_id)?);
        Ok(())
    }

    pub fn save(&mut self) -> Vec<u8> {
        self.doc.save()
    }

    /// The changes made since the last `save` or `save_incremental`.
    pub fn save_incremental(&mut self) -> Vec<u8> {
        self.doc.save_incremental()
    }

    pub fn heads(&mut self) -> Vec<ChangeHash> {
        self.doc.get_heads()
    }

    /// The underlying automerge document (for sync).
    pub fn automerge(&mut self) -> &mut AutoCommit {
        &mut self.doc
    }

    pub(crate) fn doc(&self) -> &AutoCommit {
        &self.doc
    }

    // ----- edits -------------------------------------------------------------------------

    /// Records an item's answer. In a draft it is a plain edit; once submitted it is an
    /// amendment and needs a reason; an approved inspection must be returned first.
    /// The answer's fit to the standard is checked by the caller, who has the standard.
    pub fn set_answer(&mut self, answer: &ItemAnswer, ctx: &EditContext, at_ms: i64) -> Result<()> {
        non_blank(&answer.item_code, "item code")?;
        let reason = self.check_editable(ctx)?;
        let device = self.device_id();
        let result = (|| -> std::result::Result<(), automerge::AutomergeError> {
            let answers = self.container("answers")?;
            let entry = self
                .doc
                .put_object(&answers, answer.item_code.as_str(), ObjType::Map)?;
            write_answer(&mut self.doc, &entry, answer)?;
            self.doc.put(&entry, "by", ctx.user_id.as_str())?;
            self.doc.put(&entry, "device", device.as_str())?;
            self.doc.put(&entry, "at", ScalarValue::Timestamp(at_ms))?;
            if let Some(loc) = ctx.location {
                self.doc.put(&entry, "lat", loc.lat)?;
                self.doc.put(&entry, "lon", loc.lon)?;
            }
            if let Some(reason) = &reason {
                self.push_event(
                    "amendment",
                    None,
                    ctx,
                    at_ms,
                    Some(reason),
                    Some(&answer.item_code),
                )?;
            }
            Ok(())
        })();
        self.finish(
            result,
            &ctx.user_id,
            "answer",
            Some(&answer.item_code),
            reason.as_deref(),
            at_ms,
        )
    }

    /// Removes an item's answer (back to unanswered).
    pub fn clear_answer(&mut self, item_code: &str, ctx: &EditContext, at_ms: i64) -> Result<()> {
        let reason = self.check_editable(ctx)?;
        let result = (|| -> std::result::Result<(), automerge::AutomergeError> {
            let answers = self.container("answers")?;
            self.doc.delete(&answers, item_code)?;
            if let Some(reason) = &reason {
                self.push_event("amendment", None, ctx, at_ms, Some(reason), Some(item_code))?;
            }
            Ok(())
        })();
        self.finish(
            result,
            &ctx.user_id,
            "clear_answer",
            Some(item_code),
            reason.as_deref(),
            at_ms,
        )
    }

    /// Moves the inspection along its workflow (submit, approve, return, resubmit).
    pub fn set_status(
        &mut self,
        to: InspectionStatus,
        ctx: &EditContext,
        comment: Option<&str>,
        at_ms: i64,
    ) -> Result<()> {
        let from = self.status()?;
        if !from.can_become(to) {
            return Err(CoreError::InvalidTransition {
                from: from.to_string(),
                to: to.to_string(),
            });
        }
        rules::return_comment(to, comment).map_err(|b| CoreError::InvalidArgument(b.reason))?;
        let result = (|| -> std::result::Result<(), automerge::AutomergeError> {
            self.doc.put(ROOT, "status", to.as_str())?;
            if to == InspectionStatus::Submitted && self.doc.get(ROOT, "ended_at")?.is_none() {
                self.doc
                    .put(ROOT, "ended_at", ScalarValue::Timestamp(at_ms))?;
            }
            self.push_event("status", Some(to), ctx, at_ms, comment, None)
        })();
        self.finish(result, &ctx.user_id, "status", None, comment, at_ms)
    }

    /// Appends a GPS fix (start, track point, submit...).
    pub fn add_gps_fix(&mut self, fix: &GpsFix, by: &str) -> Result<()> {
        check_fix(fix)?;
        self.check_edit(Edit::AddFix, "fix added")?;
        let result = self.put_fix(fix);
        self.finish(result, by, "gps", None, None, fix.at_ms)
    }

    /// Appends several fixes of a patrol track as one change (action "track"), so a walk
    /// round the community is one history entry, not hundreds. All or none.
    pub fn add_track_fixes(&mut self, fixes: &[GpsFix], by: &str) -> Result<()> {
        let Some(last) = fixes.iter().map(|f| f.at_ms).max() else {
            return Ok(());
        };
        for f in fixes {
            check_fix(f)?;
        }
        self.check_edit(Edit::AddFix, "fix added")?;
        let result = fixes.iter().try_for_each(|f| self.put_fix(f));
        self.finish(result, by, "track", None, None, last)
    }

    fn put_fix(&mut self, fix: &GpsFix) -> std::result::Result<(), automerge::AutomergeError> {
        let gps = self.container("gps")?;
        let at = self.doc.length(&gps);
        let entry = self.doc.insert_object(&gps, at, ObjType::Map)?;
        self.doc.put(&entry, "lat", fix.location.lat)?;
        self.doc.put(&entry, "lon", fix.location.lon)?;
        if let Some(acc) = fix.accuracy_m {
            self.doc.put(&entry, "accuracy_m", acc)?;
        }
        if let Some(alt) = fix.altitude_m {
            self.doc.put(&entry, "altitude_m", alt)?;
        }
        self.doc.put(&entry, "provider", fix.provider.as_str())?;
        self.doc
            .put(&entry, "at", ScalarValue::Timestamp(fix.at_ms))?;
        self.doc.put(&entry, "mock", fix.is_mock)?;
        Ok(())
    }

    /// Attaches evidence to an item by content hash. Adding the same file to the same item
    /// twice is one reference.
    /// Adding it again (e.g. with renditions made later from a HEIF's preview) replaces the entry
    /// with a new one. `thumb` and `upload` name the device's renditions (docs/media-sync.md);
    /// `device_id` is not written (the entry's creator is the device editing).
    pub fn add_evidence(&mut self, evidence: &EvidenceRef) -> Result<()> {
        check_sha256(&evidence.sha256)?;
        for h in [&evidence.thumb, &evidence.upload].into_iter().flatten() {
            check_sha256(h)?;
        }
        non_blank(&evidence.item_code, "item code")?;
        non_blank(&evidence.added_by, "user id")?;
        self.check_edit(Edit::AddEvidence, "evidence added")?;
        let key = evidence_key(&evidence.item_code, &evidence.sha256);
        if self.evidence_of_others(&key) {
            // Another device attached this very file to this item: it is one reference, and an
            // entry is replaced only by the device that attached it.
            return Ok(());
        }
        let result = (|| -> std::result::Result<(), automerge::AutomergeError> {
            let map = self.container("evidence")?;
            let entry = self.doc.put_object(&map, key.as_str(), ObjType::Map)?;
            self.doc.put(&entry, "sha256", evidence.sha256.as_str())?;
            self.doc.put(&entry, "item", evidence.item_code.as_str())?;
            self.doc.put(&entry, "media", evidence.media.as_str())?;
            self.doc.put(&entry, "by", evidence.added_by.as_str())?;
            self.doc
                .put(&entry, "at", ScalarValue::Timestamp(evidence.at_ms))?;
            if let Some(h) = &evidence.thumb {
                self.doc.put(&entry, "thumb", h.as_str())?;
            }
            if let Some(h) = &evidence.upload {
                self.doc.put(&entry, "upload", h.as_str())?;
            }
            Ok(())
        })();
        self.finish(
            result,
            &evidence.added_by,
            "evidence",
            Some(&evidence.item_code),
            None,
            evidence.at_ms,
        )
    }

    pub fn remove_evidence(
        &mut self,
        item_code: &str,
        sha256: &str,
        by: &str,
        at_ms: i64,
    ) -> Result<()> {
        self.check_edit(Edit::RemoveEvidence, "evidence removed")?;
        let key = evidence_key(item_code, sha256);
        if self.evidence_of_others(&key) {
            return Err(CoreError::InvalidArgument(
                "that evidence was attached by another device, which alone removes it".into(),
            ));
        }
        let map = self
            .container("evidence")
            .map_err(|e| corrupt(&self.id, e.to_string()))?;
        if !matches!(self.doc.get(&map, key.as_str()), Ok(Some(_))) {
            return Err(CoreError::InvalidArgument(
                "no such evidence on that item".into(),
            ));
        }
        let result = self.doc.delete(&map, key.as_str());
        self.finish(result, by, "remove_evidence", Some(item_code), None, at_ms)
    }

    fn check_editable(&self, ctx: &EditContext) -> Result<Option<String>> {
        non_blank(&ctx.user_id, "user id")?;
        if let Some(loc) = ctx.location {
            crate::geo::validate(loc)?;
        }
        let status = self.check_edit(Edit::Answer, "amended")?;
        if !status.needs_amendment_reason() {
            return Ok(None);
        }
        match ctx.amendment_reason.as_deref().map(str::trim) {
            Some(reason) if !reason.is_empty() => Ok(Some(reason.to_string())),
            _ => Err(CoreError::AmendmentReasonRequired(self.id.clone())),
        }
    }

    /// Whether an entry at this evidence key (any of its conflicting values) was attached by
    /// another device than this copy's.
    fn evidence_of_others(&self, key: &str) -> bool {
        let Some(map) = self.map_obj("evidence") else {
            return false;
        };
        let me = self.doc.get_actor();
        self.doc
            .get_all(&map, key)
            .unwrap_or_default()
            .iter()
            .any(|(_, id)| creator_of(id).is_some_and(|a| &a != me))
    }

    /// Asks the workflow whether the inspection takes this edit in its current status; returns
    /// the status.
    fn check_edit(&self, edit: Edit, what: &str) -> Result<InspectionStatus> {
        let status = self.status()?;
        rules::edit_allowed(status, edit).map_err(|_| CoreError::InvalidTransition {
            from: status.to_string(),
            to: what.into(),
        })?;
        Ok(status)
    }

    fn push_event(
        &mut self,
        kind: &str,
        to: Option<InspectionStatus>,
        ctx: &EditContext,
        at_ms: i64,
        text: Option<&str>,
        item: Option<&str>,
    ) -> std::result::Result<(), automerge::AutomergeError> {
        let events = self.container("events")?;
        let at = self.doc.length(&events);
        let entry = self.doc.insert_object(&events, at, ObjType::Map)?;
        self.doc.put(&entry, "kind", kind)?;
        if let Some(to) = to {
            self.doc.put(&entry, "to", to.as_str())?;
        }
        self.doc.put(&entry, "by", ctx.user_id.as_str())?;
        self.doc.put(&entry, "device", self.device_id().as_str())?;
        self.doc.put(&entry, "at", ScalarValue::Timestamp(at_ms))?;
        if let Some(text) = text {
            self.doc.put(&entry, "text", text)?;
        }
        if let Some(item) = item {
            self.doc.put(&entry, "item", item)?;
        }
        Ok(())
    }

    /// Commits the pending operations as one change, or drops them all if any failed.
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
                Err(CoreError::InvalidArgument(e.to_string()))
            }
        }
    }

    fn commit(
        &mut self,
        by: &str,
        action: &str,
        item: Option<&str>,
        text: Option<&str>,
        at_ms: i64,
    ) {
        let note = ChangeNote {
            by: by.to_string(),
            action: action.to_string(),
            item: item.map(str::to_string),
            text: text.map(str::to_string),
        };
        let message = note.encode();
        self.doc.commit_with(
            CommitOptions::default()
                .with_message(message)
                .with_time(at_ms),
        );
    }

    // ----- reads -------------------------------------------------------------------------

    /// One of the root containers; the layout check guarantees them on every document this
    /// type holds, so a miss is reported as an error rather than trusted away.
    fn container(&self, key: &str) -> std::result::Result<ObjId, automerge::AutomergeError> {
        self.map_obj(key)
            .ok_or_else(|| automerge::AutomergeError::InvalidObjId(key.to_string()))
    }

    fn map_obj(&self, key: &str) -> Option<ObjId> {
        match self.doc.get(ROOT, key) {
            Ok(Some((Value::Object(_), id))) => Some(id),
            _ => None,
        }
    }

    /// The standard id and version the inspection is pinned to (cheap: two lookups).
    pub fn pinned_standard(&self) -> (String, String) {
        (
            str_at(&self.doc, &ROOT, "standard_id").unwrap_or_default(),
            str_at(&self.doc, &ROOT, "standard_version").unwrap_or_default(),
        )
    }

    pub fn status(&self) -> Result<InspectionStatus> {
        str_at(&self.doc, &ROOT, "status")
            .and_then(|s| InspectionStatus::parse(&s))
            .ok_or_else(|| corrupt(&self.id, "unknown status"))
    }

    fn kind(&self) -> Result<InspectionKind> {
        str_at(&self.doc, &ROOT, "kind")
            .and_then(|s| InspectionKind::parse(&s))
            .ok_or_else(|| corrupt(&self.id, "unknown inspection kind"))
    }

    /// The current answers (automerge's deterministic pick where there is a conflict).
    pub fn answers(&self) -> Vec<RecordedAnswer> {
        let Some(answers) = self.map_obj("answers") else {
            return vec![];
        };
        self.doc
            .map_range(&answers, ..)
            .filter(|item| matches!(item.value, automerge::ValueRef::Object(ObjType::Map)))
            .filter_map(|item| read_answer(&self.doc, &item.id(), &item.key))
            .collect()
    }

    /// Items that two or more people set differently while apart.
    pub fn conflicts(&self) -> Vec<AnswerConflict> {
        let Some(answers) = self.map_obj("answers") else {
            return vec![];
        };
        // map_range flags keys with concurrent values, so only those are looked at closely.
        self.doc
            .map_range(&answers, ..)
            .filter(|i| i.conflict && matches!(i.value, automerge::ValueRef::Object(ObjType::Map)))
            .filter_map(|item| {
                let current = read_answer(&self.doc, &item.id(), &item.key)?;
                self.conflict_at(&answers, &item.key, &current)
            })
            .collect()
    }

    fn conflict_at(
        &self,
        answers: &ObjId,
        key: &str,
        current: &RecordedAnswer,
    ) -> Option<AnswerConflict> {
        let all = self.doc.get_all(answers, key).ok()?;
        if all.len() < 2 {
            return None;
        }
        let candidates: Vec<RecordedAnswer> = all
            .iter()
            .filter(|(v, _)| matches!(v, Value::Object(ObjType::Map)))
            .filter_map(|(_, entry)| read_answer(&self.doc, entry, key))
            .collect();
        // Two people who recorded the same thing agree: no conflict to show.
        let differ = candidates.windows(2).any(|w| w[0].answer != w[1].answer);
        differ.then(|| AnswerConflict {
            item_code: key.to_string(),
            current: current.clone(),
            candidates,
        })
    }

    pub fn gps_fixes(&self) -> Vec<GpsFix> {
        let Some(gps) = self.map_obj("gps") else {
            return vec![];
        };
        self.doc
            .list_range(&gps, ..)
            .filter_map(|item| {
                let f = Fields::of(&self.doc, &item.id());
                let location = LatLon {
                    lat: f.f64("lat")?,
                    lon: f.f64("lon")?,
                };
                Some(GpsFix {
                    location,
                    accuracy_m: f.f64("accuracy_m"),
                    altitude_m: f.f64("altitude_m"),
                    provider: f.str("provider").unwrap_or_default(),
                    at_ms: f.time("at").unwrap_or_default(),
                    is_mock: f.bool("mock").unwrap_or(false),
                })
            })
            .collect()
    }

    /// The evidence entries. An entry whose hash is not 64 lower-case hex digits is left out,
    /// and a `thumb` / `upload` that is not one, or that another device than the entry's creator
    /// wrote, reads as absent (see [`EvidenceRef::device_id`]).
    pub fn evidence(&self) -> Vec<EvidenceRef> {
        let Some(map) = self.map_obj("evidence") else {
            return vec![];
        };
        self.doc
            .map_range(&map, ..)
            .filter_map(|item| {
                let entry = item.id();
                let f = Fields::of(&self.doc, &entry);
                let sha256 = f.str("sha256").filter(|h| check_sha256(h).is_ok())?;
                let creator = creator_of(&entry)?;
                let by_creator =
                    |key: &str| written_by(&self.doc, &entry, key).as_ref() == Some(&creator);
                let rendition = |key: &str| {
                    f.str(key)
                        .filter(|h| check_sha256(h).is_ok() && by_creator(key))
                };
                Some(EvidenceRef {
                    item_code: f.str("item")?,
                    media: MediaKind::parse(&f.str("media")?)?,
                    added_by: f.str("by").unwrap_or_default(),
                    at_ms: f.time("at").unwrap_or_default(),
                    thumb: rendition("thumb"),
                    upload: rendition("upload"),
                    device_id: if by_creator("sha256") {
                        device_id_of(&creator)
                    } else {
                        String::new()
                    },
                    sha256,
                })
            })
            .collect()
    }

    pub fn events(&self) -> Vec<WorkflowEvent> {
        let Some(events) = self.map_obj("events") else {
            return vec![];
        };
        self.doc
            .list_range(&events, ..)
            .filter_map(|item| read_event(&Fields::of(&self.doc, &item.id())))
            .collect()
    }

    /// The whole inspection as an app shows it.
    pub fn read(&self) -> Result<Inspection> {
        let mut i = self.read_header()?;
        i.answers = self.answers();
        i.gps_fixes = self.gps_fixes();
        i.evidence = self.evidence();
        i.events = self.events();
        i.conflicts = self.conflicts();
        Ok(i)
    }

    /// The inspection's own fields and inspectors, without answers, GPS, evidence, events or
    /// conflicts (cheap: for callers that track those themselves).
    pub fn read_header(&self) -> Result<Inspection> {
        let d = &self.doc;
        let root = Fields::of(d, &ROOT);
        let inspectors = self
            .map_obj("inspectors")
            .map(|m| d.keys(&m).collect())
            .unwrap_or_default();
        Ok(Inspection {
            id: self.id.clone(),
            community_id: root.str("community_id").unwrap_or_default(),
            standard_id: root.str("standard_id").unwrap_or_default(),
            standard_version: root.str("standard_version").unwrap_or_default(),
            kind: self.kind()?,
            status: self.status()?,
            created_by: root.str("created_by").unwrap_or_default(),
            created_device_id: root.str("created_device").unwrap_or_default(),
            inspectors,
            started_at_ms: root.time("started_at").unwrap_or_default(),
            ended_at_ms: root.time("ended_at"),
            answers: vec![],
            gps_fixes: vec![],
            evidence: vec![],
            events: vec![],
            conflicts: vec![],
        })
    }

    /// One item's current answer and, if people set it differently while apart, its conflict.
    pub fn answer_state(
        &self,
        item_code: &str,
    ) -> (Option<RecordedAnswer>, Option<AnswerConflict>) {
        let Some(answers) = self.map_obj("answers") else {
            return (None, None);
        };
        let current = match self.doc.get(&answers, item_code) {
            Ok(Some((Value::Object(ObjType::Map), entry))) => {
                read_answer(&self.doc, &entry, item_code)
            }
            _ => None,
        };
        let conflict = current
            .as_ref()
            .and_then(|current| self.conflict_at(&answers, item_code, current));
        (current, conflict)
    }

    /// Every change ever made to the document, in causal order: who, which device, when, what.
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

/// The actor that created an object (the first part of its id).
pub(crate) fn creator_of(obj: &ObjId) -> Option<ActorId> {
    match obj {
        ObjId::Id(_, actor, _) => Some(actor.clone()),
        ObjId::Root => None,
    }
}

/// The actor whose operation set the current value of `key` in `obj`.
pub(crate) fn written_by(doc: &AutoCommit, obj: &ObjId, key: &str) -> Option<ActorId> {
    match doc.get(obj, key) {
        Ok(Some((_, id))) => creator_of(&id),
        _ => None,
    }
}

pub(super) fn evidence_key(item_code: &str, sha256: &str) -> String {
    format!("{item_code}/{sha256}")
}

/// One workflow event entry (docs/inspection-document.md, "Event map").
pub(super) fn read_event(f: &Fields) -> Option<WorkflowEvent> {
    let kind = match f.str("kind")?.as_str() {
        "status" => WorkflowEventKind::StatusChanged {
            to: InspectionStatus::parse(&f.str("to")?)?,
        },
        "amendment" => WorkflowEventKind::Amended,
        _ => return None,
    };
    Some(WorkflowEvent {
        kind,
        by: f.str("by").unwrap_or_default(),
        device_id: f.str("device").unwrap_or_default(),
        at_ms: f.time("at").unwrap_or_default(),
        text: f.str("text"),
        item_code: f.str("item"),
    })
}

fn check_sha256(hex: &str) -> Result<()> {
    if hex.len() == 64
        && hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        Ok(())
    } else {
        Err(CoreError::InvalidArgument(
            "sha256 must be 64 lower-case hex digits".into(),
        ))
    }
}

fn write_answer(
    doc: &mut AutoCommit,
    entry: &ObjId,
    answer: &ItemAnswer,
) -> std::result::Result<(), automerge::AutomergeError> {
    doc.put(entry, "value", answer.value.kind_name())?;
    match &answer.value {
        AnswerValue::Occurrences { counts } => {
            let map = doc.put_object(entry, "counts", ObjType::Map)?;
            for c in counts {
                doc.put(&map, c.finding.as_str(), c.count as u64)?;
            }
        }
        AnswerValue::Deduction { points } | AnswerValue::Bonus { points } => {
            doc.put(entry, "points", *points)?
        }
        AnswerValue::Rate { percent } => doc.put(entry, "percent", *percent)?,
        AnswerValue::NotApplicable | AnswerValue::Compliant | AnswerValue::Observed => {}
    }
    if let Some(n) = answer.sampled_units {
        doc.put(entry, "sampled_units", n as u64)?;
    }
    if let Some(note) = &answer.note {
        doc.put(entry, "note", note.as_str())?;
    }
    Ok(())
}

pub(super) fn read_answer(doc: &AutoCommit, entry: &ObjId, item: &str) -> Option<RecordedAnswer> {
    let f = Fields::of(doc, entry);
    let value = match f.str("value")?.as_str() {
        "not_applicable" => AnswerValue::NotApplicable,
        "compliant" => AnswerValue::Compliant,
        "observed" => AnswerValue::Observed,
        "occurrences" => {
            let counts = Fields::of(doc, &f.obj("counts")?)
                .0
                .into_iter()
                .map(|(finding, v)| {
                    let count = v.as_uint().unwrap_or(0).min(u32::MAX as u64) as u32;
                    OccurrenceCount { finding, count }
                })
                .collect();
            AnswerValue::Occurrences { counts }
        }
        "deduction" => AnswerValue::Deduction {
            points: f.f64("points")?,
        },
        "bonus" => AnswerValue::Bonus {
            points: f.f64("points")?,
        },
        "rate" => AnswerValue::Rate {
            percent: f.f64("percent")?,
        },
        _ => return None,
    };
    let location = match (f.f64("lat"), f.f64("lon")) {
        (Some(lat), Some(lon)) => Some(LatLon { lat, lon }),
        _ => None,
    };
    Some(RecordedAnswer {
        answer: ItemAnswer {
            item_code: item.to_string(),
            value,
            sampled_units: f
                .uint("sampled_units")
                .map(|n| n.min(u32::MAX as u64) as u32),
            note: f.str("note"),
        },
        by: f.str("by").unwrap_or_default(),
        device_id: f.str("device").unwrap_or_default(),
        at_ms: f.time("at").unwrap_or_default(),
        location,
    })
}

/// Checks the document is an inspection of a layout this build reads: first what says which
/// document it is (a failure: `CorruptDocument`), then every key against the schema
/// (`RuleBroken` naming the field).
fn check_layout(id: &str, doc: &AutoCommit) -> Result<()> {
    if str_at(doc, &ROOT, "type").as_deref() != Some(DOC_TYPE) {
        return Err(corrupt(id, "not an inspection document"));
    }
    match uint_at(doc, &ROOT, "schema") {
        Some(v) if v <= DOCUMENT_SCHEMA => {}
        Some(v) => {
            return Err(corrupt(
                id,
                format!("document schema {v} is newer than this build reads"),
            ));
        }
        None => return Err(corrupt(id, "missing schema")),
    }
    if str_at(doc, &ROOT, "id").as_deref() != Some(id) {
        return Err(corrupt(id, "document id does not match"));
    }
    rules::check_schema(doc, id)
        .map(|_| ())
        .map_err(|b| b.into_error(id))
}

/// One scalar by key, for the few single lookups (layout check, status).
fn scalar_at(doc: &AutoCommit, obj: &ObjId, key: &str) -> Option<ScalarValue> {
    match doc.get(obj, key) {
        Ok(Some((Value::Scalar(s), _))) => Some(s.into_owned()),
        _ => None,
    }
}

fn str_at(doc: &AutoCommit, obj: &ObjId, key: &str) -> Option<String> {
    match scalar_at(doc, obj, key)? {
        ScalarValue::Str(s) => Some(s.to_string()),
        _ => None,
    }
}

fn uint_at(doc: &AutoCommit, obj: &ObjId, key: &str) -> Option<u64> {
    match scalar_at(doc, obj, key)? {
        ScalarValue::Uint(n) => Some(n),
        ScalarValue::Int(n) => u64::try_from(n).ok(),
        _ => None,
    }
}

/// A fix the document may hold: a valid WGS-84 point, finite non-negative accuracy, finite altitude.
fn check_fix(fix: &GpsFix) -> Result<()> {
    crate::geo::validate(fix.location)?;
    for (what, v) in [("accuracy", fix.accuracy_m), ("altitude", fix.altitude_m)] {
        if v.is_some_and(|v| !v.is_finite()) || (what == "accuracy" && v.is_some_and(|v| v < 0.0)) {
            return Err(CoreError::InvalidArgument(format!(
                "GPS {what} must be a finite, non-negative number"
            )));
        }
    }
    Ok(())
}
