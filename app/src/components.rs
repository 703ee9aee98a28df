//! Paved's small design system: the app shell with role-aware navigation,
//! page headers, cards, badges, empty states, form fields, toasts and the
//! error pages. Visual styles live in `style/tailwind.css` (`.btn`, `.card`, ...).

use leptos::prelude::*;
use leptos_router::components::{Outlet, A};

use crate::error::AppError;
use crate::identity::{authorize, current_user, Action, Principal};

/// The signed-in user, loaded once per page by [`AppShell`] and shared by context.
pub type MeResource = Resource<Result<Principal, AppError>>;

/// The frame of every signed-in page: header, navigation, toasts and the routed page.
#[component]
pub fn AppShell() -> impl IntoView {
    let me: MeResource = Resource::new(|| (), |_| current_user());
    provide_context(me);
    let notices = Resource::new(|| (), |_| crate::identity::platform_notices());

    view! {
        <a href="#main" class="sr-only focus:not-sr-only focus:absolute focus:m-2 focus:rounded focus:bg-white focus:p-2">
            "Skip to content"
        </a>
        <header class="border-b border-slate-200 bg-white/90 backdrop-blur dark:border-slate-800 dark:bg-slate-900/90">
            // One suspense for the whole header: it all depends on who is signed in.
            <Transition fallback=|| view! { <div class="h-14"></div> }>
                {move || Suspend::new(async move {
                    let me = me.await.ok();
                    view! {
                        <div class="mx-auto flex h-14 max-w-6xl items-center gap-4 px-4">
                            <A href="/" attr:class="flex items-center gap-2 font-semibold tracking-tight">
                                <span aria-hidden="true" class="inline-block h-6 w-6 rounded-md bg-gradient-to-br from-indigo-500 to-sky-400"></span>
                                "Paved"
                            </A>
                            {me.clone().map(|me| view! { <NavLinks me class="hidden md:flex" /> })}
                            <div class="ml-auto flex items-center gap-2">
                                <ThemeToggle />
                                {me.clone().map(|me| view! { <UserMenu me /> })}
                                <MenuButton />
                            </div>
                        </div>
                        <div id="mobile-nav" class="hidden border-t border-slate-200 px-4 py-2 md:hidden dark:border-slate-800">
                            {me.map(|me| view! { <NavLinks me class="flex flex-col" /> })}
                        </div>
                    }
                })}
            </Transition>
        </header>
        <Transition fallback=|| ()>
            {move || Suspend::new(async move {
                notices.await.unwrap_or_default().into_iter().map(|n| view! {
                    <div role="alert" data-testid="platform-notice" class="border-b border-amber-300 bg-amber-50 px-4 py-2 text-sm text-amber-900 dark:border-amber-700 dark:bg-amber-950 dark:text-amber-100">
                        <p class="mx-auto max-w-6xl">{n.message}</p>
                    </div>
                }).collect_view()
            })}
        </Transition>
        <main id="main" class="mx-auto max-w-6xl px-4 py-6 md:py-10">
            <Outlet />
        </main>
        <PageReady />
    }
}

/// Marks the document (`html[data-hydrated]`) once every island on the page
/// has taken over. Islands hydrate one after another in document order and a
/// lazy island's code arrives first, so this last island runs after all of
/// them. End-to-end tests wait for the mark before interacting.
#[island]
fn PageReady() -> impl IntoView {
    Effect::new(move |_| {
        #[cfg(feature = "hydrate")]
        if let Some(root) = document().document_element() {
            let _ = root.set_attribute("data-hydrated", "true");
        }
    });
}

