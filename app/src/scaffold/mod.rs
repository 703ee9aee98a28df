//! Golden paths in the UI: wire types and server functions for the template
//! gallery, the wizard (an island in `wizard.rs`) and the task page (an island
//! in `task.rs`). Secret answers travel in [`SecretPairs`] and never come back.

pub mod task;
pub mod wizard;

use leptos::prelude::*;
use leptos::server_fn::codec::Json;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::AppError;
use crate::secrets::SecretPairs;

/// A template in the gallery.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TemplateCard {
    /// `template:default/name`.
    pub entity_ref: String,
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// Title.
    pub title: String,
    /// Description.
    pub description: String,
    /// Tags.
    pub tags: Vec<String>,
    /// `spec.type`.
    pub spec_type: String,
    /// Minutes saved per run, when the template says.
    pub time_saved_minutes: Option<i64>,
}

/// A catalog entity an entity picker offers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntityOption {
    /// Lowercase kind.
    pub kind: String,
    /// `system:default/checkout`.
    pub entity_ref: String,
    /// Title or name.
    pub title: String,
}

/// Everything the wizard needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WizardData {
    /// The template.
    pub template: TemplateCard,
    /// Its pages.
    pub pages: Vec<paved_shared::forms::Page>,
    /// Teams the user may pick as owner (`group:default/<team>`).
    pub owners: Vec<String>,
    /// Entities for entity pickers.
    pub entities: Vec<EntityOption>,
}

/// One file of a dry run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreviewFile {
    /// Path in the new repository.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// Text (masked), or `None` for binary or large files.
    pub content: Option<String>,
}

/// A dry run's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Preview {
    /// The files the new repository would hold.
    pub files: Vec<PreviewFile>,
    /// (step name, status).
    pub steps: Vec<(String, String)>,
    /// Log lines (masked).
    pub log: Vec<String>,
    /// Why it stopped, if a step failed.
    pub error: Option<String>,
}

/// One step of a task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepInfo {
    /// Step id.
    pub id: String,
    /// Name.
    pub name: String,
    /// open, processing, completed, failed, skipped, cancelled.
    pub status: String,
}

/// One log line of a task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    /// Event id.
    pub id: i64,
    /// The step it belongs to.
    pub step_id: Option<String>,
    /// The text (masked).
    pub message: String,
    /// Unix seconds.
    pub at: i64,
}

/// A task, as its page shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskInfo {
    /// Task id.
    pub id: String,
    /// The template's title.
    pub template_title: String,
    /// open, processing, completed, failed, cancelled.
    pub status: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub finished_at: Option<i64>,
    /// Why it failed.
    pub error: Option<String>,
    /// Steps in order.
    pub steps: Vec<StepInfo>,
    /// The log so far.
    pub log: Vec<LogLine>,
    /// (title, href) from the template's output.
    pub links: Vec<(String, String)>,
    /// (title, HTML rendered from the output's Markdown, raw HTML escaped).
    pub text: Vec<(String, String)>,
    /// Names of the secret answers a retry needs again.
    pub secret_names: Vec<String>,
    /// Whether the caller may cancel or retry.
    pub can_control: bool,
}

#[cfg(feature = "ssr")]
mod convert {
    use super::*;
    use paved_core::scaffold::TemplateSummary;

    pub fn card(t: TemplateSummary) -> TemplateCard {
        let (namespace, name) = t
            .entity_ref
            .split_once(':')
            .and_then(|(_, rest)| rest.split_once('/'))
            .map(|(ns, n)| (ns.to_owned(), n.to_owned()))
            .unwrap_or_else(|| ("default".into(), t.name.clone()));
        TemplateCard {
            entity_ref: t.entity_ref,
            namespace,
            name,
            title: t.title,
            description: t.description,
            tags: t.tags,
            spec_type: t.spec_type,
            time_saved_minutes: t.time_saved_minutes,
        }
    }

