"""`kubectl connector start|stop|fail|status|logs`: the command line and its exit codes."""

from __future__ import annotations

import argparse
import datetime
import sys
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NoReturn

from connector_operator.kubectl_plugin import view
from connector_operator.kubectl_plugin.outcome import TARGET, Exit, judge, where
from connector_operator.models import Action

if TYPE_CHECKING:
    from connector_operator.kubectl_plugin.client import Cluster

EPILOG = """exit codes of start, stop and fail with --wait:
  0  the Connector reached the phase (Running, Stopped, Failed)
  1  usage, a Connector not found, or the API server refused or did not answer
  2  the operator refused the action, or the Connector cannot get there (Stalled, Failed)
  3  --timeout ran out on the way (where it stands is printed)"""


class _Parser(argparse.ArgumentParser):
    """A usage error exits 1, as documented: 2 means the Connector cannot get there."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(Exit.ERROR, f"{self.prog}: error: {message}\n")


def _connection(parser: argparse.ArgumentParser, default: object) -> None:
    """kubectl's flags, accepted before and after the command (as kubectl accepts them)."""
    parser.add_argument("-n", "--namespace", default=default,
                        help="the namespace (default: the context's)")  # fmt: skip
    parser.add_argument("--kubeconfig", default=default,
                        help="the kubeconfig (default: KUBECONFIG, ~/.kube/config)")  # fmt: skip
    parser.add_argument("--context", default=default, help="the kubeconfig context")


def parser() -> argparse.ArgumentParser:
    top = _Parser(
        prog="kubectl connector",
        description="Drive and inspect dataspace Connectors (connector-operator).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _connection(top, None)
    common = _Parser(add_help=False)
    _connection(common, argparse.SUPPRESS)  # set after the command: overrides; else kept
    commands = top.add_subparsers(
        dest="command", required=True, metavar="COMMAND", parser_class=_Parser
    )
    for action in Action:
        one = commands.add_parser(
            action.value,
            parents=[common],
            help=f"ask the Connector to {action.value}; --wait for {TARGET[action]}",
        )
        one.add_argument("name")
        one.add_argument("--wait", action="store_true", help=f"wait until {TARGET[action]}")
        one.add_argument("--timeout", type=_seconds, default=300.0, help="seconds (300)")
    status = commands.add_parser(
        "status", parents=[common], help="the Connectors, or one on one screen"
    )
    status.add_argument("name", nargs="?")
    status.add_argument("-A", "--all-namespaces", action="store_true")
    status.add_argument("--events", type=int, default=10, help="last events shown (10)")
    logs = commands.add_parser("logs", parents=[common], help="the logs of the Connector's pod")
    logs.add_argument("name")
    logs.add_argument("-f", "--follow", action="store_true")
    logs.add_argument("--tail", type=int, default=None, help="last lines only")
    logs.add_argument("--plane", help="edc profile: controlplane or dataplane (default: first)")
    return top


def _seconds(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError("must be more than 0")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        # Imported here: without the kubectl extra, the client library is not installed.
        from connector_operator.kubectl_plugin.client import ClientError, Cluster  # noqa: PLC0415
    except ImportError:  # the operator's own install leaves the plugin's client out
        print("error: the kubectl plugin needs its client: pip install "
              "'connector-operator[kubectl]'", file=sys.stderr)  # fmt: skip
        return Exit.ERROR
    try:
        cluster = Cluster(args.kubeconfig, args.context)
        namespace = args.namespace or cluster.default_namespace
        if args.command == "status":
            return _status(cluster, namespace, args)
        if args.command == "logs":
            return _logs(cluster, namespace, args)
        return _act(cluster, namespace, Action(args.command), args)
    except ClientError as error:
        print(f"error: {error}", file=sys.stderr)
        return Exit.ERROR
    except KeyboardInterrupt:
        return 130


def _act(cluster: Cluster, namespace: str, action: Action, args: argparse.Namespace) -> int:
    name = args.name
    cluster.connector(namespace, name)  # not found: said before anything is written
    patched = cluster.request(namespace, name, action.value)
    print(f"connector {namespace}/{name}: {action.value} requested")
    if not args.wait:
        return Exit.REACHED
    deadline = time.monotonic() + args.timeout
    body = patched
    while (outcome := judge(action, body)) is None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            print(f"connector {namespace}/{name}: not {TARGET[action]} after {args.timeout:g}s; "
                  f"now {where(body)}", file=sys.stderr)  # fmt: skip
            return Exit.TIMEOUT
        since = body["metadata"]["resourceVersion"]
        for body in cluster.changes(namespace, name, since, int(remaining) + 1):
            if judge(action, body) is not None or time.monotonic() > deadline:
                break
        else:  # the watch ended (its timeout, or a version too old to follow): read again
            body = cluster.connector(namespace, name)
    stream = sys.stdout if outcome.code is Exit.REACHED else sys.stderr
    print(f"connector {namespace}/{name}: {outcome.message}", file=stream)
    return outcome.code


def _status(cluster: Cluster, namespace: str, args: argparse.Namespace) -> int:
    now = datetime.datetime.now(datetime.UTC)
    if args.name is None:
        scope = None if args.all_namespaces else namespace
        print(view.listing(cluster.connectors(scope), now, namespaces=args.all_namespaces))
        return Exit.REACHED
    body = cluster.connector(namespace, args.name)
    children = [_child(kind, obj) for kind, obj in cluster.owned(body)]
    print(view.screen(body, children, cluster.events(body, args.events), now))
    return Exit.REACHED


def _child(kind: str, obj: dict[str, Any]) -> view.Child:
    name = obj["metadata"]["name"]
    if kind != "Deployment":
        return view.Child(kind, name)
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    ready = f"{status.get('readyReplicas') or 0}/{spec.get('replicas', 0)} ready"
    return view.Child(kind, name, ready)


def _logs(cluster: Cluster, namespace: str, args: argparse.Namespace) -> int:
    body = cluster.connector(namespace, args.name)
    deployments = sorted(
        (obj for kind, obj in cluster.owned(body) if kind == "Deployment"),
        key=lambda d: d["metadata"]["name"],
    )
    if args.plane is not None:
        deployments = [d for d in deployments if d["metadata"]["name"].endswith(f"-{args.plane}")]
    if not deployments:
        print(f"error: connector {namespace}/{args.name} has no workload"
              f"{' of plane ' + args.plane if args.plane else ''}",
              file=sys.stderr)  # fmt: skip
        return Exit.ERROR
    deployment = deployments[0]
    selector = deployment["spec"]["selector"]["matchLabels"]
    pods = [p for p in cluster.pods(namespace, selector) if p["status"].get("phase") == "Running"]
    if not pods:
        phase = (body.get("status") or {}).get("phase") or "no phase yet"
        print(f"error: connector {namespace}/{args.name} has no running pod (it is {phase})",
              file=sys.stderr)  # fmt: skip
        return Exit.ERROR
    pod = max(pods, key=lambda p: p["metadata"].get("creationTimestamp", ""))
    container = pod["spec"]["containers"][0]["name"]
    if len(deployments) > 1:
        others = ", ".join(d["metadata"]["name"] for d in deployments[1:])
        print(f"(logs of {deployment['metadata']['name']}; --plane for {others})",
              file=sys.stderr)  # fmt: skip
    for chunk in cluster.logs(namespace, pod["metadata"]["name"], container, args.tail,
                              args.follow):  # fmt: skip
        sys.stdout.buffer.write(chunk)
        sys.stdout.buffer.flush()
    return Exit.REACHED
