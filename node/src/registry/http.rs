//! The Distribution API's endpoints over axum: one handler that reads the route
//! (`route.rs`) and the method, and answers with the spec's headers
//! (`Docker-Content-Digest`, `Location`, `Range`, `Docker-Upload-UUID`) and its JSON
//! errors (`{"errors":[{"code","message","detail"}]}`).

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use monk_statemachine::registry::{check_digest, check_repository, check_tag, sha256_digest};
use monk_statemachine::{Applied, Command};

use super::fetch::{ensure_local, FetchError};
use super::manifest;
use super::route::{query_param, route, Route};
use super::store::FinishError;
use super::{Registry, SessionError, Upload, UPLOAD_BYTES_MAX};

/// Chunks buffered between a blob file and its HTTP response.
const BLOB_RESPONSE_CHUNKS: usize = 4;
/// Bytes read from a blob file per response chunk.
const BLOB_RESPONSE_CHUNK_BYTES: usize = 256 * 1024;
/// Most repositories one `_catalog` answer lists without `n`.
const CATALOG_ENTRIES_MAX: usize = 1000;

/// A Distribution API error: status, code, message.
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

fn error(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError {
        status,
        code,
        message: message.into(),
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({
            "errors": [{"code": self.code, "message": self.message, "detail": null}]
        });
        let mut response = (self.status, body.to_string()).into_response();
        set(response.headers_mut(), "content-type", "application/json");
        response
    }
}

type Answer = Result<Response, ApiError>;

fn set(headers: &mut HeaderMap, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        headers.insert(name, v);
    }
}

fn empty(status: StatusCode, headers: &[(&'static str, &str)]) -> Response {
    let mut response = (status, Body::empty()).into_response();
    for (name, value) in headers {
        set(response.headers_mut(), name, value);
    }
    response
}

fn json(value: serde_json::Value) -> Response {
    let mut response = (StatusCode::OK, value.to_string()).into_response();
    set(response.headers_mut(), "content-type", "application/json");
    response
}

/// Every request: routed by path and method.
pub async fn handle(State(registry): State<Arc<Registry>>, request: Request) -> Response {
    let method = request.method().clone();
    let query = request.uri().query().map(str::to_string);
    let Some(route) = route(request.uri().path()) else {
        return error(StatusCode::NOT_FOUND, "NOT_FOUND", "no such endpoint").into_response();
    };
    let headers = request.headers().clone();
    let body = request.into_body();
    let answer = match (route, method) {
        (Route::Base, Method::GET | Method::HEAD) => Ok(empty(
            StatusCode::OK,
            &[("docker-distribution-api-version", "registry/2.0")],
        )),
        (Route::Catalog, Method::GET) => Ok(catalog(&registry, query.as_deref())),
        (Route::Tags { name }, Method::GET) => tags(&registry, &name),
        (Route::Manifest { name, reference }, m @ (Method::GET | Method::HEAD)) => {
            get_manifest(&registry, &name, &reference, m == Method::HEAD)
        }
        (Route::Manifest { name, reference }, Method::PUT) => {
            put_manifest(&registry, &name, &reference, &headers, body).await
        }
        (Route::Blob { digest, .. }, m @ (Method::GET | Method::HEAD)) => {
            get_blob(&registry, &digest, m == Method::HEAD).await
        }
        (Route::UploadStart { name }, Method::POST) => {
            start_upload(&registry, &name, query.as_deref(), body).await
        }
        (Route::Upload { name, id }, Method::PATCH) => {
            patch_upload(&registry, &name, &id, body).await
        }
        (Route::Upload { name, id }, Method::PUT) => {
            finish_upload(&registry, &name, &id, query.as_deref(), body).await
        }
        (Route::Upload { name, id }, Method::GET) => upload_status(&registry, &name, &id),
        (Route::Upload { name, id }, Method::DELETE) => cancel_upload(&registry, &name, &id).await,
        (_, Method::DELETE) => Err(error(
            StatusCode::METHOD_NOT_ALLOWED,
            "UNSUPPORTED",
            "deletion goes through `monk images rm REPO:TAG`",
        )),
        _ => Err(error(
            StatusCode::METHOD_NOT_ALLOWED,
            "UNSUPPORTED",
            "this method is not supported here",
        )),
    };
    answer.unwrap_or_else(IntoResponse::into_response)
}

fn catalog(registry: &Registry, query: Option<&str>) -> Response {
    let n = query_param(query, "n")
        .and_then(|n| n.parse::<usize>().ok())
        .unwrap_or(CATALOG_ENTRIES_MAX)
        .min(CATALOG_ENTRIES_MAX);
    let last = query_param(query, "last").unwrap_or_default();
    let names: Vec<String> = registry.read(|s| {
        s.images()
            .keys()
            .filter(|k| k.as_str() > last.as_str())
            .take(n)
            .cloned()
            .collect()
    });
    json(serde_json::json!({ "repositories": names }))
}

fn tags(registry: &Registry, name: &str) -> Answer {
    let tags: Option<Vec<String>> = registry.read(|s| {
        s.images()
            .get(name)
            .map(|r| r.tags.keys().cloned().collect())
    });
    match tags {
        Some(tags) => Ok(json(serde_json::json!({ "name": name, "tags": tags }))),
        None => Err(name_unknown(name)),
    }
}

fn name_unknown(name: &str) -> ApiError {
    error(
        StatusCode::NOT_FOUND,
        "NAME_UNKNOWN",
        format!("no repository {name:.200} in the cluster registry"),
    )
}

fn get_manifest(registry: &Registry, name: &str, reference: &str, head: bool) -> Answer {
    let found = registry.read(|s| {
        s.manifest(name, reference)
            .map(|(d, m)| (d.to_string(), m.media_type.clone(), m.body.clone()))
    });
    let Some((digest, media_type, body)) = found else {
        return Err(error(
            StatusCode::NOT_FOUND,
            "MANIFEST_UNKNOWN",
            format!("no manifest {name:.200}:{reference:.200} in the cluster registry"),
        ));
    };
    let length = body.len().to_string();
    let body = if head {
        Body::empty()
    } else {
        Body::from(body)
    };
    let mut response = (StatusCode::OK, body).into_response();
    let headers = response.headers_mut();
    set(headers, "content-type", &media_type);
    set(headers, "docker-content-digest", &digest);
    set(headers, "content-length", &length);
    Ok(response)
}

/// Reads a whole request body of at most `max` bytes.
async fn read_body(body: Body, max: usize) -> Result<Bytes, ApiError> {
    let limited = http_body_util::Limited::new(body, max);
    match limited.collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) => Err(error(
            StatusCode::BAD_REQUEST,
            "SIZE_INVALID",
            format!("the body could not be read or is over {max} bytes: {e}"),
        )),
    }
}

