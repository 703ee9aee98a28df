//! Reading manifests: multi-document YAML (or JSON) with the line each
//! document starts on, and Kubernetes `List`s opened into their items.

use serde_json::Value;

use crate::{PolicyError, Result};

/// One document of a file: its index in the file (from 0), the line it
/// starts on (from 1), and its value.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    pub file: String,
    pub index: usize,
    pub line: usize,
    pub value: Value,
}

impl Document {
    /// `Kind/namespace/name` (or `Kind/name`) of a Kubernetes object, for reports.
    pub fn object_ref(&self) -> String {
        object_ref(&self.value)
    }
}

/// `Kind/namespace/name` of a Kubernetes object (what a person looks for in a report).
pub fn object_ref(value: &Value) -> String {
    let kind = value.get("kind").and_then(Value::as_str).unwrap_or("");
    let meta = value.get("metadata");
    let name = meta
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .or_else(|| {
            meta.and_then(|m| m.get("generateName"))
                .and_then(Value::as_str)
        })
        .unwrap_or("");
    let namespace = meta
        .and_then(|m| m.get("namespace"))
        .and_then(Value::as_str)
        .unwrap_or("");
    match (kind.is_empty(), namespace.is_empty()) {
        (true, _) => name.to_string(),
        (false, true) => format!("{kind}/{name}"),
        (false, false) => format!("{kind}/{namespace}/{name}"),
    }
}

/// A named text to read documents from (a file, or `-` for standard input).
#[derive(Debug, Clone)]
pub struct SourceFile {
    pub name: String,
    pub text: String,
}

impl SourceFile {
    pub fn new(name: impl Into<String>, text: impl Into<String>) -> Self {
        SourceFile {
            name: name.into(),
            text: text.into(),
        }
    }

    /// Every non-empty document, in order. JSON files (a name ending `.json`,
    /// or text starting with `{`/`[`) are one document; YAML is split on `---`.
    pub fn documents(&self) -> Result<Vec<Document>> {
        let trimmed = self.text.trim_start();
        let json = self.name.ends_with(".json")
            || (trimmed.starts_with('{') || trimmed.starts_with('['))
                && serde_json::from_str::<Value>(&self.text).is_ok();
        if json {
            let value: Value =
                serde_json::from_str(&self.text).map_err(|e| PolicyError::Parse {
                    file: self.name.clone(),
                    message: format!("invalid JSON at line {}: {}", e.line(), e),
                })?;
            return Ok(vec![Document {
                file: self.name.clone(),
                index: 0,
                line: 1 + self.text[..self.text.len() - trimmed.len()]
                    .matches('\n')
                    .count(),
                value,
            }]);
        }
        let mut out = Vec::new();
        for (start, chunk) in split_yaml(&self.text) {
            if chunk
                .lines()
                .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
            {
                continue;
            }
            let value: Value = serde_yaml::from_str(&chunk).map_err(|e| {
                let at = e
                    .location()
                    .map(|l| format!(" at line {}", start + l.line() - 1))
                    .unwrap_or_default();
                PolicyError::Parse {
                    file: self.name.clone(),
                    message: format!("invalid YAML{at}: {}", strip_location(&e.to_string())),
                }
            })?;
            if value.is_null() {
                continue;
            }
            // The line of the document's first content, not its separator or comments.
            let first = chunk
                .lines()
                .position(|l| !(l.trim().is_empty() || l.trim_start().starts_with('#')))
                .unwrap_or(0);
            out.push(Document {
                file: self.name.clone(),
                index: out.len(),
                line: start + first,
                value,
            });
        }
        Ok(out)
    }
}

fn strip_location(message: &str) -> String {
    match message.find(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}

/// Split YAML text into documents: each with the line (from 1) its text starts on.
fn split_yaml(text: &str) -> Vec<(usize, String)> {
    let mut docs = Vec::new();
    let mut current = String::new();
    let mut start = 1;
    for (i, line) in text.lines().enumerate() {
        let is_separator = line == "---"
            || line.starts_with("--- ")
            || line.starts_with("---\t")
            || line.starts_with("---#");
        if is_separator || line == "..." {
            docs.push((start, std::mem::take(&mut current)));
            start = i + 2;
            if is_separator {
                // `--- {inline: doc}` keeps its content.
                let rest = line[3..].trim();
                if !rest.is_empty() && !rest.starts_with('#') {
                    current.push_str(rest);
                    current.push('\n');
                    start = i + 1;
                }
            }
            continue;
        }
        current.push_str(line);
        current.push('\n');
    }
    docs.push((start, current));
    docs
}

/// Kubernetes objects of a set of documents: `List` kinds opened into their items.
pub fn kubernetes_objects(docs: Vec<Document>) -> Vec<Document> {
    let mut out = Vec::new();
    for doc in docs {
        let is_list = doc
            .value
            .get("kind")
            .and_then(Value::as_str)
            .is_some_and(|k| k == "List" || k.ends_with("List"))
            && doc.value.get("items").is_some_and(Value::is_array);
        if is_list {
            for item in doc.value["items"].as_array().into_iter().flatten() {
                out.push(Document {
                    value: item.clone(),
                    ..doc.clone()
                });
            }
        } else {
            out.push(doc);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_documents_carry_their_first_line() {
        let text = "# leading comment\napiVersion: v1\nkind: Pod\n---\n\n# c\nkind: Service\n---\n---\nkind: X\n";
        let docs = SourceFile::new("a.yaml", text).documents().unwrap();
        let lines: Vec<_> = docs.iter().map(|d| (d.index, d.line)).collect();
        assert_eq!(lines, vec![(0, 2), (1, 7), (2, 10)]);
        assert_eq!(docs[1].value["kind"], "Service");
    }

    #[test]
    fn json_is_one_document() {
        let docs = SourceFile::new("-", "\n\n{\"kind\": \"Pod\"}")
            .documents()
            .unwrap();
        assert_eq!(docs.len(), 1);
        assert_eq!(docs[0].line, 3);
    }

    #[test]
    fn bad_yaml_names_file_and_line() {
        let err = SourceFile::new("x.yaml", "kind: Pod\n---\nkind: [\n")
            .documents()
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("x.yaml: invalid YAML at line"), "{err}");
    }

    #[test]
    fn lists_are_opened() {
        let docs = SourceFile::new(
            "l.yaml",
            "kind: List\nitems:\n- kind: Pod\n- kind: Service\n",
        )
        .documents()
        .unwrap();
        let objs = kubernetes_objects(docs);
        assert_eq!(objs.len(), 2);
        assert_eq!(objs[1].value["kind"], "Service");
    }
}
