//! Field ownership, a simplified server-side apply.
//!
//! As on a real server, `metadata.managedFields` records which manager owns
//! which fields (`fieldsV1`), and the values live in the object itself. An
//! apply conflicts where another manager owns a field the applied
//! configuration sets to a different value than the live one. Simplified:
//! leaves are scalars, empty maps and arrays; arrays whose items all carry a
//! `name` are keyed by it (`containers[name="app"]`); every other array is
//! atomic. There is no schema: `selector` is not atomic, ports are keyed by
//! name rather than `containerPort`.

use std::collections::BTreeSet;

use serde_json::{json, Map, Value};

use crate::status::{failure, quote, ApiError};

/// One step of a field path.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Seg {
    /// A map key: `.replicas`.
    Field(String),
    /// An item of a keyed list, by its key fields as canonical JSON: `{"name":"app"}`.
    Key(String),
}

/// A path from the object's root.
pub type Path = Vec<Seg>;

/// `.spec.template.spec.containers[name="app"].image`, as structured-merge-diff prints it.
pub fn path_string(p: &[Seg]) -> String {
    let mut out = String::new();
    for seg in p {
        match seg {
            Seg::Field(f) => {
                out.push('.');
                out.push_str(f);
            }
            Seg::Key(key) => {
                let map: Map<String, Value> = serde_json::from_str(key).unwrap_or_default();
                let parts: Vec<String> = map.iter().map(|(k, v)| format!("{k}={v}")).collect();
                out.push_str(&format!("[{}]", parts.join(",")));
            }
        }
    }
    out
}

fn keyed(items: &[Value]) -> bool {
    !items.is_empty()
        && items
            .iter()
            .all(|i| i.get("name").is_some_and(Value::is_string))
}

fn key_of(item: &Value) -> String {
    json!({"name": item["name"]}).to_string()
}

/// Canonical form of a key object: keys sorted, compact.
fn canonical_key(key: &Value) -> String {
    let sorted: std::collections::BTreeMap<String, Value> = key
        .as_object()
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default();
    serde_json::to_string(&sorted).unwrap_or_default()
}

fn matches_key(item: &Value, key: &str) -> bool {
    let key: Map<String, Value> = serde_json::from_str(key).unwrap_or_default();
    !key.is_empty() && key.iter().all(|(k, v)| item.get(k) == Some(v))
}

fn flatten(prefix: &mut Path, v: &Value, out: &mut Vec<(Path, Value)>) {
    match v {
        Value::Null => {}
        Value::Object(m) if !m.is_empty() => {
            for (k, x) in m {
                prefix.push(Seg::Field(k.clone()));
                flatten(prefix, x, out);
                prefix.pop();
            }
        }
        Value::Array(items) if keyed(items) => {
            for item in items {
                prefix.push(Seg::Key(key_of(item)));
                flatten(prefix, item, out);
                prefix.pop();
            }
        }
        _ => out.push((prefix.clone(), v.clone())),
    }
}

/// The managed leaves of an object: all but `apiVersion`, `kind`, `status`
/// and `metadata` other than labels and annotations.
pub fn leaves(obj: &Value) -> Vec<(Path, Value)> {
    let mut out = Vec::new();
    let Some(map) = obj.as_object() else {
        return out;
    };
    for (k, v) in map {
        let mut prefix = vec![Seg::Field(k.clone())];
        match k.as_str() {
            "apiVersion" | "kind" | "status" => {}
            "metadata" => {
                for field in ["labels", "annotations"] {
                    prefix.push(Seg::Field(field.to_owned()));
                    flatten(&mut prefix, &v[field], &mut out);
                    prefix.pop();
                }
            }
            _ => flatten(&mut prefix, v, &mut out),
        }
    }
    out
}

/// The value at `p`, if any.
pub fn get<'a>(obj: &'a Value, p: &[Seg]) -> Option<&'a Value> {
    p.iter().try_fold(obj, |at, seg| match seg {
        Seg::Field(f) => at.get(f),
        Seg::Key(key) => at.as_array()?.iter().find(|i| matches_key(i, key)),
    })
}

