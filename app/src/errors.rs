//! The not-found page (the router's fallback).

use leptos::prelude::*;

use crate::components::ErrorView;
use crate::error::AppError;

/// Shown for any address no route matches, with a 404 status.
#[component]
pub fn NotFoundPage() -> impl IntoView {
    #[cfg(feature = "ssr")]
    {
        crate::ssr::fail(AppError::NotFound(String::new()));
    }
    view! {
        <main class="px-4">
            <ErrorView error=AppError::NotFound("There is no page at this address.".into()) />
        </main>
    }
}
