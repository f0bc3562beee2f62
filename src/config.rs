//! Plugin configuration: the JSON in the Wasm filter's `configuration`, parsed strictly and
//! validated into a [`Policy`]. Every error names the field and the problem.

use std::collections::HashSet;
use std::fmt;

use serde::Deserialize;

use crate::keys::Key;
use crate::policy::{Policy, Route, Transport};
use crate::vobiz::voice::{Family, VoiceScheme};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub field: String,
    pub problem: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.problem)
    }
}

fn error(field: impl Into<String>, problem: impl Into<String>) -> ConfigError {
    ConfigError {
        field: field.into(),
        problem: problem.into(),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    routes: Vec<RawRoute>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoute {
    name: String,
    path_prefix: String,
    #[serde(default)]
    host: Option<String>,
    public_origin: String,
    #[serde(default)]
    keys: Vec<RawKey>,
    #[serde(default)]
    parent_keys: Vec<RawKey>,
    #[serde(default)]
    accept: Option<Vec<Family>>,
    #[serde(default)]
    allow_plain_http: bool,
    #[serde(default)]
    trust_x_forwarded_proto: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKey {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    env: Option<String>,
    #[serde(default)]
    value: Option<String>,
}

/// Parses and validates the plugin configuration. `env` looks up the VM's environment
/// variables (those passed with `vm_config.environment_variables`).
pub fn parse(bytes: &[u8], env: &dyn Fn(&str) -> Option<String>) -> Result<Policy, ConfigError> {
    let deserializer = &mut serde_json::Deserializer::from_slice(bytes);
    let raw: RawConfig = serde_path_to_error::deserialize(deserializer).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." {
            "configuration".to_string()
        } else {
            path
        };
        error(field, e.into_inner().to_string())
    })?;
    if raw.routes.is_empty() {
        return Err(error("routes", "must list at least one protected route"));
    }
    let mut names = HashSet::new();
    let routes = raw
        .routes
        .into_iter()
        .enumerate()
        .map(|(i, route)| {
            let field = format!("routes[{i}]");
            if !names.insert(route.name.clone()) {
                return Err(error(
                    format!("{field}.name"),
                    format!("duplicate route name {:?}", route.name),
                ));
            }
            compile_route(&field, route, env)
        })
        .collect::<Result<_, _>>()?;
    Ok(Policy { routes })
}

