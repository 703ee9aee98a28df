//! The scaffolder's actions. Each takes its evaluated input and answers its
//! output; in a dry run, the fetch actions run for real in a scratch
//! workspace and the others only say what they would do.

use std::path::{Component, Path, PathBuf};

use serde_json::{json, Value};

use super::expr::Expressions;
use super::log::TaskLog;
use crate::auth::Principal;
use crate::config::GitTarget;
use crate::CoreState;

/// Most files one fetch may write.
pub const MAX_FILES: usize = 5_000;
/// Most bytes one fetch may write.
pub const MAX_BYTES: u64 = 100 * 1024 * 1024;

/// Everything an action may use.
pub struct ActionContext<'a> {
    /// Domain state (database, catalog sources, Vault).
    pub core: &'a CoreState,
    /// The task (or dry run) id.
    pub task_id: &'a str,
    /// The step being run.
    pub step_id: &'a str,
    /// Who the task runs as.
    pub principal: &'a Principal,
    /// The team chosen in the template's owner picker, if it has one.
    pub owner_team: Option<&'a str>,
    /// The task's workspace folder.
    pub workspace: &'a Path,
    /// Where the template was read from (for `./skeleton`).
    pub template_base: Option<&'a super::TemplateBase>,
    /// The task's log.
    pub log: &'a TaskLog,
    /// Only say what would happen (except for fetches).
    pub dry_run: bool,
    /// The expression engine, for skeleton files.
    pub expressions: &'a Expressions,
    /// Set once a `policy:check` step of this run has passed; until then,
    /// publishing checks any Kubernetes manifests itself.
    pub policy_checked: &'a std::sync::atomic::AtomicBool,
}

impl ActionContext<'_> {
    pub(crate) async fn info(&self, message: impl AsRef<str>) {
        self.log.info(Some(self.step_id), message.as_ref()).await;
    }

    /// The team the service is for: the owner picker's, else the creator's
    /// only team.
    pub(crate) fn team(&self) -> Option<&str> {
        self.owner_team.or_else(|| {
            let mut teams = self.principal.teams.keys();
            match (teams.next(), teams.next()) {
                (Some(only), None) => Some(only.as_str()),
                _ => None,
            }
        })
    }
}

/// Runs `action` with `input`; answers its output or a message for people.
pub async fn run(action: &str, ctx: &ActionContext<'_>, input: &Value) -> Result<Value, String> {
    match action {
        "fetch:template" => fetch_template(ctx, input).await,
        "fetch:plain" => fetch_plain(ctx, input).await,
        "fetch:plain:file" => fetch_plain_file(ctx, input).await,
        "publish:git"
        | "publish:github"
        | "publish:gitlab"
        | "publish:bitbucket"
        | "publish:bitbucketCloud"
        | "publish:bitbucketServer" => {
            implicit_policy_check(ctx, input).await?;
            publish_git(ctx, input).await
        }
        "publish:github:pull-request" => {
            implicit_policy_check(ctx, input).await?;
            super::publish::github_pull_request(ctx, input).await
        }
        "policy:check" => policy_check(ctx, input).await,
        "kube:apply" => crate::kube::action::kube_apply(ctx, input).await,
        "catalog:register" => catalog_register(ctx, input).await,
        "vault:provision" => vault_provision(ctx, input).await,
        "notification:send" => notification_send(ctx, input).await,
        "debug:log" => debug_log(ctx, input).await,
        "debug:wait" => debug_wait(ctx, input).await,
        other => Err(format!("Paved has no action `{other}`")),
    }
}

pub(crate) fn input_str<'a>(input: &'a Value, key: &str) -> Option<&'a str> {
    input
        .get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

pub(super) fn required_str<'a>(input: &'a Value, key: &str) -> Result<&'a str, String> {
    input_str(input, key).ok_or_else(|| format!("the input `{key}` is required"))
}

/// A branch name as a git ref may be, and never an option: letters, digits,
/// `.`, `_`, `/`, `-`, not starting with `-` or `.`, no `..`.
pub(super) fn check_branch(branch: &str) -> Result<(), String> {
    let ok = !branch.is_empty()
        && branch.len() <= 200
        && !branch.starts_with(['-', '.', '/'])
        && !branch.contains("..")
        && branch
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '/' | '-'));
    if ok {
        Ok(())
    } else {
        Err(format!("`{branch}` is not a branch name"))
    }
}

/// Joins a relative path onto `root`, refusing absolute paths and `..`.
pub fn safe_join(root: &Path, relative: &str) -> Result<PathBuf, String> {
    let rel = Path::new(relative);
    let mut out = root.to_path_buf();
    for part in rel.components() {
        match part {
            Component::Normal(p) => out.push(p),
            Component::CurDir => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => {
                return Err(format!(
                    "the path `{relative}` would leave the workspace; use a relative path without `..`"
                ))
            }
        }
    }
    Ok(out)
}

/// A skeleton folder ready to read: the template's own folder, or a copy
/// fetched from a git host (removed when this is dropped).
struct Skeleton {
    path: PathBuf,
    fetched: bool,
}

