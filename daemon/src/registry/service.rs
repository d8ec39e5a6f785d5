//! Registry operations: each runs in one write transaction, checks references to other records
//! there, and asks the caller's [`Guard`] whether the record is within reach. Updates take a
//! JSON merge patch (RFC 7396) over the record's input form, so a client sends only what
//! changes.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::*;
use crate::service::{Guard, ServiceError, not_found, patched};
use crate::store::{Store, WriteTx};

// ----------------------------------------------------------------------------------- regions

fn region_refs(w: &WriteTx, parent: Option<&str>) -> Result<(), ServiceError> {
    if let Some(p) = parent {
        match w.region(p)? {
            Some(r) if r.active => {}
            Some(_) => {
                return Err(
                    Invalid::one("code", format!("parent region {p} is deactivated")).into(),
                );
            }
            None => {
                return Err(Invalid::one(
                    "code",
                    format!("parent region {p} is not registered: create it first"),
                )
                .into());
            }
        }
    }
    Ok(())
}

pub fn create_region(
    store: &Store,
    guard: &dyn Guard,
    mut input: RegionInput,
    now: DateTime<Utc>,
) -> Result<Region, ServiceError> {
    let (level, parent) = rules::region(&mut input)?;
    if !guard.region(&input.code) {
        return Err(Invalid::one("code", "is outside the regions your token covers").into());
    }
    store.write(|w| {
        if w.region(&input.code)?.is_some() {
            return Err(ServiceError::Conflict {
                field: "code".into(),
                message: format!("region {} already exists", input.code),
            });
        }
        region_refs(w, parent.as_deref())?;
        let region = Region {
            code: input.code,
            name: input.name,
            level,
            parent,
            settlement: input.settlement,
            population: input.population,
            active: true,
            updated_at: now,
        };
        w.put_region(&region)?;
        Ok(region)
    })
}

pub fn update_region(
    store: &Store,
    guard: &dyn Guard,
    code: &str,
    patch: &Value,
    now: DateTime<Utc>,
) -> Result<Region, ServiceError> {
    store.write(|w| {
        let old = w
            .region(code)?
            .filter(|r| guard.region(&r.code))
            .ok_or_else(|| not_found("region", code))?;
        let mut input: RegionInput = patched(&old.to_input(), patch)?;
        if input.code != old.code {
            return Err(
                Invalid::one("code", "a region's code cannot change; create a new region").into(),
            );
        }
        rules::region(&mut input)?;
        let region = Region {
            name: input.name,
            settlement: input.settlement,
            population: input.population,
            updated_at: now,
            ..old
        };
        w.put_region(&region)?;
        Ok(region)
    })
}

pub fn set_region_active(
    store: &Store,
    guard: &dyn Guard,
    code: &str,
    active: bool,
    now: DateTime<Utc>,
) -> Result<Region, ServiceError> {
    store.write(|w| {
        let old = w
            .region(code)?
            .filter(|r| guard.region(&r.code))
            .ok_or_else(|| not_found("region", code))?;
        if active {
            region_refs(w, old.parent.as_deref())?;
        }
        let region = Region {
            active,
            updated_at: now,
            ..old
        };
        w.put_region(&region)?;
        Ok(region)
    })
}

// ---------------------------------------------------------------------------------- stations

fn station_refs(w: &WriteTx, id: u64, s: &StationInput) -> Result<(), ServiceError> {
    let mut errs = Invalid::default();
    match w.region(&s.township)? {
        Some(r) if r.active => {}
        _ => errs.push(
            "township",
            format!("township {} is not a registered, active region", s.township),
        ),
    }
    let county = s.township.get(..6).unwrap_or_default();
    for (i, c) in s.communities.iter().enumerate() {
        let field = format!("communities[{i}]");
        match w.region(c)? {
            Some(r) if r.level != RegionLevel::Community => errs.push(
                field,
                format!("{c} is a {:?} region, not a community", r.level),
            ),
            Some(r) if !r.active => errs.push(field, format!("community {c} is deactivated")),
            Some(_) if !c.starts_with(county) => errs.push(
                field,
                format!("community {c} is not in the station's county ({county}000000)"),
            ),
            Some(_) => {}
            None => errs.push(field, format!("community {c} is not registered")),
        }
    }
    for (i, n) in s.neighbours.iter().enumerate() {
        if *n == id {
            errs.push(
                format!("neighbours[{i}]"),
                "a station is not its own neighbour",
            );
            continue;
        }
        match w.station(*n)? {
            Some(other) if other.township.get(..6) == s.township.get(..6) => {}
            _ => errs.push(
                format!("neighbours[{i}]"),
                format!("station {n} is not a station of the same county"),
            ),
        }
    }
    Ok(errs.into_result()?)
}

