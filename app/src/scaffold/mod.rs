//! Golden paths in the UI: the server functions here, the gallery, wizard
//! and task pages in `pages.rs`, the wizard island in `wizard.rs` and the
//! task island in `task.rs` (wire types in `paved_shared::scaffold`). Secret
//! answers travel in [`SecretPairs`] and never come back.

pub mod pages;
pub mod task;
pub mod wizard;

use leptos::prelude::*;
use leptos::server_fn::codec::Json;
use serde_json::Value;

use crate::error::AppError;
use crate::secrets::SecretPairs;

pub use paved_shared::scaffold::{
    EntityOption, LogLine, Preview, Status, TaskListItem, TaskPage, TaskStep, TemplateSummary,
    WizardData,
};

/// Secret answers as the scaffolder keeps them (in memory only); blank ones dropped.
#[cfg(feature = "ssr")]
fn secret_answers(pairs: SecretPairs) -> std::collections::BTreeMap<String, secrecy::SecretString> {
    pairs
        .0
        .into_iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| (k, secrecy::SecretString::from(v)))
        .collect()
}

/// Every template, for the gallery.
#[server(endpoint = "scaffold_templates")]
pub async fn scaffold_templates() -> Result<Vec<TemplateSummary>, AppError> {
    crate::ssr::require_user()?;
    Ok(paved_core::scaffold::page::gallery(&crate::ssr::core()?).await?)
}

/// A template's wizard: pages, the owners the user may pick, entities to pick from.
#[server(endpoint = "scaffold_wizard")]
pub async fn scaffold_wizard(namespace: String, name: String) -> Result<WizardData, AppError> {
    let user = crate::ssr::require_user()?;
    let core = crate::ssr::core()?;
    Ok(paved_core::scaffold::page::wizard(&core, &user, &namespace, &name).await?)
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
        secrets: secret_answers(secrets),
        wizard_session: None,
    };
    Ok(paved_core::scaffold::page::preview(&core, &user, request).await?)
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
        secrets: secret_answers(secrets),
        wizard_session: (!session.is_empty()).then_some(session),
    };
    Ok(paved_core::scaffold::create_task(&core, &user, request).await?)
}

/// A task with its log so far.
#[server(endpoint = "scaffold_task")]
pub async fn scaffold_task(id: String) -> Result<TaskPage, AppError> {
    let user = crate::ssr::require_user()?;
    let core = crate::ssr::core()?;
    Ok(paved_core::scaffold::page::task_page(&core, &user, &id).await?)
}

/// The caller's tasks, newest first.
#[server(endpoint = "scaffold_my_tasks")]
pub async fn scaffold_my_tasks() -> Result<Vec<TaskListItem>, AppError> {
    let user = crate::ssr::require_user()?;
    let core = crate::ssr::core()?;
    Ok(paved_core::scaffold::page::my_tasks(&core, &user).await?)
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
    Ok(paved_core::scaffold::retry(&core, &user, &id, secret_answers(secrets)).await?)
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
