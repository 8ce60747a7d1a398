//! `integ serve`: webhooks into the durable inbox, workers running the events.

use super::progress::Spinners;
use super::{Color, EXIT_USAGE, lint::render, lint::style};
use crate::engine::RefreshTokens;
use crate::engine::{Engine, Options};
use crate::lint::lint_paths;
use crate::plan;
use crate::secrets::Secrets;
use crate::serve::admin::{self, Admin, keep_metrics};
use crate::serve::{
    AlertOptions, Alerts, HttpOptions, PublicUrl, SMTP_URL, Service, Smtp, alert,
    forget_undeclared, keep_gauges, keep_health, listen, poll, prune, router, schedule, work,
};
use crate::store::{self, Durability, Location};
use crate::telemetry::{self, labels::StoreKind};
use std::ffi::OsString;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use tracing_subscriber::fmt::writer::BoxMakeWriter;

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Spec files, or folders searched recursively for `*.integ` files.
    #[arg(default_value = ".")]
    paths: Vec<PathBuf>,
    /// The address the webhooks listen on, with `/livez` and `/readyz`.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: String,
    /// The address of the admin listener: `/metrics` (Prometheus). Keep it off the
    /// internet; it cannot share the webhook port.
    #[arg(long, default_value = "127.0.0.1:9464")]
    admin_listen: String,
    /// The token every request to the admin listener must carry (`Authorization: Bearer`,
    /// or a browser's sign-in): required when --admin-listen is not a loopback address.
    /// Prefer the environment variable, which `ps` does not show.
    /// Also read from the secrets file (--secrets) as `INTEG_ADMIN_TOKEN`.
    #[arg(long, env = ADMIN_TOKEN, hide_env_values = true, value_parser = admin_token)]
    admin_token: Option<AdminToken>,
    /// The state store (inbox, checkpoints, dedupe keys, dead letters): a file path
    /// (SQLite), `sqlite:PATH` or `sqlite://PATH`.
    #[arg(long, default_value = ".integ/state.db")]
    state: OsString,
    /// Apply this environment's overrides to every spec that declares it.
    #[arg(long = "env")]
    environment: Option<String>,
    /// A secrets file (`NAME=value` lines); the environment is read for the rest.
    #[arg(long)]
    secrets: Option<PathBuf>,
    /// How many events run at once, all integrations together (a spec's `concurrency`
    /// bounds its own, a connection's `max_concurrency` its requests). Runs wait on the
    /// APIs, not the CPU: tens suit one core.
    #[arg(long, default_value_t = WORKERS, value_parser = clap::value_parser!(u16).range(1..))]
    workers: u16,
    /// Events waiting or running past which webhooks are refused (503 with Retry-After,
    /// the sender retries) and polls wait, so that an accepted event is delivered in
    /// seconds, not minutes. /readyz does not fail on it: the inbox is the buffer.
    #[arg(long, default_value_t = crate::serve::MAX_PENDING, value_parser = max_pending)]
    max_pending: usize,
    /// What an accepted webhook survives: `full` (the inbox is synced to disk before the
    /// 202: a power cut loses nothing) or `process` (a crash or kill of integ loses nothing;
    /// a power cut may lose the last second of events).
    #[arg(long, value_enum, default_value_t = DurabilityArg::Full)]
    durability: DurabilityArg,
    /// How long dedupe keys, finished events and the run history are kept, written as in
    /// specs (`30d`, `12h`). Pending events and dead letters are kept until handled.
    #[arg(long, default_value = "30d", value_parser = retention)]
    retention: Duration,
    /// How long a client may take to send a request's headers, and again its body; a
    /// slower one is cut off. Written as in specs (`10s`).
    #[arg(long, default_value = "10s", value_parser = read_timeout)]
    read_timeout: Duration,
    /// How long after SIGTERM or SIGINT /readyz fails while webhooks are still taken, so
    /// that a load balancer stops sending before they are refused; written as in specs
    /// (`5s`), `0` for none, at most `20s`. A second signal ends it early. It counts in the
    /// 30 s a shutdown takes at most.
    #[arg(long, default_value = "5s", value_parser = drain_delay)]
    drain_delay: Duration,
    /// Connections served at once; more wait until one closes.
    #[arg(long, default_value_t = crate::serve::MAX_CONNECTIONS, value_parser = clap::value_parser!(u16).range(1..))]
    max_connections: u16,
    /// The base URL senders sign against (scheme, host, and the path prefix a proxy
    /// strips), when it is not this listener's own `http://` URL. HubSpot v3 signs it.
    #[arg(long, value_parser = PublicUrl::fixed)]
    public_url: Option<PublicUrl>,
    /// Take the signed URL's scheme and host from `X-Forwarded-Proto` and
    /// `X-Forwarded-Host`: only when nothing but your proxy can reach the listener.
    #[arg(long, conflicts_with = "public_url")]
    trust_forwarded_headers: bool,
    /// Colours: `auto` uses them on a terminal unless NO_COLOR is set.
    #[arg(long, value_enum, default_value_t = Color::Auto)]
    color: Color,
    /// How often every `alert` is evaluated over its window. Written as in specs (`15s`).
    #[arg(long, default_value = "15s", value_parser = alert_every)]
    alert_every: Duration,
    /// The URL people reach the admin listener at, for the run-history link in alerts
    /// (`https://integ-admin.example.com`); by default the `--admin-listen` address.
    #[arg(long)]
    admin_url: Option<String>,
    /// Where the pages `integ doc --out` writes are published
    /// (`https://git.example.com/ops/integrations/-/blob/main/docs/integrations`), for the
    /// runbook link in alerts; by default the link is the path in the repository.
    #[arg(long, value_parser = docs_url)]
    docs_url: Option<String>,
    /// Who e-mail alerts are from; the SMTP server is the secret `INTEG_SMTP_URL`.
    #[arg(long, default_value = "integ <integ@localhost>")]
    alert_from: String,
    /// Log lines for people, or one JSON object per line; `INTEG_LOG` sets the level
    /// (`info` by default, `debug`, `warn`, ...).
    #[arg(long, value_enum, default_value_t = LogFormat::Human)]
    log_format: LogFormat,
}

