//! The HTTP API (axum): routes under `/v1`, bearer authentication and scopes, problem+json
//! errors, the OpenAPI document, `/healthz` and `/metrics`.
//!
//! Never: opening tables (ask `store`), outgoing HTTP (that is `notify`'s), logging request
//! bodies or personal data.

pub mod auth;
pub mod calendar;
pub mod duties;
pub mod extract;
pub mod metrics;
pub mod notify;
pub mod openapi;
pub mod plugins;
pub mod problem;
pub mod records;
pub mod registry;
pub mod tasks;
pub mod users;

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use utoipa::OpenApi;

use std::sync::Arc;

use crate::clock::SharedClock;
use crate::config::PluginHostConfig;
use crate::plugins::catalog::Catalog;
use crate::plugins::folder::Rejected;
use crate::plugins::runtime::{Compiler, Runtime};
use crate::store::Store;
use auth::{Caller, Scope, Tokens};
use metrics::Metrics;
use problem::ApiError;

/// Runs blocking work (a store write, a plugin call) off the async executor.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(ApiError::internal)?
}

/// Runs short blocking work (a store read of a list, a token look-up) without stalling the
/// executor: on the multi-threaded runtime the worker first hands its other tasks to another
/// thread (`block_in_place`); elsewhere it simply runs.
pub(crate) fn off_executor<R>(f: impl FnOnce() -> R) -> R {
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        _ => f(),
    }
}

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub clock: SharedClock,
    pub tokens: Tokens,
    pub metrics: Metrics,
    pub plugins: Arc<Catalog>,
    /// Files the plugin-folder watcher refused.
    pub rejected: Rejected,
    pub scheduler: Arc<crate::schedule::Scheduler>,
    /// Cancelled when the daemon stops: long requests (imports) give up and write nothing.
    pub stopping: tokio_util::sync::CancellationToken,
    /// Request limits and the public `/metrics` switch (`[api]`).
    pub api: crate::config::ApiConfig,
    /// Notification delivery (its loop runs under `server::run`).
    pub notifier: Arc<crate::notify::Notifier>,
    /// Visit reports, hours, certificates, ratings, coverage and the audit log.
    pub records: Arc<crate::records::Records>,
    /// Console accounts, sessions and volunteers' login links.
    pub accounts: Arc<crate::console::accounts::Accounts>,
}

/// Why the daemon's state could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Engine(#[from] crate::plugins::runtime::EngineError),
    #[error("cannot load the deployed plugins: {0}")]
    Store(#[from] crate::store::StoreError),
    #[error("cannot set up notifications: {0}")]
    Notify(String),
}

impl AppState {
    /// A read transaction run off the executor (lists and scans; see `off_executor`).
    pub fn read<R, E: From<crate::store::StoreError>>(
        &self,
        f: impl FnOnce(&crate::store::ReadTx) -> Result<R, E>,
    ) -> Result<R, E> {
        off_executor(|| self.store.read(f))
    }

    /// Starts the plugin engine and loads the deployed plugins; duties default to Asia/Shanghai.
    pub fn new(store: Store, clock: SharedClock) -> Result<Self, StartError> {
        Self::with_time_zone(store, clock, chrono_tz::Asia::Shanghai)
    }

    /// As `new`, with the default time zone of duties.
    pub fn with_time_zone(
        store: Store,
        clock: SharedClock,
        zone: chrono_tz::Tz,
    ) -> Result<Self, StartError> {
        Self::with_plugin_host(
            store,
            clock,
            zone,
            &PluginHostConfig::default(),
            Compiler::InProcess,
        )
    }

