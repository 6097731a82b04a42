//! `make bench`: measures the operator against DESIGN.md's targets on the local control plane
//! and prints a report. Nothing here asserts; the numbers are for people to read.

use std::collections::{HashMap, HashSet};
use std::fmt::Debug;
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use kube::Resource;
use kube::api::{Api, PostParams};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, watcher};
use serde::de::DeserializeOwned;
use serde_json::json;
use trellis_e2e::api::{Database, Trellis};
use trellis_e2e::operator::{CONTROL_PLANE_NAMESPACE, Operator, OperatorSettings, RUN_LABEL};
use trellis_e2e::{client, ensure_namespace, install_crds, unique_name};
use trellis_operator::resources::names::namespace_name;
use trellis_operator::resources::{
    Project, ProjectPhase, Workspace, WorkspacePhase, WorkspaceTemplate,
};

fn project(name: &str, run: &str, max_workspaces: u32) -> Project {
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
            "resources": {"cpu": "200", "memory": "400Gi", "storage": "2Ti", "maxWorkspaces": max_workspaces},
            "templates": ["bench"],
        },
    }))
    .expect("a project")
}

fn workspace(name: &str, namespace: &str, run: &str) -> Workspace {
    serde_json::from_value(json!({
        "apiVersion": "trellis.dev/v1alpha1",
        "kind": "Workspace",
        "metadata": {"name": name, "namespace": namespace, "labels": {RUN_LABEL: run}},
        "spec": {"owner": "alice", "template": "bench"},
    }))
    .expect("a workspace")
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / 1024.0 / 1024.0
}

fn key<K: Resource>(object: &K) -> String {
    format!(
        "{}/{}",
        object.meta().namespace.clone().unwrap_or_default(),
        object.meta().name.clone().unwrap_or_default()
    )
}

/// Authenticated `GET /api/v1/projects` against the real API (release build) with a real Dex
/// token: `connections` keep-alive clients in a closed loop for `seconds`, on the same machine.
async fn api_throughput(client: &kube::Client) {
    let projects: Api<Project> = Api::all(client.clone());
    // 50 projects in the cache, alice a member of 10: each answer lists 10.
    let run = unique_name("bench-api");
    for i in 0..50 {
        let mut body = project(&format!("{run}-{i}"), "none", 1);
        if i % 5 != 0 {
            body.spec.members[0].subject = "someone-else".into();
        }
        projects
            .create(&PostParams::default(), &body)
            .await
            .expect("creating a project");
    }
    let trellis = Trellis::start(&Database::Sqlite).await;
    let token = trellis.dex.token("alice").await;
    let url = format!("{}/api/v1/projects", trellis.api.url);
    let http = reqwest::Client::new();
    let listed: serde_json::Value = http
        .get(&url)
        .bearer_auth(&token)
        .send()
        .await
        .expect("an answer")
        .json()
        .await
        .expect("JSON");
    let visible = listed.as_array().map_or(0, |a| {
        a.iter()
            .filter(|p| p["name"].as_str().is_some_and(|n| n.starts_with(&run)))
            .count()
    });
    let (connections, seconds) = (32, 10);
    let started = Instant::now();
    let deadline = started + Duration::from_secs(seconds);
    let workers: Vec<_> = (0..connections)
        .map(|_| {
            let (http, url, token) = (http.clone(), url.clone(), token.clone());
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut failures = 0u64;
                while Instant::now() < deadline {
                    let sent = Instant::now();
                    match http.get(&url).bearer_auth(&token).send().await {
                        Ok(response) if response.status().is_success() => {
                            let _ = response.bytes().await;
                            latencies.push(sent.elapsed());
                        }
                        _ => failures += 1,
                    }
                }
                (latencies, failures)
            })
        })
        .collect();
    let mut latencies = Vec::new();
    let mut failures = 0;
    for worker in workers {
        let (mine, failed) = worker.await.expect("a load worker");
        latencies.extend(mine);
        failures += failed;
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort();
    println!(
        "Authenticated GET /api/v1/projects ({connections} keep-alive connections for {seconds} s; {visible} projects per answer; load generator on the same 2 cores)"
    );
    println!(
        "  {:.0} req/s   p50 {:.2} ms   p99 {:.2} ms   max {:.2} ms   failures {failures}   target: ≥ 5,000 req/s, p99 < 20 ms",
        latencies.len() as f64 / elapsed,
        percentile(&latencies, 0.50).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3,
        latencies.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
    );
    println!();
}

