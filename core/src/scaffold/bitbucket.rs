//! `publish:bitbucket` (and Backstage's `publish:bitbucketCloud` /
//! `publish:bitbucketServer`) on a configured Bitbucket integration: the
//! repository is created through the host's API in its workspace (Cloud) or
//! project (Data Center / Server), never over an existing one, and the
//! workspace pushed to it.

use reqwest::Method;
use serde_json::{json, Value};
use url::Url;

use super::actions::{
    check_branch, commit_workspace, input_str, push_workspace, safe_join, ActionContext,
};
use crate::integrations::url::encode;
use crate::integrations::{HostKind, Integration};
use paved_shared::forms::RepoUrl;

/// A workspace, project key or repository slug as Bitbucket accepts it.
fn valid_slug(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && !s.starts_with(['-', '.'])
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

/// Bitbucket's error text, from Cloud's `{"error": {"message"}}` or
/// Server's `{"errors": [{"message"}]}`, for people.
fn bitbucket_message(answer: &Value) -> String {
    if let Some(text) = answer["error"]["message"].as_str() {
        return text.to_owned();
    }
    let listed: Vec<&str> = answer["errors"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["message"].as_str())
        .collect();
    if listed.is_empty() {
        "no message".to_owned()
    } else {
        listed.join("; ")
    }
}

/// The https clone URL among `links.clone` named `name`, without any user
/// name Bitbucket puts in it (the credential goes in git's environment).
fn clone_link(answer: &Value, name: &str) -> Option<String> {
    let href = answer["links"]["clone"]
        .as_array()?
        .iter()
        .find(|l| l["name"] == name)?["href"]
        .as_str()?;
    let mut url = Url::parse(href).ok()?;
    if !matches!(url.scheme(), "https" | "http") {
        return None;
    }
    url.set_username("").ok()?;
    url.set_password(None).ok()?;
    Some(url.to_string())
}

/// Where the repository lives on each kind of Bitbucket.
struct Place {
    /// Cloud: the workspace; Server: the project key.
    space: String,
    slug: String,
    /// Cloud: the project key the repository goes under, when given.
    project: Option<String>,
    /// The API path of the repository.
    api_path: String,
    /// People's URL of the repository.
    web: String,
}

impl Place {
    fn new(integration: &Integration, parsed: &RepoUrl) -> Result<Self, String> {
        let extra = |k: &str| {
            parsed
                .extra
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.clone())
        };
        let host = &integration.host;
        let slug = parsed.repo.clone();
        let (space, api_path, web) = if integration.kind == HostKind::BitbucketCloud {
            let space = extra("workspace").or(parsed.owner.clone()).ok_or(
                "the repository location needs a workspace (bitbucket.org?workspace=ws&project=KEY&repo=name)",
            )?;
            (
                space.clone(),
                format!("repositories/{}/{}", encode(&space), encode(&slug)),
                format!("https://{host}/{space}/{slug}"),
            )
        } else {
            let space = extra("project")
                .or(parsed.owner.clone())
                .ok_or("the repository location needs a project (host?project=KEY&repo=name)")?;
            (
                space.clone(),
                format!("projects/{}/repos/{}", encode(&space), encode(&slug)),
                format!("https://{host}/projects/{space}/repos/{slug}"),
            )
        };
        if !valid_slug(&space) || !valid_slug(&slug) {
            return Err(format!(
                "`{space}/{slug}` is not a Bitbucket repository path"
            ));
        }
        let project = extra("project").filter(|p| !p.is_empty());
        if project.as_deref().is_some_and(|p| !valid_slug(p)) {
            return Err("the project key may use letters, digits, -, _ and . only".into());
        }
        Ok(Self {
            space,
            slug,
            project,
            api_path,
            web,
        })
    }
}

