//! The audit log of personal data: every read or change of a person, a volunteer, a visit
//! report, and every export — by whom (token id and scope), what, when, through which route.
//! Append-only: the store has no update or delete for it, no route writes it but these, and
//! only pruning past `[records] audit_retention_days` removes the oldest entries.

use chrono::Duration;

use super::model::{AuditAction, AuditEntry};
use super::service::Records;
use crate::service::ServiceError;

/// Who did it, as the audit log names them.
#[derive(Debug, Clone)]
pub struct Who {
    /// The token id (first 12 hex digits of its hash), or `cli`.
    pub token: String,
    pub scope: String,
}

impl Records {
    /// Appends one entry (its own transaction).
    pub fn audit(
        &self,
        who: &Who,
        action: AuditAction,
        subject: String,
        count: Option<u64>,
        route: &str,
        region: Option<String>,
    ) -> Result<u64, ServiceError> {
        let entry = AuditEntry {
            seq: 0,
            at: self.now(),
            token: who.token.clone(),
            scope: who.scope.clone(),
            action,
            subject,
            count,
            route: route.to_owned(),
            region,
        };
        Ok(self.store.write(|w| w.append_audit(entry))?)
    }

    /// Entries after `after`, oldest first, of the regions under `prefix` (`None`: all, for an
    /// administrator); with the cursor of the next page.
    pub fn audit_log(
        &self,
        prefix: Option<&str>,
        after: u64,
        limit: usize,
    ) -> Result<(Vec<AuditEntry>, Option<u64>), ServiceError> {
        let (items, last) = self.store.read(|r| {
            r.audit_entries(after, limit, 100_000, |e| match prefix {
                None => true,
                Some(p) => e.region.as_deref().is_some_and(|g| g.starts_with(p)),
            })
        })?;
        let next = if items.len() == limit {
            items.last().map(|e| e.seq)
        } else if last > after && items.len() < limit {
            // The scan stopped at its bound with more entries possibly beyond.
            let more = self
                .store
                .read(|r| r.audit_entries(last, 1, 1, |_| true))?
                .0
                .len();
            (more > 0).then_some(last)
        } else {
            None
        };
        Ok((items, next))
    }

    /// Removes entries older than the retention, in small transactions; returns how many.
    pub fn prune_audit(&self) -> Result<usize, ServiceError> {
        let before = self.now() - Duration::days(i64::from(self.config.audit_retention_days));
        let mut total = 0;
        loop {
            let n = self.store.write(|w| w.prune_audit(before, 1000))?;
            total += n;
            if n < 1000 {
                return Ok(total);
            }
        }
    }
}