async fn put_manifest(
    registry: &Arc<Registry>,
    name: &str,
    reference: &str,
    headers: &HeaderMap,
    body: Body,
) -> Answer {
    let invalid = |code, m: String| error(StatusCode::BAD_REQUEST, code, m);
    check_repository(name).map_err(|m| invalid("NAME_INVALID", m))?;
    let by_digest = reference.starts_with("sha256:");
    if by_digest {
        check_digest(reference).map_err(|m| invalid("DIGEST_INVALID", m))?;
    } else {
        check_tag(reference).map_err(|m| invalid("TAG_INVALID", m))?;
    }
    let bytes = read_body(body, monk_statemachine::registry::MANIFEST_BYTES_MAX).await?;
    let digest = sha256_digest(&bytes);
    if by_digest && digest != reference {
        return Err(invalid(
            "DIGEST_INVALID",
            format!("the manifest hashes to {digest}, not {reference}"),
        ));
    }
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let parsed =
        manifest::parse(&bytes, content_type).map_err(|m| invalid("MANIFEST_INVALID", m))?;
    let body = String::from_utf8(bytes.to_vec())
        .map_err(|_| invalid("MANIFEST_INVALID", "the manifest is not UTF-8".into()))?;
    for blob in &parsed.blobs {
        match ensure_local(registry, &blob.digest).await {
            Ok(()) => {}
            Err(FetchError::Unknown(_)) => {
                return Err(invalid(
                    "MANIFEST_BLOB_UNKNOWN",
                    format!("blob {} was not uploaded", blob.digest),
                ))
            }
            Err(e @ FetchError::Unavailable { .. }) => return Err(unavailable(e.to_string())),
        }
        let held = registry.store.size(&blob.digest);
        if held != Some(blob.size) {
            return Err(invalid(
                "MANIFEST_INVALID",
                format!(
                    "blob {} has {} bytes, the manifest says {}",
                    blob.digest,
                    held.unwrap_or(0),
                    blob.size
                ),
            ));
        }
    }
    let Some(peer) = registry.node.peer_id().await else {
        return Err(unavailable("this peer is not in a cluster yet".into()));
    };
    let named: Vec<String> = parsed.blobs.iter().map(|b| b.digest.clone()).collect();
    let command = Command::ImagePushed {
        repository: name.to_string(),
        tag: (!by_digest).then(|| reference.to_string()),
        digest: digest.clone(),
        media_type: parsed.media_type,
        manifest: body,
        blobs: parsed.blobs,
        manifests: parsed.manifests,
        peer,
    };
    let proposal = registry.node.stamp(format!("peer:{peer}"), command);
    match registry.node.propose(proposal).await {
        Ok(outcome) => match outcome.applied {
            Applied::Accepted { .. } => registry.named(named),
            Applied::Rejected { reason } => {
                return Err(invalid("MANIFEST_INVALID", reason.to_string()))
            }
        },
        Err(e) => return Err(unavailable(e.to_string())),
    }
    let location = format!("/v2/{name}/manifests/{digest}");
    Ok(empty(
        StatusCode::CREATED,
        &[
            ("location", &location),
            ("docker-content-digest", &digest),
            ("content-length", "0"),
        ],
    ))
}