/// `--admin-token`: a secret, never shown (`Debug` included).
#[derive(Clone)]
struct AdminToken(String);

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminToken([redacted])")
    }
}

/// The token as given; its length is checked at start, where the refusal cannot echo it
/// (clap's errors show the value).
fn admin_token(text: &str) -> Result<AdminToken, String> {
    Ok(AdminToken(text.to_string()))
}

/// How long alert messages being sent may take past the events' deadline at shutdown.
const ALERTS_AFTER_DRAIN: Duration = Duration::from_secs(10);

/// The admin token's name in the environment and in the secrets file.
const ADMIN_TOKEN: &str = "INTEG_ADMIN_TOKEN";

/// Shorter tokens could be guessed.
const ADMIN_TOKEN_CHARS: usize = 16;

/// The default of `--workers`. A run holds its worker while it waits for the API and for
/// the commit of its end, so delivery needs many: with the shared load harness (w2h, 32
/// webhooks at a time, 2 cores) 32 workers fell behind intake (the backlog reached
/// `--max-pending`, end-to-end p50 1.2 s), 64 and 128 kept up (backlog 0, p99 15 ms) at
/// 6 700-7 100 events/s, and 256 did no better.
const WORKERS: u16 = 64;

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum DurabilityArg {
    Full,
    Process,
}

impl From<DurabilityArg> for Durability {
    fn from(arg: DurabilityArg) -> Self {
        match arg {
            DurabilityArg::Full => Durability::Full,
            DurabilityArg::Process => Durability::Process,
        }
    }
}

fn max_pending(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("`{text}` is not a count of events above 0")),
    }
}

/// A duration of at least an hour: less would forget dedupe keys before a provider's
/// redelivery.
fn retention(text: &str) -> Result<Duration, String> {
    let duration = crate::syntax::parse_duration(text)
        .filter(|d| !d.is_zero())
        .ok_or_else(|| format!("`{text}` is not a duration such as `30d` or `12h`"))?;
    if duration < Duration::from_secs(3600) {
        return Err("keep state at least `1h`, or redelivered webhooks run twice".into());
    }
    Ok(duration)
}

