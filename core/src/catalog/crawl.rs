//! Walking a registered location: read each file, validate each document,
//! follow Location entities (with cycle and depth limits), and collect both
//! the entities and every problem, each tied to its file, document and field.

use std::collections::{HashSet, VecDeque};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::model::{validate, EntityRef, Relation, ValidEntity};
use super::source::{parse_documents, Sources, Target};

/// An entity found while crawling, with where it came from.
///
/// A crawl holds every entity of a location until it is applied in one
/// transaction, so the entity is kept as its compact JSON text: a parsed
/// `serde_json::Value` takes about twenty times as much memory (13,200
/// synthetic entities: 5 MB of text, 110 MB parsed with their relations);
/// relations are worked out again when the entity is written.
#[derive(Debug, Clone)]
pub struct FoundEntity {
    /// The file or URL.
    pub source: String,
    /// Which YAML document in it (0-based).
    pub document: usize,
    /// Its reference.
    pub entity_ref: EntityRef,
    /// The validated entity (`metadata.namespace` filled in), as JSON text.
    body: Box<str>,
}

impl FoundEntity {
    /// Keeps a validated entity found at `source`, document `document`.
    pub fn new(source: String, document: usize, entity: ValidEntity) -> Self {
        Self {
            source,
            document,
            body: entity.body.to_string().into_boxed_str(),
            entity_ref: entity.entity_ref,
        }
    }

    /// The entity as JSON text (compact, as `Value::to_string` writes it).
    pub fn body_text(&self) -> &str {
        &self.body
    }

    /// The entity, parsed again.
    pub fn body(&self) -> Value {
        // The text was written by serde_json from a Value: it parses.
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }

    /// The relations it declares, both directions (as [`validate`] found them).
    pub fn relations(&self, body: &Value) -> Vec<Relation> {
        super::model::relations_of(body, &self.entity_ref)
    }
}

/// One ingestion problem, precise enough for an owner to fix it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    /// The file or URL.
    pub source: String,
    /// Which YAML document (0-based), when the problem is inside one.
    pub document: Option<usize>,
    /// The entity's `kind:namespace/name`, when known.
    pub entity_ref: Option<String>,
    /// The field path, when the problem is a field.
    pub field: Option<String>,
    /// What is wrong.
    pub message: String,
}

/// What a crawl found.
#[derive(Debug, Default)]
pub struct Crawl {
    /// Valid entities, in reading order.
    pub entities: Vec<FoundEntity>,
    /// Everything that went wrong.
    pub problems: Vec<Problem>,
    /// Every file read (placeholders included) with its version on the
    /// host, when each has one; `None` as soon as one has not.
    pub files: Option<Vec<(Target, String)>>,
}

/// Crawls from `root`, following Location entities.
pub async fn crawl(sources: &Sources, root: Target) -> Crawl {
    let mut out = Crawl {
        files: Some(Vec::new()),
        ..Crawl::default()
    };
    let mut queue: VecDeque<(Target, Vec<Target>)> = VecDeque::from([(root, Vec::new())]);
    let mut seen: HashSet<Target> = HashSet::new();
    let mut files = 0usize;

    while let Some((target, ancestors)) = queue.pop_front() {
        let source = target.to_string();
        let problem = |document: Option<usize>, message: String| Problem {
            source: source.clone(),
            document,
            entity_ref: None,
            field: None,
            message,
        };
        if ancestors.contains(&target) {
            let chain: Vec<String> = ancestors.iter().map(ToString::to_string).collect();
            out.problems.push(problem(
                None,
                format!(
                    "Location cycle: {source} includes itself through {}",
                    chain.join(" → ")
                ),
            ));
            continue;
        }
        if !seen.insert(target.clone()) {
            continue; // reached twice without a cycle (a diamond): read once
        }
        if ancestors.len() > sources.limits.max_depth {
            out.problems.push(problem(
                None,
                format!(
                    "Locations nest more than {} levels deep here",
                    sources.limits.max_depth
                ),
            ));
            continue;
        }
        files += 1;
        if files > sources.limits.max_files {
            out.problems.push(problem(
                None,
                format!(
                    "this location pulls in more than {} files; the rest were skipped",
                    sources.limits.max_files
                ),
            ));
            break;
        }
        let text = match sources.read_conditional(&target).await {
            Ok(read) => {
                match (&mut out.files, read.version) {
                    (Some(files), Some(version)) => files.push((target.clone(), version)),
                    _ => out.files = None,
                }
                read.text
            }
            Err(message) => {
                out.problems.push(problem(None, message));
                continue;
            }
        };
        sources.count_parse();
        for (document, parsed) in parse_documents(&text).into_iter().enumerate() {
            let mut value = match parsed {
                Ok(v) => v,
                Err(message) => {
                    out.problems.push(problem(Some(document), message));
                    continue;
                }
            };
            let entity_ref = describe(&value);
            let (placeholder_problems, reads) =
                sources.resolve_placeholders_read(&target, &mut value).await;
            for (file, version) in reads {
                match (&mut out.files, version) {
                    (Some(files), Some(version)) => files.push((file, version)),
                    _ => out.files = None,
                }
            }
            for (field, message) in placeholder_problems {
                out.problems.push(Problem {
                    source: source.clone(),
                    document: Some(document),
                    entity_ref: entity_ref.clone(),
                    field: Some(field),
                    message,
                });
            }
            let annotations = sources.scm_annotations(&target);
            if let Some(metadata) = value
                .get_mut("metadata")
                .and_then(Value::as_object_mut)
                .filter(|_| !annotations.is_empty())
            {
                let map = metadata
                    .entry("annotations")
                    .or_insert_with(|| Value::Object(Default::default()));
                if let Some(map) = map.as_object_mut() {
                    for (key, v) in annotations {
                        map.entry(key).or_insert(Value::String(v));
                    }
                }
            }
            let entity = match validate(&value, &sources.kinds) {
                Ok(e) => e,
                Err(field_problems) => {
                    out.problems
                        .extend(field_problems.into_iter().map(|p| Problem {
                            source: source.clone(),
                            document: Some(document),
                            entity_ref: entity_ref.clone(),
                            field: Some(p.field).filter(|f| !f.is_empty()),
                            message: p.message,
                        }));
                    continue;
                }
            };
            if entity.entity_ref.kind == "location" {
                for (i, raw) in location_targets(&entity.body).into_iter().enumerate() {
                    match sources.resolve(&target, &raw) {
                        Ok(child) => {
                            let mut chain = ancestors.clone();
                            chain.push(target.clone());
                            queue.push_back((child, chain));
                        }
                        Err(message) => out.problems.push(Problem {
                            source: source.clone(),
                            document: Some(document),
                            entity_ref: Some(entity.entity_ref.to_string()),
                            field: Some(format!("spec.targets[{i}]")),
                            message,
                        }),
                    }
                }
            }
            out.entities
                .push(FoundEntity::new(source.clone(), document, entity));
        }
    }
    out
}

