//! Collection configuration in both directions: the messages of `Create` and `Update` as the
//! REST dialect's bodies, and a collection's info as `CollectionInfo`.

use std::collections::HashMap;

use serde_json::{json, Map, Value};
use tonic::Status;

use super::common::{bad_arg, object, put, required};
use super::json;
use super::proto;
use super::results::take;

/// Copies the set fields of a message into a JSON object under their own names.
macro_rules! fields {
    ($out:expr, $msg:expr; $($field:ident),* $(,)?) => {
        $( put(&mut $out, stringify!($field), $msg.$field); )*
    };
}

fn distance(d: i32) -> Result<&'static str, Status> {
    match proto::Distance::try_from(d) {
        Ok(proto::Distance::Cosine) => Ok("Cosine"),
        Ok(proto::Distance::Euclid) => Ok("Euclid"),
        Ok(proto::Distance::Dot) => Ok("Dot"),
        Ok(proto::Distance::Manhattan) => Ok("Manhattan"),
        _ => Err(bad_arg!("distance: unknown distance {d}")),
    }
}

fn distance_out(d: &Value) -> i32 {
    let d = match d.as_str() {
        Some("Cosine") => proto::Distance::Cosine,
        Some("Euclid") => proto::Distance::Euclid,
        Some("Dot") => proto::Distance::Dot,
        Some("Manhattan") => proto::Distance::Manhattan,
        _ => proto::Distance::UnknownDistance,
    };
    d as i32
}

fn datatype(d: i32) -> Result<Option<&'static str>, Status> {
    use proto::Datatype as D;
    match D::try_from(d) {
        Ok(D::Default) => Ok(None),
        Ok(D::Float32) => Ok(Some("float32")),
        Ok(D::Float16) => Ok(Some("float16")),
        Ok(D::Uint8) => Ok(Some("uint8")),
        _ => Err(bad_arg!(
            "datatype: {d} is not one vecdb stores (float32, float16, uint8)"
        )),
    }
}

fn datatype_out(d: &Value) -> Option<i32> {
    let d = match d.as_str()? {
        "float32" => proto::Datatype::Float32,
        "float16" => proto::Datatype::Float16,
        "uint8" => proto::Datatype::Uint8,
        _ => return None,
    };
    Some(d as i32)
}

fn hnsw(h: proto::HnswConfigDiff) -> Value {
    let mut out = Map::new();
    #[allow(deprecated)]
    {
        fields!(out, h; m, ef_construct, full_scan_threshold, max_indexing_threads, on_disk, payload_m, inline_storage);
    }
    Value::Object(out)
}

fn hnsw_out(h: &Value) -> proto::HnswConfigDiff {
    #[allow(deprecated)]
    proto::HnswConfigDiff {
        m: h["m"].as_u64(),
        ef_construct: h["ef_construct"].as_u64(),
        full_scan_threshold: h["full_scan_threshold"].as_u64(),
        max_indexing_threads: h["max_indexing_threads"].as_u64(),
        on_disk: h["on_disk"].as_bool(),
        payload_m: h["payload_m"].as_u64(),
        ..Default::default()
    }
}

fn optimizers(o: proto::OptimizersConfigDiff) -> Value {
    use proto::max_optimization_threads::Variant;
    let mut out = Map::new();
    fields!(out, o; deleted_threshold, vacuum_min_vector_number, default_segment_number,
        max_segment_size, memmap_threshold, indexing_threshold, flush_interval_sec);
    #[allow(deprecated)]
    let threads = match o.max_optimization_threads.and_then(|t| t.variant) {
        Some(Variant::Value(n)) => Some(n),
        Some(Variant::Setting(_)) => None,
        None => o.deprecated_max_optimization_threads,
    };
    put(&mut out, "max_optimization_threads", threads);
    Value::Object(out)
}

