//! `callback-guard check`: every callback-guard plugin configuration in the files given,
//! judged offline by the filter's own parser, with the messages the filter logs in Envoy.
//!
//! A file is a plugin configuration (JSON or YAML, `routes` at the top), or anything Envoy
//! or Istio reads that holds one: a bootstrap, LDS or ECDS resources, an `EnvoyFilter` (each
//! `envoy.extensions.filters.http.wasm.v3.Wasm` whose `root_id` is the filter's), a
//! `WasmPlugin` (by its `pluginName`), or an Envoy Gateway `EnvoyExtensionPolicy` (each
//! `spec.wasm` by its `rootID`). Where the file says which environment variables
//! reach the VM (`host_env_keys`, `key_values`, a `WasmPlugin`'s `vmConfig.env`), a key
//! naming another is refused as the filter refuses it. A listed variable's value is taken
//! from `--env NAME=VALUE`, else from this process's environment, else an example of the
//! form the route's scheme takes: its format is then not checked, and the report says so.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;
use std::path::Path;

use callback_guard::config;
use callback_guard::providers::entry::Entry;
use callback_guard::providers::registry::{self, KeyField};
use callback_guard::sealed;
use serde::Deserialize;
use serde_json::Value;

use crate::cli::CheckArgs;

const WASM: &str = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm";

/// One plugin configuration found, and what reaches its VM.
#[derive(Debug)]
struct Plugin {
    /// Where in the document, as a path of its keys.
    place: String,
    configuration: String,
    /// The variables passed from the host (`None`: the file does not say), and those set
    /// in the configuration itself.
    host_env: Option<BTreeSet<String>>,
    inline_env: BTreeMap<String, String>,
    /// Whether Envoy holds the headers for the verdict (`None`: not Envoy's to say here).
    holds_headers: Option<bool>,
    /// Where the file lets requests through unverified when the plugin fails: the field
    /// and its value (`failure_policy: FAIL_OPEN`, …).
    fails_open: Option<String>,
}

/// A document's plugins, and the clusters it declares statically (`None`: it may get
/// others from CDS, or declares none).
struct Document {
    plugins: Vec<Plugin>,
    clusters: Option<BTreeSet<String>>,
}

/// Checks every file; `Ok(true)` when each holds at least one plugin configuration and all
/// are valid. The report goes to stdout, one line per finding.
pub fn run(args: &CheckArgs) -> Result<bool, String> {
    let given: BTreeMap<String, String> = args
        .env
        .iter()
        .map(|pair| {
            pair.split_once('=')
                .map(|(name, value)| (name.to_string(), value.to_string()))
                .ok_or_else(|| format!("--env {pair:?} is not NAME=VALUE"))
        })
        .collect::<Result<_, _>>()?;
    let mut all_valid = true;
    for file in &args.files {
        let (valid, report) = check_file(file, &args.root_id, &given)?;
        print!("{report}");
        all_valid &= valid;
    }
    Ok(all_valid)
}

fn check_file(
    file: &Path,
    root_id: &str,
    given: &BTreeMap<String, String>,
) -> Result<(bool, String), String> {
    let name = file.display();
    let text = std::fs::read_to_string(file).map_err(|e| format!("{name}: {e}"))?;
    let mut documents = Vec::new();
    for document in serde_yaml::Deserializer::from_str(&text) {
        let mut yaml = serde_yaml::Value::deserialize(document)
            .map_err(|e| format!("{name}: not YAML or JSON: {e}"))?;
        yaml.apply_merge()
            .map_err(|e| format!("{name}: not YAML or JSON: {e}"))?;
        let json: Value =
            serde_json::to_value(yaml).map_err(|e| format!("{name}: not YAML or JSON: {e}"))?;
        documents.push(json);
    }
    let mut report = String::new();
    let mut valid = true;
    let mut found = 0;
    for (index, json) in documents.iter().enumerate() {
        let document = read_document(json, root_id);
        for plugin in &document.plugins {
            found += 1;
            let at = match documents.len() {
                1 => plugin.place.clone(),
                _ => format!("document {}: {}", index + 1, plugin.place),
            };
            let (ok, lines) = check_plugin(plugin, document.clusters.as_ref(), given);
            valid &= ok;
            for line in lines {
                let _ = writeln!(report, "{name}: {at}: {line}");
            }
        }
    }
    if found == 0 {
        let _ = writeln!(
            report,
            "{name}: no callback-guard plugin configuration (root_id {root_id:?})"
        );
        valid = false;
    }
    Ok((valid, report))
}

