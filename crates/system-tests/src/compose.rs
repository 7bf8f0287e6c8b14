//! `docker-compose.yml` as a test reads it, to run a compose service's program here with the
//! same files, flags and environment that compose gives it.
//!
//! Nothing here keeps a copy of a stack file. A container's file system is rebuilt under a
//! temporary root from the service's own `volumes:` (bind mounts are copied to
//! `<root>/<target>`, named volumes become empty folders), and the one thing that must differ
//! outside Docker, where the other containers are, is changed by a [`HostMap`]: every
//! `compose-host:port` becomes the `127.0.0.1:port` where the test runs that component.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use serde_json::Value;

/// The repository root (where `docker-compose.yml` is).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the repository root exists")
}

/// A YAML file of the repository, as JSON values.
pub fn repo_yaml(path: &str) -> Value {
    let full = repo_root().join(path);
    let text = std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()));
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The parsed compose file.
pub struct Compose {
    doc: Value,
}

/// One `volumes:` entry of a service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Volume {
    /// `./path:/target[:ro]`: a file or folder of the repository.
    Bind {
        /// Absolute path in the repository.
        source: PathBuf,
        /// Path inside the container.
        target: String,
    },
    /// `name:/target`: a named volume, empty at first start.
    Named {
        /// Path inside the container.
        target: String,
    },
}

impl Volume {
    /// Path inside the container.
    pub fn target(&self) -> &str {
        match self {
            Self::Bind { target, .. } | Self::Named { target } => target,
        }
    }
}

impl Compose {
    /// Reads the repository's `docker-compose.yml`.
    pub fn load() -> Self {
        Self {
            doc: repo_yaml("docker-compose.yml"),
        }
    }

    /// The definition of service `name` (panics if there is none).
    pub fn service(&self, name: &str) -> &Value {
        let service = &self.doc["services"][name];
        assert!(
            service.is_object(),
            "docker-compose.yml has no service {name}"
        );
        service
    }

    /// The service's `environment:` (map form), in file order.
    pub fn environment(&self, name: &str) -> Vec<(String, String)> {
        self.service(name)["environment"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, v)| {
                let value = match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                (k.clone(), value)
            })
            .collect()
    }

    /// The service's `command:` (list form).
    pub fn command(&self, name: &str) -> Vec<String> {
        self.service(name)["command"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|a| a.as_str().expect("command words are strings").to_owned())
            .collect()
    }

    /// The service's `volumes:` (short syntax).
    pub fn volumes(&self, name: &str) -> Vec<Volume> {
        self.service(name)["volumes"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|v| {
                let spec = v.as_str().expect("volumes use the short syntax");
                let mut parts = spec.split(':');
                let source = parts.next().expect("a source");
                let target = parts
                    .next()
                    .unwrap_or_else(|| panic!("{name}: volume {spec} has no target"))
                    .to_owned();
                if source.starts_with("./") || source.starts_with('/') {
                    Volume::Bind {
                        source: repo_root().join(source),
                        target,
                    }
                } else {
                    Volume::Named { target }
                }
            })
            .collect()
    }

    /// Rebuilds service `name`'s container file system under `root`: each bind mount copied
    /// to `root/<target>`, each named volume an empty folder. In the copied text, every
    /// `host:port` is rewritten by `hosts`, and every absolute path inside a mount target
    /// points at its copy, so the program reads what it would read in its container. Returns
    /// `root/<target>` for every volume.
    pub fn materialise(
        &self,
        name: &str,
        root: &Path,
        hosts: &HostMap,
    ) -> BTreeMap<String, PathBuf> {
        let volumes = self.volumes(name);
        let placed: BTreeMap<String, PathBuf> = volumes
            .iter()
            .map(|v| {
                let target = v.target().to_owned();
                let at = root.join(target.trim_start_matches('/'));
                (target, at)
            })
            .collect();
        let rewrite = |text: &str| container_paths(&hosts.rewrite(text), &placed);
        for volume in &volumes {
            let at = &placed[volume.target()];
            match volume {
                Volume::Bind { source, .. } => copy_rewritten(source, at, &rewrite),
                Volume::Named { .. } => {
                    std::fs::create_dir_all(at).expect("create a named volume's folder")
                }
            }
        }
        placed
    }
}

