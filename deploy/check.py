#!/usr/bin/env python3
"""Checks deploy/ against itself and against the Swift sources.

    python3 deploy/check.py

- every YAML file parses (multi-document), every Kubernetes object has apiVersion, kind and metadata.name
  and no namespace, and the manifests agree with each other (selectors, ConfigMap and Secret keys, ports,
  config paths, grace periods);
- every `gantryd` / `gantry-worker` / `gantry` flag used anywhere in deploy/ is one the Swift sources define
  (for the subcommand it follows), every key of the example config files is one the sources decode, every
  GANTRY_* variable is one the sources mention, and every gantry_* metric named is one the broker exports;
- the broker's HTTP side (/live, /ready, /metrics on 7441) is where the probes, health checks and
  Prometheus annotations look for it, and nothing still says it does not exist;
- security (the rules of Sources/GantryBroker/Settings/, read from there): every broker that listens
  beyond loopback (compose, Kubernetes, systemd, the Dockerfile's CMD) surely gets a token, none passes
  --allow-unauthenticated, tokens come from outside (required compose variables, Secrets, the systemd env file),
  every worker's GANTRY_TOKEN is the token the brokers take as the worker one, example tokens are too short to
  be accepted, `tokens:` entries are well formed, TLS settings come in pairs and fit the probes, the README's
  Prometheus jobs and every `curl .../metrics` send the admin token, and nothing still says there is no
  authentication or TLS;
- the systemd units have what production needs (and pass `systemd-analyze verify` when it is installed,
  apart from the binaries not being installed here);
- the stop timeouts exceed the drain grace and the worker's command timeout;
- when installed: `docker compose config` (or the older `docker-compose config`, both given throwaway values
  for compose.yml's required token variables) and `kubernetes-validate` check compose.yml and the manifests
  against their schemas. Docker itself is never run.

Exits 1 with one line per problem, 0 when all is well. Needs Python 3 and PyYAML.
"""
from __future__ import annotations

import base64
import configparser
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

try:
    import yaml
except ImportError:  # pragma: no cover
    sys.exit("check.py needs PyYAML: pip install pyyaml (or apt-get install python3-yaml)")

DEPLOY = Path(__file__).resolve().parent
ROOT = DEPLOY.parent
SOURCES = ROOT / "Sources"

problems: list[str] = []
passed = 0
notes: list[str] = []


def check(condition: bool, message: str) -> bool:
    global passed
    if condition:
        passed += 1
    else:
        problems.append(message)
    return condition


def rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


# ---------------------------------------------------------------------------------------------------------
# What the Swift sources define
# ---------------------------------------------------------------------------------------------------------

def snake(name: str, separator: str = "-") -> str:
    """swift-argument-parser's convertedToSnakeCase, which names a property's long flag."""
    result = ""
    separate_on_upper = True
    for i, ch in enumerate(name):
        if ch.isupper():
            if separate_on_upper and result:
                result += separator
            separate_on_upper = (i + 2 < len(name) and name[i + 1].isupper() and name[i + 2].islower())
        else:
            separate_on_upper = ch != separator
        result += ch.lower()
    return result


def struct_bodies(text: str, kinds: str = "struct") -> dict[str, str]:
    """struct name -> its body (brace-matched; nested structs are also listed on their own)."""
    bodies = {}
    for match in re.finditer(rf"\b(?:{kinds})\s+(\w+)[^{{]*\{{", text):
        depth, i = 1, match.end()
        while depth and i < len(text):
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            i += 1
        bodies[match.group(1)] = text[match.end():i - 1]
    return bodies


def without_nested_structs(body: str) -> str:
    for nested in struct_bodies(body).values():
        body = body.replace(nested, "")
    return body


def options_of(body: str) -> set[str]:
    """The flags declared by @Option / @Flag properties directly in a struct body."""
    flags = set()
    for match in re.finditer(r"@(Option|Flag)\b(.*?)\bvar\s+(\w+)", without_nested_structs(body), re.S):
        attribute, name = match.group(2), match.group(3)
        custom = re.search(r'customLong\("([^"]+)"', attribute)
        flags.add("--" + (custom.group(1) if custom else snake(name)))
        short = re.search(r"customShort\(\"(\w)\"", attribute)
        if short or re.search(r"\.shortAndLong\b|\.short\b", attribute):
            flags.add("-" + (short.group(1) if short else name[0]))
    return flags


def option_groups_of(body: str) -> list[str]:
    return re.findall(r"@OptionGroup[^\n]*?\bvar\s+\w+\s*:\s*(\w+)", without_nested_structs(body))


def coding_keys(body: str) -> set[str]:
    match = re.search(r"enum\s+CodingKeys\b[^{]*\{(.*?)\}", body, re.S)
    keys = set()
    if not match:
        return keys
    for line in match.group(1).splitlines():
        line = line.strip()
        if not line.startswith("case "):
            continue
        for part in line[5:].split(","):
            part = part.strip()
            raw = re.search(r'=\s*"([^"]+)"', part)
            keys.add(raw.group(1) if raw else part.split("=")[0].strip())
    return keys


def read_sources(folder: str) -> str:
    files = sorted((SOURCES / folder).glob("*.swift"))
    if not files:
        problems.append(f"no Swift sources in Sources/{folder}: cannot check flags")
    return "\n".join(f.read_text() for f in files)


gantryd_text = read_sources("gantryd")
gantryd_structs = struct_bodies(gantryd_text)
# gantryd's settings are declared once, in GantrydSettings.table (Entry("key", ...) or .integer("key", ...)), with their checks beside it.
settings_text = "\n".join(p.read_text() for p in sorted((SOURCES / "GantryBroker" / "Settings").glob("*.swift")))
SETTING_KEYS = set(re.findall(r'(?:\bEntry|^\s*\.[a-z]+)\("([a-z_]+)"', settings_text, re.M))
sections = re.search(r"fileSections: Set<String> = \[([^\]]*)\]", settings_text)
SECTION_KEYS = set(re.findall(r'"(\w+)"', sections.group(1))) if sections else set()
worker_text = read_sources("gantry-worker")
worker_structs = struct_bodies(worker_text)
# gantry-worker's settings: WorkerSettings.table, Entry("key", ...), .integer("key", ...) or Entry(list: "key", flag: "--flag", ...).
WORKER_SETTINGS = re.findall(r'(?:\bEntry|^\s*\.[a-z]+)\((?:list:\s*)?"([a-z_]+)"(?:,\s*flag:\s*"(--[a-z-]+)")?', worker_text, re.M)
cli_text = read_sources("gantry")
cli_structs = struct_bodies(cli_text)
cli_types = struct_bodies(cli_text, "struct|enum|class")


def command_flags(structs: dict[str, str], name: str) -> set[str]:
    body = structs.get(name, "")
    flags = options_of(body)
    for group in option_groups_of(body):
        flags |= options_of(structs.get(group, ""))
    return flags | {"--help", "-h"}


SETTING_FLAGS = {"--" + key.replace("_", "-") for key in SETTING_KEYS}
FLAGS = {
    "gantryd serve": command_flags(gantryd_structs, "Serve") | SETTING_FLAGS,
    "gantryd migrate": command_flags(gantryd_structs, "Migrate") | SETTING_FLAGS,
    "gantry-worker": command_flags(worker_structs, "GantryWorkerCommand")
    | {flag or "--" + key.replace("_", "-") for key, flag in WORKER_SETTINGS},
}


