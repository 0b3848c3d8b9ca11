//! The rules every synced document obeys, stated once and used at every place a document's bytes
//! enter: the server judges each sync request with them, the device each change it receives, and
//! the edit methods of [`crate::inspection::InspectionDoc`] and
//! [`crate::rectification::RectificationDoc`] ask the same workflow functions before they write.
//!
//! Three layers, each with a name a refusal carries ([`Rule`]):
//! - **Schema**: every key of the document has its documented automerge type and value
//!   (docs/inspection-document.md, docs/rectification.md). Checked on the whole document whenever
//!   it is loaded or changes are applied, so a wrong type is an error naming the field, never a
//!   silently dropped answer.
//! - **Structure** (role-free, checked against the document before the changes): header fields
//!   are written once, entries (answers, events, evidence, fixes, closure evidence, follow-ups)
//!   are never edited in place, lists and sets only grow, and each new entry names the user and
//!   device of the change that made it. Any merge of honest changes obeys these, so a device can
//!   check what it receives from the server with them.
//! - **Workflow and role** (the server, against the stored document): which status moves are
//!   allowed, when answers may change and how amendments are recorded, what a reviewer may
//!   touch, closure evidence, the standard an inspection is pinned to.
//!
//! The per-document rules are in `inspection/rules.rs` and `rectification/rules.rs`; this module
//! holds what they share: the refusal type, the writer, the decoded new changes and typed field
//! access.

mod changes;
mod fields;

pub(crate) use changes::{NewChanges, ObjKey, OpAction, OpKey, key_of};
pub(crate) use fields::{Field, Fields, Shape, is_sha256};

use crate::CoreError;
use automerge::{ActorId, AutoCommit, ChangeHash, ObjId};

/// The device id apps see for an automerge actor: a UUID when the actor is one (ours always
/// are), hex otherwise.
pub fn device_id_of(actor: &ActorId) -> String {
    uuid::Uuid::from_slice(actor.as_ref())
        .map(|u| u.to_string())
        .unwrap_or_else(|_| actor.to_hex_string())
}

/// The automerge actor of a device id (a UUID string).
pub fn actor_of(device_id: &str) -> crate::Result<ActorId> {
    let uuid = uuid::Uuid::parse_str(device_id)
        .map_err(|_| CoreError::InvalidArgument("device id must be a UUID".into()))?;
    Ok(ActorId::from(uuid.as_bytes().as_slice()))
}

/// The rules a refused change can break. The names are part of the protocol: the server's error
/// body carries them (`rule`), and the documents' pages list each under its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rule {
    /// A key has the wrong automerge type, an unknown value, or is not part of the layout.
    Schema,
    /// A header field (identity, community, standard, creator, ...) was written after creation.
    HeaderFixed,
    /// An existing entry was edited in place (every edit puts a new entry).
    EntriesImmutable,
    /// Something was removed from or replaced in a list or set that only grows.
    AppendOnly,
    /// A new entry names another user or device than the change that made it.
    Identity,
    /// A status move the workflow does not allow.
    Workflow,
    /// An answer or evidence edit the inspection's state does not allow, or without its
    /// amendment event.
    Amendment,
    /// A return (inspections) or reopening (tasks) without a comment.
    ReviewComment,
    /// A task submitted or closed without the closure evidence its rule requires.
    ClosureEvidence,
    /// The inspection's standard is unknown, or an answer does not fit it.
    Standard,
    /// This writer's role may not make this change.
    Role,
}

impl Rule {
    pub fn name(self) -> &'static str {
        match self {
            Rule::Schema => "schema",
            Rule::HeaderFixed => "header_fixed",
            Rule::EntriesImmutable => "entries_immutable",
            Rule::AppendOnly => "append_only",
            Rule::Identity => "identity",
            Rule::Workflow => "workflow",
            Rule::Amendment => "amendment",
            Rule::ReviewComment => "review_comment",
            Rule::ClosureEvidence => "closure_evidence",
            Rule::Standard => "standard",
            Rule::Role => "role",
        }
    }

    /// Whether a break is about what this writer may touch (HTTP 403: history and identities
    /// that are not theirs to change, or a move their role does not make) rather than about a
    /// next state no one may reach (HTTP 422).
    pub fn is_permission(self) -> bool {
        matches!(
            self,
            Rule::HeaderFixed
                | Rule::EntriesImmutable
                | Rule::AppendOnly
                | Rule::Identity
                | Rule::Role
        )
    }
}

