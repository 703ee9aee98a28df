//! The Paved server: one [`AppState`] built at start-up, the Axum router
//! (sessions, authentication, OIDC routes, JSON APIs, Leptos SSR and server
//! functions) and the serve loop.
#![recursion_limit = "256"]

pub mod api;
pub mod audit_export;
pub mod budgets_api;
pub mod catalog_api;
pub mod demo;
pub mod error;
pub mod extract;
pub mod gateway_api;
pub mod kube_api;
pub mod limits;
pub mod middleware;
pub mod oidc;
pub mod openapi;
pub mod outcomes_api;
pub mod policy_api;
pub mod scaffolder_api;
pub mod secrets_api;
pub mod session;
pub mod session_cache;
pub mod telemetry;

use std::sync::Arc;

use axum::extract::FromRef;
use axum::http::{header, HeaderValue};
use axum::routing::{get, post};
use axum::Router;
use leptos::config::LeptosOptions;
use leptos::prelude::{provide_context, use_context};
use leptos_axum::{generate_route_list, LeptosRoutes};
use paved_core::config::Config;
use paved_core::CoreState;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_sessions::cookie::SameSite;
use tower_sessions::{Expiry, SessionManagerLayer};
use tower_sessions_sqlx_store::SqliteStore;

/// Everything a request handler needs, built once at start-up.
#[derive(Clone)]
pub struct AppState {
    /// Database pool and configuration, shared with the domain layer.
    pub core: CoreState,
    /// The OpenID Connect relying party.
    pub oidc: Arc<oidc::Oidc>,
    /// Where Leptos finds the built assets.
    pub leptos: LeptosOptions,
    /// The session store: SQLite behind a bounded in-memory cache.
    pub sessions: session_cache::Sessions,
    /// The session table alone, for purging expired sessions.
    pub session_db: session_cache::SessionDb,
    /// Set once the configured catalog locations have been read at start-up.
    pub catalog_ready: Arc<std::sync::atomic::AtomicBool>,
    /// Sign-in starts per client address (each writes a short-lived session).
    pub sign_in_limiter: Arc<limits::WindowLimiter>,
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        state.leptos.clone()
    }
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// The database could not be opened or migrated.
    #[error("cannot open the database at {url}: {source}")]
    Database {
        /// The configured URL.
        url: String,
        /// The cause.
        source: sqlx::Error,
    },
    /// The session table could not be created.
    #[error("cannot prepare the session store: {0}")]
    Sessions(sqlx::Error),
    /// The HTTP client could not be built.
    #[error("cannot build the HTTP client: {0}")]
    Http(#[from] reqwest::Error),
    /// The Vault client or the LLM gateway could not be built.
    #[error("cannot start: {0}")]
    Core(#[from] paved_core::CoreStartError),
    /// Demo data could not be seeded.
    #[error("cannot seed demo data: {0}")]
    Demo(String),
    /// The listener could not bind.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: std::net::SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
}

impl AppState {
    /// Opens the database (migrating it), prepares sessions and the OIDC client.
    pub async fn build(config: Config) -> Result<Self, StartupError> {
        use paved_core::budgets::ledger::{Clock, OffsetClock, SystemClock};
        let clock: Arc<dyn Clock> = match config.clock_start_ms {
            Some(start) => Arc::new(OffsetClock::starting_at(start)),
            None => Arc::new(SystemClock),
        };
        Self::build_with_clock(config, clock).await
    }

    /// [`AppState::build`] with the clock that budgets, their periods and the
    /// demo's usage are placed by (tests set one to a chosen instant).
    pub async fn build_with_clock(
        config: Config,
        clock: Arc<dyn paved_core::budgets::ledger::Clock>,
    ) -> Result<Self, StartupError> {
        let config = Arc::new(config);
        let db = paved_core::db::connect(&config.database_url)
            .await
            .map_err(|source| StartupError::Database {
                url: config.database_url.clone(),
                source,
            })?;
        let sign_in_rate = config.sign_in_starts_per_minute;
        let sqlite_sessions = SqliteStore::new(db.clone());
        sqlite_sessions
            .migrate()
            .await
            .map_err(StartupError::Sessions)?;
        let session_db = session_cache::SessionDb::Sqlite(sqlite_sessions);
        if config.demo {
            demo::seed(&db, &config, clock.now_ms())
                .await
                .map_err(|e| StartupError::Demo(e.to_string()))?;
        }
        let leptos = LeptosOptions::builder()
            .output_name("paved")
            .site_root(config.site_root.clone())
            .site_pkg_dir("pkg")
            .site_addr(config.bind)
            .build();
        Ok(Self {
            oidc: Arc::new(oidc::Oidc::new(config.clone())?),
            core: CoreState::new(db, config, clock).await?,
            leptos,
            sessions: session_cache::cached(session_db.clone()),
            session_db,
            catalog_ready: Arc::new(std::sync::atomic::AtomicBool::new(false)),
            sign_in_limiter: Arc::new(limits::WindowLimiter::new(
                sign_in_rate,
                std::time::Duration::from_secs(60),
            )),
        })
    }
}

/// The whole application router.
pub fn router(state: AppState) -> Router {
    let config = &state.core.config;
    let session_layer = SessionManagerLayer::new(state.sessions.clone())
        .with_name(if config.secure_cookies() {
            session::SECURE_COOKIE_NAME
        } else {
            session::COOKIE_NAME
        })
        .with_http_only(true)
        .with_same_site(SameSite::Lax)
        .with_secure(config.secure_cookies())
        .with_path("/")
        .with_expiry(Expiry::OnInactivity(
            tower_sessions::cookie::time::Duration::seconds(config.session_idle.as_secs() as i64),
        ));

    let https = config.secure_cookies();
    let routes = generate_route_list(app::App);
    let core = state.core.clone();
    // Leptos stamps this response's nonce (from the CSP middleware) on its inline scripts.
    let context = move || {
        provide_context(core.clone());
        if let Some(nonce) = use_context::<axum::http::request::Parts>()
            .and_then(|parts| parts.extensions.get::<middleware::CspNonce>().cloned())
        {
            provide_context(leptos::nonce::Nonce::from_value(nonce.0));
        }
    };
    let leptos_options = state.leptos.clone();
    let pkg_dir = std::path::Path::new(&*state.leptos.site_root).join(&*state.leptos.site_pkg_dir);
    // The gateway authenticates its own keys: no session, no sign-in redirect.
    let gateway = Router::new()
        .nest(
            "/llm/v1",
            gateway_api::routes(state.core.gateway.max_body_bytes()),
        )
        .nest(
            "/llm/anthropic/v1",
            gateway_api::anthropic_routes(state.core.gateway.max_body_bytes()),
        );
    // Git hosts authenticate their deliveries with a signature, not a session.
    let webhooks = Router::new()
        .route(
            "/api/catalog/webhooks/github",
            axum::routing::post(catalog_api::github_webhook),
        )
        .nest("/api/events/v1", outcomes_api::event_routes())
        .merge(policy_api::admission_routes())
        .layer(axum::extract::DefaultBodyLimit::max(25 * 1024 * 1024));

    let portal = Router::new()
        .route("/healthz", get(api::healthz))
        .route("/readyz", get(api::readyz))
        .route("/api/v1/me", get(api::me))
        .route("/api/v1/admin/users", get(api::admin_users))
        .route(
            "/api/v1/admin/users/{id}/tokens",
            get(api::admin_user_tokens),
        )
        .route(
            "/api/v1/admin/users/{id}/{action}",
            post(api::admin_set_disabled),
        )
        .route(
            "/api/v1/admin/tokens/{id}/revoke",
            post(api::admin_revoke_token),
        )
        .nest("/api/catalog", catalog_api::routes())
        .nest("/api/secrets/v1", secrets_api::routes())
        .nest("/api/scaffolder/v2", scaffolder_api::routes())
        .nest("/api/budgets/v1", budgets_api::routes())
        .nest("/api/outcomes/v1", outcomes_api::routes())
        .nest("/api/policy/v1", policy_api::routes())
        .nest("/api/kube/v1", kube_api::routes())
        .route("/metrics", get(gateway_api::metrics))
        .route("/auth/login", get(oidc::login))
        .route("/auth/callback", get(oidc::callback))
        .route("/auth/logout", post(oidc::logout))
        .leptos_routes_with_context(&state, routes, context.clone(), move || {
            app::shell(leptos_options.clone())
        })
        // The browser bundle (the main module and the lazy islands' chunks,
        // with their gzip and brotli copies) is served directly: Leptos' file
        // handler runs each static response inside a reactive owner and can
        // copy another request's status onto it (a chunk answered 403 while
        // a forbidden page rendered beside it).
        .nest_service(
            "/pkg",
            tower_http::services::ServeDir::new(pkg_dir)
                .precompressed_br()
                .precompressed_gzip(),
        )
        .fallback(leptos_axum::file_and_error_handler_with_context::<
            AppState,
            _,
        >(context, app::shell))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::authenticate,
        ))
        .layer(session_layer)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::content_security_policy,
        ));

    gateway
        .merge(webhooks)
        .merge(portal)
        // Every response: no framing (clickjacking), no MIME sniffing, no full URLs leaked to other sites.
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::REFERRER_POLICY,
            HeaderValue::from_static("strict-origin-when-cross-origin"),
        ))
        // Pages and API answers are per person: never kept by a browser or proxy cache.
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CACHE_CONTROL,
            |response: &axum::response::Response| {
                let personal = response
                    .headers()
                    .get(header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .is_some_and(|t| {
                        t.starts_with("text/html")
                            || t.starts_with("application/json")
                            || t.starts_with("text/event-stream")
                            || t.starts_with("text/csv")
                    });
                personal.then(|| HeaderValue::from_static("no-store"))
            },
        ))
        // Behind https, browsers must never fall back to plain http.
        .layer(SetResponseHeaderLayer::if_not_present(
            header::STRICT_TRANSPORT_SECURITY,
            move |_: &axum::response::Response| {
                https.then(|| HeaderValue::from_static("max-age=31536000; includeSubDomains"))
            },
        ))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(state)
}

