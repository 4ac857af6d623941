"""`python -m user_svc` serves; `python -m user_svc create-staff --username U --email E`
creates (or promotes) a staff user. The password comes from STAFF_PASSWORD, else from
standard input when it is not a terminal, else from a prompt."""

from __future__ import annotations

import argparse
import getpass
import os
import sys

from common.service_main import run_service
from common.settings import load_settings
from user_svc.server import build, build_domain, metrics_collectors
from user_svc.staff import StaffError, create_staff


def _ask_password() -> str:
    if password := os.environ.get("STAFF_PASSWORD"):
        return password
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\n")
    password = getpass.getpass("Password: ")
    if getpass.getpass("Password (again): ") != password:
        raise StaffError("the passwords differ")
    return password


def _create_staff_command(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m user_svc create-staff")
    parser.add_argument("--username", required=True)
    parser.add_argument("--email", required=True)
    args = parser.parse_args(argv)
    domain = build_domain(load_settings())
    try:
        print(create_staff(domain, args.username, args.email, _ask_password))
    except StaffError as error:
        print(f"create-staff: {error}", file=sys.stderr)
        return 1
    finally:
        domain.database.dispose()
    return 0


def main(argv: list[str]) -> int:
    if not argv:
        run_service("user_svc", build, metrics_collectors)
        return 0
    if argv[0] == "create-staff":
        return _create_staff_command(argv[1:])
    print("usage: python -m user_svc [create-staff --username U --email E]", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