/// Sets the value at `p`, creating maps and keyed items on the way. An empty
/// map does not overwrite a map that is there.
pub fn set(obj: &mut Value, p: &[Seg], v: Value) {
    let Some((first, rest)) = p.split_first() else {
        return;
    };
    let child = match first {
        Seg::Field(f) => {
            if !obj.is_object() {
                *obj = json!({});
            }
            let Some(map) = obj.as_object_mut() else {
                return;
            };
            map.entry(f.clone()).or_insert(Value::Null)
        }
        Seg::Key(key) => {
            if !obj.is_array() {
                *obj = json!([]);
            }
            let Some(items) = obj.as_array_mut() else {
                return;
            };
            let at = match items.iter().position(|i| matches_key(i, key)) {
                Some(at) => at,
                None => {
                    items.push(serde_json::from_str(key).unwrap_or_else(|_| json!({})));
                    items.len() - 1
                }
            };
            &mut items[at]
        }
    };
    if !rest.is_empty() {
        set(child, rest, v);
    } else if !(v.as_object().is_some_and(Map::is_empty) && child.is_object()) {
        *child = v;
    }
}

/// Removes the value at `p`, if there.
pub fn remove(obj: &mut Value, p: &[Seg]) {
    match p {
        [] => {}
        [Seg::Field(f)] => {
            if let Some(map) = obj.as_object_mut() {
                map.shift_remove(f);
            }
        }
        [Seg::Key(key)] => {
            if let Some(items) = obj.as_array_mut() {
                items.retain(|i| !matches_key(i, key));
            }
        }
        [first, rest @ ..] => {
            let child = match first {
                Seg::Field(f) => obj.get_mut(f),
                Seg::Key(key) => obj
                    .as_array_mut()
                    .and_then(|items| items.iter_mut().find(|i| matches_key(i, key))),
            };
            if let Some(child) = child {
                remove(child, rest);
            }
        }
    }
}

/// One `managedFields` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manager {
    /// The field manager's name.
    pub manager: String,
    /// `Apply` or `Update`.
    pub operation: String,
    /// The API version it wrote with.
    pub api_version: String,
    /// When it last wrote.
    pub time: String,
    /// `status` for status writes, else empty.
    pub subresource: String,
    /// The leaves it owns.
    pub fields: BTreeSet<Path>,
}

impl Manager {
    fn new(manager: &str, operation: &str, api_version: &str) -> Self {
        Self {
            manager: manager.to_owned(),
            operation: operation.to_owned(),
            api_version: api_version.to_owned(),
            time: String::new(),
            subresource: String::new(),
            fields: BTreeSet::new(),
        }
    }

    /// Whether two entries are the same manager: appliers by name; updaters
    /// by name and API version (as `BuildManagerIdentifier` has it).
    fn same(&self, other: &Self) -> bool {
        self.manager == other.manager
            && self.operation == other.operation
            && self.subresource == other.subresource
            && (self.operation == "Apply" || self.api_version == other.api_version)
    }

    /// How conflict messages name the manager (`printManager`).
    fn printed(&self) -> String {
        let mut out = quote(&self.manager);
        if !self.subresource.is_empty() {
            out.push_str(&format!(" with subresource {}", quote(&self.subresource)));
        }
        if self.operation == "Update" {
            out.push_str(&format!(" using {}", self.api_version));
        }
        out
    }

    /// The owned path that covers `p`: `p` itself or an ancestor owned atomically.
    fn owning(&self, p: &[Seg]) -> Option<Path> {
        (1..=p.len())
            .map(|n| &p[..n])
            .find(|q| self.fields.contains(*q))
            .map(<[Seg]>::to_vec)
    }
}

