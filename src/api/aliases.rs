//! Collection aliases: `POST /collections/aliases` (create, delete and rename, applied all or
//! nothing), `GET /aliases`, `GET /collections/{name}/aliases`. On a single node the registry
//! keeps them; in cluster mode the metadata group does, so every peer resolves the same names.

use axum::extract::State;
use axum::routing::{get, post};
use axum::Router;

use super::error::{ApiError, ApiJson, ApiPath};
use super::{ok, run_blocking, ApiResult, AppState};
use crate::cluster::meta::{MetaCommand, MetaReply};
use crate::collection::aliases::{self, AliasActions, Aliases, CollectionsAliases};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/collections/aliases", post(update))
        .route("/aliases", get(all))
        .route("/collections/{name}/aliases", get(of_collection))
}

/// How long a request waits for this node to catch up with the metadata group.
const META_SYNC: std::time::Duration = std::time::Duration::from_secs(2);

/// How long an alias change waits for a collection being created or deleted.
const ADMIN_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Apply alias changes, all or none of them.
#[utoipa::path(post, path = "/collections/aliases", tag = "collections",
    request_body = AliasActions,
    responses((status = 200, body = inline(super::Envelope<bool>)), (status = 404, body = super::error::ErrorResponse)))]
pub async fn update(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<AliasActions>,
) -> ApiResult<bool> {
    if let Some(node) = state.cluster.clone() {
        // Checked here first for a precise error; the group applies the same rules.
        node.sync_meta(META_SYNC.min(super::time_left())).await;
        let meta = node.meta();
        let collections = &meta.state.collections;
        aliases::apply(
            &meta.state.aliases,
            |n| collections.contains_key(n),
            &req.actions,
        )?;
        drop(meta);
        let command = MetaCommand::UpdateAliases {
            actions: req.actions,
        };
        let (_, reply) = super::distributed::propose(&node, command).await?;
        return match reply {
            MetaReply::Done => Ok(ok(true)),
            MetaReply::Rejected(why) => Err(ApiError::Conflict(why)),
        };
    }
    let registry = state.registry.clone();
    run_blocking(move || Ok(registry.update_aliases(&req.actions, ADMIN_WAIT)?)).await?;
    Ok(ok(true))
}

/// The aliases this node knows: the metadata group's in cluster mode.
fn current(state: &AppState) -> std::sync::Arc<Aliases> {
    match &state.cluster {
        Some(node) => std::sync::Arc::new(node.meta().state.aliases.clone()),
        None => state.registry.aliases(),
    }
}

/// Every alias.
#[utoipa::path(get, path = "/aliases", tag = "collections",
    responses((status = 200, body = inline(super::Envelope<CollectionsAliases>))))]
pub async fn all(State(state): State<AppState>) -> ApiResult<CollectionsAliases> {
    if let Some(node) = &state.cluster {
        node.sync_meta(META_SYNC.min(super::time_left())).await;
    }
    Ok(ok(aliases::list(&current(&state), None)))
}

/// The aliases of one collection.
#[utoipa::path(get, path = "/collections/{name}/aliases", tag = "collections",
    params(("name" = String, Path, description = "Collection name")),
    responses((status = 200, body = inline(super::Envelope<CollectionsAliases>)), (status = 404, body = super::error::ErrorResponse)))]
pub async fn of_collection(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<CollectionsAliases> {
    let own = match &state.cluster {
        Some(node) => {
            node.sync_meta(META_SYNC.min(super::time_left())).await;
            let meta = node.meta();
            let resolved = meta.state.resolve(&name).map(|(own, _)| own.clone());
            resolved
                .ok_or_else(|| ApiError::NotFound(format!("Collection `{name}` doesn't exist!")))?
        }
        None => state.registry.get(&name)?.name.clone(),
    };
    Ok(ok(aliases::list(&current(&state), Some(&own))))
}
