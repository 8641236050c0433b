//! `http`: `get`, `post`, `put`, `patch`, `delete` `(url, options)` and `do(url,
//! options)` (with `options.method`), through the `Host`. Options: `headers` (object),
//! `body` (a string, or a value sent as JSON), `timeout` (milliseconds; default
//! `JS_HTTP_TIMEOUT_DEFAULT_MS`, never past the invocation's wall-clock limit). Every call
//! returns `{status, statusCode, headers, body, contentLength, error}`; a transport
//! failure sets `error` (and `statusCode` 0) rather than throwing, as in Monk.

use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

use rquickjs::function::Opt;
use rquickjs::{Ctx, Exception, Object, Value};

use super::method;
use crate::convert;
use crate::host::{HttpRequest, HttpResponse};
use crate::limits::JS_HTTP_TIMEOUT_DEFAULT_MS;
use crate::session::Session;

pub(super) fn module<'js>(ctx: &Ctx<'js>, session: &Rc<Session>) -> rquickjs::Result<Object<'js>> {
    let http = Object::new(ctx.clone())?;
    for (name, verb) in [
        ("get", "GET"),
        ("post", "POST"),
        ("put", "PUT"),
        ("patch", "PATCH"),
        ("delete", "DELETE"),
    ] {
        let session = Rc::clone(session);
        method(
            ctx,
            &http,
            name,
            move |ctx: Ctx<'js>, url: String, options: Opt<Object<'js>>| {
                send(&ctx, &session, Some(verb), url, options.0)
            },
        )?;
    }
    let session = Rc::clone(session);
    method(
        ctx,
        &http,
        "do",
        move |ctx: Ctx<'js>, url: String, options: Opt<Object<'js>>| {
            send(&ctx, &session, None, url, options.0)
        },
    )?;
    Ok(http)
}

fn send<'js>(
    ctx: &Ctx<'js>,
    session: &Session,
    verb: Option<&str>,
    url: String,
    options: Option<Object<'js>>,
) -> rquickjs::Result<Object<'js>> {
    let request = request(ctx, session, verb, url, options)?;
    let result = session.waiting(|| session.host.http(&request));
    match result {
        Ok(response) => response_object(ctx, &response, ""),
        Err(error) => response_object(ctx, &HttpResponse::default(), &error.to_string()),
    }
}

fn request<'js>(
    ctx: &Ctx<'js>,
    session: &Session,
    verb: Option<&str>,
    url: String,
    options: Option<Object<'js>>,
) -> rquickjs::Result<HttpRequest> {
    let mut request = HttpRequest {
        method: verb.unwrap_or("GET").to_string(),
        url,
        headers: BTreeMap::new(),
        body: None,
        timeout: Duration::from_millis(JS_HTTP_TIMEOUT_DEFAULT_MS),
    };
    if let Some(options) = options {
        if verb.is_none() {
            if let Some(method) = options.get::<_, Option<String>>("method")? {
                request.method = method.to_ascii_uppercase();
            }
        }
        if let Some(headers) = options.get::<_, Option<Object<'js>>>("headers")? {
            for entry in headers.props::<String, Value<'js>>() {
                let (name, value) = entry?;
                request.headers.insert(name, convert::text(ctx, value)?);
            }
        }
        let body: Value<'js> = options.get("body")?;
        if !body.is_undefined() && !body.is_null() {
            request.body = Some(convert::text(ctx, body)?);
        }
        let timeout: Value<'js> = options.get("timeout")?;
        if let Some(ms) = timeout.as_number() {
            if !(ms.is_finite() && ms > 0.0) {
                return Err(Exception::throw_range(
                    ctx,
                    "http: timeout must be a positive number of milliseconds",
                ));
            }
            request.timeout = Duration::from_secs_f64((ms / 1000.0).min(1e9));
        }
    }
    request.timeout = request.timeout.min(session.remaining());
    Ok(request)
}

fn response_object<'js>(
    ctx: &Ctx<'js>,
    response: &HttpResponse,
    error: &str,
) -> rquickjs::Result<Object<'js>> {
    let object = Object::new(ctx.clone())?;
    object.set("status", response.status.as_str())?;
    object.set("statusCode", response.status_code)?;
    let headers = Object::new(ctx.clone())?;
    for (name, value) in &response.headers {
        headers.set(name.as_str(), value.as_str())?;
    }
    object.set("headers", headers)?;
    object.set("body", response.body.as_str())?;
    // JavaScript numbers are f64: exact up to 2^53 bytes, far past any body.
    object.set("contentLength", response.content_length as f64)?;
    object.set("error", error)?;
    Ok(object)
}
