//! The Kubernetes examples (`deploy/kubernetes/`, the manifests in
//! Kubernetes' JSON form) held to the binary: their containers' arguments
//! and environment are run as they are (mounts and the listen address moved
//! to this machine), their probe paths answer on the port they name, the
//! mounted Secret rotates the way Kubernetes swaps one (the `..data`
//! symlink) and `--watch-config` picks it up; the chat's StatefulSet runs
//! two pods that route a chat's callbacks to each other through the names
//! its headless Service gives them.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use ta_bootstrap::chat::ReplicaName;
use ta_emulator::{DEFAULT_CLIENT_SECRET, DEFAULT_TENANT, EmulatorConfig};
use ta_protocol::Transport as _;
use ta_widget_service::server::ServerLimits;

#[path = "common/bin.rs"]
mod bin;
#[path = "common/chat.rs"]
mod chat;
#[path = "common/pod.rs"]
mod pod;
use bin::*;
use pod::{Pod, flag, item, manifests, toml_value};

/// Holds the container's probes to its port: all three on the named port
/// `http`, which is the container's and the one `serve` listens on, and
/// readiness on `/readyz`. The probes' paths, startup's first.
fn probes(pod: &Pod<'_>) -> Vec<String> {
    let container = pod.container;
    let port = &container["ports"][0];
    assert_eq!(port["name"], "http");
    let listen: std::net::SocketAddr = flag(&pod.args, "--listen").parse().unwrap();
    assert_eq!(port["containerPort"], u64::from(listen.port()));
    let mut paths = Vec::new();
    for probe in ["startupProbe", "livenessProbe", "readinessProbe"] {
        let get = &container[probe]["httpGet"];
        assert_eq!(get["port"], "http", "{probe}");
        paths.push(get["path"].as_str().unwrap().to_owned());
    }
    assert_eq!(paths[2], "/readyz");
    paths
}

/// The memory limit covers what `serve` was measured to keep with its
/// connection cap held (docs/operations.md, "Connections"): 16 MiB, and
/// 36 KiB for each connection of the cap, the allocator's keeping after
/// repeated floods included. The cap is the pod's flag, else its variable,
/// else its file's, else the default.
fn memory_covers_the_connection_cap(pod: &Pod<'_>, toml: &str) {
    let from_env = pod.container["env"].as_array().and_then(|env| {
        env.iter()
            .find(|e| e["name"] == "TA_MAX_CONNECTIONS")
            .map(|e| {
                e["value"]
                    .as_str()
                    .expect("TA_MAX_CONNECTIONS: only a literal value is checked here")
                    .to_owned()
            })
    });
    let from_args = pod.args.iter().enumerate().find_map(|(at, a)| {
        if a == "--max-connections" {
            pod.args.get(at + 1).cloned()
        } else {
            a.strip_prefix("--max-connections=").map(str::to_owned)
        }
    });
    let from_file = toml.lines().find_map(|l| {
        let (key, value) = l.split_once('=')?;
        (key.trim() == "max-connections").then(|| value.trim().to_owned())
    });
    let cap: usize = from_args
        .or(from_env)
        .or(from_file)
        .map_or(ServerLimits::default().max_connections, |v| {
            v.trim().parse().unwrap()
        });
    let limit = pod.container["resources"]["limits"]["memory"]
        .as_str()
        .unwrap();
    let mib: usize = limit.strip_suffix("Mi").unwrap().parse().unwrap();
    let needed = 16 + (cap * 36).div_ceil(1024);
    assert!(
        mib >= needed,
        "{limit} is below the {needed} MiB that {cap} connections may hold"
    );
}

