"""Container health probe: `python -m common.healthcheck TARGET [SERVICE] [--timeout S]`.

TARGET is either a gRPC address (HOST:PORT), asked through the standard
grpc.health.v1 Check for SERVICE ("" = the whole server), or an http(s):// URL, healthy
on any 2xx. Exit status 0 when healthy, 1 otherwise, with one line on stderr saying
why, which `docker inspect` shows. The image ships no curl or grpc_health_probe, so
compose health checks run this with the interpreter the services already have.
"""

from __future__ import annotations

import argparse
import sys
import urllib.error
import urllib.request

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


def check_grpc(address: str, service: str, timeout: float) -> str | None:
    """None when the server reports SERVING for `service`, else why not."""
    with grpc.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            response = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=timeout)
        except grpc.RpcError as exc:
            return f"{address}: {exc.code().name}: {exc.details()}"
    if response.status != health_pb2.HealthCheckResponse.SERVING:
        status = health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)
        return f"{address} {service or '(server)'}: {status}"
    return None


def check_http(url: str, timeout: float) -> str | None:
    """None when `url` answers 2xx, else why not."""
    try:
        # The scheme is checked by the caller: only http and https reach here.
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310
            status = response.status
    except urllib.error.HTTPError as exc:
        return f"{url}: HTTP {exc.code}"
    except (urllib.error.URLError, OSError) as exc:
        return f"{url}: {exc}"
    return None if 200 <= status < 300 else f"{url}: HTTP {status}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m common.healthcheck", description=__doc__.split("\n")[0])
    parser.add_argument("target", help="HOST:PORT of a gRPC server, or an http(s):// URL")
    parser.add_argument("service", nargs="?", default="", help="gRPC service name (default: the server)")
    parser.add_argument("--timeout", type=float, default=2.0, help="seconds (default 2)")
    args = parser.parse_args(argv)
    if args.target.startswith(("http://", "https://")):
        if args.service:
            parser.error("SERVICE applies to gRPC targets only")
        problem = check_http(args.target, args.timeout)
    else:
        problem = check_grpc(args.target, args.service, args.timeout)
    if problem:
        print(f"unhealthy: {problem}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
