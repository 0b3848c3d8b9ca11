//! A device's routes: enrollment, sync, and who it is.

use super::{Auth, Shared, blocking, parse_json};
use crate::domain::secrets::{hash_secret, new_secret};
use crate::error::{ServerError, ServerResult};
use crate::model::now;
use crate::sync::handle_sync;
use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use fenlei_core::protocol::{EnrollRequest, EnrollResponse, SyncRequest};

pub(super) async fn enroll(State(storage): State<Shared>, body: Bytes) -> ServerResult<Response> {
    let req: EnrollRequest = parse_json(&body)?;
    // Checked before the code is redeemed: a refused request changes nothing.
    if let Some(why) = crate::actors::device_id_refusal(&req.device_id, &storage.opening_actor()) {
        return Err(ServerError::BadRequest(why));
    }
    if let Some(key) = &req.public_key {
        fenlei_core::tamper::verifying_key(key)
            .map_err(|_| ServerError::BadRequest("public_key is not an Ed25519 key".into()))?;
    }
    let token = new_secret();
    let token_hash = hash_secret(&token);
    let code_hash = hash_secret(req.code.trim());
    let device = req.device_id.clone();
    let (user, server_key) = blocking(move || {
        let user = storage.redeem_enrollment(&code_hash, &device, &token_hash, now())?;
        if let (Some(_), Some(key)) = (&user, &req.public_key) {
            storage.set_device_key(&device, key)?;
        }
        let server_key = fenlei_core::tamper::public_key_hex(storage.server_key());
        Ok((user, server_key))
    })
    .await?;
    let user = user.ok_or_else(|| {
        ServerError::Unauthorized("unknown, used or expired enrollment code".into())
    })?;
    Ok(axum::Json(EnrollResponse {
        token,
        user_id: user.id,
        role: user.role.as_str().into(),
        server_key: Some(server_key),
    })
    .into_response())
}

pub(super) async fn sync(
    State(storage): State<Shared>,
    Auth(auth): Auth,
    body: Bytes,
) -> ServerResult<Response> {
    let request: SyncRequest = parse_json(&body)?;
    let response = blocking(move || handle_sync(storage.as_ref(), &auth, request)).await?;
    Ok(axum::Json(response).into_response())
}

pub(super) async fn me(Auth(auth): Auth) -> ServerResult<Response> {
    Ok(axum::Json(serde_json::json!({
        "device_id": auth.device_id,
        "user_id": auth.user.id,
        "name": auth.user.name,
        "role": auth.user.role,
        "scope": auth.scope,
    }))
    .into_response())
}
