//! Assembling and running the API server.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderValue, Method, header};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::{Json, Router};
use tokio::net::TcpListener;

use crate::app::{AppState, SharedState};
use crate::cluster::Cluster;
use crate::config::{Config, ConfigError};
use crate::identity::ClaimMapping;
use crate::identity::bearer::{BearerValidator, Rules};
use crate::identity::oidc::{OidcError, Provider, http_client};
use crate::identity::session::Sessions;
use crate::identity::workspace_token::WorkspaceTokens;
use crate::metrics::Metrics;
use crate::problem::Problem;
use crate::store::audit::Audit;
use crate::store::{Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("identity provider: {0}")]
    Provider(#[from] OidcError),
    #[error("Kubernetes client: {0}")]
    Kubernetes(#[from] kube::Error),
    #[error("egress policy: {0}")]
    EgressPolicy(#[from] crate::disclosure::PolicyError),
    #[error("airlock storage: {0}")]
    Storage(#[from] crate::airlock::storage::StorageError),
    #[error(transparent)]
    Notifications(#[from] crate::notify::NotifyError),
    #[error("listening on {0}: {1}")]
    Listen(std::net::SocketAddr, std::io::Error),
}

/// How long to keep trying the provider's discovery document at start (it may start later
/// than the API, e.g. both rolled out together).
const DISCOVERY_PATIENCE: Duration = Duration::from_secs(60);

pub async fn build(config: Config, client: kube::Client) -> Result<SharedState, StartError> {
    let store = Store::open(&config.database_url(), config.database.max_connections).await?;
    let blobs = crate::airlock::storage::BlobStore::from_config(&config)?;
    // A store that is not reachable yet (say, started alongside) is not fatal: uploads answer
    // 503 until it is. Bounded, since the S3 client retries for minutes.
    match tokio::time::timeout(Duration::from_secs(10), blobs.probe()).await {
        Ok(Ok(())) => tracing::info!(storage = blobs.kind(), "airlock storage"),
        Ok(Err(error)) => {
            tracing::warn!(storage = blobs.kind(), %error, "airlock storage not reachable yet")
        }
        Err(_) => tracing::warn!(storage = blobs.kind(), "airlock storage not answering yet"),
    }
    let egress_policy = match &config.airlock.egress_policy {
        Some(path) => crate::disclosure::Policy::load(path)?,
        None => crate::disclosure::Policy::with_defaults("default"),
    };
    let cluster = Cluster::start(client);
    let http = http_client();
    let redirect = config
        .public_url
        .join("auth/callback")
        .map_err(|e| OidcError::Url(e.to_string()))?;
    let secret = config.client_secret()?;
    let started = std::time::Instant::now();
    let provider = loop {
        match Provider::discover(
            &config.oidc.issuer,
            &config.oidc.client_id,
            &secret,
            redirect.clone(),
            config.oidc.scopes.clone(),
            http.clone(),
        )
        .await
        {
            Ok(provider) => break provider,
            Err(error) if started.elapsed() < DISCOVERY_PATIENCE => {
                tracing::warn!(%error, "identity provider not reachable yet; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(error) => return Err(error.into()),
        }
    };
    let rules = Rules {
        issuer: config
            .oidc
            .issuer
            .as_str()
            .trim_end_matches('/')
            .to_string(),
        audiences: config.audiences(),
        algorithms: config.algorithms()?,
        leeway: config.oidc.leeway,
    };
    let bearer = BearerValidator::new(
        http,
        provider.jwks_uri().to_string(),
        rules,
        config.oidc.jwks_min_refresh,
    );
    if let Err(error) = bearer.refresh().await {
        tracing::warn!(%error, "the provider's keys are not available yet; they are fetched on first use");
    }
    let claims = ClaimMapping {
        subject_claim: config.oidc.subject_claim.clone(),
        groups_claim: config.oidc.groups_claim.clone(),
        roles: config.roles.clone(),
    };
    let metrics = Metrics::default();
    let people = crate::notify::People::new(store.clone());
    let notifier = crate::notify::Notifier::new(&config, people.clone(), metrics.notifications())?;
    tracing::info!(transport = notifier.transport(), "notifications");
    Ok(Arc::new(AppState {
        audit: Audit::new(store.clone()),
        sessions: Sessions::new(store.clone(), config.session.ttl),
        tokens: crate::tokens::AccessTokens::new(store.clone()),
        workspace_tokens: WorkspaceTokens::new(
            config.workspace_tokens.audience.clone(),
            config.workspace_tokens.cache_ttl,
        ),
        store,
        cluster,
        blobs,
        egress_policy,
        scanner: config
            .airlock
            .clamd
            .clone()
            .map(crate::airlock::scan::Scanner::new),
        bearer,
        provider,
        claims,
        metrics,
        people,
        notifier,
        config,
    }))
}

/// Serves until `shutdown` completes, then finishes the requests in flight.
pub async fn serve(
    state: SharedState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), StartError> {
    let address = state.config.listen;
    let listener = TcpListener::bind(address)
        .await
        .map_err(|e| StartError::Listen(address, e))?;
    let (sessions, store) = (state.sessions.clone(), state.store.clone());
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(600));
        loop {
            every.tick().await;
            let purged = match sessions.purge_expired().await {
                Ok(n) => crate::gateway::origin::purge_expired(&store)
                    .await
                    .map(|m| n + m),
                Err(error) => Err(error),
            };
            match purged {
                Ok(purged) if purged > 0 => tracing::info!(purged, "expired sessions removed"),
                Ok(_) => {}
                Err(error) => tracing::warn!(%error, "removing expired sessions failed"),
            }
        }
    });
    if let Some(ops_address) = state.config.ops_listen {
        let ops = TcpListener::bind(ops_address)
            .await
            .map_err(|e| StartError::Listen(ops_address, e))?;
        let router = crate::ops::ops_routes().with_state(state.clone());
        tracing::info!(address = %ops_address, "metrics and health listening");
        tokio::spawn(async move {
            if let Err(error) = axum::serve(ops, router).await {
                tracing::error!(%error, "the operational listener stopped");
            }
        });
    }
    tracing::info!(%address, public_url = %state.config.public_url, "Trellis API listening");
    // The peer's address is the gateway's X-Forwarded-For.
    axum::serve(
        listener,
        router(state).into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
    .map_err(|e| StartError::Listen(address, e))
}

/// Every route of the API's listener: the JSON API (with its OpenAPI document), sign-in, the
/// pages, the workspace gateway and the health endpoints. The only place that knows them all.
pub fn router(state: SharedState) -> Router {
    let (api, openapi) = crate::http::api_routes();
    let openapi = Arc::new(openapi);
    let api = api
        .route(
            "/api/v1/openapi.json",
            axum::routing::get(move || {
                let openapi = openapi.clone();
                async move { Json(openapi.as_ref().clone()) }
            }),
        )
        .fallback(|| async { Problem::not_found("no such API endpoint") })
        .method_not_allowed_fallback(|method: Method| async move {
            Problem::new(
                axum::http::StatusCode::METHOD_NOT_ALLOWED,
                "method-not-allowed",
                format!("{method} is not allowed on this endpoint"),
            )
        })
        .layer(DefaultBodyLimit::max(state.config.limits.json_body_bytes));
    Router::new()
        .merge(crate::http::auth::routes())
        .merge(crate::gateway::routes())
        .merge(crate::datashield::routes())
        .merge(crate::web::routes())
        .merge(crate::ops::health_routes())
        .merge(api)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            crate::gateway::origin::separate,
        ))
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .layer(middleware::from_fn(security_headers))
        .with_state(state)
}

/// Counts and times every request by route (never by raw path, which would explode the series).
async fn observe(State(state): State<SharedState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let response = next.run(request).await;
    state.metrics.http(
        &method,
        &route,
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}

async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers
        .entry(header::CONTENT_SECURITY_POLICY)
        .or_insert(HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'",
        ));
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}
