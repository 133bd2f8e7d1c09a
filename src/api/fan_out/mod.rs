//! Reads of a cluster collection: each shard is asked the same question (with the paging
//! adjusted so the merged page is exact) by one replica that the consistency level allows,
//! and the answers are merged into what one collection would have answered.

mod query;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use axum::extract::{FromRequest, Request};
use axum::http::Method;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};

use super::distributed::{saw, seen};
use super::error::{ApiError, OptionalJson};
use super::{ok, AppState};
use crate::cluster::merge;
use crate::cluster::meta::ClusterCollection;
use crate::cluster::node::ClusterNode;
use crate::cluster::requests::ShardRead;
use crate::cluster::ring::shard_of;
use crate::cluster::route::Consistency;
use crate::point_id::PointId;

/// A request of one cluster collection.
pub struct Target<'a> {
    pub state: &'a AppState,
    pub node: &'a ClusterNode,
    pub name: &'a str,
    pub collection: &'a ClusterCollection,
}

/// A read's question to every shard it concerns.
struct Question {
    method: Method,
    /// The path after `/collections/{name}`.
    path: String,
    level: Consistency,
    deadline: Instant,
}

impl Target<'_> {
    fn shards(&self) -> u32 {
        self.collection.shards.len() as u32
    }

    /// Answers a read route.
    pub async fn read(&self, route: &str, req: Request) -> Result<Response, ApiError> {
        let level = consistency(req.uri())?;
        let method = req.method().clone();
        let prefix = "/collections/{name}";
        let tail = route.strip_prefix(prefix).unwrap_or_default().to_string();
        let path = req.uri().path();
        // The concrete tail (a point id in place of `{id}`): the path after the name segment.
        let concrete = path
            .splitn(4, '/')
            .nth(3)
            .map_or(String::new(), |rest| format!("/{rest}"));
        let q = Question {
            method: method.clone(),
            path: concrete,
            level,
            deadline: Instant::now() + super::time_left(),
        };
        let body = match method {
            Method::GET => None,
            _ => {
                let OptionalJson(body) =
                    OptionalJson::<Option<Value>>::from_request(req, self.state).await?;
                body
            }
        };
        let body = body.unwrap_or_else(|| json!({}));
        let result = match (tail.as_str(), &method) {
            ("", &Method::GET) => self.info(&q).await?,
            (
                "/points/query"
                | "/points/query/batch"
                | "/points/search"
                | "/points/search/batch"
                | "/points/recommend"
                | "/points/recommend/batch"
                | "/points/discover"
                | "/points/discover/batch"
                | "/points/query/groups"
                | "/points/search/groups"
                | "/points/recommend/groups"
                | "/points/search/matrix/pairs"
                | "/points/search/matrix/offsets",
                _,
            ) => self.query_route(&q, &tail, body).await?,
            ("/points/scroll", _) => self.scroll(&q, body).await?,
            ("/points/count", _) => merge::count(&self.everywhere(&q, body).await?),
            ("/facet" | "/points/facet", _) => self.facet(&q, body).await?,
            ("/points", &Method::POST) => self.retrieve(&q, body).await?,
            ("/points/{id}", &Method::GET) => self.get_point(&q).await?,
            _ => {
                return Err(ApiError::BadRequest(format!(
                    "{method} {prefix}{tail} is not available for a cluster collection yet"
                )))
            }
        };
        Ok(ok(result).into_response())
    }

    /// Asks shard `shard` and returns its `result`; a shard's own error is answered as is.
    async fn ask(
        &self,
        q: &Question,
        shard: usize,
        body: Option<Value>,
    ) -> Result<Value, ApiError> {
        let placement = &self.collection.shards[shard];
        let read = ShardRead {
            method: q.method.to_string(),
            path: q.path.clone(),
            body,
            // An eventual read does not wait for what the client saw.
            min_lsn: match q.level {
                Consistency::Eventual => 0,
                _ => seen(placement.group),
            },
            strong: false,
            wait_ms: 0,
        };
        let answer = self
            .node
            .read_shard(shard, placement, read, q.level, q.deadline)
            .await
            .map_err(|e| ApiError::Unavailable(e.to_string()))?;
        if answer.status == 200 {
            saw(placement.group, answer.lsn);
            return Ok(answer.body.get("result").cloned().unwrap_or(Value::Null));
        }
        let local = crate::cluster::replicas::local_name(self.name, placement.group);
        let message = answer.body["status"]["error"]
            .as_str()
            .unwrap_or("shard replica failed")
            .replace(&local, self.name);
        Err(match answer.status {
            400 => ApiError::BadRequest(message),
            404 => ApiError::NotFound(message),
            500 => ApiError::Internal(message),
            _ => ApiError::Unavailable(format!("shard {shard}: {message}")),
        })
    }

    /// Asks every shard in parallel, each with its own body.
    async fn gather(
        &self,
        q: &Question,
        bodies: Vec<(usize, Option<Value>)>,
    ) -> Result<Vec<Value>, ApiError> {
        let asks = bodies
            .into_iter()
            .map(|(shard, body)| self.ask(q, shard, body));
        futures::future::join_all(asks).await.into_iter().collect()
    }

    /// Asks every shard the same.
    async fn everywhere(&self, q: &Question, body: Value) -> Result<Vec<Value>, ApiError> {
        let bodies = (0..self.shards() as usize)
            .map(|s| (s, Some(body.clone())))
            .collect();
        self.gather(q, bodies).await
    }

    async fn scroll(&self, q: &Question, body: Value) -> Result<Value, ApiError> {
        let limit = body["limit"].as_u64().unwrap_or(10) as usize;
        let order_by = match &body["order_by"] {
            Value::Null => None,
            Value::Object(o) => Some(o.get("direction").and_then(Value::as_str) == Some("desc")),
            _ => Some(false),
        };
        let pages = self.everywhere(q, body).await?;
        Ok(merge::scroll(pages, limit, order_by))
    }

    async fn facet(&self, q: &Question, mut body: Value) -> Result<Value, ApiError> {
        let limit = body["limit"].as_u64().unwrap_or(10) as usize;
        // Each shard counts exactly; asking for more values than shown keeps a value that is
        // frequent overall but not in one shard's top from being missed.
        let max = crate::limits::get().max_limit;
        body["limit"] = json!((limit.saturating_mul(10) + 100).min(max).max(limit));
        let answers = self.everywhere(q, body).await?;
        Ok(merge::facet(&answers, limit))
    }

    async fn retrieve(&self, q: &Question, body: Value) -> Result<Value, ApiError> {
        let Some(Value::Array(ids)) = body.get("ids").cloned() else {
            return Err(ApiError::BadRequest(
                "Format error in JSON body: missing field `ids`".into(),
            ));
        };
        let mut by_shard: BTreeMap<usize, Vec<Value>> = BTreeMap::new();
        let mut order = Vec::with_capacity(ids.len());
        for raw in ids {
            let id =
                PointId::from_json(&raw).map_err(|e| ApiError::BadRequest(format!("ids: {e}")))?;
            order.push(id);
            by_shard
                .entry(shard_of(id, self.shards()) as usize)
                .or_default()
                .push(raw);
        }
        let bodies = by_shard
            .into_iter()
            .map(|(shard, ids)| {
                let mut one = body.clone();
                one["ids"] = Value::Array(ids);
                (shard, Some(one))
            })
            .collect();
        let mut found: Vec<Value> = lists_of(self.gather(q, bodies).await?).concat();
        let rank = |p: &Value| {
            let id = PointId::from_json(&p["id"]).ok();
            order.iter().position(|o| Some(*o) == id)
        };
        found.sort_by_key(rank);
        Ok(Value::Array(found))
    }

    async fn get_point(&self, q: &Question) -> Result<Value, ApiError> {
        let raw = q.path.rsplit('/').next().unwrap_or_default();
        let id = PointId::parse_str(raw).map_err(|e| ApiError::BadRequest(format!("id: {e}")))?;
        self.ask(q, shard_of(id, self.shards()) as usize, None)
            .await
    }

    /// The collection's info: counts summed over shards, the configuration the cluster keeps.
    async fn info(&self, q: &Question) -> Result<Value, ApiError> {
        let answers = self
            .gather(q, (0..self.shards() as usize).map(|s| (s, None)).collect())
            .await?;
        let sum = |field: &str| -> u64 { answers.iter().filter_map(|a| a[field].as_u64()).sum() };
        let yellow = !self.settled().await;
        let mut schema: Map<String, Value> = Map::new();
        for answer in &answers {
            let Some(Value::Object(fields)) = answer.get("payload_schema") else {
                continue;
            };
            for (field, info) in fields {
                match schema.get_mut(field) {
                    // The same index on every shard: its point counts add up.
                    Some(entry) => {
                        let points = entry["points"].as_u64().unwrap_or(0)
                            + info["points"].as_u64().unwrap_or(0);
                        entry["points"] = json!(points);
                    }
                    None => {
                        schema.insert(field.clone(), info.clone());
                    }
                }
            }
        }
        Ok(json!({
            "status": if yellow { "yellow" } else { "green" },
            "optimizer_status": "ok",
            "indexed_vectors_count": sum("indexed_vectors_count"),
            "points_count": sum("points_count"),
            "segments_count": sum("segments_count"),
            "config": self.collection.config,
            "payload_schema": schema,
        }))
    }

    /// Whether every reachable replica of every shard runs the collection's current settings
    /// and has nothing left to optimize: green means any replica a read goes to is indexed,
    /// not only the one that answered for its shard. A replica that has not yet applied a
    /// change of the settings (a PATCH a moment ago) has not even started on it.
    async fn settled(&self) -> bool {
        let current = serde_json::to_value(&self.collection.config).unwrap_or(Value::Null);
        let probe = ShardRead::info(0, Duration::ZERO);
        let probes = self.collection.shards.iter().flat_map(|placement| {
            let (probe, current) = (&probe, &current);
            placement.replicas.iter().map(move |&replica| async move {
                // A stopped peer never answers: it is not waited for past a second.
                let left = super::time_left().min(PROBE_WAIT);
                let answer = self.node.read_at(replica, placement.group, probe, left);
                match answer.await {
                    Ok(answer) => {
                        let info = &answer.body["result"];
                        info["status"] == "green" && info["config"] == *current
                    }
                    // Unreachable: GET /collections/{name}/cluster shows it; the others serve.
                    Err(_) => true,
                }
            })
        });
        futures::future::join_all(probes)
            .await
            .into_iter()
            .all(|s| s)
    }

    /// Waits until every reachable replica of every shard has the payload indexes of
    /// `schema`; false if the request's time ran out first.
    pub async fn wait_for_schema(&self, schema: &crate::filter::index::PayloadSchema) -> bool {
        let deadline = Instant::now() + super::time_left();
        let probe = ShardRead::info(0, Duration::ZERO);
        for placement in &self.collection.shards {
            for replica in &placement.replicas {
                loop {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return false;
                    }
                    let answer = self
                        .node
                        .read_at(*replica, placement.group, &probe, left)
                        .await;
                    let Ok(answer) = answer else {
                        break; // unreachable: it builds the indexes when it is back
                    };
                    let fields = &answer.body["result"]["payload_schema"];
                    let built = fields.as_object().is_some_and(|f| {
                        f.len() == schema.len() && schema.keys().all(|k| f.contains_key(k))
                    });
                    if built {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(50).min(left)).await;
                }
            }
        }
        true
    }
}

/// How long [`Target::settled`] waits for one replica's answer.
const PROBE_WAIT: Duration = Duration::from_secs(1);

/// The `consistency` query parameter.
fn consistency(uri: &axum::http::Uri) -> Result<Consistency, ApiError> {
    #[derive(serde::Deserialize)]
    struct Params {
        consistency: Option<String>,
    }
    let raw = axum::extract::Query::<Params>::try_from_uri(uri)
        .ok()
        .and_then(|q| q.0.consistency);
    Consistency::parse(raw.as_deref()).map_err(ApiError::from)
}

fn lists_of(values: Vec<Value>) -> Vec<Vec<Value>> {
    values
        .into_iter()
        .map(|v| match v {
            Value::Array(list) => list,
            _ => Vec::new(),
        })
        .collect()
}
