//! Registry routes: regions, stations, persons, volunteers, tokens and CSV imports.
//! Scope rules: a record outside the caller's scope answers 404, as if it did not exist;
//! a volunteer token reads no registry lists at all.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::auth::{Caller, Scope};
use super::extract::{Body, Path, Query, Upload, query_error};
use super::problem::{ApiError, Problem};
use super::{AppState, blocking};
use crate::records::model::AuditAction;
use crate::registry::import::{self, ImportOptions, ImportReport};
use crate::registry::service;
use crate::registry::*;
use crate::service::Guard;
use crate::store::Page as StorePage;

/// One page of a list.
#[derive(Debug, Serialize, ToSchema)]
pub struct Page<T: ToSchema> {
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

impl<T: ToSchema> From<StorePage<T>> for Page<T> {
    fn from(p: StorePage<T>) -> Self {
        Page {
            items: p.items,
            next_cursor: p.next,
        }
    }
}

/// A list's `limit` (1 to 1000, default 50): the same rule on every list.
pub(super) fn limit(l: Option<u32>) -> Result<usize, ApiError> {
    limit_or(l, 50)
}

/// A list's `limit` with its own default.
pub(super) fn limit_or(l: Option<u32>, default: usize) -> Result<usize, ApiError> {
    match l {
        None => Ok(default),
        Some(n @ 1..=1000) => Ok(n as usize),
        Some(_) => Err(query_error("limit", "must be 1 to 1000")),
    }
}

pub(super) fn bad_cursor() -> ApiError {
    query_error(
        "cursor",
        "is not a cursor this list gave out; start again without it",
    )
}

/// Parses a `community~id` cursor of a region-ordered list.
pub(super) fn region_cursor(c: Option<&str>) -> Result<Option<(String, u64)>, ApiError> {
    let Some(c) = c else { return Ok(None) };
    let (code, id) = c.split_once('~').ok_or_else(bad_cursor)?;
    Ok(Some((
        code.to_owned(),
        id.parse().map_err(|_| bad_cursor())?,
    )))
}

pub(super) fn id_cursor(c: Option<&str>) -> Result<u64, ApiError> {
    c.map_or(Ok(0), |c| c.parse().map_err(|_| bad_cursor()))
}

fn no_lists_for_volunteers(caller: &Caller) -> Result<(), ApiError> {
    if caller.is_volunteer() {
        Err(ApiError::forbidden(
            "a volunteer token cannot list the registry",
        ))
    } else {
        Ok(())
    }
}

// ----------------------------------------------------------------------------------- regions

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct RegionQuery {
    /// Only regions at or below this code.
    under: Option<String>,
    /// Only regions of this level.
    level: Option<RegionLevel>,
    /// Include deactivated regions.
    #[serde(default)]
    include_inactive: bool,
    /// Items per page, 1 to 1000.
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
    cursor: Option<String>,
}

#[utoipa::path(get, path = "/v1/regions", tag = "regions", params(RegionQuery),
    responses((status = 200, body = Page<Region>)))]
pub async fn list_regions(
    State(st): State<AppState>,
    caller: Caller,
    Query(q): Query<RegionQuery>,
) -> Result<Json<Page<Region>>, ApiError> {
    no_lists_for_volunteers(&caller)?;
    let limit = limit(q.limit)?;
    let prefix = match &q.under {
        Some(code) => subtree(code)?,
        None => String::new(),
    };
    let page = st.read(|r| {
        r.regions(&prefix, q.cursor.as_deref(), limit, |reg| {
            caller.can_read_region(&reg.code)
                && (q.include_inactive || reg.active)
                && q.level.is_none_or(|l| l == reg.level)
                && q.under
                    .as_deref()
                    .is_none_or(|u| RegionCode::parse(u).is_ok_and(|u| u.contains(&reg.code)))
        })
    })?;
    Ok(Json(page.into()))
}

/// The key prefix of a region's subtree, from a `region` query parameter.
pub(super) fn subtree(code: &str) -> Result<String, ApiError> {
    region::subtree_prefix(code)
        .map(str::to_owned)
        .ok_or_else(|| query_error("region", "must be a 12-digit division code"))
}

