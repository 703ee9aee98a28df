//! What the golden-path pages show, one call each: the gallery, a template's
//! wizard, a dry run's preview, a task's page and the caller's tasks.

use serde_json::Value;

use super::{RunRequest, TemplateSummary};
use crate::auth::Principal;
use crate::{CoreError, CoreState};
use paved_shared::forms::{self, Field, Widget};
use paved_shared::scaffold::{
    EntityOption, LogLine, Preview, Status, TaskListItem, TaskPage, TaskStep, WizardData,
};

/// Every template, for the gallery. Everyone signed in sees them.
pub async fn gallery(core: &CoreState) -> Result<Vec<TemplateSummary>, CoreError> {
    super::list_templates(core).await
}

/// A template's wizard: its pages, the owners `principal` may pick (their
/// teams) and the catalog entities its entity pickers offer.
pub async fn wizard(
    core: &CoreState,
    principal: &Principal,
    namespace: &str,
    name: &str,
) -> Result<WizardData, CoreError> {
    let reference = format!("template:{namespace}/{name}");
    let (template, _, _) = super::load_template(core, &reference).await?;
    let pages = forms::pages(&template.parameters);
    let mut kinds: Vec<String> = Vec::new();
    for page in &pages {
        picker_kinds(&forms::fields(&page.schema, &Value::Null), &mut kinds);
    }
    let entities = super::entity_options(core, &kinds)
        .await?
        .into_iter()
        .map(|(kind, entity_ref, title)| EntityOption {
            kind,
            entity_ref,
            title,
        })
        .collect();
    Ok(WizardData {
        template: TemplateSummary::from(&template),
        pages,
        owners: principal
            .teams
            .keys()
            .map(|t| format!("group:default/{t}"))
            .collect(),
        entities,
    })
}

/// The kinds every entity picker among `fields` offers (any picker without
/// `catalogFilter` kinds offers components, systems and groups).
fn picker_kinds(fields: &[Field], out: &mut Vec<String>) {
    for f in fields {
        if let Widget::EntityPicker { kinds } = &f.widget {
            let wanted = if kinds.is_empty() {
                vec!["component".into(), "system".into(), "group".into()]
            } else {
                kinds.clone()
            };
            for k in wanted {
                if !out.contains(&k) {
                    out.push(k);
                }
            }
        }
        picker_kinds(&f.children, out);
    }
}

/// What a run would create, without publishing anything.
pub async fn preview(
    core: &CoreState,
    principal: &Principal,
    request: RunRequest,
) -> Result<Preview, CoreError> {
    let result = super::dry_run(core, principal, request).await?;
    Ok(Preview {
        files: result.files,
        steps: result
            .steps
            .into_iter()
            .map(|s| (s.name, status(&s.status)))
            .collect(),
        log: result.log.into_iter().map(|(_, m)| m).collect(),
        error: result.error,
    })
}

/// A task with its log so far, as its page shows it.
pub async fn task_page(
    core: &CoreState,
    principal: &Principal,
    id: &str,
) -> Result<TaskPage, CoreError> {
    let task = super::task(core, principal, id).await?;
    let events = super::events(core, principal, id, 0).await?;
    let output = task.output.clone().unwrap_or(Value::Null);
    let list = |key: &str| output[key].as_array().cloned().unwrap_or_default();
    Ok(TaskPage {
        can_control: principal.is_admin() || task.created_by == principal.actor(),
        links: list("links").iter().filter_map(output_link).collect(),
        text: list("text")
            .iter()
            .map(|t| {
                (
                    t["title"].as_str().unwrap_or_default().to_owned(),
                    markdown(t["content"].as_str().unwrap_or_default()),
                )
            })
            .collect(),
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
            .map(|s| TaskStep {
                id: s.id.clone(),
                name: s.name.clone(),
                status: status(&s.status),
            })
            .collect(),
        status: status(&task.status),
        id: task.id,
        template_title: task.template_title,
        created_at: task.created_at,
        finished_at: task.finished_at,
        error: task.error,
        secret_names: task.secret_names,
    })
}

/// The caller's own tasks, newest first.
pub async fn my_tasks(
    core: &CoreState,
    principal: &Principal,
) -> Result<Vec<TaskListItem>, CoreError> {
    Ok(super::list_tasks(core, principal, false)
        .await?
        .into_iter()
        .map(|t| TaskListItem {
            status: status(&t.status),
            id: t.id,
            template_title: t.template_title,
            created_at: t.created_at,
        })
        .collect())
}

/// A stored status; the scaffolder only ever writes known ones.
fn status(raw: &str) -> Status {
    Status::parse(raw).unwrap_or(Status::Open)
}

/// An output link's href: a URL as is when it is a safe link, an entity
/// reference its catalog page.
fn output_link(link: &Value) -> Option<(String, String)> {
    let title = link["title"].as_str().unwrap_or("Link").to_owned();
    if let Some(url) = link["url"].as_str().filter(|u| !u.is_empty()) {
        return Some((title, url.to_owned()));
    }
    let entity = link["entityRef"].as_str()?;
    let (kind, rest) = entity.split_once(':')?;
    let (namespace, name) = rest.split_once('/').unwrap_or(("default", rest));
    Some((
        title,
        paved_shared::catalog::entity_href(kind, namespace, name),
    ))
}

/// Markdown to HTML for a template's output text. Answers can appear in it,
/// so raw HTML is shown as text, images are dropped and only links
/// [`forms::safe_href`] allows survive.
pub fn markdown(source: &str) -> String {
    use pulldown_cmark::{Event, Parser, Tag, TagEnd};
    let events = Parser::new(source).map(|event| match event {
        Event::Html(raw) | Event::InlineHtml(raw) => Event::Text(raw),
        Event::Start(Tag::Link {
            link_type,
            dest_url,
            title,
            id,
        }) if forms::safe_href(&dest_url).is_none() => Event::Start(Tag::Link {
            link_type,
            dest_url: "#".into(),
            title,
            id,
        }),
        Event::Start(Tag::Image { .. }) | Event::End(TagEnd::Image) => Event::Text("".into()),
        other => other,
    });
    let mut html = String::new();
    pulldown_cmark::html::push_html(&mut html, events);
    html
}

#[cfg(test)]
mod tests {
    #[test]
    fn output_markdown_renders_and_never_passes_html_through() {
        let html = super::markdown("**svc** is ready: run `cargo test`. <script>alert(1)</script> [x](javascript:alert(1)) [ok](https://example.com)");
        assert!(html.contains("<strong>svc</strong>"));
        assert!(html.contains("<code>cargo test</code>"));
        assert!(!html.contains("<script>"));
        assert!(html.contains("&lt;script&gt;"));
        assert!(!html.contains("javascript:"));
        assert!(html.contains("href=\"https://example.com\""));
    }
}