def cli_tree(type_expression: str) -> tuple[str, dict]:
    """The `gantry` CLI: (command name, {"flags": ..., "sub": {name: node}}) from CommandConfiguration's
    commandName and subcommands. A generic command (WorkersSteerCommand<Quiet>) takes its name from the
    type argument's static `name`."""
    struct, argument = re.fullmatch(r"(\w+)(?:<(\w+)>)?", type_expression).groups()
    body = cli_structs.get(struct, "")
    literal = re.search(r'commandName:\s*"([^"]+)"', body)
    name = literal.group(1) if literal else None
    reference = re.search(r"commandName:\s*\w+\.(\w+)", body)
    if not name and reference and argument:
        member = re.search(rf'static\s+(?:let|var)\s+{reference.group(1)}\b[^=]*=\s*"([^"]+)"',
                           cli_types.get(argument, ""))
        name = member.group(1) if member else None
    subcommands = re.search(r"subcommands:\s*\[(.*?)\]", body, re.S)
    children = dict(cli_tree(t) for t in re.findall(r"(\w+(?:<\w+>)?)\.self", subcommands.group(1))) \
        if subcommands else {}
    flags = command_flags(cli_structs, struct)
    default = re.search(r"defaultSubcommand:\s*(\w+(?:<\w+>)?)\.self", body)
    if default:   # `gantry workers --json` runs `gantry workers list --json`
        flags |= next((node["flags"] for child, node in children.items()
                       if cli_tree(default.group(1))[0] == child), set())
    return name or struct, {"flags": flags, "sub": children}


CLI = cli_tree("Gantry")[1]


def cli_flags(node: dict) -> set[str]:
    return node["flags"].union(*(cli_flags(child) for child in node["sub"].values()))


ALL_GANTRY_FLAGS = set().union(*FLAGS.values()) | cli_flags(CLI)
GANTRYD_KEYS = SETTING_KEYS | SECTION_KEYS
WORKER_KEYS = {key for key, _ in WORKER_SETTINGS}
SOURCE_ENV = set(re.findall(r"\bGANTRY_[A-Z0-9_]*[A-Z0-9]", "\n".join(
    p.read_text() for p in SOURCES.rglob("*.swift"))))


def enum_cases(body: str) -> set[str]:
    cases = set()
    for line in without_nested_structs(body).splitlines():
        line = line.strip()
        if line.startswith("case "):
            for part in line[5:].split(","):
                raw = re.search(r'=\s*"([^"]+)"', part)
                cases.add(raw.group(1) if raw else part.split("=")[0].strip())
    return cases


# Metric names the broker exports: the gantry_* literals of Sources/GantryBroker/Metrics and any `label: "gantry_..."`,
# plus "gantry_jobs_\(outcome.rawValue)_total" expanded over the cases of the enum that variable is declared as
# (nearest declaration before it in the same file). Histograms add _bucket, _sum and _count.
broker_files = {p: p.read_text() for p in sorted((SOURCES / "GantryBroker").rglob("*.swift"))}
metrics_enums = struct_bodies("\n".join(broker_files.values()), "enum")
METRICS: set[str] = set()
for path, text in broker_files.items():
    METRICS |= set(re.findall(r'label:\s*"(gantry_[a-z0-9_]+)"', text))
    if "Metrics" in path.relative_to(SOURCES).parts:
        METRICS |= set(re.findall(r'"(gantry_[a-z0-9_]+)"', text))
    for match in re.finditer(r'"(gantry_[a-z0-9_]*)\\\((\w+)\.rawValue\)([a-z0-9_]*)"', text):
        prefix, variable, suffix = match.groups()
        declared = re.findall(rf"\b{variable}\s*:\s*(\w+)", text[:match.start()])
        cases = enum_cases(metrics_enums.get(declared[-1], "")) if declared else set()
        METRICS |= {prefix + case + suffix for case in cases}
check({"gantry_jobs_completed_total", "gantry_queue_oldest_available_seconds", "gantry_db_query_seconds"} <= METRICS,
      f"could not read the metric names from Sources/GantryBroker (found {sorted(METRICS)})")

check("--listen" in FLAGS["gantryd serve"] and "--database-url" in FLAGS["gantryd migrate"]
      and "--handler" in FLAGS["gantry-worker"],
      "could not read the option definitions from Sources/gantryd and Sources/gantry-worker (check.py's parser "
      f"found gantryd serve {sorted(FLAGS['gantryd serve'])}, gantry-worker {sorted(FLAGS['gantry-worker'])})")
check("--http" in FLAGS["gantryd serve"] and "http" in GANTRYD_KEYS,
      "could not find gantryd's --http flag and http: key in Sources/gantryd (check.py's parser found "
      f"{sorted(FLAGS['gantryd serve'])} and {sorted(GANTRYD_KEYS)})")
check({"workers", "cleanup"} <= set(CLI["sub"]) and "--all" in cli_flags(CLI["sub"].get("workers", CLI)),
      f"could not read the gantry CLI's commands from Sources/gantry (found {sorted(CLI['sub'])})")
check("drain_grace_ms" in GANTRYD_KEYS and "handlers" in WORKER_KEYS,
      f"could not read the YAML keys from the sources (gantryd {sorted(GANTRYD_KEYS)}, worker {sorted(WORKER_KEYS)})")

# Security (Sources/GantryBroker/Settings/): its flags and keys, the token
# variables and their roles, the shortest token accepted from the environment, and what counts as loopback.
check({"--allow-unauthenticated", "--tls-cert", "--tls-key", "--tls-client-ca", "--max-connections"} <= FLAGS["gantryd serve"]
      and {"tokens", "allow_unauthenticated", "tls_cert", "tls_key"} <= GANTRYD_KEYS,
      "could not read gantryd's security flags and keys (GantrydSettings.table) from "
      f"Sources/GantryBroker/Settings (found {sorted(FLAGS['gantryd serve'])} and {sorted(GANTRYD_KEYS)})")
TOKEN_ENV = dict(re.findall(r'\(\s*"(GANTRY_[A-Z0-9_]+)"\s*,\s*\.(producer|worker|admin)\s*\)', settings_text))
check(set(TOKEN_ENV.values()) == {"producer", "worker", "admin"},
      f"could not read the token variables (ConfigSections.environmentTokens) from Sources/GantryBroker/Settings (found {TOKEN_ENV})")
minimum = re.search(r"\bplain\.count\s*>=\s*(\d+)", settings_text)
check(bool(minimum), "could not read the shortest token gantryd accepts (plain.count >= N) from Sources/GantryBroker/Settings")
MIN_TOKEN_LENGTH = int(minimum.group(1)) if minimum else 16
loopback = re.search(r"func\s+isLoopback\b[^{]*\{(.*?)\n\s*\}", settings_text, re.S)
LOOPBACK_NAMES = set(re.findall(r'==\s*"([^"]+)"', loopback.group(1))) if loopback else set()
LOOPBACK_PREFIXES = tuple(re.findall(r'hasPrefix\("([^"]+)"\)', loopback.group(1))) if loopback else ()
check(bool(LOOPBACK_NAMES and LOOPBACK_PREFIXES), "could not read isLoopback (what gantryd serves without tokens) "
                                                  "from Sources/GantryBroker/Settings")
configuration_text = (SOURCES / "GantryBroker" / "BrokerConfiguration.swift").read_text()
default_host = re.search(r'public var host = "([^"]+)"', configuration_text)
default_port = re.search(r'public var port = (\d+)', configuration_text)
check(bool(default_host and default_port), "could not read gantryd's default listen address from BrokerConfiguration.swift")
DEFAULT_LISTEN = f"{default_host.group(1)}:{default_port.group(1)}" if default_host and default_port else "127.0.0.1:7440"

# ---------------------------------------------------------------------------------------------------------
# Flags used in deploy/
# ---------------------------------------------------------------------------------------------------------

# Flags of other tools that deploy/ mentions (docker, swift, apt, useradd, kubectl, systemctl, nc, ...).
FOREIGN_FLAGS = {
    "--mount", "--from", "--static-swift-stdlib", "--product", "--show-bin-path", "--no-install-recommends",
    "--system", "--gid", "--uid", "--home-dir", "--no-create-home", "--shell", "--now", "--build",
    "--replicas", "--for", "--timeout", "--ignore-not-found", "--from-literal", "--time",
    "--rm", "--image", "--restart", "--cert", "--key", "--cacert",
}

TEXT_FILES = [p for p in sorted(DEPLOY.rglob("*")) if p.is_file() and p.name != "check.py"
              and "__pycache__" not in p.parts]
