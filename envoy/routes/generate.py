#!/usr/bin/env python3
"""Writes the generated parts of the shipped manifests from envoy/routes/routes.yaml.

    .venv/bin/python envoy/routes/generate.py          # rewrite them (`make manifests`)
    .venv/bin/python envoy/routes/generate.py --check  # exit 1 if any differs (`make manifests-check`)

Only the lines between a manifest's
    # BEGIN generated from envoy/routes/routes.yaml by make manifests (<field>): do not edit
    # END generated (<field>)
are rewritten, at the BEGIN line's indentation; every other byte stays as it is. Before writing
(or comparing) anything, each generated file is parsed again and what it configures (the plugin
configuration, the env variable lists, the demo values) is compared with routes.yaml, so a
rendering mistake fails here rather than in Envoy. Exit status: 0 up to date (or rewritten),
1 --check found a difference, 2 routes.yaml or a manifest's markers are wrong.
"""
import argparse
import difflib
import json
import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
SOURCE = "envoy/routes/routes.yaml"
BEGIN = re.compile(r"^(?P<indent> *)# BEGIN generated from envoy/routes/routes\.yaml by make manifests "
                   r"\((?P<field>[^)]+)\): do not edit\n?$")
END = "# END generated ({field})"
TARGETS = {"envoy", "envoyfilter", "wasmplugin", "envoygateway"}
TARGET_FIELDS = {"host", "public_origin", "sns_certificate_cluster", "paypal_certificate_cluster", "routes_left_out",
                 "plugin_fields", "comments"}
SECRET_FIELDS = {"env", "about", "demo", "e2e"}
ENV_NAME = re.compile(r"^[A-Z][A-Z0-9_]*$")
# run-demo.sh exports demo values inside double quotes: nothing the shell would expand.
DEMO_VALUE = re.compile(r"^[A-Za-z0-9_+/=.,:@-]+$")
PLACEHOLDER = re.compile(r"\$\{([^}]*)\}")
# run-demo.sh's start-up message, wrapped at this many characters a line (echo included).
BANNER_HEAD = "callback-guard demo: https://127.0.0.1:8443 and http://127.0.0.1:8080 protect "
BANNER_TAIL = " (Ctrl-C stops)"
BANNER_WIDTH = 112


class Invalid(Exception):
    """routes.yaml or a manifest's markers are wrong (exit 2)."""


# ---------------------------------------------------------------------------------------
# The source.