fn parse_fields_v1(node: &Value, prefix: &mut Path, out: &mut BTreeSet<Path>) {
    let Some(map) = node.as_object() else { return };
    let children: Vec<(&String, &Value)> = map.iter().filter(|(k, _)| *k != ".").collect();
    if children.is_empty() {
        if !prefix.is_empty() {
            out.insert(prefix.clone());
        }
        return;
    }
    for (k, v) in children {
        let seg = if let Some(f) = k.strip_prefix("f:") {
            Seg::Field(f.to_owned())
        } else if let Some(key) = k.strip_prefix("k:") {
            match serde_json::from_str::<Value>(key) {
                Ok(key) => Seg::Key(canonical_key(&key)),
                Err(_) => continue,
            }
        } else {
            // `v:` (set members) and `i:` (positions): owned as the whole list.
            out.insert(prefix.clone());
            continue;
        };
        prefix.push(seg);
        parse_fields_v1(v, prefix, out);
        prefix.pop();
    }
}

fn fields_v1(paths: &BTreeSet<Path>) -> Value {
    let mut root = Map::new();
    for p in paths {
        let mut at = &mut root;
        for seg in p {
            let (key, item) = match seg {
                Seg::Field(f) => (format!("f:{f}"), false),
                Seg::Key(k) => (format!("k:{k}"), true),
            };
            let node = at.entry(key).or_insert_with(|| json!({}));
            if item {
                node.as_object_mut()
                    .map(|m| m.entry(".").or_insert_with(|| json!({})));
            }
            let Some(next) = node.as_object_mut() else {
                break;
            };
            at = next;
        }
    }
    Value::Object(root)
}

/// The entries of `metadata.managedFields`.
pub fn read_managers(obj: &Value) -> Vec<Manager> {
    let Some(entries) = obj["metadata"]["managedFields"].as_array() else {
        return Vec::new();
    };
    entries
        .iter()
        .map(|e| {
            let s = |k: &str| e[k].as_str().unwrap_or_default().to_owned();
            let mut fields = BTreeSet::new();
            parse_fields_v1(&e["fieldsV1"], &mut Vec::new(), &mut fields);
            Manager {
                manager: s("manager"),
                operation: s("operation"),
                api_version: s("apiVersion"),
                time: s("time"),
                subresource: s("subresource"),
                fields,
            }
        })
        .collect()
}

/// Writes `metadata.managedFields`, dropping managers that own nothing.
pub fn write_managers(obj: &mut Value, managers: &[Manager]) {
    let entries: Vec<Value> = managers
        .iter()
        .filter(|m| !m.fields.is_empty())
        .map(|m| {
            let mut e = json!({
                "manager": m.manager,
                "operation": m.operation,
                "apiVersion": m.api_version,
                "time": m.time,
                "fieldsType": "FieldsV1",
                "fieldsV1": fields_v1(&m.fields),
            });
            if !m.subresource.is_empty() {
                e["subresource"] = json!(m.subresource);
            }
            e
        })
        .collect();
    if entries.is_empty() {
        if let Some(meta) = obj["metadata"].as_object_mut() {
            meta.shift_remove("managedFields");
        }
    } else {
        obj["metadata"]["managedFields"] = Value::Array(entries);
    }
}

/// A field another manager owns with a different value.
#[derive(Debug, Clone)]
pub struct Conflict {
    /// The other manager, printed.
    pub manager: String,
    /// The field.
    pub path: Path,
}

/// 409 `Apply failed with N conflict(s): ...`, worded as the API server does.
pub fn conflict_error(conflicts: &[Conflict]) -> ApiError {
    let causes: Vec<Value> = conflicts
        .iter()
        .map(|c| {
            json!({
                "reason": "FieldManagerConflict",
                "message": format!("conflict with {}", c.manager),
                "field": path_string(&c.path),
            })
        })
        .collect();
    let message = if let [c] = conflicts {
        format!(
            "Apply failed with 1 conflict: conflict with {}: {}",
            c.manager,
            path_string(&c.path)
        )
    } else {
        let mut managers: Vec<&str> = conflicts.iter().map(|c| c.manager.as_str()).collect();
        managers.sort_unstable();
        managers.dedup();
        let mut lines = Vec::new();
        for m in managers {
            lines.push(format!("conflicts with {m}:"));
            for c in conflicts.iter().filter(|c| c.manager == m) {
                lines.push(format!("- {}", path_string(&c.path)));
            }
        }
        format!(
            "Apply failed with {} conflicts: {}",
            conflicts.len(),
            lines.join("\n")
        )
    };
    failure(409, "Conflict", message, Some(json!({"causes": causes})))
}

