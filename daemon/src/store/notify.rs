//! Notification endpoints and messages, with the index of pending messages by lane and time.

use redb::{ReadableTable, ReadableTableMetadata};

use super::StoreError;
use super::tables::*;
use super::tx::{Page, WriteTx, decode, encode, reads};
use crate::notify::model::{Endpoint, Message, MessageState};

/// A pending message's place in the queue.
fn due_key(m: &Message) -> Option<(u8, i64, u64)> {
    (m.state == MessageState::Pending).then(|| {
        (
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

    /// Pending messages due by `now_ms` as (message, endpoint), urgent ones first, then by due
    /// time, that `take` accepts (it sees the endpoint, so a full endpoint's messages cost no
    /// read); stops when `take` says so.
    pub fn due_messages(
        &self,
        now_ms: i64,
        mut take: impl FnMut(u64, u64) -> std::ops::ControlFlow<(), bool>,
    ) -> Result<Vec<Message>, StoreError> {
        let t = self.txn.open_table(MESSAGES_DUE)?;
        let messages = self.txn.open_table(MESSAGES)?;
        let mut out = Vec::new();
        for lane in 0..=1u8 {
            for row in t.range((lane, i64::MIN, 0)..=(lane, now_ms, u64::MAX))? {
                let (k, v) = row?;
                let id = k.value().2;
                match take(id, v.value()) {
                    std::ops::ControlFlow::Break(()) => return Ok(out),
                    std::ops::ControlFlow::Continue(false) => {}
                    std::ops::ControlFlow::Continue(true) => {
                        if let Some(m) = messages.get(id)? {
                            out.push(decode("messages", id, m.value())?);
                        }
                    }
                }
            }
        }
        Ok(out)
    }

    /// How many messages are pending, and the creation time of the oldest (Unix ms).
    pub fn pending_messages(&self) -> Result<(u64, Option<i64>), StoreError> {
        let t = self.txn.open_table(MESSAGES_DUE)?;
        let count = t.len()?;
        let messages = self.txn.open_table(MESSAGES)?;
        // The oldest pending message has the smallest id (ids grow with time).
        let mut oldest: Option<u64> = None;
        for row in t.iter()? {
            let id = row?.0.value().2;
            oldest = Some(oldest.map_or(id, |o| o.min(id)));
        }
        let at = match oldest {
            Some(id) => messages
                .get(id)?
                .map(|v| decode::<Message>("messages", id, v.value()))
                .transpose()?
                .map(|m| m.created_at.timestamp_millis()),
            None => None,
        };
        Ok((count, at))
    }

    /// The earliest time a pending message is due (Unix ms), in either lane.
    pub fn next_due(&self) -> Result<Option<i64>, StoreError> {
        let t = self.txn.open_table(MESSAGES_DUE)?;
        let mut best: Option<i64> = None;
        for lane in 0..=1u8 {
            if let Some(row) = t.range((lane, i64::MIN, 0)..=(lane, i64::MAX, u64::MAX))?.next() {
                let at = row?.0.value().1;
                best = Some(best.map_or(at, |b| b.min(at)));
            }
        }
        Ok(best)
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
            due.insert(k, m.endpoint)?;
        }
        if old.is_none() {
            self.txn
                .open_table(MESSAGES_BY_ENDPOINT)?
                .insert((m.endpoint, m.id), ())?;
        }
        Ok(())
    }

    /// Drops the bodies of messages delivered before `before` (the log stays); returns how many.
    pub fn prune_message_bodies(
        &mut self,
        before: chrono::DateTime<chrono::Utc>,
        limit: usize,
    ) -> Result<usize, StoreError> {
        let mut t = self.txn.open_table(MESSAGES)?;
        let mut pruned = Vec::new();
        for row in t.iter()? {
            let (k, v) = row?;
            let m: Message = decode("messages", k.value(), v.value())?;
            if m.state == MessageState::Delivered
                && m.body.is_some()
                && m.delivered_at.is_some_and(|d| d < before)
            {
                pruned.push(m);
                if pruned.len() == limit {
                    break;
                }
            }
        }
        for mut m in pruned.iter().cloned() {
            m.body = None;
            t.insert(m.id, encode("messages", &m)?.as_slice())?;
        }
        Ok(pruned.len())
    }
}
