//! The event outbox: an append-only log, in sequence order, that notifications deliver from.

use redb::ReadableTable;

use super::StoreError;
use super::tables::*;
use super::tx::{ReadTx, WriteTx, decode, encode};
use crate::schedule::Event;

impl ReadTx {
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
        let mut t = self.txn.open_table(EVENTS)?;
        let seq = t.last()?.map_or(1, |(k, _)| k.value() + 1);
        event.seq = seq;
        t.insert(seq, encode("events", &event)?.as_slice())?;
        Ok(seq)
    }
}
