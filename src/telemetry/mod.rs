//! Observability: the Prometheus registry, named instrumented locks and queues, and logging setup.
//!
//! Every lock, semaphore and channel that a request can wait on goes through [`sync`], which records
//! how long each acquisition waited and whether it had to wait at all. That is the product's
//! distinctive feature: contention shows up in `/metrics` instead of in a hung or slow server.

pub mod logging;
pub mod metrics;
pub mod sync;