/// Navigation links; admins also see the audit log.
#[component]
fn NavLinks(me: Principal, #[prop(into)] class: String) -> impl IntoView {
    let team_links = me
        .teams
        .keys()
        .map(|team| {
            let href = format!("/teams/{team}");
            let label = format!("Team {team}");
            view! { <A href=href attr:class="nav-link">{label}</A> }
        })
        .collect_view();
    let admin = authorize(&me, Action::AdministerPlatform).is_ok().then(|| {
        view! {
            <A href="/admin/access" attr:class="nav-link">"Access"</A>
            <A href="/admin/audit" attr:class="nav-link">"Audit log"</A>
            <A href="/admin/integrations" attr:class="nav-link">"Git hosts"</A>
            <A href="/admin/outcomes" attr:class="nav-link">"Delivery events"</A>
            <A href="/admin/clusters" attr:class="nav-link">"Clusters"</A>
        }
    });
    let insights = authorize(&me, Action::ViewPlatformInsights)
        .is_ok()
        .then(|| {
            view! {
                <A href="/platform" attr:class="nav-link">"Platform"</A>
                <A href="/llm" attr:class="nav-link">"LLM gateway"</A>
                <A href="/capabilities" attr:class="nav-link">"Capabilities"</A>
            }
        });
    view! {
        <nav aria-label="Main" class=format!("{class} items-start gap-1 md:items-center")>
            <A href="/" attr:class="nav-link" exact=true>"Home"</A>
            <A href="/catalog" attr:class="nav-link">"Catalog"</A>
            <A href="/create" attr:class="nav-link">"Create"</A>
            {team_links}
            <A href="/surveys" attr:class="nav-link">"Surveys"</A>
            {(!me.has_no_access()).then(|| view! { <A href="/policies" attr:class="nav-link">"Policies"</A> })}
            {insights}
            {admin}
        </nav>
    }
}

/// The signed-in person's name, profile link and sign-out.
#[component]
fn UserMenu(me: Principal) -> impl IntoView {
    let unread = Resource::new(|| (), |_| crate::notifications::notifications_unread());
    view! {
        <Suspense fallback=|| ()>
            {move || Suspend::new(async move {
                let count = unread.await.unwrap_or(0);
                let label = if count == 0 { "Notifications".to_owned() } else { format!("Notifications, {count} unread") };
                view! {
                    <A href="/notifications" attr:class="btn-ghost relative" attr:aria-label=label attr:data-testid="notifications-link">
                        <svg aria-hidden="true" viewBox="0 0 24 24" class="h-5 w-5" fill="none" stroke="currentColor" stroke-width="1.8" stroke-linecap="round" stroke-linejoin="round">
                            <path d="M6 8a6 6 0 1 1 12 0c0 7 3 9 3 9H3s3-2 3-9" />
                            <path d="M10.3 21a1.94 1.94 0 0 0 3.4 0" />
                        </svg>
                        {(count > 0).then(|| view! { <span class="absolute -top-1 -right-1 rounded-full bg-indigo-600 px-1.5 text-xs text-white">{count}</span> })}
                    </A>
                }
            })}
        </Suspense>
        <A href="/profile" attr:class="btn-ghost hidden sm:inline-flex" attr:data-testid="user-name">
            {me.display_name.clone()}
        </A>
        <form method="post" action="/auth/logout">
            <button type="submit" class="btn-secondary">"Sign out"</button>
        </form>
    }
}

/// Shows and hides the navigation on small screens (an island: it runs in the browser).
#[island]
fn MenuButton() -> impl IntoView {
    let open = RwSignal::new(false);
    let toggle = move |_| {
        let next = !open.get_untracked();
        open.set(next);
        #[cfg(feature = "hydrate")]
        if let Some(nav) = document().get_element_by_id("mobile-nav") {
            let _ = nav.class_list().toggle_with_force("hidden", !next);
        }
    };
    view! {
        <button type="button" class="btn-ghost md:hidden" aria-label="Menu" aria-controls="mobile-nav"
            aria-expanded=move || open.get().to_string() on:click=toggle>
            <svg aria-hidden="true" viewBox="0 0 20 20" class="h-5 w-5" fill="currentColor">
                <path d="M3 5h14v2H3zM3 9h14v2H3zM3 13h14v2H3z" />
            </svg>
        </button>
    }
}

/// Switches light/dark and remembers the choice.
#[island]
pub fn ThemeToggle() -> impl IntoView {
    let dark = RwSignal::new(false);
    Effect::new(move |_| {
        #[cfg(feature = "hydrate")]
        {
            let is_dark = document()
                .document_element()
                .map(|e| e.class_list().contains("dark"))
                .unwrap_or(false);
            dark.set(is_dark);
        }
    });
    let toggle = move |_| {
        let next = !dark.get_untracked();
        dark.set(next);
        #[cfg(feature = "hydrate")]
        {
            if let Some(root) = document().document_element() {
                let _ = root.class_list().toggle_with_force("dark", next);
            }
            if let Ok(Some(storage)) = window().local_storage() {
                let _ = storage.set_item("paved-theme", if next { "dark" } else { "light" });
            }
        }
    };
    view! {
        <button
            type="button"
            class="btn-ghost"
            aria-label="Dark mode"
            aria-pressed=move || dark.get().to_string()
            data-testid="theme-toggle"
            on:click=toggle
        >
            <span aria-hidden="true">{move || if dark.get() { "☾" } else { "☀" }}</span>
        </button>
    }
}

