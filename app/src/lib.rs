//! Paved's Leptos application: the router, one folder per feature (its
//! server functions, pages and islands) and the design-system components. Built twice: with `ssr` into the
//! `paved` server, and with `hydrate` into the browser bundle.
#![recursion_limit = "256"]

pub mod budgets;
pub mod catalog;
pub mod components;
pub mod error;
pub mod errors;
pub mod identity;
pub mod kube;
pub mod notifications;
pub mod outcomes;
pub mod policy;
pub mod scaffold;
pub mod secrets;
#[cfg(feature = "ssr")]
pub mod ssr;

use leptos::prelude::*;
use leptos_meta::{provide_meta_context, MetaTags, Stylesheet, Title};
use leptos_router::components::{ParentRoute, Route, Router, Routes};
use leptos_router::{path, SsrMode};

use crate::budgets::{BudgetPage, LlmOverviewPage};
use crate::catalog::{
    entity::EntityPage,
    integrations::IntegrationsPage,
    list::CatalogPage,
    locations::{LocationPage, LocationsPage},
};
use crate::components::AppShell;
use crate::errors::NotFoundPage;
use crate::identity::{
    access::AccessPage, audit::AuditPage, home::HomePage, profile::ProfilePage, signin::SignInPage,
    team::TeamPage,
};
use crate::notifications::NotificationsPage;
use crate::scaffold::pages::{CreatePage, TaskPage, WizardPage};

/// Sets the `dark` class before first paint (from the saved choice, else the
/// system preference) so dark-mode users never see a white flash.
const THEME_BOOTSTRAP: &str = "try{var t=localStorage.getItem('paved-theme');if(t==='dark'||(!t&&matchMedia('(prefers-color-scheme: dark)').matches)){document.documentElement.classList.add('dark')}}catch(e){}";

/// The Content-Security-Policy of every page: scripts only from Paved
/// itself or inline with this response's nonce (the theme bootstrap and
/// Leptos' hydration script), WebAssembly allowed to compile, no plugins, no
/// `<base>`, no framing, forms posting only to Paved and to the identity
/// provider (sign-out posts to Paved, which redirects there: browsers check
/// form redirects too). Inline `style` attributes are allowed (the charts and
/// progress bars size with them).
pub fn content_security_policy(nonce: &str, identity_provider_origin: &str) -> String {
    format!(
        "default-src 'self'; script-src 'self' 'nonce-{nonce}' 'wasm-unsafe-eval'; \
         style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; \
         object-src 'none'; base-uri 'none'; frame-ancestors 'none'; \
         form-action 'self' {identity_provider_origin}"
    )
}

/// The HTML document around the app, rendered on the server.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    // The server's CSP middleware chose this response's nonce and sends the header.
    let nonce = leptos::nonce::use_nonce();
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8" />
                <meta name="viewport" content="width=device-width, initial-scale=1" />
                <meta name="color-scheme" content="light dark" />
                <script nonce=nonce>{THEME_BOOTSTRAP}</script>
                <link rel="icon" href="/favicon.svg" type="image/svg+xml" />
                <AutoReload options=options.clone() />
                <HydrationScripts options islands=true />
                <MetaTags />
            </head>
            <body class="min-h-screen bg-slate-50 text-slate-900 antialiased dark:bg-slate-950 dark:text-slate-100">
                <App />
            </body>
        </html>
    }
}

/// The application: routes and their pages.
#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    // Async SSR: every page waits for its data, so a 403 or 404 from a server
    // function becomes the response's real status code.
    view! {
        <Stylesheet id="leptos" href="/pkg/paved.css" />
        <Title formatter=|text: String| if text.is_empty() { "Paved".to_string() } else { format!("{text} · Paved") } />
        <Router>
            <Routes fallback=|| view! { <NotFoundPage /> }>
                <Route path=path!("/signin") view=SignInPage ssr=SsrMode::Async />
                <ParentRoute path=path!("") view=AppShell ssr=SsrMode::Async>
                    <Route path=path!("") view=HomePage ssr=SsrMode::Async />
                    <Route path=path!("/teams/:name") view=TeamPage ssr=SsrMode::Async />
                    <Route path=path!("/teams/:name/budget") view=BudgetPage ssr=SsrMode::Async />
                    <Route path=path!("/teams/:name/outcomes") view=outcomes::TeamOutcomesPage ssr=SsrMode::Async />
                    <Route path=path!("/llm") view=LlmOverviewPage ssr=SsrMode::Async />
                    <Route path=path!("/surveys") view=outcomes::surveys::SurveysPage ssr=SsrMode::Async />
                    <Route path=path!("/policies") view=policy::PoliciesPage ssr=SsrMode::Async />
                    <Route path=path!("/capabilities") view=outcomes::capabilities::CapabilitiesPage ssr=SsrMode::Async />
                    <Route path=path!("/platform") view=outcomes::platform::PlatformPage ssr=SsrMode::Async />
                    <Route path=path!("/surveys/:id") view=outcomes::surveys::SurveyResultsPage ssr=SsrMode::Async />
                    <Route path=path!("/profile") view=ProfilePage ssr=SsrMode::Async />
                    <Route path=path!("/notifications") view=NotificationsPage ssr=SsrMode::Async />
                    <Route path=path!("/admin/audit") view=AuditPage ssr=SsrMode::Async />
                    <Route path=path!("/admin/access") view=AccessPage ssr=SsrMode::Async />
                    <Route path=path!("/admin/integrations") view=IntegrationsPage ssr=SsrMode::Async />
                    <Route path=path!("/admin/outcomes") view=outcomes::sources::EventSourcesPage ssr=SsrMode::Async />
                    <Route path=path!("/admin/clusters") view=kube::ClustersPage ssr=SsrMode::Async />
                    <Route path=path!("/catalog/component/:namespace/:name/outcomes") view=outcomes::ComponentOutcomesPage ssr=SsrMode::Async />
                    <Route path=path!("/catalog") view=CatalogPage ssr=SsrMode::Async />
                    <Route path=path!("/create") view=CreatePage ssr=SsrMode::Async />
                    <Route path=path!("/create/templates/:namespace/:name") view=WizardPage ssr=SsrMode::Async />
                    <Route path=path!("/create/tasks/:id") view=TaskPage ssr=SsrMode::Async />
                    <Route path=path!("/catalog/locations") view=LocationsPage ssr=SsrMode::Async />
                    <Route path=path!("/catalog/locations/:id") view=LocationPage ssr=SsrMode::Async />
                    <Route path=path!("/catalog/:kind/:namespace/:name") view=EntityPage ssr=SsrMode::Async />
                </ParentRoute>
            </Routes>
        </Router>
    }
}

/// The browser entry point: hydrates the interactive islands only; the rest
/// of every page is server-rendered HTML, which keeps the bundle small.
#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_islands();
}
