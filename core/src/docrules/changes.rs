//! The operations of the changes being judged, decoded once: which object each writes into,
//! under which key, what it does, and which change (so which device and user) made each new
//! object. The structure rules read these rather than comparing whole documents, so an edit is
//! judged by what it did, including a write that lost a conflict and is not visible.

use super::ChangeNote;
use super::device_id_of;
use crate::guard::guarded;
use automerge::legacy::{Key, ObjectId, OpType};
use automerge::{ActorId, Change, ObjId, ObjType, ScalarValue};
use std::collections::HashSet;

/// An automerge object by the id of the operation that made it: (counter, actor).
pub(crate) type ObjKey = (u64, ActorId);

/// The object key of an id from a document (`None` for the root).
pub(crate) fn key_of(obj: &ObjId) -> Option<ObjKey> {
    match obj {
        ObjId::Root => None,
        ObjId::Id(counter, actor, _) => Some((*counter, actor.clone())),
    }
}

/// Where in its object an operation writes.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum OpKey {
    /// A map key.
    Map(String),
    /// A list element: a new element when `insert`, else the element it replaces or deletes.
    Seq { insert: bool },
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum OpAction {
    Make(ObjType),
    Put(ScalarValue),
    Delete,
    /// Counter increments and text marks: nothing in these documents uses them.
    Other,
}

#[derive(Debug, Clone)]
pub(crate) struct NewOp {
    /// The object written into; `None` is the root map.
    pub obj: Option<ObjKey>,
    pub key: OpKey,
    pub action: OpAction,
    /// The operation overwrites or deletes values it has seen (its `pred` is not empty).
    pub overwrites: bool,
    /// The operation overwrites or deletes a value another actor wrote.
    pub overwrites_others: bool,
}

struct Author {
    actor: ActorId,
    /// Operation counters [start, end) of the change.
    start: u64,
    end: u64,
    note: Option<ChangeNote>,
}

/// The decoded operations of a set of changes (those a request or a received message adds to
/// a document).
pub(crate) struct NewChanges {
    pub ops: Vec<NewOp>,
    created: HashSet<ObjKey>,
    authors: Vec<Author>,
}

impl NewChanges {
    pub(crate) fn of(doc_id: &str, changes: &[Change]) -> crate::Result<NewChanges> {
        guarded(doc_id, || {
            let mut new = NewChanges {
                ops: Vec::new(),
                created: HashSet::new(),
                authors: Vec::with_capacity(changes.len()),
            };
            for change in changes {
                let actor = change.actor_id().clone();
                let start = change.start_op().get();
                let expanded = change.decode();
                for (n, op) in expanded.operations.into_iter().enumerate() {
                    let counter = start + n as u64;
                    let obj = match op.obj {
                        ObjectId::Root => None,
                        ObjectId::Id(id) => Some((id.0, id.1)),
                    };
                    let key = match op.key {
                        Key::Map(k) => OpKey::Map(k.to_string()),
                        Key::Seq(_) => OpKey::Seq { insert: op.insert },
                    };
                    let action = match op.action {
                        OpType::Make(t) => {
                            new.created.insert((counter, actor.clone()));
                            OpAction::Make(t)
                        }
                        OpType::Put(v) => OpAction::Put(v),
                        OpType::Delete => OpAction::Delete,
                        _ => OpAction::Other,
                    };
                    new.ops.push(NewOp {
                        obj,
                        key,
                        action,
                        overwrites: !op.pred.is_empty(),
                        overwrites_others: op.pred.iter().any(|p| p.1 != actor),
                    });
                }
                new.authors.push(Author {
                    actor,
                    start,
                    end: start + change.len() as u64,
                    note: ChangeNote::parse(change.message()),
                });
            }
            Ok(new)
        })
    }

    /// Whether these changes made the object.
    pub(crate) fn created(&self, obj: &ObjId) -> bool {
        key_of(obj).is_some_and(|k| self.created.contains(&k))
    }

    /// Whether an operation writes into an object these changes made.
    pub(crate) fn writes_into_new(&self, op: &NewOp) -> bool {
        op.obj.as_ref().is_some_and(|k| self.created.contains(k))
    }

    /// The user (from the change message) and device (the actor) of the change that made `obj`.
    pub(crate) fn author_of(&self, obj: &ObjId) -> Option<(Option<&str>, String)> {
        let (counter, actor) = key_of(obj)?;
        self.authors
            .iter()
            .find(|a| a.actor == actor && (a.start..a.end).contains(&counter))
            .map(|a| {
                (
                    a.note.as_ref().map(|n| n.by.as_str()),
                    device_id_of(&a.actor),
                )
            })
    }
}
