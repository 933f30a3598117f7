"""`edgelab serve`: validate the configuration up front, then run the stack under the supervisor.

Configuration errors (a bad DistributionConfig field, a bad settings key, a port clash) are reported here,
before any process starts, with the path of the offending field.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import sys
from pathlib import Path

from edge.cdn.server.tls import ensure_certificates
from edge.control.stack.config import StackConfig, load_stack_config
from edge.control.stack.logview import configure_serve_logging
from edge.control.stack.node import die_with_parent
from edge.control.stack.supervisor import Child, python_module_argv, supervise
from edge.control.stack.tiers import tier_children


def _port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def _node_args(args: argparse.Namespace, cfg: StackConfig) -> list[str]:
    out = ["--state-dir", str(cfg.state_dir)]
    if cfg.settings_path:
        out += ["--settings", str(cfg.settings_path)]
    if cfg.origin_url is not None:  # --origin: the same app mapping (the distribution file exists by now)
        out += ["--origin", cfg.origin_url]
    elif not cfg.demo:  # demo mode is "no distribution given": the children must see the same
        out += ["--distribution", str(cfg.distribution_path)]
    for o in args.pop:
        out += ["--pop", o]
    out += ["--api-port", str(cfg.api_port)]
    if getattr(args, "realistic_cold_starts", False):
        out.append("--realistic-cold-starts")
    if cfg.demo:
        out += ["--origin-port", str(cfg.origin_port)]
    return out


def build_children(args: argparse.Namespace, cfg: StackConfig) -> list[Child]:
    children: list[Child] = []
    common = _node_args(args, cfg)
    if cfg.demo and not args.no_origin:
        children.append(Child("origin", python_module_argv("origin", "--host", "127.0.0.1", "--port",
                                                           str(cfg.origin_port)),
                              health_url=f"http://127.0.0.1:{cfg.origin_port}/__health"))
    control_args = [*common, *(["--watch"] if args.watch else []), "--log-level", args.log_level]
    children.append(Child("control", python_module_argv("edge.control.stack.node", "control", *control_args),
                          health_url=f"http://127.0.0.1:{cfg.api_port}/edgelab/v1/health"))
    children += [Child(f"pop-{pop.name}",
                       python_module_argv("edge.control.stack.node", "pop", "--name", pop.name, *common,
                                          *(["--watch"] if args.watch else []), "--log-level", args.log_level),
                       health_unix=str(cfg.admin_socket(pop.name)))
                 for pop in cfg.pops]
    # after the POPs: a tier node binds a free port, which must not be one a POP is about to bind
    children += tier_children(cfg, common, [*(["--watch"] if args.watch else []), "--log-level", args.log_level])
    return children


def _banner(cfg: StackConfig) -> str:
    lines = ["", "edgelab is up:"]
    if cfg.demo:
        lines.append(f"  origin (demo)      http://127.0.0.1:{cfg.origin_port}")
    lines += [f"  POP {pop.name:<4} {pop.region:<15} http://{pop.host}:{pop.port}"
              + (f"  https://{pop.host}:{pop.https_port}" if pop.https_port is not None else "") for pop in cfg.pops]
    if any(pop.https_port is not None for pop in cfg.pops):
        lines.append(f"  HTTPS trust        {cfg.tls_dir / 'edgelab-ca.pem'}  (curl --cacert FILE)")
    lines.append(f"  Lambda API         http://127.0.0.1:{cfg.api_port}  (boto3 endpoint_url; any credentials)")
    lines.append(f"  dashboard          http://127.0.0.1:{cfg.api_port}/edgelab/")
    if cfg.origin_url is not None:
        lines.append(f"  your app           {cfg.origin_url}")
        lines.append(f"  distribution       {cfg.distribution_path}  (written for --origin: edit it, or copy it "
                     "and pass --distribution)")
    lines.append(f"  state              {cfg.state_dir}")
    lines.append("Press Ctrl+C to stop.")
    return "\n".join(lines)


def serve(args: argparse.Namespace) -> int:
    if os.environ.get("EDGELAB_EXIT_WITH_PARENT"):  # a harness that starts the stack: it stops when they die
        die_with_parent(os.getppid())
    try:
        cfg = load_stack_config(state_dir=args.state_dir, settings=args.settings, distribution=args.distribution,
                                pop_overrides=args.pop, api_port=args.api_port, origin_port=args.origin_port,
                                origin=args.origin)
    except ValueError as exc:  # ConfigError derives from ValueError
        print(f"edgelab: configuration error: {exc}", file=sys.stderr)
        return 2
    configure_serve_logging(args.log_level, "%(asctime)s %(name)s %(levelname)s %(message)s", cfg.state_dir,
                            "serve")
    for line in cfg.distribution.notices:  # one line per field that means nothing locally (config/fields.py)
        print(f"edgelab: note: {line}", flush=True)
    wanted = [("127.0.0.1", cfg.api_port, "API")] + [(p.host, p.port, f"POP {p.name}") for p in cfg.pops]
    wanted += [(p.host, p.https_port, f"POP {p.name} HTTPS") for p in cfg.pops if p.https_port]
    if cfg.demo and not args.no_origin:
        wanted.append(("127.0.0.1", cfg.origin_port, "demo origin"))
    busy = [f"{what} port {port}" for host, port, what in wanted if not _port_free(host, port)]
    if busy:
        print(f"edgelab: cannot start: already in use: {', '.join(busy)}", file=sys.stderr)
        return 2
    Path(cfg.state_dir).mkdir(parents=True, exist_ok=True)
    cfg.run_dir.mkdir(parents=True, exist_ok=True)
    if any(pop.https_port is not None for pop in cfg.pops):  # once, before the POP processes load them
        ensure_certificates(cfg.tls_dir, cfg.distribution.aliases)
    children = build_children(args, cfg)
    try:
        import uvloop

        return uvloop.run(supervise(children, banner=_banner(cfg)))
    except KeyboardInterrupt:  # pragma: no cover - the supervisor handles SIGINT itself
        return 130
    finally:
        asyncio.set_event_loop_policy(None)
