//! The sync endpoint's work (docs/sync-protocol.md), blocking, on top of [`Storage`].
//!
//! The server keeps no per-device sync state: each document message is answered from a fresh
//! automerge `sync::State`, so a replayed, duplicated or cut request can only repeat work, never
//! corrupt it. A request is all or nothing: every message is decoded, applied to a copy and
//! authorised first; only then are the documents that changed written, in one transaction.

use crate::domain::access::{authorise_inspection_access, can_read, in_scope};
use crate::error::{ServerError, ServerResult};
use crate::model::{DeviceAuth, Role};
use crate::store::Storage;
use automerge::sync::{State, SyncDoc};
use automerge::{AutoCommit, ChangeHash};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use fenlei_core::docrules::{Writer, WriterRole, actor_of};
use fenlei_core::guard::{DecodeBudget, decode_sync_message};
use fenlei_core::inspection::{Inspection, InspectionDoc, check_write};
use fenlei_core::protocol::*;
use fenlei_core::rectification::{Rectification, RectificationDoc};
use std::collections::HashSet;
use std::panic::{AssertUnwindSafe, catch_unwind};

// The actor documents are opened with: it merges, never writes (crate::actors).
use crate::actors::MERGE_ACTOR as SERVER_DEVICE;

fn invalid(doc: &str, reason: impl Into<String>) -> ServerError {
    ServerError::InvalidDocument {
        doc: doc.to_string(),
        reason: reason.into(),
    }
}

fn forbidden(doc: &str, reason: impl Into<String>) -> ServerError {
    ServerError::ForbiddenDocument {
        doc: doc.to_string(),
        reason: reason.into(),
    }
}

/// Runs automerge work on untrusted input; a panic becomes a 422 for that document.
fn guarded<T>(doc: &str, work: impl FnOnce() -> ServerResult<T>) -> ServerResult<T> {
    match catch_unwind(AssertUnwindSafe(work)) {
        Ok(r) => r,
        Err(_) => Err(invalid(
            doc,
            "sync message could not be applied (decoder failed)",
        )),
    }
}

/// The document rules' view of who makes a request's changes.
fn writer_of(auth: &DeviceAuth) -> Writer<'_> {
    Writer {
        user_id: &auth.user.id,
        device_id: &auth.device_id,
        role: match auth.user.role {
            Role::Inspector => WriterRole::Inspector,
            Role::Supervisor | Role::Admin => WriterRole::Reviewer,
        },
    }
}

/// What one document message produced.
struct Outcome {
    id: String,
    seq_loaded: Option<i64>,
    reply: Vec<u8>,
    persist: Option<Vec<u8>>,
}

