//! Regions, stations, persons and volunteers, with the indexes beside them.

use redb::ReadableTable;
use serde::de::DeserializeOwned;

use super::StoreError;
use super::tables::*;
use super::tx::{Page, ReadTx, WriteTx, collect_page, decode, encode, reads};
use crate::registry::{Person, Region, Station, Volunteer};

reads! {
    pub fn region(&self, code: &str) -> Result<Option<Region>, StoreError> {
        let t = self.txn.open_table(REGIONS)?;
        t.get(code)?
            .map(|v| decode("regions", code, v.value()))
            .transpose()
    }

    pub fn station(&self, id: u64) -> Result<Option<Station>, StoreError> {
        let t = self.txn.open_table(STATIONS)?;
        t.get(id)?
            .map(|v| decode("stations", id, v.value()))
            .transpose()
    }

    /// Every station; there are tens per county, so this is cheap.
    pub fn all_stations(&self) -> Result<Vec<Station>, StoreError> {
        let t = self.txn.open_table(STATIONS)?;
        let mut out = Vec::new();
        for row in t.iter()? {
            let (k, v) = row?;
            out.push(decode("stations", k.value(), v.value())?);
        }
        Ok(out)
    }

    pub fn person(&self, id: u64) -> Result<Option<Person>, StoreError> {
        let t = self.txn.open_table(PERSONS)?;
        t.get(id)?
            .map(|v| decode("persons", id, v.value()))
            .transpose()
    }

    pub fn person_id_by_resident_id(&self, rid: &str) -> Result<Option<u64>, StoreError> {
        let t = self.txn.open_table(PERSONS_BY_RESIDENT_ID)?;
        Ok(t.get(rid)?.map(|v| v.value()))
    }

    pub fn volunteer(&self, id: u64) -> Result<Option<Volunteer>, StoreError> {
        let t = self.txn.open_table(VOLUNTEERS)?;
        t.get(id)?
            .map(|v| decode("volunteers", id, v.value()))
            .transpose()
    }

    pub fn volunteer_id_by_resident_id(&self, rid: &str) -> Result<Option<u64>, StoreError> {
        let t = self.txn.open_table(VOLUNTEERS_BY_RESIDENT_ID)?;
        Ok(t.get(rid)?.map(|v| v.value()))
    }
}

impl ReadTx {
    /// Regions whose code starts with `prefix`, in code order, after the cursor `after`.
    pub fn regions(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
        mut keep: impl FnMut(&Region) -> bool,
    ) -> Result<Page<Region>, StoreError> {
        let t = self.txn.open_table(REGIONS)?;
        let end = format!("{prefix}~");
        let start = after
            .map(|a| format!("{a}\0"))
            .unwrap_or_else(|| prefix.to_owned());
        let mut items = Vec::new();
        for row in t.range(start.as_str()..end.as_str())? {
            let (k, v) = row?;
            let r: Region = decode("regions", k.value(), v.value())?;
            if keep(&r) {
                if items.len() == limit {
                    let next = items.last().map(|l: &Region| l.code.clone());
                    return Ok(Page { items, next });
                }
                items.push(r);
            }
        }
        Ok(Page { items, next: None })
    }

    pub fn stations(
        &self,
        after: u64,
        limit: usize,
        keep: impl FnMut(&Station) -> bool,
    ) -> Result<Page<Station>, StoreError> {
        self.page_by_id(STATIONS, "stations", after, limit, keep)
    }

    pub fn persons(
        &self,
        after: u64,
        limit: usize,
        keep: impl FnMut(&Person) -> bool,
    ) -> Result<Page<Person>, StoreError> {
        self.page_by_id(PERSONS, "persons", after, limit, keep)
    }

    pub fn volunteers(
        &self,
        after: u64,
        limit: usize,
        keep: impl FnMut(&Volunteer) -> bool,
    ) -> Result<Page<Volunteer>, StoreError> {
        self.page_by_id(VOLUNTEERS, "volunteers", after, limit, keep)
    }

