//! Plugin routes: deploy (upload a `.wasm` component), list, inspect, roll back, configure,
//! resume after quarantine, and dry-run `plan` and `review` through the real host.
//! Administrators manage every plugin; a bureau manages the plugins it deployed and sees the
//! administrators' too; stations may look; volunteers may not.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::{Caller, Scope};
use super::extract::{Body, Path, Upload};
use super::problem::{ApiError, Problem};
use super::{AppState, blocking};
use crate::plugins::catalog::{Actor, CatalogError, PluginStatus};
use crate::plugins::host::LogLine;
use crate::plugins::model::{
    ChecklistItem, Occurrence, ReviewOutcome, Target, TaskDraft, TaskInfo, VisitReport,
};
use crate::plugins::runtime::{CallError, Limits};

impl From<CatalogError> for ApiError {
    fn from(e: CatalogError) -> Self {
        match e {
            CatalogError::Refused(load) => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "plugin-refused",
                load.to_string(),
            ),
            CatalogError::NotFound(id) => ApiError::not_found(format!("plugin {id}")),
            CatalogError::NoSuchVersion { .. } => {
                ApiError::new(StatusCode::NOT_FOUND, "not-found", e.to_string())
            }
            CatalogError::Forbidden(m) => ApiError::forbidden(m),
            CatalogError::VersionConflict { .. } => {
                ApiError::new(StatusCode::CONFLICT, "conflict", e.to_string())
            }
            CatalogError::Invalid(m) => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid-field", m)
            }
            CatalogError::Store(s) => s.into(),
        }
    }
}

impl From<CallError> for ApiError {
    fn from(e: CallError) -> Self {
        match e {
            CallError::Quarantined(_) => {
                ApiError::new(StatusCode::CONFLICT, "plugin-quarantined", e.to_string())
            }
            CallError::Plugin(_) => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "plugin-error",
                e.to_string(),
            ),
            CallError::Busy(_) | CallError::Shutdown => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "busy", e.to_string())
            }
            _ => ApiError::new(StatusCode::BAD_GATEWAY, "plugin-failed", e.to_string()),
        }
    }
}

fn actor(caller: &Caller) -> Result<Actor, ApiError> {
    match &caller.scope {
        Scope::Admin => Ok(Actor {
            label: "admin".into(),
            bureau: None,
        }),
        Scope::Bureau(code) => Ok(Actor {
            label: caller.scope.to_string(),
            bureau: Some(code.clone()),
        }),
        _ => Err(ApiError::forbidden(
            "only an administrator or a bureau manages plugins",
        )),
    }
}

/// A bureau's region code, for visibility; `None` for everyone who sees all plugins.
fn viewer(caller: &Caller) -> Result<Option<String>, ApiError> {
    match &caller.scope {
        Scope::Admin | Scope::Station(_) => Ok(None),
        Scope::Bureau(code) => Ok(Some(code.clone())),
        Scope::Volunteer(_) => Err(ApiError::forbidden("a volunteer token cannot list plugins")),
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PluginList {
    pub plugins: Vec<PluginStatus>,
    /// Files in the plugin folder that were refused, with the reason.
    pub rejected_files: BTreeMap<String, String>,
}

#[utoipa::path(get, path = "/v1/plugins", tag = "plugins", responses((status = 200, body = PluginList)))]
pub async fn list_plugins(
    State(st): State<AppState>,
    caller: Caller,
) -> Result<Json<PluginList>, ApiError> {
    let bureau = viewer(&caller)?;
    let plugins = st.plugins.list(bureau.as_deref())?;
    let rejected_files = if caller.is_admin() {
        st.rejected
            .snapshot()
            .into_iter()
            .map(|(p, r)| (p.display().to_string(), r))
            .collect()
    } else {
        BTreeMap::new()
    };
    Ok(Json(PluginList {
        plugins,
        rejected_files,
    }))
}

#[utoipa::path(post, path = "/v1/plugins", tag = "plugins",
    request_body(content = Vec<u8>, content_type = "application/wasm", description = "A wasm32-wasip2 component built with linli-sdk"),
    description = "Deploys a component. Uploading exactly what is stored already (same id, version and content) changes nothing and answers 200.",
    responses((status = 201, body = PluginStatus), (status = 200, body = PluginStatus, description = "Already deployed: nothing changed"), (status = 403, body = Problem),
        (status = 413, description = "Larger than plugins.max_component_mib"),
        (status = 409, body = Problem, description = "This version is already deployed with different content"),
        (status = 422, body = Problem, description = "Refused: not a component, wrong interface version, or describe failed")))]
pub async fn deploy_plugin(
    State(st): State<AppState>,
    caller: Caller,
    Upload(body): Upload,
) -> Result<(StatusCode, Json<PluginStatus>), ApiError> {
    let actor = actor(&caller)?;
    let deployed = blocking(move || {
        let deployed = st.plugins.deploy(&body, &actor)?;
        if deployed.changed {
            st.scheduler.plugin_available(&deployed.status.id)?;
        }
        Ok(deployed)
    })
    .await?;
    let status = if deployed.changed {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(deployed.status)))
}

fn visible(caller: &Caller, status: PluginStatus) -> Result<PluginStatus, ApiError> {
    let bureau = viewer(caller)?;
    if crate::plugins::catalog::Catalog::visible(bureau.as_deref(), status.owner.as_deref()) {
        Ok(status)
    } else {
        Err(ApiError::not_found(format!("plugin {}", status.id)))
    }
}

