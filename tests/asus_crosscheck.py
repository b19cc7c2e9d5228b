#!/usr/bin/env python3
"""Cross-check of our ASUS emulator against the real Python client (asusrouter 1.21.3, the
library Home Assistant's ha-asusrouter runs on). Driven by tests/asus_crosscheck.rs, which
starts the emulator, installs the package in a venv and compares this script's output with
the emulator's own state.

Usage: asus_crosscheck.py HOST PORT USERNAME PASSWORD
Prints one JSON object: what the client read, or {"error": ...}.
"""

import asyncio
import json
import sys


def plain(value):
    """Makes the library's enums and objects printable."""
    if isinstance(value, dict):
        return {str(plain(k)): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [plain(v) for v in value]
    if hasattr(value, "value") and not isinstance(value, (int, float, str, bool)):
        return plain(value.value)
    if isinstance(value, (int, float, str, bool)) or value is None:
        return value
    if hasattr(value, "__dict__"):
        return {k: plain(v) for k, v in vars(value).items() if not k.startswith("_")}
    return str(value)


async def main(host, port, username, password):
    from asusrouter import AsusData, AsusRouter

    router = AsusRouter(hostname=host, username=username, password=password, port=int(port), use_ssl=False)
    result = {}
    try:
        result["connected"] = await router.async_connect()
        identity = router._identity  # what async_connect read from the nvram hooks
        result["identity"] = {
            "model": getattr(identity, "model", None),
            "firmware": str(getattr(identity, "firmware", None)),
            "mac": getattr(identity, "mac", None),
            "merlin": getattr(identity, "merlin", None),
        }
        network = await router.async_get_data(AsusData.NETWORK)
        result["network"] = plain(network)
        result["cpu"] = plain(await router.async_get_data(AsusData.CPU))
        result["ram"] = plain(await router.async_get_data(AsusData.RAM))
        clients = await router.async_get_data(AsusData.CLIENTS)
        result["clients"] = {
            mac: {
                "online": plain(getattr(getattr(c, "state", None), "value", getattr(c, "state", None))),
                "ip": getattr(getattr(c, "connection", None), "ip_address", None),
                "name": getattr(getattr(c, "description", None), "name", None),
            }
            for mac, c in (clients or {}).items()
        }
        await asyncio.sleep(6)  # past the library's 5 s cache
        result["network_again"] = plain(await router.async_get_data(AsusData.NETWORK))
        result["disconnected"] = await router.async_disconnect()
    except Exception as exc:  # noqa: BLE001 - the report is the point
        result["error"] = f"{type(exc).__name__}: {exc}"
    print(json.dumps(result, default=str))


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:5]))
