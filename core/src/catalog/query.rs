//! Catalog queries: Backstage-style filters over flattened fields, full-text
//! search (FTS5), ordering, paging and facets.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::{QueryBuilder, Sqlite, SqlitePool};

use super::store::complete_entities;
use crate::CoreError;

/// Filters: any of the sets may match (OR); within a set every key must
/// match (AND); several values for one key mean any of them; no value means
/// the key exists.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Filter {
    /// OR of ANDs.
    pub sets: Vec<Vec<(String, Vec<String>)>>,
}

impl Filter {
    /// Parses Backstage `filter` parameters (`kind=component,spec.type=service`), one per set.
    pub fn parse<S: AsRef<str>>(params: &[S]) -> Result<Self, CoreError> {
        let mut sets = Vec::new();
        for param in params {
            let mut set: Vec<(String, Vec<String>)> = Vec::new();
            for part in param
                .as_ref()
                .split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
            {
                let (key, value) = match part.split_once('=') {
                    Some((k, v)) => (
                        k.trim().to_ascii_lowercase(),
                        Some(v.trim().to_ascii_lowercase()),
                    ),
                    None => (part.to_ascii_lowercase(), None),
                };
                if key.is_empty() {
                    return Err(CoreError::Invalid {
                        field: "filter",
                        message: format!("`{part}` has no key"),
                    });
                }
                match set.iter_mut().find(|(k, _)| *k == key) {
                    Some((_, values)) => values.extend(value),
                    None => set.push((key, value.into_iter().collect())),
                }
            }
            if !set.is_empty() {
                sets.push(set);
            }
        }
        Ok(Self { sets })
    }
}

/// A catalog query.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Query {
    /// Which entities.
    pub filter: Filter,
    /// Words to search for in name, title, description and tags.
    pub full_text: Option<String>,
    /// `(field, ascending)` pairs.
    pub order: Vec<(String, bool)>,
    /// Rows to skip.
    pub offset: i64,
    /// Rows to return (1..=1000).
    pub limit: i64,
}

/// A page of results.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    /// Entities with relations.
    pub items: Vec<Value>,
    /// How many match in all.
    pub total: i64,
}

/// Turns what a person typed into a safe FTS5 query: every word quoted, prefix-matched, all required.
pub fn fts_query(text: &str) -> Option<String> {
    let terms: Vec<String> = text
        .split(|c: char| !c.is_alphanumeric() && c != '-' && c != '_' && c != '.')
        .filter(|t| !t.is_empty())
        .take(8)
        .map(|t| format!("\"{}\"*", t.replace('"', "")))
        .collect();
    (!terms.is_empty()).then(|| terms.join(" "))
}

fn order_expression(field: &str) -> Option<&'static str> {
    Some(match field {
        "metadata.name" => "e.name COLLATE NOCASE",
        "kind" => "e.kind COLLATE NOCASE",
        "metadata.namespace" => "e.namespace",
        "metadata.title" => "COALESCE(e.title, e.name) COLLATE NOCASE",
        "spec.type" => "e.spec_type",
        "spec.lifecycle" => "e.lifecycle",
        "spec.owner" => "e.owner_ref",
        "metadata.uid" => "e.uid",
        _ => return None,
    })
}

fn push_where<'a>(qb: &mut QueryBuilder<'a, Sqlite>, filter: &'a Filter, fts: Option<&'a str>) {
    qb.push(" WHERE 1 = 1");
    if !filter.sets.is_empty() {
        qb.push(" AND (");
        for (i, set) in filter.sets.iter().enumerate() {
            if i > 0 {
                qb.push(" OR ");
            }
            qb.push("(");
            for (j, (key, values)) in set.iter().enumerate() {
                if j > 0 {
                    qb.push(" AND ");
                }
                qb.push("e.uid IN (SELECT entity_uid FROM catalog_fields WHERE key = ");
                qb.push_bind(key.as_str());
                if !values.is_empty() {
                    qb.push(" AND value IN (");
                    let mut separated = qb.separated(", ");
                    for v in values {
                        separated.push_bind(v.as_str());
                    }
                    qb.push(")");
                }
                qb.push(")");
            }
            qb.push(")");
        }
        qb.push(")");
    }
    if let Some(fts) = fts {
        qb.push(" AND e.uid IN (SELECT entity_uid FROM catalog_search WHERE catalog_search MATCH ");
        qb.push_bind(fts);
        qb.push(")");
    }
}