#[utoipa::path(post, path = "/v1/regions", tag = "regions", request_body = RegionInput,
    responses((status = 201, body = Region), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn create_region(
    State(st): State<AppState>,
    caller: Caller,
    Body(input): Body<RegionInput>,
) -> Result<(StatusCode, Json<Region>), ApiError> {
    let now = st.clock.now();
    let r = blocking(move || Ok(service::create_region(&st.store, &caller, input, now)?)).await?;
    Ok((StatusCode::CREATED, Json(r)))
}

#[utoipa::path(get, path = "/v1/regions/{code}",
    params(("code" = String, Path, description = "12-digit division code")), tag = "regions",
    responses((status = 200, body = Region), (status = 404, body = Problem)))]
pub async fn get_region(
    State(st): State<AppState>,
    caller: Caller,
    Path(code): Path<String>,
) -> Result<Json<Region>, ApiError> {
    st.read(|r| r.region(&code))?
        .filter(|r| caller.can_read_region(&r.code))
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("region {code}")))
}

#[utoipa::path(patch, path = "/v1/regions/{code}",
    params(("code" = String, Path, description = "12-digit division code")), tag = "regions",
    request_body(content = Object, description = "JSON merge patch (RFC 7396) of RegionInput"),
    responses((status = 200, body = Region), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn update_region(
    State(st): State<AppState>,
    caller: Caller,
    Path(code): Path<String>,
    Body(patch): Body<Value>,
) -> Result<Json<Region>, ApiError> {
    let now = st.clock.now();
    blocking(move || {
        Ok(Json(service::update_region(
            &st.store, &caller, &code, &patch, now,
        )?))
    })
    .await
}

#[utoipa::path(delete, path = "/v1/regions/{code}",
    params(("code" = String, Path, description = "12-digit division code")), tag = "regions",
    description = "Deactivates the region; nothing is deleted.",
    responses((status = 200, body = Region), (status = 404, body = Problem)))]
pub async fn deactivate_region(
    State(st): State<AppState>,
    caller: Caller,
    Path(code): Path<String>,
) -> Result<Json<Region>, ApiError> {
    let now = st.clock.now();
    blocking(move || {
        Ok(Json(service::set_region_active(
            &st.store, &caller, &code, false, now,
        )?))
    })
    .await
}

#[utoipa::path(post, path = "/v1/regions/{code}/reactivate",
    params(("code" = String, Path, description = "12-digit division code")), tag = "regions",
    description = "Reactivates a deactivated region (its parent must be active).",
    responses((status = 200, body = Region), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn reactivate_region(
    State(st): State<AppState>,
    caller: Caller,
    Path(code): Path<String>,
) -> Result<Json<Region>, ApiError> {
    let now = st.clock.now();
    blocking(move || {
        Ok(Json(service::set_region_active(
            &st.store, &caller, &code, true, now,
        )?))
    })
    .await
}

// ---------------------------------------------------------------------------------- stations

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct StationQuery {
    /// Only stations whose township lies at or below this region.
    region: Option<String>,
    #[serde(default)]
    include_inactive: bool,
    /// Items per page, 1 to 1000.
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
    cursor: Option<String>,
}

#[utoipa::path(get, path = "/v1/stations", tag = "stations", params(StationQuery),
    responses((status = 200, body = Page<Station>), (status = 403, body = Problem)))]
pub async fn list_stations(
    State(st): State<AppState>,
    caller: Caller,
    Query(q): Query<StationQuery>,
) -> Result<Json<Page<Station>>, ApiError> {
    no_lists_for_volunteers(&caller)?;
    let limit = limit(q.limit)?;
    let after = id_cursor(q.cursor.as_deref())?;
    let prefix = q.region.as_deref().map(subtree).transpose()?;
    let page = st.read(|r| {
        r.stations(after, limit, |s| {
            caller.station(s)
                && (q.include_inactive || s.active)
                && prefix.as_deref().is_none_or(|p| s.township.starts_with(p))
        })
    })?;
    Ok(Json(page.into()))
}