fn optimizers_out(o: &Value) -> proto::OptimizersConfigDiff {
    proto::OptimizersConfigDiff {
        deleted_threshold: o["deleted_threshold"].as_f64(),
        vacuum_min_vector_number: o["vacuum_min_vector_number"].as_u64(),
        default_segment_number: o["default_segment_number"].as_u64(),
        max_segment_size: o["max_segment_size"].as_u64(),
        memmap_threshold: o["memmap_threshold"].as_u64(),
        indexing_threshold: o["indexing_threshold"].as_u64(),
        flush_interval_sec: o["flush_interval_sec"].as_u64(),
        max_optimization_threads: o["max_optimization_threads"].as_u64().map(|n| {
            proto::MaxOptimizationThreads {
                variant: Some(proto::max_optimization_threads::Variant::Value(n)),
            }
        }),
        ..Default::default()
    }
}

fn wal(w: proto::WalConfigDiff) -> Value {
    let mut out = Map::new();
    fields!(out, w; wal_capacity_mb, wal_segments_ahead, wal_retain_closed);
    Value::Object(out)
}

fn wal_out(w: &Value) -> proto::WalConfigDiff {
    proto::WalConfigDiff {
        wal_capacity_mb: w["wal_capacity_mb"].as_u64(),
        wal_segments_ahead: w["wal_segments_ahead"].as_u64(),
        wal_retain_closed: w["wal_retain_closed"].as_u64(),
    }
}

#[allow(deprecated)]
fn scalar(s: proto::ScalarQuantization) -> Value {
    let mut out = Map::new();
    out.insert("type".into(), json!("int8"));
    fields!(out, s; quantile, always_ram);
    object!({ "scalar": out })
}

#[allow(deprecated)]
fn product(p: proto::ProductQuantization) -> Result<Value, Status> {
    let compression = match proto::CompressionRatio::try_from(p.compression) {
        Ok(ratio) => ratio.as_str_name(),
        Err(_) => {
            return Err(bad_arg!(
                "product.compression: unknown ratio {}",
                p.compression
            ))
        }
    };
    let mut out = Map::new();
    out.insert("compression".into(), json!(compression));
    fields!(out, p; always_ram);
    Ok(object!({ "product": out }))
}

#[allow(deprecated)]
fn binary(b: proto::BinaryQuantization) -> Result<Value, Status> {
    use proto::binary_quantization_query_encoding::{Setting, Variant};
    use proto::BinaryQuantizationEncoding as E;
    let mut out = Map::new();
    fields!(out, b; always_ram);
    if let Some(e) = b.encoding {
        let e = match E::try_from(e) {
            Ok(E::OneBit) => "one_bit",
            Ok(E::TwoBits) => "two_bits",
            Ok(E::OneAndHalfBits) => "one_and_half_bits",
            Err(_) => return Err(bad_arg!("binary.encoding: unknown encoding {e}")),
        };
        out.insert("encoding".into(), json!(e));
    }
    if let Some(Variant::Setting(s)) = b.query_encoding.and_then(|q| q.variant) {
        let s = match Setting::try_from(s) {
            Ok(Setting::Default) => "default",
            Ok(Setting::Binary) => "binary",
            Ok(Setting::Scalar4Bits) => "scalar4bits",
            Ok(Setting::Scalar8Bits) => "scalar8bits",
            Err(_) => return Err(bad_arg!("binary.query_encoding: unknown setting {s}")),
        };
        out.insert("query_encoding".into(), json!(s));
    }
    Ok(object!({ "binary": out }))
}

fn quantization(q: proto::QuantizationConfig) -> Result<Value, Status> {
    use proto::quantization_config::Quantization as Q;
    match required(q.quantization, "quantization_config")? {
        Q::Scalar(s) => Ok(scalar(s)),
        Q::Product(p) => product(p),
        Q::Binary(b) => binary(b),
        Q::Turboquant(_) => Err(bad_arg!("quantization_config: turboquant is not supported")),
    }
}

fn quantization_diff(q: proto::QuantizationConfigDiff) -> Result<Value, Status> {
    use proto::quantization_config_diff::Quantization as Q;
    match required(q.quantization, "quantization_config")? {
        Q::Scalar(s) => Ok(scalar(s)),
        Q::Product(p) => product(p),
        Q::Binary(b) => binary(b),
        Q::Disabled(_) => Ok(json!("Disabled")),
        Q::Turboquant(_) => Err(bad_arg!("quantization_config: turboquant is not supported")),
    }
}

