//! The event outbox: an append-only log, in sequence order, that notifications deliver from.

use redb::ReadableTable;

use super::StoreError;
use super::tables::*;
use super::tx::{WriteTx, decode, encode, reads};
use crate::schedule::Event;

reads! {
    /// Up to `limit` events after sequence number `after` that `keep` accepts, reading at most
    /// `max_scan` events; with the sequence number of the last event read (`after` when none
    /// was), so a caller who sees few of the events still moves on.
    pub fn events_visible(
        &self,
        after: u64,
        limit: usize,
        max_scan: usize,
        mut keep: impl FnMut(&Event) -> bool,
    ) -> Result<(Vec<Event>, u64), StoreError> {
        let t = self.txn.open_table(EVENTS)?;
        let mut out = Vec::new();
        let mut last = after;
        for row in t.range(after.saturating_add(1)..)?.take(max_scan) {
            let (k, v) = row?;
            let e: Event = decode("events", k.value(), v.value())?;
            last = k.value();
            if keep(&e) {
                out.push(e);
                if out.len() == limit {
                    break;
                }
            }
        }
        Ok((out, last))
    }
}

impl WriteTx {
    /// Appends an event to the outbox and returns its sequence number.
    pub fn push_event(&mut self, mut event: Event) -> Result<u64, StoreError> {
        // Sequence numbers never repeat, even after pruning empties the table: a counter keeps
        // the next one (and the table's last one counts, for files from before the counter).
        let seq = {
            let t = self.txn.open_table(EVENTS)?;
            let after_last = t.last()?.map_or(1, |(k, _)| k.value() + 1);
            after_last.max(self.meta("next_id:event")?.unwrap_or(1))
        };
        self.set_meta("next_id:event", seq + 1)?;
        let mut t = self.txn.open_table(EVENTS)?;
        event.seq = seq;
        t.insert(seq, encode("events", &event)?.as_slice())?;
        Ok(seq)
    }

    /// Removes events up to sequence `through` that happened before `before` (delivered and
    /// past their retention), at most `limit`; returns how many.
    pub fn prune_events(
        &mut self,
        through: u64,
        before: chrono::DateTime<chrono::Utc>,
        limit: usize,
    ) -> Result<usize, StoreError> {
        let mut t = self.txn.open_table(EVENTS)?;
        let mut gone = Vec::new();
        for row in t.range(..=through)? {
            let (k, v) = row?;
            let e: Event = decode("events", k.value(), v.value())?;
            if e.at >= before || gone.len() == limit {
                break;
            }
            gone.push(k.value());
        }
        for seq in &gone {
            t.remove(*seq)?;
        }
        Ok(gone.len())
    }
}