def load_source():
    path = ROOT / SOURCE
    try:
        src = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise Invalid(f"{SOURCE}: {e}")
    if not isinstance(src, dict) or set(src) != {"targets", "routes", "secret_name", "secrets"}:
        raise Invalid(f"{SOURCE}: needs exactly targets, routes, secret_name and secrets")
    targets = src["targets"]
    if not isinstance(targets, dict) or set(targets) != TARGETS:
        raise Invalid(f"{SOURCE}: targets must be exactly {', '.join(sorted(TARGETS))}")
    for name in TARGETS:
        if targets[name] is None:  # a target that changes nothing
            targets[name] = {}
    for name, target in targets.items():
        if not isinstance(target, dict) or not set(target) <= TARGET_FIELDS:
            raise Invalid(f"{SOURCE}: targets.{name} may set only {', '.join(sorted(TARGET_FIELDS))}")
        for field in ("plugin_fields", "comments"):
            if not isinstance(target.get(field, {}), dict):
                raise Invalid(f"{SOURCE}: targets.{name}.{field} must be a mapping")
        if "routes" in target.get("plugin_fields", {}):
            raise Invalid(f"{SOURCE}: targets.{name}.plugin_fields cannot set routes")

    routes = src["routes"]
    if not isinstance(routes, list) or not all(isinstance(r, dict) for r in routes):
        raise Invalid(f"{SOURCE}: routes must be a list of mappings")
    names = [r.get("name") for r in routes]
    for route in routes:
        if not isinstance(route.get("name"), str) or not isinstance(route.get("path_prefix"), str):
            raise Invalid(f"{SOURCE}: every route needs a name and a path_prefix (strings): {route}")
        if list(route)[:2] != ["name", "path_prefix"]:
            raise Invalid(f"{SOURCE}: route {route['name']}: name and path_prefix come first")
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise Invalid(f"{SOURCE}: route names used twice: {', '.join(duplicates)}")

    secrets = src["secrets"]
    if not isinstance(secrets, list) or not all(isinstance(s, dict) and set(s) == SECRET_FIELDS
                                                for s in secrets):
        raise Invalid(f"{SOURCE}: every secret has exactly env, about, demo and e2e")
    for secret in secrets:
        if not isinstance(secret["env"], str) or not ENV_NAME.match(secret["env"]):
            raise Invalid(f"{SOURCE}: secret env {secret['env']!r} is not an env variable name")
        if not isinstance(secret["about"], str) or not secret["about"].strip():
            raise Invalid(f"{SOURCE}: secret {secret['env']}: about must be a non-empty string")
        if not isinstance(secret["demo"], str) or not DEMO_VALUE.match(secret["demo"]):
            raise Invalid(f"{SOURCE}: secret {secret['env']}: demo must be a non-empty string of "
                          f"letters, digits and _+/=.,:@-")
        if not isinstance(secret["e2e"], str) or not secret["e2e"] or secret["e2e"] == secret["demo"]:
            raise Invalid(f"{SOURCE}: secret {secret['env']}: e2e must be a non-empty string other "
                          f"than the demo value (the tests never pass on the demo's secrets)")
    env = [s["env"] for s in secrets]
    duplicates = sorted({n for n in env if env.count(n) > 1})
    if duplicates:
        raise Invalid(f"{SOURCE}: secrets listed twice: {', '.join(duplicates)}")
    named = set(env_references(routes))
    if named - set(env):
        raise Invalid(f"{SOURCE}: routes name env variables missing from secrets: "
                      f"{', '.join(sorted(named - set(env)))}")
    if set(env) - named:
        raise Invalid(f"{SOURCE}: secrets no route's keys name: {', '.join(sorted(set(env) - named))}")
    if not isinstance(src["secret_name"], str) or not src["secret_name"]:
        raise Invalid(f"{SOURCE}: secret_name must be a string")
    for target in TARGETS:
        plugin_config(src, target)  # placeholders and hosts resolve
    return src


def env_references(value):
    """Every env variable the routes name ({"env": ...} anywhere in them), in order."""
    if isinstance(value, dict):
        if isinstance(value.get("env"), str):
            yield value["env"]
        for item in value.values():
            yield from env_references(item)
    elif isinstance(value, list):
        for item in value:
            yield from env_references(item)


def substitute(value, target, name, where):
    if isinstance(value, dict):
        return {k: substitute(v, target, name, where) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute(v, target, name, where) for v in value]
    if isinstance(value, str):
        def resolve(match):
            field = match[1]
            if not isinstance(target.get(field), str):
                raise Invalid(f"{SOURCE}: {where}: ${{{field}}}: targets.{name} has no {field}")
            return target[field]
        return PLACEHOLDER.sub(resolve, value)
    return value


def plugin_config(src, name):
    """The plugin configuration of one target, fields in the order the plugin gets them."""
    target = src["targets"][name]
    left_out = target.get("routes_left_out", [])
    unknown = set(left_out) - {r["name"] for r in src["routes"]}
    if unknown:
        raise Invalid(f"{SOURCE}: targets.{name}.routes_left_out names no route: {', '.join(sorted(unknown))}")
    routes = []
    for route in src["routes"]:
        if route["name"] in left_out:
            continue
        route = substitute(route, target, name, f"route {route['name']}")
        if "host" in target:
            if "host" in route:
                raise Invalid(f"{SOURCE}: route {route['name']} sets host, which targets.{name} sets")
            items = list(route.items())
            route = dict(items[:2] + [("host", target["host"])] + items[2:])
        routes.append(route)
    return {"routes": routes, **target.get("plugin_fields", {})}


def env_names(src):
    return [s["env"] for s in src["secrets"]]


# ---------------------------------------------------------------------------------------
# Renderings: lines without the block's indentation and without newlines.