    /// Persons whose community code starts with one of `prefixes` (sorted, non-overlapping),
    /// in (community, id) order, after the cursor `community~id`.
    pub fn persons_in_regions(
        &self,
        prefixes: &[String],
        after: Option<(&str, u64)>,
        limit: usize,
        keep: impl FnMut(&Person) -> bool,
    ) -> Result<Page<Person>, StoreError> {
        self.page_in_regions(
            PERSONS_BY_COMMUNITY,
            PERSONS,
            "persons",
            prefixes,
            after,
            limit,
            keep,
            |p: &Person| format!("{}~{}", p.community, p.id),
        )
    }

    /// Every person whose community starts with `prefix`, decoded as `T` — a projection of
    /// `Person` (fields `T` does not name are skipped, which is much cheaper than a full
    /// record when planning over a county).
    pub fn persons_under_as<T: DeserializeOwned>(
        &self,
        prefix: &str,
        keep: impl FnMut(&T) -> bool,
    ) -> Result<Vec<T>, StoreError> {
        let index = self.txn.open_table(PERSONS_BY_COMMUNITY)?;
        let end = format!("{prefix}~");
        let ids = index
            .range((prefix, 0)..(end.as_str(), 0))?
            .map(|row| row.map(|(k, _)| k.value().1));
        let persons = self.txn.open_table(PERSONS)?;
        Ok(
            collect_page(&persons, "persons", ids, usize::MAX, keep, |_: &T| {
                String::new()
            })?
            .items,
        )
    }

    /// Persons in a category, in id order.
    pub fn persons_in_category(
        &self,
        category: &str,
        after: u64,
        limit: usize,
        keep: impl FnMut(&Person) -> bool,
    ) -> Result<Page<Person>, StoreError> {
        let index = self.txn.open_table(PERSONS_BY_CATEGORY)?;
        let ids = index
            .range((category, after.saturating_add(1))..=(category, u64::MAX))?
            .map(|row| row.map(|(k, _)| k.value().1));
        let persons = self.txn.open_table(PERSONS)?;
        collect_page(&persons, "persons", ids, limit, keep, |p: &Person| {
            p.id.to_string()
        })
    }

    /// Volunteers of one station, in id order.
    pub fn volunteers_of_station(
        &self,
        station: u64,
        after: u64,
        limit: usize,
        keep: impl FnMut(&Volunteer) -> bool,
    ) -> Result<Page<Volunteer>, StoreError> {
        let index = self.txn.open_table(VOLUNTEERS_BY_STATION)?;
        let ids = index
            .range((station, after.saturating_add(1))..=(station, u64::MAX))?
            .map(|row| row.map(|(k, _)| k.value().1));
        let table = self.txn.open_table(VOLUNTEERS)?;
        collect_page(&table, "volunteers", ids, limit, keep, |v: &Volunteer| {
            v.id.to_string()
        })
    }
}

impl WriteTx {
    pub fn put_region(&mut self, region: &Region) -> Result<(), StoreError> {
        let mut t = self.txn.open_table(REGIONS)?;
        t.insert(region.code.as_str(), encode("regions", region)?.as_slice())?;
        Ok(())
    }

    pub fn put_station(&mut self, station: &Station) -> Result<(), StoreError> {
        let mut t = self.txn.open_table(STATIONS)?;
        t.insert(station.id, encode("stations", station)?.as_slice())?;
        Ok(())
    }