/// Runs a query: one page of entities (with relations) and the total count.
pub async fn run(pool: &SqlitePool, query: &Query) -> Result<Page, CoreError> {
    let fts = query.full_text.as_deref().and_then(fts_query);
    for (field, _) in &query.order {
        if order_expression(field).is_none() {
            return Err(CoreError::Invalid {
                field: "order",
                message: format!("cannot order by `{field}`; use metadata.name, metadata.title, kind, metadata.namespace, spec.type, spec.lifecycle or spec.owner"),
            });
        }
    }
    let mut qb = QueryBuilder::<Sqlite>::new(
        "SELECT e.entity_ref, e.body, e.orphan FROM catalog_entities e",
    );
    push_where(&mut qb, &query.filter, fts.as_deref());
    qb.push(" ORDER BY ");
    for (field, ascending) in &query.order {
        qb.push(order_expression(field).unwrap_or("e.entity_ref"));
        qb.push(if *ascending { " ASC, " } else { " DESC, " });
    }
    qb.push("e.entity_ref ASC LIMIT ");
    qb.push_bind(query.limit.clamp(1, 1000));
    qb.push(" OFFSET ");
    qb.push_bind(query.offset.max(0));
    let rows: Vec<(String, String, i64)> = qb.build_query_as().fetch_all(pool).await?;

    let mut count = QueryBuilder::<Sqlite>::new("SELECT COUNT(*) FROM catalog_entities e");
    push_where(&mut count, &query.filter, fts.as_deref());
    let total: i64 = count.build_query_scalar().fetch_one(pool).await?;
    Ok(Page {
        items: complete_entities(pool, rows).await?,
        total,
    })
}

/// An entity as a list shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntitySummary {
    /// Stable id.
    pub uid: String,
    /// Kind as authored (`Component`).
    pub kind: String,
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// `metadata.title`.
    pub title: Option<String>,
    /// `metadata.description`.
    pub description: Option<String>,
    /// `spec.type`.
    pub spec_type: Option<String>,
    /// `spec.lifecycle`.
    pub lifecycle: Option<String>,
    /// The owner's reference.
    pub owner_ref: Option<String>,
    /// `metadata.tags`.
    pub tags: Vec<String>,
    /// Gone from its source.
    pub orphan: bool,
}

/// Like [`run`], but returns list rows without reading whole entities or relations.
pub async fn summaries(
    pool: &SqlitePool,
    query: &Query,
) -> Result<(Vec<EntitySummary>, i64), CoreError> {
    let fts = query.full_text.as_deref().and_then(fts_query);
    let mut qb = QueryBuilder::<Sqlite>::new(
        "SELECT e.uid, e.kind, e.namespace, e.name, e.title, e.description, e.spec_type, e.lifecycle, e.owner_ref, \
         json_extract(e.body, '$.metadata.tags'), e.orphan FROM catalog_entities e",
    );
    push_where(&mut qb, &query.filter, fts.as_deref());
    qb.push(" ORDER BY ");
    for (field, ascending) in &query.order {
        let expression = order_expression(field).ok_or_else(|| CoreError::Invalid {
            field: "order",
            message: format!("cannot order by `{field}`"),
        })?;
        qb.push(expression);
        qb.push(if *ascending { " ASC, " } else { " DESC, " });
    }
    qb.push("e.entity_ref ASC LIMIT ");
    qb.push_bind(query.limit.clamp(1, 1000));
    qb.push(" OFFSET ");
    qb.push_bind(query.offset.max(0));
    type Row = (
        String,
        String,
        String,
        String,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
        i64,
    );
    let rows: Vec<Row> = qb.build_query_as().fetch_all(pool).await?;
    let mut count = QueryBuilder::<Sqlite>::new("SELECT COUNT(*) FROM catalog_entities e");
    push_where(&mut count, &query.filter, fts.as_deref());
    let total: i64 = count.build_query_scalar().fetch_one(pool).await?;
    let items = rows
        .into_iter()
        .map(
            |(
                uid,
                kind,
                namespace,
                name,
                title,
                description,
                spec_type,
                lifecycle,
                owner_ref,
                tags,
                orphan,
            )| EntitySummary {
                uid,
                kind,
                namespace,
                name,
                title,
                description,
                spec_type,
                lifecycle,
                owner_ref,
                tags: tags
                    .and_then(|t| serde_json::from_str(&t).ok())
                    .unwrap_or_default(),
                orphan: orphan != 0,
            },
        )
        .collect();
    Ok((items, total))
}

