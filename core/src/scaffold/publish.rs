//! `publish:github` on a configured GitHub integration: the repository is
//! created through the API (never over an existing one), configured (topics,
//! team access, branch protection) and the workspace pushed to it.
//! `publish:github:pull-request` proposes the workspace's files to an
//! existing repository as a pull request.

use reqwest::Method;
use serde_json::{json, Value};

use super::actions::{
    check_branch, commit_workspace, git, git_env, input_str, push_workspace, required_str,
    safe_join, walk, ActionContext,
};
use crate::integrations::Integration;
use paved_shared::forms::RepoUrl;

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 100
        && s != "."
        && s != ".."
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

/// GitHub's message in an error answer, for people.
fn github_message(answer: &Value) -> String {
    let mut message = answer["message"]
        .as_str()
        .unwrap_or("no message")
        .to_owned();
    if let Some(errors) = answer["errors"].as_array() {
        let details: Vec<&str> = errors
            .iter()
            .filter_map(|e| e["message"].as_str())
            .collect();
        if !details.is_empty() {
            message = format!("{message}: {}", details.join("; "));
        }
    }
    message
}

/// Creates `owner/repo` on `integration`'s GitHub and pushes the workspace.
pub(super) async fn github(
    ctx: &ActionContext<'_>,
    input: &Value,
    integration: &Integration,
    parsed: &RepoUrl,
) -> Result<Value, String> {
    let owner = parsed
        .owner
        .clone()
        .ok_or("the repository location needs an owner (host?owner=org&repo=name)")?;
    let name = parsed.repo.clone();
    if !valid_name(&owner) || !valid_name(&name) {
        return Err(format!("`{owner}/{name}` is not a GitHub repository name"));
    }
    let branch = input_str(input, "defaultBranch").unwrap_or("main");
    check_branch(branch)?;
    let description = input_str(input, "description").unwrap_or("Created by Paved");
    let visibility = input_str(input, "repoVisibility").unwrap_or("private");
    if !matches!(visibility, "private" | "internal" | "public") {
        return Err(format!(
            "repoVisibility `{visibility}` must be private, internal or public"
        ));
    }
    let topics: Vec<String> = input
        .get("topics")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_ascii_lowercase)
        .collect();
    if let Some(bad) = topics.iter().find(|t| {
        t.is_empty() || t.len() > 50 || !t.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    }) {
        return Err(format!(
            "topic `{bad}` must be lowercase letters, digits and hyphens (at most 50)"
        ));
    }
    let host = &integration.host;
    let html = format!("https://{host}/{owner}/{name}");
    let mut outputs = json!({
        "remoteUrl": format!("{html}.git"),
        "repoContentsUrl": format!("{html}/blob/{branch}"),
        "commitHash": Value::Null,
    });
    if ctx.dry_run {
        ctx.info(format!(
            "Would create {html} ({visibility}) on {host} and push the workspace to {branch}"
        ))
        .await;
        return Ok(outputs);
    }
    let api = &ctx.core.integrations;
    let marker = format!("Paved-Task: {}", ctx.task_id);
    let (status, existing) = api
        .api(
            integration,
            Method::GET,
            &format!("repos/{owner}/{name}"),
            None,
        )
        .await?;
    let repo = match status {
        200 => {
            // Never overwrite: only this task's own repository may be taken up again.
            let (status, commits) = api
                .api(
                    integration,
                    Method::GET,
                    &format!("repos/{owner}/{name}/commits?sha={branch}&per_page=1"),
                    None,
                )
                .await?;
            let head = commits[0]["commit"]["message"].as_str().unwrap_or_default();
            if status == 200 && head.contains(&marker) {
                ctx.info(format!("{html} was already published by this task"))
                    .await;
                outputs["commitHash"] = commits[0]["sha"].clone();
                return Ok(outputs);
            }
            let empty_and_ours = status == 409 && existing["description"] == json!(description);
            if !empty_and_ours {
                return Err(format!(
                    "a repository already exists at {html}; choose another name"
                ));
            }
            ctx.info(format!("{html} was created by this task before; pushing to it"))
                .await;
            existing
        }
        404 => create(ctx, integration, &owner, &name, description, visibility).await?,
        401 | 403 => {
            return Err(format!(
                "{host} refused to look up {owner}/{name} ({status}): {}; check the credential of the integration",
                github_message(&existing)
            ))
        }
        other => {
            return Err(format!(
                "{host} answered {other} looking up {owner}/{name}: {}",
                github_message(&existing)
            ))
        }
    };
    if !topics.is_empty() {
        let (status, answer) = api
            .api(
                integration,
                Method::PUT,
                &format!("repos/{owner}/{name}/topics"),
                Some(&json!({"names": topics})),
            )
            .await?;
        if status >= 300 {
            return Err(format!(
                "{host} refused the topics ({status}): {}",
                github_message(&answer)
            ));
        }
    }
    grant_access(ctx, integration, input, &owner, &name).await?;

    // Commit the workspace and push it, the token in git's environment only.
    let source = safe_join(
        ctx.workspace,
        input_str(input, "sourcePath").unwrap_or("./"),
    )?;
    commit_workspace(ctx, input, &source, branch, description, &marker).await?;
    let (clone_url, env) = push_access(ctx, integration, &repo, &owner, &name).await?;
    let hash = push_workspace(ctx, &source, &clone_url, &html, branch, &env).await?;

    let protect = input
        .get("protectDefaultBranch")
        .and_then(Value::as_bool)
        .unwrap_or(true);
    if protect {
        protect_branch(ctx, integration, input, &owner, &name, branch).await;
    }
    outputs["remoteUrl"] = json!(clone_url);
    if let Some(html_url) = repo["html_url"]
        .as_str()
        .filter(|u| u.starts_with("https://"))
    {
        outputs["repoContentsUrl"] = json!(format!("{html_url}/blob/{branch}"));
    }
    outputs["commitHash"] = json!(hash);
    Ok(outputs)
}