    /// As `with_time_zone`, with the plugin host's limits and where it compiles.
    pub fn with_plugin_host(
        store: Store,
        clock: SharedClock,
        zone: chrono_tz::Tz,
        host: &PluginHostConfig,
        compiler: Compiler,
    ) -> Result<Self, StartError> {
        crate::clock::set_local_zone(zone);
        let runtime = Arc::new(Runtime::with_config(clock.clone(), host, compiler)?);
        let plugins = Catalog::open(runtime, store.clone(), clock.clone())?;
        let scheduler = Arc::new(crate::schedule::Scheduler::new(
            store.clone(),
            plugins.clone(),
            clock.clone(),
            zone,
        ));
        let notifier = crate::notify::Notifier::new(
            store.clone(),
            clock.clone(),
            crate::config::NotifyConfig::default(),
        )
        .map_err(StartError::Notify)?;
        let records = Arc::new(crate::records::Records::new(
            store.clone(),
            clock.clone(),
            plugins.clone(),
            scheduler.clone(),
            crate::records::calendar::WorkCalendar::builtin(),
            crate::config::RecordsConfig::default(),
            "http://127.0.0.1:8080".into(),
        ));
        let accounts = Arc::new(crate::console::accounts::Accounts::new(
            store.clone(),
            clock.clone(),
            Default::default(),
        ));
        Ok(Self {
            records,
            accounts,
            notifier,
            store,
            clock,
            tokens: Tokens::default(),
            metrics: Metrics::default(),
            plugins,
            rejected: Rejected::default(),
            scheduler,
            stopping: tokio_util::sync::CancellationToken::new(),
            api: crate::config::ApiConfig::default(),
        })
    }
}

impl AppState {
    /// Keeps records as `cfg` says (`[records]`), counting working days by `calendar`;
    /// certificates and rating links point at `base_url`.
    pub fn set_records(
        &mut self,
        cfg: crate::config::RecordsConfig,
        calendar: crate::records::calendar::WorkCalendar,
        base_url: String,
    ) {
        self.records = Arc::new(crate::records::Records::new(
            self.store.clone(),
            self.clock.clone(),
            self.plugins.clone(),
            self.scheduler.clone(),
            calendar,
            cfg,
            base_url,
        ));
    }

    /// Runs the console as `settings` say (`[console]`).
    pub fn set_console(&mut self, settings: crate::console::accounts::ConsoleSettings) {
        self.accounts = Arc::new(crate::console::accounts::Accounts::new(
            self.store.clone(),
            self.clock.clone(),
            settings,
        ));
    }

    /// Delivers notifications as `cfg` says (`[notify]`).
    pub fn set_notify(&mut self, cfg: crate::config::NotifyConfig) -> Result<(), StartError> {
        self.notifier = crate::notify::Notifier::new(self.store.clone(), self.clock.clone(), cfg)
            .map_err(StartError::Notify)?;
        Ok(())
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, ApiError> {
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim)
            .ok_or_else(ApiError::unauthorized)?;
        // A cached token costs no I/O; a look-up in the store runs off the executor.
        let scope = match st.tokens.cached(token) {
            Some(scope) => scope,
            None => off_executor(|| st.tokens.scope_of(&st.store, token))?
                .ok_or_else(ApiError::unauthorized)?,
        };
        let token = auth::hash(token).get(..12).unwrap_or_default().to_owned();
        resolve_caller(st, scope, token)
    }
}

/// The caller a scope makes, as of now: a token (or console session) stops working with the
/// record it belongs to, and works again if the record is reactivated. `token` is how the audit
/// log names the credential.
pub fn resolve_caller(st: &AppState, scope: Scope, token: String) -> Result<Caller, ApiError> {
    // A token stops working with the record it belongs to (and works again if the record
    // is reactivated).
    let station = match &scope {
        Scope::Station(id) => Some(
            st.read(|r| r.station(*id))?
                .filter(|s| s.active)
                .ok_or_else(|| ApiError::forbidden(format!("station {id} is deactivated")))?,
        ),
        Scope::Volunteer(id) => {
            let active = st
                .read(|r| r.volunteer(*id))?
                .is_some_and(|v| v.status != crate::registry::VolunteerStatus::Inactive);
            if !active {
                return Err(ApiError::forbidden(format!(
                    "volunteer {id} is deactivated; its token no longer works"
                )));
            }
            None
        }
        Scope::Bureau(code) => {
            if !st.read(|r| r.region(code))?.is_some_and(|r| r.active) {
                return Err(ApiError::forbidden(format!(
                    "region {code} is deactivated; its bureau's tokens no longer work"
                )));
            }
            None
        }
        Scope::Admin => None,
    };
    Ok(Caller {
        scope,
        token,
        station,
    })
}