#[utoipa::path(post, path = "/v1/stations", tag = "stations", request_body = StationInput,
    responses((status = 201, body = Station), (status = 422, body = Problem)))]
pub async fn create_station(
    State(st): State<AppState>,
    caller: Caller,
    Body(input): Body<StationInput>,
) -> Result<(StatusCode, Json<Station>), ApiError> {
    let now = st.clock.now();
    let s = blocking(move || Ok(service::create_station(&st.store, &caller, input, now)?)).await?;
    Ok((StatusCode::CREATED, Json(s)))
}

#[utoipa::path(get, path = "/v1/stations/{id}",
    params(("id" = u64, Path, description = "Station id")), tag = "stations",
    responses((status = 200, body = Station), (status = 404, body = Problem)))]
pub async fn get_station(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<u64>,
) -> Result<Json<Station>, ApiError> {
    st.read(|r| r.station(id))?
        .filter(|s| caller.station(s))
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("station {id}")))
}

#[utoipa::path(patch, path = "/v1/stations/{id}",
    params(("id" = u64, Path, description = "Station id")), tag = "stations",
    request_body(content = Object, description = "JSON merge patch (RFC 7396) of StationInput"),
    responses((status = 200, body = Station), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn update_station(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<u64>,
    Body(patch): Body<Value>,
) -> Result<Json<Station>, ApiError> {
    let now = st.clock.now();
    blocking(move || {
        Ok(Json(service::update_station(
            &st.store, &caller, id, &patch, now,
        )?))
    })
    .await
}

#[utoipa::path(delete, path = "/v1/stations/{id}",
    params(("id" = u64, Path, description = "Station id")), tag = "stations",
    description = "Deactivates the station; nothing is deleted.",
    responses((status = 200, body = Station), (status = 404, body = Problem)))]
pub async fn deactivate_station(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<u64>,
) -> Result<Json<Station>, ApiError> {
    let now = st.clock.now();
    blocking(move || {
        Ok(Json(service::set_station_active(
            &st.store, &caller, id, false, now,
        )?))
    })
    .await
}

#[utoipa::path(post, path = "/v1/stations/{id}/reactivate",
    params(("id" = u64, Path, description = "Station id")), tag = "stations",
    description = "Reactivates a deactivated station (the bureau's to do; its township and communities must be active). Its tokens work again.",
    responses((status = 200, body = Station), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn reactivate_station(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<u64>,
) -> Result<Json<Station>, ApiError> {
    let now = st.clock.now();
    blocking(move || {
        Ok(Json(service::set_station_active(
            &st.store, &caller, id, true, now,
        )?))
    })
    .await
}

// ----------------------------------------------------------------------------------- persons

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PersonQuery {
    /// Only persons in this region's subtree (a county, township, community or grid code).
    pub(crate) region: Option<String>,
    /// Only persons whose name contains this text, or whose resident ID is this one.
    pub(crate) name: Option<String>,
    /// Only persons in this priority group.
    pub(crate) category: Option<Category>,
    /// Only persons with this needs tag.
    pub(crate) need: Option<String>,
    #[serde(default)]
    pub(crate) include_inactive: bool,
    /// Items per page, 1 to 1000.
    #[param(minimum = 1, maximum = 1000)]
    pub(crate) limit: Option<u32>,
    pub(crate) cursor: Option<String>,
}

/// Intersects the caller's region prefixes with a requested one.
fn narrow(scope: Option<Vec<String>>, wanted: Option<&str>) -> Option<Vec<String>> {
    match (scope, wanted) {
        (None, None) => None,
        (None, Some(w)) => Some(vec![w.to_owned()]),
        (Some(s), None) => Some(s),
        (Some(s), Some(w)) => Some(
            s.into_iter()
                .filter_map(|p| {
                    if w.starts_with(&p) {
                        Some(w.to_owned())
                    } else if p.starts_with(w) {
                        Some(p)
                    } else {
                        None
                    }
                })
                .collect(),
        ),
    }
}

#[utoipa::path(get, path = "/v1/persons", tag = "persons", params(PersonQuery),
    responses((status = 200, body = Page<Person>), (status = 403, body = Problem)))]