def dump_yaml(value):
    return yaml.safe_dump(value, sort_keys=False, default_flow_style=False, width=10**9).splitlines()


def expanded(value, path):
    """The plugin JSON's layout: the document, the route list and each route one field per
    line; below that a mapping holding a mapping is spread out too, anything else is one line."""
    if path in ((), ("routes",)) or (len(path) == 2 and path[0] == "routes"):
        return isinstance(value, (dict, list))
    return isinstance(value, dict) and any(isinstance(v, dict) for v in value.values())


def json_lines(value, path=()):
    if not expanded(value, path):
        return [json.dumps(value)]
    items = list(value.items()) if isinstance(value, dict) else list(enumerate(value))
    lines = ["{" if isinstance(value, dict) else "["]
    for n, (key, item) in enumerate(items):
        sub = json_lines(item, path + (key,))
        if isinstance(value, dict):
            sub[0] = f"{json.dumps(key)}: {sub[0]}"
        if n < len(items) - 1:
            sub[-1] += ","
        lines += ["  " + line for line in sub]
    return lines + ["}" if isinstance(value, dict) else "]"]


def configuration_value(src, target):
    """`value: |` with the plugin configuration as JSON (a StringValue)."""
    return ["value: |"] + ["  " + line for line in json_lines(plugin_config(src, target))]


def host_env_keys_flow(src):
    """envoy.yaml's one-line-per-three flow list."""
    head = "host_env_keys: ["
    names = env_names(src)
    rows = [names[i:i + 3] for i in range(0, len(names), 3)] or [[]]
    return [(head if n == 0 else " " * len(head)) + ", ".join(row) + ("," if n < len(rows) - 1 else "]")
            for n, row in enumerate(rows)]


def with_comments(lines, comments):
    """Each comment above the first line that sets its field."""
    pending, out = dict(comments), []
    for line in lines:
        match = re.match(r"^( *)(?:- )?([^\s:#]+):", line)
        if match and match[2] in pending:
            out += [match[1] + ("# " + text if text else "#").rstrip()
                    for text in pending.pop(match[2]).splitlines()]
        out.append(line)
    if pending:
        raise Invalid(f"{SOURCE}: comments for fields the configuration never sets: {', '.join(pending)}")
    return out


def plugin_config_yaml(src):
    target = src["targets"]["wasmplugin"]
    return with_comments(dump_yaml({"pluginConfig": plugin_config(src, "wasmplugin")}),
                         target.get("comments", {}))


def secret_string_data(src):
    lines = []
    for secret in src["secrets"]:
        lines += ["# " + line if line else "#" for line in secret["about"].strip().splitlines()]
        lines.append(f'{secret["env"]}: ""')
    return lines


def gateway_env(src):
    return dump_yaml([{"name": n, "valueFrom": {"secretKeyRef": {"name": src["secret_name"], "key": n}}}
                      for n in env_names(src)])


def demo_exports(src):
    return [f'export {s["env"]}="${{{s["env"]}:-{s["demo"]}}}"' for s in src["secrets"]]


def demo_banner(src):
    prefixes = [r["path_prefix"] for r in plugin_config(src, "envoy")["routes"]]
    words = [p + "," for p in prefixes[:-1]] + [prefixes[-1] + BANNER_TAIL] if prefixes else [BANNER_TAIL.strip()]
    rows, row = [], BANNER_HEAD
    for word in words:
        candidate = row + ("" if row in (BANNER_HEAD, "  ") else " ") + word
        if len(f'echo "{candidate}"') > BANNER_WIDTH and row not in (BANNER_HEAD, "  "):
            rows.append(row)
            candidate = "  " + word
        row = candidate
    rows.append(row)
    return [f'echo "{r}"' for r in rows]