#[derive(OpenApi)]
#[openapi(
    info(title = "linli", description = "The linli daemon's HTTP API: the registry of regions, \
        social-work stations, people in care and volunteers. Errors are RFC 9457 problem+json."),
    paths(
        registry::list_regions, registry::create_region, registry::get_region,
        registry::update_region, registry::deactivate_region, registry::reactivate_region,
        registry::list_stations, registry::create_station, registry::get_station,
        registry::update_station, registry::deactivate_station, registry::reactivate_station,
        registry::list_persons, registry::create_person, registry::get_person,
        registry::update_person, registry::deactivate_person, registry::reactivate_person,
        registry::list_volunteers, registry::create_volunteer, registry::get_volunteer,
        registry::update_volunteer, registry::deactivate_volunteer,
        registry::create_token, registry::list_tokens, registry::revoke_token,
        registry::import_csv, healthz, whoami,
        plugins::list_plugins, plugins::deploy_plugin, plugins::get_plugin,
        plugins::rollback_plugin, plugins::configure_plugin, plugins::resume_plugin,
        plugins::plan_dry_run, plugins::review_dry_run,
        duties::list_duties, duties::create_duty, duties::dry_run_duty, duties::get_duty, duties::update_duty,
        duties::pause_duty, duties::resume_duty, duties::trigger_duty, duties::backfill_duty,
        duties::list_occurrences, duties::get_occurrence, duties::preview_duty, duties::list_tasks, duties::get_task,
        duties::list_events,
        tasks::create_task, tasks::cancel, tasks::reoffer, tasks::assign, tasks::my_tasks, tasks::my_task_detail,
        tasks::accept, tasks::decline, tasks::check_in, tasks::check_out, tasks::shortage,
        calendar::rotate, calendar::feed,
        notify::create_endpoint, notify::list_endpoints, notify::get_endpoint,
        notify::update_endpoint, notify::rotate_endpoint, notify::test_endpoint,
        notify::list_messages, notify::get_message, notify::replay_message,
        notify::replay_endpoint,
        records::file_report, records::task_reports, records::get_report,
        records::enter_record, records::volunteer_records, records::my_records,
        records::volunteer_hours, records::my_hours,
        records::issue_certificate, records::issue_my_certificate,
        records::volunteer_certificates, records::my_certificates, records::revoke_certificate,
        records::verify, records::verify_page, records::certificate_page,
        records::rate_task, records::get_rating, records::rating_link, records::rate_by_link, records::rate_page,
        records::rate_form_post, records::coverage_report, records::audit_log,
        users::list_users, users::create_user, users::update_user, users::reset_user,
        users::login_link, users::end_sessions,
    ),
    components(schemas(crate::notify::render::Notification)),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
)]
pub struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// Liveness and readiness: answers 200 when the store can be read.
#[utoipa::path(get, path = "/healthz", tag = "operations", security(()),
    responses((status = 200, description = "ok"), (status = 503, description = "store unreadable")))]
pub async fn healthz(State(st): State<AppState>) -> impl IntoResponse {
    match st.store.read(|r| r.meta("schema_version")) {
        Ok(_) => (StatusCode::OK, "ok\n"),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "store unreadable\n"),
    }
}

#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct WhoAmI {
    pub scope: String,
}

/// The scope of the token in use.
#[utoipa::path(get, path = "/v1/me", tag = "operations", responses((status = 200, body = WhoAmI)))]
pub async fn whoami(caller: Caller) -> Json<WhoAmI> {
    Json(WhoAmI {
        scope: caller.scope.to_string(),
    })
}

/// Prometheus metrics: public only when `[api] public_metrics` says so, otherwise for admin
/// tokens (row counts and plugin names are not for everyone).
async fn metrics_text(
    State(st): State<AppState>,
    parts: Parts,
) -> Result<impl IntoResponse, ApiError> {
    if !st.api.public_metrics {
        let mut parts = parts;
        let caller = Caller::from_request_parts(&mut parts, &st).await?;
        if caller.scope != Scope::Admin {
            return Err(ApiError::forbidden(
                "metrics need an admin token (or [api] public_metrics = true)",
            ));
        }
    }
    let sizes = st
        .store
        .sizes()
        .map(|s| {
            s.into_iter()
                .map(|(t, n)| (format!("table=\"{t}\""), n as f64))
                .collect()
        })
        .unwrap_or_default();
    let file = vec![(String::new(), st.store.file_size() as f64)];
    let now_ms = st.clock.now().timestamp_millis();
    let (pending, oldest) = st.read(|r| r.pending_messages()).unwrap_or((0, None));
    let nm = &st.notifier.metrics;
    let counter = |c: &std::sync::atomic::AtomicU64| {
        vec![(
            String::new(),
            c.load(std::sync::atomic::Ordering::Relaxed) as f64,
        )]
    };
    let mut body = st.metrics.render(&[
        ("linli_store_rows", "Rows in each main table.", sizes),
        ("linli_store_file_bytes", "Size of the database file.", file),
        (
            "linli_notify_delivered_total",
            "Messages delivered since start.",
            counter(&nm.delivered),
        ),
        (
            "linli_notify_failed_attempts_total",
            "Delivery attempts that failed since start.",
            counter(&nm.failed_attempts),
        ),
        (
            "linli_notify_dead_total",
            "Messages given up on since start.",
            counter(&nm.dead),
        ),
        (
            "linli_notify_throttled_total",
            "Robot rate-limit answers since start.",
            counter(&nm.throttled),
        ),
        (
            "linli_notify_pending",
            "Messages waiting for delivery.",
            vec![(String::new(), pending as f64)],
        ),
        (
            "linli_notify_oldest_pending_seconds",
            "Age of the oldest message waiting for delivery.",
            vec![(
                String::new(),
                oldest.map_or(0.0, |t| (now_ms - t).max(0) as f64 / 1000.0),
            )],
        ),
    ]);
    metrics::render_plugins(&mut body, &st.plugins.stats());
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    ))
}

