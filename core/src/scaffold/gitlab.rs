//! `publish:gitlab` on a configured GitLab integration: the project is
//! created through GitLab's API in its group (or the credential's own
//! namespace), never over an existing one, and the workspace pushed to it.

use reqwest::Method;
use serde_json::{json, Value};

use super::actions::{
    check_branch, commit_workspace, input_str, push_workspace, safe_join, ActionContext,
};
use crate::integrations::url::encode;
use crate::integrations::Integration;
use paved_shared::forms::RepoUrl;

/// A project or group path segment as GitLab accepts it.
fn valid_segment(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 255
        && !s.starts_with(['-', '.'])
        && !s.ends_with(".git")
        && !s.ends_with(".atom")
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

/// GitLab's `message` (a string, or field → messages), for people.
fn gitlab_message(answer: &Value) -> String {
    match &answer["message"] {
        Value::String(s) => s.clone(),
        Value::Object(fields) => fields
            .iter()
            .map(|(k, v)| {
                let list: Vec<&str> = v
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .collect();
                format!("{k} {}", list.join(", "))
            })
            .collect::<Vec<_>>()
            .join("; "),
        _ => answer["error"].as_str().unwrap_or("no message").to_owned(),
    }
}

/// Creates `group/name` on `integration`'s GitLab and pushes the workspace.
/// Inputs as Backstage's `publish:gitlab`: `repoUrl`
/// (`gitlab.example.com?owner=group/subgroup&repo=name`), `defaultBranch`,
/// `repoVisibility`, `topics`, `description`, `sourcePath`,
/// `gitCommitMessage`, `gitAuthorName`, `gitAuthorEmail`.
pub(super) async fn publish(
    ctx: &ActionContext<'_>,
    input: &Value,
    integration: &Integration,
    parsed: &RepoUrl,
) -> Result<Value, String> {
    let owner = parsed
        .owner
        .clone()
        .ok_or("the repository location needs an owner (host?owner=group&repo=name)")?;
    let name = parsed.repo.clone();
    if !owner.split('/').all(valid_segment) || !valid_segment(&name) {
        return Err(format!("`{owner}/{name}` is not a GitLab project path"));
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
        .map(str::to_owned)
        .collect();
    if let Some(bad) = topics
        .iter()
        .find(|t| t.is_empty() || t.len() > 255 || t.contains(','))
    {
        return Err(format!(
            "topic `{bad}` must be 1 to 255 characters, without commas"
        ));
    }
    let host = &integration.host;
    let full = format!("{owner}/{name}");
    let web = format!("https://{host}/{full}");
    let mut outputs = json!({
        "remoteUrl": format!("{web}.git"),
        "repoContentsUrl": format!("{web}/-/blob/{branch}"),
        "projectId": Value::Null,
        "commitHash": Value::Null,
    });
    if ctx.dry_run {
        ctx.info(format!(
            "Would create {web} ({visibility}) on {host} and push the workspace to {branch}"
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
            &format!("projects/{}", encode(&full)),
            None,
        )
        .await?;
    let project = match status {
        200 => {
            // Never overwrite: only this task's own project may be taken up again.
            let id = existing["id"].as_u64().unwrap_or_default();
            let (status, commits) = api
                .api(
                    integration,
                    Method::GET,
                    &format!(
                        "projects/{id}/repository/commits?ref_name={}&per_page=1",
                        encode(branch)
                    ),
                    None,
                )
                .await?;
            let head = commits[0]["message"].as_str().unwrap_or_default();
            if status == 200 && head.contains(&marker) {
                ctx.info(format!("{web} was already published by this task"))
                    .await;
                outputs["projectId"] = json!(id);
                outputs["commitHash"] = commits[0]["id"].clone();
                return Ok(outputs);
            }
            let empty = commits.as_array().is_some_and(Vec::is_empty);
            if !(empty && existing["description"] == json!(description)) {
                return Err(format!(
                    "a project already exists at {web}; choose another name"
                ));
            }
            ctx.info(format!("{web} was created by this task before; pushing to it"))
                .await;
            existing
        }
        404 => create(ctx, integration, &owner, &name, description, visibility, &topics, branch).await?,
        401 | 403 => {
            return Err(format!(
                "{host} refused to look up {full} ({status}): {}; check the credential of the integration",
                gitlab_message(&existing)
            ))
        }
        other => {
            return Err(format!(
                "{host} answered {other} looking up {full}: {}",
                gitlab_message(&existing)
            ))
        }
    };

    let source = safe_join(
        ctx.workspace,
        input_str(input, "sourcePath").unwrap_or("./"),
    )?;
    commit_workspace(ctx, input, &source, branch, description, &marker).await?;
    let clone_url = project["http_url_to_repo"]
        .as_str()
        .filter(|u| u.starts_with("https://") || u.starts_with("http://"))
        .ok_or_else(|| format!("{host} gave no https clone URL for {full}"))?
        .to_owned();
    let env = api.git_env(integration, &full).await?;
    let hash = push_workspace(ctx, &source, &clone_url, &web, branch, &env).await?;
    outputs["remoteUrl"] = json!(clone_url);
    if let Some(web_url) = project["web_url"]
        .as_str()
        .filter(|u| u.starts_with("https://"))
    {
        outputs["repoContentsUrl"] = json!(format!("{web_url}/-/blob/{branch}"));
    }
    outputs["projectId"] = project["id"].clone();
    outputs["commitHash"] = json!(hash);
    Ok(outputs)
}

/// Creates the project in the namespace `owner` (a group path, or the
/// credential's own user).
#[allow(clippy::too_many_arguments)]
async fn create(
    ctx: &ActionContext<'_>,
    integration: &Integration,
    owner: &str,
    name: &str,
    description: &str,
    visibility: &str,
    topics: &[String],
    branch: &str,
) -> Result<Value, String> {
    let api = &ctx.core.integrations;
    let host = &integration.host;
    let (status, namespace) = api
        .api(
            integration,
            Method::GET,
            &format!("namespaces/{}", encode(owner)),
            None,
        )
        .await?;
    if status != 200 {
        return Err(format!(
            "{owner} is not a group or user on {host} that the credential can see ({status}); choose a group the credential may create projects in"
        ));
    }
    let body = json!({
        "name": name,
        "path": name,
        "namespace_id": namespace["id"],
        "description": description,
        "visibility": visibility,
        "topics": topics,
        "initialize_with_readme": false,
        "default_branch": branch,
    });
    let (status, answer) = api
        .api(integration, Method::POST, "projects", Some(&body))
        .await?;
    match status {
        201 => {
            ctx.info(format!("Created {host}/{owner}/{name} ({visibility})"))
                .await;
            Ok(answer)
        }
        400 => Err(format!(
            "{host} would not create {owner}/{name}: {}; choose another name",
            gitlab_message(&answer)
        )),
        other => Err(format!(
            "{host} answered {other} creating {owner}/{name}: {}; check that the credential may create projects there",
            gitlab_message(&answer)
        )),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn paths_gitlab_accepts() {
        for ok in ["svc", "payments-api", "a.b_c"] {
            assert!(super::valid_segment(ok), "{ok}");
        }
        for bad in ["", "-a", ".a", "a.git", "a b", "a/b", "x?y"] {
            assert!(!super::valid_segment(bad), "{bad}");
        }
    }

    #[test]
    fn gitlabs_messages_are_read_in_both_shapes() {
        let taken = serde_json::json!({"message": {"name": ["has already been taken"]}});
        assert_eq!(super::gitlab_message(&taken), "name has already been taken");
        let plain = serde_json::json!({"message": "404 Namespace Not Found"});
        assert_eq!(super::gitlab_message(&plain), "404 Namespace Not Found");
    }
}