/// The plugins of one document, wherever they sit in it.
fn read_document(json: &Value, root_id: &str) -> Document {
    let mut plugins = Vec::new();
    if json.get("routes").is_some() && json.get("kind").is_none() {
        plugins.push(Plugin {
            place: "plugin configuration".to_string(),
            configuration: json.to_string(),
            host_env: None,
            inline_env: BTreeMap::new(),
            holds_headers: None,
            fails_open: None,
        });
    } else {
        walk(json, String::new(), root_id, &mut plugins);
    }
    let statics = json
        .pointer("/static_resources/clusters")
        .and_then(Value::as_array);
    let dynamic = json.pointer("/dynamic_resources/cds_config").is_some();
    let clusters = match (statics, dynamic) {
        (Some(clusters), false) => Some(
            clusters
                .iter()
                .filter_map(|c| c.get("name")?.as_str().map(str::to_string))
                .collect(),
        ),
        _ => None,
    };
    Document { plugins, clusters }
}

fn walk(value: &Value, place: String, root_id: &str, plugins: &mut Vec<Plugin>) {
    match value {
        Value::Object(object) => {
            if let Some(plugin) = wasm_filter(value, &place, root_id) {
                plugins.push(plugin);
                return;
            }
            if let Some(plugin) = wasm_plugin(value, &place, root_id) {
                plugins.push(plugin);
                return;
            }
            if value.get("kind").and_then(Value::as_str) == Some("EnvoyExtensionPolicy") {
                plugins.extend(extension_policy(value, root_id));
                return;
            }
            for (key, child) in object {
                let at = if place.is_empty() {
                    key.clone()
                } else {
                    format!("{place}.{key}")
                };
                walk(child, at, root_id, plugins);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                walk(child, format!("{place}[{i}]"), root_id, plugins);
            }
        }
        _ => {}
    }
}

/// Envoy's Wasm HTTP filter running the plugin (`typed_config` of a filter, an
/// `EnvoyFilter` patch or an ECDS resource).
fn wasm_filter(value: &Value, place: &str, root_id: &str) -> Option<Plugin> {
    if value.get("@type")?.as_str()? != WASM {
        return None;
    }
    let config = value.get("config")?;
    if config.get("root_id").and_then(Value::as_str) != Some(root_id) {
        return None;
    }
    let configuration = config
        .pointer("/configuration/value")
        .and_then(Value::as_str);
    let env = config.pointer("/vm_config/environment_variables");
    let names = |field: &str| -> Vec<String> {
        env.and_then(|env| env.get(field)?.as_array().cloned())
            .unwrap_or_default()
            .iter()
            .filter_map(|name| name.as_str().map(str::to_string))
            .collect()
    };
    let inline_env = env
        .and_then(|env| env.get("key_values")?.as_object().cloned())
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(name, value)| Some((name, value.as_str()?.to_string())))
        .collect();
    Some(Plugin {
        place: place.to_string(),
        configuration: configuration.unwrap_or_default().to_string(),
        host_env: Some(names("host_env_keys").into_iter().collect()),
        inline_env,
        holds_headers: Some(
            config
                .get("allow_on_headers_stop_iteration")
                .and_then(Value::as_bool)
                .unwrap_or(false),
        ),
        fails_open: if config.get("failure_policy").and_then(Value::as_str) == Some("FAIL_OPEN") {
            Some("failure_policy: FAIL_OPEN".into())
        } else if config.get("fail_open").and_then(Value::as_bool) == Some(true) {
            Some("fail_open: true".into())
        } else {
            None
        },
    })
}

/// Istio's `WasmPlugin` of the plugin: its `pluginConfig`, and `vmConfig.env` (`HOST`: from
/// the gateway's environment; else the value given). Istio cannot make Envoy hold headers.
fn wasm_plugin(value: &Value, place: &str, root_id: &str) -> Option<Plugin> {
    if value.get("kind")?.as_str()? != "WasmPlugin" {
        return None;
    }
    let spec = value.get("spec")?;
    if spec.get("pluginName").and_then(Value::as_str) != Some(root_id) {
        return None;
    }
    let mut host_env = BTreeSet::new();
    let mut inline_env = BTreeMap::new();
    for env in spec
        .pointer("/vmConfig/env")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let Some(name) = env.get("name").and_then(Value::as_str) else {
            continue;
        };
        match env.get("valueFrom").and_then(Value::as_str) {
            Some("HOST") => {
                host_env.insert(name.to_string());
            }
            _ => {
                let value = env.get("value").and_then(Value::as_str).unwrap_or_default();
                inline_env.insert(name.to_string(), value.to_string());
            }
        }
    }
    let name = value
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("?");
    let at = if place.is_empty() {
        String::new()
    } else {
        format!(" at {place}")
    };
    Some(Plugin {
        place: format!("WasmPlugin {name}{at}"),
        configuration: spec
            .get("pluginConfig")
            .map(Value::to_string)
            .unwrap_or_default(),
        host_env: Some(host_env),
        inline_env,
        holds_headers: Some(false),
        fails_open: (spec.get("failStrategy").and_then(Value::as_str) == Some("FAIL_OPEN"))
            .then(|| "failStrategy: FAIL_OPEN".into()),
    })
}

