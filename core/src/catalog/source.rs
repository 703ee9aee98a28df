//! Where catalog YAML comes from: files under configured directories and
//! URLs on allowed hosts, read with size limits, parsed as multi-document
//! YAML, with `$text`/`$json`/`$yaml` placeholders resolved under the same rules.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use url::Url;

/// Limits that keep a hostile or broken source from hurting the portal.
#[derive(Debug, Clone)]
pub struct SourceLimits {
    /// The largest file or response read, in bytes.
    pub max_bytes: usize,
    /// How deep Location entities may nest.
    pub max_depth: usize,
    /// How many files one registered location may pull in.
    pub max_files: usize,
}

impl Default for SourceLimits {
    fn default() -> Self {
        Self {
            max_bytes: 4 * 1024 * 1024,
            max_depth: 8,
            max_files: 20_000,
        }
    }
}

/// A place to read from, already checked against the allow-lists.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Target {
    /// A file under one of the configured roots (canonical path).
    File(PathBuf),
    /// An http(s) URL on an allowed host.
    Url(Url),
    /// An organization (GitHub) or group (GitLab) on a git host, scanned
    /// for a file in each repository (see [`super::discovery`]); with its
    /// location type, `github-discovery` or `gitlab-discovery`.
    Discovery(Url, &'static str),
    /// YAML pasted into the portal, kept in the database.
    Pasted {
        /// The name the person gave the import.
        name: String,
        /// The YAML.
        content: String,
    },
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::File(p) => write!(f, "file:{}", p.display()),
            Target::Url(u) | Target::Discovery(u, _) => write!(f, "{u}"),
            Target::Pasted { name, .. } => write!(f, "pasted:{name}"),
        }
    }
}

impl Target {
    /// The location type (`file` or `url`).
    pub fn kind(&self) -> &'static str {
        match self {
            Target::File(_) => "file",
            Target::Url(_) => "url",
            Target::Discovery(_, kind) => kind,
            Target::Pasted { .. } => "pasted",
        }
    }

    /// The target as registered (a path or a URL).
    pub fn raw(&self) -> String {
        match self {
            Target::File(p) => p.display().to_string(),
            Target::Url(u) | Target::Discovery(u, _) => u.to_string(),
            Target::Pasted { name, .. } => name.clone(),
        }
    }
}

/// One entry of `PAVED_CATALOG_ALLOWED_HOSTS`: a scheme, host and port that
/// `url` locations may read from. `host` means https on port 443, `host:port`
/// https on that port, and `http://host[:port]` must be written out to allow
/// plain http; a URL matches only when all three agree, so allowing a host
/// never opens its other ports or schemes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedOrigin {
    scheme: String,
    host: String,
    port: u16,
}

impl AllowedOrigin {
    /// Whether `url` is on this origin.
    pub fn matches(&self, url: &Url) -> bool {
        url.scheme() == self.scheme
            && url
                .host_str()
                .is_some_and(|h| h.eq_ignore_ascii_case(&self.host))
            && url.port_or_known_default() == Some(self.port)
    }
}

impl std::fmt::Display for AllowedOrigin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}://{}:{}", self.scheme, self.host, self.port)
    }
}

impl std::str::FromStr for AllowedOrigin {
    type Err = String;

