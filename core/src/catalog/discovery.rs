//! Discovery: a location of type `github-discovery` whose target names an
//! organization, a repository-name pattern, a branch and a path, e.g.
//! `https://github.com/acme/*/blob/-/catalog-info.yaml` (`-`: each
//! repository's default branch), or of type `gitlab-discovery` naming a
//! group (its subgroups included) as Backstage writes it:
//! `https://gitlab.example.com/acme/platform/blob/*/catalog-info.yaml`
//! (`*` or `-`: each project's default branch). Each repository found with that file
//! becomes a `url` location of its own (created by `discovery:<id>`), so
//! its status and problems are shown on it; archived repositories are
//! skipped. Reads run at most four at a time per host.

use std::collections::HashSet;

use futures_util::stream::{self, StreamExt};
use url::Url;

use super::crawl::Problem;
use super::source::{Sources, Target};

/// Whether a location of type `kind` scans an organization or group.
pub fn is_discovery(kind: &str) -> bool {
    matches!(kind, "github-discovery" | "gitlab-discovery")
}

/// How many reads of one discovery run are in flight at once.
pub const PARALLEL_READS: usize = 4;

/// A parsed discovery target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    /// The integration's host.
    pub host: String,
    /// The organization or user.
    pub owner: String,
    /// A glob over repository names (`*`, `service-*`).
    pub repos: String,
    /// The branch, or `None` for each repository's default branch.
    pub git_ref: Option<String>,
    /// The file in each repository.
    pub path: String,
}

/// Parses a discovery target of location type `kind`:
/// `https://HOST/OWNER/REPO-GLOB/blob/REF-or--/PATH` (`github-discovery`)
/// or `https://HOST/GROUP[/SUBGROUP…]/blob/REF-or-*/PATH` (`gitlab-discovery`).
pub fn parse(kind: &str, url: &Url) -> Result<Pattern, String> {
    let segments: Vec<&str> = url.path_segments().map(|s| s.collect()).unwrap_or_default();
    let host = crate::integrations::config::host_key(url).unwrap_or_default();
    let default_branch = |r: &str| (!matches!(r, "-" | "*")).then(|| r.to_owned());
    if kind == "gitlab-discovery" {
        let shape = "https://HOST/GROUP/blob/*/catalog-info.yaml (a group, its subgroups included; a branch or * for each default branch; a path)";
        let at = segments.iter().position(|s| *s == "blob");
        return match at {
            Some(i)
                if i >= 1
                    && segments.len() > i + 2
                    && segments[..i].iter().all(|s| !s.is_empty()) =>
            {
                Ok(Pattern {
                    host,
                    owner: segments[..i].join("/"),
                    repos: "*".into(),
                    git_ref: default_branch(segments[i + 1]),
                    path: segments[i + 2..].join("/"),
                })
            }
            _ => Err(format!("{url} is not a discovery target; use {shape}")),
        };
    }
    let shape = "https://HOST/ORG/*/blob/-/catalog-info.yaml (a repository-name pattern, a branch or - for each default branch, a path)";
    match segments.as_slice() {
        [owner, repos, "blob" | "tree", git_ref, path @ ..]
            if !path.is_empty() && !owner.is_empty() && !repos.is_empty() =>
        {
            globset::Glob::new(repos)
                .map_err(|e| format!("`{repos}` is not a repository-name pattern: {e}"))?;
            Ok(Pattern {
                host,
                owner: (*owner).to_owned(),
                repos: (*repos).to_owned(),
                git_ref: default_branch(git_ref),
                path: path.join("/"),
            })
        }
        _ => Err(format!("{url} is not a discovery target; use {shape}")),
    }
}

/// What one scan found.
#[derive(Debug, Default)]
pub struct Scan {
    /// Repositories listed.
    pub repositories: usize,
    /// Of those, skipped because archived.
    pub archived: usize,
    /// The file URLs of repositories that have the file (or had a location already).
    pub found: Vec<Url>,
    /// What went wrong (listing, or reading a repository's file other than "not there").
    pub problems: Vec<Problem>,
}

