//! Reading files and folders with `git` itself: for kind `git` (any git
//! server over http(s)) and for folders on hosts whose API has no tree
//! download. A read is a shallow (`--depth=1`), blob-less (`--filter=blob:none`)
//! fetch of one commit followed by a sparse checkout of just the file or
//! folder asked for, so only those blobs cross the network. A refresh first
//! asks `git ls-remote` for the ref's commit: the same commit is the same
//! bytes, and nothing else is fetched.
//!
//! Credentials reach git through its environment (`GIT_CONFIG_*`), never
//! its arguments, which every local user can read.

use std::path::{Path, PathBuf};
use std::time::Duration;

use url::Url;

use super::config::{HostKind, Integration};
use super::url::RepoPath;

/// How long one git command may take.
const GIT_TIMEOUT: Duration = Duration::from_secs(120);

/// The environment that makes git send `Authorization: Basic` for
/// `user:token` on every request: git reads `GIT_CONFIG_COUNT` /
/// `GIT_CONFIG_KEY_n` / `GIT_CONFIG_VALUE_n` as configuration, so the token
/// never appears on a command line (visible in `ps` and `/proc/*/cmdline`),
/// only in the environment of Paved's own child process.
pub fn basic_auth_env(user: &str, token: &str) -> Vec<(String, String)> {
    use base64::Engine as _;
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{token}"));
    header_env(&format!("Authorization: Basic {basic}"))
}

fn header_env(header: &str) -> Vec<(String, String)> {
    vec![
        ("GIT_CONFIG_COUNT".into(), "1".into()),
        ("GIT_CONFIG_KEY_0".into(), "http.extraHeader".into()),
        ("GIT_CONFIG_VALUE_0".into(), header.to_owned()),
    ]
}

/// The user name each kind of host expects beside a token over git's HTTP
/// (Vault's `username` field, when present, wins).
pub fn default_user(kind: HostKind) -> &'static str {
    match kind {
        HostKind::Github | HostKind::GithubEnterprise => "x-access-token",
        HostKind::Gitlab => "oauth2",
        HostKind::BitbucketCloud => "x-token-auth",
        HostKind::AzureDevops => "pat",
        HostKind::BitbucketServer | HostKind::Gitea | HostKind::Git => "git",
    }
}

/// The https (or http) clone URL of `repo` on `integration`'s host.
pub fn clone_url(integration: &Integration, repo: &str) -> Result<Url, String> {
    if integration.kind == HostKind::Git {
        return Url::parse(repo).map_err(|e| format!("`{repo}` is not a repository URL ({e})"));
    }
    let scheme = match integration.api_base_url.scheme() {
        "http" => "http",
        _ => "https",
    };
    let host = &integration.host;
    let path = match integration.kind {
        HostKind::BitbucketServer => {
            let (project, name) = repo.split_once('/').unwrap_or((repo, ""));
            format!("scm/{}/{name}.git", project.to_ascii_lowercase())
        }
        HostKind::AzureDevops => {
            let mut parts = repo.splitn(3, '/');
            let (org, project, name) = (
                parts.next().unwrap_or_default(),
                parts.next().unwrap_or_default(),
                parts.next().unwrap_or_default(),
            );
            format!("{org}/{project}/_git/{name}")
        }
        _ => format!("{repo}.git"),
    };
    let path = super::url::encode_path(&path);
    Url::parse(&format!("{scheme}://{host}/{path}"))
        .map_err(|e| format!("cannot name {repo}'s clone URL on {host} ({e})"))
}

/// Checks a path inside a repository: no empty, `.` or `..` segment, no
/// backslash or NUL (it becomes a file name on this machine).
pub fn check_path(path: &str) -> Result<(), String> {
    if path.is_empty() {
        return Ok(());
    }
    if path
        .split('/')
        .any(|s| s.is_empty() || s == "." || s == ".." || s.contains(['\\', '\0']))
    {
        return Err(format!(
            "`{path}` is not a plain path inside the repository"
        ));
    }
    Ok(())
}

