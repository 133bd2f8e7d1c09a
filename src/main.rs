//! The `vecdb` binary: parse flags and configuration, set up logging, bind, serve.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};

use vecdb::config::{Config, LogFormat};

/// A vector database speaking Qdrant's REST dialect (--port) and gRPC API (--grpc-port).
#[derive(Parser, Debug)]
#[command(name = "vecdb", version, about)]
struct Cli {
    /// TOML file layered over the embedded defaults (then VECDB__SECTION__KEY variables win).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// Listen address (overrides service.host).
    #[arg(long, global = true)]
    host: Option<String>,
    /// Listen port; 0 picks a free one (overrides service.port).
    #[arg(long, global = true)]
    port: Option<u16>,
    /// gRPC port; 0 picks a free one (overrides service.grpc_port).
    #[arg(long, global = true)]
    grpc_port: Option<u16>,
    /// Data directory (overrides storage.data_dir).
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    /// Internal port for cluster peers; setting it turns cluster mode on (overrides
    /// cluster.p2p_port).
    #[arg(long, global = true)]
    p2p_port: Option<u16>,
    /// `http://HOST:P2P_PORT` of a cluster member to join on first start (overrides
    /// cluster.bootstrap).
    #[arg(long, global = true)]
    bootstrap: Option<String>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Serve the HTTP API (the default).
    Serve,
    /// Print the effective configuration as TOML-like JSON and exit.
    Config,
    /// Print the OpenAPI document and exit.
    Openapi,
    /// Build the HNSW index in-process on a dataset and sweep ef: recall@10, QPS, build time, memory.
    Bench(vecdb::bench::inproc::Args),
    /// Load a dataset into a running server and measure recall@10, QPS and latency of /points/query.
    BenchHttp(vecdb::bench::http::Args),
    /// Filtered search at 50%, 10%, 1% and 0.1% selectivity: plans, recall@10 and QPS.
    BenchFilter(vecdb::bench::filtered::Args),
    /// Hundreds of keep-alive connections mixing searches and upserts against a running server:
    /// statuses, latency of admitted requests, RSS, and throughput before and after.
    BenchOverload(vecdb::bench::overload::Args),
    /// Exact sparse search over BM25 weights of the dataset's texts: the pruned inverted index
    /// against a brute-force scan (build time, memory per point, QPS).
    BenchSparse(vecdb::bench::sparse::Args),
    /// Hybrid retrieval through a running server: dense, sparse (BM25) and the two fused with
    /// RRF, with the same queries (QPS, p50/p99, recall@10 against the dense truth).
    BenchHybrid(vecdb::bench::hybrid::Args),
}

fn main() -> anyhow::Result<()> {
    vecdb::memory::tune_allocator();
    let cli = Cli::parse();
    let mut config = Config::load(cli.config.as_deref()).context("loading configuration")?;
    if let Some(host) = cli.host {
        config.service.host = host;
    }
    if let Some(port) = cli.port {
        config.service.port = port;
    }
    if let Some(port) = cli.grpc_port {
        config.service.grpc_port = port;
    }
    if let Some(dir) = cli.data_dir {
        config.storage.data_dir = dir;
    }
    if let Some(port) = cli.p2p_port {
        config.cluster.p2p_port = Some(port);
    }
    if let Some(url) = cli.bootstrap {
        config.cluster.bootstrap = Some(url);
    }
    if config.cluster.bootstrap.is_some() && config.cluster.p2p_port.is_none() {
        anyhow::bail!(
            "--bootstrap joins a cluster, which needs --p2p-port (or cluster.p2p_port) too"
        );
    }
    match cli.command.unwrap_or(Command::Serve) {
        Command::Config => {
            println!("{}", serde_json::to_string_pretty(&config)?);
            Ok(())
        }
        Command::Openapi => {
            println!("{}", vecdb::api::docs::openapi_json());
            Ok(())
        }
        Command::Bench(args) => vecdb::bench::inproc::run(args),
        Command::BenchHttp(args) => vecdb::bench::http::run(args),
        Command::BenchFilter(args) => vecdb::bench::filtered::run(args),
        Command::BenchOverload(args) => vecdb::bench::overload::run(args),
        Command::BenchSparse(args) => vecdb::bench::sparse::run(args),
        Command::BenchHybrid(args) => vecdb::bench::hybrid::run(args),
        Command::Serve => serve(config),
    }
}

fn serve(config: Config) -> anyhow::Result<()> {
    vecdb::telemetry::logging::init(&config.log.level, config.log.format == LogFormat::Json);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("vecdb-http")
        .build()?;
    runtime.block_on(async {
        let addr = format!("{}:{}", config.service.host, config.service.port);
        let listener = tokio::net::TcpListener::bind(&addr)
            .await
            .with_context(|| format!("binding {addr}"))?;
        vecdb::run(config, listener, vecdb::shutdown_signal()).await
    })
}
