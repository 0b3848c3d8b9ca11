//! Raw sync requests, as a third-party or hostile client sends them: bodies built by hand,
//! automerge exchanges run outside the product's client.

use automerge::sync::{Message, State, SyncDoc};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use fenlei_core::protocol::{DocMessage, PROTOCOL_VERSION, SyncRequest};
use serde_json::Value;

/// A sync request body with these (id, raw message) pairs.
pub fn sync_body(docs: Vec<(String, Vec<u8>)>, feed: bool) -> Vec<u8> {
    serde_json::to_vec(&SyncRequest {
        protocol: PROTOCOL_VERSION,
        feed,
        docs: docs
            .into_iter()
            .map(|(id, m)| DocMessage {
                id,
                message: B64.encode(m),
            })
            .collect(),
        ..Default::default()
    })
    .unwrap()
}

/// Posts a body to `/v1/sync`; the status and the JSON answer (`Null` when it is not JSON).
pub fn post_sync(url: &str, token: Option<&str>, body: Vec<u8>) -> (u16, Value) {
    let mut req = reqwest::blocking::Client::new()
        .post(format!("{url}/v1/sync"))
        .header("content-type", "application/json")
        .body(body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().unwrap_or(Value::Null))
}

/// What a hand-run exchange ended with.
pub struct Pushed {
    /// The last status: 200 when both sides agree.
    pub status: u16,
    /// The last answer (the error body when refused).
    pub answer: Value,
    /// Every request body sent.
    pub sent: Vec<Vec<u8>>,
}

/// Runs the automerge exchange for `doc` by raw HTTP with `token`, as the product's client
/// prepares its messages (`next_message`: the server is stateless), until the server answers
/// non-200 or both sides agree.
pub fn push_by_hand(url: &str, token: &str, id: &str, doc: &mut automerge::AutoCommit) -> Pushed {
    let mut state = State::new();
    let mut pushed = Pushed {
        status: 200,
        answer: Value::Null,
        sent: Vec::new(),
    };
    for _ in 0..8 {
        let Some(msg) = fenlei_core::sync::next_message(doc, &mut state) else {
            return pushed;
        };
        let body = sync_body(vec![(id.to_string(), msg.encode())], false);
        pushed.sent.push(body.clone());
        let (status, answer) = post_sync(url, Some(token), body);
        pushed.status = status;
        pushed.answer = answer;
        if status != 200 {
            return pushed;
        }
        let bytes = B64
            .decode(pushed.answer["docs"][0]["message"].as_str().unwrap())
            .unwrap();
        if !bytes.is_empty() {
            doc.sync()
                .receive_sync_message(&mut state, Message::decode(&bytes).unwrap())
                .unwrap();
        }
    }
    pushed
}
