//! Platform UX metrics of the golden paths, for the outcome dashboards:
//! template completion rate (wizards started vs submitted, abandoned),
//! self-service success rate (tasks completed vs failed, and at which step),
//! golden-path lead time (wizard start to task success, and to the new
//! service's first production deployment) and time saved.

use crate::{CoreError, CoreState};

/// A wizard run not submitted within this long counts as abandoned.
pub const ABANDONED_AFTER_SECS: i64 = 24 * 3600;

pub use paved_shared::scaffold::TemplateMetrics;

fn ratio(part: i64, whole: i64) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

/// The metrics of every template with activity since `since` (Unix seconds).
pub async fn metrics(core: &CoreState, since: i64) -> Result<Vec<TemplateMetrics>, CoreError> {
    let now = crate::now_unix();
    let abandoned_before = now - ABANDONED_AFTER_SECS;
    let wizards = sqlx::query!(
        r#"SELECT template_ref AS "template_ref!",
                  COUNT(DISTINCT CASE WHEN event = 'started' THEN session END) AS "started!: i64",
                  COUNT(DISTINCT CASE WHEN event = 'submitted' THEN session END) AS "submitted!: i64",
                  COUNT(DISTINCT CASE WHEN event = 'started' AND at < ?2
                        AND session NOT IN (SELECT session FROM wizard_events WHERE event = 'submitted') THEN session END) AS "abandoned!: i64"
           FROM wizard_events WHERE at >= ?1 GROUP BY template_ref"#,
        since,
        abandoned_before
    )
    .fetch_all(&core.db)
    .await?;
    let tasks = sqlx::query!(
        r#"SELECT template_ref AS "template_ref!", COUNT(*) AS "tasks!: i64",
                  SUM(status = 'completed') AS "succeeded!: i64", SUM(status = 'failed') AS "failed!: i64",
                  COALESCE(SUM(CASE WHEN status = 'completed' THEN time_saved_minutes END), 0) AS "saved!: i64"
           FROM scaffolder_tasks WHERE created_at >= ?1 GROUP BY template_ref"#,
        since
    )
    .fetch_all(&core.db)
    .await?;
    let failures = sqlx::query!(
        r#"SELECT t.template_ref AS "template_ref!", s.step_id AS "step_id!", COUNT(*) AS "n!: i64"
           FROM scaffolder_steps s JOIN scaffolder_tasks t ON t.id = s.task_id
           WHERE s.status = 'failed' AND t.created_at >= ?1
           GROUP BY t.template_ref, s.step_id ORDER BY 3 DESC"#,
        since
    )
    .fetch_all(&core.db)
    .await?;
    let leads = sqlx::query!(
        r#"SELECT t.template_ref AS "template_ref!", t.finished_at - MIN(w.at) AS "secs!: i64"
           FROM scaffolder_tasks t JOIN wizard_events w ON w.session = t.wizard_session AND w.event = 'started'
           WHERE t.status = 'completed' AND t.finished_at IS NOT NULL AND t.created_at >= ?1
           GROUP BY t.id"#,
        since
    )
    .fetch_all(&core.db)
    .await?;
    // Golden-path lead time: wizard start to the new service's first
    // successful production deployment (from the delivery events).
    let registered = sqlx::query!(
        r#"SELECT t.template_ref AS "template_ref!", MIN(w.at) AS "started!: i64",
                  json_extract(s.output_json, '$.entityRef') AS "entity_ref: String"
           FROM scaffolder_tasks t
           JOIN wizard_events w ON w.session = t.wizard_session AND w.event = 'started'
           JOIN scaffolder_steps s ON s.task_id = t.id AND s.action = 'catalog:register' AND s.status = 'completed'
           WHERE t.status = 'completed' AND t.created_at >= ?1
           GROUP BY t.id"#,
        since
    )
    .fetch_all(&core.db)
    .await?;
    let mut to_production: Vec<(String, i64)> = Vec::new();
    for r in registered {
        let Some(entity_ref) = r.entity_ref else {
            continue;
        };
        if let Some(at) =
            crate::outcomes::first_production_deployment(core, &entity_ref, r.started).await?
        {
            to_production.push((r.template_ref, at - r.started));
        }
    }

    // Abandoned runs by the furthest stage they reached.
    let stops = sqlx::query!(
        r#"SELECT template_ref AS "template_ref!", reviewed AS "reviewed!: i64", last_page, COUNT(*) AS "n!: i64"
           FROM (SELECT session, template_ref, MAX(event IN ('review', 'dry_run')) AS reviewed, MAX(page) AS last_page
                 FROM wizard_events WHERE at >= ?1 GROUP BY session
                 HAVING SUM(event = 'submitted') = 0 AND MIN(at) < ?2)
           GROUP BY 1, 2, 3 ORDER BY 4 DESC"#,
        since,
        abandoned_before
    )
    .fetch_all(&core.db)
    .await?;

    let mut refs: Vec<String> = wizards.iter().map(|w| w.template_ref.clone()).collect();
    refs.extend(tasks.iter().map(|t| t.template_ref.clone()));
    refs.sort();
    refs.dedup();
    Ok(refs
        .into_iter()
        .map(|r| {
            let w = wizards.iter().find(|w| w.template_ref == r);
            let t = tasks.iter().find(|t| t.template_ref == r);
            let (started, submitted, abandoned) = w
                .map(|w| (w.started, w.submitted, w.abandoned))
                .unwrap_or_default();
            let (count, ok, failed, saved) = t
                .map(|t| (t.tasks, t.succeeded, t.failed, t.saved))
                .unwrap_or_default();
            let mut lead: Vec<i64> = leads
                .iter()
                .filter(|l| l.template_ref == r)
                .map(|l| l.secs.max(0))
                .collect();
            lead.sort_unstable();
            let mut first_deploy: Vec<i64> = to_production
                .iter()
                .filter(|(t, _)| *t == r)
                .map(|(_, secs)| (*secs).max(0))
                .collect();
            first_deploy.sort_unstable();
            let abandoned_at = stops
                .iter()
                .filter(|s| s.template_ref == r)
                .map(|s| {
                    let stage = match (s.reviewed, s.last_page) {
                        (1, _) => "review".to_owned(),
                        (_, Some(p)) if p > 0 => format!("page {}", p + 1),
                        _ => "first page".to_owned(),
                    };
                    (stage, s.n)
                })
                .collect();
            TemplateMetrics {
                completion_rate: ratio(submitted, started),
                success_rate: ratio(ok, ok + failed),
                failures_by_step: failures
                    .iter()
                    .filter(|f| f.template_ref == r)
                    .map(|f| (f.step_id.clone(), f.n))
                    .collect(),
                lead_time_median_secs: (!lead.is_empty()).then(|| lead[lead.len() / 2]),
                services_in_production: first_deploy.len() as i64,
                production_lead_time_median_secs: (!first_deploy.is_empty())
                    .then(|| first_deploy[first_deploy.len() / 2]),
                template_ref: r,
                wizards_started: started,
                wizards_submitted: submitted,
                wizards_abandoned: abandoned,
                tasks: count,
                tasks_succeeded: ok,
                tasks_failed: failed,
                time_saved_minutes: saved,
                abandoned_at,
            }
        })
        .collect())
}
