//! Token-bound routes (seed: Delos) for clients that cannot hold a cookie:
//! recovery request → confirm, login, and refresh-token rotation.

use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use super::error::ApiError;
use super::extract::{ApiJson, ClientInfo};
use crate::domain::Login;
use crate::error::Error;
use crate::recovery::{self, Unknown};
use crate::services::Services;
use crate::session::{self, TokenPair};

pub fn router() -> Router<Services> {
    Router::new()
        .route("/v2/auth/recovery/request", post(request))
        .route("/v2/auth/recovery/confirm", post(confirm))
        .route("/v2/auth/login", post(login))
        .route("/v2/auth/refresh/{refresh_token}", get(refresh))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecoveryRequest {
    login: String,
}

#[derive(Serialize)]
pub struct RecoveryToken {
    token: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RecoveryConfirm {
    token: String,
    code: String,
    password: String,
    repeat_password: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    login: String,
    password: String,
}

/// Delos' token pair.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenPairResponse {
    access_token: String,
    refresh_token: String,
    guid: String,
    access_ttl: i64,
    refresh_ttl: i64,
}

impl From<TokenPair> for TokenPairResponse {
    fn from(pair: TokenPair) -> Self {
        Self {
            access_token: pair.access_token,
            refresh_token: pair.refresh_token.expose().to_owned(),
            guid: pair.identity_id,
            access_ttl: pair.access_ttl,
            refresh_ttl: pair.refresh_ttl,
        }
    }
}

async fn request(
    State(services): State<Services>,
    client: ClientInfo,
    ApiJson(body): ApiJson<RecoveryRequest>,
) -> Result<Json<RecoveryToken>, ApiError> {
    let login = Login::parse(&body.login).ok_or_else(|| client.error(Error::invalid("error.invalid_login")))?;
    let started = recovery::start(&services, &login, &client.0, Unknown::RevealIfConfigured)
        .await
        .map_err(|e| client.error(e))?;
    let token = recovery::token::issue(&services, &started).map_err(|e| client.error(e))?;
    Ok(Json(RecoveryToken { token }))
}

async fn confirm(
    State(services): State<Services>,
    client: ClientInfo,
    ApiJson(body): ApiJson<RecoveryConfirm>,
) -> Result<Json<TokenPairResponse>, ApiError> {
    let secret = recovery::token::open(&services, &body.token);
    let issued = recovery::confirm(
        &services,
        secret.as_deref(),
        &body.code,
        &body.password,
        &body.repeat_password,
        &client.0,
    )
    .await
    .map_err(|e| client.error(e))?;
    let pair = session::issue_pair(&services, issued)
        .await
        .map_err(|e| client.error(e))?;
    Ok(Json(pair.into()))
}

async fn login(
    State(services): State<Services>,
    client: ClientInfo,
    ApiJson(body): ApiJson<LoginRequest>,
) -> Result<Json<TokenPairResponse>, ApiError> {
    let issued = session::login(&services, &body.login, SecretString::from(body.password), &client.0)
        .await
        .map_err(|e| client.error(e))?;
    let pair = session::issue_pair(&services, issued)
        .await
        .map_err(|e| client.error(e))?;
    Ok(Json(pair.into()))
}

async fn refresh(
    State(services): State<Services>,
    client: ClientInfo,
    Path(refresh_token): Path<String>,
) -> Result<Json<TokenPairResponse>, ApiError> {
    let pair = session::rotate_refresh(&services, &refresh_token, &client.0)
        .await
        .map_err(|e| client.error(e))?;
    Ok(Json(pair.into()))
}
