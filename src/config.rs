//! Configuration: the embedded `config/default.toml` < an optional file < `VECDB__*` environment.

use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

/// The defaults compiled into the binary, so it runs with no file at all.
pub const DEFAULT_TOML: &str = include_str!("../config/default.toml");

/// The whole configuration. Section and key names are the TOML ones.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub service: ServiceConfig,
    pub storage: StorageConfig,
    pub log: LogConfig,
    pub collection_defaults: CollectionDefaults,
    pub limits: crate::limits::Limits,
    pub cluster: ClusterConfig,
}

/// `[cluster]`: cluster mode, on when `p2p_port` is set.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    /// The internal port peers talk to (Raft messages, forwarded requests); unset: one node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p2p_port: Option<u16>,
    /// `http://host:p2p_port` of any member, to join its cluster on first start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bootstrap: Option<String>,
    /// Shared by all peers and required on every internal request.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "redacted"
    )]
    pub secret: Option<String>,
    /// The host peers and clients reach this node at; unset: `service.host`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub advertise_host: Option<String>,
    pub heartbeat_ms: u64,
    pub election_timeout_ms: u64,
    /// How long a message to a peer may take before it counts as lost.
    pub rpc_timeout_ms: u64,
    /// Internal addresses to dial instead of the ones peers advertise, as
    /// `advertised=dialed` pairs separated by commas: for NAT, tunnels or proxies between peers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dial: Option<String>,
}

impl ClusterConfig {
    /// The `dial` table: advertised internal address → the address to connect to.
    pub fn dial_table(&self) -> Result<std::collections::HashMap<String, String>, String> {
        let mut table = std::collections::HashMap::new();
        for pair in self.dial.iter().flat_map(|d| d.split(',')).map(str::trim) {
            if pair.is_empty() {
                continue;
            }
            match pair.split_once('=') {
                Some((from, to)) if !from.trim().is_empty() && !to.trim().is_empty() => {
                    table.insert(from.trim().to_string(), to.trim().to_string());
                }
                _ => {
                    return Err(format!(
                        "cluster.dial: expected advertised=dialed pairs separated by commas, got `{pair}`"
                    ))
                }
            }
        }
        Ok(table)
    }

    /// The secret, if cluster mode is on; an error says how to set a missing one.
    pub fn required_secret(&self) -> Result<String, String> {
        match self.secret.as_deref() {
            Some(s) if s.len() >= 8 => Ok(s.to_string()),
            Some(_) => Err("cluster.secret must be at least 8 characters".into()),
            None => Err(
                "cluster mode needs a shared secret: set VECDB__CLUSTER__SECRET (the same on every peer)"
                    .into(),
            ),
        }
    }
}

/// `[service]`: the HTTP side.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceConfig {
    pub host: String,
    pub port: u16,
    /// The port of Qdrant's gRPC API (0 picks a free one).
    pub grpc_port: u16,
    pub max_request_size_mb: usize,
    pub request_timeout_sec: u64,
    pub max_search_concurrency: usize,
    pub search_queue_timeout_ms: u64,
    pub shutdown_grace_sec: u64,
    /// Key for full access (Qdrant's `service.api_key`); unset or empty: no authentication.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "redacted"
    )]
    pub api_key: Option<String>,
    /// Key for reads only (Qdrant's `service.read_only_api_key`).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "redacted"
    )]
    pub read_only_api_key: Option<String>,
    /// Origins browsers may call the API from (CORS); empty turns CORS off, `"*"` allows any.
    #[serde(default)]
    pub cors_origins: Vec<String>,
    /// PEM certificate chain and private key; with both set the API is served over TLS only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_cert_path: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_key_path: Option<PathBuf>,
}

/// Keys never leave the process, not even in `vecdb config`.
fn redacted<S: serde::Serializer>(_: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str("<redacted>")
}

impl ServiceConfig {
    /// The configured keys, empty ones dropped.
    pub fn keys(&self) -> (Option<&str>, Option<&str>) {
        fn set(k: &Option<String>) -> Option<&str> {
            k.as_deref().filter(|k| !k.is_empty())
        }
        (set(&self.api_key), set(&self.read_only_api_key))
    }
}

/// `[storage]`: RocksDB, durability and the writer queues.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StorageConfig {
    pub data_dir: PathBuf,
    pub sync_policy: SyncPolicy,
    pub group_commit_interval_ms: u64,
    pub writer_queue_capacity: usize,
    pub writer_queue_timeout_ms: u64,
    pub write_stall_factor: usize,
    pub min_free_disk_mb: u64,
    /// Where collection snapshots are kept; unset: `snapshots` inside `data_dir`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshots_dir: Option<PathBuf>,
}

/// When a write's WAL record is forced to stable storage.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SyncPolicy {
    /// One fsync per operation.
    EveryWrite,
    /// Operations queued within the group interval share one fsync.
    Group,
    /// No fsync: the OS page cache holds the WAL (survives a process crash, not a power loss).
    Os,
}

/// `[log]`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    pub level: String,
    pub format: LogFormat,
}