/// Builds the state, binds, and serves until Ctrl-C or SIGTERM.
pub async fn run(config: Config) -> Result<(), StartupError> {
    let started = std::time::Instant::now();
    let addr = config.bind;
    let public_url = config.public_url.to_string();
    let state = AppState::build(config).await?;
    // Catalog refreshes a previous process left half-written are no longer
    // anyone's: they are finished by the catalog loop below.
    if let Err(e) = paved_core::catalog::store::release_stale_claims(&state.core.db).await {
        tracing::error!(error = %e, "cannot release the previous process's catalog refreshes");
    }
    // Expired sessions are purged hourly rather than on the request path.
    let purge = tokio::spawn(
        tower_sessions::session_store::ExpiredDeletion::continuously_delete_expired(
            state.session_db.clone(),
            tokio::time::Duration::from_secs(3600),
        ),
    );
    let catalog = tokio::spawn(catalog_refresh_loop(
        state.core.clone(),
        state.catalog_ready.clone(),
    ));
    let vault = state
        .core
        .vault
        .clone()
        .map(|vault| tokio::spawn(vault.maintain()));
    let scaffolder = tokio::spawn(paved_core::scaffold::run_workers(state.core.clone()));
    let slo_alerts = tokio::spawn(slo_alert_loop(state.core.clone()));
    let changes = tokio::spawn(paved_core::changes::follow(state.core.clone()));
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| StartupError::Bind { addr, source })?;
    tracing::info!(%addr, url = %public_url, ready_in_ms = started.elapsed().as_millis() as u64, "Paved is ready");
    let served = axum::serve(
        listener,
        router(state).into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown_signal())
    .await;
    purge.abort();
    catalog.abort();
    scaffolder.abort();
    slo_alerts.abort();
    changes.abort();
    if let Some(vault) = vault {
        vault.abort();
    }
    served.map_err(|source| StartupError::Bind { addr, source })
}

