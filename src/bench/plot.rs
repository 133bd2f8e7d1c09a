//! Recall-vs-QPS plots as standalone SVG (log-scale QPS), with the peers' curves from the
//! `peers.json` that `shared/bench/peers.py` writes, so a run is read as a picture.

use std::fmt::Write;
use std::path::Path;

use anyhow::Context;
use serde_json::Value;

/// One line of the plot: (recall@10, queries/second) points in sweep order.
pub struct Curve {
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

/// Single-thread curves of every peer in a `peers.json` (`summary.<peer>.curve[].recall/qps_single`).
pub fn peer_curves(path: &Path) -> anyhow::Result<Vec<Curve>> {
    let text = std::fs::read_to_string(path).with_context(|| path.display().to_string())?;
    let json: Value = serde_json::from_str(&text).with_context(|| path.display().to_string())?;
    let summary = json["summary"]
        .as_object()
        .context("peers.json has no summary")?;
    Ok(summary
        .iter()
        .filter_map(|(name, peer)| {
            let points: Vec<(f64, f64)> = peer["curve"]
                .as_array()?
                .iter()
                .filter_map(|p| Some((p["recall"].as_f64()?, p["qps_single"].as_f64()?)))
                .collect();
            (!points.is_empty()).then(|| Curve {
                name: name.clone(),
                points,
            })
        })
        .collect())
}

const COLORS: &[&str] = &[
    "#d62728", "#1f77b4", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b",
];
// Canvas size and margins (the right margin holds the legend).
const W: f64 = 800.0;
const H: f64 = 520.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 180.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 60.0;

/// Renders the curves; x is recall@10, y is QPS on a log scale.
pub fn svg(title: &str, curves: &[Curve]) -> String {
    let all = curves.iter().flat_map(|c| c.points.iter());
    let (mut x0, mut y0, mut y1) = (1.0f64, f64::MAX, 1.0f64);
    for &(r, q) in all {
        x0 = x0.min(r);
        y0 = y0.min(q.max(1.0));
        y1 = y1.max(q);
    }
    let x0 = (x0 * 20.0).floor() / 20.0;
    let (ly0, ly1) = (
        y0.max(1.0).log10().floor(),
        y1.log10().ceil().max(y0.log10().floor() + 1.0),
    );
    let px = |r: f64| LEFT + (r - x0) / (1.0 - x0).max(1e-9) * (W - LEFT - RIGHT);
    let py = |q: f64| H - BOTTOM - (q.max(1.0).log10() - ly0) / (ly1 - ly0) * (H - TOP - BOTTOM);
    let mut out = String::new();
    let _ = write!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="13"><rect width="100%" height="100%" fill="white"/><text x="{}" y="24" text-anchor="middle" font-size="15">{}</text>"#,
        (W - RIGHT + LEFT) / 2.0,
        escape(title)
    );
    for decade in ly0 as i32..=ly1 as i32 {
        let y = py(10f64.powi(decade));
        let _ = write!(
            out,
            r##"<line x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"##,
            W - RIGHT,
            LEFT - 6.0,
            y + 4.0,
            10f64.powi(decade)
        );
    }
    let mut tick = x0;
    while tick <= 1.0 + 1e-9 {
        let x = px(tick);
        let _ = write!(
            out,
            r##"<line x1="{x:.1}" y1="{TOP}" x2="{x:.1}" y2="{:.1}" stroke="#eee"/><text x="{x:.1}" y="{:.1}" text-anchor="middle">{tick:.2}</text>"##,
            H - BOTTOM,
            H - BOTTOM + 18.0
        );
        tick += 0.05;
    }
    let _ = write!(
        out,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">recall@10</text><text x="18" y="{:.1}" text-anchor="middle" transform="rotate(-90 18 {:.1})">queries/second (log)</text>"#,
        (W - RIGHT + LEFT) / 2.0,
        H - 16.0,
        (H - BOTTOM + TOP) / 2.0,
        (H - BOTTOM + TOP) / 2.0
    );
    for (i, curve) in curves.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let path: Vec<String> = curve
            .points
            .iter()
            .map(|&(r, q)| format!("{:.1},{:.1}", px(r), py(q)))
            .collect();
        let _ = write!(
            out,
            r#"<polyline fill="none" stroke="{color}" stroke-width="2" points="{}"/>"#,
            path.join(" ")
        );
        for &(r, q) in &curve.points {
            let _ = write!(
                out,
                r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{color}"/>"#,
                px(r),
                py(q)
            );
        }
        let ly = TOP + 20.0 + 22.0 * i as f64;
        let _ = write!(
            out,
            r#"<line x1="{:.1}" y1="{ly}" x2="{:.1}" y2="{ly}" stroke="{color}" stroke-width="3"/><text x="{:.1}" y="{:.1}">{}</text>"#,
            W - RIGHT + 16.0,
            W - RIGHT + 40.0,
            W - RIGHT + 46.0,
            ly + 4.0,
            escape(&curve.name)
        );
    }
    out.push_str("</svg>\n");
    out
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_curve_and_reads_peer_files() {
        let dir = tempfile::tempdir().unwrap();
        let peers = dir.path().join("peers.json");
        std::fs::write(&peers, r#"{"summary": {"hnswlib": {"curve": [{"recall": 0.9, "qps_single": 5000}, {"recall": 0.99, "qps_single": 1000}]}, "broken": {}}}"#).unwrap();
        let mut curves = peer_curves(&peers).unwrap();
        assert_eq!(curves.len(), 1);
        curves.push(Curve {
            name: "vecdb <ours>".into(),
            points: vec![(0.91, 7000.0), (0.995, 1500.0)],
        });
        let svg = svg("test", &curves);
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert_eq!(svg.matches("<circle").count(), 4);
        assert!(svg.contains("vecdb &lt;ours&gt;") && svg.ends_with("</svg>\n"));
    }
}