fn unavailable(message: String) -> ApiError {
    error(StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE", message)
}

async fn get_blob(registry: &Arc<Registry>, digest: &str, head: bool) -> Answer {
    check_digest(digest).map_err(|m| error(StatusCode::BAD_REQUEST, "DIGEST_INVALID", m))?;
    let unknown = || {
        error(
            StatusCode::NOT_FOUND,
            "BLOB_UNKNOWN",
            format!("no blob {digest} in the cluster registry"),
        )
    };
    let size = match registry.store.size(digest) {
        Some(size) => size,
        // A HEAD is answered from the catalog: the blob is fetched when it is needed.
        None if head => registry
            .read(|s| s.blobs().get(digest).map(|b| b.size))
            .ok_or_else(unknown)?,
        None => match ensure_local(registry, digest).await {
            Ok(()) => registry.store.size(digest).ok_or_else(unknown)?,
            Err(FetchError::Unknown(_)) => return Err(unknown()),
            Err(e) => return Err(unavailable(e.to_string())),
        },
    };
    let body = match head {
        true => Body::empty(),
        false => blob_body(registry, digest).ok_or_else(unknown)?,
    };
    let mut response = (StatusCode::OK, body).into_response();
    let headers = response.headers_mut();
    set(headers, "content-type", "application/octet-stream");
    set(headers, "docker-content-digest", digest);
    set(headers, "content-length", &size.to_string());
    Ok(response)
}

/// A streamed body of a held blob's file.
fn blob_body(registry: &Registry, digest: &str) -> Option<Body> {
    let file = std::fs::File::open(registry.store.path(digest)?).ok()?;
    let rx = super::store::read_chunks(
        file,
        BLOB_RESPONSE_CHUNK_BYTES,
        BLOB_RESPONSE_CHUNKS,
        |chunk| chunk.map(Bytes::from),
    );
    Some(Body::from_stream(
        tokio_stream::wrappers::ReceiverStream::new(rx),
    ))
}

fn session_error(e: SessionError, id: &str) -> ApiError {
    match e {
        SessionError::Unknown => error(
            StatusCode::NOT_FOUND,
            "BLOB_UPLOAD_UNKNOWN",
            format!("no upload {id:.80} on this peer"),
        ),
        SessionError::Busy => error(
            StatusCode::CONFLICT,
            "BLOB_UPLOAD_INVALID",
            format!("upload {id:.80} is being written by another request"),
        ),
        SessionError::TooMany => error(
            StatusCode::TOO_MANY_REQUESTS,
            "TOOMANYREQUESTS",
            format!(
                "this peer has {} uploads open; retry later",
                super::UPLOADS_MAX
            ),
        ),
    }
}

fn upload_headers(name: &str, id: &str, size: u64, status: StatusCode) -> Response {
    let location = format!("/v2/{name}/blobs/uploads/{id}");
    let range = format!("0-{}", size.saturating_sub(1));
    empty(
        status,
        &[
            ("location", &location),
            ("range", &range),
            ("docker-upload-uuid", id),
            ("content-length", "0"),
        ],
    )
}

fn blob_created(name: &str, digest: &str) -> Response {
    let location = format!("/v2/{name}/blobs/{digest}");
    empty(
        StatusCode::CREATED,
        &[
            ("location", &location),
            ("docker-content-digest", digest),
            ("content-length", "0"),
        ],
    )
}

async fn start_upload(
    registry: &Arc<Registry>,
    name: &str,
    query: Option<&str>,
    body: Body,
) -> Answer {
    check_repository(name).map_err(|m| error(StatusCode::BAD_REQUEST, "NAME_INVALID", m))?;
    if let Some(why) = registry.node.storage_alarm() {
        return Err(error(StatusCode::FORBIDDEN, "DENIED", why));
    }
    // A mount of a blob this peer holds needs no upload; of any other, a normal one.
    if let Some(mount) = query_param(query, "mount") {
        if registry.store.size(&mount).is_some() {
            return Ok(blob_created(name, &mount));
        }
    }
    let id = registry
        .begin(name)
        .await
        .map_err(|e| session_error(e, ""))?;
    // With `digest`, the body is the whole blob (a monolithic upload).
    if let Some(digest) = query_param(query, "digest") {
        return finish_upload(registry, name, &id, Some(&format!("digest={digest}")), body).await;
    }
    Ok(upload_headers(name, &id, 0, StatusCode::ACCEPTED))
}

/// Appends `body` to `upload`; on failure the upload is dropped.
async fn append(upload: &mut Upload, body: Body) -> Result<(), ApiError> {
    let mut body = body;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            error(
                StatusCode::BAD_REQUEST,
                "BLOB_UPLOAD_INVALID",
                format!("reading the upload: {e}"),
            )
        })?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        if upload.writer.size() + data.len() as u64 > UPLOAD_BYTES_MAX {
            return Err(error(
                StatusCode::BAD_REQUEST,
                "SIZE_INVALID",
                format!("a blob may have at most {UPLOAD_BYTES_MAX} bytes"),
            ));
        }
        upload.writer.write(&data).await.map_err(|e| {
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "BLOB_UPLOAD_INVALID",
                format!("storing the upload: {e}"),
            )
        })?;
    }
    Ok(())
}