/// A timeout from one second to the drain: shorter cuts off real senders, longer than the
/// drain would hold a shutdown past its bound.
fn read_timeout(text: &str) -> Result<Duration, String> {
    let duration = crate::syntax::parse_duration(text)
        .ok_or_else(|| format!("`{text}` is not a duration such as `10s`"))?;
    if duration < Duration::from_secs(1) || duration > DRAIN {
        return Err(format!(
            "a read timeout is from `1s` to `{}s`",
            DRAIN.as_secs()
        ));
    }
    Ok(duration)
}

/// The longest `--drain-delay`: the in-flight events keep at least 10 s of the drain.
const MAX_DRAIN_DELAY: Duration = Duration::from_secs(20);

/// A delay from none (`0`, `0s`) to `MAX_DRAIN_DELAY`.
fn drain_delay(text: &str) -> Result<Duration, String> {
    let duration = match text {
        "0" => Some(Duration::ZERO),
        "" => None,
        _ => crate::syntax::parse_duration(text),
    };
    duration.filter(|d| *d <= MAX_DRAIN_DELAY).ok_or_else(|| {
        format!(
            "`{text}` is not a duration from `0s` to `{}s`",
            MAX_DRAIN_DELAY.as_secs()
        )
    })
}

/// An evaluation interval from one second to an hour.
fn alert_every(text: &str) -> Result<Duration, String> {
    crate::syntax::parse_duration(text)
        .filter(|d| *d >= Duration::from_secs(1) && *d <= Duration::from_secs(3600))
        .ok_or_else(|| format!("`{text}` is not a duration from `1s` to `1h`"))
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum LogFormat {
    Human,
    Json,
}

/// Logs go to standard error; every line of a run carries its integration, event and run id.
/// With `spinners` (standard error is a terminal), the log pauses them around each line.
fn init_logs(format: LogFormat, color: bool, spinners: Option<&Spinners>) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("INTEG_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let writer = match spinners {
        Some(spinners) => BoxMakeWriter::new(spinners.writer()),
        None => BoxMakeWriter::new(std::io::stderr),
    };
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    let _ = match format {
        LogFormat::Json => logs
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
        LogFormat::Human => logs.with_ansi(color).try_init(),
    };
}

/// How long a shutdown may take from the signal, `--drain-delay` included: in-flight
/// events and requests finish within it; events still running then go back to the inbox at
/// the next start.
const DRAIN: Duration = Duration::from_secs(30);