async fn openapi_json() -> impl IntoResponse {
    Json(openapi::document().clone())
}

async fn fallback(
    uri: axum::http::Uri,
    headers: axum::http::HeaderMap,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    // Outside the API, a person followed a link: a page, in their language.
    if !uri.path().starts_with("/v1") {
        return crate::console::not_found_page(&headers);
    }
    ApiError::not_found("route").into_response()
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method-not-allowed",
        "this route does not take that method; see /v1/openapi.json",
    )
}

/// The whole router.
pub fn router(state: AppState) -> Router {
    use registry::*;
    // A plugin upload may be as large as the host admits a component to be.
    let mib = |n: u64| usize::try_from(n.saturating_mul(1 << 20)).unwrap_or(usize::MAX);
    let upload_limit = mib(state.plugins.runtime().settings().max_component_mib);
    // Every other body is JSON, and small.
    let json_limit =
        usize::try_from(state.api.max_json_kib.saturating_mul(1024)).unwrap_or(usize::MAX);
    let v1 = Router::new()
        .route("/regions", get(list_regions).post(create_region))
        .route(
            "/regions/{code}",
            get(get_region)
                .patch(update_region)
                .delete(deactivate_region),
        )
        .route("/regions/{code}/reactivate", post(reactivate_region))
        .route("/stations", get(list_stations).post(create_station))
        .route(
            "/stations/{id}",
            get(get_station)
                .patch(update_station)
                .delete(deactivate_station),
        )
        .route("/stations/{id}/reactivate", post(reactivate_station))
        .route("/persons", get(list_persons).post(create_person))
        .route(
            "/persons/{id}",
            get(get_person)
                .patch(update_person)
                .delete(deactivate_person),
        )
        .route("/persons/{id}/reactivate", post(reactivate_person))
        .route("/volunteers", get(list_volunteers).post(create_volunteer))
        .route(
            "/volunteers/{id}",
            get(get_volunteer)
                .patch(update_volunteer)
                .delete(deactivate_volunteer),
        )
        .route("/tokens", post(create_token).get(list_tokens))
        .route("/tokens/{id}", axum::routing::delete(revoke_token))
        .route(
            "/imports/{kind}",
            post(import_csv).layer(axum::extract::DefaultBodyLimit::max(mib(state
                .api
                .max_import_mib))),
        )
        .route("/me", get(whoami))
        .route(
            "/plugins",
            get(plugins::list_plugins)
                .post(plugins::deploy_plugin)
                .layer(axum::extract::DefaultBodyLimit::max(upload_limit)),
        )
        .route(
            "/plugins/{id}",
            get(plugins::get_plugin).patch(plugins::configure_plugin),
        )
        .route("/plugins/{id}/rollback", post(plugins::rollback_plugin))
        .route("/plugins/{id}/resume", post(plugins::resume_plugin))
        .route("/plugins/{id}/plan", post(plugins::plan_dry_run))
        .route("/plugins/{id}/review", post(plugins::review_dry_run))
        .route(
            "/duties",
            get(duties::list_duties).post(duties::create_duty),
        )
        .route(
            "/duties/{id}",
            get(duties::get_duty).patch(duties::update_duty),
        )
        .route("/duties/dry-run", post(duties::dry_run_duty))
        .route("/duties/{id}/pause", post(duties::pause_duty))
        .route("/duties/{id}/resume", post(duties::resume_duty))
        .route("/duties/{id}/trigger", post(duties::trigger_duty))
        .route("/duties/{id}/backfill", post(duties::backfill_duty))
        .route("/duties/{id}/occurrences", get(duties::list_occurrences))
        .route("/duties/{id}/occurrences/{at}", get(duties::get_occurrence))
        .route("/duties/{id}/preview", get(duties::preview_duty))
        .route("/tasks", get(duties::list_tasks).post(tasks::create_task))
        .route("/tasks/{id}", get(duties::get_task))
        .route("/tasks/{id}/cancel", post(tasks::cancel))
        .route("/tasks/{id}/reoffer", post(tasks::reoffer))
        .route("/tasks/{id}/assign", post(tasks::assign))
        .route("/users", get(users::list_users).post(users::create_user))
        .route("/users/{name}", axum::routing::patch(users::update_user))
        .route("/users/{name}/reset", post(users::reset_user))
        .route("/volunteers/{id}/login-link", post(users::login_link))
        .route(
            "/volunteers/{id}/sessions",
            axum::routing::delete(users::end_sessions),
        )
        .route("/tasks/{id}/accept", post(tasks::accept))
        .route("/tasks/{id}/decline", post(tasks::decline))
        .route("/tasks/{id}/check-in", post(tasks::check_in))
        .route("/tasks/{id}/check-out", post(tasks::check_out))
        .route("/reports/shortage", get(tasks::shortage))
        .route("/volunteers/{id}/calendar", post(calendar::rotate))
        .route("/me/tasks", get(tasks::my_tasks))
        .route("/me/tasks/{id}", get(tasks::my_task_detail))
        .route("/events", get(duties::list_events))
        .route(
            "/endpoints",
            get(notify::list_endpoints).post(notify::create_endpoint),
        )
        .route(
            "/endpoints/{id}",
            get(notify::get_endpoint).patch(notify::update_endpoint),
        )
        .route("/endpoints/{id}/rotate", post(notify::rotate_endpoint))
        .route("/endpoints/{id}/test", post(notify::test_endpoint))
        .route("/endpoints/{id}/messages", get(notify::list_messages))
        .route("/endpoints/{id}/replay", post(notify::replay_endpoint))
        .route("/messages/{id}", get(notify::get_message))
        .route("/messages/{id}/replay", post(notify::replay_message))
        .route(
            "/tasks/{id}/reports",
            get(records::task_reports).post(records::file_report),
        )
        .route("/reports/{id}", get(records::get_report))
        .route("/reports/coverage", get(records::coverage_report))
        .route("/service-records", post(records::enter_record))
        .route(
            "/volunteers/{id}/service-records",
            get(records::volunteer_records),
        )
        .route("/volunteers/{id}/hours", get(records::volunteer_hours))
        .route(
            "/volunteers/{id}/certificates",
            get(records::volunteer_certificates).post(records::issue_certificate),
        )
        .route("/me/service-records", get(records::my_records))
        .route("/me/hours", get(records::my_hours))
        .route(
            "/me/certificates",
            get(records::my_certificates).post(records::issue_my_certificate),
        )
        .route(
            "/certificates/{code}/revoke",
            post(records::revoke_certificate),
        )
        .route("/verify/{code}", get(records::verify))
        .route(
            "/tasks/{id}/rating",
            get(records::get_rating).post(records::rate_task),
        )
        .route("/tasks/{id}/rating-link", post(records::rating_link))
        .route("/rate/{code}", post(records::rate_by_link))
        .route("/audit", get(records::audit_log))
        .route("/openapi.json", get(openapi_json));
    Router::new()
        .nest("/v1", v1)
        .merge(crate::console::router(crate::console::UploadLimits {
            import: mib(state.api.max_import_mib),
            plugin: upload_limit,
        }))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics_text))
        .route("/calendar/{file}", get(calendar::feed))
        .route("/verify/{code}", get(records::verify_page))
        .route("/certificates/{code}", get(records::certificate_page))
        .route(
            "/rate/{code}",
            get(records::rate_page).post(records::rate_form_post),
        )
        .fallback(fallback)
        .layer(axum::middleware::from_fn_with_state(
            state.metrics.clone(),
            metrics::track,
        ))
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::extract::DefaultBodyLimit::max(json_limit))
        .with_state(state)
}