/// The pod's config file (from `--config`) is its ConfigMap's, and names
/// the client secret's file on the Secret volume `client-secret`; its text.
fn config_text<'a>(list: &'a Value, pod: &Pod<'_>) -> &'a str {
    let config_path = flag(&pod.args, "--config");
    let config_map = pod.volume("config")["configMap"]["name"].as_str().unwrap();
    let file_name = Path::new(config_path)
        .file_name()
        .unwrap()
        .to_str()
        .unwrap();
    let toml = item(list, "ConfigMap", Some(config_map))["data"][file_name]
        .as_str()
        .unwrap();
    let secret_item = pod.volume("client-secret")["secret"]["items"][0]["path"]
        .as_str()
        .unwrap();
    let secret = toml_value(toml, "client-secret-file");
    assert!(secret.ends_with(&format!("/{secret_item}")), "{secret}");
    toml
}

/// The workload's PodDisruptionBudget selects its pods and lets a node
/// drain take one at a time.
fn one_pod_at_a_time(list: &Value, workload: &Value) {
    let budget = item(list, "PodDisruptionBudget", None);
    let labels = &workload["spec"]["template"]["metadata"]["labels"];
    assert_eq!(&workload["spec"]["selector"]["matchLabels"], labels);
    assert_eq!(&budget["spec"]["selector"]["matchLabels"], labels);
    assert_eq!(budget["spec"]["maxUnavailable"], 1);
}

/// A GET of `url` over a client trusting the system's roots.
async fn get(url: String) -> http::Response<bytes::Bytes> {
    let client = ta_hyper::HyperTransport::builder().build().unwrap();
    let request = http::Request::get(url).body(bytes::Bytes::new()).unwrap();
    client.send(request).await.unwrap()
}