pub fn run(args: &ServeArgs) -> ExitCode {
    match start(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(message)) => {
            eprintln!("error: {message}");
            ExitCode::from(EXIT_USAGE)
        }
        Err(Failure::Busy(message)) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Why `integ serve` did not start, or stopped.
enum Failure {
    /// Bad specs, secrets, state path or address: exit 2.
    Usage(String),
    /// Another process serves the same state file: exit 1.
    Busy(String),
}

impl From<String> for Failure {
    fn from(message: String) -> Self {
        Self::Usage(message)
    }
}

/// Holds an exclusive lock beside the state file while serving. Two processes on one file
/// would each put back the other's running events at start and run them twice, and bound
/// an integration's concurrency each on its own; a fleet needs a shared store instead,
/// which has no lock file (`Location::serve_lock`).
fn lock_state(state: &Location) -> Result<Option<std::fs::File>, Failure> {
    let Some(path) = state.serve_lock() else {
        return Ok(None);
    };
    if let Some(folder) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        store::private::create_folder(folder).map_err(|e| e.to_string())?;
    }
    let file = store::private::open_file(&path)
        .map_err(|e| format!("cannot open `{}`: {e}", path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(std::fs::TryLockError::WouldBlock) => Err(Failure::Busy(format!(
            "another `integ serve` is using the state file `{state}`: one process per state file"
        ))),
        Err(std::fs::TryLockError::Error(e)) => {
            Err(format!("cannot lock `{}`: {e}", path.display()).into())
        }
    }
}

fn start(args: &ServeArgs) -> Result<(), Failure> {
    // A poll's first round may read a whole API: on a terminal it shows a spinner.
    let spinners = std::io::stderr()
        .is_terminal()
        .then(|| Arc::new(Spinners::default()));
    init_logs(
        args.log_format,
        super::use_color(args.color),
        spinners.as_deref(),
    );
    let location = Location::parse(&args.state).map_err(|e| e.to_string())?;
    // Before any engine or store call resolves its metric handles.
    let exporter = telemetry::install().map_err(|e| e.to_string())?;
    telemetry::build_info(match location {
        Location::Sqlite(_) => StoreKind::Sqlite,
    });
    let files = lint_paths(&args.paths).map_err(|e| e.to_string())?;
    if files.iter().any(|f| f.model.is_none()) {
        let _ = render(
            files.iter().filter(|f| f.model.is_none()),
            style(args.color),
            &mut std::io::stderr().lock(),
        );
        return Err(Failure::Usage(
            "specs with errors cannot be served; `integ lint` explains them".into(),
        ));
    }
    let mut plans = Vec::new();
    for file in &files {
        let Some(model) = &file.model else { continue };
        let environment = args
            .environment
            .as_deref()
            .filter(|e| model.environments.iter().any(|m| m.name == *e));
        let base_dir = file.path.parent().unwrap_or(Path::new("."));
        let fingerprint = crate::doc::spec_sha256(&file.text);
        telemetry::integration_info(&model.name, &fingerprint, environment);
        plans.push(
            plan::compile_parts(model, environment, base_dir, plan::Parts::WithoutTests)
                .map_err(|e| format!("{}: {e}", file.path.display()))?,
        );
    }
    let mut names: Vec<&str> = plans.iter().flat_map(|p| p.secrets.for_serve()).collect();
    let by_email = plans
        .iter()
        .flat_map(|p| &p.alerts)
        .any(|a| a.alert.channel == crate::model::AlertChannel::Email);
    if by_email {
        names.push(SMTP_URL);
    }
    // The admin token may come from the secrets file too, and is then redacted like them.
    let optional = args.admin_token.is_none().then_some(ADMIN_TOKEN);
    let secrets = Secrets::load_with_optional(names, optional, args.secrets.as_deref(), false)
        .map_err(|e| e.to_string())?;
    let admin_token = args
        .admin_token
        .as_ref()
        .map(|t| t.0.clone())
        .or_else(|| secrets.get(ADMIN_TOKEN).map(String::from));
    let _lock = lock_state(&location)?;
    let store = store::open_with(&location, args.durability.into()).map_err(|e| e.to_string())?;
    // The engines keep rotated OAuth2 refresh tokens in the store, sealed. A long wait an
    // API asks for puts the event back in the inbox rather than hold a worker.
    let options = Options {
        refresh_tokens: Some(store.clone() as Arc<dyn RefreshTokens>),
        defer_long_waits: true,
        ..Options::default()
    };
    let engines = plans
        .into_iter()
        .map(|plan| Engine::new(Arc::new(plan), secrets.clone(), options.clone()).map(Arc::new))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| secrets.redact(&e.to_string()))?;
    let smtp = match secrets.get(SMTP_URL).filter(|_| by_email) {
        Some(url) => Some(Smtp::new(url, &args.alert_from)?),
        None => None,
    };
    let service = Service::with_max_pending(engines, store, args.max_pending);
    forget_undeclared(&service);
    if let Some(spinners) = spinners {
        service.report_backfill(spinners);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let served = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(&args.listen)
            .await
            .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
        let address = listener.local_addr().map_err(|e| e.to_string())?;
        let admin_listener = bind_admin(&args.admin_listen, address).await?;
        let admin_address = admin_listener.local_addr().map_err(|e| e.to_string())?;
        if !admin_address.ip().is_loopback() && admin_token.is_none() {
            return Err(format!(
                "--admin-listen {admin_address} is reachable from other machines: give --admin-token \
                 (or {ADMIN_TOKEN} in the environment or the secrets file), or listen on 127.0.0.1"
            ));
        }
        let token = admin_token;
        if token.as_ref().is_some_and(|t| t.chars().count() < ADMIN_TOKEN_CHARS) {
            return Err(format!(
                "--admin-token is shorter than {ADMIN_TOKEN_CHARS} characters; `openssl rand -hex 32` makes a good one"
            ));
        }
        let guard = admin::Guard::new(token)?;
        let options = AlertOptions {
            every: args.alert_every,
            admin_url: admin_url(args.admin_url.as_deref(), admin_address),
            docs_url: args.docs_url.clone(),
            smtp,
        };
        let alerts = Alerts::new(&service.engines, options)?.map(Arc::new);
        if alerts.as_ref().is_some_and(|a| a.longest_window() > args.retention) {
            tracing::warn!("an alert's window is longer than --retention: it counts only the runs kept");
        }
        tracing::info!(listen = %address, admin = %admin_address, webhooks = routes(&service), state = %location, "integ serve started");
        let workers = tokio::spawn(work(service.clone(), usize::from(args.workers)));
        let schedules = tokio::spawn(schedule(service.clone()));
        let polls = tokio::spawn(poll(service.clone()));
        let pruning = tokio::spawn(prune(service.clone(), args.retention));
        let alerting = alerts.map(|alerts| tokio::spawn(alert(service.clone(), alerts)));
        let http = HttpOptions {
            read_timeout: args.read_timeout,
            max_connections: usize::from(args.max_connections),
            public_url: match (&args.public_url, args.trust_forwarded_headers) {
                (Some(fixed), _) => fixed.clone(),
                (None, true) => PublicUrl::Forwarded,
                (None, false) => PublicUrl::Listener,
            },
            ..HttpOptions::default()
        };
        let health = tokio::spawn(keep_health(service.clone()));
        let upkeep = tokio::spawn(keep_metrics(exporter.clone()));
        let gauges = tokio::spawn(keep_gauges(service.clone()));
        let admin_app = admin::router(
            Admin {
                service: service.clone(),
                exporter: Some(exporter),
            },
            guard,
        )?;
        let admin_http = HttpOptions {
            max_connections: ADMIN_CONNECTIONS,
            ..http.clone()
        };
        let (stop_admin, admin_stopped) = tokio::sync::oneshot::channel::<()>();
        let admin_server = tokio::spawn(async move {
            listen(admin_listener, admin_app, &admin_http, async move {
                let _ = admin_stopped.await;
            })
            .await;
        });
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let app = router(service.clone(), &http);
        let server = tokio::spawn(async move {
            listen(listener, app, &http, async move {
                let _ = stopped.await;
            })
            .await;
        });
        signal().await;
        let deadline = tokio::time::Instant::now() + DRAIN;
        // First /readyz fails while webhooks are still taken and run, for the load
        // balancer's probe to see it and send elsewhere (an idle process would otherwise
        // close at once, and the senders' next webhooks find nothing listening).
        service.drain();
        tracing::info!(drain_delay = ?args.drain_delay, "stopping: /readyz fails; webhooks are taken until the drain delay ends");
        tokio::select! {
            () = tokio::time::sleep(args.drain_delay) => {}
            () = signal() => {}
        }
        tracing::info!("stopping: webhooks are refused, in-flight events finish, the rest stay in the inbox");
        service.shut_down();
        // The listener stays open while in-flight events finish, answering 503 to
        // webhooks and to /readyz; then it lets each connection finish its request.
        let finished = tokio::time::timeout_at(deadline, workers).await;
        let _ = stop.send(());
        let closed = tokio::time::timeout_at(deadline, server).await;
        if finished.is_err() || closed.is_err() {
            tracing::warn!("stopped after {DRAIN:?} with work in flight; unfinished events run again at the next start");
        }
        let _ = tokio::time::timeout(Duration::from_secs(5), health).await;
        // The admin listener served the drain (metrics, pages); it stops last.
        let _ = stop_admin.send(());
        let _ = tokio::time::timeout(Duration::from_secs(5), admin_server).await;
        upkeep.abort();
        gauges.abort();
        schedules.abort();
        polls.abort();
        pruning.abort();
        // Alert messages being sent end and are recorded, or are cut (sent again at the
        // next start): 10 s at most past the events' deadline, as the docs promise.
        if let Some(alerting) = alerting {
            let _ = tokio::time::timeout_at(deadline + ALERTS_AFTER_DRAIN, alerting).await;
        }
        Ok::<(), String>(())
    });
    // Tasks still running past the drain (a stuck connection or run) are dropped, not
    // waited for.
    runtime.shutdown_timeout(Duration::from_secs(1));
    served?;
    Ok(())
}