/// A page's title, optional subtitle and actions.
#[component]
pub fn PageHeader(
    #[prop(into)] title: String,
    #[prop(optional, into)] subtitle: Option<String>,
    #[prop(optional)] children: Option<Children>,
) -> impl IntoView {
    view! {
        <div class="mb-6 flex flex-col gap-3 sm:flex-row sm:items-end sm:justify-between">
            <div>
                <h1 class="text-2xl font-semibold tracking-tight">{title}</h1>
                {subtitle.map(|s| view! { <p class="mt-1 text-slate-600 dark:text-slate-400">{s}</p> })}
            </div>
            {children.map(|c| view! { <div class="flex gap-2">{c()}</div> })}
        </div>
    }
}

/// A bordered panel with an optional heading.
#[component]
pub fn Card(
    #[prop(optional, into)] title: Option<String>,
    #[prop(optional, into)] class: String,
    children: Children,
) -> impl IntoView {
    view! {
        <section class=format!("card {class}")>
            {title.map(|t| view! { <h2 class="mb-3 text-base font-semibold">{t}</h2> })}
            {children()}
        </section>
    }
}

/// Colour of a [`Badge`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Tone {
    /// Grey.
    #[default]
    Neutral,
    /// Indigo.
    Info,
    /// Green.
    Success,
    /// Amber.
    Warning,
    /// Red.
    Danger,
}

impl Tone {
    fn class(self) -> &'static str {
        match self {
            Tone::Neutral => "badge badge-neutral",
            Tone::Info => "badge badge-info",
            Tone::Success => "badge badge-success",
            Tone::Warning => "badge badge-warning",
            Tone::Danger => "badge badge-danger",
        }
    }
}

/// A small label.
#[component]
pub fn Badge(#[prop(optional)] tone: Tone, children: Children) -> impl IntoView {
    view! { <span class=tone.class()>{children()}</span> }
}

/// A link whose URL came from data (catalog YAML, template output, a
/// notification, a team note): an `<a>` only when
/// [`paved_shared::forms::safe_href`] allows the URL; otherwise the label and the
/// URL as plain text, so a `javascript:` link can never run.
#[component]
pub fn DataLink(
    #[prop(into)] url: String,
    #[prop(into)] label: String,
    #[prop(optional, into)] class: Option<String>,
) -> impl IntoView {
    let class =
        class.unwrap_or_else(|| "text-indigo-700 hover:underline dark:text-indigo-300".to_owned());
    if paved_shared::forms::safe_href(&url).is_some() {
        view! { <a href=url rel="noopener noreferrer" class=class>{label}</a> }.into_any()
    } else {
        view! {
            <span data-testid="unsafe-link" title="Not a link: only http, https and mailto URLs and relative paths are opened.">
                {label}" "<code class="text-xs text-slate-500">{url}</code>
            </span>
        }
        .into_any()
    }
}

/// A column heading of a [`Table`].
#[derive(Debug, Clone, Copy)]
pub struct Col {
    label: &'static str,
    numeric: bool,
    hidden: bool,
}

impl Col {
    /// A column of text.
    pub const fn text(label: &'static str) -> Self {
        Self {
            label,
            numeric: false,
            hidden: false,
        }
    }

    /// A column of numbers, aligned right.
    pub const fn numeric(label: &'static str) -> Self {
        Self {
            label,
            numeric: true,
            hidden: false,
        }
    }

    /// A column of buttons: its heading is for screen readers only.
    pub const fn actions(label: &'static str) -> Self {
        Self {
            label,
            numeric: false,
            hidden: true,
        }
    }
}