#[allow(deprecated)]
fn quantization_out(q: &Value) -> Option<proto::QuantizationConfig> {
    use proto::quantization_config::Quantization as Q;
    let q = if let Some(s) = q.get("scalar") {
        Q::Scalar(proto::ScalarQuantization {
            r#type: proto::QuantizationType::Int8 as i32,
            quantile: s["quantile"].as_f64().map(|x| x as f32),
            always_ram: s["always_ram"].as_bool(),
            memory: None,
        })
    } else if let Some(p) = q.get("product") {
        let ratio = p["compression"].as_str().unwrap_or("x4");
        Q::Product(proto::ProductQuantization {
            compression: proto::CompressionRatio::from_str_name(ratio).unwrap_or_default() as i32,
            always_ram: p["always_ram"].as_bool(),
            memory: None,
        })
    } else if let Some(b) = q.get("binary") {
        Q::Binary(proto::BinaryQuantization {
            always_ram: b["always_ram"].as_bool(),
            ..Default::default()
        })
    } else {
        return None;
    };
    Some(proto::QuantizationConfig {
        quantization: Some(q),
    })
}

#[allow(deprecated)]
fn vector_params(p: proto::VectorParams) -> Result<Value, Status> {
    let mut out = Map::new();
    out.insert("size".into(), json!(p.size));
    out.insert("distance".into(), json!(distance(p.distance)?));
    put(&mut out, "hnsw_config", p.hnsw_config.map(hnsw));
    put(
        &mut out,
        "quantization_config",
        p.quantization_config.map(quantization).transpose()?,
    );
    put(&mut out, "on_disk", p.on_disk);
    put(
        &mut out,
        "datatype",
        p.datatype.map(datatype).transpose()?.flatten(),
    );
    if p.multivector_config.is_some() {
        out.insert(
            "multivector_config".into(),
            object!({"comparator": "max_sim"}),
        );
    }
    Ok(Value::Object(out))
}

#[allow(deprecated)]
fn vector_params_out(p: &Value) -> proto::VectorParams {
    proto::VectorParams {
        size: p["size"].as_u64().unwrap_or_default(),
        distance: distance_out(&p["distance"]),
        hnsw_config: p.get("hnsw_config").filter(|h| h.is_object()).map(hnsw_out),
        quantization_config: p.get("quantization_config").and_then(quantization_out),
        on_disk: p["on_disk"].as_bool(),
        datatype: datatype_out(&p["datatype"]),
        multivector_config: p
            .get("multivector_config")
            .filter(|m| m.is_object())
            .map(|_| proto::MultiVectorConfig::default()),
        memory: None,
    }
}

fn vectors_config(c: proto::VectorsConfig) -> Result<Value, Status> {
    use proto::vectors_config::Config;
    match required(c.config, "vectors_config")? {
        Config::Params(p) => vector_params(p),
        Config::ParamsMap(map) => map
            .map
            .into_iter()
            .map(|(name, p)| Ok((name, vector_params(p)?)))
            .collect::<Result<Map<_, _>, Status>>()
            .map(Value::Object),
    }
}

fn vectors_config_out(v: &Value) -> proto::VectorsConfig {
    use proto::vectors_config::Config;
    let config = match v.get("size") {
        Some(_) => Config::Params(vector_params_out(v)),
        None => Config::ParamsMap(proto::VectorParamsMap {
            map: v
                .as_object()
                .map(|named| {
                    let params = named.iter().map(|(k, p)| (k.clone(), vector_params_out(p)));
                    params.collect()
                })
                .unwrap_or_default(),
        }),
    };
    proto::VectorsConfig {
        config: Some(config),
    }
}

#[allow(deprecated)]
fn sparse_vectors(s: proto::SparseVectorConfig) -> Result<Value, Status> {
    let mut out = Map::new();
    for (name, params) in s.map {
        let mut one = Map::new();
        if let Some(index) = params.index {
            let mut i = Map::new();
            fields!(i, index; full_scan_threshold, on_disk);
            put(
                &mut i,
                "datatype",
                index.datatype.map(datatype).transpose()?.flatten(),
            );
            one.insert("index".into(), Value::Object(i));
        }
        if let Some(m) = params.modifier {
            let idf = proto::Modifier::try_from(m) == Ok(proto::Modifier::Idf);
            one.insert("modifier".into(), json!(if idf { "idf" } else { "none" }));
        }
        out.insert(name, Value::Object(one));
    }
    Ok(Value::Object(out))
}

