//! How each kind of host names a file or folder in a repository, and where
//! its API serves that file's bytes.

use url::Url;

use super::config::{HostKind, Integration};

/// A file or folder in a repository, as a URL named it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoPath {
    /// The repository: `owner/name` (GitHub, Gitea, Bitbucket Cloud),
    /// `group/sub/project` (GitLab), `PROJECT/repo` (Bitbucket Server),
    /// `org/project/repo` (Azure DevOps), or the clone URL (kind `git`).
    pub repo: String,
    /// The branch, tag or commit; `None` means the default branch.
    pub git_ref: Option<String>,
    /// The path inside the repository, without a leading slash (`""` is the root).
    pub path: String,
}

impl RepoPath {
    /// The same repository and ref, at `path` relative to this one's folder
    /// (this one is a file; `./content` is a sibling folder).
    pub fn join(&self, relative: &str) -> Result<RepoPath, String> {
        let mut parts: Vec<&str> = self.path.split('/').filter(|s| !s.is_empty()).collect();
        parts.pop();
        for segment in relative.split('/') {
            match segment {
                "" | "." => {}
                ".." => {
                    if parts.pop().is_none() {
                        return Err(format!("`{relative}` leaves the repository"));
                    }
                }
                s => parts.push(s),
            }
        }
        Ok(RepoPath {
            repo: self.repo.clone(),
            git_ref: self.git_ref.clone(),
            path: parts.join("/"),
        })
    }
}

fn segments(url: &Url) -> Vec<String> {
    url.path_segments()
        .map(|s| {
            s.filter(|p| !p.is_empty())
                .map(|p| {
                    percent_encoding::percent_decode_str(p)
                        .decode_utf8_lossy()
                        .into_owned()
                })
                .collect()
        })
        .unwrap_or_default()
}

