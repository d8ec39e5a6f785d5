//! Notification endpoints and messages, with the index of pending messages by lane and time.

use redb::{ReadableTable, ReadableTableMetadata};

use super::StoreError;
use super::tables::*;
use super::tx::{Page, WriteTx, decode, encode, reads};
use crate::notify::model::{Endpoint, Message, MessageState};

/// A pending message's place in its endpoint's queue.
fn due_key(m: &Message) -> Option<(u64, u8, i64, u64)> {
    (m.state == MessageState::Pending).then(|| {
        (
            m.endpoint,
            u8::from(!m.urgent),
            m.next_at.map_or(0, |t| t.timestamp_millis()),
            m.id,
        )
    })
}

reads! {
    pub fn endpoint(&self, id: u64) -> Result<Option<Endpoint>, StoreError> {
        let t = self.txn.open_table(ENDPOINTS)?;
        t.get(id)?.map(|v| decode("endpoints", id, v.value())).transpose()
    }

    /// Every endpoint, in id order (a county has dozens).
    pub fn endpoints(&self) -> Result<Vec<Endpoint>, StoreError> {
        let t = self.txn.open_table(ENDPOINTS)?;
        let mut out = Vec::new();
        for row in t.iter()? {
            let (k, v) = row?;
            out.push(decode("endpoints", k.value(), v.value())?);
        }
        Ok(out)
    }

    pub fn message(&self, id: u64) -> Result<Option<Message>, StoreError> {
        let t = self.txn.open_table(MESSAGES)?;
        t.get(id)?.map(|v| decode("messages", id, v.value())).transpose()
    }

    /// An endpoint's messages, newest first, before id `before`, that `keep` accepts.
    pub fn messages_of_endpoint(
        &self,
        endpoint: u64,
        before: u64,
        limit: usize,
        mut keep: impl FnMut(&Message) -> bool,
    ) -> Result<Page<Message>, StoreError> {
        let index = self.txn.open_table(MESSAGES_BY_ENDPOINT)?;
        let t = self.txn.open_table(MESSAGES)?;
        let mut items = Vec::new();
        for row in index.range((endpoint, 0)..(endpoint, before))?.rev() {
            let id = row?.0.value().1;
            let Some(v) = t.get(id)? else { continue };
            let m: Message = decode("messages", id, v.value())?;
            if keep(&m) {
                if items.len() == limit {
                    let next = items.last().map(|m: &Message| m.id.to_string());
                    return Ok(Page { items, next });
                }
                items.push(m);
            }
        }
        Ok(Page { items, next: None })
    }

    /// Up to `limit` of an endpoint's messages due by `now_ms`, urgent ones first, then by
    /// due time, leaving out those `skip` names (in flight).
    pub fn due_for_endpoint(
        &self,
        endpoint: u64,
        now_ms: i64,
        limit: usize,
        skip: impl Fn(u64) -> bool,
    ) -> Result<Vec<Message>, StoreError> {
        let t = self.txn.open_table(MESSAGES_DUE)?;
        let messages = self.txn.open_table(MESSAGES)?;
        let mut out = Vec::new();
        if limit == 0 {
            return Ok(out);
        }
        for lane in 0..=1u8 {
            for row in t.range((endpoint, lane, i64::MIN, 0)..=(endpoint, lane, now_ms, u64::MAX))? {
                let id = row?.0.value().3;
                if skip(id) {
                    continue;
                }
                if let Some(m) = messages.get(id)? {
                    out.push(decode("messages", id, m.value())?);
                    if out.len() == limit {
                        return Ok(out);
                    }
                }
            }
        }
        Ok(out)
    }

    /// Ids of an endpoint's pending messages (due or not).
    pub fn pending_of_endpoint(&self, endpoint: u64) -> Result<Vec<u64>, StoreError> {
        let t = self.txn.open_table(MESSAGES_DUE)?;
        let mut out = Vec::new();
        for row in t.range((endpoint, 0, i64::MIN, 0)..=(endpoint, u8::MAX, i64::MAX, u64::MAX))? {
            out.push(row?.0.value().3);
        }
        Ok(out)
    }

    /// How many messages are pending, and the creation time of the oldest (Unix ms).
    pub fn pending_messages(&self) -> Result<(u64, Option<i64>), StoreError> {
        let t = self.txn.open_table(MESSAGES_PENDING)?;
        let count = t.len()?;
        let at = match t.first()? {
            Some((k, _)) => self
                .txn
                .open_table(MESSAGES)?
                .get(k.value())?
                .map(|v| decode::<Message>("messages", k.value(), v.value()))
                .transpose()?
                .map(|m| m.created_at.timestamp_millis()),
            None => None,
        };
        Ok((count, at))
    }
}