#[allow(deprecated)]
fn sparse_vectors_out(s: &Value) -> Option<proto::SparseVectorConfig> {
    let map = s.as_object()?;
    let map = map.iter().map(|(name, p)| {
        let index = p
            .get("index")
            .filter(|i| i.is_object())
            .map(|i| proto::SparseIndexConfig {
                full_scan_threshold: i["full_scan_threshold"].as_u64(),
                on_disk: i["on_disk"].as_bool(),
                datatype: datatype_out(&i["datatype"]),
                memory: None,
            });
        let modifier = match p["modifier"].as_str() {
            Some("idf") => Some(proto::Modifier::Idf as i32),
            Some(_) => Some(proto::Modifier::None as i32),
            None => None,
        };
        (name.clone(), proto::SparseVectorParams { index, modifier })
    });
    Some(proto::SparseVectorConfig { map: map.collect() })
}

fn metadata(m: HashMap<String, proto::Value>) -> Result<Option<Value>, Status> {
    if m.is_empty() {
        return Ok(None);
    }
    json::object(m, "metadata").map(|m| Some(Value::Object(m)))
}

fn strict_mode(s: proto::StrictModeConfig) -> Value {
    let mut out = Map::new();
    fields!(out, s; enabled, max_query_limit, max_timeout, unindexed_filtering_retrieve,
        unindexed_filtering_update, search_max_hnsw_ef, search_allow_exact, search_max_oversampling,
        upsert_max_batchsize, max_collection_vector_size_bytes, read_rate_limit, write_rate_limit,
        max_collection_payload_size_bytes, filter_max_conditions, condition_max_size,
        max_points_count);
    Value::Object(out)
}

#[allow(deprecated)]
pub(super) fn create_body(c: proto::CreateCollection) -> Result<Value, Status> {
    let mut out = Map::new();
    put(
        &mut out,
        "vectors",
        c.vectors_config.map(vectors_config).transpose()?,
    );
    put(&mut out, "hnsw_config", c.hnsw_config.map(hnsw));
    put(&mut out, "wal_config", c.wal_config.map(wal));
    put(
        &mut out,
        "optimizers_config",
        c.optimizers_config.map(optimizers),
    );
    fields!(out, c; shard_number, on_disk_payload, replication_factor, write_consistency_factor);
    put(
        &mut out,
        "quantization_config",
        c.quantization_config.map(quantization).transpose()?,
    );
    if let Some(method) = c.sharding_method {
        let custom = proto::ShardingMethod::try_from(method) == Ok(proto::ShardingMethod::Custom);
        out.insert(
            "sharding_method".into(),
            json!(if custom { "custom" } else { "auto" }),
        );
    }
    let sparse = c.sparse_vectors_config.map(sparse_vectors).transpose()?;
    put(&mut out, "sparse_vectors", sparse);
    put(
        &mut out,
        "strict_mode_config",
        c.strict_mode_config.map(strict_mode),
    );
    put(&mut out, "metadata", metadata(c.metadata)?);
    Ok(Value::Object(out))
}

#[allow(deprecated)]
pub(super) fn update_body(u: proto::UpdateCollection) -> Result<Value, Status> {
    use proto::vectors_config_diff::Config;
    let mut out = Map::new();
    put(
        &mut out,
        "optimizers_config",
        u.optimizers_config.map(optimizers),
    );
    if let Some(p) = u.params {
        let mut params = Map::new();
        fields!(params, p; replication_factor, write_consistency_factor, on_disk_payload,
            read_fan_out_factor, read_fan_out_delay_ms);
        out.insert("params".into(), Value::Object(params));
    }
    put(&mut out, "hnsw_config", u.hnsw_config.map(hnsw));
    if let Some(diff) = u.vectors_config {
        let one = |d: proto::VectorParamsDiff| -> Result<Value, Status> {
            let mut o = Map::new();
            put(&mut o, "hnsw_config", d.hnsw_config.map(hnsw));
            let q = d.quantization_config.map(quantization_diff).transpose()?;
            put(&mut o, "quantization_config", q);
            put(&mut o, "on_disk", d.on_disk);
            Ok(Value::Object(o))
        };
        let vectors = match required(diff.config, "vectors_config")? {
            // The unnamed vector's name in REST.
            Config::Params(d) => object!({ "": one(d)? }),
            Config::ParamsMap(map) => Value::Object(
                map.map
                    .into_iter()
                    .map(|(k, d)| Ok((k, one(d)?)))
                    .collect::<Result<_, Status>>()?,
            ),
        };
        out.insert("vectors".into(), vectors);
    }
    let q = u.quantization_config.map(quantization_diff).transpose()?;
    put(&mut out, "quantization_config", q);
    let sparse = u.sparse_vectors_config.map(sparse_vectors).transpose()?;
    put(&mut out, "sparse_vectors", sparse);
    put(
        &mut out,
        "strict_mode_config",
        u.strict_mode_config.map(strict_mode),
    );
    put(&mut out, "metadata", metadata(u.metadata)?);
    Ok(Value::Object(out))
}