/// A scratch repository removed when dropped.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs git in `dir` with no user or system configuration and no prompts.
/// A failure answers git's own message (which never holds the credential: it
/// is only in the environment) cut to a readable length.
async fn run(dir: &Path, args: &[&str], env: &[(String, String)]) -> Result<Vec<u8>, String> {
    let mut command = tokio::process::Command::new("git");
    command
        .args(args)
        .current_dir(dir)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_ASKPASS", "")
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    let output = tokio::time::timeout(GIT_TIMEOUT, command.output())
        .await
        .map_err(|_| {
            format!(
                "git {} took longer than {} s",
                args.first().unwrap_or(&""),
                GIT_TIMEOUT.as_secs()
            )
        })?
        .map_err(|e| format!("cannot run git ({e}); is git installed?"))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let message: String = stderr
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with("hint:"))
            .collect::<Vec<_>>()
            .join("; ")
            .chars()
            .take(400)
            .collect();
        return Err(explain(&message));
    }
    Ok(output.stdout)
}

/// Git's words for the usual failures, turned into what to do.
fn explain(message: &str) -> String {
    let lower = message.to_ascii_lowercase();
    if lower.contains("authentication failed")
        || lower.contains("could not read username")
        || lower.contains(" 401")
    {
        format!("the git server refused the credential ({message}); check the token in Vault")
    } else if lower.contains("not found") || lower.contains(" 404") {
        format!(
            "the git server has no such repository, or the credential may not read it ({message})"
        )
    } else if lower.contains("couldn't find remote ref")
        || lower.contains("no matching remote head")
    {
        format!("the repository has no such branch or tag ({message})")
    } else {
        format!("git failed: {message}")
    }
}

/// The commit `git_ref` (a branch or tag; `None` is the default branch)
/// names now, asked with `git ls-remote` (one or two small requests). A full
/// commit id is answered as it is: it cannot move.
pub async fn remote_commit(
    url: &Url,
    git_ref: Option<&str>,
    env: &[(String, String)],
) -> Result<String, String> {
    if let Some(r) = git_ref.filter(|r| is_commit_id(r)) {
        return Ok(r.to_ascii_lowercase());
    }
    let wanted = git_ref.unwrap_or("HEAD");
    if wanted.starts_with('-') {
        return Err(format!("`{wanted}` is not a branch or tag name"));
    }
    let out = run(
        &std::env::temp_dir(),
        &["ls-remote", "--", url.as_str(), wanted],
        env,
    )
    .await?;
    let text = String::from_utf8_lossy(&out);
    let refs: Vec<(&str, &str)> = text.lines().filter_map(|l| l.split_once('\t')).collect();
    let pick = |name: &str| refs.iter().find(|(_, r)| *r == name).map(|(sha, _)| *sha);
    let found = if wanted == "HEAD" {
        pick("HEAD")
    } else {
        pick(&format!("refs/heads/{wanted}"))
            .or_else(|| pick(&format!("refs/tags/{wanted}^{{}}")))
            .or_else(|| pick(&format!("refs/tags/{wanted}")))
            .or_else(|| pick(wanted))
    };
    found
        .map(str::to_owned)
        .ok_or_else(|| format!("{url} has no branch or tag named {wanted}"))
}

