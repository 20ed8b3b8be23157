//! Prometheus metrics: per-request HTTP instruments, process metrics and the `GET /metrics` endpoint.
//!
//! Label values are drawn only from closed sets (route templates, standard methods, status codes)
//! because raw URLs can carry personal data and would make label cardinality unbounded.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus::{Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry, TextEncoder};

/// Content type of the Prometheus text exposition format.
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Label value for requests that matched no route and for non-standard methods.
const OTHER: &str = "other";

/// Histogram buckets in seconds, weighted towards the sub-millisecond range of a fast service.
const DURATION_BUCKETS: [f64; 14] =
    [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// Prometheus registry and the HTTP instruments.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    // `None` only if the instruments could not be built or registered, a programming error that
    // must not take the vault down, so requests then go uncounted instead.
    http: Option<HttpInstruments>,
}

/// The per-request instruments, all registered on the owning [`Metrics`] registry.
#[derive(Clone)]
struct HttpInstruments {
    requests: IntCounterVec,
    duration: HistogramVec,
    in_flight: IntGauge,
}

impl HttpInstruments {
    /// Builds the instruments and registers them on `registry`.
    fn register(registry: &Registry) -> prometheus::Result<Self> {
        let requests = IntCounterVec::new(
            Opts::new("http_requests_total", "Total number of HTTP requests handled."),
            &["method", "path", "status"],
        )?;
        let duration = HistogramVec::new(
            HistogramOpts::new("http_request_duration_seconds", "HTTP request latency in seconds.")
                .buckets(DURATION_BUCKETS.to_vec()),
            &["method", "path"],
        )?;
        let in_flight = IntGauge::new("http_requests_in_flight", "Number of HTTP requests currently being handled.")?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(duration.clone()))?;
        registry.register(Box::new(in_flight.clone()))?;
        Ok(Self { requests, duration, in_flight })
    }
}

impl Metrics {
    /// Creates a fresh registry with the HTTP instruments and the process collector.
    pub fn new() -> Metrics {
        // A private registry rather than the global default so tests can build many apps.
        let registry = Registry::new();
        let http = HttpInstruments::register(&registry).map_err(|err| log_error("registering HTTP metrics", &err)).ok();
        register_process_collector(&registry);
        Metrics { registry, http }
    }

    /// Registers another domain's instruments (logged and left out if that fails).
    pub fn register(&self, collector: Box<dyn prometheus::core::Collector>) {
        if let Err(err) = self.registry.register(collector) {
            log_error("registering metrics", &err);
        }
    }

    /// Renders the text exposition.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        if let Err(err) = TextEncoder::new().encode(&self.registry.gather(), &mut buf) {
            log_error("encoding metrics", &err);
        }
        // The encoder writes only UTF-8; lossy conversion just avoids a fallible path.
        String::from_utf8_lossy(&buf).into_owned()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Registers process metrics (memory, CPU, start time, file descriptors) on `registry`.
#[cfg(target_os = "linux")]
fn register_process_collector(registry: &Registry) {
    let collector = prometheus::process_collector::ProcessCollector::for_self();
    if let Err(err) = registry.register(Box::new(collector)) {
        log_error("registering process metrics", &err);
    }
}

/// The process collector exists only on Linux, so elsewhere there is nothing to register.
#[cfg(not(target_os = "linux"))]
fn register_process_collector(_registry: &Registry) {}

/// Reports a metrics failure; metrics are never worth failing a request or startup over.
fn log_error(what: &str, err: &prometheus::Error) {
    tracing::error!("metrics: error {what}: {err}");
}

/// Decrements the in-flight gauge on drop, so requests cancelled mid-flight are not leaked.
struct InFlightGuard(IntGauge);

impl InFlightGuard {
    fn enter(gauge: &IntGauge) -> Self {
        gauge.inc();
        Self(gauge.clone())
    }
}

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// Maps a method to a fixed label value so extension methods cannot add label values.
fn method_label(method: &axum::http::Method) -> &'static str {
    match method.as_str() {
        "GET" => "GET",
        "HEAD" => "HEAD",
        "POST" => "POST",
        "PUT" => "PUT",
        "DELETE" => "DELETE",
        "PATCH" => "PATCH",
        "OPTIONS" => "OPTIONS",
        "CONNECT" => "CONNECT",
        "TRACE" => "TRACE",
        _ => OTHER,
    }
}

/// axum middleware that counts, times and tracks in-flight requests, labelled by matched route.
pub async fn track(State(metrics): State<Metrics>, req: Request, next: Next) -> Response {
    let Some(http) = metrics.http else {
        return next.run(req).await;
    };
    let method = method_label(req.method());
    // The route template, never the raw URL; the fallback has no MatchedPath.
    let matched = req.extensions().get::<MatchedPath>().cloned();
    let path = matched.as_ref().map_or(OTHER, MatchedPath::as_str);

    let _in_flight = InFlightGuard::enter(&http.in_flight);
    let start = Instant::now();
    let response = next.run(req).await;
    let elapsed = start.elapsed().as_secs_f64();

    http.duration.with_label_values(&[method, path]).observe(elapsed);
    http.requests.with_label_values(&[method, path, response.status().as_str()]).inc();
    response
}