# Each manifest: its generated fields, and what the whole file must configure.
def manifests(src):
    return {
        "envoy/envoy.yaml": {
            "host_env_keys": host_env_keys_flow(src),
            "configuration": configuration_value(src, "envoy"),
        },
        "envoy/istio/envoyfilter.yaml": {
            "host_env_keys": dump_yaml({"host_env_keys": env_names(src)}),
            "configuration": configuration_value(src, "envoyfilter"),
        },
        "envoy/istio/wasmplugin.yaml": {
            "env": dump_yaml([{"name": n, "valueFrom": "HOST"} for n in env_names(src)]),
            "pluginConfig": plugin_config_yaml(src),
        },
        "envoy/gateway/envoyextensionpolicy.yaml": {
            "hostKeys": dump_yaml(env_names(src)),
            "config": dump_yaml({"config": plugin_config(src, "envoygateway")}),
        },
        "envoy/gateway/envoyproxy.yaml": {"env": gateway_env(src)},
        "envoy/istio/secret.yaml": {"stringData": secret_string_data(src)},
        "envoy/istio/gateway-env.yaml": {"env": gateway_env(src)},
        "envoy/run-demo.sh": {"exports": demo_exports(src), "banner": demo_banner(src)},
    }


# ---------------------------------------------------------------------------------------
# What each generated file must configure, read back from the file as its consumers read it.


def wasm_filter_config(http_filters):
    [config] = [f["typed_config"]["config"] for f in http_filters if f.get("name") == "callback_guard"]
    return config


