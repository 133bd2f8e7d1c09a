//! Applying what a replication log decided (cluster mode): every replica of a shard applies
//! the same entries in log order, so each must reach the same state from the same entries.
//!
//! Differences from a client's update on a single node:
//! - the LSN of each operation is its entry's log index, not the writer's next number;
//! - an entry whose operations do not apply (a point to update is missing) changes nothing
//!   and answers its error, identically on every replica; the others of the call still apply;
//! - the replication group's mark (last applied log id, membership) commits in the same
//!   RocksDB batch as the points, so after a crash the two agree and the log re-applies the
//!   entries after it.

use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::ops::Operation;
use super::state::Pending;
use super::writer::{upsert_len, RaftMark, Writer, WriterMsg};
use super::{Collection, CollectionError};

/// Per entry, whether its operations applied; or the commit failed and nothing applied.
pub type Applied = Result<Vec<Result<(), CollectionError>>, CollectionError>;

impl Writer {
    pub(super) fn replicate(
        &mut self,
        entries: Vec<(u64, Vec<Operation>)>,
        mark: &RaftMark,
    ) -> Applied {
        let started = Instant::now();
        let last = entries.last().map_or(self.state.lsn, |(lsn, _)| *lsn);
        let mut pending = Pending::default();
        let mut outcomes = Vec::with_capacity(entries.len());
        let (mut op_count, mut upserted) = (0, 0);
        for (lsn, ops) in &entries {
            let mut local = Pending::default();
            let applied = ops.iter().try_for_each(|op| {
                local.extend(self.state.resolve(op, *lsn, &[&local, &pending])?);
                Ok(())
            });
            if applied.is_ok() {
                op_count += ops.len() as u64;
                upserted += ops.iter().map(upsert_len).sum::<u64>();
                pending.extend(local);
            }
            outcomes.push(applied);
        }
        if let Err(e) = self.commit(&pending.changes, last, Some(mark)) {
            tracing::error!(collection = %self.name, error = %e, "replicated commit failed; nothing applied");
            return Err(e.into());
        }
        self.apply_committed(pending.changes, last, op_count, upserted, started);
        Ok(outcomes)
    }
}

impl Collection {
    /// Applies replicated `entries` (log index, operations) with `mark`, waiting as long as it
    /// takes: a replication log cannot skip an entry, so back-pressure here slows the group
    /// instead of failing it.
    pub async fn replicate(&self, entries: Vec<(u64, Vec<Operation>)>, mark: RaftMark) -> Applied {
        let (reply, rx) = oneshot::channel();
        let msg = WriterMsg::Replicate {
            entries,
            mark,
            reply,
        };
        self.queue
            .send(msg, Duration::from_secs(86_400))
            .await
            .map_err(|_| self.closed())?;
        rx.await.map_err(|_| self.closed())?
    }
}
