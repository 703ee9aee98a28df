//! Golden paths on the wire: the template gallery, the wizard, a dry run's
//! preview and a task's page. Secret answers never appear in these types.

use serde::{Deserialize, Serialize};

use crate::forms::Page;

/// Where a task or one of its steps stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Waiting for a worker.
    Open,
    /// Running.
    Processing,
    /// Finished successfully.
    Completed,
    /// Stopped by an error.
    Failed,
    /// Not run (its `if` was false, or an earlier step failed).
    Skipped,
    /// Stopped by a person.
    Cancelled,
}

impl Status {
    /// Every status.
    pub const ALL: [Status; 6] = [
        Status::Open,
        Status::Processing,
        Status::Completed,
        Status::Failed,
        Status::Skipped,
        Status::Cancelled,
    ];

    /// The wire and storage name.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Open => "open",
            Status::Processing => "processing",
            Status::Completed => "completed",
            Status::Failed => "failed",
            Status::Skipped => "skipped",
            Status::Cancelled => "cancelled",
        }
    }

    /// Parses a wire name.
    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == raw)
    }

    /// Still to run or running: a task that can be cancelled.
    pub fn is_active(self) -> bool {
        matches!(self, Status::Open | Status::Processing)
    }

    /// Stopped before the end: a task that can be retried.
    pub fn is_retryable(self) -> bool {
        matches!(self, Status::Failed | Status::Cancelled)
    }
}

/// A template as listed for people picking a golden path.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TemplateSummary {
    /// `template:default/name`.
    pub entity_ref: String,
    /// `metadata.name`.
    pub name: String,
    /// Title.
    pub title: String,
    /// Description.
    pub description: String,
    /// Tags.
    pub tags: Vec<String>,
    /// `spec.type`.
    pub spec_type: String,
    /// `spec.owner`.
    pub owner: Option<String>,
    /// `backstage.io/time-saved`, in minutes.
    pub time_saved_minutes: Option<i64>,
}

impl TemplateSummary {
    /// The template's catalog namespace (from its reference).
    pub fn namespace(&self) -> &str {
        self.entity_ref
            .split_once(':')
            .and_then(|(_, rest)| rest.split_once('/'))
            .map_or("default", |(ns, _)| ns)
    }

    /// The wizard's path: `/create/templates/{namespace}/{name}`.
    pub fn wizard_href(&self) -> String {
        format!("/create/templates/{}/{}", self.namespace(), self.name)
    }
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
    pub template: TemplateSummary,
    /// Its pages.
    pub pages: Vec<Page>,
    /// Teams the user may pick as owner (`group:default/<team>`).
    pub owners: Vec<String>,
    /// Entities for entity pickers.
    pub entities: Vec<EntityOption>,
}

/// One file of a dry run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DryRunFile {
    /// Path in the new repository.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// The text (masked, at most 64 KB), or `None` for binary or larger files.
    pub content: Option<String>,
}

/// What the wizard shows of a dry run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Preview {
    /// The files the new repository would hold.
    pub files: Vec<DryRunFile>,
    /// (step name, status).
    pub steps: Vec<(String, Status)>,
    /// Log lines (masked).
    pub log: Vec<String>,
    /// Why it stopped, if a step failed.
    pub error: Option<String>,
}

/// One step of a task on its page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskStep {
    /// Step id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Where it stands.
    pub status: Status,
}

/// One log line of a task (already masked).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    /// Event id.
    pub id: i64,
    /// The step it belongs to.
    pub step_id: Option<String>,
    /// The text.
    pub message: String,
    /// Unix seconds.
    pub at: i64,
}

/// A task as its page shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskPage {
    /// Task id.
    pub id: String,
    /// The template's title.
    pub template_title: String,
    /// Where it stands.
    pub status: Status,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub finished_at: Option<i64>,
    /// Why it failed.
    pub error: Option<String>,
    /// Steps in order.
    pub steps: Vec<TaskStep>,
    /// The log so far.
    pub log: Vec<LogLine>,
    /// (title, href) from the template's output; hrefs are safe links.
    pub links: Vec<(String, String)>,
    /// (title, HTML rendered from the output's Markdown, raw HTML escaped).
    pub text: Vec<(String, String)>,
    /// Names of the secret answers a retry needs again.
    pub secret_names: Vec<String>,
    /// Whether the caller may cancel or retry.
    pub can_control: bool,
}

/// A task in the caller's list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskListItem {
    /// Task id.
    pub id: String,
    /// The template's title.
    pub template_title: String,
    /// Where it stands.
    pub status: Status,
    /// Unix seconds.
    pub created_at: i64,
}

/// One template's numbers since a point in time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TemplateMetrics {
    /// `template:default/name`.
    pub template_ref: String,
    /// Wizard runs started.
    pub wizards_started: i64,
    /// Wizard runs that created a task.
    pub wizards_submitted: i64,
    /// Wizard runs older than a day that never created a task.
    pub wizards_abandoned: i64,
    /// submitted / started, when anything started.
    pub completion_rate: Option<f64>,
    /// Tasks created.
    pub tasks: i64,
    /// Tasks completed.
    pub tasks_succeeded: i64,
    /// Tasks failed.
    pub tasks_failed: i64,
    /// succeeded / (succeeded + failed), when any ended.
    pub success_rate: Option<f64>,
    /// (step id, failures), most failing first.
    pub failures_by_step: Vec<(String, i64)>,
    /// Median seconds from wizard start to task success.
    pub lead_time_median_secs: Option<i64>,
    /// Services the completed runs registered that have since been deployed
    /// to production successfully (from the delivery events).
    #[serde(default)]
    pub services_in_production: i64,
    /// Median seconds from wizard start to that first production deployment.
    #[serde(default)]
    pub production_lead_time_median_secs: Option<i64>,
    /// Minutes saved by completed tasks (the template's `backstage.io/time-saved`).
    pub time_saved_minutes: i64,
    /// Where abandoned wizard runs stopped: (`first page`, `page 2`…,
    /// `review`), most first.
    #[serde(default)]
    pub abandoned_at: Vec<(String, i64)>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip_and_group() {
        for s in Status::ALL {
            assert_eq!(Status::parse(s.as_str()), Some(s));
            assert_eq!(
                serde_json::to_value(s).unwrap(),
                serde_json::json!(s.as_str())
            );
        }
        assert!(Status::Processing.is_active() && !Status::Failed.is_active());
        assert!(Status::Cancelled.is_retryable() && !Status::Completed.is_retryable());
    }

    #[test]
    fn a_templates_wizard_lives_under_its_namespace() {
        let t = TemplateSummary {
            entity_ref: "template:golden/rust-axum-service".into(),
            name: "rust-axum-service".into(),
            title: "Rust".into(),
            description: String::new(),
            tags: vec![],
            spec_type: "service".into(),
            owner: None,
            time_saved_minutes: None,
        };
        assert_eq!(t.namespace(), "golden");
        assert_eq!(
            t.wizard_href(),
            "/create/templates/golden/rust-axum-service"
        );
    }
}