/// Scope before existence: a township or community outside the caller's reach is refused with
/// the same words whether it exists or not.
fn guard_station(guard: &dyn Guard, s: &Station) -> Result<(), ServiceError> {
    if !guard.station(s) {
        return Err(Invalid::one("township", "is outside the regions your token covers").into());
    }
    let mut errs = Invalid::default();
    for (i, c) in s.communities.iter().enumerate() {
        if !guard.community(c) {
            errs.push(
                format!("communities[{i}]"),
                "is outside the regions your token covers",
            );
        }
    }
    Ok(errs.into_result()?)
}

/// Where a station works (its township, communities) and whether it is active are the bureau's
/// to decide: a station's own token may change its name, contact and address only.
fn may_place_station(guard: &dyn Guard, township: &str) -> Result<(), ServiceError> {
    if guard.region(township) {
        Ok(())
    } else {
        Err(ServiceError::Forbidden(
            "a station cannot change its own township, communities or active flag; ask the \
             county bureau"
                .into(),
        ))
    }
}

pub fn create_station(
    store: &Store,
    guard: &dyn Guard,
    mut input: StationInput,
    now: DateTime<Utc>,
) -> Result<Station, ServiceError> {
    rules::station(&mut input)?;
    store.write(|w| {
        let id = w.reserve_ids("station", 1)?;
        let s = Station {
            id,
            name: input.name,
            township: input.township,
            communities: input.communities,
            neighbours: input.neighbours,
            contact: input.contact,
            address: input.address,
            location: input.location,
            active: true,
            created_at: now,
            updated_at: now,
        };
        guard_station(guard, &s)?;
        may_place_station(guard, &s.township)?;
        station_refs(w, s.id, &s.to_input())?;
        w.put_station(&s)?;
        Ok(s)
    })
}

pub fn update_station(
    store: &Store,
    guard: &dyn Guard,
    id: u64,
    patch: &Value,
    now: DateTime<Utc>,
) -> Result<Station, ServiceError> {
    store.write(|w| {
        let old = w
            .station(id)?
            .filter(|s| guard.station(s))
            .ok_or_else(|| not_found("station", id))?;
        let mut input: StationInput = patched(&old.to_input(), patch)?;
        rules::station(&mut input)?;
        if input.township != old.township
            || input.communities != old.communities
            || input.neighbours != old.neighbours
        {
            may_place_station(guard, &old.township)?;
        }
        let s = Station {
            name: input.name,
            township: input.township,
            communities: input.communities,
            neighbours: input.neighbours,
            contact: input.contact,
            address: input.address,
            location: input.location,
            updated_at: now,
            ..old
        };
        guard_station(guard, &s)?;
        station_refs(w, s.id, &s.to_input())?;
        w.put_station(&s)?;
        Ok(s)
    })
}

pub fn set_station_active(
    store: &Store,
    guard: &dyn Guard,
    id: u64,
    active: bool,
    now: DateTime<Utc>,
) -> Result<Station, ServiceError> {
    store.write(|w| {
        let old = w
            .station(id)?
            .filter(|s| guard.station(s))
            .ok_or_else(|| not_found("station", id))?;
        may_place_station(guard, &old.township)?;
        if active {
            station_refs(w, old.id, &old.to_input())?;
        }
        let s = Station {
            active,
            updated_at: now,
            ..old
        };
        w.put_station(&s)?;
        Ok(s)
    })
}

// ----------------------------------------------------------------------------------- persons

/// Checks a person's references inside the transaction.
pub fn person_refs(w: &WriteTx, p: &PersonInput) -> Result<(), ServiceError> {
    let mut errs = Invalid::default();
    match w.region(&p.community)? {
        Some(r) if r.active && r.level == RegionLevel::Community => {}
        Some(r) if !r.active => {
            errs.push("community", format!("community {} is deactivated", r.code))
        }
        _ => errs.push(
            "community",
            format!(
                "community {} is not registered: create the region first",
                p.community
            ),
        ),
    }
    if let Some(g) = &p.grid
        && w.region(g)?.is_none()
    {
        errs.push("grid", format!("grid {g} is not registered"));
    }
    Ok(errs.into_result()?)
}

