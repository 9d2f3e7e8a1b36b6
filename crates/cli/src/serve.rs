//! `pathway serve` and `pathway feedback report`.

use std::path::Path;

use pathway_serve::{Config, Service};

use crate::common::{self, Fail};

/// The configuration: the file, then `PATHWAY_*` variables, then flags.
fn config(file: Option<&Path>, port: Option<u16>, insecure_dev: bool) -> Result<Config, Fail> {
    let mut c = match file {
        Some(f) => Config::load(f).map_err(|e| Fail::input(e.to_string()))?,
        None => Config::default(),
    }
    .with_env(|k| std::env::var(k).ok());
    if let Some(p) = port {
        let host = c
            .listen
            .rsplit_once(':')
            .map_or("127.0.0.1", |(h, _)| h)
            .to_owned();
        c.listen = format!("{host}:{p}");
        if file.is_none() && std::env::var("PATHWAY_BASE_URL").is_err() {
            c.base_url = format!("http://{host}:{p}");
        }
    }
    c.insecure_dev |= insecure_dev;
    Ok(c)
}

pub fn run(port: Option<u16>, file: Option<&Path>, insecure_dev: bool) -> Result<(), Fail> {
    let c = config(file, port, insecure_dev)?;
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Fail::input(format!("cannot start the runtime: {e}")))?;
    rt.block_on(async move {
        if c.insecure_dev {
            eprintln!(
                "pathway: WARNING: --insecure-dev: hook calls are accepted without a verified JWT. Never use this with real patients."
            );
        }
        let listen = c.listen.clone();
        let service = Service::start(c)
            .await
            .map_err(|e| Fail::input(e.to_string()))?;
        let listener = tokio::net::TcpListener::bind(&listen)
            .await
            .map_err(|e| Fail::input(format!("cannot listen on {listen}: {e}")))?;
        let addr = listener
            .local_addr()
            .map_or_else(|_| listen.clone(), |a| a.to_string());
        eprintln!("pathway: CDS Hooks service on http://{addr}/cds-services");
        pathway_serve::serve(service, listener, async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .map_err(|e| Fail::input(format!("the service stopped: {e}")))
    })
}

pub fn report(db: Option<&Path>) -> Result<(), Fail> {
    let path = db.map_or_else(|| Config::default().feedback_db, Path::to_path_buf);
    if !path.exists() {
        return Err(Fail::input(format!(
            "{}: no feedback database (pathway serve writes it)",
            path.display()
        )));
    }
    let store =
        pathway_serve::feedback::Store::open(&path).map_err(|e| Fail::input(e.to_string()))?;
    let (by_rule, by_kind) = store.report().map_err(Fail::input)?;
    common::print(pathway_serve::feedback::render(&by_rule, &by_kind).trim_end())
}