    pub fn secrets(
        pairs: SecretPairs,
    ) -> std::collections::BTreeMap<String, secrecy::SecretString> {
        pairs
            .0
            .into_iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| (k, secrecy::SecretString::from(v)))
            .collect()
    }

    /// Markdown to HTML for a template's output text. Answers can appear in it,
    /// so raw HTML is shown as text and only http(s), relative and mailto links survive.
    pub fn markdown(source: &str) -> String {
        use pulldown_cmark::{Event, Parser, Tag};
        let safe = |url: &str| {
            url.starts_with("https://")
                || url.starts_with("http://")
                || url.starts_with('/')
                || url.starts_with("mailto:")
        };
        let events = Parser::new(source).map(|event| match event {
            Event::Html(raw) | Event::InlineHtml(raw) => Event::Text(raw),
            Event::Start(Tag::Link {
                link_type,
                dest_url,
                title,
                id,
            }) if !safe(&dest_url) => Event::Start(Tag::Link {
                link_type,
                dest_url: "#".into(),
                title,
                id,
            }),
            Event::Start(Tag::Image { .. }) | Event::End(pulldown_cmark::TagEnd::Image) => {
                Event::Text("".into())
            }
            other => other,
        });
        let mut html = String::new();
        pulldown_cmark::html::push_html(&mut html, events);
        html
    }

    /// An output link's href: a URL as is, an entity ref to its catalog page.
    pub fn link(link: &Value) -> Option<(String, String)> {
        let title = link["title"].as_str().unwrap_or("Link").to_owned();
        if let Some(url) = link["url"].as_str().filter(|u| !u.is_empty()) {
            return Some((title, url.to_owned()));
        }
        let entity = link["entityRef"].as_str()?;
        let (kind, rest) = entity.split_once(':')?;
        let (namespace, name) = rest.split_once('/').unwrap_or(("default", rest));
        Some((title, crate::catalog::entity_href(kind, namespace, name)))
    }
}

/// Every template, for the gallery.
#[server(endpoint = "scaffold_templates")]
pub async fn scaffold_templates() -> Result<Vec<TemplateCard>, AppError> {
    crate::ssr::require_user()?;
    let core = crate::ssr::core()?;
    Ok(paved_core::scaffold::list_templates(&core)
        .await?
        .into_iter()
        .map(convert::card)
        .collect())
}

/// A template's wizard: pages, the owners the user may pick, entities to pick from.
#[server(endpoint = "scaffold_wizard")]
pub async fn scaffold_wizard(namespace: String, name: String) -> Result<WizardData, AppError> {
    let user = crate::ssr::require_user()?;
    let core = crate::ssr::core()?;
    let reference = format!("template:{namespace}/{name}");
    let (template, _, _) = paved_core::scaffold::load_template(&core, &reference).await?;
    let pages = paved_shared::forms::pages(&template.parameters);
    let mut kinds: Vec<String> = Vec::new();
    for page in &pages {
        collect_kinds(
            &paved_shared::forms::fields(&page.schema, &Value::Null),
            &mut kinds,
        );
    }
    let entities = paved_core::scaffold::entity_options(&core, &kinds)
        .await?
        .into_iter()
        .map(|(kind, entity_ref, title)| EntityOption {
            kind,
            entity_ref,
            title,
        })
        .collect();
    let owners = user
        .teams
        .keys()
        .map(|t| format!("group:default/{t}"))
        .collect();
    Ok(WizardData {
        template: convert::card(paved_core::scaffold::TemplateSummary::from(&template)),
        pages,
        owners,
        entities,
    })
}

#[cfg(feature = "ssr")]
fn collect_kinds(fields: &[paved_shared::forms::Field], out: &mut Vec<String>) {
    for f in fields {
        if let paved_shared::forms::Widget::EntityPicker { kinds } = &f.widget {
            let wanted = if kinds.is_empty() {
                vec![
                    "component".to_owned(),
                    "system".to_owned(),
                    "group".to_owned(),
                ]
            } else {
                kinds.clone()
            };
            for k in wanted {
                if !out.contains(&k) {
                    out.push(k);
                }
            }
        }
        collect_kinds(&f.children, out);
    }
}

/// Previews what a run would create, without publishing anything.
#[server(endpoint = "scaffold_dry_run", input = Json)]
pub async fn scaffold_dry_run(
    template_ref: String,
    values: Value,
    secrets: SecretPairs,
) -> Result<Preview, AppError> {
    let user = crate::ssr::require_user()?;
    let core = crate::ssr::core()?;
    let request = paved_core::scaffold::RunRequest {
        template_ref,
        values,
        secrets: convert::secrets(secrets),
        wizard_session: None,
    };
    let result = paved_core::scaffold::dry_run(&core, &user, request).await?;
    Ok(Preview {
        files: result
            .files
            .into_iter()
            .map(|f| PreviewFile {
                path: f.path,
                size: f.size,
                content: f.content,
            })
            .collect(),
        steps: result
            .steps
            .into_iter()
            .map(|s| (s.name, s.status))
            .collect(),
        log: result.log.into_iter().map(|(_, m)| m).collect(),
        error: result.error,
    })
}

