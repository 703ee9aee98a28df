//! The objects, in memory, keyed by kind, namespace and name (so lists come
//! out sorted by namespace and name, as etcd's key order gives them).

use std::collections::BTreeMap;

use rand::Rng;
use serde_json::{json, Value};

use crate::kinds::{by_kind, Kind, KINDS};

/// (kind index in [`KINDS`], namespace or empty, name).
pub type Key = (usize, String, String);

/// The object store, with the cluster's global resourceVersion counter.
#[derive(Debug, Default)]
pub struct Store {
    /// Every object.
    pub objects: BTreeMap<Key, Value>,
    rv: u64,
}

/// The alphabet Kubernetes uses for generated name suffixes and hashes.
const SAFE: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// `n` random characters from the safe alphabet, as in `generateName`.
pub fn suffix(n: usize) -> String {
    let mut rng = rand::thread_rng();
    (0..n)
        .map(|_| SAFE[rng.gen_range(0..SAFE.len())] as char)
        .collect()
}

/// The pod-template-hash: FNV-1a of the template, its decimal digits
/// mapped to the safe alphabet (as `rand.SafeEncodeString` does), 10 long.
pub fn template_hash(template: &Value) -> String {
    let mut h: u32 = 0x811c_9dc5;
    for b in template.to_string().bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    format!("{h:010}")
        .bytes()
        .map(|b| SAFE[usize::from(b) % SAFE.len()] as char)
        .collect()
}

/// A random version-4 UUID.
pub fn uid() -> String {
    let b: [u8; 16] = rand::thread_rng().gen();
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-4{}-{:x}{}-{}",
        &h[0..8],
        &h[8..12],
        &h[13..16],
        8 | (b[8] & 3),
        &h[17..20],
        &h[20..32]
    )
}

/// Now, as Kubernetes writes times: `2025-01-31T12:00:00Z`.
pub fn now() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// The store key of `obj` as `kind`.
pub fn key(kind: &Kind, ns: &str, name: &str) -> Key {
    let ns = if kind.namespaced { ns } else { "" };
    (kind.index(), ns.to_owned(), name.to_owned())
}

/// `metadata.<field>` as a string, or empty.
pub fn meta<'a>(obj: &'a Value, field: &str) -> &'a str {
    obj["metadata"][field].as_str().unwrap_or_default()
}

impl Store {
    /// A store with the namespaces every cluster has.
    pub fn new() -> Self {
        let mut store = Self::default();
        for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
            store.ensure_namespace(ns);
        }
        store
    }

    /// The current resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.rv
    }

    /// One object.
    pub fn get(&self, kind: &Kind, ns: &str, name: &str) -> Option<&Value> {
        self.objects.get(&key(kind, ns, name))
    }

    /// Every object of `kind`, in `ns` if given.
    pub fn list<'a>(
        &'a self,
        kind: &Kind,
        ns: Option<&'a str>,
    ) -> impl Iterator<Item = &'a Value> + 'a {
        let i = kind.index();
        self.objects
            .range((i, String::new(), String::new())..(i + 1, String::new(), String::new()))
            .filter(move |((_, n, _), _)| ns.is_none_or(|ns| ns == n))
            .map(|(_, v)| v)
    }

    /// Objects of `kind` in `ns` whose ownerReferences name `owner_uid`.
    pub fn owned(&self, kind: &Kind, ns: &str, owner_uid: &str) -> Vec<Value> {
        self.list(kind, Some(ns))
            .filter(|o| owned_by(o, owner_uid))
            .cloned()
            .collect()
    }

    /// Stores `obj` as `kind`: a new resourceVersion, and uid, creation time
    /// and generation if missing. Returns what was stored.
    pub fn put(&mut self, kind: &Kind, mut obj: Value) -> Value {
        self.rv += 1;
        obj["apiVersion"] = json!(kind.api_version());
        obj["kind"] = json!(kind.kind);
        let m = &mut obj["metadata"];
        if m["uid"].as_str().unwrap_or_default().is_empty() {
            m["uid"] = json!(uid());
        }
        if m["creationTimestamp"]
            .as_str()
            .unwrap_or_default()
            .is_empty()
        {
            m["creationTimestamp"] = json!(now());
        }
        if kind.namespaced && m["namespace"].as_str().unwrap_or_default().is_empty() {
            m["namespace"] = json!("default");
        }
        if !kind.namespaced {
            if let Some(m) = m.as_object_mut() {
                m.shift_remove("namespace");
            }
        }
        m["resourceVersion"] = json!(self.rv.to_string());
        let k = key(kind, meta(&obj, "namespace"), meta(&obj, "name"));
        if kind.namespaced {
            self.ensure_namespace(&k.1);
        }
        self.objects.insert(k, obj.clone());
        obj
    }

    /// Creates namespace `ns` if it does not exist.
    pub fn ensure_namespace(&mut self, ns: &str) {
        let Some(kind) = by_kind("Namespace") else {
            return;
        };
        if self.get(kind, "", ns).is_none() {
            self.put(
                kind,
                json!({
                    "metadata": {"name": ns, "labels": {"kubernetes.io/metadata.name": ns}},
                    "spec": {"finalizers": ["kubernetes"]},
                    "status": {"phase": "Active"},
                }),
            );
        }
    }

    /// Deletes an object and, as the garbage collector would, everything it
    /// owns (a Namespace: everything in it). Returns the deleted object.
    pub fn delete(&mut self, kind: &Kind, ns: &str, name: &str) -> Option<Value> {
        let obj = self.objects.remove(&key(kind, ns, name))?;
        self.rv += 1;
        if kind.kind == "Namespace" {
            self.objects
                .retain(|(i, n, _), _| !(KINDS[*i].namespaced && n == name));
            return Some(obj);
        }
        let uid = meta(&obj, "uid").to_owned();
        let children: Vec<Key> = self
            .objects
            .iter()
            .filter(|(_, o)| owned_by(o, &uid))
            .map(|(k, _)| k.clone())
            .collect();
        for (i, n, name) in children {
            self.delete(&KINDS[i], &n, &name);
        }
        Some(obj)
    }
}

/// Whether `obj` has an ownerReference to `uid`.
pub fn owned_by(obj: &Value, uid: &str) -> bool {
    obj["metadata"]["ownerReferences"]
        .as_array()
        .is_some_and(|refs| refs.iter().any(|r| r["uid"] == uid))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_look_like_kubernetes_ones() {
        let u = uid();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
        let h = template_hash(&json!({"spec": {}}));
        assert_eq!(h.len(), 10);
        assert!(h.bytes().all(|b| SAFE.contains(&b)));
        assert_eq!(h, template_hash(&json!({"spec": {}})));
        assert_eq!(now().len(), 20);
    }
}