pub async fn list_persons(
    State(st): State<AppState>,
    caller: Caller,
    Query(q): Query<PersonQuery>,
) -> Result<Json<Page<Person>>, ApiError> {
    no_lists_for_volunteers(&caller)?;
    let limit = limit(q.limit)?;
    let region = q.region.as_deref().map(subtree).transpose()?;
    // A grid's prefix is its community's; the grid itself is matched exactly below.
    let grid = q.region.as_deref().filter(|r| r.contains('-'));
    let community_prefix = region.as_deref().map(|p| p.split('-').next().unwrap_or(p));
    let name = q.name.as_deref().map(str::trim).filter(|n| !n.is_empty());
    if name.is_some_and(|n| n.chars().count() > 50) {
        return Err(super::extract::query_error("name", "at most 50 characters"));
    }
    let keep = |p: &Person| {
        (q.include_inactive || p.active)
            && caller.community(&p.community)
            && name.is_none_or(|n| p.name.contains(n) || p.resident_id.eq_ignore_ascii_case(n))
            && q.category.is_none_or(|c| p.categories.contains(&c))
            && q.need
                .as_deref()
                .is_none_or(|n| p.needs.iter().any(|x| x == n))
            && grid.is_none_or(|g| p.grid.as_deref() == Some(g))
            && region
                .as_deref()
                .is_none_or(|r| p.community.starts_with(r.split('-').next().unwrap_or(r)))
    };
    let prefixes = narrow(caller.person_prefixes(), community_prefix);
    let page = st.read(|r| match (prefixes, q.category) {
        (Some(mut prefixes), _) => {
            prefixes.sort();
            let after = region_cursor(q.cursor.as_deref())?;
            Ok::<_, ApiError>(r.persons_in_regions(
                &prefixes,
                after.as_ref().map(|(c, i)| (c.as_str(), *i)),
                limit,
                keep,
            )?)
        }
        (None, Some(cat)) => {
            Ok(r.persons_in_category(cat.as_str(), id_cursor(q.cursor.as_deref())?, limit, keep)?)
        }
        (None, None) => Ok(r.persons(id_cursor(q.cursor.as_deref())?, limit, keep)?),
    })?;
    let audit_region = q.region.clone().or_else(|| audit_region(&caller));
    super::records::audit(
        &st,
        &caller,
        AuditAction::List,
        "persons".into(),
        Some(page.items.len() as u64),
        "GET /v1/persons",
        audit_region,
    )
    .await?;
    Ok(Json(page.into()))
}

#[utoipa::path(post, path = "/v1/persons", tag = "persons", request_body = PersonInput,
    responses((status = 201, body = Person), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn create_person(
    State(st): State<AppState>,
    caller: Caller,
    Body(input): Body<PersonInput>,
) -> Result<(StatusCode, Json<Person>), ApiError> {
    let now = st.clock.now();
    let (store, c) = (st.store.clone(), caller.clone());
    let p = blocking(move || Ok(service::create_person(&store, &c, input, now)?)).await?;
    audit_person(&st, &caller, AuditAction::Create, &p, "POST /v1/persons").await?;
    Ok((StatusCode::CREATED, Json(p)))
}

#[utoipa::path(get, path = "/v1/persons/{id}",
    params(("id" = u64, Path, description = "Person id")), tag = "persons",
    responses((status = 200, body = Person), (status = 404, body = Problem)))]
pub async fn get_person(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<u64>,
) -> Result<Json<Person>, ApiError> {
    let p = st
        .read(|r| r.person(id))?
        .filter(|p| caller.community(&p.community))
        .ok_or_else(|| ApiError::not_found(format!("person {id}")))?;
    audit_person(&st, &caller, AuditAction::Read, &p, "GET /v1/persons/{id}").await?;
    Ok(Json(p))
}