/// Starts a task; answers its id.
#[server(endpoint = "scaffold_create", input = Json)]
pub async fn scaffold_create(
    template_ref: String,
    values: Value,
    secrets: SecretPairs,
    session: String,
) -> Result<String, AppError> {
    let user = crate::ssr::require_user()?;
    let core = crate::ssr::core()?;
    let request = paved_core::scaffold::RunRequest {
        template_ref,
        values,
        secrets: convert::secrets(secrets),
        wizard_session: (!session.is_empty()).then_some(session),
    };
    Ok(paved_core::scaffold::create_task(&core, &user, request).await?)
}

/// A task with its log so far.
#[server(endpoint = "scaffold_task")]
pub async fn scaffold_task(id: String) -> Result<TaskInfo, AppError> {
    let user = crate::ssr::require_user()?;
    let core = crate::ssr::core()?;
    let task = paved_core::scaffold::task(&core, &user, &id).await?;
    let events = paved_core::scaffold::events(&core, &user, &id, 0).await?;
    let output = task.output.clone().unwrap_or(Value::Null);
    Ok(TaskInfo {
        can_control: user.is_admin() || task.created_by == user.actor(),
        links: output["links"]
            .as_array()
            .map(|l| l.iter().filter_map(convert::link).collect())
            .unwrap_or_default(),
        text: output["text"]
            .as_array()
            .map(|l| {
                l.iter()
                    .map(|t| {
                        (
                            t["title"].as_str().unwrap_or_default().to_owned(),
                            convert::markdown(t["content"].as_str().unwrap_or_default()),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default(),
        log: events
            .into_iter()
            .map(|e| LogLine {
                id: e.id,
                step_id: e.step_id,
                message: e.message,
                at: e.at,
            })
            .collect(),
        steps: task
            .steps
            .iter()
            .map(|s| StepInfo {
                id: s.id.clone(),
                name: s.name.clone(),
                status: s.status.clone(),
            })
            .collect(),
        id: task.id,
        template_title: task.template_title,
        status: task.status,
        created_at: task.created_at,
        finished_at: task.finished_at,
        error: task.error,
        secret_names: task.secret_names,
    })
}

/// The caller's tasks, newest first.
#[server(endpoint = "scaffold_my_tasks")]
pub async fn scaffold_my_tasks() -> Result<Vec<(String, String, String, i64)>, AppError> {
    let user = crate::ssr::require_user()?;
    let core = crate::ssr::core()?;
    Ok(paved_core::scaffold::list_tasks(&core, &user, false)
        .await?
        .into_iter()
        .map(|t| (t.id, t.template_title, t.status, t.created_at))
        .collect())
}

/// Cancels a task.
#[server(endpoint = "scaffold_cancel")]
pub async fn scaffold_cancel(id: String) -> Result<String, AppError> {
    let user = crate::ssr::require_user()?;
    let core = crate::ssr::core()?;
    Ok(paved_core::scaffold::cancel(&core, &user, &id).await?)
}

/// Retries a task from its failed step (secret answers again when needed).
#[server(endpoint = "scaffold_retry", input = Json)]
pub async fn scaffold_retry(id: String, secrets: SecretPairs) -> Result<String, AppError> {
    let user = crate::ssr::require_user()?;
    let core = crate::ssr::core()?;
    Ok(paved_core::scaffold::retry(&core, &user, &id, convert::secrets(secrets)).await?)
}

/// Records a wizard funnel event (best effort from the browser).
#[server(endpoint = "scaffold_wizard_event")]
pub async fn scaffold_wizard_event(
    session: String,
    template_ref: String,
    event: String,
    page: Option<i64>,
) -> Result<(), AppError> {
    let user = crate::ssr::require_user()?;
    let core = crate::ssr::core()?;
    Ok(paved_core::scaffold::record_wizard_event(
        &core,
        &user,
        &session,
        &template_ref,
        &event,
        page,
    )
    .await?)
}

#[cfg(all(test, feature = "ssr"))]
mod markdown_tests {
    #[test]
    fn output_markdown_renders_and_never_passes_html_through() {
        let html = super::convert::markdown("**svc** is ready: run `cargo test`. <script>alert(1)</script> [x](javascript:alert(1)) [ok](https://example.com)");
        assert!(html.contains("<strong>svc</strong>"));
        assert!(html.contains("<code>cargo test</code>"));
        assert!(!html.contains("<script>"));
        assert!(html.contains("&lt;script&gt;"));
        assert!(!html.contains("javascript:"));
        assert!(html.contains("href=\"https://example.com\""));
    }
}
