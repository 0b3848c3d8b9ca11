//! The automerge actors the server writes or opens documents as, and the one rule that keeps
//! devices off them (docs/review.md "The actor", docs/sync-protocol.md "Enrollment").
//!
//! A device's id is its automerge actor: every change it pushes must carry it, and the sync
//! handler refuses any other. So an id the server itself writes or opens documents as must never
//! be enrolled as a device: a device holding a supervisor's review actor could push changes the
//! history shows as that supervisor's review, and one holding the merge actor would fork the
//! sequence numbers the server's own copies count on.

use uuid::Uuid;

/// The actor the server opens documents with to merge what devices send (the sync handler, the
/// PostgreSQL engine). It never writes.
pub const MERGE_ACTOR: &str = "00000000-0000-0000-0000-000000000000";

/// Why `device_id` cannot be a device's id, or `None` when it can. `opened_as` is the actor the
/// storage engine opens documents with (`DocumentStore::opening_actor`). Refused:
///
/// - anything but a UUID in its one canonical spelling (lower-case, hyphenated): the actor is the
///   UUID's bytes, so `ABC…`, `{abc…}` or `urn:uuid:abc…` would be a second name for one actor;
/// - the nil UUID ([`MERGE_ACTOR`]) and the max UUID;
/// - every version-8 UUID: each actor the server writes with is one
///   (`supervision::server_actor` — a supervisor's reviews and task decisions, the standard's
///   rule-opened tasks, for every user, present or future, and any purpose added later), while
///   devices make random (version 4) ids;
/// - `opened_as`.
pub fn device_id_refusal(device_id: &str, opened_as: &str) -> Option<String> {
    let Ok(uuid) = Uuid::parse_str(device_id) else {
        return Some("device_id must be a UUID".into());
    };
    if uuid.hyphenated().to_string() != device_id {
        return Some("device_id must be a UUID written lower-case with hyphens".into());
    }
    if uuid.is_nil() || uuid.is_max() || device_id == opened_as {
        return Some("device_id is reserved for the server".into());
    }
    if uuid.get_version_num() == 8 {
        return Some(
            "device_id is reserved for the server (version-8 UUIDs are the server's actors); \
             devices use random (version 4) ids"
                .into(),
        );
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::review::STANDARD_USER;
    use crate::domain::review::server_actor;
    use proptest::prelude::*;

    #[test]
    fn every_id_the_server_writes_or_opens_as_is_refused() {
        let opened_as = "2f0c5a8e-6d1b-4c7a-9e3f-1a2b3c4d5e6f";
        for id in [
            MERGE_ACTOR.to_string(),
            "ffffffff-ffff-ffff-ffff-ffffffffffff".to_string(),
            server_actor("review", "sup.wang"),
            server_actor("review", "a.user.not.created.yet"),
            server_actor("standard", STANDARD_USER),
            server_actor("some-later-purpose", "x"),
            opened_as.to_string(),
        ] {
            assert!(device_id_refusal(&id, opened_as).is_some(), "{id}");
        }
        // Other spellings of a UUID, and things that are not one.
        for id in [
            "00000000000000000000000000000000",
            "{00000000-0000-0000-0000-000000000000}",
            "urn:uuid:00000000-0000-0000-0000-000000000000",
            "6F1C1D6E-3B1A-4C8E-9A57-0D2F8C1B7E42",
            "6f1c1d6e3b1a4c8e9a570d2f8c1b7e42",
            "phone-1",
            "",
        ] {
            assert!(device_id_refusal(id, opened_as).is_some(), "{id}");
        }
        assert_eq!(
            device_id_refusal("6f1c1d6e-3b1a-4c8e-9a57-0d2f8c1b7e42", opened_as),
            None
        );
    }

    proptest! {
        /// What devices make (random version-4 UUIDs) is always accepted.
        #[test]
        fn random_device_ids_are_accepted(bytes in any::<[u8; 16]>()) {
            let id = uuid::Builder::from_random_bytes(bytes).into_uuid().to_string();
            prop_assert_eq!(device_id_refusal(&id, MERGE_ACTOR), None);
        }

        /// Every server actor, for any user and purpose, is refused.
        #[test]
        fn server_actors_are_always_refused(purpose in ".{0,20}", user in ".{0,40}") {
            let id = server_actor(&purpose, &user);
            prop_assert!(device_id_refusal(&id, MERGE_ACTOR).is_some());
        }
    }
}