impl Drop for Skeleton {
    fn drop(&mut self) {
        if self.fetched {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// The source folder of a fetch: relative to the template's folder and inside
/// the catalog's file roots, or, for a template read from a git host (or an
/// absolute URL on one), that folder of the repository fetched through the
/// host's integration.
async fn source_path(ctx: &ActionContext<'_>, url: &str) -> Result<Skeleton, String> {
    let remote = if url.starts_with("http://") || url.starts_with("https://") {
        Some(::url::Url::parse(url).map_err(|e| format!("`{url}` is not a URL ({e})"))?)
    } else {
        None
    };
    let local = |base: &Path| -> Result<Skeleton, String> {
        let joined = if Path::new(url).is_absolute() {
            PathBuf::from(url)
        } else {
            base.join(url)
        };
        Ok(Skeleton {
            path: ctx.core.catalog.check_dir(&joined)?,
            fetched: false,
        })
    };
    let integrations = &ctx.core.integrations;
    let (integration, folder) = match (remote, ctx.template_base) {
        (Some(remote), _) => {
            let integration = integrations.for_url(&remote).ok_or_else(|| {
                format!("`{url}` is not on a configured git host (PAVED_INTEGRATIONS); use a path relative to the template, such as ./skeleton")
            })?;
            (integration, crate::integrations::url::parse(integration, &remote)?)
        }
        (None, Some(super::TemplateBase::Dir(dir))) => return local(dir),
        (None, Some(super::TemplateBase::Url(template))) => {
            let integration = integrations.for_url(template).ok_or_else(|| {
                format!("the template was read from {template}, whose host is no longer a configured git host (PAVED_INTEGRATIONS)")
            })?;
            let file = crate::integrations::url::parse(integration, template)?;
            (integration, file.join(url)?)
        }
        (None, None) => {
            return Err("this template has no folder to fetch from (it was pasted into the portal); use an absolute URL on a configured git host".into())
        }
    };
    let dest = ctx.workspace.with_file_name(format!(
        "{}.fetch-{}",
        ctx.task_id,
        uuid::Uuid::new_v4().simple()
    ));
    let skeleton = Skeleton {
        path: dest.clone(),
        fetched: true,
    };
    let count = integrations
        .download(integration, &folder, &dest, MAX_FILES)
        .await?;
    ctx.info(format!(
        "Fetched {count} files of {} from {}",
        if folder.path.is_empty() {
            "/"
        } else {
            &folder.path
        },
        integration.host
    ))
    .await;
    Ok(skeleton)
}

fn globs(input: &Value, keys: &[&str]) -> Result<globset::GlobSet, String> {
    let mut builder = globset::GlobSetBuilder::new();
    for key in keys {
        if let Some(list) = input.get(*key).and_then(Value::as_array) {
            for g in list.iter().filter_map(Value::as_str) {
                let pattern = g.trim_start_matches("./");
                builder.add(
                    globset::GlobBuilder::new(pattern)
                        .literal_separator(false)
                        .build()
                        .map_err(|e| format!("`{g}` is not a valid glob: {e}"))?,
                );
            }
        }
    }
    builder.build().map_err(|e| e.to_string())
}

/// Every file under `dir` (relative paths, sorted); symlinks are refused.
pub(super) fn walk(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(current) = stack.pop() {
        let entries = std::fs::read_dir(&current)
            .map_err(|e| format!("cannot read {}: {e}", current.display()))?;
        for entry in entries {
            let entry = entry.map_err(|e| e.to_string())?;
            let kind = entry.file_type().map_err(|e| e.to_string())?;
            let path = entry.path();
            if kind.is_symlink() {
                return Err(format!(
                    "the skeleton contains a symbolic link ({}); links could point outside it, so they are refused",
                    path.strip_prefix(dir).unwrap_or(&path).display()
                ));
            } else if kind.is_dir() {
                stack.push(path);
            } else {
                out.push(
                    path.strip_prefix(dir)
                        .map_err(|e| e.to_string())?
                        .to_path_buf(),
                );
            }
            if out.len() > MAX_FILES {
                return Err(format!("the skeleton has more than {MAX_FILES} files"));
            }
        }
    }
    out.sort();
    Ok(out)
}

async fn fetch_template(ctx: &ActionContext<'_>, input: &Value) -> Result<Value, String> {
    let url = required_str(input, "url")?;
    let skeleton = source_path(ctx, url).await?;
    let source = skeleton.path.clone();
    let target = safe_join(
        ctx.workspace,
        input_str(input, "targetPath").unwrap_or("./"),
    )?;
    let values = input.get("values").cloned().unwrap_or(json!({}));
    let context = json!({ "values": values });
    let verbatim = globs(input, &["copyWithoutTemplating", "copyWithoutRender"])?;
    let extension = match input.get("templateFileExtension") {
        Some(Value::Bool(true)) => Some(".njk".to_owned()),
        Some(Value::String(s)) if !s.is_empty() => Some(if s.starts_with('.') {
            s.clone()
        } else {
            format!(".{s}")
        }),
        _ => None,
    };
    let files = walk(&source)?;
    ctx.info(format!("Rendering {} files from {url}", files.len()))
        .await;
    let mut written = 0usize;
    let mut bytes = 0u64;
    for rel in files {
        let rel_str = rel.to_string_lossy().replace('\\', "/");
        let copy_as_is = verbatim.is_match(&rel_str)
            || extension
                .as_ref()
                .is_some_and(|ext| !rel_str.ends_with(ext.as_str()));
        // File and folder names are templates too (`${{ values.name }}.rs`).
        let mut rendered_rel = ctx
            .expressions
            .render(&rel_str, &context)
            .map_err(|e| format!("cannot render the path `{rel_str}`: {e}"))?;
        if let Some(ext) = &extension {
            if !copy_as_is {
                rendered_rel = rendered_rel.trim_end_matches(ext.as_str()).to_owned();
            }
        }
        if rendered_rel.trim().is_empty() || rendered_rel.ends_with('/') {
            ctx.info(format!("Skipping {rel_str}: its name renders empty"))
                .await;
            continue;
        }
        let destination = safe_join(&target, &rendered_rel).map_err(|_| {
            format!("the skeleton path `{rel_str}` renders to `{rendered_rel}`, which would leave the workspace")
        })?;
        let raw =
            std::fs::read(source.join(&rel)).map_err(|e| format!("cannot read {rel_str}: {e}"))?;
        bytes += raw.len() as u64;
        if bytes > MAX_BYTES {
            return Err(format!(
                "the skeleton is larger than {} MB",
                MAX_BYTES / 1024 / 1024
            ));
        }
        let contents = match (copy_as_is, String::from_utf8(raw)) {
            (false, Ok(text)) => ctx
                .expressions
                .render(&text, &context)
                .map_err(|e| format!("cannot render {rel_str}: {e}"))?
                .into_bytes(),
            (_, Ok(text)) => text.into_bytes(),
            (_, Err(e)) => e.into_bytes(), // binary files are copied as they are
        };
        if let Some(parent) = destination.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
        }
        std::fs::write(&destination, contents)
            .map_err(|e| format!("cannot write {rendered_rel}: {e}"))?;
        copy_permissions(&source.join(&rel), &destination);
        written += 1;
    }
    ctx.info(format!("Wrote {written} files")).await;
    Ok(json!({}))
}

#[cfg(unix)]
fn copy_permissions(from: &Path, to: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(from) {
        let mode = meta.permissions().mode() & 0o755;
        let _ = std::fs::set_permissions(to, std::fs::Permissions::from_mode(mode | 0o600));
    }
}

#[cfg(not(unix))]
fn copy_permissions(_: &Path, _: &Path) {}

async fn fetch_plain(ctx: &ActionContext<'_>, input: &Value) -> Result<Value, String> {
    let url = required_str(input, "url")?;
    let skeleton = source_path(ctx, url).await?;
    let source = skeleton.path.clone();
    let target = safe_join(
        ctx.workspace,
        input_str(input, "targetPath").unwrap_or("./"),
    )?;
    let files = walk(&source)?;
    for rel in &files {
        let destination = target.join(rel);
        if let Some(parent) = destination.parent() {
            std::fs::create_dir_all(parent).map_err(|e| e.to_string())?;
        }
        std::fs::copy(source.join(rel), &destination)
            .map_err(|e| format!("cannot copy {}: {e}", rel.display()))?;
    }
    ctx.info(format!("Copied {} files from {url}", files.len()))
        .await;
    Ok(json!({}))
}

async fn fetch_plain_file(ctx: &ActionContext<'_>, input: &Value) -> Result<Value, String> {
    let url = required_str(input, "url")?;
    let target = safe_join(ctx.workspace, required_str(input, "targetPath")?)?;
    let base = match ctx.template_base {
        Some(super::TemplateBase::Dir(dir)) => dir,
        Some(super::TemplateBase::Url(_)) => {
            return Err("fetch:plain:file reads files next to templates read from files; for a template on a git host use fetch:plain with the file's folder".into())
        }
        None => return Err("this template has no folder to fetch from".into()),
    };
    let file = base.join(url);
    let dir = file.parent().ok_or("the file has no folder")?;
    let dir = ctx.core.catalog.check_dir(dir)?;
    let name = file.file_name().ok_or("the url names no file")?;
    let source = dir.join(name);
    if !source.is_file() {
        return Err(format!("{url} is not a file"));
    }
    if let Some(parent) = target.parent() {
        std::fs::create_dir_all(parent).map_err(|e| e.to_string())?;
    }
    std::fs::copy(&source, &target).map_err(|e| format!("cannot copy {url}: {e}"))?;
    ctx.info(format!("Copied {url}")).await;
    Ok(json!({}))
}

/// Runs git with no user or system configuration and no prompts; output is masked.
pub(super) async fn git(
    ctx: &ActionContext<'_>,
    dir: &Path,
    args: &[&str],
) -> Result<String, String> {
    git_env(ctx, dir, args, &[]).await
}

/// [`git`] with extra environment (how to reach a remote host).
pub(super) async fn git_env(
    ctx: &ActionContext<'_>,
    dir: &Path,
    args: &[&str],
    env: &[(String, String)],
) -> Result<String, String> {
    let mut command = tokio::process::Command::new("git");
    command.envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    // This git honours the CA file from the environment more reliably than `-c http.sslCAInfo`.
    if let Some(ca) = &ctx.core.config.scaffolder.git_ca_cert {
        command.env("GIT_SSL_CAINFO", ca);
    }
    let output = command
        .args(args)
        .current_dir(dir)
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_AUTHOR_DATE", "")
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| format!("cannot run git ({e}); is git installed?"))?;
    let stderr = ctx
        .log
        .masker()
        .mask(&String::from_utf8_lossy(&output.stderr));
    if !output.status.success() {
        return Err(format!(
            "git {} failed: {}",
            args.first().unwrap_or(&""),
            stderr.trim()
        ));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

async fn publish_git(ctx: &ActionContext<'_>, input: &Value) -> Result<Value, String> {
    let repo_url = required_str(input, "repoUrl")?;
    let parsed = paved_shared::forms::parse_repo_url(repo_url)?;
    let integration = ctx
        .core
        .integrations
        .list()
        .iter()
        .find(|i| i.host == parsed.host.to_ascii_lowercase());
    match integration {
        Some(i) if i.kind.is_github() => {
            return super::publish::github(ctx, input, i, &parsed).await
        }
        Some(i) if i.kind == crate::integrations::HostKind::Gitlab => {
            return super::gitlab::publish(ctx, input, i, &parsed).await
        }
        Some(i)
            if matches!(
                i.kind,
                crate::integrations::HostKind::BitbucketCloud
                    | crate::integrations::HostKind::BitbucketServer
            ) =>
        {
            return super::bitbucket::publish(ctx, input, i, &parsed).await
        }
        _ => {}
    }
    let owner = parsed
        .owner
        .clone()
        .ok_or("the repository location needs an owner (host?owner=team&repo=name)")?;
    let branch = input_str(input, "defaultBranch").unwrap_or("main");
    if !branch
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '/' | '.'))
        || branch.contains("..")
    {
        return Err(format!("`{branch}` is not a branch name"));
    }
    let hosts = &ctx.core.config.scaffolder.git_hosts;
    let host = hosts
        .iter()
        .find(|h| h.host == parsed.host)
        .ok_or_else(|| {
            format!(
                "no git host `{}` is configured (PAVED_SCAFFOLDER_GIT_HOSTS has: {})",
                parsed.host,
                if hosts.is_empty() {
                    "none".to_owned()
                } else {
                    hosts
                        .iter()
                        .map(|h| h.host.clone())
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            )
        })?;
    let source = safe_join(
        ctx.workspace,
        input_str(input, "sourcePath").unwrap_or("./"),
    )?;
    let (remote, remote_url) = match &host.target {
        GitTarget::Local(root) => {
            let path = root.join(&owner).join(format!("{}.git", parsed.repo));
            let url = format!("file://{}", path.display());
            (path.display().to_string(), url)
        }
        GitTarget::Remote(base) => {
            let url = format!(
                "{}/{owner}/{}.git",
                base.as_str().trim_end_matches('/'),
                parsed.repo
            );
            (url.clone(), url)
        }
    };
    let contents_url = format!("git+{remote_url}#{branch}");
    let outputs = json!({
        "remoteUrl": remote_url,
        "repoContentsUrl": contents_url,
        "commitHash": Value::Null,
    });
    if ctx.dry_run {
        ctx.info(format!(
            "Would create {remote_url} and push the workspace to {branch}"
        ))
        .await;
        return Ok(outputs);
    }
    let marker = format!("Paved-Task: {}", ctx.task_id);
    if let GitTarget::Local(_) = &host.target {
        let path = Path::new(&remote);
        if path.exists() {
            // A resumed task may have pushed before the restart: that is success, anything else a clash.
            let message = git(ctx, path, &["log", "-1", "--format=%B", branch])
                .await
                .unwrap_or_default();
            if message.contains(&marker) {
                ctx.info(format!("{remote_url} was already published by this task"))
                    .await;
                let hash = git(ctx, path, &["rev-parse", branch])
                    .await
                    .unwrap_or_default();
                let mut out = outputs;
                out["commitHash"] = json!(hash.trim());
                return Ok(out);
            }
            return Err(format!(
                "a repository already exists at {}/{owner}/{}; choose another name",
                parsed.host, parsed.repo
            ));
        }
        std::fs::create_dir_all(path).map_err(|e| format!("cannot create {remote_url}: {e}"))?;
        git(ctx, path, &["init", "--quiet", "--bare", "-b", branch]).await?;
    }
    if let GitTarget::Remote(_) = &host.target {
        // Never overwrite: a branch already there is a clash, unless this task pushed it (a resume).
        let access = remote_access(ctx, &parsed.host, &host.target).await?;
        // A repository that does not exist yet answers "not found" (https) or "does not
        // appear to be a git repository" (ssh): push-to-create makes it.
        let listed = access
            .git(
                ctx,
                ctx.workspace,
                &["ls-remote", "--heads", &remote, branch],
            )
            .await;
        let heads = match listed {
            Ok(heads) => heads,
            Err(e)
                if e.contains("not found")
                    || e.contains("does not appear to be a git repository")
                    || e.contains("does not exist") =>
            {
                String::new()
            }
            Err(e) => return Err(e),
        };
        if !heads.trim().is_empty() {
            let scratch = tempfile_dir(ctx.workspace, "resume-check")?;
            let into = scratch.display().to_string();
            let fetched = access
                .git(
                    ctx,
                    ctx.workspace,
                    &[
                        "clone", "--quiet", "--depth", "1", "--branch", branch, &remote, &into,
                    ],
                )
                .await;
            let ours = match fetched {
                Ok(_) => git(ctx, &scratch, &["log", "-1", "--format=%B"])
                    .await
                    .unwrap_or_default()
                    .contains(&marker),
                Err(_) => false,
            };
            let _ = std::fs::remove_dir_all(&scratch);
            if ours {
                ctx.info(format!("{remote_url} was already published by this task"))
                    .await;
                return Ok(outputs);
            }
            return Err(format!(
                "a repository already exists at {}/{owner}/{} (its {branch} branch has commits); choose another name",
                parsed.host, parsed.repo
            ));
        }
    }
    let description = input_str(input, "description").unwrap_or("Created by Paved");
    commit_workspace(ctx, input, &source, branch, description, &marker).await?;
    let access = remote_access(ctx, &parsed.host, &host.target).await?;
    let hash = push_workspace(ctx, &source, &remote, &remote_url, branch, &access.env).await?;
    drop(access);
    let mut out = outputs;
    out["commitHash"] = json!(hash);
    Ok(out)
}

/// Pushes the commit [`commit_workspace`] made in `source` to `branch` of
/// `remote` (git's environment `env` holds how to reach it), removes the
/// workspace's repository again and returns the commit's hash; `shown` is
/// the repository as the log names it.
pub(super) async fn push_workspace(
    ctx: &ActionContext<'_>,
    source: &Path,
    remote: &str,
    shown: &str,
    branch: &str,
    env: &[(String, String)],
) -> Result<String, String> {
    let refspec = format!("HEAD:refs/heads/{branch}");
    git_env(
        ctx,
        source,
        &["push", "--quiet", "--", remote, &refspec],
        env,
    )
    .await?;
    let hash = git(ctx, source, &["rev-parse", "HEAD"]).await?;
    let hash = hash.trim().to_owned();
    let _ = std::fs::remove_dir_all(source.join(".git"));
    ctx.info(format!(
        "Published {shown} ({branch} at {})",
        &hash[..hash.len().min(12)]
    ))
    .await;
    Ok(hash)
}

/// Makes `source` one commit on `branch`: the template's message (or
/// "Initial commit"), `description`, and the task's `marker` trailer by which
/// a retried task recognises its own push; author from the input.
pub(super) async fn commit_workspace(
    ctx: &ActionContext<'_>,
    input: &Value,
    source: &Path,
    branch: &str,
    description: &str,
    marker: &str,
) -> Result<(), String> {
    let message = format!(
        "{}\n\n{description}\n\n{marker}",
        input_str(input, "gitCommitMessage").unwrap_or("Initial commit")
    );
    let author_name = input_str(input, "gitAuthorName").unwrap_or("Paved Scaffolder");
    let author_email = input_str(input, "gitAuthorEmail").unwrap_or("scaffolder@paved.invalid");
    let _ = std::fs::remove_dir_all(source.join(".git"));
    git(ctx, source, &["init", "--quiet", "-b", branch]).await?;
    git(ctx, source, &["add", "--all"]).await?;
    let name_cfg = format!("user.name={author_name}");
    let email_cfg = format!("user.email={author_email}");
    git(
        ctx,
        source,
        &[
            "-c", &name_cfg, "-c", &email_cfg, "commit", "--quiet", "-m", &message,
        ],
    )
    .await?;
    Ok(())
}

/// A scratch folder inside the workspace (removed by the caller).
fn tempfile_dir(workspace: &Path, name: &str) -> Result<PathBuf, String> {
    let dir = workspace.join(format!(".paved-{name}-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    Ok(dir)
}

/// How to reach a remote git host: environment only (never command-line
/// options, which other local users can read), plus a scratch folder holding
/// an SSH key while it is needed (removed on drop).
struct Access {
    env: Vec<(String, String)>,
    scratch: Option<PathBuf>,
}

impl Drop for Access {
    fn drop(&mut self) {
        if let Some(dir) = &self.scratch {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

impl Access {
    /// Runs git in `dir` with this access.
    async fn git(
        &self,
        ctx: &ActionContext<'_>,
        dir: &Path,
        args: &[&str],
    ) -> Result<String, String> {
        git_env(ctx, dir, args, &self.env).await
    }
}

/// Credentials for a remote host from Vault at `{prefix}/git/{host}`: for
/// https, `username` and `token` (HTTP Basic); for ssh, `ssh_private_key` and
/// `known_hosts` (the host key is always checked). Local hosts need none.
async fn remote_access(
    ctx: &ActionContext<'_>,
    host: &str,
    target: &GitTarget,
) -> Result<Access, String> {
    let mut access = Access {
        env: Vec::new(),
        scratch: None,
    };
    let GitTarget::Remote(base) = target else {
        return Ok(access);
    };
    let secret = remote_secret(ctx, host).await?;
    let field = |k: &str| {
        secret
            .as_ref()
            .and_then(|d| d.get(k))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    if base.scheme() == "ssh" {
        let key = field("ssh_private_key").ok_or_else(|| {
            format!("Vault has no ssh_private_key for {host} (at {{prefix}}/git/{host})")
        })?;
        let known = field("known_hosts").ok_or_else(|| {
            format!("Vault has no known_hosts for {host}: Paved always checks the host key")
        })?;
        let dir = tempfile_dir(ctx.workspace, "ssh")?;
        let key_path = dir.join("key");
        let known_path = dir.join("known_hosts");
        write_private(&key_path, &format!("{}\n", key.trim_end()))?;
        write_private(&known_path, &format!("{}\n", known.trim_end()))?;
        access.env.push((
            "GIT_SSH_COMMAND".into(),
            format!(
                "ssh -i {} -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile={}",
                key_path.display(),
                known_path.display()
            ),
        ));
        access.scratch = Some(dir);
    } else if let Some(token) = field("token") {
        let user = field("username").unwrap_or_else(|| "git".into());
        access.env.extend(basic_auth_env(&user, &token));
    }
    Ok(access)
}

pub(super) use crate::integrations::git::basic_auth_env;

fn write_private(path: &Path, contents: &str) -> Result<(), String> {
    std::fs::write(path, contents).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

async fn remote_secret(
    ctx: &ActionContext<'_>,
    host: &str,
) -> Result<Option<serde_json::Map<String, Value>>, String> {
    let Some(vault) = &ctx.core.vault else {
        return Ok(None);
    };
    vault
        .read_kv(&format!("{}/git/{host}", vault.config().prefix))
        .await
        .map_err(|e| format!("cannot read the credentials for {host} from Vault: {e}"))
}

async fn catalog_register(ctx: &ActionContext<'_>, input: &Value) -> Result<Value, String> {
    let info_path = input_str(input, "catalogInfoPath").unwrap_or("/catalog-info.yaml");
    let (location_name, yaml) = if let Some(contents) = input_str(input, "repoContentsUrl") {
        if contents.starts_with("https://") || contents.starts_with("http://") {
            return register_from_git_host(ctx, contents, info_path).await;
        }
        let Some(rest) = contents.strip_prefix("git+file://") else {
            let remote = contents.strip_prefix("git+").ok_or_else(|| {
                format!("`{contents}` is not a repository Paved published (git+<url>#<branch>)")
            })?;
            let (url, branch) = remote.split_once('#').unwrap_or((remote, "main"));
            check_branch(branch)?;
            let name = format!("{url}{info_path}");
            if ctx.dry_run {
                let local = safe_join(ctx.workspace, info_path.trim_start_matches('/'))?;
                let yaml = std::fs::read_to_string(&local)
                    .map_err(|_| format!("the workspace has no {info_path} to register"))?;
                return register_yaml(ctx, info_path, name, yaml).await;
            }
            let target = ctx
                .core
                .config
                .scaffolder
                .git_hosts
                .iter()
                .find(|h| matches!(&h.target, GitTarget::Remote(base) if url.starts_with(base.as_str().trim_end_matches('/'))))
                .ok_or_else(|| format!("{url} is not on a configured git host"))?;
            let scratch = tempfile_dir(ctx.workspace, "register")?;
            let access = remote_access(ctx, &target.host, &target.target).await?;
            let into = scratch.display().to_string();
            let cloned = access
                .git(
                    ctx,
                    ctx.workspace,
                    &[
                        "clone", "--quiet", "--depth", "1", "--branch", branch, url, &into,
                    ],
                )
                .await;
            drop(access);
            let yaml = cloned.and_then(|_| {
                std::fs::read_to_string(scratch.join(info_path.trim_start_matches('/')))
                    .map_err(|_| format!("{url} has no {info_path}"))
            });
            let _ = std::fs::remove_dir_all(&scratch);
            return register_yaml(ctx, info_path, name, yaml?).await;
        };
        let (repo, branch) = rest.split_once('#').unwrap_or((rest, "main"));
        check_branch(branch)?;
        // Only repositories under a configured local git host are read.
        let canonical = Path::new(repo).canonicalize().ok();
        let inside = canonical.as_ref().is_some_and(|repo| {
            ctx.core.config.scaffolder.git_hosts.iter().any(|h| {
                matches!(&h.target, GitTarget::Local(root) if root.canonicalize().is_ok_and(|root| repo.starts_with(root)))
            })
        });
        if !inside && !ctx.dry_run {
            return Err(format!(
                "{repo} is not a repository on a configured git host"
            ));
        }
        let spec = format!("{branch}:{}", info_path.trim_start_matches('/'));
        let name = format!("file://{repo}{info_path}");
        if ctx.dry_run {
            let local = safe_join(ctx.workspace, info_path.trim_start_matches('/'))?;
            let yaml = std::fs::read_to_string(&local)
                .map_err(|_| format!("the workspace has no {info_path} to register"))?;
            (name, yaml)
        } else {
            (
                name,
                git(ctx, Path::new(repo), &["show", &spec, "--"]).await?,
            )
        }
    } else if let Some(url) = input_str(input, "catalogInfoUrl") {
        if ctx.dry_run {
            ctx.info(format!("Would register {url}")).await;
            return Ok(json!({"catalogInfoUrl": url}));
        }
        let actor = ctx.principal.actor();
        let register = |dry_run| {
            crate::catalog::store::register_location_as(
                &ctx.core.db,
                &ctx.core.catalog,
                &actor,
                "url",
                url,
                dry_run,
            )
        };
        // Read it first: only what the task's team may own is registered.
        let (_, preview) = register(true).await.map_err(|e| e.to_string())?;
        check_registrable(ctx, url, &preview).await?;
        let (_, crawl) = register(false).await.map_err(|e| e.to_string())?;
        let entity_ref = crawl.entities.first().map(|e| e.entity_ref.to_string());
        return Ok(json!({"entityRef": entity_ref, "catalogInfoUrl": url}));
    } else {
        return Err(
            "the input needs repoContentsUrl (with catalogInfoPath) or catalogInfoUrl".into(),
        );
    };
    register_yaml(ctx, info_path, location_name, yaml).await
}

/// `catalog:register` of a repository on a configured git host
/// (`repoContentsUrl` as `publish:github` answers it, e.g.
/// `https://github.com/acme/svc/blob/main`): read through the integration,
/// checked as the catalog would, and registered as a `url` location of the
/// task's team, so refreshes read the repository.
async fn register_from_git_host(
    ctx: &ActionContext<'_>,
    contents: &str,
    info_path: &str,
) -> Result<Value, String> {
    let url = format!(
        "{}/{}",
        contents.trim_end_matches('/'),
        info_path.trim_start_matches('/')
    );
    if ctx.dry_run {
        let local = safe_join(ctx.workspace, info_path.trim_start_matches('/'))?;
        let yaml = std::fs::read_to_string(&local)
            .map_err(|_| format!("the workspace has no {info_path} to register"))?;
        return register_yaml(ctx, info_path, url, yaml).await;
    }
    let target = ctx.core.catalog.check("url", &url)?;
    let yaml = ctx.core.catalog.read(&target).await?;
    let found = crate::catalog::store::preview_yaml(&ctx.core.catalog, &url, &yaml).await;
    check_registrable(ctx, &url, &found).await?;
    if let Some(p) = found.problems.first() {
        return Err(format!("{info_path} has problems: {}", p.message));
    }
    let entity_ref =
        main_entity_ref(&found).ok_or_else(|| format!("{info_path} has no entities"))?;
    crate::catalog::store::register_scaffolded_url(
        &ctx.core.db,
        &ctx.core.catalog,
        &ctx.principal.actor(),
        &url,
        ctx.owner_team,
    )
    .await
    .map_err(|e| e.to_string())?;
    ctx.info(format!("Registered {entity_ref} from {url}"))
        .await;
    Ok(json!({"entityRef": entity_ref, "catalogInfoUrl": url}))
}

/// The entity a registered file is about: its Component, else its first entity.
fn main_entity_ref(found: &crate::catalog::crawl::Crawl) -> Option<String> {
    found
        .entities
        .iter()
        .find(|e| e.entity_ref.kind == "component")
        .or(found.entities.first())
        .map(|e| e.entity_ref.to_string())
}

/// Checks `yaml` as the catalog would and registers it (or, in a dry run, says what it would register).
async fn register_yaml(
    ctx: &ActionContext<'_>,
    info_path: &str,
    location_name: String,
    yaml: String,
) -> Result<Value, String> {
    let found = crate::catalog::store::preview_yaml(&ctx.core.catalog, &location_name, &yaml).await;
    check_registrable(ctx, &location_name, &found).await?;
    if !found.problems.is_empty() {
        let list: Vec<String> = found
            .problems
            .iter()
            .map(|p| {
                format!(
                    "{}{}",
                    p.field
                        .as_ref()
                        .map(|f| format!("{f}: "))
                        .unwrap_or_default(),
                    p.message
                )
            })
            .collect();
        return Err(format!("{info_path} has problems: {}", list.join("; ")));
    }
    let entity_ref =
        main_entity_ref(&found).ok_or_else(|| format!("{info_path} has no entities"))?;
    if ctx.dry_run {
        ctx.info(format!("Would register {entity_ref} from {location_name}"))
            .await;
        return Ok(json!({"entityRef": entity_ref, "catalogInfoUrl": location_name}));
    }
    crate::catalog::store::register_scaffolded(
        &ctx.core.db,
        &ctx.core.catalog,
        &ctx.principal.actor(),
        &location_name,
        &yaml,
        ctx.owner_team,
    )
    .await
    .map_err(|e| e.to_string())?;
    ctx.info(format!("Registered {entity_ref} in the catalog"))
        .await;
    Ok(json!({"entityRef": entity_ref, "catalogInfoUrl": location_name}))
}

/// The kinds a golden path may register: what a team owns. Locations,
/// Templates, Groups, Users and Domains stay with platform admins.
const REGISTRABLE_KINDS: [&str; 4] = ["component", "api", "resource", "system"];

/// A task registers only what its team may own: entities of
/// [`REGISTRABLE_KINDS`] whose `spec.owner` is the task's owner team (or,
/// without an owner picker, a team the person who started it belongs to),
/// and never an entity that another location already provides.
async fn check_registrable(
    ctx: &ActionContext<'_>,
    location_name: &str,
    found: &crate::catalog::crawl::Crawl,
) -> Result<(), String> {
    use crate::auth::{authorize, Action};
    let mut problems = Vec::new();
    for e in &found.entities {
        let entity_ref = &e.entity_ref;
        let body = e.body();
        if !REGISTRABLE_KINDS.contains(&entity_ref.kind.as_str()) {
            problems.push(format!(
                "{entity_ref} is a {}; a golden path registers only Components, APIs, Resources and Systems (a platform admin registers the rest)",
                body["kind"].as_str().unwrap_or(&entity_ref.kind)
            ));
            continue;
        }
        let owner = body["spec"]["owner"].as_str().unwrap_or_default();
        let owner_ref =
            crate::catalog::model::EntityRef::parse(owner, Some("group"), &entity_ref.namespace);
        let owner_team = match &owner_ref {
            Ok(r) if r.kind == "group" && r.namespace == "default" => Some(r.name.as_str()),
            _ => None,
        };
        // Platform admins' tasks may register for any owner (they may import anything).
        let allowed = ctx.principal.is_admin()
            || match (owner_team, ctx.owner_team) {
                (Some(team), Some(task_team)) => team == task_team,
                (Some(team), None) => authorize(ctx.principal, Action::ActInTeam(team)).is_ok(),
                (None, _) => false,
            };
        if !allowed {
            problems.push(format!(
                "{entity_ref} names owner `{owner}`; this task may register only entities owned by {}",
                ctx.owner_team
                    .map(|t| format!("group:default/{t}"))
                    .unwrap_or_else(|| "a team you belong to".into())
            ));
            continue;
        }
        if let Some(holder) =
            crate::catalog::store::location_of(&ctx.core.db, &entity_ref.to_string())
                .await
                .map_err(|e| e.to_string())?
        {
            if holder != location_name {
                problems.push(format!(
                    "{entity_ref} is already in the catalog from {holder}; choose another name"
                ));
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!("nothing was registered: {}", problems.join("; ")))
    }
}

async fn vault_provision(ctx: &ActionContext<'_>, input: &Value) -> Result<Value, String> {
    use crate::secrets::{self, naming::SecretTarget, SecretValues};
    use secrecy::SecretString;
    let team = required_str(input, "team")?;
    let service = required_str(input, "service")?;
    let name = required_str(input, "name")?;
    let target = if service == secrets::naming::TEAM_SEGMENT {
        SecretTarget::team_wide(team, name)
    } else {
        SecretTarget::service(team, service, name)
    }
    .map_err(|e| e.to_string())?;
    let data = input
        .get("data")
        .and_then(Value::as_object)
        .ok_or("the input `data` must be an object of keys to values")?;
    let mut pairs = Vec::new();
    for (k, v) in data {
        let v = match v {
            Value::String(s) => s.clone(),
            Value::Null => String::new(),
            other => other.to_string(),
        };
        pairs.push((k.clone(), SecretString::from(v)));
    }
    let values = SecretValues::from_pairs(pairs).map_err(|e| e.to_string())?;
    if ctx.dry_run {
        ctx.info(format!(
            "Would write {} key(s) to Vault for {team}/{service}/{name}, with its policy and Kubernetes role",
            values.keys().count()
        ))
        .await;
        return Ok(json!({}));
    }
    let outcome = secrets::write(ctx.core, ctx.principal, &target, values, None)
        .await
        .map_err(|e| e.to_string())?;
    for step in &outcome.steps {
        ctx.info(format!(
            "{}: {:?} ({})",
            step.label, step.state, step.detail
        ))
        .await;
    }
    if !outcome.complete() {
        return Err("the secret was written but its workload access is incomplete; retry this step once Vault is healthy".into());
    }
    let annotations: serde_json::Map<String, Value> = outcome
        .access
        .as_ref()
        .map(|a| {
            a.annotations
                .iter()
                .map(|(k, v)| (k.clone(), json!(v)))
                .collect()
        })
        .unwrap_or_default();
    Ok(json!({
        "path": outcome.secret.path,
        "version": outcome.secret.current_version,
        "policy": outcome.access.as_ref().map(|a| a.policy_name.clone()),
        "role": outcome.access.as_ref().and_then(|a| a.role_name.clone()),
        "annotations": annotations,
    }))
}

async fn notification_send(ctx: &ActionContext<'_>, input: &Value) -> Result<Value, String> {
    let title = required_str(input, "title")?;
    let description = input_str(input, "info").or(input_str(input, "description"));
    // Only links a browser may safely open are kept (a local `file://`
    // repository or a `javascript:` URL is left out, and the log says so).
    let link = match input_str(input, "link") {
        Some(url) if paved_shared::forms::safe_href(url).is_none() => {
            ctx.info(format!(
                "The notification is sent without its link: the link {}",
                paved_shared::forms::UNSAFE_URL_MESSAGE
            ))
            .await;
            None
        }
        other => other,
    };
    let raw_severity = input_str(input, "severity").unwrap_or("normal");
    let Some(severity) = crate::notifications::Severity::parse(raw_severity) else {
        return Err(format!(
            "`{raw_severity}` is not a severity (low, normal, high, critical)"
        ));
    };
    let recipients: Vec<String> = match input_str(input, "recipients").unwrap_or("entity") {
        "broadcast" => vec!["broadcast".into()],
        "entity" => paved_shared::forms::string_list(input.get("entityRefs")),
        other => {
            return Err(format!(
                "`{other}` is not a recipient kind (entity or broadcast)"
            ))
        }
    };
    let mut normalized = Vec::new();
    for r in &recipients {
        if r == "broadcast" {
            normalized.push(r.clone());
            continue;
        }
        let parsed = crate::catalog::model::EntityRef::parse(r, Some("user"), "default")?;
        normalized.push(parsed.to_string());
    }
    if normalized.is_empty() {
        return Err("the notification has no recipients (entityRefs)".into());
    }
    if ctx.dry_run {
        ctx.info(format!("Would notify {}: {title}", normalized.join(", ")))
            .await;
        return Ok(json!({}));
    }
    crate::notifications::send(
        &ctx.core.db,
        &normalized,
        title,
        description,
        link,
        severity,
        Some(ctx.task_id),
    )
    .await
    .map_err(|e| e.to_string())?;
    ctx.info(format!("Notified {}", normalized.join(", ")))
        .await;
    Ok(json!({}))
}

/// Kubernetes manifests under `dir` of the workspace (YAML and JSON files
/// holding at least one Kubernetes object that is not a Backstage entity).
pub(crate) fn manifest_files(
    ctx: &ActionContext<'_>,
    dir: &str,
) -> Result<Vec<paved_policy::docs::SourceFile>, String> {
    let root = safe_join(ctx.workspace, dir)?;
    let mut files = Vec::new();
    let candidates: Vec<PathBuf> = if root.is_file() {
        vec![PathBuf::new()]
    } else if root.is_dir() {
        walk(&root)?
    } else {
        return Err(format!("`{dir}` is not in the workspace"));
    };
    for rel in candidates {
        let path = if rel.as_os_str().is_empty() {
            root.clone()
        } else {
            root.join(&rel)
        };
        let is_manifest = matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml" | "json")
        );
        if !is_manifest || path.components().any(|c| c.as_os_str() == ".git") {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        let shown = path
            .strip_prefix(ctx.workspace)
            .unwrap_or(&path)
            .display()
            .to_string();
        let file = paved_policy::docs::SourceFile::new(shown, text);
        // Files that are not YAML, or hold no Kubernetes object, are not manifests.
        let Ok(docs) = file.documents() else { continue };
        let kubernetes = docs.iter().any(|d| {
            paved_policy::set::is_kubernetes_object(&d.value)
                && !d
                    .value
                    .get("apiVersion")
                    .and_then(Value::as_str)
                    .is_some_and(|a| a.contains("backstage.io/"))
        });
        if kubernetes {
            files.push(file);
        }
    }
    Ok(files)
}

/// `policy:check`: check the workspace's Kubernetes manifests (input `path`,
/// default the whole workspace) against the policies at the scaffolder's
/// enforcement point. Each finding goes to the live log with its file,
/// document, object and message; a `deny` (or a policy that cannot be
/// evaluated) fails the step, so nothing is published.
async fn policy_check(ctx: &ActionContext<'_>, input: &Value) -> Result<Value, String> {
    let path = input_str(input, "path").unwrap_or(".");
    let files = manifest_files(ctx, path)?;
    let output = check_and_log(ctx, &files).await?;
    ctx.policy_checked
        .store(true, std::sync::atomic::Ordering::Relaxed);
    Ok(output)
}

/// Before publishing, when the template has no `policy:check` step, check
/// the published folder's Kubernetes manifests the same way.
async fn implicit_policy_check(ctx: &ActionContext<'_>, input: &Value) -> Result<(), String> {
    if ctx
        .policy_checked
        .load(std::sync::atomic::Ordering::Relaxed)
        || ctx.core.policies.current().is_empty()
    {
        return Ok(());
    }
    let path = input_str(input, "sourcePath").unwrap_or(".");
    let files = manifest_files(ctx, path)?;
    if files.is_empty() {
        return Ok(());
    }
    ctx.info("Checking the Kubernetes manifests against the platform's policies before publishing")
        .await;
    check_and_log(ctx, &files).await.map(|_| ())
}

pub(crate) async fn check_and_log(
    ctx: &ActionContext<'_>,
    files: &[paved_policy::docs::SourceFile],
) -> Result<Value, String> {
    let team = ctx.team();
    let label = format!("task {}: ", ctx.task_id);
    let reports = crate::policy::check_files(
        ctx.core,
        if ctx.dry_run {
            paved_policy::EnforcementPoint::Audit
        } else {
            paved_policy::EnforcementPoint::Scaffolder
        },
        files,
        &label,
        team,
    )
    .map_err(|e| e.to_string())?;
    let mut objects = 0;
    let mut blocking = 0;
    let mut warnings = 0;
    for (file, report) in &reports {
        objects += report.objects;
        for f in &report.findings {
            let what = match f.action.as_str() {
                "deny" => "violation",
                "error" => "policy error",
                "warn" => "warning",
                "excepted" => "excepted by an exception",
                _ => "dry run",
            };
            ctx.log
                .event(
                    Some(ctx.step_id),
                    "log",
                    &format!(
                        "{what}: {file}:{} (document {}) {}: [{}] {}",
                        f.line,
                        f.document + 1,
                        f.object,
                        f.policy,
                        f.message
                    ),
                    Some(f.action.as_str()),
                )
                .await;
            match f.action.as_str() {
                "deny" | "error" => blocking += 1,
                "warn" => warnings += 1,
                _ => {}
            }
        }
    }
    let checked = format!(
        "{objects} Kubernetes object{} in {} file{} checked against {} polic{}",
        if objects == 1 { "" } else { "s" },
        reports.len(),
        if reports.len() == 1 { "" } else { "s" },
        ctx.core.policies.current().len(),
        if ctx.core.policies.current().len() == 1 {
            "y"
        } else {
            "ies"
        },
    );
    if blocking > 0 {
        return Err(format!(
            "{checked}: {blocking} violation{} block publishing; fix the manifests or ask the platform team for an exception",
            if blocking == 1 { "" } else { "s" }
        ));
    }
    ctx.info(format!(
        "{checked}: no violations{}",
        if warnings > 0 {
            format!(
                ", {warnings} warning{}",
                if warnings == 1 { "" } else { "s" }
            )
        } else {
            String::new()
        }
    ))
    .await;
    Ok(json!({"objects": objects, "warnings": warnings, "violations": 0}))
}

async fn debug_log(ctx: &ActionContext<'_>, input: &Value) -> Result<Value, String> {
    if let Some(message) = input.get("message") {
        ctx.info(paved_shared::forms::display(message)).await;
    }
    let list = match input.get("listWorkspace") {
        Some(Value::Bool(true)) => Some(false),
        Some(Value::String(s)) if s == "with-filenames" => Some(false),
        Some(Value::String(s)) if s == "with-contents" => Some(true),
        _ => None,
    };
    if let Some(with_contents) = list {
        for rel in walk(ctx.workspace)? {
            let shown = rel.display().to_string();
            if with_contents {
                let text = std::fs::read_to_string(ctx.workspace.join(&rel))
                    .unwrap_or_else(|_| "(binary)".into());
                ctx.info(format!("{shown}:\n{text}")).await;
            } else {
                ctx.info(shown).await;
            }
        }
    }
    Ok(json!({}))
}

async fn debug_wait(ctx: &ActionContext<'_>, input: &Value) -> Result<Value, String> {
    let number = |k: &str| input.get(k).and_then(Value::as_f64).unwrap_or(0.0);
    let total = number("minutes") * 60.0 + number("seconds") + number("milliseconds") / 1000.0;
    if !(0.0..=600.0).contains(&total) {
        return Err("debug:wait waits at most 10 minutes".into());
    }
    if ctx.dry_run {
        ctx.info(format!("Would wait {total} s")).await;
        return Ok(json!({}));
    }
    ctx.info(format!("Waiting {total} s")).await;
    let until = tokio::time::Instant::now() + std::time::Duration::from_secs_f64(total);
    while tokio::time::Instant::now() < until {
        if super::tasks::cancel_requested(&ctx.core.db, ctx.task_id)
            .await
            .unwrap_or(false)
        {
            return Err("cancelled while waiting".into());
        }
        let left = until.saturating_duration_since(tokio::time::Instant::now());
        tokio::time::sleep(left.min(std::time::Duration::from_millis(100))).await;
    }
    Ok(json!({}))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Attack: a token passed with `-c http.extraHeader=…` is on git's
    /// command line, readable by any local user; it travels in the
    /// environment instead (the https publish test proves git still uses it).
    #[test]
    fn https_credentials_stay_off_the_command_line() {
        use base64::Engine as _;
        let env = basic_auth_env("paved", "git-token-4711");
        let encoded = base64::engine::general_purpose::STANDARD.encode("paved:git-token-4711");
        assert!(env.contains(&("GIT_CONFIG_KEY_0".into(), "http.extraHeader".into())));
        assert!(env.contains(&(
            "GIT_CONFIG_VALUE_0".into(),
            format!("Authorization: Basic {encoded}")
        )));
    }

    #[test]
    fn paths_cannot_leave_the_workspace() {
        let root = Path::new("/w");
        assert_eq!(safe_join(root, "a/b.txt").unwrap(), Path::new("/w/a/b.txt"));
        assert_eq!(safe_join(root, "./a").unwrap(), Path::new("/w/a"));
        assert!(safe_join(root, "../etc/passwd").is_err());
        assert!(safe_join(root, "a/../../x").is_err());
        assert!(safe_join(root, "/etc/passwd").is_err());
    }

    /// Attack: a hostile `repoContentsUrl` fragment would be read by git as
    /// an option (`git show --output=/some/file:…` writes anywhere).
    #[test]
    fn branches_are_never_options() {
        for ok in ["main", "release/1.2", "feature_x-y"] {
            assert!(check_branch(ok).is_ok(), "{ok}");
        }
        for bad in [
            "--output=/tmp/x",
            "-c",
            "a..b",
            ".hidden",
            "a b",
            "main:x",
            "",
            "a\nb",
        ] {
            assert!(check_branch(bad).is_err(), "{bad:?}");
        }
    }
}
