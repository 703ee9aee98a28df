//! A local stand-in for a Kubernetes API server, over real HTTP, for Paved's
//! browser tests, demo and benchmarks.
//!
//! It serves discovery and the built-in kinds in [`kinds::KINDS`] at the
//! real paths: list (label and field selectors), get, server-side apply
//! (field managers, conflicts, `force`, `dryRun`), merge patch, create,
//! replace and delete, answering with the real API server's `Status`
//! bodies. Workloads are "rolled out" at once ([`controllers`]), an
//! optional admission webhook is called on every write, and pod logs come
//! from files. Watches, scheduling and full SSA semantics are out of scope
//! (see the README).
//!
//! Test hooks live under `/_stub/`: `GET /_stub/requests` (counts per
//! `METHOD path`), `POST /_stub/requests/reset`, and `POST /_stub/objects`
//! (place an object as-is).

pub mod controllers;
pub mod fields;
pub mod kinds;
pub mod select;
pub mod status;
pub mod store;
pub mod validate;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::net::TcpListener;

use crate::kinds::{by_kind, by_resource, by_type, Kind};
use crate::select::{FieldSelector, LabelSelector};
use crate::status::{
    already_exists, bad_request, failure, internal, method_not_allowed, modified, no_such_resource,
    not_found, quote, unauthorized, unsupported_media_type, warning_header, ApiError,
};
use crate::store::{meta, now, Store};

/// The webhook's name in admission messages.
pub const WEBHOOK_NAME: &str = "paved.dev";

/// How the stub is started.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// When set, every request must carry `Authorization: Bearer <token>`.
    pub token: Option<String>,
    /// Container logs: `<dir>/<namespace>/<pod>/<container>[.previous].log`.
    pub logs: Option<PathBuf>,
    /// A validating admission webhook called on every create and update.
    pub admission_webhook: Option<String>,
    /// The bearer token sent to the webhook.
    pub admission_token: Option<String>,
}

/// The stand-in: cheap to clone, all clones share one cluster.
#[derive(Clone)]
pub struct Stub {
    inner: Arc<Inner>,
}

struct Inner {
    config: Config,
    store: Mutex<Store>,
    requests: Mutex<BTreeMap<String, u64>>,
    http: reqwest::Client,
}

/// Where a request points: kind, namespace (empty for cluster scope), name
/// and subresource.
#[derive(Debug, Clone)]
struct Target {
    kind: &'static Kind,
    ns: String,
    name: String,
    sub: Option<String>,
}

type Params = HashMap<String, String>;