/// A 4 GiB ingress upload through the API (streamed, hashed, stored) against `openssl dgst
/// -sha256` on the same file, with the API's memory sampled throughout.
async fn airlock_upload(client: &kube::Client) {
    const SIZE: u64 = 4 << 30;
    let settings = OperatorSettings::new();
    let _operator = Operator::start(&settings);
    // The bench project's spec (members: alice), for this run's operator.
    let spec = serde_json::to_value(project("unused", &settings.run, 1).spec).expect("a spec");
    let name = trellis_e2e::create_active_project(client, &settings.run, "bench-air", spec).await;
    let path = trellis_e2e::state_dir("bench-data").join("airlock-4gib.bin");
    if std::fs::metadata(&path).map(|m| m.len()).ok() != Some(SIZE) {
        // Incompressible, reproducible bytes (xorshift), written in 1 MiB pieces.
        use std::io::Write;
        let mut out = std::io::BufWriter::new(std::fs::File::create(&path).expect("the test file"));
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut piece = vec![0u8; 1 << 20];
        for _ in 0..(SIZE >> 20) {
            for word in piece.chunks_exact_mut(8) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                word.copy_from_slice(&x.to_le_bytes());
            }
            out.write_all(&piece).expect("writing the test file");
        }
        out.flush().expect("flushing the test file");
    }
    // Warm the page cache for both readers alike.
    let _ = std::process::Command::new("cat")
        .arg(&path)
        .stdout(std::process::Stdio::null())
        .status();
    let started = Instant::now();
    let openssl = std::process::Command::new("openssl")
        .args(["dgst", "-sha256"])
        .arg(&path)
        .output()
        .expect("openssl");
    let openssl_seconds = started.elapsed().as_secs_f64();
    assert!(openssl.status.success(), "openssl dgst failed");

    let trellis = Trellis::start(&Database::Sqlite).await;
    let steward = trellis.dex.token("steward").await;
    let (status, request) = trellis
        .call(
            reqwest::Method::POST,
            &format!("/api/v1/projects/{name}/airlock"),
            Some(&steward),
            Some(json!({"direction": "ingress", "title": "Benchmark dataset"})),
        )
        .await;
    assert_eq!(status, 201, "{request}");
    let id = request["id"].as_str().expect("an id").to_string();
    let (baseline, _) = trellis.api.memory();
    let peak = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(baseline));
    let sampling = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let sampler = {
        let (peak, sampling) = (peak.clone(), sampling.clone());
        let api_pid = trellis.api.pid();
        tokio::spawn(async move {
            while sampling.load(std::sync::atomic::Ordering::Relaxed) {
                let (rss, _) = trellis_e2e::process_memory(api_pid);
                peak.fetch_max(rss, std::sync::atomic::Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };
    // curl streams the file (-T) with large reads, as a client outside the TRE would.
    let url = format!(
        "{}/api/v1/projects/{name}/airlock/{id}/files/dataset.bin",
        trellis.api.url
    );
    let started = Instant::now();
    let (file, bearer) = (path.clone(), format!("Authorization: Bearer {steward}"));
    let upload = tokio::task::spawn_blocking(move || {
        std::process::Command::new("curl")
            .args(["-sS", "-o", "-", "-w", "\n%{http_code}", "-T"])
            .arg(&file)
            .args([
                "-H",
                &bearer,
                "-H",
                "Content-Type: application/octet-stream",
                &url,
            ])
            .output()
            .expect("curl")
    })
    .await
    .expect("the upload");
    let api_seconds = started.elapsed().as_secs_f64();
    sampling.store(false, std::sync::atomic::Ordering::Relaxed);
    let _ = sampler.await;
    let output = String::from_utf8_lossy(&upload.stdout).into_owned();
    let (body, status) = output.rsplit_once('\n').unwrap_or((&output, "?"));
    let stored: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
    let expected = String::from_utf8_lossy(&openssl.stdout)
        .rsplit(' ')
        .next()
        .unwrap_or_default()
        .trim()
        .to_string();
    let mib_s = |seconds: f64| SIZE as f64 / (1 << 20) as f64 / seconds;
    println!(
        "Airlock upload of a 4 GiB file through the API (ingress, SQLite, local object store, release build)"
    );
    println!(
        "  API {:.0} MiB/s ({api_seconds:.1} s)   openssl dgst -sha256 {:.0} MiB/s ({openssl_seconds:.1} s)   ratio {:.0}%   target: ≥ 70%",
        mib_s(api_seconds),
        mib_s(openssl_seconds),
        100.0 * openssl_seconds / api_seconds
    );
    let peak = peak.load(std::sync::atomic::Ordering::Relaxed);
    println!(
        "  API memory: {:.1} MiB before, {:.1} MiB peak during the upload ({:+.1} MiB)   target: < 64 MiB extra",
        mib(baseline),
        mib(peak),
        mib(peak) - mib(baseline)
    );
    println!(
        "  HTTP {status}; stored hash {} openssl's",
        if stored["sha256"] == expected.as_str() {
            "equals"
        } else {
            "DIFFERS FROM"
        }
    );
    println!();
}

/// Watches objects labelled with `run` until every key in `keys` satisfies `done`, returning
/// when each first did (as seen by the watch).
async fn times_when<K>(
    api: &Api<K>,
    run: &str,
    keys: &[String],
    done: fn(&K) -> bool,
    timeout: Duration,
) -> HashMap<String, Instant>
where
    K: Resource + Clone + Debug + DeserializeOwned + Send + 'static,
{
    let wanted: HashSet<&str> = keys.iter().map(String::as_str).collect();
    let mut seen = HashMap::new();
    let config = watcher::Config::default().labels(&format!("{RUN_LABEL}={run}"));
    let mut stream = watcher(api.clone(), config).applied_objects().boxed();
    let deadline = tokio::time::sleep(timeout);
    tokio::pin!(deadline);
    while seen.len() < wanted.len() {
        tokio::select! {
            () = &mut deadline => break,
            next = stream.try_next() => match next {
                Ok(Some(object)) if wanted.contains(key(&object).as_str()) && done(&object) => {
                    seen.entry(key(&object)).or_insert_with(Instant::now);
                }
                Ok(_) => {}
                Err(error) => eprintln!("watch error: {error}"),
            },
        }
    }
    seen
}

fn active(project: &Project) -> bool {
    project.status.as_ref().and_then(|s| s.phase) == Some(ProjectPhase::Active)
}

fn running(workspace: &Workspace) -> bool {
    workspace.status.as_ref().and_then(|s| s.phase) == Some(WorkspacePhase::Running)
}

/// Creates each object at a steady pace, one at a time, and reports creation → `done` latency.
/// `api` watches every object; each object is created through the Api beside it.
async fn latency<K>(
    api: Api<K>,
    run: &str,
    objects: Vec<(Api<K>, K)>,
    done: fn(&K) -> bool,
    what: &str,
    target: &str,
) where
    K: Resource + Clone + Debug + DeserializeOwned + serde::Serialize + Send + Sync + 'static,
{
    let mut latencies = Vec::new();
    for (create_in, object) in objects {
        let object_key = key(&object);
        let watching = {
            let api = api.clone();
            let run = run.to_owned();
            let keys = vec![object_key.clone()];
            tokio::spawn(async move {
                times_when(&api, &run, &keys, done, Duration::from_secs(30)).await
            })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        let created = Instant::now();
        create_in
            .create(&PostParams::default(), &object)
            .await
            .expect("creating");
        match watching.await.expect("watch task").get(&object_key) {
            Some(reached) => latencies.push(*reached - created),
            None => println!("  {object_key} did not get there within 30 s"),
        }
    }
    latencies.sort();
    println!("{what} ({} measured, one at a time)", latencies.len());
    println!(
        "  p50 {:>7.1} ms   p99 {:>7.1} ms   max {:>7.1} ms   target: {target}",
        percentile(&latencies, 0.5).as_secs_f64() * 1000.0,
        percentile(&latencies, 0.99).as_secs_f64() * 1000.0,
        latencies.last().copied().unwrap_or_default().as_secs_f64() * 1000.0,
    );
}

async fn wait_writes_settle(operator: &Operator, seconds: u64) -> f64 {
    let writes =
        |controller: &str| format!("trellis_operator_writes_total{{controller=\"{controller}\"}}");
    let total = async || {
        let mut sum = 0.0;
        for controller in ["project", "workspace", "templates"] {
            sum += operator.metric(&writes(controller)).await;
        }
        sum
    };
    let before = total().await;
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    total().await - before
}

/// The real-node lane's figures (tests/real-node/run.sh bench): how long a workspace takes from
/// its request to JupyterLab answering through the gateway, on a real kubelet, one at a time.
async fn real_node(client: &kube::Client) {
    let env = |name: &str| {
        std::env::var(name)
            .unwrap_or_else(|_| panic!("{name}: run through tests/real-node/run.sh bench"))
    };
    let (url, workspaces_url, issuer) = (
        env("TRELLIS_REAL_URL"),
        env("TRELLIS_REAL_WORKSPACES_URL"),
        env("TRELLIS_REAL_ISSUER"),
    );
    println!(
        "Real node: the chart from the local images on kubelet + containerd + runc, NetworkPolicies enforced by kube-router"
    );
    let images = trellis_e2e::repo_root().join("target/images");
    let mut archives: Vec<_> = std::fs::read_dir(&images)
        .expect("target/images")
        .filter_map(|e| e.ok())
        .collect();
    archives.sort_by_key(|e| e.file_name());
    for archive in archives {
        let size = archive.metadata().expect("metadata").len();
        println!(
            "  image {:<34} {:>7.1} MiB (archive, layers compressed)",
            archive.file_name().to_string_lossy(),
            mib(size)
        );
    }
    let today = chrono::Utc::now().date_naive().to_string();
    let project = trellis_e2e::create_active_project(
        client,
        "real-node-bench",
        "bench",
        json!({
            "title": "Bench", "purpose": "Workspace start times.",
            "approval": {"reference": "B-1", "approvedBy": "DAC", "approvedAt": format!("{today}T00:00:00Z")},
            "startDate": today, "endDate": "2099-12-31",
            "members": [{"subject": "alice", "role": "owner"}],
            "resources": {"cpu": "2", "memory": "4Gi", "storage": "30Gi", "maxWorkspaces": 2},
            "templates": ["jupyter"],
        }),
    )
    .await;
    let token = trellis_e2e::identity::password_token(
        &issuer,
        "alice",
        trellis_e2e::identity::CLIENT_ID,
        trellis_e2e::identity::CLIENT_SECRET,
    )
    .await;
    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .expect("a client");
    trellis_e2e::api::sign_in(&browser, &url, &issuer, "alice", "/").await;
    let http = reqwest::Client::new();
    let pods: Api<k8s_openapi::api::core::v1::Pod> =
        Api::namespaced(client.clone(), &namespace_name(&project));
    let mut times = Vec::new();
    for i in 0..20 {
        let name = format!("ws{i}");
        let started = Instant::now();
        let made = http
            .post(format!("{url}/api/v1/projects/{project}/workspaces"))
            .bearer_auth(&token)
            .json(&json!({"name": name, "template": "jupyter"}))
            .send()
            .await
            .expect("the API answers");
        assert_eq!(
            made.status().as_u16(),
            201,
            "{}",
            made.text().await.unwrap_or_default()
        );
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let answer = browser
                .get(format!("{workspaces_url}/w/{project}/{name}/api/status"))
                .send()
                .await;
            if matches!(&answer, Ok(r) if r.status().as_u16() == 200) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{name} did not answer through the gateway within 120 s"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        times.push(started.elapsed());
        let deleted = http
            .delete(format!("{url}/api/v1/projects/{project}/workspaces/{name}"))
            .bearer_auth(&token)
            .send()
            .await
            .expect("the API answers");
        assert!(deleted.status().is_success(), "{}", deleted.status());
        let gone = Instant::now() + Duration::from_secs(120);
        while pods
            .get_opt(&format!("{name}-0"))
            .await
            .expect("a lookup")
            .is_some()
        {
            assert!(Instant::now() < gone, "{name}'s pod did not go");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    times.sort();
    println!(
        "  workspace requested → JupyterLab answering through the gateway, real node, n={}: p50 {:.2} s, p99 {:.2} s, min {:.2} s, max {:.2} s",
        times.len(),
        percentile(&times, 0.5).as_secs_f64(),
        percentile(&times, 0.99).as_secs_f64(),
        times[0].as_secs_f64(),
        times[times.len() - 1].as_secs_f64()
    );
}

#[tokio::main]
async fn main() {
    let client = client().await;
    if std::env::args().nth(1).as_deref() == Some("real-node") {
        real_node(&client).await;
        return;
    }
    install_crds(&client).await;
    ensure_namespace(&client, "trellis-system").await;
    println!(
        "Trellis benchmark (local control plane, {} cores)",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!();
    api_throughput(&client).await;
    airlock_upload(&client).await;
    if std::env::args().nth(1).as_deref() == Some("api") {
        return;
    }
    // Leases live in Trellis\'s namespace, where the operator\'s Role allows them.
    ensure_namespace(&client, CONTROL_PLANE_NAMESPACE).await;
    let projects: Api<Project> = Api::all(client.clone());
    let workspaces: Api<Workspace> = Api::all(client.clone());
    let template: WorkspaceTemplate = serde_json::from_value(json!({
        "apiVersion": "trellis.dev/v1alpha1", "kind": "WorkspaceTemplate", "metadata": {"name": "bench"},
        "spec": {"displayName": "Bench", "image": "registry.example/bench:1", "port": 8888,
                 "resources": {"default": {"cpu": "100m", "memory": "128Mi"}, "max": {"cpu": "1", "memory": "1Gi"}},
                 "defaultStorage": "1Gi"},
    }))
    .expect("a template");
    Api::<WorkspaceTemplate>::all(client.clone())
        .create(&PostParams::default(), &template)
        .await
        .expect("creating the bench template");

    // 1. Latencies, one object at a time at a steady pace.
    let settings = OperatorSettings::new();
    let operator = Operator::start(&settings);
    operator.get("/readyz").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let latency_projects = (0..100)
        .map(|i| {
            (
                projects.clone(),
                project(
                    &format!("bench-latency-{i}-{}", settings.run),
                    &settings.run,
                    4,
                ),
            )
        })
        .collect();
    latency(
        projects.clone(),
        &settings.run,
        latency_projects,
        active,
        "Project created → Active with every guardrail",
        "p99 < 1000 ms",
    )
    .await;
    let home = format!("bench-home-{}", settings.run);
    projects
        .create(&PostParams::default(), &project(&home, &settings.run, 100))
        .await
        .expect("creating");
    times_when(
        &projects,
        &settings.run,
        &[format!("/{home}")],
        active,
        Duration::from_secs(30),
    )
    .await;
    let namespace = namespace_name(&home);
    let in_namespace: Api<Workspace> = Api::namespaced(client.clone(), &namespace);
    let latency_workspaces = (0..100)
        .map(|i| {
            (
                in_namespace.clone(),
                workspace(&format!("ws-{i}"), &namespace, &settings.run),
            )
        })
        .collect();
    println!();
    latency(
        workspaces.clone(),
        &settings.run,
        latency_workspaces,
        running,
        "Workspace created → Running (kwok)",
        "p99 < 2000 ms",
    )
    .await;
    drop(operator);

    // 2. Scale: 1,000 projects created while no operator runs, then a cold start.
    let settings = OperatorSettings::new();
    let names: Vec<String> = (0..1000)
        .map(|i| format!("bench-scale-{i}-{}", settings.run))
        .collect();
    futures::stream::iter(names.clone())
        .map(|name| {
            let projects = projects.clone();
            let body = project(&name, &settings.run, 4);
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
    let keys: Vec<String> = names.iter().map(|name| format!("/{name}")).collect();
    let seen = times_when(
        &projects,
        &settings.run,
        &keys,
        active,
        Duration::from_secs(600),
    )
    .await;
    let all_active = started.elapsed();
    println!();
    println!("1,000 projects from a cold start (operator started after they were created)");
    println!(
        "  Active: {} of 1000 in {:.1} s   target: all < 120 s",
        seen.len(),
        all_active.as_secs_f64()
    );
    let (_, peak) = operator.memory();
    println!("  operator memory peak: {:.1} MiB", mib(peak));

    // 3. 2,000 workspaces, two in each of those projects, created as fast as the API takes them.
    let workspace_keys: Vec<(String, String)> = names
        .iter()
        .flat_map(|name| (0..2).map(move |i| (namespace_name(name), format!("ws-{i}"))))
        .collect();
    let started = Instant::now();
    futures::stream::iter(workspace_keys.clone())
        .map(|(namespace, name)| {
            let api: Api<Workspace> = Api::namespaced(client.clone(), &namespace);
            let body = workspace(&name, &namespace, &settings.run);
            async move {
                api.create(&PostParams::default(), &body)
                    .await
                    .expect("creating")
            }
        })
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await;
    let keys: Vec<String> = workspace_keys
        .iter()
        .map(|(namespace, name)| format!("{namespace}/{name}"))
        .collect();
    let seen = times_when(
        &workspaces,
        &settings.run,
        &keys,
        running,
        Duration::from_secs(900),
    )
    .await;
    println!(
        "  2,000 workspaces (2 per project) created → Running: {} of 2000 in {:.1} s",
        seen.len(),
        started.elapsed().as_secs_f64()
    );
    let (rss, peak) = operator.memory();
    println!(
        "  operator memory: {:.1} MiB now, {:.1} MiB peak   target: < 200 MiB",
        mib(rss),
        mib(peak)
    );
    tokio::time::sleep(Duration::from_secs(5)).await;
    println!(
        "  writes in 30 s of steady state: {}   target: 0",
        wait_writes_settle(&operator, 30).await
    );

    // 4. A cold start with all of it in place.
    drop(operator);
    let restarted_at = Instant::now();
    let operator = Operator::start(&settings);
    let reconciles = |controller: &str| {
        format!(
            "trellis_operator_reconciles_total{{controller=\"{controller}\",outcome=\"success\"}}"
        )
    };
    while (operator.metric(&reconciles("project")).await < 1000.0
        || operator.metric(&reconciles("workspace")).await < 2000.0)
        && restarted_at.elapsed() < Duration::from_secs(300)
    {
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let caught_up = restarted_at.elapsed();
    let (rss, peak) = operator.memory();
    println!();
    println!("Cold start with 1,000 projects and 2,000 workspaces in place");
    println!(
        "  reconciled {} projects and {} workspaces in {:.1} s   target: < 120 s",
        operator.metric(&reconciles("project")).await,
        operator.metric(&reconciles("workspace")).await,
        caught_up.as_secs_f64()
    );
    println!(
        "  operator memory: {:.1} MiB now, {:.1} MiB peak   target: < 200 MiB",
        mib(rss),
        mib(peak)
    );
    let writes =
        |controller: &str| format!("trellis_operator_writes_total{{controller=\"{controller}\"}}");
    let mut total = 0.0;
    for controller in ["project", "workspace"] {
        total += operator.metric(&writes(controller)).await;
    }
    println!("  writes since the restart: {total}   target: 0");
}