def read_back(path, text):
    """(plugin configuration, env variable list, extra) as the file configures them."""
    if path == "envoy/run-demo.sh":
        exports = re.findall(r'^export (\w+)="\$\{\1:-([^"$`\\}]*)\}"$', text, re.M)
        prefixes = re.findall(r"(/[A-Za-z0-9_.~-]+/)[, ]", "".join(
            line for line in text.splitlines(True) if line.startswith('echo "')))
        return None, [n for n, _ in exports], {"demo": dict(exports), "prefixes": prefixes}
    docs = list(yaml.safe_load_all(text))
    if path == "envoy/envoy.yaml":
        [doc] = docs
        manager = doc["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
        config = wasm_filter_config(manager["typed_config"]["http_filters"])
    elif path == "envoy/istio/envoyfilter.yaml":
        [patch] = [p for p in docs[0]["spec"]["configPatches"] if p["applyTo"] == "HTTP_FILTER"]
        config = patch["patch"]["value"]["typed_config"]["config"]
    elif path == "envoy/istio/wasmplugin.yaml":
        spec = docs[0]["spec"]
        env = spec["vmConfig"]["env"]
        return spec["pluginConfig"], [e["name"] for e in env], {"env": env}
    elif path == "envoy/gateway/envoyextensionpolicy.yaml":
        [wasm] = docs[0]["spec"]["wasm"]
        return wasm["config"], wasm["env"]["hostKeys"], {}
    elif path == "envoy/gateway/envoyproxy.yaml":
        env = docs[0]["spec"]["provider"]["kubernetes"]["envoyDeployment"]["container"]["env"]
        return None, [e["name"] for e in env], {"env": env}
    elif path == "envoy/istio/secret.yaml":
        return None, list(docs[0]["stringData"]), {"secret": docs[0]}
    elif path == "envoy/istio/gateway-env.yaml":
        [container] = [c for c in docs[0]["spec"]["template"]["spec"]["containers"] if c["name"] == "istio-proxy"]
        return None, [e["name"] for e in container["env"]], {"env": container["env"]}
    return (json.loads(config["configuration"]["value"]),
            config["vm_config"]["environment_variables"]["host_env_keys"], {})


def verify(src, path, text):
    """Raises Invalid unless `text` configures exactly what routes.yaml says."""
    try:
        plugin, env, extra = read_back(path, text)
    except (yaml.YAMLError, json.JSONDecodeError, KeyError, IndexError, TypeError, ValueError) as e:
        raise Invalid(f"{path}: the generated file does not read back ({type(e).__name__}: {e})")
    names = env_names(src)
    problems = []
    if env != names:
        problems.append(f"env variables {env} instead of {names}")
    target = {"envoy/envoy.yaml": "envoy", "envoy/istio/envoyfilter.yaml": "envoyfilter",
              "envoy/istio/wasmplugin.yaml": "wasmplugin",
              "envoy/gateway/envoyextensionpolicy.yaml": "envoygateway"}.get(path)
    if target and plugin != plugin_config(src, target):
        problems.append(f"the plugin configuration is not targets.{target}'s")
    if path == "envoy/istio/wasmplugin.yaml" and extra["env"] != [{"name": n, "valueFrom": "HOST"} for n in names]:
        problems.append("vmConfig.env is not every secret with valueFrom: HOST")
    if path == "envoy/istio/secret.yaml":
        secret = extra["secret"]
        if secret["stringData"] != {n: "" for n in names}:
            problems.append("stringData is not every secret with an empty placeholder")
        if secret["metadata"]["name"] != src["secret_name"]:
            problems.append(f"metadata.name is not secret_name ({src['secret_name']})")
    if path in ("envoy/istio/gateway-env.yaml", "envoy/gateway/envoyproxy.yaml") and extra["env"] != [
            {"name": n, "valueFrom": {"secretKeyRef": {"name": src["secret_name"], "key": n}}} for n in names]:
        problems.append("the env entries are not every secret from secret_name")
    if path == "envoy/run-demo.sh":
        if extra["demo"] != {s["env"]: s["demo"] for s in src["secrets"]}:
            problems.append("the exported demo values are not the secrets' demo values")
        if extra["prefixes"] != [r["path_prefix"] for r in src["routes"]]:
            problems.append("the start-up message does not list every route's path_prefix")
    if problems:
        raise Invalid(f"{path}: the generated file does not read back as {SOURCE} says: {'; '.join(problems)}")


# ---------------------------------------------------------------------------------------
# Rewriting between the markers.


def regenerate(path, text, fields):
    lines = text.splitlines(keepends=True)
    out, seen, i = [], [], 0
    while i < len(lines):
        line = lines[i]
        out.append(line)
        match = BEGIN.match(line)
        if not match:
            if re.search(r"#\s*(BEGIN|END) generated", line):
                raise Invalid(f"{path}:{i + 1}: a marker outside a BEGIN/END pair or misspelt: {line.strip()}")
            i += 1
            continue
        field, indent = match["field"], match["indent"]
        if field not in fields:
            raise Invalid(f"{path}:{i + 1}: no generated field {field!r} here (known: {', '.join(fields)})")
        if field in seen:
            raise Invalid(f"{path}:{i + 1}: {field} is generated twice")
        seen.append(field)
        end = indent + END.format(field=field)
        for j in range(i + 1, len(lines)):
            if lines[j].rstrip("\n") == end:
                break
            if BEGIN.match(lines[j]) or re.search(r"#\s*END generated", lines[j]):
                raise Invalid(f"{path}:{j + 1}: expected `{end.strip()}` (indented as its BEGIN) first")
        else:
            raise Invalid(f"{path}:{i + 1}: no `{end.strip()}` line (indented as its BEGIN) after this")
        out += [(indent + body).rstrip() + "\n" for body in fields[field]]
        out.append(lines[j])
        i = j + 1
    missing = [f for f in fields if f not in seen]
    if missing:
        raise Invalid(f"{path}: no BEGIN/END markers for {', '.join(missing)}")
    return "".join(out)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="change nothing; exit 1 if a manifest is not what routes.yaml generates")
    args = parser.parse_args()
    try:
        src = load_source()
        results = []
        for path, fields in manifests(src).items():
            current = (ROOT / path).read_text()
            wanted = regenerate(path, current, fields)
            verify(src, path, wanted)
            results.append((path, current, wanted))
    except Invalid as e:
        print(f"generate.py: {e}", file=sys.stderr)
        return 2
    stale = [(path, current, wanted) for path, current, wanted in results if current != wanted]
    if args.check:
        for path, current, wanted in stale:
            sys.stdout.writelines(difflib.unified_diff(
                current.splitlines(True), wanted.splitlines(True),
                fromfile=f"{path} (as it is)", tofile=f"{path} (as {SOURCE} generates it)"))
        if stale:
            print(f"\n{', '.join(p for p, _, _ in stale)}: not what {SOURCE} generates. "
                  f"Edit {SOURCE} (not the generated lines), then run `make manifests`.", file=sys.stderr)
            return 1
        return 0
    for path, _, wanted in stale:
        (ROOT / path).write_text(wanted)
        print(f"generate.py: rewrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
