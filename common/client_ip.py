"""Who the client is, across the trust boundary between the edge and the services.

The gRPC ports are reachable by design (grpcurl, internal clients; compose and Kubernetes
bind 0.0.0.0), so a service cannot take a caller's word for anything that limits it.
The REST edge knows the client's address (the socket, or a trusted proxy's hop) and
sends it as `x-client-ip` together with `x-client-ip-mac`: HMAC-SHA256 (RFC 2104) of
the address under the internal key (INTERNAL_KEY, shared by the edge and the services).
A service honours `x-client-ip` only with a valid MAC; otherwise (a direct caller, a
forged or stale header) the client is the call's peer address, which the caller cannot
choose. Every per-client limit of a service therefore holds for direct callers too.

The MAC binds the address, not the call: somebody who can read the traffic between the
edge and a service could replay an address the edge vouched for. That is the same reach
as reading the tokens on that traffic; deployments that must resist it put the internal
network behind mTLS or a network policy (docs/security.md).

Every per-client budget (the contract's rate limits, login backoff, tries at a code)
counts a client by `limit_key`: an IPv6 client by its /64, the usual subnet a host is
given (RFC 7421), in which it may pick any interface identifier (privacy addresses
change daily, RFC 8981), so a host with a /64 does not get a budget per address; an
IPv4 client by its address. A site with a larger prefix (/56, /48) still has one
budget per /64 in it.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from functools import lru_cache

ADDRESS_HEADER = "x-client-ip"
MAC_HEADER = "x-client-ip-mac"
_MAX_ADDRESS_LENGTH = 64  # an IPv6 address with a zone id fits; anything longer is not one


# Every call through the edge carries one (computed by the edge, checked by the service);
# the same few addresses come again and again. Bounded: a stranger's invented addresses
# only push others out.
@lru_cache(maxsize=4096)
def mac(key: bytes, address: str) -> str:
    """The hex MAC that vouches for `address` under `key`."""
    return hmac.new(key, b"taskmgr-client-ip\0" + address.encode(), hashlib.sha256).hexdigest()


def vouched_metadata(key: bytes, address: str) -> list[tuple[str, str]]:
    """The metadata by which a trusted caller (the edge) tells a service who the client is."""
    if not address or not key:
        return []
    address = address[:_MAX_ADDRESS_LENGTH]
    return [(ADDRESS_HEADER, address), (MAC_HEADER, mac(key, address))]


def trusted_address(metadata: dict[str, str], key: bytes) -> str | None:
    """The vouched-for client address in `metadata`, or None when it is absent or its MAC is
    not valid under `key` (compared in constant time)."""
    address, given = metadata.get(ADDRESS_HEADER, ""), metadata.get(MAC_HEADER, "")
    if not (key and address and given) or len(address) > _MAX_ADDRESS_LENGTH:
        return None
    return address if hmac.compare_digest(given.encode(), mac(key, address).encode()) else None


@lru_cache(maxsize=4096)
def limit_key(address: str) -> str:
    """What `address` is counted as by a per-client limit: "2001:db8:1:2::/64" for any
    IPv6 address in that /64, the IPv4 address for an IPv4 one (mapped into IPv6 or
    not), and anything that is not an address (a test's name, "") as given."""
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        return str(ipaddress.IPv6Network((parsed.packed[:8] + bytes(8), 64)))
    return str(parsed)