#[utoipa::path(patch, path = "/v1/persons/{id}",
    params(("id" = u64, Path, description = "Person id")), tag = "persons",
    request_body(content = Object, description = "JSON merge patch (RFC 7396) of PersonInput"),
    responses((status = 200, body = Person), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn update_person(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<u64>,
    Body(patch): Body<Value>,
) -> Result<Json<Person>, ApiError> {
    let now = st.clock.now();
    let (store, c) = (st.store.clone(), caller.clone());
    let p = blocking(move || Ok(service::update_person(&store, &c, id, &patch, now)?)).await?;
    audit_person(
        &st,
        &caller,
        AuditAction::Update,
        &p,
        "PATCH /v1/persons/{id}",
    )
    .await?;
    Ok(Json(p))
}

#[utoipa::path(delete, path = "/v1/persons/{id}",
    params(("id" = u64, Path, description = "Person id")), tag = "persons",
    description = "Deactivates the person (moved away, no longer in care); nothing is deleted.",
    responses((status = 200, body = Person), (status = 404, body = Problem)))]
pub async fn deactivate_person(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<u64>,
) -> Result<Json<Person>, ApiError> {
    let now = st.clock.now();
    let (store, c) = (st.store.clone(), caller.clone());
    let p = blocking(move || Ok(service::set_person_active(&store, &c, id, false, now)?)).await?;
    audit_person(
        &st,
        &caller,
        AuditAction::Deactivate,
        &p,
        "DELETE /v1/persons/{id}",
    )
    .await?;
    Ok(Json(p))
}

#[utoipa::path(post, path = "/v1/persons/{id}/reactivate",
    params(("id" = u64, Path, description = "Person id")), tag = "persons",
    responses((status = 200, body = Person), (status = 404, body = Problem)))]
pub async fn reactivate_person(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<u64>,
) -> Result<Json<Person>, ApiError> {
    let now = st.clock.now();
    let (store, c) = (st.store.clone(), caller.clone());
    let p = blocking(move || Ok(service::set_person_active(&store, &c, id, true, now)?)).await?;
    audit_person(
        &st,
        &caller,
        AuditAction::Update,
        &p,
        "POST /v1/persons/{id}/reactivate",
    )
    .await?;
    Ok(Json(p))
}

// -------------------------------------------------------------------------------- volunteers

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct VolunteerQuery {
    /// Only volunteers of this station.
    station: Option<u64>,
    /// Only volunteers with this skill.
    skill: Option<String>,
    /// Only volunteers with this status (default: all but inactive).
    status: Option<VolunteerStatus>,
    /// Items per page, 1 to 1000.
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
    cursor: Option<String>,
}

#[utoipa::path(get, path = "/v1/volunteers", tag = "volunteers", params(VolunteerQuery),
    responses((status = 200, body = Page<Volunteer>), (status = 403, body = Problem)))]
pub async fn list_volunteers(
    State(st): State<AppState>,
    caller: Caller,
    Query(q): Query<VolunteerQuery>,
) -> Result<Json<Page<Volunteer>>, ApiError> {
    no_lists_for_volunteers(&caller)?;
    let limit = limit(q.limit)?;
    let after = id_cursor(q.cursor.as_deref())?;
    let page = st.read(|r| {
        let stations: std::collections::HashMap<u64, bool> = r
            .all_stations()?
            .into_iter()
            .map(|s| (s.id, caller.station(&s)))
            .collect();
        let keep = |v: &Volunteer| {
            stations.get(&v.station).copied().unwrap_or(false)
                && match q.status {
                    Some(s) => v.status == s,
                    None => v.status != VolunteerStatus::Inactive,
                }
                && q.skill
                    .as_deref()
                    .is_none_or(|s| v.skills.iter().any(|x| x == s))
        };
        match q.station {
            Some(s) => r.volunteers_of_station(s, after, limit, keep),
            None => r.volunteers(after, limit, keep),
        }
    })?;
    super::records::audit(
        &st,
        &caller,
        AuditAction::List,
        "volunteers".into(),
        Some(page.items.len() as u64),
        "GET /v1/volunteers",
        audit_region(&caller),
    )
    .await?;
    Ok(Json(page.into()))
}

