//! Serving the core router: request ids, panics answered in the error shape, transport
//! limits, request logs, graceful shutdown.

use std::any::Any;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use axum::error_handling::HandleErrorLayer;
use axum::extract::MatchedPath;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::{BoxError, Router};
use gift_core::domain::{IdempotencyKey, TraceParent};
use gift_core::http::ApiError;
use gift_core::ports::Env;
use gift_core::AppError;
use gift_runtime::rt::SystemEnv;
use std::time::Instant;
use tower::limit::GlobalConcurrencyLimitLayer;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer};
use tracing::Instrument;

use crate::config::HttpArgs;

/// Wraps the router with, outermost first: the request id (`X-Request-Id`, see
/// [`request_id`]), echoed in the response; request logging in a span that carries the id,
/// so every line of the request has it; error mapping for the layers below; load shedding
/// at `MAX_CONCURRENT_REQUESTS` (503 + Retry-After at once, instead of an unbounded
/// queue); `REQUEST_TIMEOUT_MS` (503); and a handler's panic answered as a 500 in the error
/// shape and logged, where it would otherwise drop the connection (a 502 at the ALB). The
/// 503s echo the request's Idempotency-Key like every other answer, so a client can match
/// them.
///
/// `Router::layer` wraps each route on its own, so the limit takes a semaphore shared by
/// every route (`GlobalConcurrencyLimitLayer`); tower's `ConcurrencyLimitLayer` would give
/// each route a limit of its own, and the API as a whole several times the setting.
pub fn with_transport(router: Router, http: &HttpArgs) -> Router {
    let limits = ServiceBuilder::new()
        .layer(HandleErrorLayer::new(|headers: HeaderMap, e: BoxError| async move {
            let reason = if e.is::<tower::timeout::error::Elapsed>() {
                "request timed out"
            } else if e.is::<tower::load_shed::error::Overloaded>() {
                "too many concurrent requests"
            } else {
                "transport error"
            };
            let key = headers
                .get("idempotency-key")
                .and_then(|v| v.to_str().ok())
                .and_then(|k| IdempotencyKey::parse(k).ok());
            ApiError::new(AppError::Unavailable(reason.into()), key).into_response()
        }))
        .load_shed()
        .layer(GlobalConcurrencyLimitLayer::new(http.max_concurrent_requests))
        .timeout(Duration::from_millis(http.request_timeout_ms));
    // One `Router::layer` for the whole stack: axum boxes and clones the service at every
    // `layer` call on every request, so six calls cost some 50 boxed clones a request
    // (docs/benchmarks.md, "What limits each figure now").
    router.layer(
        ServiceBuilder::new()
            .layer(middleware::map_request(drop_unusable_request_id))
            .layer(SetRequestIdLayer::new(X_REQUEST_ID, NewRequestId))
            .layer(PropagateRequestIdLayer::new(X_REQUEST_ID))
            .layer(middleware::from_fn(log_request))
            .layer(limits)
            .layer(CatchPanicLayer::custom(panic_answer)),
    )
}

const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
const X_AMZN_TRACE_ID: HeaderName = HeaderName::from_static("x-amzn-trace-id");

/// A request id the service keeps as given: 1–200 visible ASCII characters, the shape of a
/// UUID or an ALB trace id (`Root=1-…`). Anything else is replaced, so a log line never
/// carries a client's megabyte or its control characters.
fn usable(id: &HeaderValue) -> bool {
    (1..=200).contains(&id.len()) && id.as_bytes().iter().all(|b| (b'!'..=b'~').contains(b))
}

async fn drop_unusable_request_id(mut req: Request) -> Request {
    if req.headers().get(&X_REQUEST_ID).is_some_and(|id| !usable(id)) {
        req.headers_mut().remove(&X_REQUEST_ID);
    }
    req
}

/// The request id of a request without a usable `X-Request-Id`: the ALB's `X-Amzn-Trace-Id`
/// (so the id matches the ALB's access log), else a new UUID. Transport, not deciding code,
/// so OS randomness is the right source here, through the thread's generator (seeded from
/// the OS once) rather than `Uuid::new_v4()`, which asks the kernel on every call.
#[derive(Clone, Copy)]
struct NewRequestId;

