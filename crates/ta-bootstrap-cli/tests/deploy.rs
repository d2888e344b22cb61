//! The Kubernetes example (`deploy/kubernetes/ta-bootstrap.json`, the
//! manifests in Kubernetes' JSON form) held to the binary: its container's
//! arguments are run as they are (mounts and the listen address moved to
//! this machine), its probe paths answer on the port it names, and its
//! mounted Secret rotates the way Kubernetes swaps one (the `..data`
//! symlink) and `--watch-config` picks it up.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use ta_emulator::{DEFAULT_CLIENT_SECRET, DEFAULT_TENANT, EmulatorConfig};
use ta_protocol::Transport as _;

#[path = "common/bin.rs"]
mod bin;
use bin::*;

fn manifests() -> Value {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/kubernetes/ta-bootstrap.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn item<'a>(list: &'a Value, kind: &str) -> &'a Value {
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind}"))
}

/// The value after `flag` in `args`.
fn flag<'a>(args: &'a [String], name: &str) -> &'a str {
    let at = args
        .iter()
        .position(|a| a == name)
        .unwrap_or_else(|| panic!("no {name}"));
    &args[at + 1]
}

/// A mount of the pod, as a directory here.
struct Mount {
    pod: String,
    here: PathBuf,
}

/// Writes `files` into `dir` the way the kubelet fills a Secret or
/// ConfigMap volume: in a timestamped directory, `..data` a symlink to it,
/// each file a symlink through `..data`; a second call swaps `..data`
/// atomically.
fn kubelet_write(dir: &Path, generation: u32, files: &[(&str, &str)]) {
    let data = dir.join(format!("..2026_12_02_{generation}"));
    std::fs::create_dir_all(&data).unwrap();
    for (name, text) in files {
        std::fs::write(data.join(name), text).unwrap();
        let link = dir.join(name);
        if link.symlink_metadata().is_err() {
            std::os::unix::fs::symlink(Path::new("..data").join(name), &link).unwrap();
        }
    }
    let tmp = dir.join("..data_tmp");
    std::os::unix::fs::symlink(data.file_name().unwrap(), &tmp).unwrap();
    std::fs::rename(&tmp, dir.join("..data")).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kubernetes_example_runs_as_written_and_rotates_its_secret() {
    let list = manifests();
    let manifest = item(&list, "Deployment");
    let pod = &manifest["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    let args: Vec<String> = container["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(args[0], "serve");
    assert!(args.iter().any(|a| a == "--watch-config"), "{args:?}");
    // The probes' port is the container's, and the one serve listens on.
    let port = &container["ports"][0];
    assert_eq!(port["name"], "http");
    let listen: std::net::SocketAddr = flag(&args, "--listen").parse().unwrap();
    assert_eq!(port["containerPort"], u64::from(listen.port()));
    let mut probe_paths = Vec::new();
    for probe in ["startupProbe", "livenessProbe", "readinessProbe"] {
        let get = &container[probe]["httpGet"];
        assert_eq!(get["port"], "http", "{probe}");
        probe_paths.push((probe, get["path"].as_str().unwrap().to_owned()));
    }
    assert_eq!(probe_paths[2].1, "/readyz");
    // The Service sends to that port.
    assert_eq!(
        item(&list, "Service")["spec"]["ports"][0]["targetPort"],
        "http"
    );
    // A memory limit above what serve was measured to use (13.7 MiB at
    // most over the 10-minute soak, docs/operations.md).
    let limit = container["resources"]["limits"]["memory"].as_str().unwrap();
    let mib: u64 = limit.strip_suffix("Mi").unwrap().parse().unwrap();
    assert!(mib >= 64, "{limit}");

    // The pod's mounts, here.
    let root = std::env::temp_dir().join(format!("ta-deploy-{}", uuid::Uuid::new_v4()));
    let mounts: Vec<Mount> = container["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| Mount {
            pod: m["mountPath"].as_str().unwrap().to_owned(),
            here: root.join(m["name"].as_str().unwrap()),
        })
        .collect();
    let here = |pod_path: &str| -> String {
        let mount = mounts
            .iter()
            .find(|m| pod_path.starts_with(&format!("{}/", m.pod)))
            .unwrap_or_else(|| panic!("{pod_path} is on no mount"));
        format!("{}{}", mount.here.display(), &pod_path[mount.pod.len()..])
    };
    for mount in &mounts {
        std::fs::create_dir_all(&mount.here).unwrap();
    }
    let volume = |name: &str| {
        pod["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"] == name)
            .unwrap()
            .clone()
    };
    // The ConfigMap's file, where the config volume mounts it, with the
    // Secret's path moved here too.
    assert_eq!(volume("config")["configMap"]["name"], "ta-bootstrap");
    let config_map = item(&list, "ConfigMap");
    let config_path = flag(&args, "--config").to_owned();
    let file_name = Path::new(&config_path)
        .file_name()
        .unwrap()
        .to_str()
        .unwrap();
    let toml = config_map["data"][file_name].as_str().unwrap();
    let secret_pod_path = toml
        .lines()
        .find_map(|l| l.strip_prefix("client-secret-file = "))
        .unwrap()
        .trim_matches('"')
        .to_owned();
    let secret_volume = volume("client-secret");
    let secret_item = secret_volume["secret"]["items"][0]["path"]
        .as_str()
        .unwrap();
    assert!(
        secret_pod_path.ends_with(&format!("/{secret_item}")),
        "{secret_pod_path}"
    );
    let config_dir = PathBuf::from(here(&config_path));
    kubelet_write(
        config_dir.parent().unwrap(),
        1,
        &[(
            file_name,
            &toml.replace(&secret_pod_path, &here(&secret_pod_path)),
        )],
    );
    let secret_dir = PathBuf::from(here(&secret_pod_path));
    let secret_dir = secret_dir.parent().unwrap();
    // First a secret AAD refuses; then the rotation.
    kubelet_write(secret_dir, 1, &[(secret_item, "not-the-secret\n")]);

    // The container's arguments as written, the mounts moved here, the
    // listen address on loopback, and the deployment pointed at an emulator
    // (flags win over the file).
    let d = deployment(EmulatorConfig::default()).await;
    let mut run: Vec<String> = args
        .iter()
        .map(|a| {
            if a.starts_with('/') {
                here(a)
            } else {
                a.clone()
            }
        })
        .collect();
    let at = run.iter().position(|a| a == "--listen").unwrap();
    run[at + 1] = "127.0.0.1:0".to_owned();
    run.extend(deployment_args(&d));
    // The file's tenant is the example's; the emulator's is its own.
    run.extend(["--tenant".to_owned(), DEFAULT_TENANT.to_owned()]);
    let served = spawn_serve_with(run, 0).await;
    let client = ta_hyper::HyperTransport::builder().build().unwrap();
    let get = |path: String| {
        let client = &client;
        let url = format!("{}{path}", served.base());
        async move {
            let request = http::Request::get(url).body(bytes::Bytes::new()).unwrap();
            client.send(request).await.unwrap()
        }
    };
    assert_eq!(get(probe_paths[0].1.clone()).await.status(), 200);
    assert_eq!(get(probe_paths[1].1.clone()).await.status(), 200);
    let readiness = probe_paths[2].1.clone();
    let mut refused = false;
    for _ in 0..100 {
        let answer = get(readiness.clone()).await;
        if answer.status() == 503
            && String::from_utf8_lossy(answer.body()).contains("upstream_authentication")
        {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(refused, "the wrong secret was not refused");
    // Kubernetes rotates the Secret: --watch-config reloads, serve is ready.
    kubelet_write(
        secret_dir,
        2,
        &[(secret_item, &format!("{DEFAULT_CLIENT_SECRET}\n"))],
    );
    let mut ready = false;
    for _ in 0..150 {
        if get(readiness.clone()).await.status() == 200 {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ready, "the rotated secret was not picked up");
    served
        .wait_for_log("a configuration file changed: reloading")
        .await;
    served.stop().await;
    let _ = std::fs::remove_dir_all(&root);
}