fn query(url: &Url, name: &str) -> Option<String> {
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// Reads a blob, tree or raw URL of `integration`'s kind.
pub fn parse(integration: &Integration, url: &Url) -> Result<RepoPath, String> {
    let s = segments(url);
    let unknown = |shape: &str| {
        format!(
            "{url} is not a file or folder URL of a {} host; use {shape}",
            integration.kind.as_str()
        )
    };
    let rest = |from: usize| s.get(from..).map(|r| r.join("/")).unwrap_or_default();
    match integration.kind {
        HostKind::Github | HostKind::GithubEnterprise => {
            let shape = "https://HOST/OWNER/REPO/blob/REF/PATH (or /tree/, /raw/)";
            match s.get(2).map(String::as_str) {
                Some("blob" | "tree" | "raw") if s.len() >= 4 => Ok(RepoPath {
                    repo: format!("{}/{}", s[0], s[1]),
                    git_ref: Some(s[3].clone()),
                    path: rest(4),
                }),
                None if s.len() == 2 => Ok(RepoPath {
                    repo: format!("{}/{}", s[0], s[1].trim_end_matches(".git")),
                    git_ref: None,
                    path: String::new(),
                }),
                _ => Err(unknown(shape)),
            }
        }
        HostKind::Gitea => {
            let shape = "https://HOST/OWNER/REPO/src/branch/REF/PATH (or /raw/, tag, commit)";
            match (s.get(2).map(String::as_str), s.get(3).map(String::as_str)) {
                (Some("src" | "raw"), Some("branch" | "tag" | "commit")) if s.len() >= 5 => {
                    Ok(RepoPath {
                        repo: format!("{}/{}", s[0], s[1]),
                        git_ref: Some(s[4].clone()),
                        path: rest(5),
                    })
                }
                _ => Err(unknown(shape)),
            }
        }
        HostKind::Gitlab => {
            let shape = "https://HOST/GROUP/PROJECT/-/blob/REF/PATH (or /-/tree/, /-/raw/)";
            let dash = s
                .iter()
                .position(|p| p == "-")
                .ok_or_else(|| unknown(shape))?;
            match s.get(dash + 1).map(String::as_str) {
                Some("blob" | "tree" | "raw") if dash >= 2 && s.len() >= dash + 3 => Ok(RepoPath {
                    repo: s[..dash].join("/"),
                    git_ref: Some(s[dash + 2].clone()),
                    path: rest(dash + 3),
                }),
                _ => Err(unknown(shape)),
            }
        }
        HostKind::BitbucketCloud => {
            let shape = "https://bitbucket.org/WORKSPACE/REPO/src/REF/PATH";
            match s.get(2).map(String::as_str) {
                Some("src" | "raw") if s.len() >= 4 => Ok(RepoPath {
                    repo: format!("{}/{}", s[0], s[1]),
                    git_ref: Some(s[3].clone()),
                    path: rest(4),
                }),
                _ => Err(unknown(shape)),
            }
        }
        HostKind::BitbucketServer => {
            let shape = "https://HOST/projects/PROJECT/repos/REPO/browse/PATH?at=REF";
            match (
                s.first().map(String::as_str),
                s.get(2).map(String::as_str),
                s.get(4).map(String::as_str),
            ) {
                (Some("projects"), Some("repos"), Some("browse" | "raw")) => Ok(RepoPath {
                    repo: format!("{}/{}", s[1], s[3]),
                    git_ref: query(url, "at")
                        .map(|r| r.trim_start_matches("refs/heads/").to_owned()),
                    path: rest(5),
                }),
                _ => Err(unknown(shape)),
            }
        }
        HostKind::AzureDevops => {
            let shape = "https://dev.azure.com/ORG/PROJECT/_git/REPO?path=/PATH&version=GBREF";
            match s.get(2).map(String::as_str) {
                Some("_git") if s.len() == 4 => Ok(RepoPath {
                    repo: format!("{}/{}/{}", s[0], s[1], s[3]),
                    git_ref: query(url, "version").map(|v| {
                        v.strip_prefix("GB")
                            .or_else(|| v.strip_prefix("GT"))
                            .or_else(|| v.strip_prefix("GC"))
                            .unwrap_or(&v)
                            .to_owned()
                    }),
                    path: query(url, "path")
                        .unwrap_or_default()
                        .trim_matches('/')
                        .to_owned(),
                }),
                _ => Err(unknown(shape)),
            }
        }
        HostKind::Git => {
            let shape = "https://HOST/REPO.git#REF:PATH";
            let fragment = url.fragment().ok_or_else(|| unknown(shape))?;
            let (git_ref, path) = fragment.split_once(':').unwrap_or((fragment, ""));
            let mut repo = url.clone();
            repo.set_fragment(None);
            repo.set_query(None);
            Ok(RepoPath {
                repo: repo.to_string(),
                git_ref: (!git_ref.is_empty()).then(|| git_ref.to_owned()),
                path: path.trim_matches('/').to_owned(),
            })
        }
    }
}

/// What a path segment or query value may hold unencoded (RFC 3986's unreserved characters).
const COMPONENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Percent-encodes one path segment or query value.
pub fn encode(part: &str) -> String {
    percent_encoding::utf8_percent_encode(part, COMPONENT).to_string()
}

/// Percent-encodes each segment of a `/`-separated path.
pub fn encode_path(path: &str) -> String {
    path.split('/').map(encode).collect::<Vec<_>>().join("/")
}

/// The API request that answers a file's raw bytes (`None` for kind `git`,
/// which is read with `git` itself).
pub fn raw_file_request(integration: &Integration, file: &RepoPath) -> Option<Url> {
    let api = integration.api_base_url.as_str().trim_end_matches('/');
    let reference = |name: &str| {
        file.git_ref
            .as_deref()
            .map(|r| format!("?{name}={}", encode(r)))
            .unwrap_or_default()
    };
    let raw = match integration.kind {
        HostKind::Github | HostKind::GithubEnterprise => format!(
            "{api}/repos/{}/contents/{}{}",
            encode_path(&file.repo),
            encode_path(&file.path),
            reference("ref")
        ),
        HostKind::Gitea => format!(
            "{api}/repos/{}/raw/{}{}",
            encode_path(&file.repo),
            encode_path(&file.path),
            reference("ref")
        ),
        HostKind::Gitlab => format!(
            "{api}/projects/{}/repository/files/{}/raw?ref={}",
            encode(&file.repo),
            encode(&file.path),
            encode(file.git_ref.as_deref().unwrap_or("HEAD"))
        ),
        HostKind::BitbucketCloud => format!(
            "{api}/repositories/{}/src/{}/{}",
            encode_path(&file.repo),
            encode(file.git_ref.as_deref().unwrap_or("HEAD")),
            encode_path(&file.path)
        ),
        HostKind::BitbucketServer => {
            let (project, repo) = file.repo.split_once('/').unwrap_or((&file.repo, ""));
            format!(
                "{api}/projects/{}/repos/{}/raw/{}{}",
                encode(project),
                encode(repo),
                encode_path(&file.path),
                reference("at")
            )
        }
        HostKind::AzureDevops => {
            let mut parts = file.repo.splitn(3, '/');
            let (org, project, repo) = (
                parts.next().unwrap_or_default(),
                parts.next().unwrap_or_default(),
                parts.next().unwrap_or_default(),
            );
            let version = file
                .git_ref
                .as_deref()
                .map(|r| format!("&versionDescriptor.version={}", encode(r)))
                .unwrap_or_default();
            format!(
                "{api}/{}/{}/_apis/git/repositories/{}/items?path=/{}&api-version=7.1&$format=octetStream{version}",
                encode(org),
                encode(project),
                encode(repo),
                encode_path(&file.path),
            )
        }
        HostKind::Git => return None,
    };
    Url::parse(&raw).ok()
}

#[cfg(test)]
mod tests {
    use super::super::config::parse as parse_config;
    use super::*;

    fn integrations() -> Vec<Integration> {
        parse_config(
            "integrations:
  - { host: github.com, kind: github }
  - { host: ghe.example.com, kind: github-enterprise }
  - { host: gitlab.com, kind: gitlab }
  - { host: bitbucket.org, kind: bitbucket-cloud }
  - { host: bitbucket.example.com, kind: bitbucket-server }
  - { host: dev.azure.com, kind: azure-devops }
  - { host: gitea.example.com, kind: gitea }
  - { host: git.example.com, kind: git }
",
        )
        .unwrap()
    }

    fn resolve(url: &str) -> (RepoPath, Option<String>) {
        let url = Url::parse(url).unwrap();
        let all = integrations();
        let integration = all.iter().find(|i| i.matches(&url)).unwrap();
        let file = parse(integration, &url).unwrap();
        let raw = raw_file_request(integration, &file).map(|u| u.to_string());
        (file, raw)
    }

    #[test]
    fn blob_tree_and_raw_urls_of_every_kind() {
        let cases = [
            (
                "https://github.com/acme/payments-api/blob/main/catalog-info.yaml",
                "acme/payments-api", Some("main"), "catalog-info.yaml",
                Some("https://api.github.com/repos/acme/payments-api/contents/catalog-info.yaml?ref=main"),
            ),
            (
                "https://github.com/acme/templates/tree/v2/rust/service",
                "acme/templates", Some("v2"), "rust/service",
                Some("https://api.github.com/repos/acme/templates/contents/rust/service?ref=v2"),
            ),
            (
                "https://ghe.example.com/acme/svc/raw/main/docs/a%20b.yaml",
                "acme/svc", Some("main"), "docs/a b.yaml",
                Some("https://ghe.example.com/api/v3/repos/acme/svc/contents/docs/a%20b.yaml?ref=main"),
            ),
            (
                "https://gitlab.com/acme/platform/payments/-/blob/main/catalog/catalog-info.yaml",
                "acme/platform/payments", Some("main"), "catalog/catalog-info.yaml",
                Some("https://gitlab.com/api/v4/projects/acme%2Fplatform%2Fpayments/repository/files/catalog%2Fcatalog-info.yaml/raw?ref=main"),
            ),
            (
                "https://bitbucket.org/acme/payments/src/main/catalog-info.yaml",
                "acme/payments", Some("main"), "catalog-info.yaml",
                Some("https://api.bitbucket.org/2.0/repositories/acme/payments/src/main/catalog-info.yaml"),
            ),
            (
                "https://bitbucket.example.com/projects/PAY/repos/api/browse/catalog-info.yaml?at=refs%2Fheads%2Frelease",
                "PAY/api", Some("release"), "catalog-info.yaml",
                Some("https://bitbucket.example.com/rest/api/1.0/projects/PAY/repos/api/raw/catalog-info.yaml?at=release"),
            ),
            (
                "https://dev.azure.com/acme/payments/_git/api?path=/catalog-info.yaml&version=GBmain",
                "acme/payments/api", Some("main"), "catalog-info.yaml",
                Some("https://dev.azure.com/acme/payments/_apis/git/repositories/api/items?path=/catalog-info.yaml&api-version=7.1&$format=octetStream&versionDescriptor.version=main"),
            ),
            (
                "https://gitea.example.com/acme/svc/src/branch/main/catalog-info.yaml",
                "acme/svc", Some("main"), "catalog-info.yaml",
                Some("https://gitea.example.com/api/v1/repos/acme/svc/raw/catalog-info.yaml?ref=main"),
            ),
            (
                "https://git.example.com/acme/templates.git#main:rust/template.yaml",
                "https://git.example.com/acme/templates.git", Some("main"), "rust/template.yaml",
                None,
            ),
        ];
        for (url, repo, git_ref, path, raw) in cases {
            let (file, request) = resolve(url);
            assert_eq!(
                (
                    file.repo.as_str(),
                    file.git_ref.as_deref(),
                    file.path.as_str()
                ),
                (repo, git_ref, path),
                "{url}"
            );
            assert_eq!(request.as_deref(), raw, "{url}");
        }
    }

    #[test]
    fn urls_that_name_no_file_are_refused_with_the_shape_to_use() {
        let all = integrations();
        for url in [
            "https://github.com/acme",
            "https://github.com/acme/svc/issues/1",
            "https://gitlab.com/acme/svc/blob/main/x",
            "https://bitbucket.example.com/users/x",
            "https://git.example.com/acme/templates.git",
        ] {
            let url = Url::parse(url).unwrap();
            let integration = all.iter().find(|i| i.matches(&url)).unwrap();
            let err = parse(integration, &url).unwrap_err();
            assert!(err.contains("use https://"), "{url}: {err}");
        }
    }

    #[test]
    fn relative_paths_stay_in_the_repository() {
        let (file, _) = resolve("https://github.com/acme/t/blob/main/rust/template.yaml");
        assert_eq!(file.join("./content").unwrap().path, "rust/content");
        assert_eq!(file.join("../shared/x").unwrap().path, "shared/x");
        assert!(file.join("../../../etc").is_err());
    }
}