fn is_commit_id(r: &str) -> bool {
    r.len() == 40 && r.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A sparse checkout of `path` (a file, or a folder with everything in it)
/// at `git_ref` of `url`, in a scratch folder under `scratch_root`. Answers
/// the scratch (removed on drop), the checked-out root and the commit.
async fn checkout(
    url: &Url,
    git_ref: Option<&str>,
    path: &str,
    env: &[(String, String)],
    scratch_root: &Path,
) -> Result<(Scratch, PathBuf, String), String> {
    check_path(path)?;
    let wanted = git_ref.unwrap_or("HEAD");
    if wanted.starts_with('-') {
        return Err(format!("`{wanted}` is not a branch or tag name"));
    }
    let dir = scratch_root.join(format!("paved-git-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create a scratch folder: {e}"))?;
    let scratch = Scratch(dir.clone());
    run(&dir, &["init", "--quiet"], env).await?;
    run(&dir, &["remote", "add", "origin", url.as_str()], env).await?;
    run(
        &dir,
        &[
            "-c",
            "protocol.version=2",
            "fetch",
            "--quiet",
            "--depth=1",
            "--filter=blob:none",
            "--no-tags",
            "origin",
            wanted,
        ],
        env,
    )
    .await?;
    if !path.is_empty() {
        // One literal pattern: the file itself, or the folder and all below it.
        let escaped: String = path
            .chars()
            .flat_map(|c| {
                let special = matches!(c, '*' | '?' | '[' | ']' | '!' | '#' | ' ');
                special
                    .then_some('\\')
                    .into_iter()
                    .chain(std::iter::once(c))
            })
            .collect();
        let pattern = format!("/{escaped}");
        run(
            &dir,
            &["sparse-checkout", "set", "--no-cone", "--", &pattern],
            env,
        )
        .await?;
    }
    run(&dir, &["checkout", "--quiet", "FETCH_HEAD"], env).await?;
    let commit = String::from_utf8_lossy(&run(&dir, &["rev-parse", "HEAD"], env).await?)
        .trim()
        .to_owned();
    Ok((scratch, dir, commit))
}

/// Reads one file (at most `max` bytes) from `file` of `url`: answers its
/// text and the commit it was read at.
pub async fn read_file(
    url: &Url,
    file: &RepoPath,
    env: &[(String, String)],
    max: usize,
) -> Result<(String, String), String> {
    if file.path.is_empty() {
        return Err(format!(
            "{url} names a repository, not a file: add #REF:PATH"
        ));
    }
    let (_scratch, root, commit) = checkout(
        url,
        file.git_ref.as_deref(),
        &file.path,
        env,
        &std::env::temp_dir(),
    )
    .await?;
    let target = root.join(&file.path);
    let meta = std::fs::symlink_metadata(&target)
        .map_err(|_| format!("{url} has no file {} at {commit}", file.path))?;
    if !meta.is_file() {
        return Err(format!(
            "{} in {url} is not a plain file (a folder or a symbolic link)",
            file.path
        ));
    }
    if meta.len() as usize > max {
        return Err(format!(
            "{} is larger than the {} KB limit",
            file.path,
            max / 1024
        ));
    }
    let bytes = std::fs::read(&target).map_err(|e| format!("cannot read {}: {e}", file.path))?;
    let text = String::from_utf8(bytes).map_err(|_| format!("{} is not UTF-8 text", file.path))?;
    Ok((text, commit))
}

/// Copies the folder `folder` of `url` into `dest` (created): at most
/// `max_files` regular files, each at most `max` bytes. A symbolic link is
/// refused (it could point anywhere on this machine). Answers the count.
pub async fn download(
    url: &Url,
    folder: &RepoPath,
    env: &[(String, String)],
    dest: &Path,
    max_files: usize,
    max: usize,
) -> Result<usize, String> {
    let scratch_root = dest
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(std::env::temp_dir);
    let (_scratch, root, commit) = checkout(
        url,
        folder.git_ref.as_deref(),
        &folder.path,
        env,
        &scratch_root,
    )
    .await?;
    let base = root.join(&folder.path);
    let is_dir = std::fs::symlink_metadata(&base)
        .map(|m| m.is_dir())
        .unwrap_or(false);
    if !is_dir {
        return Err(format!(
            "{url} has no folder {} at {commit}",
            if folder.path.is_empty() {
                "/"
            } else {
                &folder.path
            }
        ));
    }
    let mut files = Vec::new();
    let mut stack = vec![base.clone()];
    while let Some(dir) = stack.pop() {
        let entries = std::fs::read_dir(&dir).map_err(|e| format!("cannot list a folder: {e}"))?;
        for entry in entries {
            let entry = entry.map_err(|e| format!("cannot list a folder: {e}"))?;
            let path = entry.path();
            let relative = path
                .strip_prefix(&base)
                .map_err(|_| "a file outside the folder".to_owned())?
                .to_path_buf();
            if relative == Path::new(".git") {
                continue;
            }
            let meta = std::fs::symlink_metadata(&path).map_err(|e| e.to_string())?;
            if meta.is_dir() {
                stack.push(path);
            } else if meta.is_file() {
                if meta.len() as usize > max {
                    return Err(format!(
                        "{} is larger than the {} KB limit",
                        relative.display(),
                        max / 1024
                    ));
                }
                files.push(relative);
                if files.len() > max_files {
                    return Err(format!("the folder has more than {max_files} files"));
                }
            } else {
                return Err(format!(
                    "{} is a symbolic link, which Paved will not copy from a repository",
                    relative.display()
                ));
            }
        }
    }
    std::fs::create_dir_all(dest).map_err(|e| format!("cannot create {}: {e}", dest.display()))?;
    for relative in &files {
        let target = dest.join(relative);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(|e| e.to_string())?;
        }
        std::fs::copy(base.join(relative), &target)
            .map_err(|e| format!("cannot copy {}: {e}", relative.display()))?;
    }
    Ok(files.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn git(dir: &Path, args: &[&str]) {
        let status = Command::new("git")
            .args(args)
            .current_dir(dir)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@example.com")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@example.com")
            .status()
            .unwrap();
        assert!(status.success(), "git {args:?}");
    }

    /// A repository on disk, read through git's file:// transport (the same
    /// commands the http transport runs).
    fn repo(files: &[(&str, &str)]) -> (tempfile::TempDir, Url) {
        let dir = tempfile::tempdir().unwrap();
        let work = dir.path().join("work");
        std::fs::create_dir_all(&work).unwrap();
        git(&work, &["init", "-q", "-b", "main"]);
        git(&work, &["config", "uploadpack.allowFilter", "true"]);
        for (path, text) in files {
            let p = work.join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        git(&work, &["add", "-A"]);
        git(&work, &["commit", "-q", "-m", "first"]);
        git(&work, &["tag", "v1"]);
        let url = Url::from_file_path(&work).unwrap();
        (dir, url)
    }

    fn at(path: &str, git_ref: Option<&str>) -> RepoPath {
        RepoPath {
            repo: String::new(),
            git_ref: git_ref.map(str::to_owned),
            path: path.into(),
        }
    }

    #[tokio::test]
    async fn a_file_and_a_folder_come_from_one_commit_and_nothing_else_is_checked_out() {
        let (_dir, url) = repo(&[
            ("rust/template.yaml", "kind: Template\n"),
            ("rust/content/README.md", "# ${{ values.name }}\n"),
            ("rust/content/src/main.rs", "fn main() {}\n"),
            ("python/template.yaml", "kind: Template\n"),
        ]);
        let (text, commit) = read_file(&url, &at("rust/template.yaml", Some("main")), &[], 1 << 20)
            .await
            .unwrap();
        assert_eq!(text, "kind: Template\n");
        assert_eq!(
            remote_commit(&url, Some("main"), &[]).await.unwrap(),
            commit
        );
        assert_eq!(remote_commit(&url, Some("v1"), &[]).await.unwrap(), commit);
        assert_eq!(remote_commit(&url, None, &[]).await.unwrap(), commit);

        let out = tempfile::tempdir().unwrap();
        let dest = out.path().join("skeleton");
        let count = download(
            &url,
            &at("rust/content", Some("v1")),
            &[],
            &dest,
            100,
            1 << 20,
        )
        .await
        .unwrap();
        assert_eq!(count, 2);
        assert_eq!(
            std::fs::read_to_string(dest.join("src/main.rs")).unwrap(),
            "fn main() {}\n"
        );
        assert!(!dest.join("template.yaml").exists());
        // The scratch repository is gone.
        let left: Vec<_> = std::fs::read_dir(out.path()).unwrap().collect();
        assert_eq!(left.len(), 1);
    }

    #[tokio::test]
    async fn missing_refs_paths_and_escapes_are_refused_with_a_reason() {
        let (_dir, url) = repo(&[("a.yaml", "a: 1\n")]);
        let err = read_file(&url, &at("a.yaml", Some("nope")), &[], 1000)
            .await
            .unwrap_err();
        assert!(err.contains("no such branch or tag"), "{err}");
        let err = remote_commit(&url, Some("nope"), &[]).await.unwrap_err();
        assert!(err.contains("no branch or tag named nope"), "{err}");
        let err = read_file(&url, &at("b.yaml", Some("main")), &[], 1000)
            .await
            .unwrap_err();
        assert!(err.contains("has no file b.yaml"), "{err}");
        for path in ["../etc/passwd", "a/../../x", "./a.yaml"] {
            let err = read_file(&url, &at(path, Some("main")), &[], 1000)
                .await
                .unwrap_err();
            assert!(err.contains("not a plain path"), "{path}: {err}");
        }
        let err = read_file(&url, &at("a.yaml", Some("--upload-pack=x")), &[], 1000)
            .await
            .unwrap_err();
        assert!(err.contains("not a branch or tag name"), "{err}");
        let err = read_file(&url, &at("a.yaml", Some("main")), &[], 2)
            .await
            .unwrap_err();
        assert!(err.contains("larger than"), "{err}");
    }

    #[tokio::test]
    async fn a_symbolic_link_in_a_skeleton_is_refused() {
        let (_dir, url) = repo(&[("skel/a.txt", "a\n")]);
        let work = url.to_file_path().unwrap();
        std::os::unix::fs::symlink("/etc/passwd", work.join("skel/passwd")).unwrap();
        git(&work, &["add", "-A"]);
        git(&work, &["commit", "-q", "-m", "link"]);
        let out = tempfile::tempdir().unwrap();
        let err = download(
            &url,
            &at("skel", None),
            &[],
            &out.path().join("s"),
            10,
            1000,
        )
        .await
        .unwrap_err();
        assert!(err.contains("symbolic link"), "{err}");
        let err = read_file(&url, &at("skel/passwd", None), &[], 1000)
            .await
            .unwrap_err();
        assert!(err.contains("not a plain file"), "{err}");
    }

    #[test]
    fn clone_urls_of_every_kind() {
        let all = super::super::config::parse(
            "integrations:
  - { host: github.com, kind: github }
  - { host: gitlab.com, kind: gitlab }
  - { host: bitbucket.org, kind: bitbucket-cloud }
  - { host: bitbucket.example.com, kind: bitbucket-server }
  - { host: dev.azure.com, kind: azure-devops }
  - { host: gitea.example.com, kind: gitea }
  - { host: git.example.com, kind: git }
",
        )
        .unwrap();
        let cases = [
            ("acme/api", "https://github.com/acme/api.git"),
            (
                "acme/platform/api",
                "https://gitlab.com/acme/platform/api.git",
            ),
            ("acme/api", "https://bitbucket.org/acme/api.git"),
            ("PAY/api", "https://bitbucket.example.com/scm/pay/api.git"),
            (
                "acme/payments/api",
                "https://dev.azure.com/acme/payments/_git/api",
            ),
            ("acme/api", "https://gitea.example.com/acme/api.git"),
            (
                "https://git.example.com/acme/t.git",
                "https://git.example.com/acme/t.git",
            ),
        ];
        for (integration, (repo, expected)) in all.iter().zip(cases) {
            assert_eq!(
                clone_url(integration, repo).unwrap().as_str(),
                expected,
                "{}",
                integration.kind.as_str()
            );
        }
    }
}