/// `text` with each absolute path under a mount target moved to where the target was placed.
/// A match must be a whole path component: `/prometheus` does not match inside
/// `/etc/prometheus` or `http://prometheus:9090`.
pub fn container_paths(text: &str, placed: &BTreeMap<String, PathBuf>) -> String {
    let path_char = |c: char| c.is_ascii_alphanumeric() || "/._-".contains(c);
    let mut targets: Vec<(&String, &PathBuf)> = placed.iter().collect();
    // Longest first, so /etc/prometheus/rules wins over /etc/prometheus.
    targets.sort_by_key(|(t, _)| std::cmp::Reverse(t.len()));
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    'scan: while i < text.len() {
        let rest = &text[i..];
        let starts_path =
            rest.starts_with('/') && text[..i].chars().next_back().is_none_or(|c| !path_char(c));
        if starts_path {
            for (target, at) in &targets {
                let target = target.trim_end_matches('/');
                if let Some(after) = rest.strip_prefix(target)
                    && after
                        .chars()
                        .next()
                        .is_none_or(|c| c == '/' || !path_char(c))
                {
                    out.push_str(&at.display().to_string());
                    i += target.len();
                    continue 'scan;
                }
            }
        }
        let c = rest.chars().next().expect("not at the end");
        out.push(c);
        i += c.len_utf8();
    }
    out
}

fn copy_rewritten(source: &Path, to: &Path, rewrite: &dyn Fn(&str) -> String) {
    if source.is_dir() {
        std::fs::create_dir_all(to).expect("create folder");
        for entry in std::fs::read_dir(source).expect("read mounted folder") {
            let entry = entry.expect("folder entry");
            copy_rewritten(&entry.path(), &to.join(entry.file_name()), rewrite);
        }
    } else {
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent).expect("create folder");
        }
        let text =
            std::fs::read_to_string(source).unwrap_or_else(|e| panic!("{}: {e}", source.display()));
        std::fs::write(to, rewrite(&text)).expect("write the mounted file");
    }
}

/// Where each compose `host:port` is reached from the test: the only change made to a file or
/// a variable of the stack before its program runs here.
#[derive(Debug, Clone, Default)]
pub struct HostMap {
    pairs: Vec<(String, String)>,
}

impl HostMap {
    /// An empty map.
    pub fn new() -> Self {
        Self::default()
    }

    /// `host:port` (as the stack's files write it) is reached at `to` (`127.0.0.1:port`),
    /// instead of wherever it was mapped before.
    pub fn with(mut self, from: &str, to: impl Into<String>) -> Self {
        self.pairs.retain(|(f, _)| f != from);
        self.pairs.push((from.to_owned(), to.into()));
        self
    }

    /// `text` with every mapped `host:port` replaced. A match must end the address (the next
    /// character is not a digit), so `tempo:3200` never rewrites `tempo:32001`.
    pub fn rewrite(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for (from, to) in &self.pairs {
            let mut result = String::with_capacity(out.len());
            let mut rest = out.as_str();
            while let Some(at) = rest.find(from.as_str()) {
                let after = &rest[at + from.len()..];
                let before_ok = rest[..at]
                    .chars()
                    .next_back()
                    .is_none_or(|c| !(c.is_ascii_alphanumeric() || c == '-' || c == '.'));
                let after_ok = !after.starts_with(|c: char| c.is_ascii_digit());
                result.push_str(&rest[..at]);
                result.push_str(if before_ok && after_ok { to } else { from });
                rest = after;
            }
            result.push_str(rest);
            out = result;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_paths_move_whole_components_only() {
        let placed = BTreeMap::from([
            (
                "/etc/prometheus".to_owned(),
                PathBuf::from("/tmp/r/etc/prometheus"),
            ),
            ("/prometheus".to_owned(), PathBuf::from("/tmp/r/prometheus")),
        ]);
        assert_eq!(
            container_paths(
                "- /etc/prometheus/rules/*.yml\n--storage.tsdb.path=/prometheus url: http://prometheus:9090/x /prometheusx",
                &placed
            ),
            "- /tmp/r/etc/prometheus/rules/*.yml\n--storage.tsdb.path=/tmp/r/prometheus url: http://prometheus:9090/x /prometheusx"
        );
    }

    #[test]
    fn host_map_rewrites_whole_addresses_only() {
        let hosts = HostMap::new()
            .with("tempo:3200", "127.0.0.1:1")
            .with("order-service:8001", "127.0.0.1:2");
        assert_eq!(
            hosts.rewrite(
                "url: http://tempo:3200/x, tempo:32001, xtempo:3200, [\"order-service:8001\"]"
            ),
            "url: http://127.0.0.1:1/x, tempo:32001, xtempo:3200, [\"127.0.0.1:2\"]"
        );
    }
}
