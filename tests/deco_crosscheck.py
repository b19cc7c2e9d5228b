"""Drives the real tplinkrouterc6u TPLinkDecoClient against the Deco emulator.

Run by tests/deco_crosscheck.rs inside a venv with tplinkrouterc6u==5.37.0 and pycryptodome.
Usage: deco_crosscheck.py <url> <owner password>
Prints one JSON object with everything the client returned.
"""
import json
import sys

from tplinkrouterc6u import TPLinkDecoClient


def main() -> None:
    url, password = sys.argv[1], sys.argv[2]
    client = TPLinkDecoClient(url, password, timeout=10)
    client.authorize()
    firmware = client.get_firmware()
    status = client.get_status()
    ipv4 = client.get_ipv4_status()
    nodes = client.get_mesh_nodes()
    client.logout()
    print(json.dumps({
        "firmware": {
            "hardware": firmware.hardware_version,
            "model": firmware.model,
            "firmware": firmware.firmware_version,
        },
        "status": {
            "wan_mac": status.wan_macaddr,
            "lan_mac": status.lan_macaddr,
            "wan_ip": status.wan_ipv4_addr,
            "lan_ip": status.lan_ipv4_addr,
            "gateway": status.wan_ipv4_gateway,
            "conn_type": status.conn_type,
            "cpu": status.cpu_usage,
            "mem": status.mem_usage,
            "clients_total": status.clients_total,
            "wifi_clients": status.wifi_clients_total,
            "wired": status.wired_total,
            "guest": status.guest_clients_total,
            "iot": status.iot_clients_total,
            "wifi_2g_enable": status.wifi_2g_enable,
            "guest_2g_enable": status.guest_2g_enable,
        },
        "devices": [
            {
                "mac": d.macaddr,
                "ip": d.ipaddr,
                "hostname": d.hostname,
                "type": d.type.name,
                "down_speed": d.down_speed,
                "up_speed": d.up_speed,
            }
            for d in status.devices
        ],
        "ipv4": {
            "wan_mac": ipv4.wan_macaddr,
            "wan_ip": ipv4.wan_ipv4_ipaddr,
            "conn_type": ipv4.wan_ipv4_conntype,
        },
        "nodes": [
            {
                "mac": n.macaddr,
                "ip": n.ipaddr,
                "name": n.name,
                "role": n.role,
                "model": n.model,
                "firmware": n.firmware_version,
                "parent": n.parent_macaddr,
                "group_status": n.group_status,
                "main": n.is_main_router,
            }
            for n in nodes
        ],
    }))


if __name__ == "__main__":
    main()