#[utoipa::path(post, path = "/v1/volunteers", tag = "volunteers", request_body = VolunteerInput,
    responses((status = 201, body = Volunteer), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn create_volunteer(
    State(st): State<AppState>,
    caller: Caller,
    Body(input): Body<VolunteerInput>,
) -> Result<(StatusCode, Json<Volunteer>), ApiError> {
    let now = st.clock.now();
    let (store, c) = (st.store.clone(), caller.clone());
    let v = blocking(move || Ok(service::create_volunteer(&store, &c, input, now)?)).await?;
    audit_volunteer(&st, &caller, AuditAction::Create, &v, "POST /v1/volunteers").await?;
    Ok((StatusCode::CREATED, Json(v)))
}

#[utoipa::path(get, path = "/v1/volunteers/{id}",
    params(("id" = u64, Path, description = "Volunteer id")), tag = "volunteers",
    description = "A volunteer token reads its own record.",
    responses((status = 200, body = Volunteer), (status = 404, body = Problem)))]
pub async fn get_volunteer(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<u64>,
) -> Result<Json<Volunteer>, ApiError> {
    let found = st.read(|r| {
        let Some(v) = r.volunteer(id)? else {
            return Ok::<_, ApiError>(None);
        };
        let visible = match caller.scope {
            Scope::Volunteer(me) => me == id,
            _ => r.station(v.station)?.is_some_and(|s| caller.station(&s)),
        };
        let township = r.station(v.station)?.map(|s| s.township);
        Ok(visible.then_some((v, township)))
    })?;
    let (v, township) = found.ok_or_else(|| ApiError::not_found(format!("volunteer {id}")))?;
    super::records::audit(
        &st,
        &caller,
        AuditAction::Read,
        format!("volunteer:{id}"),
        None,
        "GET /v1/volunteers/{id}",
        township,
    )
    .await?;
    Ok(Json(v))
}

#[utoipa::path(patch, path = "/v1/volunteers/{id}",
    params(("id" = u64, Path, description = "Volunteer id")), tag = "volunteers",
    request_body(content = Object, description = "JSON merge patch (RFC 7396) of VolunteerInput"),
    responses((status = 200, body = Volunteer), (status = 404, body = Problem),
        (status = 409, body = Problem, description = "The resident ID belongs to another volunteer"),
        (status = 422, body = Problem)))]
pub async fn update_volunteer(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<u64>,
    Body(patch): Body<Value>,
) -> Result<Json<Volunteer>, ApiError> {
    let now = st.clock.now();
    let (store, c) = (st.store.clone(), caller.clone());
    let v = blocking(move || Ok(service::update_volunteer(&store, &c, id, &patch, now)?)).await?;
    audit_volunteer(
        &st,
        &caller,
        AuditAction::Update,
        &v,
        "PATCH /v1/volunteers/{id}",
    )
    .await?;
    Ok(Json(v))
}

/// An audit entry for a read or change of a person (region: their community).
async fn audit_person(
    st: &AppState,
    caller: &Caller,
    action: AuditAction,
    p: &Person,
    route: &'static str,
) -> Result<(), ApiError> {
    super::records::audit(
        st,
        caller,
        action,
        format!("person:{}", p.id),
        None,
        route,
        Some(p.community.clone()),
    )
    .await
}

/// The region of the caller, for audit entries of lists.
fn audit_region(caller: &Caller) -> Option<String> {
    match &caller.scope {
        Scope::Bureau(code) => Some(code.clone()),
        _ => caller.station.as_ref().map(|s| s.township.clone()),
    }
}