/// Checks the platform capabilities' SLOs every minute and notifies the
/// owner of each new breach or fast burn once.
pub async fn slo_alert_loop(core: CoreState) {
    let mut interval = tokio::time::interval(std::time::Duration::from_secs(60));
    loop {
        interval.tick().await;
        // One replica checks for the fleet (each breach is notified once).
        if !core.leader.is_leader() {
            continue;
        }
        let now = core.budgets.ledger.now_ms() / 1000;
        if let Err(e) = paved_core::outcomes::capabilities::alert(&core, now).await {
            tracing::warn!(error = %e, "the capabilities' SLOs could not be checked");
        }
    }
}

/// Registers and reads the configured catalog locations (then `/readyz` turns
/// ready), and refreshes every location on the configured interval. Runs
/// beside the server, never on a request.
pub async fn catalog_refresh_loop(core: CoreState, ready: Arc<std::sync::atomic::AtomicBool>) {
    ingest_configured_locations(&core, &ready).await;
    match paved_core::catalog::store::resume_interrupted(&core.db, &core.catalog).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(
            locations = n,
            "finished catalog refreshes a restart interrupted"
        ),
        Err(e) => tracing::error!(error = %e, "cannot finish interrupted catalog refreshes"),
    }
    let mut interval = tokio::time::interval(core.config.catalog.refresh_interval);
    interval.tick().await;
    loop {
        interval.tick().await;
        // One replica refreshes for the fleet, once per interval.
        if !core.leader.is_leader() {
            continue;
        }
        if let Err(e) = paved_core::catalog::store::refresh_all(&core.db, &core.catalog).await {
            tracing::error!(error = %e, "catalog refresh failed");
        }
    }
}

/// Registers and reads every location in `PAVED_CATALOG_LOCATIONS`, then marks the catalog ready.
pub async fn ingest_configured_locations(core: &CoreState, ready: &std::sync::atomic::AtomicBool) {
    for (kind, target) in &core.config.catalog.locations {
        if let Err(e) =
            paved_core::catalog::store::ensure_location(&core.db, &core.catalog, kind, target).await
        {
            tracing::error!(%kind, %target, error = %e, "cannot register a configured catalog location");
        }
    }
    ready.store(true, std::sync::atomic::Ordering::Release);
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
}