fn compile_route(
    field: &str,
    raw: RawRoute,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Route, ConfigError> {
    check_identifier(&format!("{field}.name"), &raw.name)?;
    check_path_prefix(&format!("{field}.path_prefix"), &raw.path_prefix)?;
    if let Some(host) = &raw.host {
        if host.is_empty() || host.bytes().any(|b| !b.is_ascii_graphic() || b == b'/') {
            return Err(error(
                format!("{field}.host"),
                "must be a host name, optionally with :port",
            ));
        }
    }
    let transport = match (raw.allow_plain_http, raw.trust_x_forwarded_proto) {
        (false, false) => Transport::RequireTls,
        (false, true) => Transport::TrustForwardedProto,
        (true, false) => Transport::AllowPlainHttp,
        (true, true) => {
            return Err(error(
                format!("{field}.trust_x_forwarded_proto"),
                "has no effect when allow_plain_http is true; set only one",
            ))
        }
    };
    check_origin(
        &format!("{field}.public_origin"),
        &raw.public_origin,
        transport,
    )?;

    let mut key_names = HashSet::new();
    let keys = compile_keys(
        &format!("{field}.keys"),
        raw.keys,
        "key",
        &mut key_names,
        env,
    )?;
    let parent_keys = compile_keys(
        &format!("{field}.parent_keys"),
        raw.parent_keys,
        "parent",
        &mut key_names,
        env,
    )?;
    if keys.is_empty() && parent_keys.is_empty() {
        return Err(error(
            format!("{field}.keys"),
            "no keys configured: give keys (account auth token) and/or parent_keys (main account token)",
        ));
    }
    let families = compile_accept(&format!("{field}.accept"), raw.accept, &keys, &parent_keys)?;

    Ok(Route {
        name: raw.name,
        path_prefix: raw.path_prefix,
        host: raw.host,
        public_origin: raw.public_origin,
        transport,
        voice: VoiceScheme {
            families,
            keys,
            parent_keys,
        },
    })
}

/// Route and key names end up in logs and metric names, so keep them to a safe alphabet.
fn check_identifier(field: &str, name: &str) -> Result<(), ConfigError> {
    let valid = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if valid {
        Ok(())
    } else {
        Err(error(
            field,
            format!("{name:?} must be 1-64 characters of [A-Za-z0-9_.-]"),
        ))
    }
}

fn check_path_prefix(field: &str, prefix: &str) -> Result<(), ConfigError> {
    if !prefix.starts_with('/') {
        return Err(error(field, "must start with '/'"));
    }
    if prefix
        .bytes()
        .any(|b| !b.is_ascii_graphic() || b == b'?' || b == b'#')
    {
        return Err(error(
            field,
            "must be a path without query, fragment or whitespace",
        ));
    }
    Ok(())
}

/// `scheme://authority`, exactly as registered with Vobiz; the MAC covers these bytes.
fn check_origin(field: &str, origin: &str, transport: Transport) -> Result<(), ConfigError> {
    let (scheme, authority) = match origin.split_once("://") {
        Some(parts) => parts,
        None => return Err(error(field, "must look like https://host[:port]")),
    };
    if scheme != "https" && scheme != "http" {
        return Err(error(field, "scheme must be lowercase https or http"));
    }
    if authority.is_empty()
        || authority
            .bytes()
            .any(|b| !b.is_ascii_graphic() || matches!(b, b'/' | b'?' | b'#' | b'@'))
    {
        return Err(error(
            field,
            "must be scheme://host[:port] with no path, query, fragment, userinfo or trailing slash",
        ));
    }
    if scheme == "http" && transport == Transport::RequireTls {
        return Err(error(
            field,
            "is http:// but the route requires TLS; set allow_plain_http: true if Vobiz really calls this origin over plain HTTP",
        ));
    }
    Ok(())
}

fn compile_keys(
    field: &str,
    raw: Vec<RawKey>,
    default_prefix: &str,
    names: &mut HashSet<String>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<Key>, ConfigError> {
    raw.into_iter()
        .enumerate()
        .map(|(i, key)| {
            let field = format!("{field}[{i}]");
            let (secret, source) = match (key.env, key.value) {
                (Some(var), None) => match env(&var) {
                    Some(secret) => (secret, var),
                    None => {
                        return Err(error(
                            format!("{field}.env"),
                            format!(
                                "environment variable {var:?} is not set in the VM (list it in vm_config.environment_variables)"
                            ),
                        ))
                    }
                },
                (None, Some(value)) => (value, "value".to_string()),
                _ => return Err(error(field, "give exactly one of env or value")),
            };
            if secret.is_empty() {
                return Err(error(&field, format!("key from {source} is empty")));
            }
            if secret.trim() != secret {
                return Err(error(
                    &field,
                    format!("key from {source} has leading or trailing whitespace"),
                ));
            }
            let name = key.name.unwrap_or_else(|| format!("{default_prefix}{i}"));
            check_identifier(&format!("{field}.name"), &name)?;
            if !names.insert(name.clone()) {
                return Err(error(format!("{field}.name"), format!("duplicate key name {name:?}")));
            }
            Key::new(name, secret.as_bytes()).map_err(|_| error(&field, "unusable key"))
        })
        .collect()
}

/// Explicit families must each have keys; the default is every family that has keys.
fn compile_accept(
    field: &str,
    accept: Option<Vec<Family>>,
    keys: &[Key],
    parent_keys: &[Key],
) -> Result<Vec<Family>, ConfigError> {
    let has_keys = |family: Family| {
        if family.uses_parent_key() {
            !parent_keys.is_empty()
        } else {
            !keys.is_empty()
        }
    };
    let Some(families) = accept else {
        return Ok(Family::ALL.into_iter().filter(|&f| has_keys(f)).collect());
    };
    if families.is_empty() {
        return Err(error(
            field,
            "must list at least one of v3, v2, ma_v3, ma_v2",
        ));
    }
    for (i, &family) in families.iter().enumerate() {
        if families[..i].contains(&family) {
            return Err(error(field, format!("{} is listed twice", family.name())));
        }
        if !has_keys(family) {
            let needed = if family.uses_parent_key() {
                "parent_keys"
            } else {
                "keys"
            };
            return Err(error(
                field,
                format!("{} needs {needed}, and none are configured", family.name()),
            ));
        }
    }
    Ok(families)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "TOKEN" => Some("test_auth_token".into()),
            "PARENT" => Some("test_parent_token".into()),
            "EMPTY" => Some(String::new()),
            "NEWLINE" => Some("token\n".into()),
            _ => None,
        }
    }

    fn parse_json(json: serde_json::Value) -> Result<Policy, ConfigError> {
        parse(json.to_string().as_bytes(), &env)
    }

    fn route(extra: serde_json::Value) -> serde_json::Value {
        let mut route = serde_json::json!({
            "name": "voice",
            "path_prefix": "/vobiz/",
            "public_origin": "https://example.com",
            "keys": [{"name": "primary", "env": "TOKEN"}],
            "parent_keys": [{"env": "PARENT"}],
        });
        for (k, v) in extra.as_object().unwrap() {
            if v.is_null() {
                route.as_object_mut().unwrap().remove(k);
            } else {
                route[k] = v.clone();
            }
        }
        serde_json::json!({ "routes": [route] })
    }

    fn err(extra: serde_json::Value) -> String {
        parse_json(route(extra)).unwrap_err().to_string()
    }

    #[test]
    fn a_full_route_compiles_with_defaults() {
        let policy = parse_json(route(serde_json::json!({}))).unwrap();
        let r = &policy.routes[0];
        assert_eq!(r.transport, Transport::RequireTls);
        assert_eq!(r.voice.families, Family::ALL.to_vec());
        assert_eq!(r.voice.keys[0].name, "primary");
        assert_eq!(r.voice.parent_keys[0].name, "parent0");
    }

    #[test]
    fn default_families_follow_the_keys_given() {
        let policy = parse_json(route(serde_json::json!({"keys": null}))).unwrap();
        assert_eq!(
            policy.routes[0].voice.families,
            vec![Family::MaV3, Family::MaV2]
        );
    }

    #[test]
    fn errors_name_the_field_and_the_problem() {
        let cases = [
            (
                serde_json::json!({"kyes": []}),
                "routes[0].kyes: unknown field `kyes`",
            ),
            (
                serde_json::json!({"public_origin": null}),
                "routes[0]: missing field `public_origin`",
            ),
            (
                serde_json::json!({"keys": [{"env": "NOPE"}]}),
                "routes[0].keys[0].env: environment variable \"NOPE\" is not set",
            ),
            (
                serde_json::json!({"keys": [{"env": "EMPTY"}]}),
                "routes[0].keys[0]: key from EMPTY is empty",
            ),
            (
                serde_json::json!({"keys": [{"value": ""}]}),
                "routes[0].keys[0]: key from value is empty",
            ),
            (
                serde_json::json!({"keys": [{"env": "NEWLINE"}]}),
                "routes[0].keys[0]: key from NEWLINE has leading or trailing whitespace",
            ),
            (
                serde_json::json!({"keys": [{"env": "TOKEN", "value": "x"}]}),
                "routes[0].keys[0]: give exactly one of env or value",
            ),
            (
                serde_json::json!({"keys": [{"name": "parent0", "value": "x"}]}),
                "routes[0].parent_keys[0].name: duplicate key name",
            ),
            (
                serde_json::json!({"keys": [], "parent_keys": []}),
                "routes[0].keys: no keys configured",
            ),
            (
                serde_json::json!({"accept": ["v4"]}),
                "routes[0].accept[0]: unknown variant `v4`",
            ),
            (
                serde_json::json!({"accept": []}),
                "routes[0].accept: must list at least one",
            ),
            (
                serde_json::json!({"accept": ["v3", "v3"]}),
                "routes[0].accept: v3 is listed twice",
            ),
            (
                serde_json::json!({"keys": null, "accept": ["v3"]}),
                "routes[0].accept: v3 needs keys",
            ),
            (
                serde_json::json!({"public_origin": "https://example.com/"}),
                "routes[0].public_origin: must be scheme://host[:port]",
            ),
            (
                serde_json::json!({"public_origin": "https://u:p@example.com"}),
                "routes[0].public_origin: must be scheme://host[:port]",
            ),
            (
                serde_json::json!({"public_origin": "HTTPS://example.com"}),
                "routes[0].public_origin: scheme must be lowercase",
            ),
            (
                serde_json::json!({"public_origin": "example.com"}),
                "routes[0].public_origin: must look like",
            ),
            (
                serde_json::json!({"public_origin": "http://example.com"}),
                "routes[0].public_origin: is http:// but the route requires TLS",
            ),
            (
                serde_json::json!({"allow_plain_http": true, "trust_x_forwarded_proto": true}),
                "routes[0].trust_x_forwarded_proto: has no effect",
            ),
            (
                serde_json::json!({"path_prefix": "vobiz"}),
                "routes[0].path_prefix: must start with '/'",
            ),
            (
                serde_json::json!({"path_prefix": "/v?x"}),
                "routes[0].path_prefix: must be a path",
            ),
            (
                serde_json::json!({"name": "has space"}),
                "routes[0].name: \"has space\" must be",
            ),
            (
                serde_json::json!({"host": ""}),
                "routes[0].host: must be a host name",
            ),
            (
                serde_json::json!({"allow_plain_http": "yes"}),
                "routes[0].allow_plain_http: invalid type",
            ),
        ];
        for (extra, expected) in cases {
            let message = err(extra.clone());
            assert!(
                message.starts_with(expected),
                "{extra}: got {message:?}, want {expected:?}"
            );
        }
    }

    #[test]
    fn document_level_errors() {
        let e = |json: &str| parse(json.as_bytes(), &env).unwrap_err().to_string();
        assert!(e("").starts_with("configuration: EOF"), "{}", e(""));
        assert!(e("{}").starts_with("configuration: missing field `routes`"));
        assert!(e(r#"{"routes": []}"#).starts_with("routes: must list at least one"));
        assert!(e(r#"{"routes": [], "x": 1}"#).starts_with("x: unknown field `x`"));
        let two = route(serde_json::json!({}));
        let dup = serde_json::json!({"routes": [two["routes"][0], two["routes"][0]]});
        assert!(parse_json(dup)
            .unwrap_err()
            .to_string()
            .starts_with("routes[1].name: duplicate route name"));
    }

    #[test]
    fn secrets_never_appear_in_errors() {
        let message = err(serde_json::json!({"keys": [{"value": " leaky-secret "}]}));
        assert!(!message.contains("leaky"), "{message}");
    }
}