/// Handler for GET /metrics: 200 with the Prometheus text exposition.
pub async fn handler(State(metrics): State<Metrics>) -> Response {
    ([(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE))], metrics.render()).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    use axum::Router;
    use axum::body::Body;
    use axum::http::{Method, Request as HttpRequest, StatusCode};
    use axum::middleware::from_fn_with_state;
    use axum::routing::{get, post};
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    fn app(metrics: &Metrics) -> Router {
        Router::new()
            .route("/v2/UserGet", post(|| async { "user" }))
            .route("/status", get(|| async { "ok" }))
            .route("/metrics", get(handler))
            .fallback(|| async { StatusCode::NOT_FOUND })
            .layer(from_fn_with_state(metrics.clone(), track))
            .with_state(metrics.clone())
    }

    async fn send(app: &Router, method: Method, uri: &str) -> Response {
        let req = HttpRequest::builder().method(method).uri(uri).body(Body::empty()).expect("valid request");
        app.clone().oneshot(req).await.expect("infallible service")
    }

    /// Hand-written equivalent of `^([a-zA-Z0-9_]+)(?:{([^}]+)})?\s+([0-9.]+)$` used by clients.
    fn matches_client_regex(line: &str) -> bool {
        let name_end = line.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(line.len());
        if name_end == 0 {
            return false;
        }
        let mut rest = &line[name_end..];
        if let Some(labels) = rest.strip_prefix('{') {
            let Some(close) = labels.find('}') else {
                return false;
            };
            if close == 0 {
                return false;
            }
            rest = &labels[close + 1..];
        }
        let value = rest.trim_start();
        value.len() < rest.len() && !value.is_empty() && value.chars().all(|c| c.is_ascii_digit() || c == '.')
    }

    #[tokio::test]
    async fn counts_matched_routes_and_hides_unknown_paths() {
        let metrics = Metrics::new();
        let app = app(&metrics);

        assert_eq!(send(&app, Method::POST, "/v2/UserGet").await.status(), StatusCode::OK);
        assert_eq!(send(&app, Method::GET, "/status").await.status(), StatusCode::OK);
        assert_eq!(send(&app, Method::GET, "/v2/alice@example.com").await.status(), StatusCode::NOT_FOUND);

        let text = metrics.render();
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines.contains(&r#"http_requests_total{method="POST",path="/v2/UserGet",status="200"} 1"#), "{text}");
        assert!(lines.contains(&r#"http_requests_total{method="GET",path="/status",status="200"} 1"#), "{text}");
        assert!(lines.contains(&r#"http_requests_total{method="GET",path="other",status="404"} 1"#), "{text}");
        assert!(!text.contains("alice@example.com"), "{text}");
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with(r#"http_request_duration_seconds_count{method="POST",path="/v2/UserGet"}"#)),
            "{text}"
        );
        assert!(
            lines.iter().any(|l| l.starts_with("http_request_duration_seconds_bucket") && l.contains(r#"le="0.0005""#)),
            "{text}"
        );
        assert!(lines.contains(&"http_requests_in_flight 0"), "{text}");
    }

    #[tokio::test]
    async fn counter_lines_match_client_regex() {
        let metrics = Metrics::new();
        let app = app(&metrics);
        send(&app, Method::POST, "/v2/UserGet").await;

        let text = metrics.render();
        let counters: Vec<&str> = text.lines().filter(|l| l.starts_with("http_requests_total{")).collect();
        assert!(!counters.is_empty(), "{text}");
        assert!(counters.iter().all(|l| matches_client_regex(l)), "{text}");
    }

    #[test]
    fn client_regex_helper_rejects_malformed_lines() {
        assert!(matches_client_regex(r#"a_b{x="1"} 12"#));
        assert!(matches_client_regex("a 1.5"));
        assert!(!matches_client_regex("a 1e3"));
        assert!(!matches_client_regex("a{} 1"));
        assert!(!matches_client_regex("a1"));
        assert!(!matches_client_regex("# HELP a b"));
    }

    #[tokio::test]
    async fn non_standard_methods_are_labelled_other() {
        let metrics = Metrics::new();
        let app = app(&metrics);
        let method = Method::from_bytes(b"ALICE").expect("valid extension method");
        send(&app, method, "/status").await;

        let text = metrics.render();
        assert!(!text.contains("ALICE"), "{text}");
        assert!(text.contains(r#"http_requests_total{method="other",path="/status",status="405"} 1"#), "{text}");
    }

    #[tokio::test]
    async fn metrics_endpoint_ignores_auth_and_sets_content_type() {
        let metrics = Metrics::new();
        let app = app(&metrics);
        let req = HttpRequest::builder()
            .uri("/metrics")
            .header(header::AUTHORIZATION, "Bearer whatever")
            .header("X-Bunker-Token", "not-checked")
            .body(Body::empty())
            .expect("valid request");
        let res = app.oneshot(req).await.expect("infallible service");

        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(res.headers().get(header::CONTENT_TYPE), Some(&HeaderValue::from_static(CONTENT_TYPE)));
        let body = res.into_body().collect().await.expect("body").to_bytes();
        let text = String::from_utf8(body.to_vec()).expect("utf-8 body");
        // The scrape itself is in flight while the registry is rendered.
        assert!(text.lines().any(|l| l == "http_requests_in_flight 1"), "{text}");
        assert!(text.contains("process_resident_memory_bytes"), "{text}");
        // The scrape is counted once it completes.
        assert!(metrics.render().contains(r#"http_requests_total{method="GET",path="/metrics",status="200"} 1"#));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn exports_process_metrics() {
        let text = Metrics::new().render();
        for name in ["process_resident_memory_bytes", "process_cpu_seconds_total", "process_start_time_seconds"] {
            assert!(text.contains(name), "{name} missing:\n{text}");
        }
    }

    #[test]
    fn instruments_are_registered() {
        // Guards the logged-and-ignored path in `new`: it must never be taken.
        assert!(Metrics::new().http.is_some());
    }

    #[test]
    fn apps_can_be_built_repeatedly() {
        let first = Metrics::new();
        let second = Metrics::default();
        first.http.as_ref().expect("instruments").in_flight.inc();
        assert!(second.render().contains("http_requests_in_flight 0"));
    }
}