/// An audit entry for a change to a volunteer's record (region: their station's township).
async fn audit_volunteer(
    st: &AppState,
    caller: &Caller,
    action: AuditAction,
    v: &Volunteer,
    route: &'static str,
) -> Result<(), ApiError> {
    let station = v.station;
    let township = st.read(|r| r.station(station))?.map(|s| s.township);
    super::records::audit(
        st,
        caller,
        action,
        format!("volunteer:{}", v.id),
        None,
        route,
        township,
    )
    .await
}

#[utoipa::path(delete, path = "/v1/volunteers/{id}",
    params(("id" = u64, Path, description = "Volunteer id")), tag = "volunteers",
    description = "Sets the volunteer's status to inactive; nothing is deleted.",
    responses((status = 200, body = Volunteer), (status = 404, body = Problem)))]
pub async fn deactivate_volunteer(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<u64>,
) -> Result<Json<Volunteer>, ApiError> {
    let now = st.clock.now();
    let (store, c) = (st.store.clone(), caller.clone());
    let v = blocking(move || {
        Ok(service::set_volunteer_status(
            &store,
            &c,
            id,
            VolunteerStatus::Inactive,
            now,
        )?)
    })
    .await?;
    audit_volunteer(
        &st,
        &caller,
        AuditAction::Deactivate,
        &v,
        "DELETE /v1/volunteers/{id}",
    )
    .await?;
    Ok(Json(v))
}

// ------------------------------------------------------------------------------------ tokens

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    /// `admin`, `bureau:<code>`, `station:<id>` or `volunteer:<id>`.
    #[schema(example = "station:3")]
    pub scope: String,
    /// A note on who holds the token (at most 200 characters).
    #[serde(default)]
    #[schema(max_length = 200)]
    pub label: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TokenCreated {
    /// Shown once; only its hash is stored.
    pub token: String,
    pub scope: String,
}

/// Maps a token error to a problem naming `field`.
fn token_error(field: &'static str) -> impl Fn(super::auth::TokenError) -> ApiError {
    move |e| match e {
        super::auth::TokenError::Scope(message) => ApiError::invalid(vec![FieldError {
            field: field.into(),
            message,
        }]),
        super::auth::TokenError::Label(message) => ApiError::invalid(vec![FieldError {
            field: "label".into(),
            message,
        }]),
        super::auth::TokenError::LastAdmin => ApiError {
            status: StatusCode::CONFLICT,
            kind: "last-admin",
            detail: e.to_string(),
            errors: Vec::new(),
        },
        super::auth::TokenError::Store(s) => s.into(),
    }
}

#[utoipa::path(post, path = "/v1/tokens", tag = "tokens", request_body = TokenRequest,
    description = "An admin creates any token; a bureau creates tokens for its own region, stations and volunteers.",
    responses((status = 201, body = TokenCreated), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn create_token(
    State(st): State<AppState>,
    caller: Caller,
    Body(req): Body<TokenRequest>,
) -> Result<(StatusCode, Json<TokenCreated>), ApiError> {
    let scope: Scope = req.scope.parse().map_err(|m: String| {
        ApiError::invalid(vec![FieldError {
            field: "scope".into(),
            message: m,
        }])
    })?;
    let allowed = match (&caller.scope, &scope) {
        (Scope::Admin, _) => true,
        (Scope::Bureau(_), Scope::Bureau(code)) => caller.region(code),
        (Scope::Bureau(_), Scope::Station(id)) => st
            .store
            .read(|r| r.station(*id))?
            .is_some_and(|s| caller.station(&s)),
        (Scope::Bureau(_), Scope::Volunteer(id)) => st.read(|r| {
            Ok::<_, crate::store::StoreError>(match r.volunteer(*id)? {
                Some(v) => r.station(v.station)?.is_some_and(|s| caller.station(&s)),
                None => false,
            })
        })?,
        _ => false,
    };
    if !allowed {
        return Err(ApiError::forbidden(format!(
            "a {} token cannot create a {scope} token",
            caller.scope
        )));
    }
    let now = st.clock.now();
    let token = blocking(move || {
        super::auth::create_token(&st.store, &scope, req.label, now).map_err(token_error("scope"))
    })
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(TokenCreated {
            token,
            scope: req.scope,
        }),
    ))
}