/// Counts of each value of each `facet` key among the entities matching `filter`.
pub async fn facets(
    pool: &SqlitePool,
    keys: &[String],
    filter: &Filter,
) -> Result<BTreeMap<String, Vec<(String, i64)>>, CoreError> {
    let mut out = BTreeMap::new();
    for key in keys {
        let key_lower = key.to_ascii_lowercase();
        let mut qb = QueryBuilder::<Sqlite>::new(
            "SELECT f.value, COUNT(DISTINCT f.entity_uid) FROM catalog_fields f WHERE f.key = ",
        );
        qb.push_bind(key_lower.as_str());
        qb.push(" AND f.entity_uid IN (SELECT e.uid FROM catalog_entities e");
        push_where(&mut qb, filter, None);
        qb.push(") GROUP BY f.value ORDER BY COUNT(DISTINCT f.entity_uid) DESC, f.value LIMIT 500");
        let rows: Vec<(String, i64)> = qb.build_query_as().fetch_all(pool).await?;
        out.insert(key.clone(), rows);
    }
    Ok(out)
}

/// Keeps only `fields` (dotted paths) of an entity, as Backstage's `fields` parameter does.
pub fn project(entity: &Value, fields: &[String]) -> Value {
    if fields.is_empty() {
        return entity.clone();
    }
    let mut out = Value::Object(Default::default());
    for field in fields {
        let path: Vec<&str> = field.split('.').collect();
        let mut source = entity;
        let mut found = true;
        for part in &path {
            match source.get(part) {
                Some(v) => source = v,
                None => {
                    found = false;
                    break;
                }
            }
        }
        if !found {
            continue;
        }
        insert_path(&mut out, &path, source.clone());
    }
    out
}

fn insert_path(target: &mut Value, path: &[&str], value: Value) {
    let Some(obj) = target.as_object_mut() else {
        return;
    };
    match path {
        [] => {}
        [last] => {
            obj.insert((*last).to_owned(), value);
        }
        [first, rest @ ..] => {
            let child = obj
                .entry(*first)
                .or_insert_with(|| Value::Object(Default::default()));
            insert_path(child, rest, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn filters_parse_into_sets() {
        let f = Filter::parse(&[
            "kind=Component,spec.type=service,kind=api",
            "metadata.annotations.x",
        ])
        .unwrap();
        assert_eq!(f.sets.len(), 2);
        assert_eq!(
            f.sets[0][0],
            (
                "kind".to_string(),
                vec!["component".to_string(), "api".to_string()]
            )
        );
        assert_eq!(f.sets[1][0], ("metadata.annotations.x".to_string(), vec![]));
        assert!(Filter::parse(&["=x"]).is_err());
    }

    #[test]
    fn full_text_is_made_safe() {
        assert_eq!(fts_query("pet store").unwrap(), "\"pet\"* \"store\"*");
        assert_eq!(
            fts_query("a\" OR 1=1 --").unwrap(),
            "\"a\"* \"OR\"* \"1\"* \"1\"* \"--\"*"
        );
        assert!(fts_query("  ").is_none());
    }

    #[test]
    fn projection_keeps_named_fields() {
        let e = json!({"kind": "Component", "metadata": {"name": "a", "uid": "u"}, "spec": {"type": "service"}});
        assert_eq!(
            project(
                &e,
                &["kind".into(), "metadata.name".into(), "nope.x".into()]
            ),
            json!({"kind": "Component", "metadata": {"name": "a"}})
        );
    }
}