async fn patch_upload(registry: &Arc<Registry>, name: &str, id: &str, body: Body) -> Answer {
    let mut upload = registry.take(name, id).map_err(|e| session_error(e, id))?;
    if let Err(e) = append(&mut upload, body).await {
        registry.end(id);
        upload.writer.discard().await;
        return Err(e);
    }
    let size = upload.writer.size();
    registry.put_back(id, upload);
    Ok(upload_headers(name, id, size, StatusCode::ACCEPTED))
}

async fn finish_upload(
    registry: &Arc<Registry>,
    name: &str,
    id: &str,
    query: Option<&str>,
    body: Body,
) -> Answer {
    let mut upload = registry.take(name, id).map_err(|e| session_error(e, id))?;
    let digest = query_param(query, "digest").unwrap_or_default();
    if let Err(m) = check_digest(&digest) {
        registry.put_back(id, upload);
        return Err(error(StatusCode::BAD_REQUEST, "DIGEST_INVALID", m));
    }
    if let Err(e) = append(&mut upload, body).await {
        registry.end(id);
        upload.writer.discard().await;
        return Err(e);
    }
    registry.end(id);
    match upload.writer.finish(&registry.store, &digest).await {
        Ok(_) => Ok(blob_created(name, &digest)),
        Err(e @ FinishError::DigestMismatch { .. }) => Err(error(
            StatusCode::BAD_REQUEST,
            "DIGEST_INVALID",
            e.to_string(),
        )),
        Err(e) => Err(error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "BLOB_UPLOAD_INVALID",
            e.to_string(),
        )),
    }
}

fn upload_status(registry: &Registry, name: &str, id: &str) -> Answer {
    let size = registry
        .upload_size(name, id)
        .map_err(|e| session_error(e, id))?;
    Ok(upload_headers(name, id, size, StatusCode::NO_CONTENT))
}

async fn cancel_upload(registry: &Registry, name: &str, id: &str) -> Answer {
    let upload = registry.take(name, id).map_err(|e| session_error(e, id))?;
    registry.end(id);
    upload.writer.discard().await;
    Ok(empty(StatusCode::NO_CONTENT, &[]))
}