/// Creates the repository on `integration`'s Bitbucket and pushes the
/// workspace. Inputs as Backstage's Bitbucket publishers: `repoUrl`
/// (`bitbucket.org?workspace=ws&project=KEY&repo=name`, or
/// `host?project=KEY&repo=name` for Data Center), `description`,
/// `repoVisibility` (`private` or `public`), `defaultBranch`, `sourcePath`,
/// `gitCommitMessage`, `gitAuthorName`, `gitAuthorEmail`.
pub(super) async fn publish(
    ctx: &ActionContext<'_>,
    input: &Value,
    integration: &Integration,
    parsed: &RepoUrl,
) -> Result<Value, String> {
    let cloud = integration.kind == HostKind::BitbucketCloud;
    let place = Place::new(integration, parsed)?;
    let branch = input_str(input, "defaultBranch").unwrap_or("main");
    check_branch(branch)?;
    let description = input_str(input, "description").unwrap_or("Created by Paved");
    let visibility = input_str(input, "repoVisibility").unwrap_or("private");
    if !matches!(visibility, "private" | "public") {
        return Err(format!(
            "repoVisibility `{visibility}` must be private or public"
        ));
    }
    let host = &integration.host;
    let web = &place.web;
    let contents = if cloud {
        format!("{web}/src/{branch}")
    } else {
        format!("{web}/browse")
    };
    let mut outputs = json!({
        "remoteUrl": Value::Null,
        "repoContentsUrl": contents,
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
        .api(integration, Method::GET, &place.api_path, None)
        .await?;
    let repo = match status {
        200 => {
            // Never overwrite: only this task's own repository may be taken up again.
            let commits = if cloud {
                format!("{}/commits/{}?pagelen=1", place.api_path, encode(branch))
            } else {
                format!(
                    "{}/commits?until={}&limit=1",
                    place.api_path,
                    encode(&format!("refs/heads/{branch}"))
                )
            };
            let (status, commits) = api.api(integration, Method::GET, &commits, None).await?;
            let newest = &commits["values"][0];
            let head_id = if cloud { &newest["hash"] } else { &newest["id"] };
            if status == 200 && newest["message"].as_str().is_some_and(|m| m.contains(&marker)) {
                ctx.info(format!("{web} was already published by this task"))
                    .await;
                outputs["remoteUrl"] = json!(clone_link(&existing, if cloud { "https" } else { "http" }));
                outputs["commitHash"] = head_id.clone();
                return Ok(outputs);
            }
            let empty = status == 404 || newest.is_null();
            if !(empty && existing["description"] == json!(description)) {
                return Err(format!(
                    "a repository already exists at {web}; choose another name"
                ));
            }
            ctx.info(format!("{web} was created by this task before; pushing to it"))
                .await;
            existing
        }
        404 => create(ctx, integration, &place, description, visibility, branch).await?,
        401 | 403 => {
            return Err(format!(
                "{host} refused to look up {}/{} ({status}): {}; check the credential of the integration",
                place.space,
                place.slug,
                bitbucket_message(&existing)
            ))
        }
        other => {
            return Err(format!(
                "{host} answered {other} looking up {}/{}: {}",
                place.space,
                place.slug,
                bitbucket_message(&existing)
            ))
        }
    };

    let source = safe_join(
        ctx.workspace,
        input_str(input, "sourcePath").unwrap_or("./"),
    )?;
    commit_workspace(ctx, input, &source, branch, description, &marker).await?;
    let clone_url = clone_link(&repo, if cloud { "https" } else { "http" })
        .ok_or_else(|| format!("{host} gave no https clone URL for {web}"))?;
    let env = api
        .git_env(integration, &format!("{}/{}", place.space, place.slug))
        .await?;
    let hash = push_workspace(ctx, &source, &clone_url, web, branch, &env).await?;
    outputs["remoteUrl"] = json!(clone_url);
    outputs["commitHash"] = json!(hash);
    Ok(outputs)
}

/// Creates the repository: in Cloud's workspace (under the project key, when
/// given), or in the Data Center project.
async fn create(
    ctx: &ActionContext<'_>,
    integration: &Integration,
    place: &Place,
    description: &str,
    visibility: &str,
    branch: &str,
) -> Result<Value, String> {
    let api = &ctx.core.integrations;
    let host = &integration.host;
    let (path, body) = if integration.kind == HostKind::BitbucketCloud {
        let mut body = json!({
            "scm": "git",
            "description": description,
            "is_private": visibility == "private",
        });
        if let Some(key) = &place.project {
            body["project"] = json!({ "key": key });
        }
        (place.api_path.clone(), body)
    } else {
        (
            format!("projects/{}/repos", encode(&place.space)),
            json!({
                "name": place.slug,
                "scmId": "git",
                "description": description,
                "defaultBranch": branch,
                "public": visibility == "public",
            }),
        )
    };
    let (status, answer) = api
        .api(integration, Method::POST, &path, Some(&body))
        .await?;
    match status {
        200 | 201 => {
            ctx.info(format!("Created {} ({visibility})", place.web)).await;
            Ok(answer)
        }
        400 | 409 => Err(format!(
            "{host} would not create {}/{}: {}; choose another name",
            place.space,
            place.slug,
            bitbucket_message(&answer)
        )),
        404 => Err(format!(
            "{} is not a {} on {host} that the credential can see; choose one it may create repositories in",
            place.space,
            if integration.kind == HostKind::BitbucketCloud { "workspace" } else { "project" }
        )),
        other => Err(format!(
            "{host} answered {other} creating {}/{}: {}; check that the credential may create repositories there",
            place.space,
            place.slug,
            bitbucket_message(&answer)
        )),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    #[test]
    fn slugs_bitbucket_accepts() {
        for ok in ["svc", "PLAT", "payments-api", "a.b_c"] {
            assert!(super::valid_slug(ok), "{ok}");
        }
        for bad in ["", "-a", ".a", "a b", "a/b", "x?y", "é"] {
            assert!(!super::valid_slug(bad), "{bad}");
        }
    }

    #[test]
    fn messages_are_read_from_cloud_and_data_center_bodies() {
        let cloud = json!({"type": "error", "error": {"message": "Repository with this Slug and Owner already exists."}});
        assert_eq!(
            super::bitbucket_message(&cloud),
            "Repository with this Slug and Owner already exists."
        );
        let server = json!({"errors": [{"context": "name", "message": "This repository URL is already taken."}]});
        assert_eq!(
            super::bitbucket_message(&server),
            "This repository URL is already taken."
        );
        assert_eq!(super::bitbucket_message(&json!({})), "no message");
    }

    #[test]
    fn clone_links_lose_their_user_name_and_only_http_is_taken() {
        let answer = json!({"links": {"clone": [
            {"name": "ssh", "href": "git@bitbucket.org:acme/svc.git"},
            {"name": "https", "href": "https://someone@bitbucket.org/acme/svc.git"},
        ]}});
        assert_eq!(
            super::clone_link(&answer, "https").as_deref(),
            Some("https://bitbucket.org/acme/svc.git")
        );
        assert_eq!(super::clone_link(&answer, "ssh"), None);
        let hostile = json!({"links": {"clone": [{"name": "http", "href": "file:///etc/passwd"}]}});
        assert_eq!(super::clone_link(&hostile, "http"), None);
    }
}