/// Applies `body` as `manager` onto `obj` (the live object, or a skeleton
/// for a create): checks conflicts, hands forced fields over, drops fields
/// the manager no longer applies and nobody else owns, sets the applied ones.
pub fn apply(
    obj: &mut Value,
    body: &Value,
    manager: &str,
    api_version: &str,
    force: bool,
    now: &str,
) -> Result<(), Vec<Conflict>> {
    let mut managers = read_managers(obj);
    let mut me = Manager::new(manager, "Apply", api_version);
    // A manager keeps its place in the list, so a repeated apply is a no-op.
    let at = managers.iter().position(|m| m.same(&me));
    let previous = at.map(|at| managers.remove(at).fields).unwrap_or_default();
    let applied = leaves(body);

    let mut conflicts = Vec::new();
    let mut taken: Vec<(usize, Path)> = Vec::new();
    for (i, other) in managers.iter().enumerate() {
        for (p, v) in &applied {
            let Some(owned) = other.owning(p) else {
                continue;
            };
            if get(obj, p).is_some_and(|live| live != v) {
                conflicts.push(Conflict {
                    manager: other.printed(),
                    path: p.clone(),
                });
                taken.push((i, owned));
            }
        }
    }
    if !conflicts.is_empty() && !force {
        return Err(conflicts);
    }
    for (i, owned) in taken {
        managers[i].fields.remove(&owned);
    }

    me.fields = applied.iter().map(|(p, _)| p.clone()).collect();
    for gone in previous.difference(&me.fields) {
        if !managers.iter().any(|m| m.owning(gone).is_some()) {
            remove(obj, gone);
        }
    }
    for (p, v) in applied {
        set(obj, &p, v);
    }
    me.time = now.to_owned();
    managers.insert(at.unwrap_or(managers.len()), me);
    write_managers(obj, &managers);
    Ok(())
}

