//! Identities and addresses of cluster members, shared by every Raft group.

use serde::{Deserialize, Serialize};

/// A peer's id: a random non-zero number drawn once when its data directory is created and kept
/// there, so a wiped directory joins as a new peer instead of impersonating an old one.
pub type NodeId = u64;

/// Where a peer is reached: its public API (clients, forwarded requests) and its internal
/// port (Raft messages). Both are `host:port`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Peer {
    pub api: String,
    pub p2p: String,
}

impl std::fmt::Display for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "api {} p2p {}", self.api, self.p2p)
    }
}

/// Which Raft group a message or a stored record belongs to. The metadata group is 0; shard
/// groups get ids from the metadata group.
pub type GroupId = u64;

/// The metadata group's id.
pub const META_GROUP: GroupId = 0;