/// Builds the stored person from a checked input.
pub fn person_record(
    id: u64,
    input: PersonInput,
    rid: resident_id::ResidentId,
    created_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Person {
    Person {
        id,
        name: input.name,
        resident_id: input.resident_id,
        gender: rid.gender,
        birth_date: rid.birth_date,
        phone: input.phone,
        community: input.community,
        grid: input.grid,
        location: input.location,
        address: input.address,
        categories: input.categories,
        circumstances: input.circumstances,
        disability: input.disability,
        household: input.household,
        guardian: input.guardian,
        needs: input.needs,
        active: true,
        created_at,
        updated_at: now,
    }
}

/// A person's resident ID taken by another person: named only when the caller reaches it.
fn person_taken(w: &WriteTx, guard: &dyn Guard, existing: u64) -> ServiceError {
    let visible = match w.person(existing) {
        Ok(Some(p)) if guard.community(&p.community) => Some(existing),
        _ => None,
    };
    if visible.is_none() {
        tracing::warn!("a resident ID registered outside the caller's area was sent again");
    }
    ServiceError::Conflict {
        field: "resident_id".into(),
        message: crate::service::resident_id_taken("person", visible),
    }
}

/// A volunteer's resident ID taken by another volunteer: named only when the caller reaches it.
fn volunteer_taken(w: &WriteTx, guard: &dyn Guard, existing: u64) -> ServiceError {
    let visible = match w.volunteer(existing) {
        Ok(Some(v)) => match w.station(v.station) {
            Ok(Some(s)) if guard.station(&s) => Some(existing),
            _ => None,
        },
        _ => None,
    };
    if visible.is_none() {
        tracing::warn!("a resident ID registered outside the caller's area was sent again");
    }
    ServiceError::Conflict {
        field: "resident_id".into(),
        message: crate::service::resident_id_taken("volunteer", visible),
    }
}

fn outside(field: &str) -> ServiceError {
    Invalid::one(field, "is outside the communities your token covers").into()
}

pub fn create_person(
    store: &Store,
    guard: &dyn Guard,
    mut input: PersonInput,
    now: DateTime<Utc>,
) -> Result<Person, ServiceError> {
    let rid = rules::person(&mut input, crate::clock::local_date(now))?;
    if !guard.community(&input.community) {
        return Err(outside("community"));
    }
    store.write(|w| {
        person_refs(w, &input)?;
        let id = w.reserve_ids("person", 1)?;
        let p = person_record(id, input, rid, now, now);
        let put = w.person_writer()?.put(&p)?;
        put.map_err(|d| person_taken(w, guard, d.existing_id))?;
        Ok(p)
    })
}

pub fn update_person(
    store: &Store,
    guard: &dyn Guard,
    id: u64,
    patch: &Value,
    now: DateTime<Utc>,
) -> Result<Person, ServiceError> {
    store.write(|w| {
        let old = w
            .person(id)?
            .filter(|p| guard.community(&p.community))
            .ok_or_else(|| not_found("person", id))?;
        let mut input: PersonInput = patched(&old.to_input(), patch)?;
        let rid = rules::person(&mut input, crate::clock::local_date(now))?;
        if !guard.community(&input.community) {
            return Err(outside("community"));
        }
        person_refs(w, &input)?;
        let p = Person {
            active: old.active,
            ..person_record(id, input, rid, old.created_at, now)
        };
        let put = w.person_writer()?.put(&p)?;
        put.map_err(|d| person_taken(w, guard, d.existing_id))?;
        Ok(p)
    })
}

pub fn set_person_active(
    store: &Store,
    guard: &dyn Guard,
    id: u64,
    active: bool,
    now: DateTime<Utc>,
) -> Result<Person, ServiceError> {
    store.write(|w| {
        let old = w
            .person(id)?
            .filter(|p| guard.community(&p.community))
            .ok_or_else(|| not_found("person", id))?;
        let p = Person {
            active,
            updated_at: now,
            ..old
        };
        let put = w.person_writer()?.put(&p)?;
        put.map_err(|d| person_taken(w, guard, d.existing_id))?;
        Ok(p)
    })
}

// -------------------------------------------------------------------------------- volunteers

/// Checks a volunteer's station inside the transaction and returns it. A station outside the
/// caller's reach answers like one that does not exist.
fn volunteer_station(
    w: &WriteTx,
    guard: &dyn Guard,
    v: &VolunteerInput,
) -> Result<Station, ServiceError> {
    match w.station(v.station)? {
        Some(s) if guard.station(&s) && s.active => {
            if let Some(c) = &v.community
                && !s.serves(c)
            {
                return Err(Invalid::one(
                    "community",
                    format!(
                        "{c} is not one of the communities station {} serves: post the \
                         volunteer to one of its communities, or move them to the station that \
                         serves {c}",
                        s.id
                    ),
                )
                .into());
            }
            Ok(s)
        }
        Some(s) if guard.station(&s) => {
            Err(Invalid::one("station", format!("station {} is deactivated", v.station)).into())
        }
        _ => Err(Invalid::one(
            "station",
            format!(
                "station {} is not a registered station your token covers",
                v.station
            ),
        )
        .into()),
    }
}

pub fn volunteer_record(
    id: u64,
    input: VolunteerInput,
    rid: resident_id::ResidentId,
    created_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Volunteer {
    Volunteer {
        id,
        name: input.name,
        resident_id: input.resident_id,
        gender: rid.gender,
        birth_date: rid.birth_date,
        phone: input.phone,
        station: input.station,
        skills: input.skills,
        certifications: input.certifications,
        safeguarding: input.safeguarding,
        availability: input.availability,
        home: input.home,
        monthly_capacity: input.monthly_capacity,
        languages: input.languages,
        roles: input.roles,
        insurance: input.insurance,
        community: input.community,
        status: input.status,
        created_at,
        updated_at: now,
    }
}

pub fn create_volunteer(
    store: &Store,
    guard: &dyn Guard,
    mut input: VolunteerInput,
    now: DateTime<Utc>,
) -> Result<Volunteer, ServiceError> {
    let rid = rules::volunteer(&mut input, crate::clock::local_date(now))?;
    store.write(|w| {
        volunteer_station(w, guard, &input)?;
        let id = w.reserve_ids("volunteer", 1)?;
        let v = volunteer_record(id, input, rid, now, now);
        let put = w.volunteer_writer()?.put(&v)?;
        put.map_err(|d| volunteer_taken(w, guard, d.existing_id))?;
        Ok(v)
    })
}

fn guarded_volunteer(w: &WriteTx, guard: &dyn Guard, id: u64) -> Result<Volunteer, ServiceError> {
    let v = w.volunteer(id)?.ok_or_else(|| not_found("volunteer", id))?;
    match w.station(v.station)? {
        Some(s) if guard.station(&s) => Ok(v),
        _ => Err(not_found("volunteer", id)),
    }
}

pub fn update_volunteer(
    store: &Store,
    guard: &dyn Guard,
    id: u64,
    patch: &Value,
    now: DateTime<Utc>,
) -> Result<Volunteer, ServiceError> {
    store.write(|w| {
        let old = guarded_volunteer(w, guard, id)?;
        let mut input: VolunteerInput = patched(&old.to_input(), patch)?;
        let rid = rules::volunteer(&mut input, crate::clock::local_date(now))?;
        volunteer_station(w, guard, &input)?;
        let v = volunteer_record(id, input, rid, old.created_at, now);
        let put = w.volunteer_writer()?.put(&v)?;
        put.map_err(|d| volunteer_taken(w, guard, d.existing_id))?;
        Ok(v)
    })
}

pub fn set_volunteer_status(
    store: &Store,
    guard: &dyn Guard,
    id: u64,
    status: VolunteerStatus,
    now: DateTime<Utc>,
) -> Result<Volunteer, ServiceError> {
    store.write(|w| {
        let old = guarded_volunteer(w, guard, id)?;
        let v = Volunteer {
            status,
            updated_at: now,
            ..old
        };
        let put = w.volunteer_writer()?.put(&v)?;
        put.map_err(|d| volunteer_taken(w, guard, d.existing_id))?;
        Ok(v)
    })
}