/// Waits (at most `tries` × 100 ms) for `url` to answer `status` with a
/// body containing `needle`.
async fn wait_for(url: &str, status: u16, needle: &str, tries: usize) -> bool {
    for _ in 0..tries {
        let answer = get(url.to_owned()).await;
        if answer.status() == status && String::from_utf8_lossy(answer.body()).contains(needle) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kubernetes_example_runs_as_written_and_rotates_its_secret() {
    let list = manifests("ta-bootstrap.json");
    let workload = item(&list, "Deployment", None);
    one_pod_at_a_time(&list, workload);
    let pod = Pod::new(&list, workload);
    assert_eq!(pod.args[0], "serve");
    assert!(
        pod.args.iter().any(|a| a == "--watch-config"),
        "{:?}",
        pod.args
    );
    let probes = probes(&pod);
    // The Service sends to that port.
    assert_eq!(
        item(&list, "Service", None)["spec"]["ports"][0]["targetPort"],
        "http"
    );
    memory_covers_the_connection_cap(&pod, config_text(&list, &pod));
    pod.write_config_maps();
    // First a secret AAD refuses; then the rotation.
    pod.write_secret("client-secret", 1, "not-the-secret\n");

    // The container's arguments as written, the mounts moved here, the
    // listen address on loopback, and the deployment pointed at an emulator
    // (flags win over the file).
    let d = deployment(EmulatorConfig::default()).await;
    let mut run = pod.run_args("127.0.0.1:0");
    run.extend(deployment_args(&d));
    // The file's tenant is the example's; the emulator's is its own.
    run.extend(["--tenant".to_owned(), DEFAULT_TENANT.to_owned()]);
    let served = spawn_serve_with(run, 0).await;
    assert_eq!(get(served.base() + &probes[0]).await.status(), 200);
    assert_eq!(get(served.base() + &probes[1]).await.status(), 200);
    let readiness = served.base() + &probes[2];
    assert!(
        wait_for(&readiness, 503, "upstream_authentication", 100).await,
        "the wrong secret was not refused"
    );
    // Kubernetes rotates the Secret: --watch-config reloads, serve is ready.
    pod.write_secret("client-secret", 2, &format!("{DEFAULT_CLIENT_SECRET}\n"));
    assert!(
        wait_for(&readiness, 200, "", 150).await,
        "the rotated secret was not picked up"
    );
    served
        .wait_for_log("a configuration file changed: reloading")
        .await;
    served.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chat_example_runs_its_pods_behind_its_service_and_routes_callbacks() {
    let list = manifests("ta-bootstrap-chat.json");
    let set = item(&list, "StatefulSet", None);
    let labels = &set["spec"]["template"]["metadata"]["labels"];
    assert_eq!(&set["spec"]["selector"]["matchLabels"], labels);
    // The headless Service names each pod for its peers, ready or not (a
    // pod shutting down still holds chats); the other one takes the
    // widgets' requests and the platform's callbacks.
    let peers_service = set["spec"]["serviceName"].as_str().unwrap();
    let headless = item(&list, "Service", Some(peers_service));
    assert_eq!(headless["spec"]["clusterIP"], "None");
    assert_eq!(headless["spec"]["publishNotReadyAddresses"], true);
    assert_eq!(&headless["spec"]["selector"], labels);
    let public = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["kind"] == "Service" && i["metadata"]["name"] != peers_service)
        .unwrap();
    assert_eq!(&public["spec"]["selector"], labels);
    assert_eq!(public["spec"]["ports"][0]["targetPort"], "http");
    // A node drain takes one pod (and its chats) at a time.
    one_pod_at_a_time(&list, set);

    let pod = Pod::new(&list, set);
    probes(&pod);
    let toml = config_text(&list, &pod);
    memory_covers_the_connection_cap(&pod, toml);
    // Each pod is named by the StatefulSet (`<name>-<ordinal>`) and serve
    // takes that as its replica name: valid for every pod and far beyond.
    let env = pod.env("ta-chat-0");
    assert!(
        env.iter()
            .any(|(k, v)| k == "TA_REPLICA_NAME" && v == "ta-chat-0"),
        "{env:?}"
    );
    let set_name = set["metadata"]["name"].as_str().unwrap();
    let replicas = set["spec"]["replicas"].as_u64().unwrap();
    assert!(replicas >= 2);
    for ordinal in [0, replicas - 1, 999_999] {
        let name = format!("{set_name}-{ordinal}");
        assert!(ReplicaName::new(&name).is_ok(), "{name}");
    }
    // A peer's address: its name under the headless Service, on the
    // container's port.
    let port = pod.container["ports"][0]["containerPort"].as_u64().unwrap();
    assert_eq!(headless["spec"]["ports"][0]["port"], port);
    assert_eq!(
        toml_value(toml, "peer-url-template"),
        format!("http://{{name}}.{peers_service}:{port}")
    );
    drop(pod);

    // The pods, each with the example's arguments, file and environment,
    // on loopback. There is no cluster DNS here: TA_PEERS plays the
    // headless Service's names (a listed peer wins over the template,
    // which serve still checks at start).
    let d = chat::chat_deployment().await;
    let addresses = chat::free_loopback_addresses(replicas as usize);
    let names: Vec<String> = (0..replicas).map(|i| format!("{set_name}-{i}")).collect();
    let dns = names
        .iter()
        .zip(&addresses)
        .map(|(name, address)| format!("{name}=http://{address}"))
        .collect::<Vec<_>>()
        .join(";");
    let mut pods = Vec::new();
    let mut served = Vec::new();
    for (name, address) in names.iter().zip(&addresses) {
        let pod = Pod::new(&list, set);
        pod.write_config_maps();
        pod.write_secret("client-secret", 1, &format!("{DEFAULT_CLIENT_SECRET}\n"));
        let mut run = pod.run_args(&address.to_string());
        run.extend(deployment_args(&d));
        // The example's tenant and the SA's callback settings are the
        // example's; the emulator's are its own (flags win over the file).
        run.extend(["--tenant".to_owned(), DEFAULT_TENANT.to_owned()]);
        run.extend(chat::callback_flags(&d));
        let mut env = pod.env(name);
        env.push(("TA_PEERS".to_owned(), dns.clone()));
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        served.push(spawn_serve_with_env(run, 1, &env).await);
        pods.push(pod);
    }
    // A page on the example's first allowed origin.
    let origin = toml_value(toml, "allowed-origins")
        .trim_matches(['[', ']', '"'])
        .split("\", \"")
        .next()
        .unwrap();
    chat::one_chat_across(&d, origin, &served, addresses).await;
    for replica in served {
        assert_eq!(replica.stop().await, Some(0));
    }
}
