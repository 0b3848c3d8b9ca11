//! Who may read and write what: the access rules every route, the sync endpoint and both
//! storage engines' queries apply. What a write may *do* to a document is the document rules'
//! judgement (`fenlei_core::inspection::check_write`, `fenlei_core::rectification::check_write`);
//! these rules decide whether the user may touch the document at all.

use crate::error::{ServerError, ServerResult};
use crate::model::{DeviceAuth, Role};
use fenlei_core::community::Community;
use fenlei_core::inspection::Inspection;
use fenlei_core::rectification::Rectification;

fn forbidden(doc: &str, reason: impl Into<String>) -> ServerError {
    ServerError::ForbiddenDocument {
        doc: doc.to_string(),
        reason: reason.into(),
    }
}

/// The supervisor API is for supervisors and admins.
pub fn require_reviewer(auth: &DeviceAuth) -> ServerResult<()> {
    match auth.user.role {
        Role::Supervisor | Role::Admin => Ok(()),
        Role::Inspector => Err(ServerError::Forbidden(
            "the supervisor API is for supervisors and admins".into(),
        )),
    }
}

/// Whether the community is inside the user's scope entries.
pub fn in_scope(auth: &DeviceAuth, community_id: &str, community: Option<&Community>) -> bool {
    let s = &auth.scope;
    s.communities.iter().any(|c| c == community_id)
        || community
            .is_some_and(|c| s.streets.contains(&c.street) || s.districts.contains(&c.district))
}

pub fn can_read(auth: &DeviceAuth, i: &Inspection, community: Option<&Community>) -> bool {
    match auth.user.role {
        Role::Admin => true,
        Role::Supervisor => in_scope(auth, &i.community_id, community),
        Role::Inspector => {
            i.created_by == auth.user.id
                || i.inspectors.contains(&auth.user.id)
                || in_scope(auth, &i.community_id, community)
        }
    }
}

/// The access rule for writing an inspection (which inspections a user may write at all); what
/// the changes may do is the document rules' judgement (`fenlei_core::inspection::check_write`).
pub fn authorise_inspection_access(
    role_of: impl Fn(&str) -> ServerResult<Option<Role>>,
    auth: &DeviceAuth,
    id: &str,
    before: Option<&Inspection>,
    after: &Inspection,
    community: Option<&Community>,
) -> ServerResult<()> {
    // A co-inspector reads and writes the inspection wherever it is: only inspectors' accounts
    // are made co-inspectors.
    for user in after
        .inspectors
        .iter()
        .filter(|u| before.is_none_or(|b| !b.inspectors.contains(u)))
    {
        let is_inspector = *user == auth.user.id || role_of(user)? == Some(Role::Inspector);
        if !is_inspector {
            return Err(forbidden(id, "co-inspectors are inspectors' accounts"));
        }
    }
    match (auth.user.role, before) {
        (Role::Inspector, None) => {
            if community.is_none() {
                return Err(forbidden(id, "unknown community"));
            }
            if !in_scope(auth, &after.community_id, community) {
                return Err(forbidden(
                    id,
                    "community outside this inspector's assignments",
                ));
            }
        }
        (Role::Inspector, Some(b)) => {
            if !can_read(auth, b, community) {
                return Err(forbidden(
                    id,
                    "not an inspection this inspector created or is assigned to",
                ));
            }
        }
        (_, None) => return Err(forbidden(id, "only inspectors create inspections")),
        (Role::Supervisor | Role::Admin, Some(b)) => {
            if !can_read(auth, b, community) {
                return Err(forbidden(id, "outside this supervisor's scope"));
            }
        }
    }
    Ok(())
}

/// A signed statement (it carries the inspector's places and times) is shown to the device that
/// signed it and to admins; everyone else sees the entry's link and hash only.
pub fn may_read_statement(auth: &DeviceAuth, signer_device: &str) -> bool {
    signer_device == auth.device_id || auth.user.role == Role::Admin
}

/// Whether every receipt of an inspection is listed to `auth` (a device always sees its own):
/// admins, and supervisors whose scope holds the inspection's community (`inspection`: its
/// community id and record; `None` when there is no such inspection).
pub fn may_read_receipts(
    auth: &DeviceAuth,
    inspection: Option<(&str, Option<&Community>)>,
) -> bool {
    match auth.user.role {
        Role::Admin => true,
        Role::Inspector => false,
        Role::Supervisor => inspection.is_some_and(|(id, c)| in_scope(auth, id, c)),
    }
}

/// Whether `auth` may read the task: its community is in scope, or the inspector opened it.
pub fn task_readable(auth: &DeviceAuth, t: &Rectification, community: Option<&Community>) -> bool {
    auth.user.role == Role::Admin
        || in_scope(auth, &t.community_id, community)
        || (auth.user.role == Role::Inspector && t.opened_by == auth.user.id)
}

/// The access rule for writing a rectification task (sync): anyone who may work in its
/// community (admins everywhere, and the user who opened it). What the changes may do is the
/// document rules' judgement (`fenlei_core::rectification::check_write`).
pub fn authorise_task_access(
    auth: &DeviceAuth,
    id: &str,
    before: Option<&Rectification>,
    community_known: bool,
    in_scope: bool,
) -> ServerResult<()> {
    let forbidden = |reason: &str| ServerError::ForbiddenDocument {
        doc: id.to_string(),
        reason: reason.to_string(),
    };
    match before {
        None => {
            if !community_known {
                return Err(forbidden("unknown community"));
            }
            if !(in_scope || auth.user.role == Role::Admin) {
                return Err(forbidden("community outside this user's scope"));
            }
        }
        Some(b) => {
            if !(in_scope || auth.user.role == Role::Admin || b.opened_by == auth.user.id) {
                return Err(forbidden("task outside this user's scope"));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::User;
    use fenlei_core::protocol::Assignments;

    fn caller(role: Role, communities: &[&str]) -> DeviceAuth {
        DeviceAuth {
            device_id: "dev-1".into(),
            user: User {
                id: "u1".into(),
                name: "U".into(),
                role,
                scope_epoch: 0,
            },
            scope: Assignments {
                communities: communities.iter().map(|c| c.to_string()).collect(),
                ..Default::default()
            },
        }
    }

    #[test]
    fn receipts_and_statements_go_to_their_signer_admins_and_supervisors_in_scope() {
        let sup = caller(Role::Supervisor, &["c1"]);
        assert!(may_read_receipts(&sup, Some(("c1", None))));
        assert!(!may_read_receipts(&sup, Some(("c2", None))));
        assert!(!may_read_receipts(&sup, None), "no such inspection");
        assert!(may_read_receipts(&caller(Role::Admin, &[]), None));
        assert!(!may_read_receipts(
            &caller(Role::Inspector, &["c1"]),
            Some(("c1", None))
        ));

        assert!(may_read_statement(&sup, "dev-1"), "its own signature");
        assert!(!may_read_statement(&sup, "dev-2"));
        assert!(may_read_statement(&caller(Role::Admin, &[]), "dev-2"));
    }
}