#[utoipa::path(get, path = "/v1/tokens", tag = "tokens",
    description = "Every token (admin only): id, scope, label, created, revoked. Tokens themselves are never shown again.",
    responses((status = 200, body = Vec<super::auth::TokenInfo>), (status = 403, body = Problem)))]
pub async fn list_tokens(
    State(st): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<super::auth::TokenInfo>>, ApiError> {
    if !caller.is_admin() {
        return Err(ApiError::forbidden("only an administrator lists tokens"));
    }
    Ok(Json(super::auth::list_tokens(&st.store)?))
}

#[utoipa::path(delete, path = "/v1/tokens/{id}",
    params(("id" = String, Path, description = "Token id, as `GET /v1/tokens` lists it")), tag = "tokens",
    description = "Revokes a token by its id (admin only); it stops authenticating at once.",
    responses((status = 200, body = super::auth::TokenInfo), (status = 403, body = Problem), (status = 409, body = Problem, description = "The last admin token cannot be revoked through the API"), (status = 422, body = Problem)))]
pub async fn revoke_token(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<super::auth::TokenInfo>, ApiError> {
    if !caller.is_admin() {
        return Err(ApiError::forbidden("only an administrator revokes tokens"));
    }
    let now = st.clock.now();
    let tokens = st.tokens.clone();
    let info = blocking(move || {
        super::auth::revoke_token(&st.store, &id, now, true).map_err(token_error("id"))
    })
    .await?;
    tokens.forget();
    Ok(Json(info))
}

// ----------------------------------------------------------------------------------- imports

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ImportQuery {
    /// Import the valid rows and report the invalid ones, instead of importing nothing.
    #[serde(default)]
    skip_invalid: bool,
}

#[utoipa::path(post, path = "/v1/imports/{kind}", tag = "imports", params(ImportQuery,
        ("kind" = String, Path, description = "`persons` or `volunteers`")),
    request_body(content = String, content_type = "text/csv", description = "UTF-8 CSV with a header row"),
    responses((status = 200, body = ImportReport, description = "Imported (see `skipped` with skip_invalid)"),
        (status = 422, body = ImportReport, description = "Invalid rows; nothing imported"),
        (status = 400, body = Problem)))]
pub async fn import_csv(
    State(st): State<AppState>,
    caller: Caller,
    Path(kind): Path<String>,
    Query(q): Query<ImportQuery>,
    Upload(body): Upload,
) -> Result<(StatusCode, Json<ImportReport>), ApiError> {
    let kind = match kind.as_str() {
        "persons" => import::Kind::Persons,
        "volunteers" => import::Kind::Volunteers,
        other => return Err(ApiError::not_found(format!("import kind {other:?}"))),
    };
    if caller.is_volunteer() {
        return Err(ApiError::forbidden("a volunteer token cannot import"));
    }
    let now = st.clock.now();
    let (st2, c2) = (st.clone(), caller.clone());
    let what = match kind {
        import::Kind::Persons => "persons",
        import::Kind::Volunteers => "volunteers",
    };
    let (status, report) = blocking(move || {
        let (st, caller) = (st2, c2);
        let opts = ImportOptions {
            kind,
            skip_invalid: q.skip_invalid,
            guard: &caller,
            now,
            cancel: Some(&st.stopping),
        };
        let report = import::import(
            &st.store,
            || Ok(std::io::Cursor::new(body.clone())),
            &opts,
            &mut |_| {},
        )?;
        let status = if report.error_count > 0 && report.imported == 0 && !q.skip_invalid {
            StatusCode::UNPROCESSABLE_ENTITY
        } else {
            StatusCode::OK
        };
        Ok((status, report))
    })
    .await?;
    if report.imported > 0 {
        let region = audit_region(&caller);
        super::records::audit(
            &st,
            &caller,
            AuditAction::Import,
            what.into(),
            Some(report.imported),
            "POST /v1/imports/{kind}",
            region,
        )
        .await?;
    }
    Ok((status, Json(report)))
}