#[allow(deprecated)]
pub(super) fn info_out(mut info: Value) -> proto::CollectionInfo {
    let status = match info["status"].as_str() {
        Some("green") => proto::CollectionStatus::Green,
        Some("yellow") => proto::CollectionStatus::Yellow,
        Some("red") => proto::CollectionStatus::Red,
        Some("grey") => proto::CollectionStatus::Grey,
        _ => proto::CollectionStatus::UnknownCollectionStatus,
    };
    let optimizer_status = match &info["optimizer_status"] {
        Value::Object(e) => proto::OptimizerStatus {
            ok: false,
            error: e
                .get("error")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .into(),
        },
        _ => proto::OptimizerStatus {
            ok: true,
            error: String::new(),
        },
    };
    let mut config = take(&mut info, "config");
    let params = &config["params"];
    let params = proto::CollectionParams {
        shard_number: params["shard_number"].as_u64().unwrap_or(1) as u32,
        on_disk_payload: params["on_disk_payload"].as_bool().unwrap_or_default(),
        vectors_config: Some(vectors_config_out(&params["vectors"])),
        replication_factor: params["replication_factor"].as_u64().map(|n| n as u32),
        write_consistency_factor: params["write_consistency_factor"]
            .as_u64()
            .map(|n| n as u32),
        sparse_vectors_config: sparse_vectors_out(&params["sparse_vectors"]),
        ..Default::default()
    };
    let metadata = json::fields_of(take(&mut config, "metadata"));
    let config = proto::CollectionConfig {
        params: Some(params),
        hnsw_config: Some(hnsw_out(&config["hnsw_config"])),
        optimizer_config: Some(optimizers_out(&config["optimizer_config"])),
        wal_config: Some(wal_out(&config["wal_config"])),
        quantization_config: quantization_out(&config["quantization_config"]),
        strict_mode_config: None,
        metadata,
    };
    let schema = match take(&mut info, "payload_schema") {
        Value::Object(map) => map.into_iter().map(|(k, v)| (k, schema_out(&v))).collect(),
        _ => HashMap::new(),
    };
    proto::CollectionInfo {
        status: status as i32,
        optimizer_status: Some(optimizer_status),
        segments_count: info["segments_count"].as_u64().unwrap_or_default(),
        config: Some(config),
        payload_schema: schema,
        points_count: info["points_count"].as_u64(),
        indexed_vectors_count: info["indexed_vectors_count"].as_u64(),
        warnings: Vec::new(),
        update_queue: Some(proto::UpdateQueueInfo::default()),
        created_at: None,
    }
}

fn schema_out(v: &Value) -> proto::PayloadSchemaInfo {
    use proto::PayloadSchemaType as T;
    let data_type = match v["data_type"].as_str().unwrap_or_default() {
        "keyword" => T::Keyword,
        "integer" => T::Integer,
        "float" => T::Float,
        "geo" => T::Geo,
        "text" => T::Text,
        "bool" => T::Bool,
        "datetime" => T::Datetime,
        "uuid" => T::Uuid,
        _ => T::UnknownType,
    };
    proto::PayloadSchemaInfo {
        data_type: data_type as i32,
        params: None,
        points: v["points"].as_u64(),
    }
}
