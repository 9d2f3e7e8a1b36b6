//! Load generator for `pathway serve`: patient-view calls with an EHR-sized prefetch (about
//! 25 KB) sent at a steady rate to a real server on loopback; median and p99 latency per
//! rate, and the highest rate held with p99 under 50 ms.
//!
//! `cargo bench --bench serve` (about a minute). `SERVE_RATES=500,1000` and
//! `SERVE_SECONDS=5` change the steps. The server and this client share the machine's cores.
//! Latency is measured from when each request was due (open loop), so a server that falls
//! behind is charged for the queue it builds.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use pathway::fhir::{Reader, ValueSets, ehr_shaped, to_bundle};
use pathway::rules::{PatientGenerator, RuleSet};
use pathway_serve::{Config, Service};
use serde_json::{Value, json};

/// One call per generated patient, its prefetch the patient's EHR-shaped record.
fn calls(n: usize) -> Vec<Vec<u8>> {
    let rs = RuleSet::ms_spasticity().unwrap();
    let reader = Reader::new(&rs, ValueSets::ms_spasticity(&rs).unwrap());
    PatientGenerator::new(&rs, 11)
        .take(n)
        .enumerate()
        .map(|(i, p)| {
            let id = format!("p{i}");
            let b = ehr_shaped(&to_bundle(&reader, &p, &id));
            let rs: Vec<Value> = b["entry"].as_array().unwrap().iter().map(|e| e["resource"].clone()).collect();
            let set = |k: &str| {
                json!({"resourceType": "Bundle", "type": "searchset",
                    "entry": rs.iter().filter(|r| r["resourceType"] == k).map(|r| json!({"resource": r})).collect::<Vec<_>>()})
            };
            let patient = rs.iter().find(|r| r["resourceType"] == "Patient").unwrap().clone();
            json!({"hook": "patient-view", "hookInstance": format!("00000000-0000-4000-8000-{i:012}"),
                "context": {"userId": "Practitioner/1", "patientId": id},
                "prefetch": {"patient": patient, "conditions": set("Condition"), "observations": set("Observation"),
                    "medicationRequests": set("MedicationRequest"), "medicationStatements": set("MedicationStatement"),
                    "allergies": set("AllergyIntolerance"), "procedures": set("Procedure")}})
            .to_string()
            .into_bytes()
        })
        .collect()
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn main() {
    let rates: Vec<u32> = std::env::var("SERVE_RATES")
        .unwrap_or_else(|_| "250,500,1000,1500,2000".into())
        .split(',')
        .filter_map(|r| r.trim().parse().ok())
        .collect();
    let seconds: u64 = std::env::var("SERVE_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let bodies = Arc::new(calls(500));
    let mean = bodies.iter().map(Vec::len).sum::<usize>() / bodies.len();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    if std::env::var("SERVE_DIRECT").is_ok() {
        direct(&rt, &bodies);
        return;
    }
    rt.block_on(async move {
        let db = tempfile::tempdir().unwrap();
        let cfg = Config {
            insecure_dev: true,
            date: Some("2026-11-22".into()),
            feedback_db: db.path().join("f.sqlite"),
            ..Config::default()
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/cds-services/pathway-patient-view", listener.local_addr().unwrap());
        let service = Service::start(cfg).await.unwrap();
        tokio::spawn(pathway_serve::serve(service, listener, std::future::pending()));
        let client = reqwest::Client::builder().pool_max_idle_per_host(512).build().unwrap();
        // Warm up.
        for b in bodies.iter().take(50) {
            client.post(&url).header("content-type", "application/json").body(b.clone()).send().await.unwrap();
        }
        println!("patient-view, prefetch mean {mean} bytes, {seconds} s per rate, server and client on one machine");
        println!("{:>8} {:>9} {:>9} {:>10} {:>10} {:>10}", "rate/s", "sent", "ok", "median ms", "p99 ms", "max ms");
        let mut best = None;
        for rate in rates {
            let n = rate as u64 * seconds;
            let interval = Duration::from_secs_f64(1.0 / f64::from(rate));
            let start = Instant::now();
            let mut tasks = Vec::with_capacity(n as usize);
            for i in 0..n {
                let due = start + interval.mul_f64(i as f64);
                tokio::time::sleep_until(due.into()).await;
                let (client, url, bodies) = (client.clone(), url.clone(), bodies.clone());
                tasks.push(tokio::spawn(async move {
                    let body = bodies[i as usize % bodies.len()].clone();
                    let r = client.post(&url).header("content-type", "application/json").body(body).send().await;
                    let ok = matches!(&r, Ok(r) if r.status().is_success());
                    if let Ok(r) = r {
                        let _ = r.bytes().await;
                    }
                    (ok, due.elapsed().as_secs_f64() * 1000.0)
                }));
            }
            let mut lat = Vec::with_capacity(tasks.len());
            let mut ok = 0;
            for t in tasks {
                let (good, ms) = t.await.unwrap();
                ok += usize::from(good);
                lat.push(ms);
            }
            lat.sort_by(f64::total_cmp);
            let (p50, p99) = (percentile(&lat, 0.5), percentile(&lat, 0.99));
            println!("{rate:>8} {n:>9} {ok:>9} {p50:>10.2} {p99:>10.2} {:>10.2}", lat.last().copied().unwrap_or(f64::NAN));
            if p99 < 50.0 && ok as u64 == n {
                best = Some(rate);
            }
        }
        match best {
            Some(r) => println!("highest rate held with p99 under 50 ms: {r}/s"),
            None => println!("no rate was held with p99 under 50 ms"),
        }
    });
}

/// Server-side cost of one call, without HTTP (for finding where the time goes).
#[allow(dead_code)]
pub fn direct(rt: &tokio::runtime::Runtime, bodies: &[Vec<u8>]) {
    rt.block_on(async {
        let db = tempfile::tempdir().unwrap();
        let cfg = Config {
            insecure_dev: true,
            date: Some("2026-11-22".into()),
            feedback_db: db.path().join("f.sqlite"),
            ..Config::default()
        };
        let service = Service::start(cfg).await.unwrap();
        let headers = axum_headers();
        let t = Instant::now();
        for b in bodies.iter().cycle().take(2000) {
            service
                .hook("pathway-patient-view", &headers, b)
                .await
                .unwrap();
        }
        println!(
            "direct: {:.1} us per call",
            t.elapsed().as_secs_f64() * 1e6 / 2000.0
        );
    });
}

fn axum_headers() -> reqwest::header::HeaderMap {
    reqwest::header::HeaderMap::new()
}