/// The repository's https clone URL as GitHub answered it, and the
/// environment that gives git the integration's token for it.
async fn push_access(
    ctx: &ActionContext<'_>,
    integration: &Integration,
    repo: &Value,
    owner: &str,
    name: &str,
) -> Result<(String, Vec<(String, String)>), String> {
    let clone_url = repo["clone_url"]
        .as_str()
        .filter(|u| u.starts_with("https://") || u.starts_with("http://"))
        .ok_or_else(|| {
            format!(
                "{} gave no https clone URL for {owner}/{name}",
                integration.host
            )
        })?
        .to_owned();
    let env = ctx
        .core
        .integrations
        .git_env(integration, &format!("{owner}/{name}"))
        .await?;
    Ok((clone_url, env))
}

/// Creates the repository under an organization, or under the credential's
/// own user when `owner` is that user.
async fn create(
    ctx: &ActionContext<'_>,
    integration: &Integration,
    owner: &str,
    name: &str,
    description: &str,
    visibility: &str,
) -> Result<Value, String> {
    let api = &ctx.core.integrations;
    let host = &integration.host;
    let (status, _) = api
        .api(integration, Method::GET, &format!("orgs/{owner}"), None)
        .await?;
    let (path, body) = if status == 200 {
        (
            format!("orgs/{owner}/repos"),
            json!({"name": name, "description": description, "private": visibility != "public",
                   "visibility": visibility, "auto_init": false}),
        )
    } else {
        let (_, me) = api.api(integration, Method::GET, "user", None).await?;
        if me["login"].as_str().map(str::to_ascii_lowercase) != Some(owner.to_ascii_lowercase()) {
            return Err(format!(
                "{owner} is neither an organization on {host} nor the integration's own account; choose an organization the credential may create repositories in"
            ));
        }
        if visibility == "internal" {
            return Err(
                "internal repositories belong to organizations; choose private or public".into(),
            );
        }
        (
            "user/repos".to_owned(),
            json!({"name": name, "description": description, "private": visibility != "public", "auto_init": false}),
        )
    };
    let (status, answer) = api
        .api(integration, Method::POST, &path, Some(&body))
        .await?;
    match status {
        201 => {
            ctx.info(format!("Created {host}/{owner}/{name} ({visibility})")).await;
            Ok(answer)
        }
        422 => Err(format!(
            "{host} would not create {owner}/{name}: {}; choose another name",
            github_message(&answer)
        )),
        other => Err(format!(
            "{host} answered {other} creating {owner}/{name}: {}; check that the credential may create repositories there",
            github_message(&answer)
        )),
    }
}

