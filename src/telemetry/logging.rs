//! Structured logs through `tracing`, as text or JSON lines, to stderr.

use tracing_subscriber::{fmt, EnvFilter};

/// Installs the global subscriber. `RUST_LOG` wins over the configured level when set.
pub fn init(level: &str, json: bool) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    // openraft narrates every election and replication step at info and warns twice a second
    // per unreachable peer; its errors are what an operator needs, unless asked for more.
    let filter = match level.contains("openraft") {
        true => filter,
        false => filter.add_directive("openraft=error".parse().expect("a valid directive")),
    };
    let builder = fmt().with_env_filter(filter).with_writer(std::io::stderr);
    // A second init (tests starting several servers in one process) is harmless: keep the first.
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}