impl std::fmt::Display for Rule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One broken rule and what broke it, naming the field.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleBreak {
    pub rule: Rule,
    pub reason: String,
}

impl RuleBreak {
    pub(crate) fn new(rule: Rule, reason: impl Into<String>) -> RuleBreak {
        RuleBreak {
            rule,
            reason: reason.into(),
        }
    }

    pub fn into_error(self, doc_id: &str) -> CoreError {
        CoreError::RuleBroken {
            id: doc_id.to_string(),
            rule: self.rule,
            reason: self.reason,
        }
    }
}

pub(crate) type Checked<T = ()> = std::result::Result<T, RuleBreak>;

/// What a writer may do, as far as the document rules care. Scope (which communities) is the
/// server's access rule, checked apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriterRole {
    /// Records inspections, opens and works rectification tasks.
    Inspector,
    /// A supervisor or admin: approves and returns inspections, closes and reopens tasks.
    Reviewer,
}

/// Who made the changes being judged: the authenticated user and device of a sync request.
#[derive(Debug, Clone, Copy)]
pub struct Writer<'a> {
    pub user_id: &'a str,
    pub device_id: &'a str,
    pub role: WriterRole,
}

/// The JSON of every change message: `{"by", "action", "item"?, "text"?}`.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
pub(crate) struct ChangeNote {
    pub by: String,
    pub action: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub item: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub text: Option<String>,
}

impl ChangeNote {
    pub(crate) fn parse(message: Option<&str>) -> Option<ChangeNote> {
        message.and_then(|m| serde_json::from_str(m).ok())
    }

    pub(crate) fn encode(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// A new-able entry (answer, event, evidence, closure entry, follow-up) whose author the
/// identity rule checks: `by` (and `device`, where the layout has one) as the entry says.
pub(crate) struct Authored {
    pub id: ObjId,
    pub path: String,
    pub by: String,
    /// `None` where the layout has no device field.
    pub device: Option<String>,
}

/// The identity rule: each entry the new changes made names the user (the change message's
/// `by`) and the device (its actor) of the change that made it.
pub(crate) fn identity(authored: &[Authored], new: &NewChanges) -> Checked {
    for a in authored.iter().filter(|a| new.created(&a.id)) {
        let Some((by, device)) = new.author_of(&a.id) else {
            continue;
        };
        if by != Some(a.by.as_str()) {
            return Err(RuleBreak::new(
                Rule::Identity,
                match by {
                    Some(_) => format!(
                        "{}.by names another user than the change that made it",
                        a.path
                    ),
                    None => format!(
                        "{} was made by a change whose message names no user",
                        a.path
                    ),
                },
            ));
        }
        if a.device.as_ref().is_some_and(|d| *d != device) {
            return Err(RuleBreak::new(
                Rule::Identity,
                format!("{}.device is not the device that made the change", a.path),
            ));
        }
    }
    Ok(())
}

/// Checks changes a device received against the document it held (`before_heads`; `after` holds
/// them plus the received ones): `walk` checks the schema and returns what the structure rules
/// need, `rules` applies those rules to the new changes.
pub(crate) fn check_received<W>(
    id: &str,
    before_heads: &[ChangeHash],
    after: &mut AutoCommit,
    walk: impl FnOnce(&AutoCommit, &str) -> Checked<W>,
    rules: impl FnOnce(&W, &NewChanges) -> Checked,
) -> crate::Result<()> {
    let changes = after.get_changes(before_heads);
    if changes.is_empty() {
        return Ok(());
    }
    let new = NewChanges::of(id, &changes)?;
    let walked = walk(after, id).map_err(|b| b.into_error(id))?;
    rules(&walked, &new).map_err(|b| b.into_error(id))
}