/// Connections the admin listener serves at once: a scraper and a few people.
const ADMIN_CONNECTIONS: usize = 32;

/// `--docs-url`: an absolute http(s) URL, since a chat or a mail client opens it.
fn docs_url(text: &str) -> Result<String, String> {
    match reqwest::Url::parse(text) {
        Ok(url) if matches!(url.scheme(), "http" | "https") => Ok(text.to_string()),
        _ => Err("not an http(s) URL such as `https://docs.example.com/integrations`".into()),
    }
}

/// The URL alerts link the run history under: `--admin-url`, else the admin listener's own
/// address when it names one host (not `0.0.0.0`, which nobody can open).
fn admin_url(given: Option<&str>, admin: std::net::SocketAddr) -> Option<String> {
    match given {
        Some(url) => Some(url.to_string()),
        None => (!admin.ip().is_unspecified()).then(|| format!("http://{admin}")),
    }
}

/// Binds the admin listener, refusing the webhook listener's port: `/metrics` and the
/// admin pages must never be reachable where the senders of webhooks are.
async fn bind_admin(
    admin: &str,
    webhooks: std::net::SocketAddr,
) -> Result<tokio::net::TcpListener, String> {
    let addresses: Vec<std::net::SocketAddr> = tokio::net::lookup_host(admin)
        .await
        .map_err(|e| format!("--admin-listen `{admin}`: {e}"))?
        .collect();
    if addresses.iter().any(|a| a.port() == webhooks.port()) {
        return Err(format!(
            "--admin-listen `{admin}` is the webhook port {}: the admin listener needs a port of its own",
            webhooks.port()
        ));
    }
    tokio::net::TcpListener::bind(addresses.as_slice())
        .await
        .map_err(|e| format!("cannot listen on {admin} (--admin-listen): {e}"))
}