/// Lists the repositories matching `pattern` and finds which hold its file.
/// Files of repositories in `known` (they have a location already) are not
/// read here: that location's own refresh reads them.
pub async fn scan(
    sources: &Sources,
    target: &Url,
    pattern: &Pattern,
    known: &HashSet<String>,
) -> Scan {
    let mut out = Scan::default();
    let problem = |source: String, message: String| Problem {
        source,
        document: None,
        entity_ref: None,
        field: None,
        message,
    };
    let Some(integrations) = sources.integrations() else {
        out.problems.push(problem(
            target.to_string(),
            "no git host is configured (PAVED_INTEGRATIONS)".into(),
        ));
        return out;
    };
    let Some(integration) = integrations.for_url(target) else {
        out.problems.push(problem(
            target.to_string(),
            format!(
                "{} is not a configured git host (PAVED_INTEGRATIONS)",
                pattern.host
            ),
        ));
        return out;
    };
    let repos = match integrations.list_repos(integration, &pattern.owner).await {
        Ok(r) => r,
        Err(message) => {
            out.problems.push(problem(target.to_string(), message));
            return out;
        }
    };
    let glob = globset::Glob::new(&pattern.repos)
        .map(|g| g.compile_matcher())
        .ok();
    out.repositories = repos.len();
    let mut candidates = Vec::new();
    for repo in repos {
        if !glob.as_ref().is_some_and(|g| g.is_match(&repo.name)) {
            continue;
        }
        // An empty GitLab project has no default branch and nothing to read.
        if repo.default_branch.is_empty() && pattern.git_ref.is_none() {
            continue;
        }
        if repo.archived {
            out.archived += 1;
            continue;
        }
        let branch = pattern.git_ref.clone().unwrap_or(repo.default_branch);
        let blob = if integration.kind.is_github() {
            "blob"
        } else {
            "-/blob"
        };
        let raw = format!(
            "{}://{}/{}/{blob}/{}/{}",
            target.scheme(),
            pattern.host,
            repo.full_name,
            branch,
            pattern.path
        );
        if let Ok(url) = Url::parse(&raw) {
            candidates.push(url);
        }
    }
    let checks = stream::iter(
        candidates
            .into_iter()
            .map(|url| {
                let is_known = known.contains(url.as_str());
                (url, is_known)
            })
            .map(|(url, is_known)| async move {
                if is_known {
                    return (url, Ok(true));
                }
                let read = sources.read(&Target::Url(url.clone())).await;
                (
                    url,
                    match read {
                        Ok(_) => Ok(true),
                        Err(message) if message.contains("(404)") => Ok(false),
                        Err(message) => Err(message),
                    },
                )
            }),
    )
    .buffer_unordered(PARALLEL_READS)
    .collect::<Vec<_>>()
    .await;
    for (url, outcome) in checks {
        match outcome {
            Ok(true) => out.found.push(url),
            Ok(false) => {}
            Err(message) => out.problems.push(problem(url.to_string(), message)),
        }
    }
    out.found.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_name_an_owner_a_pattern_a_branch_and_a_path() {
        let p = parse(
            "github-discovery",
            &Url::parse("https://github.com/acme/service-*/blob/-/catalog-info.yaml").unwrap(),
        )
        .unwrap();
        assert_eq!(
            (
                p.owner.as_str(),
                p.repos.as_str(),
                p.git_ref,
                p.path.as_str()
            ),
            ("acme", "service-*", None, "catalog-info.yaml")
        );
        let p = parse(
            "github-discovery",
            &Url::parse("https://ghe.example.com:8443/acme/*/blob/main/docs/catalog.yaml").unwrap(),
        )
        .unwrap();
        assert_eq!(
            (p.host.as_str(), p.git_ref.as_deref(), p.path.as_str()),
            ("ghe.example.com:8443", Some("main"), "docs/catalog.yaml")
        );
        for bad in [
            "https://github.com/acme",
            "https://github.com/acme/*/issues",
            "https://github.com/acme/*/blob/-",
        ] {
            assert!(
                parse("github-discovery", &Url::parse(bad).unwrap())
                    .unwrap_err()
                    .contains("use https://HOST/ORG/*"),
                "{bad}"
            );
        }
    }

    #[test]
    fn gitlab_targets_name_a_group_with_its_subgroups_a_branch_and_a_path() {
        let p = parse(
            "gitlab-discovery",
            &Url::parse("https://gitlab.example.com/acme/platform/blob/*/catalog-info.yaml")
                .unwrap(),
        )
        .unwrap();
        assert_eq!(
            (p.owner.as_str(), p.git_ref, p.path.as_str()),
            ("acme/platform", None, "catalog-info.yaml")
        );
        let p = parse(
            "gitlab-discovery",
            &Url::parse("https://gitlab.example.com/acme/blob/main/docs/catalog.yaml").unwrap(),
        )
        .unwrap();
        assert_eq!(
            (p.owner.as_str(), p.git_ref.as_deref(), p.path.as_str()),
            ("acme", Some("main"), "docs/catalog.yaml")
        );
        for bad in [
            "https://gitlab.example.com/acme",
            "https://gitlab.example.com/blob/main/catalog-info.yaml",
            "https://gitlab.example.com/acme/blob/main",
        ] {
            assert!(
                parse("gitlab-discovery", &Url::parse(bad).unwrap())
                    .unwrap_err()
                    .contains("use https://HOST/GROUP/blob/*"),
                "{bad}"
            );
        }
    }
}
