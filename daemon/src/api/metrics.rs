//! Prometheus text metrics: requests and their latencies by route, and store sizes.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;

const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

/// Request counts keyed by (method, route, status).
type Counts = BTreeMap<(String, String, u16), u64>;

/// A gauge family: name, help text, and (labels, value) samples.
pub type Gauge<'a> = (&'a str, &'a str, Vec<(String, f64)>);

#[derive(Default)]
struct Series {
    buckets: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// Request metrics, shared by all handlers.
#[derive(Clone, Default)]
pub struct Metrics {
    requests: Arc<Mutex<Counts>>,
    latency: Arc<Mutex<BTreeMap<(String, String), Series>>>,
}

impl Metrics {
    fn record(&self, method: &str, route: &str, status: u16, seconds: f64) {
        *self
            .requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry((method.to_owned(), route.to_owned(), status))
            .or_default() += 1;
        let mut lat = self.latency.lock().unwrap_or_else(|p| p.into_inner());
        let s = lat
            .entry((method.to_owned(), route.to_owned()))
            .or_default();
        s.count += 1;
        s.sum += seconds;
        for (b, le) in s.buckets.iter_mut().zip(BUCKETS) {
            if seconds <= le {
                *b += 1;
            }
        }
    }

    /// The Prometheus exposition text; `extra` adds gauges as (name, help, [(labels, value)]).
    pub fn render(&self, extra: &[Gauge<'_>]) -> String {
        let mut out = String::new();
        out.push_str(
            "# HELP linli_http_requests_total HTTP requests answered, by route and status.\n",
        );
        out.push_str("# TYPE linli_http_requests_total counter\n");
        for ((m, r, s), n) in self
            .requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            let _ = writeln!(
                out,
                "linli_http_requests_total{{method=\"{m}\",route=\"{r}\",status=\"{s}\"}} {n}"
            );
        }
        out.push_str("# HELP linli_http_request_duration_seconds Time to answer, by route.\n");
        out.push_str("# TYPE linli_http_request_duration_seconds histogram\n");
        for ((m, r), s) in self
            .latency
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            let labels = format!("method=\"{m}\",route=\"{r}\"");
            for (b, le) in s.buckets.iter().zip(BUCKETS) {
                let _ = writeln!(
                    out,
                    "linli_http_request_duration_seconds_bucket{{{labels},le=\"{le}\"}} {b}"
                );
            }
            let _ = writeln!(
                out,
                "linli_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
                s.count
            );
            let _ = writeln!(
                out,
                "linli_http_request_duration_seconds_sum{{{labels}}} {}",
                s.sum
            );
            let _ = writeln!(
                out,
                "linli_http_request_duration_seconds_count{{{labels}}} {}",
                s.count
            );
        }
        for (name, help, values) in extra {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
            for (labels, v) in values {
                if labels.is_empty() {
                    let _ = writeln!(out, "{name} {v}");
                } else {
                    let _ = writeln!(out, "{name}{{{labels}}} {v}");
                }
            }
        }
        out
    }
}

/// Middleware that records every request under its route template (never the raw path,
/// which could carry identifiers).
pub async fn track(State(metrics): State<Metrics>, req: Request, next: Next) -> Response {
    // Durations are measured, not timestamps read: this is not "the clock" of DESIGN.md.
    let started = Instant::now();
    let method = req.method().as_str().to_owned();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "(unmatched)".to_owned(), |p| p.as_str().to_owned());
    let response = next.run(req).await;
    let seconds = started.elapsed().as_secs_f64();
    let status = response.status().as_u16();
    tracing::debug!(%method, %route, status, ms = seconds * 1000.0, "request");
    metrics.record(&method, &route, status, seconds);
    response
}

/// Appends per-plugin call metrics: calls, failures by kind, time spent.
pub fn render_plugins(out: &mut String, stats: &[(String, crate::plugins::catalog::CallStats)]) {
    out.push_str("# HELP linli_plugin_calls_total Calls into each plugin.\n# TYPE linli_plugin_calls_total counter\n");
    for (id, s) in stats {
        let _ = writeln!(
            out,
            "linli_plugin_calls_total{{plugin=\"{id}\"}} {}",
            s.calls
        );
    }
    out.push_str("# HELP linli_plugin_failures_total Failed plugin calls by kind.\n# TYPE linli_plugin_failures_total counter\n");
    for (id, s) in stats {
        for (kind, n) in &s.failures {
            let _ = writeln!(
                out,
                "linli_plugin_failures_total{{plugin=\"{id}\",kind=\"{kind}\"}} {n}"
            );
        }
    }
    out.push_str("# HELP linli_plugin_calls_in_flight Calls running now in each plugin.\n# TYPE linli_plugin_calls_in_flight gauge\n");
    for (id, s) in stats {
        let _ = writeln!(
            out,
            "linli_plugin_calls_in_flight{{plugin=\"{id}\"}} {}",
            s.in_flight
        );
    }
    out.push_str("# HELP linli_plugin_call_seconds_total Time spent in each plugin.\n# TYPE linli_plugin_call_seconds_total counter\n");
    for (id, s) in stats {
        let _ = writeln!(
            out,
            "linli_plugin_call_seconds_total{{plugin=\"{id}\"}} {}",
            s.seconds_total
        );
    }
}