/// A data table: headings from `columns`, rows from `children` (`<tr>`s),
/// scrolling sideways on narrow screens.
#[component]
pub fn Table(
    columns: Vec<Col>,
    #[prop(optional, into)] label: Option<String>,
    #[prop(optional)] testid: Option<&'static str>,
    children: Children,
) -> impl IntoView {
    view! {
        <div class="overflow-x-auto">
            <table class="table" aria-label=label data-testid=testid>
                <thead>
                    <tr>
                        {columns
                            .into_iter()
                            .map(|c| {
                                let class = c.numeric.then_some("text-right");
                                if c.hidden {
                                    view! { <th scope="col" class=class><span class="sr-only">{c.label}</span></th> }.into_any()
                                } else {
                                    view! { <th scope="col" class=class>{c.label}</th> }.into_any()
                                }
                            })
                            .collect_view()}
                    </tr>
                </thead>
                <tbody>{children()}</tbody>
            </table>
        </div>
    }
}

/// Paging under a list: "11–20 of 143" and links to the pages before and
/// after, when there are any.
#[component]
pub fn Pager(
    /// The first item shown, counting from 1.
    first: i64,
    /// The last item shown.
    last: i64,
    total: i64,
    prev: Option<String>,
    next: Option<String>,
    #[prop(default = "Previous")] prev_label: &'static str,
    #[prop(default = "Next")] next_label: &'static str,
) -> impl IntoView {
    view! {
        <nav aria-label="Pages" class="mt-4 flex items-center justify-between text-sm">
            <span>{format!("{first}–{last} of {total}")}</span>
            <span class="flex gap-2">
                {prev.map(|h| view! { <a class="btn-secondary" href=h>{prev_label}</a> })}
                {next.map(|h| view! { <a class="btn-secondary" href=h>{next_label}</a> })}
            </span>
        </nav>
    }
}

/// What to show when a list is empty: what it is and what to do next.
#[component]
pub fn EmptyState(
    #[prop(into)] title: String,
    #[prop(into)] body: String,
    #[prop(optional)] children: Option<Children>,
) -> impl IntoView {
    view! {
        <div class="rounded-xl border border-dashed border-slate-300 p-8 text-center dark:border-slate-700">
            <p class="font-medium">{title}</p>
            <p class="mt-1 text-sm text-slate-600 dark:text-slate-400">{body}</p>
            {children.map(|c| view! { <div class="mt-4">{c()}</div> })}
        </div>
    }
}

/// A labelled form control with its inline error.
#[component]
pub fn Field(
    #[prop(into)] label: String,
    #[prop(into)] id: String,
    #[prop(optional, into)] help: Option<String>,
    #[prop(into)] error: Signal<Option<String>>,
    children: Children,
) -> impl IntoView {
    let error_id = format!("{id}-error");
    view! {
        <div class="flex flex-col gap-1">
            <label for=id.clone() class="text-sm font-medium">{label}</label>
            {children()}
            {help.map(|h| view! { <p class="text-xs text-slate-500 dark:text-slate-400">{h}</p> })}
            <p id=error_id class="text-sm text-red-600 dark:text-red-400" role="alert">
                {move || error.get()}
            </p>
        </div>
    }
}

/// Shared toast messages (polite live region).
#[derive(Clone, Copy, Default)]
pub struct Toasts(RwSignal<Vec<(u64, String)>>);

impl Toasts {
    /// Shows `message` for a few seconds.
    pub fn push(&self, message: impl Into<String>) {
        let id = self
            .0
            .with_untracked(|t| t.last().map(|(i, _)| i + 1).unwrap_or(0));
        self.0.update(|t| t.push((id, message.into())));
        let list = self.0;
        set_timeout(
            move || list.update(|t| t.retain(|(i, _)| *i != id)),
            std::time::Duration::from_secs(5),
        );
    }
}

/// Where toasts appear (inside the island that provides [`Toasts`]).
#[component]
pub fn ToastRegion() -> impl IntoView {
    let toasts = expect_context::<Toasts>();
    view! {
        <div aria-live="polite" role="status" class="pointer-events-none fixed inset-x-0 bottom-4 z-50 flex flex-col items-center gap-2 px-4">
            <For each=move || toasts.0.get() key=|(id, _)| *id let:toast>
                <div class="toast pointer-events-auto">{toast.1}</div>
            </For>
        </div>
    }
}

/// What a page shows for data it loaded: `page` of the value, or the error
/// page with the way forward. Pages call it on every `Resource` they await.
pub fn loaded<T, V: IntoView + 'static>(
    result: Result<T, AppError>,
    page: impl FnOnce(T) -> V,
) -> AnyView {
    match result {
        Ok(value) => page(value).into_any(),
        Err(error) => view! { <ErrorView error /> }.into_any(),
    }
}

