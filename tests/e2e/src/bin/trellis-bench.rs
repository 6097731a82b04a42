//! `make bench`: measures the operator against DESIGN.md's targets on the local control plane
//! and prints a report. Nothing here asserts; the numbers are for people to read.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use kube::ResourceExt;
use kube::api::{Api, PostParams};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, watcher};
use serde_json::json;
use trellis_e2e::operator::{Operator, OperatorSettings, RUN_LABEL};
use trellis_e2e::{client, create_namespace, install_crds, unique_name};
use trellis_operator::resources::{Project, ProjectPhase};

fn project(name: &str, run: &str) -> Project {
    serde_json::from_value(json!({
        "apiVersion": "trellis.dev/v1alpha1",
        "kind": "Project",
        "metadata": {"name": name, "labels": {RUN_LABEL: run}},
        "spec": {
            "title": "Benchmark project",
            "purpose": "Load for the operator benchmark.",
            "approval": {"reference": "BENCH", "approvedBy": "bench", "approvedAt": "2026-01-01T00:00:00Z"},
            "startDate": "2026-01-01",
            "endDate": "2099-12-31",
            "members": [{"subject": "alice", "role": "owner"}],
            "resources": {"cpu": "8", "memory": "32Gi", "storage": "100Gi", "maxWorkspaces": 4},
        },
    }))
    .expect("a project")
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / 1024.0 / 1024.0
}

/// Waits until every named project is Active, returning when each became so (by the watch).
async fn active_times(
    projects: &Api<Project>,
    run: &str,
    names: &[String],
    timeout: Duration,
) -> HashMap<String, Instant> {
    let wanted: std::collections::HashSet<&str> = names.iter().map(String::as_str).collect();
    let mut seen = HashMap::new();
    let config = watcher::Config::default().labels(&format!("{RUN_LABEL}={run}"));
    let mut stream = watcher(projects.clone(), config).applied_objects().boxed();
    let deadline = tokio::time::sleep(timeout);
    tokio::pin!(deadline);
    while seen.len() < names.len() {
        tokio::select! {
            () = &mut deadline => break,
            next = stream.try_next() => match next {
                Ok(Some(project))
                    if wanted.contains(project.name_any().as_str())
                        && project.status.as_ref().and_then(|s| s.phase) == Some(ProjectPhase::Active) =>
                {
                    seen.entry(project.name_any()).or_insert_with(Instant::now);
                }
                Ok(_) => {}
                Err(error) => eprintln!("watch error: {error}"),
            },
        }
    }
    seen
}

#[tokio::main]
async fn main() {
    let client = client().await;
    install_crds(&client).await;
    let lease_namespace = unique_name("bench-lease");
    create_namespace(&client, &lease_namespace, &[]).await;
    let projects: Api<Project> = Api::all(client.clone());
    println!(
        "Trellis operator benchmark (local control plane, {} cores)",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!();

    // 1. Latency: Project created → Active, one at a time at a steady pace.
    let settings = OperatorSettings::new(&lease_namespace);
    let operator = Operator::start(&settings);
    operator.get("/readyz").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut latencies = Vec::new();
    for i in 0..100 {
        let name = format!("bench-latency-{i}-{}", settings.run);
        let watching = {
            let projects = projects.clone();
            let run = settings.run.clone();
            let names = vec![name.clone()];
            tokio::spawn(async move {
                active_times(&projects, &run, &names, Duration::from_secs(30)).await
            })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        let created = Instant::now();
        projects
            .create(&PostParams::default(), &project(&name, &settings.run))
            .await
            .expect("creating");
        let seen = watching.await.expect("watch task");
        match seen.get(&name) {
            Some(active) => latencies.push(*active - created),
            None => println!("  {name} did not become Active within 30s"),
        }
    }
    latencies.sort();
    println!("Project created → Active with every guardrail (100 projects, one at a time)");
    println!(
        "  p50 {:>7.1} ms   p99 {:>7.1} ms   max {:>7.1} ms   target: p99 < 1000 ms",
        percentile(&latencies, 0.5).as_secs_f64() * 1000.0,
        percentile(&latencies, 0.99).as_secs_f64() * 1000.0,
        latencies.last().copied().unwrap_or_default().as_secs_f64() * 1000.0,
    );
    drop(operator);

    // 2. Scale: 1,000 projects created while no operator runs, then a cold start.
    let settings = OperatorSettings::new(&lease_namespace);
    let names: Vec<String> = (0..1000)
        .map(|i| format!("bench-scale-{i}-{}", settings.run))
        .collect();
    futures::stream::iter(names.clone())
        .map(|name| {
            let projects = projects.clone();
            let body = project(&name, &settings.run);
            async move {
                projects
                    .create(&PostParams::default(), &body)
                    .await
                    .expect("creating")
            }
        })
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await;
    let started = Instant::now();
    let operator = Operator::start(&settings);
    let seen = active_times(&projects, &settings.run, &names, Duration::from_secs(600)).await;
    let all_active = started.elapsed();
    let (rss, peak) = operator.memory();
    println!();
    println!("1,000 projects from a cold start (operator started after they were created)");
    println!(
        "  Active: {} of 1000 in {:.1} s   target: all < 120 s",
        seen.len(),
        all_active.as_secs_f64()
    );
    println!(
        "  operator memory: {:.1} MiB resident now, {:.1} MiB peak   target: < 200 MiB",
        mib(rss),
        mib(peak)
    );

    let writes = "trellis_operator_writes_total{controller=\"project\"}";
    tokio::time::sleep(Duration::from_secs(5)).await;
    let before = operator.metric(writes).await;
    tokio::time::sleep(Duration::from_secs(30)).await;
    let after = operator.metric(writes).await;
    println!(
        "  writes in 30 s of steady state: {}   target: 0",
        after - before
    );
    let restarted_at = Instant::now();
    drop(operator);
    let operator = Operator::start(&settings);
    let reconciles =
        "trellis_operator_reconciles_total{controller=\"project\",outcome=\"success\"}";
    while operator.metric(reconciles).await < 1000.0
        && restarted_at.elapsed() < Duration::from_secs(300)
    {
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    println!(
        "  after a restart: {} reconciles in {:.1} s, {} writes   target: 0 writes",
        operator.metric(reconciles).await,
        restarted_at.elapsed().as_secs_f64(),
        operator.metric(writes).await
    );
}
