//! A pod of a Kubernetes example (`deploy/kubernetes/`, the manifests in
//! Kubernetes' JSON form), run on this machine: its mounts are directories
//! here, filled the way the kubelet fills them, and its container's
//! arguments and environment are taken as written with the paths moved.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    dead_code,
    unreachable_pub,
    missing_docs
)]

use std::path::{Path, PathBuf};

use serde_json::Value;

/// The manifests of `deploy/kubernetes/<file>`.
pub fn manifests(file: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../deploy/kubernetes")
        .join(file);
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The item of `list` of this kind and name (any name when `None`).
pub fn item<'a>(list: &'a Value, kind: &str, name: Option<&str>) -> &'a Value {
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["kind"] == kind && name.is_none_or(|n| i["metadata"]["name"] == n))
        .unwrap_or_else(|| panic!("no {kind} {name:?}"))
}

/// The value after the flag `name` in `args`.
pub fn flag<'a>(args: &'a [String], name: &str) -> &'a str {
    let at = args
        .iter()
        .position(|a| a == name)
        .unwrap_or_else(|| panic!("no {name}"));
    &args[at + 1]
}

/// The value of `key = "…"` in a TOML text.
pub fn toml_value<'a>(toml: &'a str, key: &str) -> &'a str {
    toml.lines()
        .find_map(|l| l.strip_prefix(&format!("{key} = ")))
        .unwrap_or_else(|| panic!("no {key}"))
        .trim_matches('"')
}

/// Writes `files` into `dir` the way the kubelet fills a Secret or
/// ConfigMap volume: in a timestamped directory, `..data` a symlink to it,
/// each file a symlink through `..data`; a second call swaps `..data`
/// atomically.
pub fn kubelet_write(dir: &Path, generation: u32, files: &[(&str, &str)]) {
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

/// A mount of the pod: its path in the pod, its directory here, its volume.
struct Mount {
    pod: String,
    here: PathBuf,
    volume: String,
}

/// One pod of a pod template, here. Its directories go when it is dropped.
pub struct Pod<'a> {
    list: &'a Value,
    pub spec: &'a Value,
    pub container: &'a Value,
    pub args: Vec<String>,
    mounts: Vec<Mount>,
    root: PathBuf,
}

impl<'a> Pod<'a> {
    /// The pod of `workload`'s template (a Deployment or a StatefulSet of
    /// `list`), its first container, its mounts made here (empty).
    pub fn new(list: &'a Value, workload: &'a Value) -> Self {
        let spec = &workload["spec"]["template"]["spec"];
        let container = &spec["containers"][0];
        let args = container["args"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap().to_owned())
            .collect();
        let root = std::env::temp_dir().join(format!("ta-deploy-{}", uuid::Uuid::new_v4()));
        let mounts: Vec<Mount> = container["volumeMounts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                let volume = m["name"].as_str().unwrap().to_owned();
                Mount {
                    pod: m["mountPath"].as_str().unwrap().to_owned(),
                    here: root.join(&volume),
                    volume,
                }
            })
            .collect();
        for mount in &mounts {
            std::fs::create_dir_all(&mount.here).unwrap();
        }
        Self {
            list,
            spec,
            container,
            args,
            mounts,
            root,
        }
    }

    /// Where a path of the pod is here (it must be on a mount).
    pub fn here(&self, pod_path: &str) -> PathBuf {
        let mount = self
            .mounts
            .iter()
            .find(|m| pod_path.starts_with(&format!("{}/", m.pod)))
            .unwrap_or_else(|| panic!("{pod_path} is on no mount"));
        PathBuf::from(format!(
            "{}{}",
            mount.here.display(),
            &pod_path[mount.pod.len()..]
        ))
    }

    /// The pod's volume `name`.
    pub fn volume(&self, name: &str) -> &'a Value {
        self.spec["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"] == name)
            .unwrap_or_else(|| panic!("no volume {name}"))
    }

    fn mount_of(&self, volume: &str) -> &Mount {
        self.mounts
            .iter()
            .find(|m| m.volume == volume)
            .unwrap_or_else(|| panic!("volume {volume} is not mounted"))
    }

    /// Fills every mounted ConfigMap volume with its ConfigMap's files, the
    /// pod's paths in them moved here.
    pub fn write_config_maps(&self) {
        for mount in &self.mounts {
            let Some(name) = self.volume(&mount.volume)["configMap"]["name"].as_str() else {
                continue;
            };
            let data = item(self.list, "ConfigMap", Some(name))["data"]
                .as_object()
                .unwrap();
            let files: Vec<(String, String)> = data
                .iter()
                .map(|(file, text)| (file.clone(), self.moved(text.as_str().unwrap())))
                .collect();
            let files: Vec<(&str, &str)> = files
                .iter()
                .map(|(f, t)| (f.as_str(), t.as_str()))
                .collect();
            kubelet_write(&mount.here, 1, &files);
        }
    }

    /// The Secret volume `volume`'s first item, written (again) with
    /// `text`, as the kubelet's `generation`-th sync; its path in the pod.
    pub fn write_secret(&self, volume: &str, generation: u32, text: &str) -> String {
        let item = self.volume(volume)["secret"]["items"][0]["path"]
            .as_str()
            .unwrap();
        let mount = self.mount_of(volume);
        kubelet_write(&mount.here, generation, &[(item, text)]);
        format!("{}/{item}", mount.pod)
    }

    /// `text` with the pod's mount paths moved here.
    fn moved(&self, text: &str) -> String {
        self.mounts.iter().fold(text.to_owned(), |text, m| {
            text.replace(&format!("{}/", m.pod), &format!("{}/", m.here.display()))
        })
    }

    /// The container's arguments as written, the paths moved here and
    /// `--listen` on `listen`.
    pub fn run_args(&self, listen: &str) -> Vec<String> {
        let mut run: Vec<String> = self
            .args
            .iter()
            .map(|a| {
                if a.starts_with('/') {
                    self.here(a).display().to_string()
                } else {
                    a.clone()
                }
            })
            .collect();
        let at = run.iter().position(|a| a == "--listen").unwrap();
        run[at + 1] = listen.to_owned();
        run
    }

    /// The container's environment as the kubelet sets it for the pod
    /// named `pod_name` (values, and the pod's name from a field).
    pub fn env(&self, pod_name: &str) -> Vec<(String, String)> {
        self.container["env"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                let name = e["name"].as_str().unwrap().to_owned();
                let value = match (
                    e["value"].as_str(),
                    &e["valueFrom"]["fieldRef"]["fieldPath"],
                ) {
                    (Some(value), _) => value.to_owned(),
                    (None, path) if path == "metadata.name" => pod_name.to_owned(),
                    (None, other) => {
                        panic!("{name}: an environment source this test does not play: {other}")
                    }
                };
                (name, value)
            })
            .collect()
    }
}

impl Drop for Pod<'_> {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}