impl MakeRequestId for NewRequestId {
    fn make_request_id<B>(&mut self, req: &axum::http::Request<B>) -> Option<RequestId> {
        let id = match req.headers().get(&X_AMZN_TRACE_ID).filter(|id| usable(id)) {
            Some(trace) => trace.clone(),
            None => HeaderValue::try_from(random_uuid().to_string()).ok()?,
        };
        Some(RequestId::new(id))
    }
}

/// A handler's panic: logged (as `INTERNAL_ERROR`, with the panic's message) and answered
/// 500 in the error shape. The request's key is not at hand here, so `request_id` is null;
/// the line carries the request id.
fn panic_answer(panic: Box<dyn Any + Send + 'static>) -> Response {
    let message = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned());
    ApiError::new(AppError::Internal(format!("handler panicked: {message}")), None).into_response()
}

/// One log line and one `gift.http.requests` count per request with the route template (not the raw path, which would carry
/// ids), the status and the latency; the request runs in a span with its request id
/// (`http.request_id`, Datadog's standard attribute), so each of its lines has the id.
///
/// The span is also the request's span in its trace: the caller's `traceparent` continued,
/// or a new trace. Its ids go on every line (`trace_id`, `dd.trace_id`, see
/// [`gift_core::trace`]), and the context, with this span as the parent, goes to the
/// handler (a request extension), which keeps it with the send for the worker.
async fn log_request(mut req: Request, next: Next) -> Response {
    let id = req.headers().get(&X_REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let span_id = new_span_id();
    let trace = request_trace(req.headers()).child(span_id);
    req.extensions_mut().insert(trace);
    let span = gift_core::traced_span!("request", &trace, span_id, http.request_id = id.as_str());
    served(req, next).instrument(span).await
}

const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");

/// The caller's trace context, or a new trace (not sampled: the service records no spans of
/// its own). Transport, not deciding code: the ids come from OS randomness.
fn request_trace(headers: &HeaderMap) -> TraceParent {
    let caller = headers.get(&TRACEPARENT).and_then(|v| v.to_str().ok()).and_then(|v| TraceParent::parse(v).ok());
    caller.unwrap_or_else(|| {
        let trace_id = SystemEnv.random_u128();
        TraceParent::new(trace_id.max(1), new_span_id(), 0).expect("both ids are non-zero")
    })
}

fn new_span_id() -> u64 {
    SystemEnv.random_u64().max(1)
}

fn random_uuid() -> uuid::Uuid {
    uuid::Builder::from_random_bytes(SystemEnv.random_u128().to_le_bytes()).into_uuid()
}

async fn served(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    let route = req.extensions().get::<MatchedPath>().cloned();
    let key = req
        .headers()
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(|k| k.chars().take(255).collect::<String>());
    let response = next.run(req).await;
    let status = response.status().as_u16();
    let latency = started.elapsed().as_secs_f64();
    let latency_ms = latency * 1e3;
    let route = route.as_ref().map_or("unmatched", MatchedPath::as_str);
    gift_core::metrics::http_request(route, method.as_str(), status, latency);
    if status >= 500 {
        tracing::error!(event = "HTTP", %method, route, http_status = status, latency_ms, request_id = key, "request served");
    } else {
        tracing::info!(event = "HTTP", %method, route, http_status = status, latency_ms, request_id = key, "request served");
    }
    response
}

/// Binds and serves until `shutdown` resolves, then lets in-flight requests finish.
pub async fn serve(
    router: Router,
    addr: SocketAddr,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(event = "LISTENING", addr = %listener.local_addr()?, "listening");
    axum::serve(listener, router).with_graceful_shutdown(shutdown).await
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use axum::body::Body;
    use axum::http::StatusCode;
    use axum::routing::get;
    use tokio::sync::Notify;
    use tower::ServiceExt;

    use super::*;

    fn limits(max_concurrent_requests: usize) -> HttpArgs {
        HttpArgs {
            port: 0,
            max_body_bytes: 1024,
            request_timeout_ms: 10_000,
            max_concurrent_requests,
            publish_grace_ms: 0,
        }
    }

    fn get_request(path: &str) -> Request {
        Request::get(path).body(Body::empty()).expect("a valid request")
    }

    /// `MAX_CONCURRENT_REQUESTS` bounds the whole API, not each route on its own: a request
    /// in flight on one route counts against a request to another.
    #[tokio::test]
    async fn the_concurrency_limit_spans_every_route() {
        let (entered, release) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
        let held = {
            let (entered, release) = (entered.clone(), release.clone());
            move || async move {
                entered.notify_one();
                release.notified().await;
                "done"
            }
        };
        let router = Router::new().route("/held", get(held)).route("/other", get(|| async { "other" }));
        let router = with_transport(router, &limits(1));

        let in_flight = tokio::spawn(router.clone().oneshot(get_request("/held")));
        entered.notified().await;
        let shed = router.clone().oneshot(get_request("/other")).await.expect("infallible");
        assert_eq!(shed.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(shed.headers().contains_key("retry-after"), "a shed request says when to retry");

        release.notify_one();
        let first = in_flight.await.expect("the held request finishes").expect("infallible");
        assert_eq!(first.status(), StatusCode::OK);
        let after = router.oneshot(get_request("/other")).await.expect("infallible");
        assert_eq!(after.status(), StatusCode::OK, "the permit returns when the held request ends");
    }

    /// A send that runs past `REQUEST_TIMEOUT_MS` is answered 503 in the error shape with
    /// its key echoed (the real-stack run found it answered `"request_id": null`).
    #[tokio::test]
    async fn a_timed_out_send_echoes_its_key() {
        let slow = || async {
            tokio::time::sleep(Duration::from_secs(5)).await;
            "late"
        };
        let router = Router::new().route("/slow", axum::routing::post(slow));
        let router = with_transport(router, &HttpArgs { request_timeout_ms: 10, ..limits(8) });
        let req = Request::post("/slow").header("idempotency-key", "Key-1").body(Body::empty()).expect("a request");
        let res = router.oneshot(req).await.expect("infallible");
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
        let bytes = http_body_util::BodyExt::collect(res.into_body()).await.expect("a body").to_bytes();
        let body: serde_json::Value = serde_json::from_slice(&bytes).expect("JSON");
        assert_eq!(body["request_id"], "Key-1", "{body}");
        assert_eq!(body["error"]["code"], "SERVICE_UNAVAILABLE", "{body}");
    }

    async fn body_of(res: Response) -> serde_json::Value {
        let bytes = http_body_util::BodyExt::collect(res.into_body()).await.expect("a body").to_bytes();
        serde_json::from_slice(&bytes).expect("JSON")
    }

    fn request_id_of(res: &Response) -> &str {
        res.headers().get("x-request-id").and_then(|v| v.to_str().ok()).expect("an x-request-id header")
    }

    /// A handler that panics answers 500 in the error shape instead of dropping the
    /// connection, and the panic is logged with the request's id.
    #[test]
    fn a_handler_panic_is_a_500_in_the_error_shape_and_a_log_line() {
        let router = Router::new().route(
            "/boom",
            get(|| async {
                if true {
                    panic!("the handler broke");
                }
                "unreachable"
            }),
        );
        let router = with_transport(router, &limits(8));
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
        let mut answer = None;
        let lines = crate::telemetry::capture::lines_of(|| {
            answer = Some(rt.block_on(async {
                let res = router.oneshot(get_request("/boom")).await.expect("infallible");
                (res.status(), request_id_of(&res).to_owned(), body_of(res).await)
            }));
        });
        let (status, id, body) = answer.expect("the request ran");
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(body["error"]["code"], "INTERNAL_ERROR", "{body}");
        assert_eq!(body["error"]["message"], "internal error", "details stay in the log: {body}");
        assert!(body["request_id"].is_null(), "{body}");
        let logged: Vec<_> = lines.iter().map(|l| crate::telemetry::capture::parse(l)).collect();
        let panic_line = logged
            .iter()
            .find(|l| l["error_code"] == "INTERNAL_ERROR")
            .unwrap_or_else(|| panic!("no INTERNAL_ERROR line in {lines:?}"));
        assert!(panic_line["error_message"].as_str().is_some_and(|m| m.contains("the handler broke")), "{panic_line}");
        assert!(logged.iter().any(|l| l["event"] == "HTTP" && l["http_status"] == 500), "{lines:?}");
        for line in &logged {
            assert_eq!(line["http.request_id"], id.as_str(), "every line of the request has its id: {line}");
        }
    }

    #[tokio::test]
    async fn the_request_id_is_the_callers_or_the_albs_or_a_new_one_and_is_echoed() {
        let router = with_transport(Router::new().route("/ok", get(|| async { "ok" })), &limits(8));
        let with = |headers: &[(&str, &str)]| {
            let mut req = Request::get("/ok");
            for (name, value) in headers {
                req = req.header(*name, *value);
            }
            router.clone().oneshot(req.body(Body::empty()).expect("a request"))
        };
        let res = with(&[("x-request-id", "caller-7")]).await.expect("infallible");
        assert_eq!(request_id_of(&res), "caller-7");
        let alb = "Root=1-67891233-abcdef012345678912345678";
        let res = with(&[("x-amzn-trace-id", alb)]).await.expect("infallible");
        assert_eq!(request_id_of(&res), alb);
        let res = with(&[("x-request-id", &"x".repeat(201)), ("x-amzn-trace-id", alb)]).await.expect("infallible");
        assert_eq!(request_id_of(&res), alb, "an unusable id is replaced");
        let fresh = with(&[]).await.expect("infallible");
        let again = with(&[]).await.expect("infallible");
        assert!(uuid::Uuid::parse_str(request_id_of(&fresh)).is_ok(), "{}", request_id_of(&fresh));
        assert_ne!(request_id_of(&fresh), request_id_of(&again));
    }

    /// A caller's `traceparent` is continued: every line of the request carries its trace id
    /// (W3C and Datadog forms) and a span id of its own, and the handler gets the context
    /// with that span as the parent. Without one, each request starts a trace.
    #[test]
    fn the_callers_trace_is_continued_on_every_line_and_handed_to_the_handler() {
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let handler = {
            let seen = seen.clone();
            move |axum::Extension(trace): axum::Extension<TraceParent>| async move {
                tracing::info!(event = "HANDLED", "inside the handler");
                seen.lock().unwrap().push(trace);
                "ok"
            }
        };
        let router = with_transport(Router::new().route("/t", get(handler)), &limits(8));
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
        let caller = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let lines = crate::telemetry::capture::lines_of(|| {
            rt.block_on(async {
                let req = Request::get("/t").header("traceparent", caller).body(Body::empty()).expect("a request");
                router.clone().oneshot(req).await.expect("infallible");
                router.clone().oneshot(get_request("/t")).await.expect("infallible");
            })
        });
        let logged: Vec<_> = lines.iter().map(|l| crate::telemetry::capture::parse(l)).collect();
        let handled: Vec<_> = logged.iter().filter(|l| l["event"] == "HANDLED").collect();
        assert_eq!(handled.len(), 2, "{lines:?}");
        let first = handled[0];
        assert_eq!(first["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736", "{first}");
        assert_eq!(first["dd.trace_id"], (0xa3ce929d0e0e4736u64).to_string(), "{first}");
        let span_id = first["span_id"].as_str().expect("a span id").to_owned();
        assert_ne!(span_id, "00f067aa0ba902b7", "the request's own span, not the caller's");
        let http = logged.iter().find(|l| l["event"] == "HTTP" && l["trace_id"] == first["trace_id"]);
        assert!(http.is_some_and(|l| l["span_id"] == span_id.as_str()), "the request line too: {lines:?}");

        let contexts = seen.lock().unwrap().clone();
        assert_eq!(contexts[0].trace_id(), 0x4bf92f3577b34da6a3ce929d0e0e4736);
        assert_eq!(format!("{:016x}", contexts[0].parent_id()), span_id, "the handler's parent is the request span");
        assert_eq!(contexts[0].flags(), TraceParent::SAMPLED, "the caller's flags travel on");
        assert_ne!(contexts[1].trace_id(), contexts[0].trace_id(), "no header: a trace of its own");
        assert_eq!(handled[1]["trace_id"], format!("{:032x}", contexts[1].trace_id()).as_str());
    }
}