/// `spec.target` and `spec.targets` of a Location entity.
pub fn location_targets(body: &Value) -> Vec<String> {
    let spec = &body["spec"];
    let mut targets: Vec<String> = spec["target"]
        .as_str()
        .map(str::to_owned)
        .into_iter()
        .collect();
    if let Some(list) = spec["targets"].as_array() {
        targets.extend(list.iter().filter_map(|t| t.as_str().map(str::to_owned)));
    }
    targets
}

/// `kind:namespace/name` as written, for problems in entities that fail validation.
fn describe(value: &Value) -> Option<String> {
    let kind = value["kind"].as_str()?;
    let name = value["metadata"]["name"].as_str()?;
    let namespace = value["metadata"]["namespace"].as_str().unwrap_or("default");
    Some(format!(
        "{}:{}/{}",
        kind.to_ascii_lowercase(),
        namespace,
        name
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::source::SourceLimits;
    use std::path::PathBuf;

    fn examples() -> PathBuf {
        crate::catalog::conformance_examples()
    }

    #[tokio::test]
    async fn crawls_the_backstage_examples() {
        let root = examples();
        let sources = Sources::new(std::slice::from_ref(&root), &[], SourceLimits::default());
        let target = sources
            .check("file", root.join("all.yaml").to_str().unwrap())
            .unwrap();
        let crawl = crawl(&sources, target).await;
        let refs: Vec<String> = crawl
            .entities
            .iter()
            .map(|e| e.entity_ref.to_string())
            .collect();
        // Kept as text, each entity gives back exactly what validation found.
        let mut related = 0;
        for e in &crawl.entities {
            let body = e.body();
            assert_eq!(body.to_string(), e.body_text());
            let valid = validate(&body, &sources.kinds).unwrap();
            assert_eq!(valid.entity_ref, e.entity_ref);
            assert_eq!(e.relations(&body), valid.relations, "{}", e.entity_ref);
            related += usize::from(!valid.relations.is_empty());
        }
        assert!(related > 10, "only {related} entities with relations");
        for expected in [
            "component:default/petstore",
            "component:default/wayback-archive-ingestion",
            "resource:default/artists-db",
            "location:default/example-all",
            "location:default/example-components",
        ] {
            assert!(
                refs.contains(&expected.to_string()),
                "{expected} missing from {refs:?}"
            );
        }
        // all.yaml names files the example set does not ship: each is a problem on its line.
        assert!(crawl
            .problems
            .iter()
            .any(|p| p.field.as_deref() == Some("spec.targets[0]")
                && p.message.contains("all-ai-resources.yaml")));
    }

    #[tokio::test]
    async fn cycles_and_depth_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        let loc = |name: &str, target: &str| {
            format!("apiVersion: backstage.io/v1alpha1\nkind: Location\nmetadata:\n  name: {name}\nspec:\n  targets: [{target}]\n")
        };
        std::fs::write(root.join("a.yaml"), loc("a", "./b.yaml")).unwrap();
        std::fs::write(root.join("b.yaml"), loc("b", "./a.yaml")).unwrap();
        let sources = Sources::new(std::slice::from_ref(&root), &[], SourceLimits::default());
        let crawl = crawl(
            &sources,
            sources
                .check("file", root.join("a.yaml").to_str().unwrap())
                .unwrap(),
        )
        .await;
        assert_eq!(crawl.entities.len(), 2);
        assert!(
            crawl
                .problems
                .iter()
                .any(|p| p.message.starts_with("Location cycle")),
            "{:?}",
            crawl.problems
        );

        for i in 0..12 {
            std::fs::write(
                root.join(format!("d{i}.yaml")),
                loc(&format!("d{i}"), &format!("./d{}.yaml", i + 1)),
            )
            .unwrap();
        }
        std::fs::write(root.join("d12.yaml"), loc("d12", "./a.yaml")).unwrap();
        let deep = super::crawl(
            &sources,
            sources
                .check("file", root.join("d0.yaml").to_str().unwrap())
                .unwrap(),
        )
        .await;
        assert!(deep
            .problems
            .iter()
            .any(|p| p.message.contains("nest more than 8")));
    }
}
