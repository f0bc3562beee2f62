use super::*;

/// `text` as a file, checked: (valid, report).
fn check(text: &str, given: &[(&str, &str)]) -> (bool, String) {
    let dir = std::env::temp_dir().join(format!("callback-guard-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join(format!("{:x}.yaml", fxhash(text)));
    std::fs::write(&file, text).unwrap();
    let given = given
        .iter()
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect();
    let (valid, report) = check_file(&file, "callback_guard", &given).unwrap();
    std::fs::remove_file(&file).unwrap();
    let prefix = format!("{}: ", file.display());
    (valid, report.replace(&prefix, ""))
}

fn fxhash(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

/// An Envoy bootstrap holding the filter, with the plugin configuration `plugin`.
fn bootstrap(plugin: &str, env: &str, hold: bool) -> String {
    format!(
        r#"
static_resources:
  listeners:
  - name: https
    filter_chains:
    - filters:
      - &manager
        name: envoy.filters.network.http_connection_manager
        typed_config:
          http_filters:
          - name: callback_guard
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm
              config:
                root_id: callback_guard
                allow_on_headers_stop_iteration: {hold}
                vm_config:
                  environment_variables: {env}
                configuration:
                  "@type": type.googleapis.com/google.protobuf.StringValue
                  value: '{plugin}'
  - name: http
    filter_chains:
    - filters:
      - *manager
  clusters:
  - name: certificates
"#
    )
}

const VOICE: &str = r#"{"routes": [{"name": "voice", "path_prefix": "/vobiz/", "public_origin": "https://a.example", "keys": [{"env": "VOBIZ_TOKEN_FOR_CHECK"}]}]}"#;

#[test]
fn every_filter_in_a_bootstrap_is_checked_with_the_filters_own_messages() {
    let listed = "{host_env_keys: [VOBIZ_TOKEN_FOR_CHECK]}";
    let (valid, report) = check(&bootstrap(VOICE, listed, true), &[]);
    assert!(valid, "{report}");
    // Both listeners (the second an alias of the first), each protecting the route.
    let ok = "ok: protecting voice=/vobiz/";
    assert_eq!(report.matches(ok).count(), 2, "{report}");
    assert!(report.contains("static_resources.listeners[1].filter_chains[0].filters[0].typed_config.http_filters[0].typed_config: ok"), "{report}");
    assert!(
        report
            .contains("checked with an example of its form, not its value: VOBIZ_TOKEN_FOR_CHECK"),
        "{report}"
    );
    // A variable the VM is not given: what the filter logs when Envoy loads it.
    let (valid, report) = check(&bootstrap(VOICE, "{host_env_keys: []}", true), &[]);
    assert!(!valid);
    assert!(report.contains(r#"invalid configuration: routes[0].keys[0].env: environment variable "VOBIZ_TOKEN_FOR_CHECK" is not set in the VM (list it in vm_config.environment_variables)"#), "{report}");
    // Set in the configuration itself, or given: its value is checked.
    let inline = "{key_values: {VOBIZ_TOKEN_FOR_CHECK: ' padded '}}";
    let (valid, report) = check(&bootstrap(VOICE, inline, true), &[]);
    assert!(!valid);
    assert!(
        report.contains(
            "routes[0].keys[0]: key from VOBIZ_TOKEN_FOR_CHECK has leading or trailing whitespace"
        ),
        "{report}"
    );
    let (valid, report) = check(
        &bootstrap(VOICE, listed, true),
        &[("VOBIZ_TOKEN_FOR_CHECK", "")],
    );
    assert!(!valid);
    assert!(
        report.contains("key from VOBIZ_TOKEN_FOR_CHECK is empty"),
        "{report}"
    );
}

#[test]
fn what_only_the_envoy_file_can_say_is_checked_too() {
    // The plugin told that Envoy holds headers (its default) where Envoy does not.
    let listed = "{host_env_keys: [VOBIZ_TOKEN_FOR_CHECK]}";
    let (valid, report) = check(&bootstrap(VOICE, listed, false), &[]);
    assert!(!valid);
    assert!(
        report.contains("invalid configuration: allow_on_headers_stop_iteration:"),
        "{report}"
    );
    // A certificate cluster the bootstrap does not declare.
    let sns = r#"{"routes": [{"name": "sns", "path_prefix": "/sns/", "scheme": "sns", "keys": [{"value": "arn:aws:sns:us-east-1:123456789012:t"}], "certificate": {"cluster": "elsewhere"}}]}"#;
    let (valid, report) = check(&bootstrap(sns, "{}", true), &[]);
    assert!(!valid);
    assert!(report.contains(r#"invalid configuration: routes[0].certificate.cluster: cluster "elsewhere" is not in static_resources.clusters"#), "{report}");
    let declared = sns.replace("elsewhere", "certificates");
    assert!(check(&bootstrap(&declared, "{}", true), &[]).0);
}

#[test]
fn a_wasmplugin_and_ecds_resources_are_found_where_istio_and_envoy_put_them() {
    let wasmplugin = r#"
apiVersion: extensions.istio.io/v1alpha1
kind: WasmPlugin
metadata: {name: callback-guard}
spec:
  pluginName: callback_guard
  vmConfig:
    env: [{name: VOBIZ_TOKEN_FOR_CHECK, valueFrom: HOST}]
  pluginConfig:
    allow_on_headers_stop_iteration: false
    routes: [{name: voice, path_prefix: /vobiz/, public_origin: "https://a.example", keys: [{env: VOBIZ_TOKEN_FOR_CHECK}]}]
---
apiVersion: v1
kind: Secret
metadata: {name: tokens}
"#;
    let (valid, report) = check(wasmplugin, &[]);
    assert!(valid, "{report}");
    assert!(
        report.contains("document 1: WasmPlugin callback-guard: ok: protecting voice=/vobiz/"),
        "{report}"
    );
    // Istio cannot make Envoy hold headers: a plugin that assumes it is refused.
    let holding = wasmplugin.replace(
        "allow_on_headers_stop_iteration: false",
        "allow_on_headers_stop_iteration: true",
    );
    assert!(!check(&holding, &[]).0);
    let ecds = format!(
        r#"{{"resources": [{{"@type": "type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig", "name": "callback_guard",
           "typed_config": {{"@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
             "config": {{"root_id": "callback_guard", "allow_on_headers_stop_iteration": true,
               "configuration": {{"value": {}}}}}}}}}]}}"#,
        serde_json::to_string(
            &VOICE.replace("{\"env\": \"VOBIZ_TOKEN_FOR_CHECK\"}", "{\"value\": \"t\"}")
        )
        .unwrap()
    );
    let (valid, report) = check(&ecds, &[]);
    assert!(valid, "{report}");
    assert!(
        report.starts_with("resources[0].typed_config: ok"),
        "{report}"
    );
}

#[test]
fn a_bare_configuration_is_checked_and_a_file_without_one_is_not_valid() {
    let (valid, report) = check(VOICE, &[]);
    assert!(valid, "{report}");
    assert!(
        report.contains("plugin configuration: ok: protecting voice=/vobiz/"),
        "{report}"
    );
    assert!(
        report.contains("note: the file does not say which environment variables reach the VM"),
        "{report}"
    );
    let (valid, report) = check(r#"{"routes": [{"name": "x"}]}"#, &[]);
    assert!(!valid);
    assert!(
        report.contains("invalid configuration: routes[0]: missing field `path_prefix`"),
        "{report}"
    );
    let (valid, report) = check("static_resources: {clusters: [{name: a}]}\n", &[]);
    assert!(!valid);
    assert!(
        report.contains("no callback-guard plugin configuration"),
        "{report}"
    );
    let other_plugin =
        bootstrap(VOICE, "{}", true).replace("root_id: callback_guard", "root_id: coraza");
    assert!(!check(&other_plugin, &[]).0);
}

/// The sealing key of the tests below, and the voice token sealed under it.
const SEALING: &str = "q0Zvj1w0s9VbXr8dJm7f3GgYtH2uKc5LxN4pWzAaBeE=";

fn sealed_token() -> String {
    sealed::SealingKey::from_text(SEALING)
        .unwrap()
        .seal("the voice token", [5; sealed::NONCE_BYTES])
        .unwrap()
}

/// A voice route whose one key is `sealed`, opened with `SEALING_FOR_CHECK`.
fn sealed_plugin(sealed: &str) -> String {
    format!(
        r#"{{"sealing_key": {{"env": "SEALING_FOR_CHECK"}}, "routes": [{{"name": "voice", "path_prefix": "/vobiz/", "public_origin": "https://a.example", "keys": [{{"name": "next", "sealed": "{sealed}"}}]}}]}}"#
    )
}

#[test]
fn sealed_keys_are_opened_with_the_sealing_key_given_and_checked_as_written_without_it() {
    let (sealing, token, plugin) = (SEALING, sealed_token(), sealed_plugin);
    let listed = "{host_env_keys: [SEALING_FOR_CHECK]}";
    let (valid, report) = check(&bootstrap(&plugin(&token), listed, true), &[]);
    assert!(valid, "{report}");
    assert!(
        report.contains("each sealed key was checked as written, not opened"),
        "{report}"
    );
    // Given the sealing key, each is opened as the filter opens it.
    let given = [("SEALING_FOR_CHECK", sealing)];
    let (valid, report) = check(&bootstrap(&plugin(&token), listed, true), &given);
    assert!(valid, "{report}");
    assert!(
        !report.contains("sealed key was checked as written"),
        "{report}"
    );
    let other = [(
        "SEALING_FOR_CHECK",
        "CQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQk=",
    )];
    let (valid, report) = check(&bootstrap(&plugin(&token), listed, true), &other);
    assert!(!valid);
    assert!(
        report.contains("routes[0].keys[0].sealed: does not open with the sealing key"),
        "{report}"
    );
    // Not written as a sealed key: refused with or without the key that would open it.
    let (valid, report) = check(&bootstrap(&plugin("cgs1.short"), listed, true), &[]);
    assert!(!valid);
    assert!(
        report.contains("routes[0].keys[0].sealed: is not cgs1. followed by base64url"),
        "{report}"
    );
    // The sealing key must reach the VM as every variable must.
    let (valid, report) = check(
        &bootstrap(&plugin(&token), "{host_env_keys: []}", true),
        &given,
    );
    assert!(!valid);
    assert!(
        report.contains(
            r#"sealing_key.env: environment variable "SEALING_FOR_CHECK" is not set in the VM"#
        ),
        "{report}"
    );
}

#[test]
fn a_sealing_key_written_in_the_file_or_a_plugin_that_fails_open_is_refused() {
    let (sealing, plugin) = (SEALING, sealed_plugin(&sealed_token()));
    // Beside the sealed keys it opens, in what /config_dump shows.
    let inline = format!("{{key_values: {{SEALING_FOR_CHECK: '{sealing}'}}}}");
    let (valid, report) = check(&bootstrap(&plugin, &inline, true), &[]);
    assert!(!valid);
    assert!(
        report.contains(
            "invalid configuration: sealing_key.env: SEALING_FOR_CHECK is written in this file"
        ),
        "{report}"
    );
    assert!(!report.contains(sealing), "{report}");
    let listed = "{host_env_keys: [SEALING_FOR_CHECK]}";
    let given = [("SEALING_FOR_CHECK", sealing)];
    assert!(check(&bootstrap(&plugin, listed, true), &given).0);
    for (from, to) in [
        (
            "root_id: callback_guard",
            "root_id: callback_guard\n                failure_policy: FAIL_OPEN",
        ),
        (
            "root_id: callback_guard",
            "root_id: callback_guard\n                fail_open: true",
        ),
    ] {
        let open = bootstrap(&plugin, listed, true).replace(from, to);
        let (valid, report) = check(&open, &given);
        assert!(!valid, "{report}");
        assert!(
            report.contains("lets every request through unverified"),
            "{report}"
        );
    }
}