    /// Opens the person tables once, for writing many persons in this transaction.
    pub fn person_writer(&self) -> Result<PersonWriter<'_>, StoreError> {
        Ok(PersonWriter {
            persons: self.txn.open_table(PERSONS)?,
            by_community: self.txn.open_table(PERSONS_BY_COMMUNITY)?,
            by_category: self.txn.open_table(PERSONS_BY_CATEGORY)?,
            by_resident_id: self.txn.open_table(PERSONS_BY_RESIDENT_ID)?,
            care: self.txn.open_table(CARE_SPANS)?,
        })
    }

    /// Opens the volunteer tables once, for writing many volunteers in this transaction.
    pub fn volunteer_writer(&self) -> Result<VolunteerWriter<'_>, StoreError> {
        Ok(VolunteerWriter {
            volunteers: self.txn.open_table(VOLUNTEERS)?,
            by_station: self.txn.open_table(VOLUNTEERS_BY_STATION)?,
            by_resident_id: self.txn.open_table(VOLUNTEERS_BY_RESIDENT_ID)?,
            roles: self.txn.open_table(ROLE_HOLDERS)?,
        })
    }
}

/// A resident ID already registered to another record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Duplicate {
    pub existing_id: u64,
}

/// Writes persons and keeps their index tables in step.
pub struct PersonWriter<'t> {
    persons: redb::Table<'t, u64, &'static [u8]>,
    by_community: redb::Table<'t, (&'static str, u64), ()>,
    by_category: redb::Table<'t, (&'static str, u64), ()>,
    by_resident_id: redb::Table<'t, &'static str, u64>,
    care: redb::Table<'t, (&'static str, &'static str, u64), &'static [u8]>,
}

impl PersonWriter<'_> {
    /// Stores `person` (new, or replacing the stored record with the same id). Refuses a
    /// resident ID that belongs to another person.
    pub fn put(&mut self, person: &Person) -> Result<Result<(), Duplicate>, StoreError> {
        if let Some(existing) = self.by_resident_id.get(person.resident_id.as_str())? {
            let existing_id = existing.value();
            if existing_id != person.id {
                return Ok(Err(Duplicate { existing_id }));
            }
        }
        let old: Option<Person> = self
            .persons
            .get(person.id)?
            .map(|v| decode("persons", person.id, v.value()))
            .transpose()?;
        if let Some(old) = &old {
            self.by_community.remove((old.community.as_str(), old.id))?;
            for c in &old.categories {
                self.by_category.remove((c.as_str(), old.id))?;
            }
            self.by_resident_id.remove(old.resident_id.as_str())?;
        }
        self.persons
            .insert(person.id, encode("persons", person)?.as_slice())?;
        self.by_community
            .insert((person.community.as_str(), person.id), ())?;
        for c in &person.categories {
            self.by_category.insert((c.as_str(), person.id), ())?;
        }
        self.by_resident_id
            .insert(person.resident_id.as_str(), person.id)?;
        super::records::track_care(&mut self.care, old.as_ref(), person)?;
        Ok(Ok(()))
    }
}

/// Writes volunteers and keeps their index tables in step.
pub struct VolunteerWriter<'t> {
    volunteers: redb::Table<'t, u64, &'static [u8]>,
    by_station: redb::Table<'t, (u64, u64), ()>,
    by_resident_id: redb::Table<'t, &'static str, u64>,
    roles: redb::Table<'t, (&'static str, &'static str, u64), ()>,
}

impl VolunteerWriter<'_> {
    pub fn put(&mut self, v: &Volunteer) -> Result<Result<(), Duplicate>, StoreError> {
        if let Some(existing) = self.by_resident_id.get(v.resident_id.as_str())? {
            let existing_id = existing.value();
            if existing_id != v.id {
                return Ok(Err(Duplicate { existing_id }));
            }
        }
        let old: Option<Volunteer> = self
            .volunteers
            .get(v.id)?
            .map(|b| decode("volunteers", v.id, b.value()))
            .transpose()?;
        if let Some(old) = &old {
            self.by_station.remove((old.station, old.id))?;
            self.by_resident_id.remove(old.resident_id.as_str())?;
        }
        self.volunteers
            .insert(v.id, encode("volunteers", v)?.as_slice())?;
        self.by_station.insert((v.station, v.id), ())?;
        self.by_resident_id.insert(v.resident_id.as_str(), v.id)?;
        super::records::track_roles(&mut self.roles, old.as_ref(), v)?;
        Ok(Ok(()))
    }
}
