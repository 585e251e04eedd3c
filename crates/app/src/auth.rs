//! API keys: how they are made, how they are stored (hashed), and the extractor that turns an
//! `Authorization: Bearer` header into the caller's tenant.
//!
//! A key is `hk_` followed by 32 random bytes (base64url). Only its SHA-256 is stored, so a leaked
//! table gives no usable key; a fast hash is right for 256-bit random secrets.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use herald_core::digest::sha256_hex;
use herald_core::{ApiKeyId, ApiKeyRecord, TenantId};
use jiff::Timestamp;
use rand::RngCore;

use crate::api::error::ApiError;
use crate::api::trace::RequestTenant;
use crate::state::AppState;

const KEY_PREFIX: &str = "hk_";

/// A freshly generated key: the text (shown once) and the record to store.
#[derive(Debug)]
pub struct NewApiKey {
    pub key: String,
    pub record: ApiKeyRecord,
}

/// Makes a new key for `tenant`.
pub fn generate_api_key(tenant: TenantId, name: &str, now: Timestamp) -> NewApiKey {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let key = format!("{KEY_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes));
    let record = record_for_key(&key, tenant, name, now);
    NewApiKey { key, record }
}

/// The record for a key given by an operator (for example `HERALD_DEV_API_KEY`).
pub fn record_for_key(key: &str, tenant: TenantId, name: &str, now: Timestamp) -> ApiKeyRecord {
    ApiKeyRecord {
        id: ApiKeyId::new(),
        tenant_id: tenant,
        hash: hash_api_key(key),
        name: name.to_owned(),
        created_at: now,
        revoked_at: None,
    }
}

/// Lowercase hex SHA-256 of the key text.
pub fn hash_api_key(key: &str) -> String {
    sha256_hex(key)
}

/// The authenticated caller.
#[derive(Debug, Clone, Copy)]
pub struct Caller {
    pub tenant_id: TenantId,
    pub key_id: ApiKeyId,
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .ok_or_else(|| {
                ApiError::unauthorized("missing API key: send `Authorization: Bearer <api key>`")
            })?;
        let value = header
            .to_str()
            .map_err(|_| ApiError::unauthorized("the Authorization header is not valid text"))?;
        let key = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .ok_or_else(|| ApiError::unauthorized("use `Authorization: Bearer <api key>`"))?;
        // From the directory: a key revoked by another process stops working within
        // `Settings::cache_ttl`.
        let record = state
            .directory
            .find_api_key(&hash_api_key(key))
            .await
            .map_err(ApiError::internal)?
            .ok_or_else(|| ApiError::unauthorized("the API key is not valid"))?;
        if record.revoked_at.is_some() {
            return Err(ApiError::unauthorized("the API key has been revoked"));
        }
        if let Some(slot) = parts.extensions.get::<RequestTenant>() {
            slot.set(record.tenant_id);
        }
        Ok(Self {
            tenant_id: record.tenant_id,
            key_id: record.id,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use axum::http::StatusCode;
    use herald_core::ports::Clock;

    use super::*;
    use crate::service::testing::Harness;

    #[test]
    fn keys_are_long_random_and_stored_hashed() {
        let now = Timestamp::now();
        let a = generate_api_key(TenantId::new(), "a", now);
        let b = generate_api_key(TenantId::new(), "b", now);
        assert!(a.key.starts_with("hk_") && a.key.len() >= 40);
        assert_ne!(a.key, b.key);
        assert_eq!(a.record.hash, hash_api_key(&a.key));
        assert_eq!(a.record.hash.len(), 64);
        assert!(!a.record.hash.contains(&a.key[3..]));
    }

    #[tokio::test]
    async fn a_key_revoked_elsewhere_stops_authenticating_within_the_cache_ttl() {
        let ttl = Duration::from_secs(5);
        let h = Harness::new([]).with_cache_ttl(ttl);
        let key = h.api_key().await;
        let list = || h.call(&key.key, "GET", "/v1/subscriptions", None);
        assert_eq!(list().await.0, StatusCode::OK);

        // The operator CLI, another process, revokes it.
        let now = h.clock.now();
        h.state
            .store
            .revoke_api_key(&h.tenant, &key.record.id, now)
            .await
            .unwrap();
        h.clock.advance(ttl - Duration::from_millis(1));
        assert_eq!(list().await.0, StatusCode::OK, "within the TTL");
        h.clock.advance(Duration::from_millis(1));
        let (status, body) = list().await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert!(body.to_string().contains("revoked"), "{body}");
    }
}