# The program in command position: at the start, after a space, quote, bracket or `=`, maybe as a path.
INVOCATION = re.compile(r"(?:^|(?<=[\s\"'`\[(=]))(?:/[\w.-]+)*/?(gantryd|gantry-worker)(?=[\s\"'`,\]]|$)")
STOP_TOKENS = {"|", "||", "&&", ";", "#", ">", "<"}
# `gantry` itself only when a subcommand of it follows ("the gantry schema", "--gid gantry" are not commands).
CLI_INVOCATION = re.compile(r"(?:^|(?<=[\s\"'`\[(=]))(?:/[\w.-]+)*/?(gantry)(?=\s+(?:%s)(?=[\s\"'`,\]]|$))"
                            % ("|".join(map(re.escape, sorted(CLI["sub"], key=len, reverse=True))) or "(?!)"))


def check_invocation(where: str, program: str, tokens: list[str]) -> None:
    """tokens: what follows the program name on its command line."""
    if program == "gantry":
        node, command = CLI, "gantry"
        for index, token in enumerate(tokens):
            if token in node["sub"] and all(not t.startswith("-") for t in tokens[:index]):
                node, command = node["sub"][token], f"{command} {token}"
            elif token.startswith("-") and len(token) > 1 and not re.fullmatch(r"-?\d+", token):
                flag = token.split("=", 1)[0]
                check(flag in node["flags"],
                      f"{where}: `{command}` has no flag {flag} (it has: {' '.join(sorted(node['flags']))})")
        return
    command = "gantry-worker" if program == "gantry-worker" else "gantryd serve"
    for index, token in enumerate(tokens):
        if program == "gantryd" and index == 0 and token in ("migrate", "serve"):
            command = f"gantryd {token}"
            continue
        if token.startswith("-") and len(token) > 1 and not re.fullmatch(r"-?\d+", token):
            flag = token.split("=", 1)[0]
            check(flag in FLAGS[command],
                  f"{where}: `{command}` has no flag {flag} (it has: {' '.join(sorted(FLAGS[command]))})")


def text_invocations(path: Path) -> None:
    text = re.sub(r"\\\n", " ", path.read_text())   # shell line continuations
    for number, line in enumerate(text.splitlines(), 1):
        for match in [*INVOCATION.finditer(line), *CLI_INVOCATION.finditer(line)]:
            tokens = []
            for token in re.findall(r"[^\s\"',\[\]]+", line[match.end():]):
                if token in STOP_TOKENS:
                    break
                if "`" in token:
                    head = token.split("`")[0]
                    if head:
                        tokens.append(head)
                    break
                tokens.append(token)
            check_invocation(f"{rel(path)}:{number}", match.group(1), tokens)


def yaml_invocations(where: str, node) -> None:
    """command/args lists in compose services and Kubernetes containers."""
    if isinstance(node, dict):
        for key in ("command", "args", "entrypoint"):
            value = node.get(key)
            if isinstance(value, list) and value and isinstance(value[0], str):
                program = value[0].rsplit("/", 1)[-1]
                if program in ("gantryd", "gantry-worker"):
                    args = [str(v) for v in value[1:]]
                    if key == "command" and isinstance(node.get("args"), list):
                        args += [str(v) for v in node["args"]]
                    check_invocation(f"{where} {key}", program, args)
        for value in node.values():
            yaml_invocations(where, value)
    elif isinstance(node, list):
        for value in node:
            yaml_invocations(where, value)