fn respond(code: StatusCode, body: &Value, warnings: &[String]) -> Response {
    let mut response = (
        code,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response();
    for w in warnings.iter().filter_map(|w| warning_header(w)) {
        response.headers_mut().append(header::WARNING, w);
    }
    response
}

/// RFC 7396 JSON merge patch.
fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(p) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = json!({});
    }
    if let Some(t) = target.as_object_mut() {
        for (k, v) in p {
            if v.is_null() {
                t.shift_remove(k);
            } else {
                merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
    }
}

/// What a generation counts: everything but metadata and status.
fn generation_content(obj: &Value) -> Value {
    let mut c = obj.clone();
    if let Some(m) = c.as_object_mut() {
        for k in ["apiVersion", "kind", "metadata", "status"] {
            m.shift_remove(k);
        }
    }
    c
}

/// `obj` without managedFields times, to tell a no-op write.
fn without_times(obj: &Value) -> Value {
    let mut c = obj.clone();
    for e in c["metadata"]["managedFields"]
        .as_array_mut()
        .into_iter()
        .flatten()
    {
        if let Some(e) = e.as_object_mut() {
            e.shift_remove("time");
        }
    }
    c
}

/// Defaults the API server would fill in that the stub models.
fn defaults(kind: &Kind, obj: &mut Value, creating: bool) {
    match kind.kind {
        "Deployment" | "StatefulSet" | "ReplicaSet" if obj["spec"]["replicas"].is_null() => {
            obj["spec"]["replicas"] = json!(1);
        }
        "Namespace" => {
            let name = meta(obj, "name").to_owned();
            obj["metadata"]["labels"]["kubernetes.io/metadata.name"] = json!(name);
            if creating {
                obj["spec"]["finalizers"] = json!(["kubernetes"]);
                obj["status"] = json!({"phase": "Active"});
            }
        }
        "Service" => {
            if obj["spec"]["type"].is_null() {
                obj["spec"]["type"] = json!("ClusterIP");
            }
            if obj["spec"]["clusterIP"].is_null() && obj["spec"]["type"] != "ExternalName" {
                let n = store::uid();
                let ip = format!(
                    "10.96.{}.{}",
                    u8::from_str_radix(&n[0..2], 16).unwrap_or(0),
                    u8::from_str_radix(&n[2..4], 16).unwrap_or(1)
                );
                obj["spec"]["clusterIP"] = json!(ip);
                obj["spec"]["clusterIPs"] = json!([ip]);
            }
        }
        "Pod" if creating && obj["status"].is_null() => {
            obj["status"] = json!({"phase": "Pending", "qosClass": "BestEffort"});
        }
        _ => {}
    }
}

impl Stub {
    /// An empty cluster (the four namespaces every cluster has).
    pub fn new(config: Config) -> Self {
        Self {
            inner: Arc::new(Inner {
                config,
                store: Mutex::new(Store::new()),
                requests: Mutex::new(BTreeMap::new()),
                http: reqwest::Client::new(),
            }),
        }
    }

    fn store(&self) -> MutexGuard<'_, Store> {
        self.inner
            .store
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs the controllers for a stored workload, and arms its progress
    /// deadline if it is not ready.
    fn reconcile(&self, store: &mut Store, kind: &Kind, obj: &Value) {
        let Some(secs) = controllers::reconcile(store, kind, obj) else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let stub = self.clone();
        let (ns, name) = (
            meta(obj, "namespace").to_owned(),
            meta(obj, "name").to_owned(),
        );
        let generation = obj["metadata"]["generation"].clone();
        runtime.spawn(async move {
            tokio::time::sleep(Duration::from_secs(secs)).await;
            controllers::deadline_passed(&mut stub.store(), &ns, &name, &generation);
        });
    }

    /// The axum router serving the API.
    pub fn router(&self) -> Router {
        Router::new().fallback(handle).with_state(self.clone())
    }

    /// One object, for in-process tests.
    pub fn get(&self, api_version: &str, kind: &str, ns: &str, name: &str) -> Option<Value> {
        let kind = by_type(api_version, kind)?;
        self.store().get(kind, ns, name).cloned()
    }

    /// Places an object as-is (status and managedFields included), without
    /// validation or admission; its namespace is created if missing. A
    /// Deployment or StatefulSet given without `status` is rolled out as if
    /// applied.
    pub fn upsert(&self, mut obj: Value) -> Result<Value, ApiError> {
        let api_version = obj["apiVersion"].as_str().unwrap_or_default().to_owned();
        let kind_name = obj["kind"].as_str().unwrap_or_default().to_owned();
        let kind = by_type(&api_version, &kind_name).ok_or_else(|| {
            bad_request(format!(
                "no kind \"{kind_name}\" is registered for version \"{api_version}\""
            ))
        })?;
        if meta(&obj, "name").is_empty() {
            return Err(bad_request("metadata.name is required"));
        }
        if obj["metadata"]["generation"].is_null() {
            obj["metadata"]["generation"] = json!(1);
        }
        let rollout = obj["status"].is_null();
        let mut store = self.store();
        let stored = store.put(kind, obj);
        if rollout {
            self.reconcile(&mut store, kind, &stored);
        }
        Ok(stored)
    }

    /// Loads every `*.yaml`, `*.yml` and `*.json` file under `dir` (multi-
    /// document YAML, `List`s unpacked) with [`Stub::upsert`]. Returns how
    /// many objects were loaded.
    pub fn load_fixtures(&self, dir: &Path) -> Result<usize, String> {
        let mut files = Vec::new();
        let mut dirs = vec![dir.to_path_buf()];
        while let Some(d) = dirs.pop() {
            let entries = std::fs::read_dir(&d).map_err(|e| format!("{}: {e}", d.display()))?;
            for entry in entries.flatten() {
                let path = entry.path();
                let ext = path
                    .extension()
                    .and_then(|e| e.to_str())
                    .unwrap_or_default();
                if path.is_dir() {
                    dirs.push(path);
                } else if matches!(ext, "yaml" | "yml" | "json") {
                    files.push(path);
                }
            }
        }
        files.sort();
        let mut count = 0;
        for file in files {
            let text =
                std::fs::read_to_string(&file).map_err(|e| format!("{}: {e}", file.display()))?;
            let docs: Vec<Value> = if file.extension().is_some_and(|e| e == "json") {
                vec![serde_json::from_str(&text).map_err(|e| format!("{}: {e}", file.display()))?]
            } else {
                serde_yaml::Deserializer::from_str(&text)
                    .map(Value::deserialize)
                    .collect::<Result<_, _>>()
                    .map_err(|e| format!("{}: {e}", file.display()))?
            };
            for doc in docs.into_iter().filter(|d| !d.is_null()) {
                let list_kind = doc["kind"].as_str().unwrap_or_default();
                let items = match doc["items"].as_array() {
                    Some(items) if list_kind.ends_with("List") => items.clone(),
                    _ => vec![doc.clone()],
                };
                for mut item in items {
                    // A `PodList` as the API server answers it: items without type.
                    if item["kind"].is_null() && list_kind.len() > "List".len() {
                        item["kind"] = json!(list_kind.trim_end_matches("List"));
                        item["apiVersion"] = doc["apiVersion"].clone();
                    }
                    self.upsert(item)
                        .map_err(|e| format!("{}: {}", file.display(), e.body["message"]))?;
                    count += 1;
                }
            }
        }
        Ok(count)
    }

    fn count(&self, method: &Method, path: &str) {
        let mut requests = self
            .inner
            .requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        *requests.entry(format!("{method} {path}")).or_default() += 1;
    }

    /// `/_stub/...`: request counts and object placement.
    fn control(&self, method: &Method, rest: &str, body: &Bytes) -> Response {
        let requests = || {
            self.inner
                .requests
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
        };
        let counts =
            |r: &BTreeMap<String, u64>| json!({"total": r.values().sum::<u64>(), "by_path": r});
        match (method.as_str(), rest) {
            ("GET", "requests") => respond(StatusCode::OK, &counts(&requests()), &[]),
            ("POST", "requests/reset") => {
                let mut r = requests();
                r.clear();
                respond(StatusCode::OK, &counts(&r), &[])
            }
            ("POST", "objects") => match serde_json::from_slice::<Value>(body) {
                Ok(obj) => match self.upsert(obj) {
                    Ok(stored) => respond(StatusCode::OK, &stored, &[]),
                    Err(e) => e.into_response(),
                },
                Err(e) => bad_request(format!("invalid JSON: {e}")).into_response(),
            },
            _ => no_such_resource().into_response(),
        }
    }

    async fn dispatch(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: &Bytes,
    ) -> Result<Response, ApiError> {
        let q: Params = Query::try_from_uri(uri)
            .map(|Query(q)| q)
            .unwrap_or_default();
        let segs: Vec<&str> = uri.path().split('/').filter(|s| !s.is_empty()).collect();
        let discovery = |doc: Option<Value>| {
            if method != Method::GET {
                return Err(method_not_allowed());
            }
            doc.map(|d| respond(StatusCode::OK, &d, &[]))
                .ok_or_else(no_such_resource)
        };
        match segs.as_slice() {
            ["version"] => discovery(Some(version())),
            ["healthz" | "livez" | "readyz"] => Ok("ok".into_response()),
            ["api"] => {
                let host = headers
                    .get(header::HOST)
                    .and_then(|h| h.to_str().ok())
                    .unwrap_or_default();
                discovery(Some(kinds::api_versions(host)))
            }
            ["apis"] => discovery(Some(kinds::api_group_list())),
            ["api", "v1"] => discovery(kinds::resource_list("", "v1")),
            ["apis", group] => discovery(kinds::api_group(group)),
            ["apis", group, version] => discovery(kinds::resource_list(group, version)),
            ["api", "v1", rest @ ..] => {
                self.resource(method, "", "v1", rest, &q, headers, body)
                    .await
            }
            ["apis", group, version, rest @ ..] => {
                self.resource(method, group, version, rest, &q, headers, body)
                    .await
            }
            _ => Err(no_such_resource()),
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn resource(
        &self,
        method: &Method,
        group: &str,
        version: &str,
        rest: &[&str],
        q: &Params,
        headers: &HeaderMap,
        body: &Bytes,
    ) -> Result<Response, ApiError> {
        // `/namespaces/{ns}/{plural}/...` is namespaced; `/namespaces/{name}[/status]` is the Namespace.
        let (ns, rest) = match rest {
            ["namespaces", ns, sub, ..] if !matches!(*sub, "status" | "finalize") => {
                (Some(*ns), &rest[2..])
            }
            _ => (None, rest),
        };
        let (plural, name, sub) = match rest {
            [p] => (*p, None, None),
            [p, n] => (*p, Some(*n), None),
            [p, n, s] => (*p, Some(*n), Some(*s)),
            _ => return Err(no_such_resource()),
        };
        let kind = by_resource(group, version, plural).ok_or_else(no_such_resource)?;
        if (ns.is_some() && !kind.namespaced) || (kind.namespaced && ns.is_none() && name.is_some())
        {
            return Err(no_such_resource());
        }
        let sub_ok = match sub {
            None => true,
            Some("status") => kind.status,
            Some("log") => kind.kind == "Pod" && *method == Method::GET,
            Some(_) => false,
        };
        if !sub_ok {
            return Err(no_such_resource());
        }
        let t = Target {
            kind,
            ns: ns.unwrap_or_default().to_owned(),
            name: name.unwrap_or_default().to_owned(),
            sub: sub.map(str::to_owned),
        };
        let dry_run = q.get("dryRun").is_some_and(|d| d == "All");
        match (method.as_str(), name.is_some()) {
            ("GET", false) if q.get("watch").is_some_and(|w| w == "true" || w == "1") => {
                Err(failure(
                    405,
                    "MethodNotAllowed",
                    "the kube stub does not serve watches; list instead",
                    Some(json!({})),
                ))
            }
            ("GET", false) => self.list(kind, ns, q),
            ("GET", true) if sub.is_some_and(|s| s == "log") => self.logs(&t, q),
            ("GET", true) => {
                let obj = self.store().get(kind, &t.ns, &t.name).cloned();
                obj.map(|o| respond(StatusCode::OK, &o, &[]))
                    .ok_or_else(|| not_found(kind, &t.name))
            }
            ("PATCH", true) => self.patch(&t, q, headers, body, dry_run).await,
            ("DELETE", true) => self.delete(&t, dry_run),
            _ => Err(method_not_allowed()),
        }
    }

    fn list(&self, kind: &Kind, ns: Option<&str>, q: &Params) -> Result<Response, ApiError> {
        let labels = LabelSelector::parse(q.get("labelSelector").map_or("", String::as_str))?;
        let fields =
            FieldSelector::parse(q.get("fieldSelector").map_or("", String::as_str), kind.kind)?;
        let store = self.store();
        let items: Vec<Value> = store
            .list(kind, ns)
            .filter(|o| labels.matches(&o["metadata"]["labels"]) && fields.matches(o))
            .cloned()
            .collect();
        let list = json!({
            "apiVersion": kind.api_version(),
            "kind": format!("{}List", kind.kind),
            "metadata": {"resourceVersion": store.resource_version().to_string()},
            "items": items,
        });
        Ok(respond(StatusCode::OK, &list, &[]))
    }

    fn delete(&self, t: &Target, dry_run: bool) -> Result<Response, ApiError> {
        let mut store = self.store();
        let obj = store
            .get(t.kind, &t.ns, &t.name)
            .cloned()
            .ok_or_else(|| not_found(t.kind, &t.name))?;
        if !dry_run {
            store.delete(t.kind, &t.ns, &t.name);
        }
        let mut details = json!({"name": t.name});
        if !t.kind.group.is_empty() {
            details["group"] = json!(t.kind.group);
        }
        details["kind"] = json!(t.kind.plural);
        details["uid"] = json!(meta(&obj, "uid"));
        let status = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details});
        Ok(respond(StatusCode::OK, &status, &[]))
    }

    /// The manager of a non-apply write: `fieldManager`, else the User-Agent's
    /// program name, as the API server defaults it.
    fn updater(q: &Params, headers: &HeaderMap) -> String {
        q.get("fieldManager")
            .filter(|m| !m.is_empty())
            .cloned()
            .or_else(|| {
                let ua = headers.get(header::USER_AGENT)?.to_str().ok()?;
                ua.split('/')
                    .next()
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
            })
            .unwrap_or_else(|| "unknown".to_owned())
    }

    fn check_namespace(kind: &Kind, obj: &Value, ns: &str) -> Result<(), ApiError> {
        let given = meta(obj, "namespace");
        if kind.namespaced && !given.is_empty() && given != ns {
            return Err(bad_request(format!(
                "the namespace of the object ({given}) does not match the namespace on the request ({ns})"
            )));
        }
        Ok(())
    }

    async fn patch(
        &self,
        t: &Target,
        q: &Params,
        headers: &HeaderMap,
        body: &Bytes,
        dry_run: bool,
    ) -> Result<Response, ApiError> {
        let content_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let content_type = content_type.split(';').next().unwrap_or_default().trim();
        let options_invalid = |field: &str, reason: &str, message: &str| {
            let causes = json!([{"reason": reason, "message": message, "field": field}]);
            failure(
                422,
                "Invalid",
                format!("PatchOptions.meta.k8s.io \"\" is invalid: {field}: {message}"),
                Some(json!({"group": "meta.k8s.io", "kind": "PatchOptions", "causes": causes})),
            )
        };
        let force = q.get("force").is_some_and(|f| f == "true");
        match content_type {
            "application/apply-patch+yaml" => {
                let manager = q.get("fieldManager").cloned().unwrap_or_default();
                if manager.is_empty() {
                    return Err(options_invalid(
                        "fieldManager",
                        "FieldValueRequired",
                        "Required value: is required for apply patch",
                    ));
                }
                let applied: Value = serde_yaml::from_slice(body)
                    .map_err(|e| bad_request(format!("error decoding YAML: {e}")))?;
                if !applied.is_object() {
                    return Err(bad_request(
                        "error decoding YAML: the object provided is not a map",
                    ));
                }
                let av = applied["apiVersion"].as_str().unwrap_or_default();
                if av != t.kind.api_version() {
                    return Err(bad_request(format!(
                        "Incorrect version specified in apply patch. Specified patch version: {av}, expected: {}",
                        t.kind.api_version()
                    )));
                }
                let k = applied["kind"].as_str().unwrap_or_default();
                if k != t.kind.kind {
                    return Err(bad_request(format!(
                        "the kind in the data ({k}) does not match the expected kind ({})",
                        t.kind.kind
                    )));
                }
                let given = meta(&applied, "name");
                if given != t.name {
                    return Err(bad_request(format!(
                        "the name of the object ({given}) does not match the name on the URL ({})",
                        t.name
                    )));
                }
                Self::check_namespace(t.kind, &applied, &t.ns)?;
                if !applied["metadata"]["managedFields"].is_null() {
                    return Err(bad_request("metadata.managedFields must be nil"));
                }
                let old = self.store().get(t.kind, &t.ns, &t.name).cloned();
                let mut new = match (&old, &t.sub) {
                    (Some(old), _) => old.clone(),
                    (None, Some(_)) => return Err(not_found(t.kind, &t.name)),
                    (None, None) => json!({
                        "apiVersion": t.kind.api_version(),
                        "kind": t.kind.kind,
                        "metadata": {"name": t.name, "namespace": t.ns},
                    }),
                };
                if t.sub.is_some() {
                    new["status"] = applied["status"].clone();
                } else {
                    fields::apply(
                        &mut new,
                        &applied,
                        &manager,
                        &t.kind.api_version(),
                        force,
                        &now(),
                    )
                    .map_err(|c| fields::conflict_error(&c))?;
                }
                let mut options = json!({"apiVersion": "meta.k8s.io/v1", "fieldManager": manager});
                if old.is_none() {
                    options["kind"] = json!("CreateOptions");
                } else {
                    options["kind"] = json!("PatchOptions");
                    if force {
                        options["force"] = json!(true);
                    }
                }
                self.commit(t, old, new, dry_run, options).await
            }
            "application/merge-patch+json" | "application/strategic-merge-patch+json" => {
                if q.contains_key("force") {
                    return Err(options_invalid(
                        "force",
                        "FieldValueForbidden",
                        "Forbidden: may not be specified for non-apply patch",
                    ));
                }
                let patch: Value = serde_json::from_slice(body)
                    .map_err(|e| bad_request(format!("error decoding JSON: {e}")))?;
                let old = self
                    .store()
                    .get(t.kind, &t.ns, &t.name)
                    .cloned()
                    .ok_or_else(|| not_found(t.kind, &t.name))?;
                let mut new = old.clone();
                merge_patch(&mut new, &patch);
                let given = meta(&new, "name");
                if given != t.name {
                    return Err(bad_request(format!(
                        "the name of the object ({given}) does not match the name on the URL ({})",
                        t.name
                    )));
                }
                let manager = Self::updater(q, headers);
                if t.sub.is_some() {
                    let status = new["status"].clone();
                    new = old.clone();
                    new["status"] = status;
                } else {
                    if t.kind.status {
                        new["status"] = old["status"].clone();
                    }
                    fields::update(
                        Some(&old),
                        &mut new,
                        &manager,
                        &t.kind.api_version(),
                        &now(),
                    );
                }
                let options = json!({"kind": "PatchOptions", "apiVersion": "meta.k8s.io/v1", "fieldManager": manager});
                self.commit(t, Some(old), new, dry_run, options).await
            }
            other => Err(unsupported_media_type(other)),
        }
    }

    /// The end of every write: server-set fields, defaults, validation,
    /// admission, then (unless a dry run or a no-op) the store and the
    /// controllers.
    async fn commit(
        &self,
        t: &Target,
        old: Option<Value>,
        mut new: Value,
        dry_run: bool,
        mut options: Value,
    ) -> Result<Response, ApiError> {
        let kind = t.kind;
        new["apiVersion"] = json!(kind.api_version());
        new["kind"] = json!(kind.kind);
        new["metadata"]["name"] = json!(t.name);
        if kind.namespaced {
            new["metadata"]["namespace"] = json!(t.ns);
        } else if let Some(m) = new["metadata"].as_object_mut() {
            m.shift_remove("namespace");
        }
        match &old {
            Some(old) => {
                for f in ["uid", "creationTimestamp", "resourceVersion"] {
                    new["metadata"][f] = old["metadata"][f].clone();
                }
                let generation = old["metadata"]["generation"].as_i64().unwrap_or(1);
                let changed = generation_content(old) != generation_content(&new);
                new["metadata"]["generation"] = json!(generation + i64::from(changed));
            }
            None => {
                new["metadata"]["uid"] = json!(store::uid());
                new["metadata"]["creationTimestamp"] = json!(now());
                new["metadata"]["generation"] = json!(1);
                if let Some(m) = new["metadata"].as_object_mut() {
                    m.shift_remove("resourceVersion");
                }
            }
        }
        defaults(kind, &mut new, old.is_none());
        validate::validate(kind, &new)?;
        let ns_kind = by_kind("Namespace").ok_or_else(no_such_resource)?;
        if kind.namespaced && self.store().get(ns_kind, "", &t.ns).is_none() {
            return Err(not_found(ns_kind, &t.ns));
        }
        if dry_run {
            options["dryRun"] = json!(["All"]);
        }
        let operation = if old.is_some() { "UPDATE" } else { "CREATE" };
        let warnings = self
            .admit(t, old.as_ref(), &new, dry_run, operation, options)
            .await?;

        let code = if old.is_some() {
            StatusCode::OK
        } else {
            StatusCode::CREATED
        };
        if let Some(old) = old
            .as_ref()
            .filter(|old| without_times(old) == without_times(&new))
        {
            return Ok(respond(StatusCode::OK, old, &warnings));
        }
        if dry_run {
            return Ok(respond(code, &new, &warnings));
        }
        let mut store = self.store();
        let current = store.get(kind, &t.ns, &t.name);
        match (&old, current) {
            (None, Some(_)) => return Err(already_exists(kind, &t.name)),
            (Some(_), None) => return Err(not_found(kind, &t.name)),
            (Some(old), Some(current))
                if current["metadata"]["resourceVersion"] != old["metadata"]["resourceVersion"] =>
            {
                return Err(modified(kind, &t.name));
            }
            _ => {}
        }
        let stored = store.put(kind, new);
        if t.sub.is_none() {
            self.reconcile(&mut store, kind, &stored);
        }
        Ok(respond(code, &stored, &warnings))
    }

    /// Calls the admission webhook, if any: its warnings, or the denial.
    async fn admit(
        &self,
        t: &Target,
        old: Option<&Value>,
        new: &Value,
        dry_run: bool,
        operation: &str,
        options: Value,
    ) -> Result<Vec<String>, ApiError> {
        let Some(url) = &self.inner.config.admission_webhook else {
            return Ok(Vec::new());
        };
        let kind = t.kind;
        let uid = store::uid();
        let gvk = json!({"group": kind.group, "version": kind.version, "kind": kind.kind});
        let gvr = json!({"group": kind.group, "version": kind.version, "resource": kind.plural});
        let mut request = json!({
            "uid": uid,
            "kind": gvk,
            "resource": gvr,
            "requestKind": gvk,
            "requestResource": gvr,
            "name": t.name,
        });
        if let Some(sub) = &t.sub {
            request["subResource"] = json!(sub);
            request["requestSubResource"] = json!(sub);
        }
        if kind.namespaced {
            request["namespace"] = json!(t.ns);
        }
        request["operation"] = json!(operation);
        request["userInfo"] = json!({"username": "paved", "groups": ["system:authenticated"]});
        request["object"] = new.clone();
        request["oldObject"] = old.cloned().unwrap_or(Value::Null);
        request["dryRun"] = json!(dry_run);
        request["options"] = options;
        let review = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request});

        let fail = |detail: String| {
            internal(&format!(
                "failed calling webhook \"{WEBHOOK_NAME}\": {detail}"
            ))
        };
        let mut call = self
            .inner
            .http
            .post(url)
            .json(&review)
            .timeout(Duration::from_secs(10));
        if let Some(token) = &self.inner.config.admission_token {
            call = call.bearer_auth(token);
        }
        let reply = call
            .send()
            .await
            .map_err(|e| fail(format!("failed to call webhook: Post {}: {e}", quote(url))))?;
        if !reply.status().is_success() {
            return Err(fail(format!(
                "received invalid webhook response: the server responded with status {}",
                reply.status()
            )));
        }
        let reply: Value = reply
            .json()
            .await
            .map_err(|e| fail(format!("received invalid webhook response: {e}")))?;
        let response = &reply["response"];
        if response["uid"] != uid.as_str() {
            return Err(fail(format!(
                "expected response.uid={}, got {}",
                quote(&uid),
                response["uid"]
            )));
        }
        let warnings: Vec<String> = response["warnings"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|w| w.as_str().map(str::to_owned))
            .collect();
        if response["allowed"] == true {
            return Ok(warnings);
        }
        let result = &response["status"];
        let said = [&result["message"], &result["reason"]]
            .into_iter()
            .filter_map(Value::as_str)
            .find(|s| !s.is_empty());
        let message = match said {
            Some(m) => format!(
                "admission webhook {} denied the request: {m}",
                quote(WEBHOOK_NAME)
            ),
            None => format!(
                "admission webhook {} denied the request without explanation",
                quote(WEBHOOK_NAME)
            ),
        };
        let code = result["code"]
            .as_u64()
            .and_then(|c| u16::try_from(c).ok())
            .filter(|c| *c >= 400)
            .unwrap_or(403);
        let reason = result["reason"]
            .as_str()
            .filter(|r| !r.is_empty())
            .unwrap_or("Forbidden");
        let mut e = failure(code, reason, message, None);
        e.warnings = warnings;
        Err(e)
    }

    /// `GET .../pods/{pod}/log`: the container's log file, as the kubelet
    /// would serve it.
    fn logs(&self, t: &Target, q: &Params) -> Result<Response, ApiError> {
        let pod = self
            .store()
            .get(t.kind, &t.ns, &t.name)
            .cloned()
            .ok_or_else(|| not_found(t.kind, &t.name))?;
        let names = |field: &str| -> Vec<String> {
            pod["spec"][field]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|c| c["name"].as_str().map(str::to_owned))
                .collect()
        };
        let containers = names("containers");
        let container = match q.get("container").filter(|c| !c.is_empty()) {
            Some(c) => c.clone(),
            None if containers.len() == 1 => containers[0].clone(),
            None => {
                return Err(bad_request(format!(
                    "a container name must be specified for pod {}, choose one of: [{}]",
                    t.name,
                    containers.join(" ")
                )))
            }
        };
        if !containers.contains(&container) && !names("initContainers").contains(&container) {
            return Err(bad_request(format!(
                "container {container} is not valid for pod {}",
                t.name
            )));
        }
        let dir = self
            .inner
            .config
            .logs
            .as_ref()
            .map(|d| d.join(&t.ns).join(&t.name));
        let read = |file: String| {
            dir.as_ref()
                .and_then(|d| std::fs::read_to_string(d.join(file)).ok())
        };
        let text = if q.get("previous").is_some_and(|p| p == "true") {
            read(format!("{container}.previous.log")).ok_or_else(|| {
                bad_request(format!(
                    "previous terminated container {} in pod {} not found",
                    quote(&container),
                    quote(&t.name)
                ))
            })?
        } else {
            let status = pod["status"]["containerStatuses"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|s| s["name"] == container.as_str());
            if let Some(s) = status.filter(|s| {
                !s["state"]["waiting"].is_null() && s["lastState"]["terminated"].is_null()
            }) {
                let reason = match s["state"]["waiting"]["reason"]
                    .as_str()
                    .unwrap_or("ContainerCreating")
                {
                    "ImagePullBackOff" => "trying and failing to pull image",
                    "ErrImagePull" => "image can't be pulled",
                    other => other,
                };
                return Err(bad_request(format!(
                    "container {} in pod {} is waiting to start: {reason}",
                    quote(&container),
                    quote(&t.name)
                )));
            }
            read(format!("{container}.log")).unwrap_or_default()
        };
        let mut text = match q.get("tailLines").and_then(|n| n.parse::<usize>().ok()) {
            Some(n) => {
                let lines: Vec<&str> = text.lines().collect();
                let mut tail = lines[lines.len().saturating_sub(n)..].join("\n");
                if !tail.is_empty() && text.ends_with('\n') {
                    tail.push('\n');
                }
                tail
            }
            None => text,
        };
        if let Some(limit) = q.get("limitBytes").and_then(|n| n.parse::<usize>().ok()) {
            let mut end = limit.min(text.len());
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            text.truncate(end);
        }
        Ok((StatusCode::OK, [(header::CONTENT_TYPE, "text/plain")], text).into_response())
    }
}