    fn from_str(raw: &str) -> Result<Self, String> {
        let raw = raw.trim();
        let with_scheme = if raw.contains("://") {
            raw.to_owned()
        } else {
            format!("https://{raw}")
        };
        let url = Url::parse(&with_scheme).map_err(|e| {
            format!("`{raw}` is not a host, host:port or http(s)://host[:port] ({e})")
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!("`{raw}` must be http or https"));
        }
        if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
            return Err(format!("`{raw}` must name only a host and port, no path"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(format!("`{raw}` must not carry credentials"));
        }
        let host = url
            .host_str()
            .filter(|h| !h.is_empty() && !h.contains('*'))
            .ok_or_else(|| format!("`{raw}` names no host (wildcards are not allowed)"))?;
        Ok(Self {
            scheme: url.scheme().to_owned(),
            host: host.to_ascii_lowercase(),
            port: url.port_or_known_default().unwrap_or(443),
        })
    }
}

/// Reads catalog sources within the allow-lists and limits.
#[derive(Debug, Clone)]
pub struct Sources {
    roots: Vec<PathBuf>,
    allowed: Vec<AllowedOrigin>,
    http: reqwest::Client,
    /// The limits applied.
    pub limits: SourceLimits,
    /// Kinds other features define, checked as entities are read.
    pub kinds: super::model::Kinds,
    /// Git hosts with their APIs and credentials; their hosts are allowed.
    integrations: Option<std::sync::Arc<crate::integrations::Integrations>>,
    /// Per location, the files its last clean crawl read, all through
    /// integrations (so each can be asked "changed?" cheaply), and how many
    /// entities it gave: while none of them changed, a refresh re-parses nothing.
    settled: std::sync::Arc<std::sync::Mutex<std::collections::HashMap<String, Settled>>>,
    /// Reads that found a file changed while checking a settled location,
    /// kept for the crawl that follows at once (so it does not ask again).
    fresh: std::sync::Arc<std::sync::Mutex<std::collections::HashMap<Target, (String, String)>>>,
    /// Files parsed so far (what a refresh of an unchanged location avoids).
    parsed: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

/// What a location's last clean crawl depended on.
#[derive(Debug, Clone)]
struct Settled {
    files: Vec<(Target, String)>,
    entities: usize,
}

/// A read, and what identifies its bytes on the host (`None` when the
/// source cannot tell: local files, plain URLs, pasted YAML).
#[derive(Debug)]
pub struct Read {
    /// The text.
    pub text: String,
    /// The file's ETag or commit id, from a git host.
    pub version: Option<String>,
}

impl Sources {
    /// `roots` are the directories `file` locations may read under (missing
    /// ones are skipped); `allowed` the origins `url` locations may fetch from.
    pub fn new(roots: &[PathBuf], allowed: &[AllowedOrigin], limits: SourceLimits) -> Self {
        let http = reqwest::Client::builder()
            // A redirect could lead off the allow-list; refuse them.
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(15))
            .build()
            .unwrap_or_default();
        Self {
            roots: roots.iter().filter_map(|r| r.canonicalize().ok()).collect(),
            allowed: allowed.to_vec(),
            http,
            limits,
            kinds: super::model::Kinds::default(),
            integrations: None,
            settled: std::sync::Arc::default(),
            fresh: std::sync::Arc::default(),
            parsed: std::sync::Arc::default(),
        }
    }

