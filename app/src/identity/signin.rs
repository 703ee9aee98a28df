//! The sign-in landing page, public.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use crate::components::percent_encode;

/// What a sign-in failure code (set by the OIDC callback) means for a person.
pub fn sign_in_error_message(code: &str) -> &'static str {
    match code {
        "state_mismatch" => "That sign-in link was not started here or has expired, so nobody was signed in. Please start again.",
        "idp_unreachable" => "The identity provider could not be reached. Try again shortly; if it persists, tell your platform team.",
        "client_rejected" => "The identity provider refused Paved's client credentials. A platform admin needs to check PAVED_OIDC_CLIENT_ID and PAVED_OIDC_CLIENT_SECRET.",
        "invalid_id_token" => "The identity provider's answer could not be verified, so nobody was signed in. Please try again.",
        "access_denied" => "Sign-in was cancelled or refused by the identity provider.",
        "account_disabled" => "Your Paved account has been disabled by a platform admin. Ask your platform team if you need access again.",
        "session_expired" => "Your session has ended. Please sign in again.",
        _ => "Sign-in failed. Please try again.",
    }
}

/// Where people start: one button to the company's identity provider.
#[component]
pub fn SignInPage() -> impl IntoView {
    let query = use_query_map();
    let next = move || query.with(|q| q.get("next").unwrap_or_default());
    let login_href = move || {
        let next = next();
        if next.starts_with('/') && !next.starts_with("//") {
            format!("/auth/login?next={}", percent_encode(&next))
        } else {
            "/auth/login".to_string()
        }
    };
    let error = move || query.with(|q| q.get("error"));
    let signed_out = move || query.with(|q| q.get("signed_out").is_some());
    view! {
        <Title text="Sign in" />
        <main class="flex min-h-screen items-center justify-center px-4">
            <div class="card w-full max-w-md text-center">
                <span aria-hidden="true" class="mx-auto mb-4 block h-10 w-10 rounded-xl bg-gradient-to-br from-indigo-500 to-sky-400"></span>
                <h1 class="text-2xl font-semibold tracking-tight">"Welcome to Paved"</h1>
                <p class="mt-2 text-slate-600 dark:text-slate-400">
                    "Your platform's catalog, golden paths, budgets and secrets in one place."
                </p>
                {move || error().map(|code| view! {
                    <div role="alert" class="alert-danger mt-4 text-left" data-testid="signin-error">
                        {sign_in_error_message(&code)}
                    </div>
                })}
                {move || signed_out().then(|| view! {
                    <div role="status" class="alert-info mt-4">"You have signed out."</div>
                })}
                <a href=login_href rel="external" class="btn-primary mt-6 w-full justify-center">
                    "Sign in with your company account"
                </a>
            </div>
        </main>
    }
}
