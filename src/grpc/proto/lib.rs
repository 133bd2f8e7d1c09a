//! Qdrant's gRPC API (package `qdrant`), generated at build time from the `.proto` files beside
//! this file: the messages, and the server side of each service.
#![allow(clippy::all, clippy::pedantic, deprecated, missing_docs)]

tonic::include_proto!("qdrant");