/// Envoy Gateway's `EnvoyExtensionPolicy`: each of its `spec.wasm` with the plugin's
/// `rootID`, its `config` and `env.hostKeys`. Envoy Gateway cannot make Envoy hold headers.
fn extension_policy(value: &Value, root_id: &str) -> Vec<Plugin> {
    let name = value
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("?");
    let extensions = value.pointer("/spec/wasm").and_then(Value::as_array);
    let ours = extensions
        .into_iter()
        .flatten()
        .enumerate()
        .filter(|(_, wasm)| wasm.get("rootID").and_then(Value::as_str) == Some(root_id));
    ours.map(|(i, wasm)| Plugin {
        place: format!("EnvoyExtensionPolicy {name} wasm[{i}]"),
        configuration: wasm.get("config").map(Value::to_string).unwrap_or_default(),
        host_env: Some(
            wasm.pointer("/env/hostKeys")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|key| key.as_str().map(str::to_string))
                .collect(),
        ),
        inline_env: BTreeMap::new(),
        holds_headers: Some(false),
        fails_open: (wasm.get("failOpen").and_then(Value::as_bool) == Some(true))
            .then(|| "failOpen: true".into()),
    })
    .collect()
}

/// The plugin's verdict, as lines: the filter's own error, or what it would protect, and
/// what the check could not see.
fn check_plugin(
    plugin: &Plugin,
    clusters: Option<&BTreeSet<String>>,
    given: &BTreeMap<String, String>,
) -> (bool, Vec<String>) {
    let examples = example_keys(&plugin.configuration);
    let unchecked = std::cell::RefCell::new(BTreeSet::new());
    let lookup = |name: &str| -> Option<String> {
        if let Some(value) = plugin.inline_env.get(name) {
            return Some(value.clone());
        }
        if plugin
            .host_env
            .as_ref()
            .is_some_and(|env| !env.contains(name))
        {
            return None;
        }
        given
            .get(name)
            .cloned()
            .or_else(|| std::env::var(name).ok())
            .or_else(|| {
                unchecked.borrow_mut().insert(name.to_string());
                examples.get(name).cloned()
            })
    };
    // Without the sealing key, the sealed keys' texts are unknown: checked by their form.
    let sealing = serde_json::from_str::<Value>(&plugin.configuration)
        .ok()
        .and_then(|json| Some(json.pointer("/sealing_key/env")?.as_str()?.to_string()));
    let configuration = match &sealing {
        Some(name) if lookup(name).is_some() && unchecked.borrow().contains(name) => {
            with_sealed_as_examples(&plugin.configuration)
        }
        _ => plugin.configuration.clone(),
    };
    let policy = match config::parse(configuration.as_bytes(), &lookup) {
        Ok(policy) => policy,
        Err(problem) => return (false, vec![format!("invalid configuration: {problem}")]),
    };
    let mut lines: Vec<String> = policy
        .warnings
        .iter()
        .map(|warning| format!("configuration: {warning}"))
        .collect();
    let mut valid = true;
    if let Some(field) = &plugin.fails_open {
        valid = false;
        lines.push(format!(
            "invalid configuration: {field}: a plugin that fails lets every request through unverified (use FAIL_RELOAD or FAIL_CLOSED)"
        ));
    }
    if let Some(name) = sealing
        .as_ref()
        .filter(|name| plugin.inline_env.contains_key(*name))
    {
        valid = false;
        lines.push(format!(
            "invalid configuration: sealing_key.env: {name} is written in this file, which /config_dump shows, and with it every sealed key opens: pass it from the host (host_env_keys, valueFrom: HOST)"
        ));
    }
    if plugin.holds_headers == Some(false) && policy.hold_headers {
        valid = false;
        lines.push(
            "invalid configuration: allow_on_headers_stop_iteration: the plugin is told Envoy holds a callback's headers (true, the default), but this Wasm filter does not set allow_on_headers_stop_iteration: set both, or false in the plugin (Istio's WasmPlugin cannot set it)".to_string(),
        );
    }
    if let Some(clusters) = clusters {
        for (field, cluster) in named_clusters(&plugin.configuration) {
            if !clusters.contains(&cluster) {
                valid = false;
                lines.push(format!(
                    "invalid configuration: {field}: cluster {cluster:?} is not in static_resources.clusters"
                ));
            }
        }
    }
    if valid {
        let routes: Vec<String> = policy
            .routes
            .iter()
            .map(|r| format!("{}={}", r.name, r.path_prefix.as_str()))
            .collect();
        lines.push(format!("ok: protecting {}", routes.join(", ")));
    }
    if plugin.host_env.is_none() {
        lines.push(
            "note: the file does not say which environment variables reach the VM: each key's env was taken as set".to_string(),
        );
    }
    let unchecked = unchecked.into_inner();
    if !unchecked.is_empty() {
        let names: Vec<&str> = unchecked.iter().map(String::as_str).collect();
        lines.push(format!(
            "note: not set here, so checked with an example of its form, not its value: {} (give --env NAME=VALUE to check one)",
            names.join(", ")
        ));
        if sealing.is_some_and(|name| unchecked.contains(&name)) {
            lines.push(
                "note: without the sealing key, each sealed key was checked as written, not opened"
                    .to_string(),
            );
        }
    }
    (valid, lines)
}