impl WriteTx {
    pub fn put_endpoint(&mut self, e: &Endpoint) -> Result<(), StoreError> {
        self.txn
            .open_table(ENDPOINTS)?
            .insert(e.id, encode("endpoints", e)?.as_slice())?;
        Ok(())
    }

    /// Stores a message and keeps the queue of pending ones in step.
    pub fn put_message(&mut self, m: &Message) -> Result<(), StoreError> {
        let mut t = self.txn.open_table(MESSAGES)?;
        let old: Option<Message> = t
            .get(m.id)?
            .map(|v| decode("messages", m.id, v.value()))
            .transpose()?;
        t.insert(m.id, encode("messages", m)?.as_slice())?;
        let mut due = self.txn.open_table(MESSAGES_DUE)?;
        if let Some(k) = old.as_ref().and_then(due_key) {
            due.remove(k)?;
        }
        if let Some(k) = due_key(m) {
            due.insert(k, ())?;
        }
        let mut pending = self.txn.open_table(MESSAGES_PENDING)?;
        if m.state == MessageState::Pending {
            pending.insert(m.id, ())?;
        } else {
            pending.remove(m.id)?;
        }
        if old.is_none() {
            self.txn
                .open_table(MESSAGES_BY_ENDPOINT)?
                .insert((m.endpoint, m.id), ())?;
        }
        Ok(())
    }

    /// Past the retention: drops the bodies of messages delivered before `bodies_before` (their
    /// log stays), and removes messages — delivered or dead — made before `rows_before`; each
    /// part looks at most `limit` messages, oldest first. Returns (bodies dropped, rows removed).
    pub fn prune_messages(
        &mut self,
        bodies_before: chrono::DateTime<chrono::Utc>,
        rows_before: chrono::DateTime<chrono::Utc>,
        limit: usize,
    ) -> Result<(usize, usize), StoreError> {
        let mut t = self.txn.open_table(MESSAGES)?;
        // Whole rows, from the oldest: ids grow with time, so the first newer one ends it.
        let mut gone = Vec::new();
        for row in t.iter()?.take(limit) {
            let (k, v) = row?;
            let m: Message = decode("messages", k.value(), v.value())?;
            if m.created_at >= rows_before {
                break;
            }
            if m.state != MessageState::Pending {
                gone.push((m.id, m.endpoint));
            }
        }
        // Bodies, from where the last pass stopped: it stops at a message still pending (its
        // body may yet be needed) or newer than the cut.
        let from = self.meta("notify_bodies_from")?.unwrap_or(0);
        let mut changed = Vec::new();
        let mut next = from;
        for row in t.range(from..)?.take(limit) {
            let (k, v) = row?;
            let m: Message = decode("messages", k.value(), v.value())?;
            next = k.value();
            if m.created_at >= bodies_before || m.state == MessageState::Pending {
                break;
            }
            if m.body.is_some() && m.state == MessageState::Delivered {
                changed.push(m);
            }
            next = k.value() + 1;
        }
        for mut m in changed.iter().cloned() {
            m.body = None;
            t.insert(m.id, encode("messages", &m)?.as_slice())?;
        }
        let mut index = self.txn.open_table(MESSAGES_BY_ENDPOINT)?;
        for (id, endpoint) in &gone {
            t.remove(*id)?;
            index.remove((*endpoint, *id))?;
        }
        drop((t, index));
        self.set_meta("notify_bodies_from", next)?;
        Ok((changed.len(), gone.len()))
    }
}