#[utoipa::path(get, path = "/v1/plugins/{id}",
    params(("id" = String, Path, description = "Plugin id, e.g. `elderly-visit`")), tag = "plugins", responses((status = 200, body = PluginStatus), (status = 404, body = Problem)))]
pub async fn get_plugin(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<PluginStatus>, ApiError> {
    Ok(Json(visible(&caller, st.plugins.status(&id)?)?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RollbackRequest {
    pub version: String,
}

#[utoipa::path(post, path = "/v1/plugins/{id}/rollback",
    params(("id" = String, Path, description = "Plugin id, e.g. `elderly-visit`")), tag = "plugins", request_body = RollbackRequest,
    responses((status = 200, body = PluginStatus), (status = 404, body = Problem)))]
pub async fn rollback_plugin(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Body(req): Body<RollbackRequest>,
) -> Result<Json<PluginStatus>, ApiError> {
    let actor = actor(&caller)?;
    visible(&caller, st.plugins.status(&id)?)?;
    blocking(move || {
        let status = st.plugins.rollback(&id, &req.version, &actor)?;
        st.scheduler.plugin_available(&id)?;
        Ok(Json(status))
    })
    .await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PluginSettings {
    /// The plugin's configuration (a JSON object), passed to every call.
    #[serde(default)]
    pub config: Option<serde_json::Value>,
    #[serde(default)]
    pub limits: Option<Limits>,
}

#[utoipa::path(patch, path = "/v1/plugins/{id}",
    params(("id" = String, Path, description = "Plugin id, e.g. `elderly-visit`")), tag = "plugins", request_body = PluginSettings,
    responses((status = 200, body = PluginStatus), (status = 422, body = Problem)))]
pub async fn configure_plugin(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Body(req): Body<PluginSettings>,
) -> Result<Json<PluginStatus>, ApiError> {
    let actor = actor(&caller)?;
    visible(&caller, st.plugins.status(&id)?)?;
    blocking(move || {
        Ok(Json(
            st.plugins.configure(&id, req.config, req.limits, &actor)?,
        ))
    })
    .await
}

#[utoipa::path(post, path = "/v1/plugins/{id}/resume",
    params(("id" = String, Path, description = "Plugin id, e.g. `elderly-visit`")), tag = "plugins",
    description = "Lifts a quarantine; the plugin takes calls again.",
    responses((status = 200, body = PluginStatus)))]
pub async fn resume_plugin(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<PluginStatus>, ApiError> {
    let actor = actor(&caller)?;
    visible(&caller, st.plugins.status(&id)?)?;
    blocking(move || {
        let status = st.plugins.resume(&id, &actor)?;
        // Occurrences that failed on it and wait for a retry run now.
        st.scheduler.plugin_available(&id)?;
        Ok(Json(status))
    })
    .await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanRequest {
    pub occurrence: Occurrence,
    pub targets: Vec<Target>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PlanResponse {
    /// Checklists the drafts refer to by index.
    pub checklists: Vec<Vec<ChecklistItem>>,
    pub drafts: Vec<TaskDraft>,
    pub logs: Vec<LogLine>,
}

#[utoipa::path(post, path = "/v1/plugins/{id}/plan",
    params(("id" = String, Path, description = "Plugin id, e.g. `elderly-visit`")), tag = "plugins", request_body = PlanRequest,
    description = "Runs the live version's `plan` on the given targets and returns the drafts; nothing is stored.",
    responses((status = 200, body = PlanResponse), (status = 409, body = Problem), (status = 502, body = Problem),
        (status = 503, body = Problem, description = "The host is busy (or stopping): retry after the Retry-After seconds")))]
pub async fn plan_dry_run(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Body(req): Body<PlanRequest>,
) -> Result<Json<PlanResponse>, ApiError> {
    actor(&caller)?;
    visible(&caller, st.plugins.status(&id)?)?;
    blocking(move || {
        let (plan, logs) = st.plugins.plan(&id, &req.occurrence, &req.targets)?;
        Ok(Json(PlanResponse {
            checklists: plan.checklists,
            drafts: plan.drafts,
            logs,
        }))
    })
    .await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReviewRequest {
    pub task: TaskInfo,
    pub report: VisitReport,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReviewResponse {
    pub outcome: ReviewOutcome,
    pub logs: Vec<LogLine>,
}

#[utoipa::path(post, path = "/v1/plugins/{id}/review",
    params(("id" = String, Path, description = "Plugin id, e.g. `elderly-visit`")), tag = "plugins", request_body = ReviewRequest,
    description = "Runs the live version's `review`; nothing is stored.",
    responses((status = 200, body = ReviewResponse), (status = 409, body = Problem), (status = 502, body = Problem),
        (status = 503, body = Problem, description = "The host is busy (or stopping): retry after the Retry-After seconds")))]
pub async fn review_dry_run(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Body(req): Body<ReviewRequest>,
) -> Result<Json<ReviewResponse>, ApiError> {
    actor(&caller)?;
    visible(&caller, st.plugins.status(&id)?)?;
    blocking(move || {
        let (outcome, logs) = st.plugins.review(&id, &req.task, &req.report)?;
        Ok(Json(ReviewResponse { outcome, logs }))
    })
    .await
}