/// Log line format.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// `[collection_defaults]`: what a new collection gets when its request leaves a setting out.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CollectionDefaults {
    pub hnsw_m: usize,
    pub hnsw_ef_construct: usize,
    pub full_scan_threshold_kb: usize,
    pub indexing_threshold_kb: usize,
    pub deleted_threshold: f64,
    pub max_indexing_threads: usize,
    /// Cluster mode: shards of a new collection (default: one per peer).
    #[serde(default)]
    pub shard_number: Option<u32>,
    /// Cluster mode: replicas of each shard (default 1).
    #[serde(default)]
    pub replication_factor: Option<u32>,
}

impl Config {
    /// Layers the embedded defaults, then `file` if given, then `VECDB__SECTION__KEY` variables.
    pub fn load(file: Option<&Path>) -> Result<Config, Box<figment::Error>> {
        let mut figment = Figment::from(Toml::string(DEFAULT_TOML));
        if let Some(path) = file {
            figment = figment.merge(Toml::file_exact(path));
        }
        let config: Config = figment
            .merge(Env::prefixed("VECDB__").split("__"))
            .extract()?;
        config
            .validate()
            .map_err(|e| Box::new(figment::Error::from(e)))?;
        Ok(config)
    }

    /// The embedded defaults alone (tests and embedding).
    pub fn defaults() -> Config {
        Figment::from(Toml::string(DEFAULT_TOML))
            .extract()
            .expect("the embedded default configuration parses")
    }

    fn validate(&self) -> Result<(), String> {
        self.limits.validate()?;
        let d = &self.collection_defaults;
        if d.hnsw_m < 2 || d.hnsw_m > 128 {
            return Err(format!(
                "collection_defaults.hnsw_m must be in 2..=128, got {}",
                d.hnsw_m
            ));
        }
        if d.hnsw_ef_construct < 4 {
            return Err("collection_defaults.hnsw_ef_construct must be at least 4".into());
        }
        if !(0.0..=1.0).contains(&d.deleted_threshold) {
            return Err("collection_defaults.deleted_threshold must be within 0..=1".into());
        }
        if self.storage.writer_queue_capacity == 0 {
            return Err("storage.writer_queue_capacity must be at least 1".into());
        }
        if self.service.tls_cert_path.is_some() != self.service.tls_key_path.is_some() {
            return Err(
                "service.tls_cert_path and service.tls_key_path go together: set both or neither"
                    .into(),
            );
        }
        if let (None, Some(_)) = self.service.keys() {
            return Err(
                "service.read_only_api_key needs service.api_key too (otherwise writes would need no key at all)"
                    .into(),
            );
        }
        if let Some(bad) = self.service.cors_origins.iter().find(|o| {
            *o != "*" && !(o.starts_with("http://") || o.starts_with("https://"))
                || o.contains(['\r', '\n'])
        }) {
            return Err(format!(
                "service.cors_origins: `{bad}` is neither \"*\" nor an origin like \"https://app.example.com\""
            ));
        }
        if self.service.max_request_size_mb == 0 {
            return Err("service.max_request_size_mb must be at least 1".into());
        }
        Ok(())
    }

    /// Searches allowed at once: the configured number, or twice the cores when 0.
    pub fn search_concurrency(&self) -> usize {
        match self.service.max_search_concurrency {
            0 => 2 * std::thread::available_parallelism().map_or(2, |n| n.get()),
            n => n,
        }
    }
}

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment's Jail closures return its error type as is
mod tests {
    use super::*;

    #[test]
    fn embedded_defaults_parse() {
        let c = Config::defaults();
        assert_eq!(c.service.port, 6333);
        assert_eq!(c.storage.sync_policy, SyncPolicy::Group);
    }

    #[test]
    fn file_and_environment_override_defaults() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("custom.toml", "[service]\nport = 7000\nhost = \"0.0.0.0\"")?;
            jail.set_env("VECDB__SERVICE__PORT", "7100");
            jail.set_env("VECDB__STORAGE__SYNC_POLICY", "every_write");
            let c = Config::load(Some(Path::new("custom.toml"))).map_err(|e| *e)?;
            assert_eq!(c.service.host, "0.0.0.0");
            assert_eq!(c.service.port, 7100);
            assert_eq!(c.storage.sync_policy, SyncPolicy::EveryWrite);
            Ok(())
        });
    }

    #[test]
    fn api_keys_come_from_the_environment_and_are_never_printed() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("VECDB__SERVICE__API_KEY", "s3cret-full");
            jail.set_env("VECDB__SERVICE__READ_ONLY_API_KEY", "s3cret-read");
            let c = Config::load(None).map_err(|e| *e)?;
            assert_eq!(c.service.keys(), (Some("s3cret-full"), Some("s3cret-read")));
            let printed = serde_json::to_string(&c).unwrap();
            assert!(!printed.contains("s3cret"), "{printed}");
            jail.set_env("VECDB__SERVICE__API_KEY", "");
            let err = Config::load(None).unwrap_err();
            assert!(err.to_string().contains("read_only_api_key"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn unknown_keys_are_rejected() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("bad.toml", "[service]\nprot = 1")?;
            let err = Config::load(Some(Path::new("bad.toml"))).unwrap_err();
            assert!(err.to_string().contains("prot"), "{err}");
            Ok(())
        });
    }
}