/// Gives `access` (`org/team-slug` or a user) admin rights; without it, the
/// owning team (its Paved name as the GitHub team slug) may push. A team
/// GitHub does not know is logged, not fatal: the repository exists already.
async fn grant_access(
    ctx: &ActionContext<'_>,
    integration: &Integration,
    input: &Value,
    owner: &str,
    name: &str,
) -> Result<(), String> {
    let api = &ctx.core.integrations;
    let (path, body, who) = match input_str(input, "access") {
        Some(access) => match access.split_once('/') {
            Some((org, team)) if valid_name(org) && valid_name(team) => (
                format!("orgs/{org}/teams/{team}/repos/{owner}/{name}"),
                json!({"permission": "admin"}),
                format!("team {access}"),
            ),
            None if valid_name(access) => (
                format!("repos/{owner}/{name}/collaborators/{access}"),
                json!({"permission": "admin"}),
                format!("user {access}"),
            ),
            _ => {
                return Err(format!(
                    "access `{access}` must be org/team-slug or a user name"
                ))
            }
        },
        None => match ctx.owner_team {
            Some(team) if valid_name(team) => (
                format!("orgs/{owner}/teams/{team}/repos/{owner}/{name}"),
                json!({"permission": "push"}),
                format!("team {owner}/{team}"),
            ),
            _ => return Ok(()),
        },
    };
    let (status, answer) = api
        .api(integration, Method::PUT, &path, Some(&body))
        .await?;
    if status < 300 {
        ctx.info(format!("Gave {who} access to {owner}/{name}"))
            .await;
    } else {
        ctx.info(format!(
            "Could not give {who} access to {owner}/{name} ({status}: {}); grant it on {}",
            github_message(&answer),
            integration.host
        ))
        .await;
    }
    Ok(())
}

/// Requires a reviewed pull request to change the default branch. Plans
/// without branch protection answer 403: that is logged, not fatal.
async fn protect_branch(
    ctx: &ActionContext<'_>,
    integration: &Integration,
    input: &Value,
    owner: &str,
    name: &str,
    branch: &str,
) {
    let code_owners = input
        .get("requireCodeOwnerReviews")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let body = json!({
        "required_status_checks": null,
        "enforce_admins": false,
        "required_pull_request_reviews": {
            "required_approving_review_count": 1,
            "require_code_owner_reviews": code_owners,
        },
        "restrictions": null,
    });
    let answer = ctx
        .core
        .integrations
        .api(
            integration,
            Method::PUT,
            &format!("repos/{owner}/{name}/branches/{branch}/protection"),
            Some(&body),
        )
        .await;
    match answer {
        Ok((status, _)) if status < 300 => {
            ctx.info(format!(
                "Protected {branch}: changes need a reviewed pull request"
            ))
            .await
        }
        Ok((status, answer)) => {
            ctx.info(format!(
                "Could not protect {branch} ({status}: {}); protect it on {}",
                github_message(&answer),
                integration.host
            ))
            .await
        }
        Err(e) => ctx.info(format!("Could not protect {branch}: {e}")).await,
    }
}

/// The GitHub integration serving `repoUrl`'s host.
fn github_integration<'a>(
    ctx: &'a ActionContext<'_>,
    parsed: &RepoUrl,
) -> Result<&'a Integration, String> {
    ctx.core
        .integrations
        .list()
        .iter()
        .find(|i| i.host == parsed.host.to_ascii_lowercase() && i.kind.is_github())
        .ok_or_else(|| {
            format!(
                "{} is not a GitHub host in PAVED_INTEGRATIONS; pull requests are opened on GitHub and GitHub Enterprise hosts",
                parsed.host
            )
        })
}