fn process_doc(
    storage: &dyn Storage,
    auth: &DeviceAuth,
    device_actor: &automerge::ActorId,
    msg: &DocMessage,
    protocol: u32,
    budget: &mut DecodeBudget,
) -> ServerResult<Outcome> {
    let id = msg.id.as_str();
    let bytes = B64
        .decode(msg.message.as_bytes())
        .map_err(|_| ServerError::BadRequest(format!("document {id}: message is not base64")))?;
    // Walked and bounded before automerge allocates anything for it: chunk types, deflated
    // sizes and column values (one budget for the whole request), bloom filter parameters.
    let message = decode_sync_message(id, &bytes, budget)?;
    // One read: the feed position, the kind and the bytes agree, and what the checks below
    // compare is exactly what the message is merged into.
    let stored = storage.sync_view(id)?;
    let (seq_loaded, stored_kind) = (stored.seq, stored.kind);
    if stored_kind.as_deref() == Some("rectification") && protocol < 2 {
        return Err(forbidden(id, "rectification tasks need sync protocol 2"));
    }
    // What the device may see of the stored document, by kind.
    let before: Option<Inspection> = stored.inspection.map(|d| d.read()).transpose()?;
    let before_task: Option<Rectification> = stored.task.map(|d| d.read()).transpose()?;
    let community_id = before
        .as_ref()
        .map(|b| b.community_id.clone())
        .or_else(|| before_task.as_ref().map(|t| t.community_id.clone()));
    let community = match &community_id {
        Some(c) => storage.community(c)?,
        None => None,
    };
    if let Some(b) = &before
        && !can_read(auth, b, community.as_ref())
    {
        return Err(forbidden(id, "outside this device's scope"));
    }
    if let Some(t) = &before_task
        && !(auth.user.role == Role::Admin
            || in_scope(auth, &t.community_id, community.as_ref())
            || t.opened_by == auth.user.id)
    {
        return Err(forbidden(id, "outside this device's scope"));
    }

    let mut doc: AutoCommit = stored.automerge.unwrap_or_default();
    let before_heads: Vec<ChangeHash> = doc.get_heads();
    let mut state = State::new();
    guarded(id, || {
        doc.sync()
            .receive_sync_message(&mut state, message)
            .map_err(|e| invalid(id, e.to_string()))
    })?;
    let new_changes = doc.get_changes(&before_heads);
    let mut persist = None;
    if !new_changes.is_empty() {
        for change in &new_changes {
            if change.actor_id() != device_actor {
                return Err(forbidden(
                    id,
                    "a change was made by another device's actor; devices push only their own changes",
                ));
            }
            let by = change
                .message()
                .and_then(|m| serde_json::from_str::<serde_json::Value>(m).ok())
                .and_then(|v| v.get("by").and_then(|b| b.as_str()).map(str::to_string));
            if by.as_deref() != Some(auth.user.id.as_str()) {
                return Err(forbidden(id, "a change names another user"));
            }
        }
        let saved = doc.save();
        let kind = match stored_kind {
            Some(k) => Some(k),
            None => fenlei_core::rectification::document_type(id, &saved),
        };
        if kind.as_deref() == Some("rectification") {
            if protocol < 2 {
                return Err(forbidden(id, "rectification tasks need sync protocol 2"));
            }
            let after_doc = guarded(id, || {
                Ok(RectificationDoc::load(id, &saved, SERVER_DEVICE)?)
            })?;
            let after = after_doc.read()?;
            let community = match &community {
                Some(c) => Some(c.clone()),
                None => storage.community(&after.community_id)?,
            };
            let scoped = in_scope(auth, &after.community_id, community.as_ref());
            crate::domain::access::authorise_task_access(
                auth,
                id,
                before_task.as_ref(),
                community.is_some(),
                scoped,
            )?;
            fenlei_core::rectification::check_write(
                before_task.as_ref(),
                &after_doc,
                &new_changes,
                &writer_of(auth),
            )?;
        } else {
            // The merged result must be a valid inspection: a strict decode and the schema.
            let after_doc = guarded(id, || Ok(InspectionDoc::load(id, &saved, SERVER_DEVICE)?))?;
            let after = after_doc.read()?;
            if before.is_none() && after.id != id {
                return Err(invalid(id, "the document's id differs from the message's"));
            }
            let community = match &community {
                Some(c) => Some(c.clone()),
                None => storage.community(&after.community_id)?,
            };
            authorise_inspection_access(
                |user| Ok(storage.user(user)?.map(|u| u.role)),
                auth,
                id,
                before.as_ref(),
                &after,
                community.as_ref(),
            )?;
            let standard =
                storage.published_standard(&after.standard_id, &after.standard_version)?;
            check_write(
                before.as_ref(),
                &after_doc,
                &new_changes,
                &writer_of(auth),
                standard.as_deref(),
            )?;
        }
        // A whole save: the store's strict decoder checks received bytes as a document.
        persist = Some(saved);
    } else if stored_kind.is_none() && !doc.get_heads().is_empty() {
        return Err(invalid(id, "message changes nothing yet names heads"));
    }
    let reply = doc
        .sync()
        .generate_sync_message(&mut state)
        .map(|m| m.encode())
        .unwrap_or_default();
    Ok(Outcome {
        id: id.to_string(),
        seq_loaded,
        reply,
        persist,
    })
}