    /// How many files crawls have parsed so far.
    pub fn files_parsed(&self) -> u64 {
        self.parsed.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub(super) fn count_parse(&self) {
        self.parsed
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// Remembers what location `id`'s crawl read, when every file can be
    /// asked "changed?" and the crawl was clean; forgets it otherwise.
    pub(super) fn settle(&self, id: &str, files: Option<Vec<(Target, String)>>, entities: usize) {
        let mut settled = self.settled.lock().unwrap_or_else(|e| e.into_inner());
        match files {
            Some(files) => {
                settled.insert(id.to_owned(), Settled { files, entities });
            }
            None => {
                settled.remove(id);
            }
        }
    }

    /// When none of the files location `id`'s last clean crawl read has
    /// changed (each asked conditionally), the number of entities it gave.
    pub(super) async fn unchanged_since_settled(&self, id: &str) -> Option<usize> {
        let settled = self
            .settled
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .cloned()?;
        for (file, version) in &settled.files {
            match self.read_conditional(file).await {
                Ok(Read {
                    version: Some(now), ..
                }) if now == *version => {}
                Ok(Read {
                    text,
                    version: Some(now),
                }) => {
                    let mut fresh = self.fresh.lock().unwrap_or_else(|e| e.into_inner());
                    if fresh.len() >= 1_000 {
                        fresh.clear();
                    }
                    fresh.insert(file.clone(), (text, now));
                    drop(fresh);
                    self.settle(id, None, 0);
                    return None;
                }
                _ => {
                    self.settle(id, None, 0);
                    return None;
                }
            }
        }
        Some(settled.entities)
    }

    /// These sources, reading URLs on `integrations`' hosts through their APIs.
    pub fn with_integrations(
        mut self,
        integrations: std::sync::Arc<crate::integrations::Integrations>,
    ) -> Self {
        self.integrations = Some(integrations);
        self
    }

    /// These sources, checking `kinds` as entities are read.
    pub fn with_kinds(mut self, kinds: super::model::Kinds) -> Self {
        self.kinds = kinds;
        self
    }

    /// The annotations Backstage's catalog adds to an entity read from a
    /// git host, when the entity does not set them: `backstage.io/source-location`
    /// (the file's folder) and, on GitHub and GitLab hosts,
    /// `github.com/project-slug` / `gitlab.com/project-slug` (the delivery
    /// outcomes map events to components through them).
    pub fn scm_annotations(&self, target: &Target) -> Vec<(&'static str, String)> {
        use crate::integrations::HostKind;
        let Target::Url(url) = target else {
            return Vec::new();
        };
        let Some(integration) = self.integrations.as_ref().and_then(|i| i.for_url(url)) else {
            return Vec::new();
        };
        let Ok(file) = crate::integrations::url::parse(integration, url) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        if integration.kind != HostKind::AzureDevops
            && integration.kind != HostKind::Git
            && url.query().is_none()
        {
            let mut folder = url.clone();
            folder.set_fragment(None);
            let path = folder.path().to_owned();
            if let Some(at) = path.rfind('/') {
                folder.set_path(&path[..=at]);
                out.push(("backstage.io/source-location", format!("url:{folder}")));
            }
        }
        match integration.kind {
            HostKind::Github | HostKind::GithubEnterprise => {
                out.push(("github.com/project-slug", file.repo))
            }
            HostKind::Gitlab => out.push(("gitlab.com/project-slug", file.repo)),
            _ => {}
        }
        out
    }

    /// The git-host integrations reads go through, when configured.
    pub fn integrations(&self) -> Option<&crate::integrations::Integrations> {
        self.integrations.as_deref()
    }

    /// Checks a location to register: `kind` is `file`, `url`,
    /// `github-discovery` or `gitlab-discovery`.
    pub fn check(&self, kind: &str, raw: &str) -> Result<Target, String> {
        match kind {
            "url" => self.check_url(raw),
            "file" => self.check_file(Path::new(raw)),
            "github-discovery" | "gitlab-discovery" => {
                let url = Url::parse(raw).map_err(|e| format!("`{raw}` is not a URL ({e})"))?;
                let host_kind = self
                    .integrations
                    .as_ref()
                    .and_then(|i| i.for_url(&url))
                    .map(|i| i.kind);
                let (fits, wanted) = if kind == "github-discovery" {
                    (host_kind.is_some_and(|k| k.is_github()), "GitHub")
                } else {
                    (
                        host_kind == Some(crate::integrations::HostKind::Gitlab),
                        "GitLab",
                    )
                };
                if !fits {
                    return Err(format!(
                        "{raw} is not on a {wanted} host configured in PAVED_INTEGRATIONS"
                    ));
                }
                let kind = if kind == "github-discovery" {
                    "github-discovery"
                } else {
                    "gitlab-discovery"
                };
                super::discovery::parse(kind, &url)?;
                Ok(Target::Discovery(url, kind))
            }
            other => Err(format!(
                "unknown location type `{other}`; use url, file, github-discovery or gitlab-discovery"
            )),
        }
    }

    /// Resolves `raw` (absolute URL, absolute path, or relative to `base`) into a checked target.
    pub fn resolve(&self, base: &Target, raw: &str) -> Result<Target, String> {
        let raw = raw.trim();
        if raw.starts_with("http://") || raw.starts_with("https://") {
            return self.check_url(raw);
        }
        match base {
            Target::File(path) => {
                let dir = path.parent().unwrap_or(Path::new("/"));
                let joined = if Path::new(raw).is_absolute() {
                    PathBuf::from(raw)
                } else {
                    dir.join(raw)
                };
                self.check_file(&joined)
            }
            Target::Url(url) => {
                let joined = url
                    .join(raw)
                    .map_err(|e| format!("`{raw}` is not a valid relative URL ({e})"))?;
                self.check_url(joined.as_str())
            }
            Target::Pasted { .. } => Err(format!(
                "`{raw}` is relative, but pasted YAML has no folder; use an absolute URL on an allowed host"
            )),
            Target::Discovery(..) => Err(format!(
                "`{raw}` is relative to an organization, which is not a file"
            )),
        }
    }

    fn check_url(&self, raw: &str) -> Result<Target, String> {
        let url = Url::parse(raw).map_err(|e| format!("`{raw}` is not a URL ({e})"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!("`{raw}` must be an http or https URL"));
        }
        if let Some(integration) = self.integrations.as_ref().and_then(|i| i.for_url(&url)) {
            // Refuse at registration what the integration cannot read.
            crate::integrations::url::parse(integration, &url)?;
            return Ok(Target::Url(url));
        }
        if !self.allowed.iter().any(|origin| origin.matches(&url)) {
            let host = url.host_str().unwrap_or_default();
            let port = url.port_or_known_default().unwrap_or_default();
            return Err(format!(
                "{}://{host}:{port} is not in PAVED_CATALOG_ALLOWED_HOSTS nor a configured git host (PAVED_INTEGRATIONS), so Paved will not fetch {raw}",
                url.scheme()
            ));
        }
        Ok(Target::Url(url))
    }

    /// Checks that `path` is a directory under the configured roots (a template's
    /// skeleton); answers its canonical path.
    pub fn check_dir(&self, path: &Path) -> Result<PathBuf, String> {
        let canonical = path
            .canonicalize()
            .map_err(|_| format!("{} does not exist or cannot be read", path.display()))?;
        if !self.roots.iter().any(|root| canonical.starts_with(root)) {
            return Err(format!(
                "{} is outside the directories in PAVED_CATALOG_FILE_ROOTS",
                path.display()
            ));
        }
        Ok(canonical)
    }

    fn check_file(&self, path: &Path) -> Result<Target, String> {
        let canonical = path
            .canonicalize()
            .map_err(|_| format!("{} does not exist or cannot be read", path.display()))?;
        if !self.roots.iter().any(|root| canonical.starts_with(root)) {
            return Err(format!(
                "{} is outside the directories in PAVED_CATALOG_FILE_ROOTS",
                path.display()
            ));
        }
        if !canonical.is_file() {
            return Err(format!("{} is not a file", path.display()));
        }
        Ok(Target::File(canonical))
    }

    /// Reads a target as UTF-8 text, refusing anything over the size limit.
    pub async fn read(&self, target: &Target) -> Result<String, String> {
        self.read_conditional(target).await.map(|r| r.text)
    }

    /// [`Sources::read`], saying whether the file is the same as last time
    /// where its host can tell (git hosts: ETags, commit ids).
    pub async fn read_conditional(&self, target: &Target) -> Result<Read, String> {
        let fresh = self
            .fresh
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(target);
        if let Some((text, version)) = fresh {
            return Ok(Read {
                text,
                version: Some(version),
            });
        }
        let plain = |text: String| Read {
            text,
            version: None,
        };
        let max = self.limits.max_bytes;
        let too_big = |n: usize| {
            format!(
                "{target} is {} KB; the limit is {} KB",
                n / 1024,
                max / 1024
            )
        };
        match target {
            Target::File(path) => {
                let len = tokio::fs::metadata(path)
                    .await
                    .map_err(|e| format!("cannot read {target}: {e}"))?
                    .len() as usize;
                if len > max {
                    return Err(too_big(len));
                }
                let bytes = tokio::fs::read(path)
                    .await
                    .map_err(|e| format!("cannot read {target}: {e}"))?;
                String::from_utf8(bytes)
                    .map(plain)
                    .map_err(|_| format!("{target} is not UTF-8 text"))
            }
            Target::Url(url) => {
                if let Some(integrations) = &self.integrations {
                    if let Some(integration) = integrations.for_url(url) {
                        return integrations
                            .read_file(integration, url, max)
                            .await
                            .map(|f| Read {
                                text: f.text.as_str().to_owned(),
                                version: f.version,
                            });
                    }
                }
                let mut response = self
                    .http
                    .get(url.clone())
                    .send()
                    .await
                    .map_err(|e| format!("cannot fetch {target}: {e}"))?;
                if !response.status().is_success() {
                    return Err(format!("fetching {target} answered {}", response.status()));
                }
                if let Some(len) = response.content_length() {
                    if len as usize > max {
                        return Err(too_big(len as usize));
                    }
                }
                let mut body = Vec::new();
                while let Some(chunk) = response
                    .chunk()
                    .await
                    .map_err(|e| format!("cannot fetch {target}: {e}"))?
                {
                    body.extend_from_slice(&chunk);
                    if body.len() > max {
                        return Err(too_big(body.len()));
                    }
                }
                String::from_utf8(body)
                    .map(plain)
                    .map_err(|_| format!("{target} is not UTF-8 text"))
            }
            Target::Discovery(url, _) => Err(format!(
                "{url} names repositories to scan, not a file to read"
            )),
            Target::Pasted { content, .. } => {
                if content.len() > max {
                    return Err(too_big(content.len()));
                }
                Ok(plain(content.clone()))
            }
        }
    }

    /// Replaces `{"$text": ...}`, `{"$json": ...}` and `{"$yaml": ...}` values
    /// with the referenced content, read relative to `base`. Returns the
    /// problems as (field path, message); the value is left in place on failure.
    pub async fn resolve_placeholders(
        &self,
        base: &Target,
        value: &mut Value,
    ) -> Vec<(String, String)> {
        self.resolve_placeholders_read(base, value).await.0
    }

    /// [`Sources::resolve_placeholders`], also answering each file read with
    /// its version on its host (`None` where the host cannot tell).
    pub async fn resolve_placeholders_read(
        &self,
        base: &Target,
        value: &mut Value,
    ) -> (Vec<(String, String)>, Vec<(Target, Option<String>)>) {
        let mut problems = Vec::new();
        let mut reads = Vec::new();
        self.walk(base, value, String::new(), &mut problems, &mut reads)
            .await;
        (problems, reads)
    }

    fn walk<'a>(
        &'a self,
        base: &'a Target,
        value: &'a mut Value,
        path: String,
        problems: &'a mut Vec<(String, String)>,
        reads: &'a mut Vec<(Target, Option<String>)>,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + 'a>> {
        Box::pin(async move {
            if let Some((kind, reference)) = placeholder(value) {
                match self.fetch_placeholder(base, kind, &reference, reads).await {
                    Ok(resolved) => *value = resolved,
                    Err(message) => problems.push((path, message)),
                }
                return;
            }
            match value {
                Value::Object(map) => {
                    for (key, child) in map.iter_mut() {
                        let child_path = if path.is_empty() {
                            key.clone()
                        } else {
                            format!("{path}.{key}")
                        };
                        self.walk(base, child, child_path, problems, reads).await;
                    }
                }
                Value::Array(items) => {
                    for (i, child) in items.iter_mut().enumerate() {
                        self.walk(base, child, format!("{path}[{i}]"), problems, reads)
                            .await;
                    }
                }
                _ => {}
            }
        })
    }

    async fn fetch_placeholder(
        &self,
        base: &Target,
        kind: &str,
        reference: &str,
        reads: &mut Vec<(Target, Option<String>)>,
    ) -> Result<Value, String> {
        let target = self
            .resolve(base, reference)
            .map_err(|e| format!("{kind}: {e}"))?;
        let read = self.read_conditional(&target).await;
        reads.push((
            target.clone(),
            read.as_ref().ok().and_then(|r| r.version.clone()),
        ));
        let text = read.map_err(|e| format!("{kind}: {e}"))?.text;
        match kind {
            "$text" => Ok(Value::String(text)),
            "$json" => serde_json::from_str(&text)
                .map_err(|e| format!("$json: {target} is not valid JSON ({e})")),
            _ => match parse_documents(&text).into_iter().next() {
                Some(Ok(v)) => Ok(v),
                Some(Err(e)) => Err(format!("$yaml: {target}: {e}")),
                None => Err(format!("$yaml: {target} is empty")),
            },
        }
    }
}

/// `Some(("$text", "./file"))` when `value` is a one-key placeholder object.
fn placeholder(value: &Value) -> Option<(&'static str, String)> {
    let map = value.as_object()?;
    if map.len() != 1 {
        return None;
    }
    let (key, reference) = map.iter().next()?;
    let kind = ["$text", "$json", "$yaml"].into_iter().find(|k| k == key)?;
    Some((kind, reference.as_str()?.to_owned()))
}

/// Parses multi-document YAML into JSON values, one result per document.
/// Documents that are empty are skipped. Parsing stops at a broken document
/// (its error is the last item), since what follows cannot be located reliably.
pub fn parse_documents(text: &str) -> Vec<Result<Value, String>> {
    use serde::Deserialize;
    let mut out = Vec::new();
    for document in serde_yaml::Deserializer::from_str(text) {
        match serde_yaml::Value::deserialize(document) {
            Ok(serde_yaml::Value::Null) => continue,
            Ok(yaml) => out.push(
                serde_json::to_value(yaml).map_err(|e| format!("not representable as JSON: {e}")),
            ),
            Err(e) => {
                out.push(Err(format!("invalid YAML: {e}")));
                break;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multi_document_yaml() {
        let docs = parse_documents("a: 1\n---\n---\nb: [x, y]\n");
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[1].as_ref().unwrap()["b"][1], "y");
        let broken = parse_documents("a: 1\n---\nb: [unclosed\n");
        assert!(broken[1].as_ref().unwrap_err().contains("invalid YAML"));
    }

    #[test]
    fn alias_bombs_are_refused() {
        let mut bomb = String::from(
            "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
        );
        let names = ["b", "c", "d", "e", "f", "g", "h", "i"];
        let mut previous = "a";
        for n in names {
            bomb.push_str(&format!("{n}: &{n} [*{previous},*{previous},*{previous},*{previous},*{previous},*{previous},*{previous},*{previous},*{previous}]\n"));
            previous = n;
        }
        let docs = parse_documents(&bomb);
        assert!(docs[0].is_err(), "an alias bomb must not expand");
    }

    #[tokio::test]
    async fn files_must_stay_under_the_roots() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("catalog");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::write(root.join("a.yaml"), "x: 1").unwrap();
        std::fs::write(dir.path().join("secret.txt"), "no").unwrap();
        let sources = Sources::new(
            std::slice::from_ref(&root),
            &["example.com".parse().unwrap()],
            SourceLimits::default(),
        );
        let base = sources
            .check("file", root.join("a.yaml").to_str().unwrap())
            .unwrap();
        assert!(sources
            .resolve(&base, "../secret.txt")
            .unwrap_err()
            .contains("outside"));
        assert!(sources
            .resolve(&base, "../../../etc/passwd")
            .unwrap_err()
            .contains("outside"));
        assert!(sources
            .resolve(&base, "./missing.yaml")
            .unwrap_err()
            .contains("does not exist"));
        assert!(sources
            .resolve(&base, "http://169.254.169.254/latest")
            .unwrap_err()
            .contains("not in PAVED_CATALOG_ALLOWED_HOSTS"));
        assert!(sources.resolve(&base, "https://example.com/x.yaml").is_ok());
        assert!(sources.check("ftp", "x").is_err());
    }

    #[test]
    fn allowed_hosts_pin_scheme_host_and_port() {
        let origins: Vec<AllowedOrigin> =
            ["Example.com", "git.internal:8443", "http://127.0.0.1:8080"]
                .iter()
                .map(|raw| raw.parse().unwrap())
                .collect();
        let sources = Sources::new(&[], &origins, SourceLimits::default());
        for ok in [
            "https://example.com/catalog-info.yaml",
            "https://EXAMPLE.com:443/a.yaml",
            "https://git.internal:8443/a.yaml",
            "http://127.0.0.1:8080/a.yaml",
        ] {
            assert!(sources.check("url", ok).is_ok(), "{ok}");
        }
        for refused in [
            // another port or scheme on an allowed host
            "https://example.com:8443/a.yaml",
            "http://example.com/a.yaml",
            "https://example.com:22/a.yaml",
            "http://git.internal:8443/a.yaml",
            "https://git.internal/a.yaml",
            "http://127.0.0.1:8500/v1/sys",
            "https://127.0.0.1:8080/a.yaml",
            "http://127.0.0.1/a.yaml",
            // look-alikes
            "https://example.com.evil.test/a.yaml",
            "https://evil.test/?example.com",
            "https://example.com@evil.test/a.yaml",
        ] {
            let err = sources.check("url", refused).unwrap_err();
            assert!(
                err.contains("not in PAVED_CATALOG_ALLOWED_HOSTS"),
                "{refused}: {err}"
            );
        }
        for bad in [
            "ftp://example.com",
            "example.com/path",
            "*.example.com",
            "user:pw@example.com",
            "",
        ] {
            assert!(bad.parse::<AllowedOrigin>().is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn size_limit_and_placeholders() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        std::fs::write(root.join("big.yaml"), "x".repeat(2048)).unwrap();
        std::fs::write(root.join("def.txt"), "openapi: 3.0.0").unwrap();
        std::fs::write(root.join("data.json"), "{\"k\": [1, 2]}").unwrap();
        std::fs::write(root.join("e.yaml"), "x").unwrap();
        let limits = SourceLimits {
            max_bytes: 1024,
            ..SourceLimits::default()
        };
        let sources = Sources::new(std::slice::from_ref(&root), &[], limits);
        let big = sources
            .check("file", root.join("big.yaml").to_str().unwrap())
            .unwrap();
        assert!(sources
            .read(&big)
            .await
            .unwrap_err()
            .contains("the limit is 1 KB"));

        let base = sources
            .check("file", root.join("e.yaml").to_str().unwrap())
            .unwrap();
        let mut value = serde_json::json!({"spec": {"definition": {"$text": "./def.txt"}, "data": {"$json": "data.json"},
            "bad": {"$text": "../../../etc/passwd"}, "not": {"$text": "a", "other": 1}}});
        let problems = sources.resolve_placeholders(&base, &mut value).await;
        assert_eq!(value["spec"]["definition"], "openapi: 3.0.0");
        assert_eq!(value["spec"]["data"]["k"][1], 2);
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].0, "spec.bad");
        assert!(problems[0].1.contains("outside"));
    }
}