/// Records a non-apply write (`Update`): `manager` takes every leaf it
/// changed from the others; removed leaves leave every manager.
pub fn update(old: Option<&Value>, new: &mut Value, manager: &str, api_version: &str, now: &str) {
    let before = old.map(leaves).unwrap_or_default();
    let after = leaves(new);
    let changed: BTreeSet<Path> = after
        .iter()
        .filter(|(p, v)| before.iter().find(|(q, _)| q == p).map(|(_, w)| w) != Some(v))
        .map(|(p, _)| p.clone())
        .collect();
    let present: BTreeSet<&Path> = after.iter().map(|(p, _)| p).collect();
    let removed: BTreeSet<Path> = before
        .iter()
        .filter(|(p, _)| !present.contains(p))
        .map(|(p, _)| p.clone())
        .collect();
    let mut managers = old.map(read_managers).unwrap_or_default();
    let mut me = Manager::new(manager, "Update", api_version);
    let at = managers.iter().position(|m| m.same(&me));
    if let Some(at) = at {
        me = managers.remove(at);
    }
    for m in &mut managers {
        m.fields
            .retain(|q| !changed.contains(q) && !removed.contains(q));
    }
    if !changed.is_empty() || !removed.is_empty() {
        me.fields.extend(changed);
        me.fields.retain(|q| !removed.contains(q));
        me.time = now.to_owned();
    }
    managers.insert(at.unwrap_or(managers.len()), me);
    write_managers(new, &managers);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deploy(replicas: u64, image: &str) -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "labels": {"app": "web"}},
            "spec": {"replicas": replicas, "template": {"spec": {"containers": [{"name": "app", "image": image}]}}},
        })
    }

    fn ap(obj: &mut Value, body: &Value, manager: &str, force: bool) -> Result<(), Vec<Conflict>> {
        apply(obj, body, manager, "apps/v1", force, "t")
    }

    fn managers(obj: &Value) -> Vec<String> {
        read_managers(obj).into_iter().map(|m| m.manager).collect()
    }

    #[test]
    fn paths_print_like_structured_merge_diff() {
        let printed: Vec<String> = leaves(&deploy(2, "nginx"))
            .iter()
            .map(|(p, _)| path_string(p))
            .collect();
        assert_eq!(
            printed,
            [
                ".metadata.labels.app",
                ".spec.replicas",
                ".spec.template.spec.containers[name=\"app\"].name",
                ".spec.template.spec.containers[name=\"app\"].image",
            ]
        );
    }

    #[test]
    fn fields_v1_round_trips() {
        let mut obj = json!({"metadata": {}});
        ap(&mut obj, &deploy(2, "nginx"), "paved", false).unwrap();
        let fv = &obj["metadata"]["managedFields"][0]["fieldsV1"];
        let containers = &fv["f:spec"]["f:template"]["f:spec"]["f:containers"];
        assert_eq!(containers["k:{\"name\":\"app\"}"]["."], json!({}));
        assert_eq!(read_managers(&obj)[0].fields.len(), 4);
    }

    #[test]
    fn conflicts_force_and_shared_ownership() {
        let mut obj = json!({"metadata": {}});
        ap(&mut obj, &deploy(2, "nginx"), "paved", false).unwrap();
        // Same values: no conflict, shared ownership; managers keep their places.
        ap(&mut obj, &deploy(2, "nginx"), "other", false).unwrap();
        ap(&mut obj, &deploy(2, "nginx"), "paved", false).unwrap();
        assert_eq!(managers(&obj), ["paved", "other"]);
        let err = ap(&mut obj.clone(), &deploy(3, "nginx"), "other", false).unwrap_err();
        assert_eq!(err.len(), 1);
        assert_eq!(err[0].manager, "\"paved\"");
        assert_eq!(path_string(&err[0].path), ".spec.replicas");
        ap(&mut obj, &deploy(3, "nginx"), "other", true).unwrap();
        assert_eq!(obj["spec"]["replicas"], 3);
        let replicas = vec![Seg::Field("spec".into()), Seg::Field("replicas".into())];
        assert!(!read_managers(&obj)[0].fields.contains(&replicas));
        // paved stops applying its label and replicas: other still owns them.
        let mut without = deploy(2, "nginx");
        without["metadata"]
            .as_object_mut()
            .unwrap()
            .remove("labels");
        without["spec"].as_object_mut().unwrap().remove("replicas");
        ap(&mut obj, &without, "paved", false).unwrap();
        assert_eq!(obj["metadata"]["labels"]["app"], "web");
        assert_eq!(obj["spec"]["replicas"], 3);
    }

    #[test]
    fn unapplied_fields_are_removed() {
        let mut obj = json!({"metadata": {}});
        let mut paused = deploy(2, "nginx");
        paused["spec"]["paused"] = json!(true);
        ap(&mut obj, &paused, "paved", false).unwrap();
        ap(&mut obj, &deploy(2, "nginx"), "paved", false).unwrap();
        assert!(obj["spec"].get("paused").is_none());
    }

    #[test]
    fn update_managers_conflict_with_their_api_version() {
        let mut obj = deploy(2, "nginx");
        update(None, &mut obj, "kubectl-client-side-apply", "apps/v1", "t");
        let err = ap(&mut obj.clone(), &deploy(5, "nginx"), "paved", false).unwrap_err();
        assert_eq!(
            conflict_error(&err).body["message"],
            "Apply failed with 1 conflict: conflict with \"kubectl-client-side-apply\" using apps/v1: .spec.replicas"
        );
        let two = ap(&mut obj.clone(), &deploy(5, "redis"), "paved", false).unwrap_err();
        assert_eq!(
            conflict_error(&two).body["message"],
            "Apply failed with 2 conflicts: conflicts with \"kubectl-client-side-apply\" using apps/v1:\n- .spec.replicas\n- .spec.template.spec.containers[name=\"app\"].image"
        );
    }
}