/// Parses a feed cursor `"<scope epoch>:<seq>"`. A cursor from another scope epoch (the user's
/// scope changed since) restarts the feed from the beginning.
fn parse_cursor(cursor: &str, epoch: i64) -> ServerResult<i64> {
    if cursor.is_empty() {
        return Ok(0);
    }
    let (e, s) = cursor
        .split_once(':')
        .ok_or_else(|| ServerError::BadRequest("malformed cursor".into()))?;
    let e: i64 = e
        .parse()
        .map_err(|_| ServerError::BadRequest("malformed cursor".into()))?;
    let s: i64 = s
        .parse()
        .map_err(|_| ServerError::BadRequest("malformed cursor".into()))?;
    if s < 0 {
        return Err(ServerError::BadRequest("malformed cursor".into()));
    }
    Ok(if e == epoch { s } else { 0 })
}

pub fn handle_sync(
    storage: &dyn Storage,
    auth: &DeviceAuth,
    request: SyncRequest,
) -> ServerResult<SyncResponse> {
    if !(MIN_PROTOCOL_VERSION..=PROTOCOL_VERSION).contains(&request.protocol) {
        return Err(ServerError::BadRequest(format!(
            "unsupported protocol {} (this server speaks {PROTOCOL_VERSION})",
            request.protocol
        )));
    }
    if request.docs.len() > MAX_DOCS_PER_REQUEST {
        return Err(ServerError::BadRequest(format!(
            "at most {MAX_DOCS_PER_REQUEST} documents per request"
        )));
    }
    let after = parse_cursor(&request.cursor, auth.user.scope_epoch)?;
    let mut seen = HashSet::new();
    for d in &request.docs {
        if d.id.is_empty()
            || d.id.len() > 64
            || !d.id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        {
            return Err(ServerError::BadRequest(
                "document ids are 1-64 characters of [A-Za-z0-9-]".into(),
            ));
        }
        if !seen.insert(d.id.as_str()) {
            return Err(ServerError::BadRequest(format!(
                "document {} appears twice",
                d.id
            )));
        }
    }
    let actor = actor_of(&auth.device_id)?;
    let mut budget = DecodeBudget::per_request();
    let outcomes = request
        .docs
        .iter()
        .map(|d| process_doc(storage, auth, &actor, d, request.protocol, &mut budget))
        .collect::<ServerResult<Vec<_>>>()?;

    let batch: Vec<(String, Vec<u8>)> = outcomes
        .iter()
        .filter_map(|o| o.persist.as_ref().map(|b| (o.id.clone(), b.clone())))
        .collect();
    let applied = if batch.is_empty() {
        Vec::new()
    } else {
        storage.apply_documents(&batch)?
    };
    if let Some(bad) = applied.iter().find(|a| a.error.is_some()) {
        // Checked above, so this is a bug rather than bad input; the rest was still committed
        // consistently and the device will resend.
        return Err(invalid(
            &bad.id,
            bad.error
                .as_ref()
                .map(|e| e.to_string())
                .unwrap_or_default(),
        ));
    }
    let mut docs = Vec::with_capacity(outcomes.len());
    for o in outcomes {
        // Report the position after our own write only when nothing else wrote in between:
        // the reply then reflects exactly that position.
        let seq = match applied.iter().find(|a| a.id == o.id) {
            Some(a) if a.seq_before == o.seq_loaded => a.seq_after,
            _ => o.seq_loaded,
        };
        docs.push(DocReply {
            id: o.id,
            seq: seq.unwrap_or(0).max(0) as u64,
            message: B64.encode(&o.reply),
        });
    }
    // Tasks the standard's rules call for on what was just submitted, opened before the
    // feed is read so this device receives them in the same sync (protocol 2).
    for a in &applied {
        if storage.document_kind(&a.id)?.as_deref() == Some("inspection") {
            storage.open_due_rectifications(&a.id)?;
        }
    }
    let (changed, next, more) = if request.feed && request.protocol >= 2 {
        storage.feed_with_tasks(auth, after, FEED_PAGE)?
    } else if request.feed {
        storage.feed_after(auth, after, FEED_PAGE)?
    } else {
        (Vec::new(), after, false)
    };
    let reference = if request.reference {
        storage.reference_after(request.ref_cursor, &auth.user, REFERENCE_PAGE)?
    } else {
        ReferenceUpdate {
            cursor: request.ref_cursor,
            ..Default::default()
        }
    };
    Ok(SyncResponse {
        protocol: request.protocol,
        cursor: format!("{}:{}", auth.user.scope_epoch, next),
        changed,
        feed_more: more,
        docs,
        reference,
    })
}