/// Each key a route configures (`keys`, `parent_keys`, `public_keys`, `verify_token`),
/// with its route's scheme and the form its text takes there.
fn each_key(json: &mut Value, mut visit: impl FnMut(&'static Entry, KeyField, &mut Value)) {
    let routes = json.get_mut("routes").and_then(Value::as_array_mut);
    for route in routes.into_iter().flatten() {
        let scheme = route
            .get("scheme")
            .and_then(Value::as_str)
            .unwrap_or("vobiz_voice");
        let Some(entry) = registry::find(scheme) else {
            continue;
        };
        let fields = [
            ("keys", KeyField::Keys),
            ("parent_keys", KeyField::Keys),
            ("public_keys", KeyField::PublicKeys),
        ];
        for (field, kind) in fields {
            let keys = route.get_mut(field).and_then(Value::as_array_mut);
            for key in keys.into_iter().flatten() {
                visit(entry, kind, key);
            }
        }
        if let Some(token) = route.get_mut("verify_token") {
            visit(entry, KeyField::VerifyToken, token);
        }
    }
}

/// For each environment variable a route's keys name, an example of the form the route's
/// scheme takes there; for the sealing key, an example sealing key.
fn example_keys(configuration: &str) -> BTreeMap<String, String> {
    let mut examples = BTreeMap::new();
    let Ok(mut json) = serde_json::from_str::<Value>(configuration) else {
        return examples;
    };
    if let Some(name) = json.pointer("/sealing_key/env").and_then(Value::as_str) {
        examples.insert(name.to_string(), EXAMPLE_SEALING_KEY.to_string());
    }
    each_key(&mut json, |entry, kind, key| {
        if let Some(name) = key.get("env").and_then(Value::as_str) {
            let n = examples.len();
            examples
                .entry(name.to_string())
                .or_insert_with(|| registry::example_key(entry, kind, n));
        }
    });
    examples
}

/// Stands in for a sealing key the check was not given.
const EXAMPLE_SEALING_KEY: &str = "Y2FsbGJhY2stZ3VhcmQgY2hlY2sncyBleGFtcGxlIGs=";

/// The configuration with each sealed key that is written as one replaced by an example
/// of its route's form: what can be checked without the key that opens them. A sealed key
/// not written as one is left for the parser to refuse.
fn with_sealed_as_examples(configuration: &str) -> String {
    let Ok(mut json) = serde_json::from_str::<Value>(configuration) else {
        return configuration.to_string();
    };
    let mut n = 0;
    each_key(&mut json, |entry, kind, key| {
        let Some(object) = key.as_object_mut() else {
            return;
        };
        let sealed = object.get("sealed").and_then(Value::as_str);
        if sealed.is_some_and(sealed::is_written_as_sealed) {
            object.remove("sealed");
            object.insert("value".into(), registry::example_key(entry, kind, n).into());
            n += 1;
        }
    });
    json.to_string()
}

/// Every Envoy cluster the configuration names: certificates' and fleet stores'.
fn named_clusters(configuration: &str) -> Vec<(String, String)> {
    let Ok(json) = serde_json::from_str::<Value>(configuration) else {
        return Vec::new();
    };
    let routes = json.get("routes").and_then(Value::as_array);
    let mut named = Vec::new();
    for (i, route) in routes.into_iter().flatten().enumerate() {
        for (field, pointer) in [
            ("certificate.cluster", "/certificate/cluster"),
            ("replay.store.cluster", "/replay/store/cluster"),
        ] {
            if let Some(cluster) = route.pointer(pointer).and_then(Value::as_str) {
                named.push((format!("routes[{i}].{field}"), cluster.to_string()));
            }
        }
    }
    named
}

#[cfg(test)]
mod tests;
