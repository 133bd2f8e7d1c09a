//! Answers handed over in process. While a gRPC call is served (`crate::grpc`), a handler's
//! success is passed to the caller as the value it is, in the response's extensions, instead
//! of being serialised to JSON text that the caller would parse straight back.

use std::any::{Any, TypeId};
use std::future::Future;
use std::sync::{Arc, Mutex};

use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::Value;

tokio::task_local! {
    /// Whether the request being served answers an in-process caller.
    static IN_PROCESS: bool;
}

/// Runs `request` (a request through the router) with successes handed over as values.
pub async fn serve<F: Future>(request: F) -> F::Output {
    IN_PROCESS.scope(true, request).await
}

/// Runs `request` with successes answered as JSON, inside an in-process call too: the shard
/// reads a cluster node sends itself while serving one are read as JSON and merged.
pub async fn serve_as_json<F: Future>(request: F) -> F::Output {
    IN_PROCESS.scope(false, request).await
}

/// Whether the current request is served for an in-process caller.
pub fn active() -> bool {
    IN_PROCESS.try_with(|on| *on).unwrap_or(false)
}

/// A result of some type, which can still become JSON.
pub trait Erased: Send {
    fn json(&self) -> serde_json::Result<Value>;
    fn any(self: Box<Self>) -> Box<dyn Any + Send>;
    fn held_type(&self) -> TypeId;
}

impl<T: Serialize + Send + 'static> Erased for T {
    fn json(&self) -> serde_json::Result<Value> {
        serde_json::to_value(self)
    }

    fn any(self: Box<Self>) -> Box<dyn Any + Send> {
        self
    }

    fn held_type(&self) -> TypeId {
        TypeId::of::<T>()
    }
}

/// A handler's result, in a response's extensions (which must be `Clone`: the result is
/// taken out once).
#[derive(Clone)]
pub struct Handed(Arc<Mutex<Option<Box<dyn Erased>>>>);

/// A 200 response carrying `result` itself.
pub fn response<T: Serialize + Send + 'static>(result: T) -> Response {
    let mut response = axum::http::StatusCode::OK.into_response();
    let handed: Box<dyn Erased> = Box::new(result);
    let handed = Handed(Arc::new(Mutex::new(Some(handed))));
    response.extensions_mut().insert(handed);
    response
}

impl Handed {
    /// The result, once.
    pub fn take(&self) -> Option<Reply> {
        let mut slot = self.0.lock().unwrap_or_else(|e| e.into_inner());
        slot.take().map(Reply::Held)
    }
}

/// What a request answered: a handler's result as it is, or JSON.
pub enum Reply {
    Held(Box<dyn Erased>),
    Json(Value),
}

impl Reply {
    /// The result as `T` when it is one; otherwise the reply back.
    pub fn downcast<T: 'static>(self) -> Result<T, Reply> {
        match self {
            // A failed downcast cannot give the erased value back: the type is checked first.
            Reply::Held(held) if held.held_type() == TypeId::of::<T>() => {
                match held.any().downcast::<T>() {
                    Ok(result) => Ok(*result),
                    Err(_) => Err(Reply::Json(Value::Null)),
                }
            }
            json => Err(json),
        }
    }

    /// The result as JSON, as the REST API would have answered it.
    pub fn into_json(self) -> serde_json::Result<Value> {
        match self {
            Reply::Held(held) => held.json(),
            Reply::Json(value) => Ok(value),
        }
    }
}
