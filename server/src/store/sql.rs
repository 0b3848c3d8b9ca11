//! SQL text both engines run (PostgreSQL turns `?N` into `$N`): the read-access rule over
//! inspections, tasks and communities, ranking keys, media references. One statement of each.

use crate::model::*;

/// The ranking's grouping key and display name as SQL over `inspections i` left-joined with
/// `communities c` (the same text on SQLite and PostgreSQL).
pub(crate) fn ranking_columns(kind: ScopeKind) -> (&'static str, &'static str) {
    match kind {
        ScopeKind::Community => ("i.community_id", "coalesce(c.name, i.community_id)"),
        ScopeKind::Street => ("coalesce(c.street, '')", "coalesce(c.street, '')"),
        ScopeKind::District => ("coalesce(c.district, '')", "coalesce(c.district, '')"),
    }
}

/// SQL that is true when inspection `i` (joined with its community `c`) is readable by the
/// user bound to ?U (role ?R). Inspectors read what they created, co-inspect or are assigned.
const READABLE: &str = "(?R = 'admin'
    OR EXISTS (SELECT 1 FROM user_scopes s WHERE s.user_id = ?U AND (
        (s.kind = 'community' AND s.value = i.community_id)
        OR (s.kind = 'street' AND s.value = c.street)
        OR (s.kind = 'district' AND s.value = c.district)))
    OR (?R = 'inspector' AND (i.created_by = ?U OR EXISTS (
        SELECT 1 FROM inspection_inspectors x WHERE x.inspection_id = i.id AND x.user_id = ?U))))";

pub(crate) fn readable(role_param: usize, user_param: usize) -> String {
    READABLE
        .replace("?R", &format!("?{role_param}"))
        .replace("?U", &format!("?{user_param}"))
}

/// SQL true when community `c` is in the scope of user ?U with role ?R.
/// SQL: the task `t` (joined with its community as `c`) is readable by the caller — its community
/// is in scope, or the caller is the inspector who opened it or made its inspection. One rule for
/// the sync feed and for the task's photos (media.rs).
pub(crate) fn task_readable_sql(role: usize, user: usize) -> String {
    format!(
        "({} OR (?{role} = 'inspector' AND (t.opened_by = ?{user}
            OR EXISTS (SELECT 1 FROM inspections j WHERE j.id = t.inspection_id AND j.created_by = ?{user}))))",
        community_in_scope(role, user)
    )
}

pub(crate) fn community_in_scope(role: usize, user: usize) -> String {
    format!(
        "(?{role} = 'admin' OR EXISTS (SELECT 1 FROM user_scopes s WHERE s.user_id = ?{user} AND (
            (s.kind = 'community' AND s.value = c.id)
            OR (s.kind = 'street' AND s.value = c.street)
            OR (s.kind = 'district' AND s.value = c.district))))"
    )
}

/// The tasks the rankings count as open (both engines).
pub(crate) const UNCLOSED_TASKS: &str =
    "SELECT community_id, status, deadline FROM rectifications WHERE status != 'closed'";

/// The documents the caller may read that reference a hash (see
/// [`MediaIndex::referencing_documents`]), with SQLite's numbered parameters: ?1 role, ?2 user,
/// ?3 hash, ?4 limit. `collate` orders ids byte-wise on PostgreSQL as on SQLite.
pub(crate) fn referencing_documents_sql(
    readable: &str,
    task_readable: &str,
    collate: &str,
) -> String {
    format!(
        "SELECT id, (SELECT f.seq FROM change_feed f WHERE f.doc_id = d.id) FROM (
             SELECT e.inspection_id AS id, max(CASE WHEN i.created_by = ?2 THEN 1 ELSE 0 END) AS own
             FROM evidence_refs e
             JOIN inspections i ON i.id = e.inspection_id
             LEFT JOIN communities c ON c.id = i.community_id
             WHERE e.sha256 = ?3 AND {readable}
             GROUP BY e.inspection_id
             UNION ALL
             SELECT v.task_id, max(CASE WHEN t.opened_by = ?2 THEN 1 ELSE 0 END)
             FROM rectification_evidence v
             JOIN rectifications t ON t.id = v.task_id
             LEFT JOIN communities c ON c.id = t.community_id
             WHERE v.sha256 = ?3 AND v.phase = 'closure' AND {task_readable}
             GROUP BY v.task_id
         ) AS d
         ORDER BY own DESC, id {collate}
         LIMIT ?4"
    )
}

/// The blobs kept as a rendition of a hash that a device holds: ?1 device, ?2 hash, ?3 rendition.
pub(crate) fn held_blobs_sql(collate: &str) -> String {
    format!(
        "SELECT m.blob_sha256, m.bytes, m.mime, m.device_id, p.proved_at FROM media_blobs m
         JOIN media_proofs p ON p.blob_sha256 = m.blob_sha256 AND p.device_id = ?1
         WHERE m.sha256 = ?2 AND m.rendition = ?3
         ORDER BY p.proved_at, m.blob_sha256 {collate}"
    )
}

/// What a user's other open uploads hold: ?1 user, ?2..?5 the upload's key (device, hash,
/// rendition, blob). Sum of their totals, their count, and whether this one is open already.
pub(crate) const RESERVED_SQL: &str = "SELECT
       CAST(coalesce(sum(CASE WHEN m.mine THEN 0 ELSE total END), 0) AS BIGINT),
       CAST(coalesce(sum(CASE WHEN m.mine THEN 0 ELSE 1 END), 0) AS BIGINT),
       CAST(coalesce(max(CASE WHEN m.mine THEN 1 ELSE 0 END), 0) AS BIGINT)
     FROM (SELECT total, (device_id = ?2 AND sha256 = ?3 AND rendition = ?4
                          AND blob_sha256 = ?5) AS mine
           FROM media_staging WHERE user_id = ?1) AS m";

/// Ends one upload's reservation: ?1 device, ?2 hash, ?3 rendition, ?4 blob.
pub(crate) const RELEASE_SQL: &str = "DELETE FROM media_staging WHERE device_id = ?1
     AND sha256 = ?2 AND rendition = ?3 AND blob_sha256 = ?4";

pub const ROW_SELECT: &str =
    "SELECT idx, prev_hash, received_at, statement_sha256, device_signature,
    entry_hash, statement, device_id, inspection_id FROM chain_entries";

pub(crate) const INSPECTION_COLUMNS: &str = "i.id, i.community_id, c.name, c.district, c.street, i.kind, i.status,
    i.created_by, i.started_at, i.ended_at, i.total, i.max_points, i.grade, i.vetoed, i.conflict_count";

/// SQL true when the task `t` is overdue at the value of placeholder `now` — the SQL form of
/// `domain::tasks::is_overdue`, its statuses taken from the same rule.
pub(crate) fn overdue_sql(now: &str) -> String {
    let pending: Vec<String> = fenlei_core::rectification::RectificationStatus::ALL
        .iter()
        .filter(|s| s.is_pending())
        .map(|s| format!("'{}'", s.as_str()))
        .collect();
    format!(
        "(t.status IN ({}) AND t.deadline < {now})",
        pending.join(", ")
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_overdue_filter_names_the_pending_statuses() {
        assert_eq!(
            super::overdue_sql("?3"),
            "(t.status IN ('open', 'in_progress', 'reopened') AND t.deadline < ?3)"
        );
    }
}