/// `publish:github:pull-request`: the workspace's files (`sourcePath`),
/// placed at `targetPath` in a clone of the repository's target branch,
/// committed on `branchName` and proposed as a pull request. Backstage's
/// inputs: `repoUrl`, `branchName`, `title`, `description`,
/// `targetBranchName`, `sourcePath`, `targetPath`, `draft`, `reviewers`,
/// `teamReviewers`, `commitMessage`, `update`. A retry finds the pull request
/// its first attempt opened (its commit carries the task's trailer); another
/// open pull request from the same branch is never taken over unless
/// `update` is true.
pub(super) async fn github_pull_request(
    ctx: &ActionContext<'_>,
    input: &Value,
) -> Result<Value, String> {
    let parsed = paved_shared::forms::parse_repo_url(required_str(input, "repoUrl")?)?;
    let integration = github_integration(ctx, &parsed)?;
    let owner = parsed
        .owner
        .clone()
        .ok_or("the repository location needs an owner (host?owner=org&repo=name)")?;
    let name = parsed.repo.clone();
    if !valid_name(&owner) || !valid_name(&name) {
        return Err(format!("`{owner}/{name}` is not a GitHub repository name"));
    }
    let branch = required_str(input, "branchName")?;
    check_branch(branch)?;
    let title = required_str(input, "title")?;
    let body = input_str(input, "description").unwrap_or_default();
    let update = input
        .get("update")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let draft = input.get("draft").and_then(Value::as_bool).unwrap_or(false);
    let list = |key: &str| -> Result<Vec<String>, String> {
        let names: Vec<String> = input
            .get(key)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect();
        match names.iter().find(|n| !valid_name(n)) {
            Some(bad) => Err(format!(
                "`{bad}` in {key} is not a GitHub user or team name"
            )),
            None => Ok(names),
        }
    };
    let reviewers = list("reviewers")?;
    let team_reviewers = list("teamReviewers")?;
    let source = safe_join(
        ctx.workspace,
        input_str(input, "sourcePath").unwrap_or("./"),
    )?;
    let target_path = input_str(input, "targetPath").unwrap_or("./");
    let host = &integration.host;
    let html = format!("https://{host}/{owner}/{name}");
    if ctx.dry_run {
        ctx.info(format!(
            "Would open a pull request from {branch} on {html}: {title}"
        ))
        .await;
        return Ok(json!({
            "remoteUrl": format!("{html}/pulls"),
            "pullRequestNumber": Value::Null,
            "targetBranchName": input_str(input, "targetBranchName").unwrap_or("main"),
        }));
    }
    let api = &ctx.core.integrations;
    let (status, repo) = api
        .api(
            integration,
            Method::GET,
            &format!("repos/{owner}/{name}"),
            None,
        )
        .await?;
    match status {
        200 => {}
        404 => {
            return Err(format!(
                "{html} does not exist, or the credential may not read it; a pull request needs an existing repository (publish:github creates one)"
            ))
        }
        other => {
            return Err(format!(
                "{host} answered {other} looking up {owner}/{name}: {}",
                github_message(&repo)
            ))
        }
    }
    let target = input_str(input, "targetBranchName")
        .or_else(|| repo["default_branch"].as_str())
        .unwrap_or("main")
        .to_owned();
    check_branch(&target)?;
    let marker = format!("Paved-Task: {}", ctx.task_id);
    let outputs = |pull: &Value| {
        json!({
            "remoteUrl": pull["html_url"],
            "pullRequestNumber": pull["number"],
            "targetBranchName": target,
        })
    };

    // An open pull request from this branch: this task's own (a retry), or
    // someone else's, which only `update` may add to.
    let (_, open) = api
        .api(
            integration,
            Method::GET,
            &format!(
                "repos/{owner}/{name}/pulls?state=open&head={}&per_page=100",
                crate::integrations::url::encode(&format!("{owner}:{branch}"))
            ),
            None,
        )
        .await?;
    let existing = open.as_array().and_then(|a| a.first()).cloned();
    if let Some(pull) = &existing {
        let (status, commits) = api
            .api(
                integration,
                Method::GET,
                &format!(
                    "repos/{owner}/{name}/commits?sha={}&per_page=1",
                    crate::integrations::url::encode(branch)
                ),
                None,
            )
            .await?;
        let head = commits[0]["commit"]["message"].as_str().unwrap_or_default();
        if status == 200 && head.contains(&marker) {
            ctx.info(format!(
                "Pull request #{} was already opened by this task",
                pull["number"]
            ))
            .await;
            return Ok(outputs(pull));
        }
        if !update {
            return Err(format!(
                "pull request #{} from {branch} is already open on {html}; choose another branchName, or set update: true to add to it",
                pull["number"]
            ));
        }
    }

    // Clone the target branch, place the files, commit on the new branch, push.
    let (clone_url, env) = push_access(ctx, integration, &repo, &owner, &name).await?;
    let scratch = ctx.workspace.with_file_name(format!(
        "{}.pr-{}",
        ctx.task_id,
        uuid::Uuid::new_v4().simple()
    ));
    struct Remove(std::path::PathBuf);
    impl Drop for Remove {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    let _cleanup = Remove(scratch.clone());
    let parent = scratch
        .parent()
        .ok_or("the workspace has no parent folder")?
        .to_path_buf();
    let scratch_arg = scratch.to_string_lossy().into_owned();
    git_env(
        ctx,
        &parent,
        &[
            "clone",
            "--quiet",
            "--depth=1",
            "--branch",
            &target,
            "--",
            &clone_url,
            &scratch_arg,
        ],
        &env,
    )
    .await?;
    git(ctx, &scratch, &["checkout", "--quiet", "-B", branch]).await?;
    let destination = safe_join(&scratch, target_path)?;
    if destination.starts_with(scratch.join(".git")) {
        return Err("targetPath may not point into .git".into());
    }
    let files = walk(&source)?;
    for relative in &files {
        if relative.components().next().is_some_and(|c| {
            let c = c.as_os_str().to_string_lossy();
            c == ".git" || c.starts_with(".paved-")
        }) {
            continue;
        }
        let to = destination.join(relative);
        if let Some(dir) = to.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        }
        std::fs::copy(source.join(relative), &to)
            .map_err(|e| format!("cannot copy {}: {e}", relative.display()))?;
    }
    git(ctx, &scratch, &["add", "--all"]).await?;
    let staged = git(ctx, &scratch, &["status", "--porcelain"]).await?;
    if staged.trim().is_empty() {
        return Err(format!(
            "the workspace changes nothing in {owner}/{name} at {target}; there is nothing to propose"
        ));
    }
    let message = format!(
        "{}\n\n{body}\n\n{marker}",
        input_str(input, "commitMessage").unwrap_or(title)
    );
    let author_name = format!(
        "user.name={}",
        input_str(input, "gitAuthorName").unwrap_or("Paved Scaffolder")
    );
    let author_email = format!(
        "user.email={}",
        input_str(input, "gitAuthorEmail").unwrap_or("scaffolder@paved.invalid")
    );
    git(
        ctx,
        &scratch,
        &[
            "-c",
            &author_name,
            "-c",
            &author_email,
            "commit",
            "--quiet",
            "-m",
            &message,
        ],
    )
    .await?;
    let refspec = format!("HEAD:refs/heads/{branch}");
    let mut push = vec!["push", "--quiet"];
    if update {
        push.push("--force");
    }
    push.extend(["--", &clone_url, &refspec]);
    git_env(ctx, &scratch, &push, &env).await.map_err(|e| {
        if e.contains("rejected") || e.contains("non-fast-forward") {
            format!("the branch {branch} already exists on {html} with other commits; choose another branchName, or set update: true")
        } else {
            e
        }
    })?;
    let hash = git(ctx, &scratch, &["rev-parse", "HEAD"]).await?;
    ctx.info(format!(
        "Pushed {} files to {branch} ({})",
        files.len(),
        &hash.trim()[..hash.trim().len().min(12)]
    ))
    .await;

    let pull = match existing {
        Some(pull) => pull,
        None => {
            let (status, pull) = api
                .api(
                    integration,
                    Method::POST,
                    &format!("repos/{owner}/{name}/pulls"),
                    Some(&json!({"title": title, "head": branch, "base": target, "body": body, "draft": draft})),
                )
                .await?;
            if status != 201 {
                return Err(format!(
                    "{host} would not open the pull request ({status}): {}",
                    github_message(&pull)
                ));
            }
            pull
        }
    };
    ctx.info(format!("Opened pull request #{} on {html}", pull["number"]))
        .await;
    if !reviewers.is_empty() || !team_reviewers.is_empty() {
        let number = pull["number"].as_u64().unwrap_or_default();
        let (status, answer) = api
            .api(
                integration,
                Method::POST,
                &format!("repos/{owner}/{name}/pulls/{number}/requested_reviewers"),
                Some(&json!({"reviewers": reviewers, "team_reviewers": team_reviewers})),
            )
            .await?;
        if status < 300 {
            ctx.info(format!(
                "Asked {} for a review",
                reviewers
                    .iter()
                    .chain(team_reviewers.iter())
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
            .await;
        } else {
            ctx.info(format!(
                "Could not request reviewers ({status}: {}); add them on {host}",
                github_message(&answer)
            ))
            .await;
        }
    }
    Ok(outputs(&pull))
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_github_accepts() {
        for ok in ["svc", "payments-api", "a.b_c"] {
            assert!(super::valid_name(ok), "{ok}");
        }
        for bad in ["", ".", "..", "a/b", "a b", "x?y"] {
            assert!(!super::valid_name(bad), "{bad}");
        }
    }
}