/// A full error page for 401/403/404/500, with the way forward.
#[component]
pub fn ErrorView(error: AppError) -> impl IntoView {
    let (code, title, hint) = match &error {
        AppError::Unauthenticated => (
            "401",
            "Please sign in",
            "Your session has ended or you are not signed in.",
        ),
        AppError::Forbidden(_) => (
            "403",
            "You don't have access",
            "If you need this, ask a platform admin for the right role.",
        ),
        AppError::NotFound(_) => (
            "404",
            "Not found",
            "Check the address, or start again from the home page.",
        ),
        _ => (
            "500",
            "Something went wrong",
            "This was our fault and it has been logged. Try again in a moment.",
        ),
    };
    let action = if matches!(error, AppError::Unauthenticated) {
        view! { <a class="btn-primary" href="/signin">"Sign in"</a> }.into_any()
    } else {
        view! { <a class="btn-primary" href="/">"Go home"</a> }.into_any()
    };
    view! {
        <leptos_meta::Title text=title />
        <div class="mx-auto max-w-lg py-16 text-center" data-testid="error-page">
            <p class="text-sm font-semibold text-indigo-600 dark:text-indigo-400">{code}</p>
            <h1 class="mt-2 text-3xl font-semibold tracking-tight">{title}</h1>
            <p class="mt-3 text-slate-700 dark:text-slate-300">{error.to_string()}</p>
            <p class="mt-1 text-sm text-slate-500 dark:text-slate-400">{hint}</p>
            <div class="mt-6">{action}</div>
        </div>
    }
}

pub use paved_shared::forms::percent_encode;

/// Formats Unix seconds as `YYYY-MM-DD HH:MM UTC`.
pub fn format_time(unix: i64) -> String {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    // Civil-from-days (Howard Hinnant), so the browser bundle needs no date crate.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02} UTC",
        secs / 3600,
        (secs % 3600) / 60
    )
}

/// Re-reads data after an action completes and keeps the newest answer: an
/// island starts from what the server rendered (no fetch while hydrating, so
/// nothing can race a person's first click) and `trigger` (the sum of the
/// actions' versions) asks for a fresh copy; a slower, older answer never
/// overwrites a newer one.
pub fn refetch_on<T, F, Fut>(
    trigger: impl Fn() -> usize + 'static,
    fetch: F,
    data: RwSignal<T>,
    error: RwSignal<Option<AppError>>,
) where
    T: Send + Sync + 'static,
    F: Fn() -> Fut + Copy + 'static,
    Fut: std::future::Future<Output = Result<T, AppError>> + 'static,
{
    let latest = StoredValue::new(0usize);
    Effect::new(move |_| {
        let version = trigger();
        if version == 0 {
            return;
        }
        latest.set_value(version);
        leptos::task::spawn_local(async move {
            let answer = fetch().await;
            if latest.get_value() != version {
                return;
            }
            match answer {
                Ok(value) => {
                    data.set(value);
                    error.set(None);
                }
                Err(e) => error.set(Some(e)),
            }
        });
    });
}

/// What a server action's last answer said about the input `field` (its
/// `AppError::Invalid` message), for a form's [`Field`].
pub fn field_error<S>(action: ServerAction<S>, field: &'static str) -> Signal<Option<String>>
where
    S: leptos::server_fn::ServerFn<Error = AppError> + Clone + Send + Sync + 'static,
    S::Output: Clone + Send + Sync + 'static,
{
    Signal::derive(move || {
        action
            .value()
            .get()
            .and_then(|r| r.err())
            .and_then(|e| e.field_message(field))
    })
}

#[cfg(test)]
mod tests {
    use super::format_time;

    #[test]
    fn percent_encodes_query_values() {
        assert_eq!(
            super::percent_encode("/teams/a b?x=1"),
            "%2Fteams%2Fa%20b%3Fx%3D1"
        );
        assert_eq!(super::percent_encode("Az09-_.~"), "Az09-_.~");
    }

    #[test]
    fn formats_unix_seconds_as_utc() {
        assert_eq!(format_time(0), "1970-01-01 00:00 UTC");
        assert_eq!(format_time(1_795_741_200), "2026-11-27 01:00 UTC");
        assert_eq!(format_time(951_782_400), "2000-02-29 00:00 UTC");
    }
}