for path in TEXT_FILES:
    try:
        text = path.read_text()
    except UnicodeDecodeError:
        continue
    text_invocations(path)
    for flag in sorted(set(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", text))):
        check(flag in ALL_GANTRY_FLAGS or flag in FOREIGN_FLAGS,
              f"{rel(path)}: {flag} is neither a gantryd/gantry-worker/gantry flag in the sources nor a known flag "
              "of another tool (add it to FOREIGN_FLAGS in check.py if it belongs to one)")
    for metric in sorted(set(re.findall(r"(?<![\w.-])gantry_[a-z][a-z0-9_]*", text))):
        base = re.sub(r"_(bucket|sum|count)$", "", metric)
        check(metric in METRICS or base in METRICS,
              f"{rel(path)}: {metric} is not a metric the broker exports (it exports: {' '.join(sorted(METRICS))})")
    for stale in re.finditer(r"no HTTP side|HTTP side yet|once the broker serves HTTP|no (?:`?/live`?|/ready|/metrics)\b",
                             text, re.I):
        check(False, f"{rel(path)}: still says the broker has no HTTP side ({stale.group(0)!r}); it serves "
                     "/live, /ready and /metrics on --http")
    for stale in re.finditer(r"\b(?:no|without) (?:authentication|auth|TLS|tokens?)\b(?:[^.\n]|\n[ \t]*#?[ \t]*){0,60}?\byet\b"
                             r"|\b(?:authentication|tokens?|TLS)\b(?:[^.\n]|\n[ \t]*#?[ \t]*){0,20}?\bcomes? later\b"
                             r"|\baccepts and ignores\b", text, re.I):
        check(False, f"{rel(path)}: still says the broker has no authentication or TLS ({stale.group(0)!r}); it has "
                     "tokens and optional TLS (Sources/GantryBroker/Settings/)")
    for line in text.splitlines():
        if re.search(r"\bcurl\b.*/metrics\b", line):
            check("Authorization: Bearer" in line,
                  f"{rel(path)}: `{line.strip()[:80]}`: /metrics wants the admin token (-H \"Authorization: Bearer ...\")")
    for variable in sorted(set(re.findall(r"\bGANTRY_[A-Z0-9_]*[A-Z0-9]", text))):
        check(variable in SOURCE_ENV, f"{rel(path)}: {variable} is not mentioned anywhere in Sources/")

# ---------------------------------------------------------------------------------------------------------
# YAML
# ---------------------------------------------------------------------------------------------------------


def load_all(path: Path) -> list:
    try:
        documents = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    except yaml.YAMLError as error:
        check(False, f"{rel(path)}: not valid YAML: {error}")
        return []
    check(bool(documents), f"{rel(path)}: no YAML document in it")
    return documents


def check_config(where: str, text: str, keys: set[str], kind: str) -> dict:
    try:
        settings = yaml.safe_load(text)
    except yaml.YAMLError as error:
        check(False, f"{where}: not valid YAML: {error}")
        return {}
    if not check(isinstance(settings, dict), f"{where}: a {kind} config file must be a YAML mapping"):
        return {}
    for key, value in settings.items():
        check(key in keys, f"{where}: {kind} does not read the key {key!r} (it reads: {', '.join(sorted(keys))})")
        if key.endswith("_ms") or key.startswith("max_") or key == "concurrency":
            check(isinstance(value, int) and not isinstance(value, bool) and value >= 0,
                  f"{where}: {key} must be a whole number, got {value!r}")
        if key == "allow_unauthenticated":
            check(isinstance(value, bool), f"{where}: allow_unauthenticated must be true or false, got {value!r}")
    # Commented-out examples (`# tls_cert: ...`) must name keys that exist too, or uncommenting them fails.
    for key in re.findall(r"^[ \t]*# ?([a-z][a-z0-9_]*):(?=\s|$)", text, re.M):
        check(key in keys, f"{where}: the commented-out example key {key!r} is not one {kind} reads "
                           f"(it reads: {', '.join(sorted(keys))})")
    if kind == "gantryd":
        check_tokens(where, settings.get("tokens"))
        tls = [key for key in ("tls_cert", "tls_key") if key in settings]
        check(len(tls) in (0, 2), f"{where}: TLS needs both tls_cert and tls_key (got only {tls})")
        check("tls_client_ca" not in settings or len(tls) == 2, f"{where}: tls_client_ca needs tls_cert and tls_key")
    if "handlers" in settings:
        handlers = settings["handlers"]
        check(isinstance(handlers, dict) and handlers and all(isinstance(k, str) and isinstance(v, str)
                                                             for k, v in handlers.items()),
              f"{where}: handlers must map job types to command strings")
    if "queues" in settings and kind == "gantry-worker":   # gantryd's queues: is a map of limits
        check(isinstance(settings["queues"], list) and all(isinstance(q, str) for q in settings["queues"]),
              f"{where}: queues must be a list of names")
    for address in ("listen", "http"):
        if address in settings:
            check(isinstance(settings[address], str) and re.fullmatch(r".*:\d+", settings[address]) is not None,
                  f"{where}: {address} must be host:port")
    check("database_url" not in settings, f"{where}: keep database_url out of config files (use GANTRY_DATABASE_URL)")
    return settings


def check_tokens(where: str, tokens) -> None:
    """gantryd's tokens: list, checked as ConfigSections.tokens checks it (the broker refuses to start otherwise)."""
    if tokens is None:
        return
    if not check(isinstance(tokens, list) and all(isinstance(t, dict) for t in tokens),
                 f"{where}: tokens must be a list of {{name, role, sha256, queues}}"):
        return
    names = [t.get("name") for t in tokens]
    check(len(set(names)) == len(names) and not set(names) & {v.lower() for v in TOKEN_ENV},
          f"{where}: token names must be unique, also against the environment's ({sorted(v.lower() for v in TOKEN_ENV)})")
    for token in tokens:
        name = token.get("name")
        check(set(token) <= {"name", "role", "sha256", "queues"}, f"{where}: token {name!r} has unknown keys {sorted(token)}")
        check(isinstance(name, str) and bool(name), f"{where}: every token needs a name")
        check(token.get("role") in ("producer", "worker", "viewer", "admin"), f"{where}: token {name!r}: role must be producer, worker, viewer or admin")
        check(re.fullmatch(r"[0-9a-fA-F]{64}", str(token.get("sha256", ""))) is not None,
              f"{where}: token {name!r}: sha256 must be 64 hex digits (gantry token new prints them), never the token")
        queues = token.get("queues")
        check(queues is None or (token.get("role") != "admin" and isinstance(queues, list) and bool(queues)),
              f"{where}: token {name!r}: queues must be a non-empty list, and admin tokens take none")


def seconds(text) -> float:
    """systemd / compose durations: 30, 30s, 5min, 1m30s, 1h."""
    if isinstance(text, (int, float)):
        return float(text)
    total, units = 0.0, {"ms": 0.001, "s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600}
    parts = re.findall(r"(\d+(?:\.\d+)?)\s*(ms|min|sec|s|m|h)?", str(text).strip())
    for number, unit in parts:
        total += float(number) * units[unit or "s"]
    return total


# --- example config files for systemd
systemd_gantryd = check_config("deploy/systemd/gantryd.yml", (DEPLOY / "systemd/gantryd.yml").read_text(),
                               GANTRYD_KEYS, "gantryd")
systemd_worker = check_config("deploy/systemd/worker.yml", (DEPLOY / "systemd/worker.yml").read_text(),
                              WORKER_KEYS, "gantry-worker")
check("handlers" in systemd_worker, "deploy/systemd/worker.yml: a worker needs handlers")
DEFAULT_DRAIN_MS, DEFAULT_WORKER_TIMEOUT_MS = 10_000, 1_800_000
DEFAULT_HTTP = "127.0.0.1:7441"   # gantryd's default --http (Sources/gantryd/Gantryd.swift)
HTTP_PORT = 7441


def flag_value(command: list[str], flag: str):
    """The value of `--flag VALUE` or `--flag=VALUE` in an argument list, else None."""
    for index, token in enumerate(command):
        if token == flag and index + 1 < len(command):
            return command[index + 1]
        if token.startswith(flag + "="):
            return token.split("=", 1)[1]
    return None


def all_interfaces(address: str, port: int) -> bool:
    """Whether gantryd binds `address` on every interface at `port` (":7441" means 0.0.0.0:7441)."""
    host, _, number = str(address).rpartition(":")
    return host in ("", "0.0.0.0") and number == str(port)

# --- Kubernetes
K8S = DEPLOY / "kubernetes"
objects: list[tuple[Path, dict]] = []
for path in sorted(K8S.glob("*.yaml")):
    for document in load_all(path):
        where = rel(path)
        if not check(isinstance(document, dict), f"{where}: a document is not a mapping"):
            continue
        name = (document.get("metadata") or {}).get("name")
        check(bool(document.get("apiVersion")) and bool(document.get("kind")) and bool(name),
              f"{where}: every object needs apiVersion, kind and metadata.name (got {document.get('kind')} {name})")
        check("namespace" not in (document.get("metadata") or {}),
              f"{where}: {document.get('kind')}/{name} sets a namespace; the set is meant to be namespace-agnostic")
        objects.append((path, document))
        yaml_invocations(f"{where} {document.get('kind')}/{name}", document)

for required in ("broker-deployment.yaml", "broker-service.yaml", "worker-deployment.yaml", "configmap.yaml",
                 "secret.example.yaml", "migrate-job.yaml"):
    check((K8S / required).exists(), f"deploy/kubernetes/{required} is missing")


def find(kind: str, name: str) -> dict:
    for _, document in objects:
        if document.get("kind") == kind and document.get("metadata", {}).get("name") == name:
            return document
    return {}


configmaps = {d["metadata"]["name"]: d for _, d in objects if d.get("kind") == "ConfigMap"}
secrets = {d["metadata"]["name"]: d for _, d in objects if d.get("kind") == "Secret"}
k8s_gantryd, k8s_worker = {}, {}
for name, configmap in configmaps.items():
    data = configmap.get("data") or {}
    if "gantryd.yml" in data:
        k8s_gantryd = check_config(f"deploy/kubernetes ConfigMap/{name} gantryd.yml", data["gantryd.yml"],
                                   GANTRYD_KEYS, "gantryd")
        check(str(k8s_gantryd.get("listen", "")).startswith("0.0.0.0:7440"),
              f"ConfigMap/{name} gantryd.yml: brokers in pods must listen on 0.0.0.0:7440")
    if "worker.yml" in data:
        k8s_worker = check_config(f"deploy/kubernetes ConfigMap/{name} worker.yml", data["worker.yml"],
                                  WORKER_KEYS, "gantry-worker")


def pod_spec(document: dict) -> dict:
    return ((document.get("spec") or {}).get("template") or {}).get("spec") or {}


def check_workload(document: dict) -> None:
    kind, name = document["kind"], document["metadata"]["name"]
    where = f"{kind}/{name}"
    spec = document.get("spec") or {}
    template_labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
    if kind == "Deployment":
        selector = (spec.get("selector") or {}).get("matchLabels") or {}
        check(bool(selector) and all(template_labels.get(k) == v for k, v in selector.items()),
              f"{where}: spec.selector.matchLabels {selector} does not match the pod labels {template_labels}")
    pod = pod_spec(document)
    volumes = {v.get("name"): v for v in pod.get("volumes") or []}
    for container in (pod.get("initContainers") or []) + (pod.get("containers") or []):
        cwhere = f"{where} container {container.get('name')}"
        check(bool(container.get("image")), f"{cwhere}: no image")
        check(bool(container.get("resources", {}).get("requests")), f"{cwhere}: no resource requests")
        mounts = {m.get("mountPath"): m.get("name") for m in container.get("volumeMounts") or []}
        for mount_name in mounts.values():
            check(mount_name in volumes, f"{cwhere}: mounts volume {mount_name!r}, which the pod does not define")
        for env in container.get("env") or []:
            ref = (env.get("valueFrom") or {}).get("secretKeyRef")
            if ref:
                secret = secrets.get(ref.get("name"), {})
                keys = set((secret.get("stringData") or {}) | (secret.get("data") or {}))
                check(ref.get("key") in keys,
                      f"{cwhere}: env {env.get('name')} reads key {ref.get('key')!r} of Secret {ref.get('name')!r}, "
                      f"which secret.example.yaml does not define")
        command = [str(c) for c in (container.get("command") or []) + (container.get("args") or [])]
        if "--config" in command and command.index("--config") + 1 < len(command):
            config_path = command[command.index("--config") + 1]
            directory, file_name = config_path.rsplit("/", 1)
            volume = volumes.get(mounts.get(directory), {})
            configmap = (volume.get("configMap") or {}).get("name")
            items = [i.get("path") for i in (volume.get("configMap") or {}).get("items") or []]
            check(configmap in configmaps and (file_name in items or (not items and file_name in
                                                                      configmaps[configmap].get("data", {}))),
                  f"{cwhere}: --config {config_path} is not a file of a mounted ConfigMap")
    for volume in volumes.values():
        configmap = (volume.get("configMap") or {}).get("name")
        if configmap:
            check(configmap in configmaps, f"{where}: volume uses ConfigMap {configmap!r}, which is not defined here")
            for item in (volume["configMap"].get("items") or []):
                check(item.get("key") in (configmaps.get(configmap, {}).get("data") or {}),
                      f"{where}: ConfigMap {configmap} has no key {item.get('key')!r}")


for _, document in objects:
    if document.get("kind") in ("Deployment", "Job"):
        check_workload(document)

broker = find("Deployment", "gantry-broker")
if check(bool(broker), "deploy/kubernetes: no Deployment gantry-broker"):
    pod = pod_spec(broker)
    check(broker["spec"].get("replicas") == 3, "Deployment/gantry-broker: want 3 replicas")
    containers = pod.get("containers") or []
    main = next((c for c in containers if "gantryd" in (c.get("command") or [""])[0]), {})
    check(bool(main), "Deployment/gantry-broker: no container runs gantryd")
    ports = {p.get("name"): p.get("containerPort") for p in main.get("ports") or []}
    check(7440 in ports.values(), "Deployment/gantry-broker: the gantryd container must expose containerPort 7440")
    check(HTTP_PORT in ports.values(),
          f"Deployment/gantry-broker: the gantryd container must expose containerPort {HTTP_PORT} (HTTP: /live, /ready, /metrics)")
    main_command = [str(c) for c in (main.get("command") or []) + (main.get("args") or [])]
    http_address = flag_value(main_command, "--http") or k8s_gantryd.get("http", DEFAULT_HTTP)
    check(all_interfaces(http_address, HTTP_PORT),
          f"Deployment/gantry-broker: gantryd serves HTTP on {http_address}; the kubelet and Prometheus reach the pod "
          f"from outside it, so set --http 0.0.0.0:{HTTP_PORT} or http: 0.0.0.0:{HTTP_PORT} in gantryd.yml")
    for probe, path in (("livenessProbe", "/live"), ("readinessProbe", "/ready")):
        settings = main.get(probe) or {}
        get = settings.get("httpGet") or {}
        check(get.get("path") == path and (get.get("port") == HTTP_PORT or ports.get(get.get("port")) == HTTP_PORT),
              f"Deployment/gantry-broker: {probe} must be an httpGet probe of {path} on port {HTTP_PORT} "
              f"(got {settings})")
        check(settings.get("timeoutSeconds", 1) < settings.get("periodSeconds", 10),
              f"Deployment/gantry-broker: {probe} timeoutSeconds must be shorter than its periodSeconds")
    annotations = (broker["spec"].get("template", {}).get("metadata") or {}).get("annotations") or {}
    for key, wanted in (("prometheus.io/scrape", "true"), ("prometheus.io/port", str(HTTP_PORT)),
                        ("prometheus.io/path", "/metrics")):
        check(annotations.get(key) == wanted,
              f"Deployment/gantry-broker: pod template annotation {key} must be the string {wanted!r} "
              f"(got {annotations.get(key)!r}; annotation values must be quoted strings)")
    env_names = {e.get("name") for e in main.get("env") or []}
    check("GANTRY_DATABASE_URL" in env_names, "Deployment/gantry-broker: GANTRY_DATABASE_URL must come from the Secret")
    migrates = [c for c in pod.get("initContainers") or [] if (c.get("command") or [])[:2] == ["gantryd", "migrate"]]
    check(bool(migrates) or bool(find("Job", "gantry-migrate")),
          "deploy/kubernetes: nothing runs `gantryd migrate` (init container or Job)")
    drain = k8s_gantryd.get("drain_grace_ms", DEFAULT_DRAIN_MS) / 1000
    pre_stop = ((main.get("lifecycle") or {}).get("preStop") or {}).get("exec", {}).get("command") or []
    pause = float(pre_stop[-1]) if pre_stop[:1] == ["sleep"] else 0
    grace = pod.get("terminationGracePeriodSeconds", 30)
    check(grace > drain + pause,
          f"Deployment/gantry-broker: terminationGracePeriodSeconds {grace} must exceed drain_grace_ms ({drain:g} s) "
          f"plus the preStop pause ({pause:g} s)")

service = find("Service", "gantry-broker")
if check(bool(service), "deploy/kubernetes: no Service gantry-broker"):
    selector = service["spec"].get("selector") or {}
    labels = (broker.get("spec", {}).get("template", {}).get("metadata") or {}).get("labels") or {}
    check(bool(selector) and all(labels.get(k) == v for k, v in selector.items()),
          f"Service/gantry-broker: selector {selector} does not select the broker pods {labels}")
    port = (service["spec"].get("ports") or [{}])[0]
    check(port.get("port") == 7440, "Service/gantry-broker: must serve port 7440 (as its first port)")
    broker_main = next((c for c in pod_spec(broker).get("containers") or []
                        if "gantryd" in (c.get("command") or [""])[0]), {})
    container_ports = {p.get("name"): p.get("containerPort") for p in broker_main.get("ports") or []}
    for service_port in service["spec"].get("ports") or []:
        target = service_port.get("targetPort", service_port.get("port"))
        check(target in container_ports or target in container_ports.values(),
              f"Service/gantry-broker: port {service_port.get('name')} targets {target!r}, which the gantryd "
              f"container does not expose ({container_ports})")
        check(len(service["spec"]["ports"]) == 1 or bool(service_port.get("name")),
              "Service/gantry-broker: name every port when there are several")
    check(service["spec"].get("type", "ClusterIP") == "ClusterIP",
          "Service/gantry-broker: keep it ClusterIP (the example has no TLS: tokens and job arguments cross the "
          "network in clear)")

worker = find("Deployment", "gantry-worker")
if check(bool(worker), "deploy/kubernetes: no Deployment gantry-worker"):
    pod = pod_spec(worker)
    timeout = k8s_worker.get("timeout_ms", DEFAULT_WORKER_TIMEOUT_MS) / 1000
    grace = pod.get("terminationGracePeriodSeconds", 30)
    check(grace > timeout, f"Deployment/gantry-worker: terminationGracePeriodSeconds {grace} must exceed the "
                           f"worker's timeout_ms ({timeout:g} s): running commands finish on SIGTERM")
    check(bool(k8s_worker.get("broker")) or any(
        e.get("name") == "GANTRY_URL" for c in pod.get("containers") or [] for e in c.get("env") or []),
          "Deployment/gantry-worker: no broker: in worker.yml and no GANTRY_URL: it would dial 127.0.0.1")

job = find("Job", "gantry-migrate")
if check(bool(job), "deploy/kubernetes: no Job gantry-migrate (migrate-job.yaml)"):
    commands = [c.get("command") for c in pod_spec(job).get("containers") or []]
    check(any((c or [])[:2] == ["gantryd", "migrate"] for c in commands), "Job/gantry-migrate: must run `gantryd migrate`")

# --- compose
dockerfile_text = (DEPLOY / "Dockerfile").read_text()
compose_path = DEPLOY / "compose.yml"
compose = (load_all(compose_path) or [{}])[0]
services = compose.get("services") or {}
check(isinstance(services, dict) and bool(services), "deploy/compose.yml: no services")
yaml_invocations("deploy/compose.yml", services)
check(str((services.get("postgres") or {}).get("image", "")).startswith("postgres:15"),
      "deploy/compose.yml: postgres must be postgres:15")
check(((services.get("migrate") or {}).get("command") or [])[:2] == ["gantryd", "migrate"],
      "deploy/compose.yml: the migrate service must run `gantryd migrate`")
brokers = {name: s for name, s in services.items() if (s.get("command") or [""])[0] == "gantryd"
           and "migrate" not in (s.get("command") or [])}
check(len(brokers) >= 2, f"deploy/compose.yml: want two brokers, found {sorted(brokers)}")
for name, service_ in brokers.items():
    command = service_.get("command") or []
    check("--listen" in command and command[command.index("--listen") + 1].endswith(":7440"),
          f"deploy/compose.yml {name}: must --listen on 0.0.0.0:7440")
    http_address = flag_value([str(c) for c in command], "--http") or DEFAULT_HTTP
    published = [str(p) for p in service_.get("ports") or []]
    if any(p.endswith(f":{HTTP_PORT}") for p in published):
        check(all_interfaces(http_address, HTTP_PORT),
              f"deploy/compose.yml {name}: publishes {HTTP_PORT} but gantryd serves HTTP on {http_address}, which "
              f"Docker cannot forward to: use --http 0.0.0.0:{HTTP_PORT}")
    test = (service_.get("healthcheck") or {}).get("test") or []
    test_text = " ".join(map(str, test)) if isinstance(test, list) else str(test)
    check("/ready" in test_text and f"{HTTP_PORT}" in test_text,
          f"deploy/compose.yml {name}: the healthcheck should ask GET /ready on {HTTP_PORT}")
    if isinstance(test, list) and test[:1] in (["CMD"], ["CMD-SHELL"]):
        program = (" ".join(map(str, test[1:])).split() or [""])[0]
    else:
        program = (test_text.split() or [""])[0]
    program = program.rsplit("/", 1)[-1]
    if program in ("curl", "wget"):
        runtime = re.sub(r"\\\n", " ", dockerfile_text.rsplit("\nFROM ", 1)[-1])
        check(re.search(rf"apt-get install[^\n]*\s{program}(\s|$)", runtime) is not None,
              f"deploy/compose.yml {name}: the healthcheck runs {program}, which deploy/Dockerfile's runtime image "
              "does not install")
    check("GANTRY_DATABASE_URL" in (service_.get("environment") or {}) or "--database-url" in command,
          f"deploy/compose.yml {name}: no database URL")
    check(bool(service_.get("healthcheck")), f"deploy/compose.yml {name}: no healthcheck")
    check(seconds(service_.get("stop_grace_period", "10s")) > DEFAULT_DRAIN_MS / 1000,
          f"deploy/compose.yml {name}: stop_grace_period must exceed the drain grace (10 s)")
    check(str(service_.get("depends_on", {}).get("migrate", {}).get("condition")) == "service_completed_successfully",
          f"deploy/compose.yml {name}: must wait for migrate to complete")
workers = {name: s for name, s in services.items() if (s.get("command") or [""])[0] == "gantry-worker"}
check(len(workers) >= 1, "deploy/compose.yml: no gantry-worker service")
for name, service_ in workers.items():
    command = [str(c) for c in service_.get("command") or []]
    check("--handler" in command, f"deploy/compose.yml {name}: a worker needs --handler TYPE=COMMAND")
    timeout = int(command[command.index("--timeout-ms") + 1]) / 1000 if "--timeout-ms" in command else 1800
    check(seconds(service_.get("stop_grace_period", "10s")) > timeout,
          f"deploy/compose.yml {name}: stop_grace_period must exceed --timeout-ms")
for name, service_ in services.items():
    for dependency in service_.get("depends_on") or {}:
        check(dependency in services, f"deploy/compose.yml {name}: depends on unknown service {dependency}")
    for port in service_.get("ports") or []:
        check(str(port).startswith("127.0.0.1:") or name == "postgres",
              f"deploy/compose.yml {name}: publish 7440 and 7441 on 127.0.0.1 only (no TLS in compose.yml: tokens and "
              f"job arguments would cross the network in clear), got {port}")

# --- every other YAML file parses
for path in sorted(DEPLOY.rglob("*.y*ml")):
    if path.parent != K8S and path != compose_path:
        load_all(path)

# ---------------------------------------------------------------------------------------------------------
# systemd
# ---------------------------------------------------------------------------------------------------------


def unit(path: Path) -> dict[str, dict[str, list[str]]]:
    sections: dict[str, dict[str, list[str]]] = {}
    current = None
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
        elif "=" in line and current is not None:
            key, value = line.split("=", 1)
            current.setdefault(key.strip(), []).append(value.strip())
    return sections


def one(sections, section, key) -> str:
    values = sections.get(section, {}).get(key) or [""]
    return values[-1]


for name, settings, extra in (("gantryd.service", systemd_gantryd, {}), ("gantry-worker.service", systemd_worker, {})):
    path = DEPLOY / "systemd" / name
    if not check(path.exists(), f"deploy/systemd/{name} is missing"):
        continue
    sections = unit(path)
    where = f"deploy/systemd/{name}"
    for key, wanted in (("Type", ("exec", "simple")), ("KillSignal", ("SIGTERM",)), ("Restart", ("on-failure",)),
                        ("NoNewPrivileges", ("yes", "true")), ("ProtectSystem", ("strict",)),
                        ("PrivateTmp", ("yes", "true")), ("LimitNOFILE", ("65536",))):
        check(one(sections, "Service", key) in wanted, f"{where}: want {key}={'|'.join(wanted)}")
    check(one(sections, "Service", "User") not in ("", "root"), f"{where}: run as a dedicated User=")
    check("Install" in sections, f"{where}: no [Install] section")
    stop = seconds(one(sections, "Service", "TimeoutStopSec") or "90s")
    if name == "gantryd.service":
        check(one(sections, "Service", "EnvironmentFile").lstrip("-") != "", f"{where}: no EnvironmentFile= for GANTRY_DATABASE_URL")
        check(any(re.match(r"\S*/gantryd migrate\b", v) for v in sections["Service"].get("ExecStartPre", [])),
              f"{where}: want ExecStartPre=/usr/local/bin/gantryd migrate")
        drain = settings.get("drain_grace_ms", DEFAULT_DRAIN_MS) / 1000
        check(stop > drain, f"{where}: TimeoutStopSec ({stop:g} s) must exceed drain_grace_ms ({drain:g} s)")
        config = re.search(r"--config\s+(\S+)", one(sections, "Service", "ExecStart"))
        check(bool(config) and config.group(1).endswith("/gantryd.yml"), f"{where}: ExecStart should use --config .../gantryd.yml")
        check("http" in settings or "--http" in one(sections, "Service", "ExecStart"),
              f"{where}: set the HTTP address explicitly (http: in gantryd.yml or --http), so operators know where "
              "/live, /ready and /metrics are")
    else:
        timeout = settings.get("timeout_ms", DEFAULT_WORKER_TIMEOUT_MS) / 1000
        check(stop > timeout, f"{where}: TimeoutStopSec ({stop:g} s) must exceed worker.yml's timeout_ms ({timeout:g} s)")
        check(one(sections, "Service", "KillMode") == "mixed",
              f"{where}: want KillMode=mixed, so SIGTERM lets running commands finish")
    for key in sections.get("Service", {}):
        check(key != "StartLimitIntervalSec", f"{where}: StartLimitIntervalSec belongs in [Unit]")

analyze = shutil.which("systemd-analyze")
if analyze:
    units = [str(DEPLOY / "systemd" / n) for n in ("gantryd.service", "gantry-worker.service")]
    result = subprocess.run([analyze, "verify", *units], capture_output=True, text=True)
    complaints = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()
                  and not re.search(r"Command /usr/local/bin/gantry(d|-worker) is not executable: No such file", line)]
    check(not complaints, "systemd-analyze verify: " + " | ".join(complaints))
    notes.append("systemd-analyze verify: clean apart from /usr/local/bin/gantryd and gantry-worker not being installed here")
else:
    notes.append("systemd-analyze not installed: unit files checked by check.py's own rules only")

# ---------------------------------------------------------------------------------------------------------
# Dockerfile
# ---------------------------------------------------------------------------------------------------------

dockerfile = (DEPLOY / "Dockerfile").read_text()
tools = re.search(r"swift-tools-version:\s*(\d+)\.(\d+)", (ROOT / "Package.swift").read_text())
swift_image = re.search(r"SWIFT_IMAGE=swift:(\d+)\.(\d+)", dockerfile)
if check(bool(tools and swift_image), "deploy/Dockerfile: want ARG SWIFT_IMAGE=swift:X.Y (and Package.swift a tools version)"):
    check(tuple(map(int, swift_image.groups())) >= tuple(map(int, tools.groups())),
          f"deploy/Dockerfile: swift:{'.'.join(swift_image.groups())} cannot build a package with "
          f"swift-tools-version {'.'.join(tools.groups())}")
for product in ("gantryd", "gantry-worker", "gantry"):
    check(re.search(rf"--product {re.escape(product)}(?![\w-])", dockerfile) is not None,
          f"deploy/Dockerfile: does not build --product {product}")
    check(re.search(rf"^COPY --from=build [^\n]*/{re.escape(product)}(?![\w-])", dockerfile, re.M) is not None,
          f"deploy/Dockerfile: does not copy {product} into the runtime image")
check("FROM debian:bookworm-slim" in dockerfile, "deploy/Dockerfile: runtime stage should be debian:bookworm-slim")
check(re.search(r"^USER\s+(?!root|0\b)", dockerfile, re.M) is not None, "deploy/Dockerfile: run as a non-root USER")
exposed = {port for line in re.findall(r"^EXPOSE\s+(.*)$", dockerfile, re.M) for port in line.split()}
check({"7440", str(HTTP_PORT)} <= {p.split("/")[0] for p in exposed},
      f"deploy/Dockerfile: EXPOSE 7440 (JSON-RPC) and {HTTP_PORT} (HTTP), got {sorted(exposed)}")

# ---------------------------------------------------------------------------------------------------------
# Tokens, the loopback rule and TLS
# ---------------------------------------------------------------------------------------------------------
# gantryd refuses to start with no token when --listen is not loopback, unless --allow-unauthenticated. Every
# broker here listens beyond loopback, so each must surely get a token (a required compose variable, a Secret
# key that is not optional, a line of the systemd env file, tokens: in its file), and none may opt out: deploy/
# is meant to be secure as it stands. Workers must send (GANTRY_TOKEN) the token the brokers take as the worker
# one; no example file may hold a token that would work; TLS, when on, must not break the probes.


def listen_host(address) -> str:
    """The host gantryd binds for --listen ADDRESS (parseListenAddress: ":7440" is 0.0.0.0, "7440" loopback)."""
    parts = str(address).split(":")
    host = ":".join(parts[:-1]) if len(parts) > 1 else "127.0.0.1"
    return host or "0.0.0.0"


def is_loopback(host: str) -> bool:
    return host in LOOPBACK_NAMES or host.startswith(LOOPBACK_PREFIXES)


def check_broker(where: str, command: list[str], settings: dict, sure_tokens: set[str]) -> None:
    """command: gantryd's arguments; settings: its config file; sure_tokens: the token variables it surely gets."""
    listen = flag_value(command, "--listen") or settings.get("listen") or DEFAULT_LISTEN
    opted_out = "--allow-unauthenticated" in command or settings.get("allow_unauthenticated") is True
    check(not opted_out, f"{where}: --allow-unauthenticated (allow_unauthenticated: true) opts out of tokens; the "
                         "deployments in deploy/ give the broker a token instead")
    if not is_loopback(listen_host(listen)):
        check(bool(sure_tokens) or bool(settings.get("tokens")) or opted_out,
              f"{where}: listens on {listen} but surely gets no token (none of {', '.join(TOKEN_ENV)}, no tokens: in "
              "its config file): gantryd refuses to start on a non-loopback address without one")


def env_of(service: dict) -> dict:
    environment = service.get("environment") or {}
    if isinstance(environment, list):
        environment = dict(item.split("=", 1) if "=" in item else (item, "") for item in environment)
    return {k: "" if v is None else str(v) for k, v in environment.items()}


def env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines of a systemd EnvironmentFile (comments and blank lines skipped)."""
    values = {}
    for line in path.read_text().splitlines() if path.exists() else []:
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            values[key.strip()] = value.strip().strip("\"'")
    return values


def check_placeholder(where: str, variable: str, value: str) -> None:
    check(not value or len(value) < MIN_TOKEN_LENGTH,
          f"{where}: {variable} is {len(value)} characters: an example token must be shorter than the "
          f"{MIN_TOKEN_LENGTH} gantryd accepts, so a copy nobody edited refuses to start instead of accepting a "
          "token everybody can read here")


REQUIRED_VARIABLE = re.compile(r"\$\{(\w+):?\?[^}]*\}")            # ${VAR:?message}: compose stops without it
INTERPOLATION = re.compile(r"\$\{(\w+)(?::?[-?][^}]*)?\}")

# --- compose
compose_token_sources: dict[str, dict[str, str]] = {}   # broker -> {compose variable: role}
for name, service_ in brokers.items():
    where, environment = f"deploy/compose.yml {name}", env_of(service_)
    command = [str(c) for c in service_.get("command") or []]
    sources = {}
    for variable in TOKEN_ENV:
        if variable in environment:
            match = INTERPOLATION.fullmatch(environment[variable])
            check(bool(match), f"{where}: {variable} must come from outside (${{{variable}:?...}}), never be written "
                               "in compose.yml")
            if match:
                sources[match.group(1)] = TOKEN_ENV[variable]
    compose_token_sources[name] = sources
    check_broker(where, command, {}, {v for v in TOKEN_ENV if REQUIRED_VARIABLE.fullmatch(environment.get(v, ""))})
    check(flag_value(command, "--tls-cert") is None,
          f"{where}: with --tls-cert the HTTP port speaks TLS, which the /dev/tcp healthcheck cannot")
for name, service_ in workers.items():
    where, value = f"deploy/compose.yml {name}", env_of(service_).get("GANTRY_TOKEN", "")
    match = REQUIRED_VARIABLE.fullmatch(value)
    if check(bool(match), f"{where}: needs GANTRY_TOKEN: \"${{GANTRY_WORKER_TOKEN:?...}}\" (required; the brokers "
                          f"refuse a worker without a token), got {value!r}"):
        for broker_name, sources in compose_token_sources.items():
            check(sources.get(match.group(1)) == "worker",
                  f"{where}: GANTRY_TOKEN is ${{{match.group(1)}}}, which {broker_name} does not take as its worker "
                  f"token (it takes {sources})")

# --- Kubernetes
def secret_value(ref: dict) -> str | None:
    secret = secrets.get(ref.get("name"), {})
    if ref.get("key") in (secret.get("stringData") or {}):
        return str(secret["stringData"][ref["key"]])
    if ref.get("key") in (secret.get("data") or {}):
        return base64.b64decode(str(secret["data"][ref["key"]])).decode(errors="replace")
    return None


def token_refs(container: dict) -> dict[str, dict]:
    """Token variables (gantryd's and GANTRY_TOKEN) of a container -> their env entry."""
    return {e.get("name"): e for e in container.get("env") or [] if e.get("name") in (*TOKEN_ENV, "GANTRY_TOKEN")}


broker_refs: dict[tuple, str] = {}   # (Secret, key) -> role, as the broker container reads it
if broker:
    main = next((c for c in pod_spec(broker).get("containers") or [] if "gantryd" in (c.get("command") or [""])[0]), {})
    main_command = [str(c) for c in (main.get("command") or []) + (main.get("args") or [])]
    sure = set()
    for variable, entry in token_refs(main).items():
        ref = (entry.get("valueFrom") or {}).get("secretKeyRef")
        check(bool(ref) and "value" not in entry,
              f"Deployment/gantry-broker: {variable} must come from a Secret (valueFrom.secretKeyRef), never a value "
              "in the manifest")
        if ref and variable in TOKEN_ENV:
            broker_refs[(ref.get("name"), ref.get("key"))] = TOKEN_ENV[variable]
            if not ref.get("optional"):
                sure.add(variable)
    check_broker("Deployment/gantry-broker", main_command, k8s_gantryd, sure)
    tls_on = bool(flag_value(main_command, "--tls-cert") or k8s_gantryd.get("tls_cert"))
    mutual = bool(flag_value(main_command, "--tls-client-ca") or k8s_gantryd.get("tls_client_ca"))
    for probe in ("livenessProbe", "readinessProbe"):
        get = (main.get(probe) or {}).get("httpGet")
        if get:
            check(str(get.get("scheme", "HTTP")).upper() == ("HTTPS" if tls_on else "HTTP"),
                  f"Deployment/gantry-broker: {probe} must use scheme: {'HTTPS' if tls_on else 'HTTP'} "
                  f"(TLS is {'on' if tls_on else 'off'} in gantry-config)")
            check(not mutual, f"Deployment/gantry-broker: {probe} is an httpGet probe, but with tls_client_ca the HTTP "
                              "port wants a client certificate the kubelet cannot show: use tcpSocket probes")
if worker:
    container = next((c for c in pod_spec(worker).get("containers") or []
                      if "gantry-worker" in (c.get("command") or [""])[0]), {})
    entry = token_refs(container).get("GANTRY_TOKEN", {})
    ref = (entry.get("valueFrom") or {}).get("secretKeyRef")
    if check(bool(ref) and "value" not in entry and not ref.get("optional"),
             "Deployment/gantry-worker: needs GANTRY_TOKEN from the gantry-tokens Secret (a secretKeyRef, not "
             "optional): the brokers refuse a worker without a token"):
        role = broker_refs.get((ref.get("name"), ref.get("key")))
        check(role == "worker", f"Deployment/gantry-worker: GANTRY_TOKEN reads {ref.get('name')}/{ref.get('key')}, "
                                f"which the brokers take as {'the ' + role + ' token' if role else 'no token at all'}, "
                                "not as the worker token")
token_keys: dict[tuple, str] = {}   # (Secret, key) read as a token anywhere -> the first variable reading it
for _, document in objects:
    if document.get("kind") in ("Deployment", "Job"):
        for container in (pod_spec(document).get("initContainers") or []) + (pod_spec(document).get("containers") or []):
            for variable, entry in token_refs(container).items():
                ref = (entry.get("valueFrom") or {}).get("secretKeyRef")
                if ref:
                    token_keys.setdefault((ref.get("name"), ref.get("key")), variable)
for (secret_name, key), variable in token_keys.items():
    value = secret_value({"name": secret_name, "key": key})
    if value is not None:
        check_placeholder(f"deploy/kubernetes/secret.example.yaml {secret_name}/{key}", variable, value)

# --- systemd
gantryd_unit = unit(DEPLOY / "systemd" / "gantryd.service")
worker_unit = unit(DEPLOY / "systemd" / "gantry-worker.service")


def example_env(sections: dict) -> tuple[str, dict[str, str]]:
    """The example (deploy/systemd/NAME.example) of a unit's EnvironmentFile=/etc/gantry/NAME."""
    target = one(sections, "Service", "EnvironmentFile").lstrip("-")
    path = DEPLOY / "systemd" / (Path(target).name + ".example")
    check(bool(target) and path.exists(), f"deploy/systemd: EnvironmentFile={target} has no example {rel(path)}")
    return rel(path), env_file(path)


env_where, env_values = example_env(gantryd_unit)
for variable in TOKEN_ENV:
    check_placeholder(env_where, variable, env_values.get(variable, ""))
exec_start = one(gantryd_unit, "Service", "ExecStart").split()
check_broker("deploy/systemd/gantryd.service", exec_start[1:], systemd_gantryd,
             {v for v in TOKEN_ENV if env_values.get(v)})
check(not one(gantryd_unit, "Service", "EnvironmentFile").startswith("-"),
      "deploy/systemd/gantryd.service: EnvironmentFile= must be required (no '-'): it holds the database URL and tokens")
env_where, env_values = example_env(worker_unit)
check(not one(worker_unit, "Service", "EnvironmentFile").startswith("-"),
      "deploy/systemd/gantry-worker.service: EnvironmentFile= must be required (no '-'): it holds GANTRY_TOKEN, "
      "without which the brokers refuse the worker")
check("GANTRY_TOKEN" in env_values, f"{env_where}: needs GANTRY_TOKEN= (the brokers' worker token)")
check_placeholder(env_where, "GANTRY_TOKEN", env_values.get("GANTRY_TOKEN", ""))

# --- Dockerfile: the default command listens on 0.0.0.0, so the image must say which variable to set.
dockerfile_cmd = re.search(r"^CMD\s+(\[.*\])\s*$", dockerfile_text, re.M)
if check(bool(dockerfile_cmd), "deploy/Dockerfile: want a CMD in JSON form"):
    cmd = json.loads(dockerfile_cmd.group(1))
    if cmd[:1] == ["gantryd"]:
        # The image cannot hold a token; it must tell whoever runs it to give one.
        comments = "\n".join(line for line in dockerfile_text.splitlines() if line.startswith("#"))
        check_broker("deploy/Dockerfile CMD", cmd[1:], {}, {v for v in TOKEN_ENV if v in comments})
        listen = flag_value(cmd[1:], "--listen") or DEFAULT_LISTEN
        if not is_loopback(listen_host(listen)):
            check(all(variable in comments for variable in TOKEN_ENV),
                  f"deploy/Dockerfile: CMD listens on {listen}, which gantryd refuses without a token: its comments must "
                  f"name the variables to set ({', '.join(TOKEN_ENV)})")

# --- the README's Prometheus configs send the admin token
readme = (DEPLOY / "README.md").read_text()
scrape_jobs = []
for block in re.findall(r"```ya?ml\n(.*?)```", readme, re.S):
    if "scrape_configs:" in block:
        try:
            scrape_jobs += (yaml.safe_load(block) or {}).get("scrape_configs") or []
        except yaml.YAMLError as error:
            check(False, f"deploy/README.md: a scrape_configs example is not valid YAML: {error}")
check(bool(scrape_jobs), "deploy/README.md: no Prometheus scrape_configs example")
for job in scrape_jobs:
    authorization = job.get("authorization") or {}
    check(str(authorization.get("type", "Bearer")) == "Bearer"
          and bool(authorization.get("credentials_file") or authorization.get("credentials")),
          f"deploy/README.md: scrape job {job.get('job_name')!r} must send the admin token "
          "(authorization: {credentials_file: ...}): /metrics answers 401 without it")

# ---------------------------------------------------------------------------------------------------------
# Schema validators, when installed
# ---------------------------------------------------------------------------------------------------------


def run(command: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True, **kwargs)


docker = shutil.which("docker")
# compose.yml's required variables (the tokens), set to throwaway values of an acceptable length for the check.
compose_env = {**os.environ, **{variable: "x" * MIN_TOKEN_LENGTH
                                for variable in REQUIRED_VARIABLE.findall(compose_path.read_text())}}
compose_v2 = docker and run([docker, "compose", "version"]).returncode == 0
if compose_v2:
    result = run([docker, "compose", "-f", str(compose_path), "config", "-q"], env=compose_env)
    check(result.returncode == 0, f"docker compose config: {result.stderr.strip()}")
    notes.append("compose.yml: checked by `docker compose config`")
elif shutil.which("docker-compose"):
    # docker-compose 1.x predates the top-level `name:` key; check the rest against its schema.
    document = dict(compose)
    document.pop("name", None)
    result = run(["docker-compose", "--project-directory", str(DEPLOY), "-f", "-", "config", "-q"],
                 input=yaml.safe_dump(document), env=compose_env)
    check(result.returncode == 0, f"docker-compose config: {(result.stderr or result.stdout).strip()}")
    notes.append("compose.yml: checked by docker-compose 1.x `config` (top-level name: set aside)")
else:
    notes.append("compose.yml: no docker compose here, checked by PyYAML and check.py's own rules only")

validator = shutil.which("kubernetes-validate")
if validator:
    files = [str(p) for p in sorted(K8S.glob("*.yaml"))]
    for version in ("1.27.0", None):
        result = run([validator, "--strict", "--quiet", *(["-k", version] if version else []), *files])
        check(result.returncode == 0, f"kubernetes-validate {version or 'latest'}: {(result.stdout + result.stderr).strip()}")
    notes.append("kubernetes/: checked by kubernetes-validate --strict against 1.27 and its newest schemas")
else:
    notes.append("kubernetes/: kubernetes-validate not installed (pip install kubernetes-validate): "
                 "checked by PyYAML and check.py's own rules only")

# ---------------------------------------------------------------------------------------------------------

for note in notes:
    print(f"note: {note}")
if problems:
    for problem in problems:
        print(f"PROBLEM: {problem}", file=sys.stderr)
    print(f"deploy check: {passed} passed, {len(problems)} failed", file=sys.stderr)
    sys.exit(1)
print(f"deploy check: {passed} passed, 0 failed")