async fn handle(
    State(stub): State<Stub>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(rest) = uri.path().strip_prefix("/_stub/") {
        return stub.control(&method, rest, &body);
    }
    stub.count(&method, uri.path());
    if let Some(token) = &stub.inner.config.token {
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if given != Some(token.as_str()) {
            return unauthorized().into_response();
        }
    }
    match stub.dispatch(&method, &uri, &headers, &body).await {
        Ok(response) => response,
        Err(e) => e.into_response(),
    }
}

/// `GET /version`.
pub fn version() -> Value {
    json!({
        "major": "1",
        "minor": "33",
        "emulationMajor": "1",
        "emulationMinor": "33",
        "minCompatibilityMajor": "1",
        "minCompatibilityMinor": "32",
        "gitVersion": "v1.33.0-paved-stub",
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2025-04-23T00:00:00Z",
        "goVersion": "go1.24.2",
        "compiler": "gc",
        "platform": "linux/amd64",
    })
}

/// A kubeconfig for the stub at `server` (`http://127.0.0.1:PORT`): cluster,
/// user (with the token, if any) and context all named `stub`.
pub fn kubeconfig(server: &str, token: Option<&str>) -> String {
    let user = match token {
        Some(t) => json!({"token": t}),
        None => json!({}),
    };
    let config = json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "stub", "cluster": {"server": server}}],
        "users": [{"name": "stub", "user": user}],
        "contexts": [{"name": "stub", "context": {"cluster": "stub", "user": "stub"}}],
        "current-context": "stub",
    });
    serde_yaml::to_string(&config).unwrap_or_default()
}

/// Serves `stub` on `listener` until the process ends.
pub async fn serve(listener: TcpListener, stub: Stub) {
    let _ = axum::serve(listener, stub.router()).await;
}

/// Serves `stub` on a free loopback port in the background; its address.
pub async fn spawn(stub: Stub) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a loopback port");
    let addr = listener.local_addr().expect("a bound address");
    tokio::spawn(serve(listener, stub));
    addr
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_patch_follows_rfc_7396() {
        let mut v = json!({"a": {"b": 1, "c": 2}, "d": [1]});
        merge_patch(&mut v, &json!({"a": {"b": null, "e": 3}, "d": [2]}));
        assert_eq!(v, json!({"a": {"c": 2, "e": 3}, "d": [2]}));
    }

    #[test]
    fn kubeconfig_has_one_context() {
        let text = kubeconfig("http://127.0.0.1:1", Some("t0k"));
        let v: Value = serde_yaml::from_str(&text).unwrap();
        assert_eq!(v["current-context"], "stub");
        assert_eq!(v["users"][0]["user"]["token"], "t0k");
        assert_eq!(v["clusters"][0]["cluster"]["server"], "http://127.0.0.1:1");
    }
}