fn routes(service: &Service) -> usize {
    service
        .engines
        .iter()
        .map(|e| e.plan().webhooks.len())
        .sum()
}

/// SIGTERM or SIGINT.
async fn signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(terminate) => terminate,
                Err(_) => {
                    let _ = interrupt.await;
                    return;
                }
            };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}

#[cfg(test)]
mod tests {
    use super::{admin_url, drain_delay};
    use std::time::Duration;

    #[test]
    fn a_drain_delay_is_from_none_to_20_seconds() {
        assert_eq!(drain_delay("0"), Ok(Duration::ZERO));
        assert_eq!(drain_delay("0s"), Ok(Duration::ZERO));
        assert_eq!(drain_delay("2500ms"), Ok(Duration::from_millis(2500)));
        assert_eq!(drain_delay("20s"), Ok(Duration::from_secs(20)));
        for refused in ["21s", "1m", "5", "soon", ""] {
            assert!(drain_delay(refused).is_err(), "{refused}");
        }
    }

    #[test]
    fn alerts_link_the_admin_listener_unless_it_takes_every_interface() {
        let local = "127.0.0.1:9464".parse().unwrap();
        let any = "0.0.0.0:9464".parse().unwrap();
        assert_eq!(
            admin_url(None, local).as_deref(),
            Some("http://127.0.0.1:9464")
        );
        assert_eq!(admin_url(None, any), None);
        let given = Some("https://admin.example.com");
        assert_eq!(admin_url(given, any).as_deref(), given);
    }
}
