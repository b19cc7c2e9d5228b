"""A stand-in for the Supervisor's API as an add-on sees it, for .ci/addon-e2e: only
GET /services/mqtt, answered as home-assistant/supervisor 2026.02.3 does (api/services.py
get_service_v1 inside api_process's {"result": "ok", "data": ...}), for the add-on's token.
Listens on 127.0.0.1:$B2M_SV_PORT only."""

import json
import os
from http.server import BaseHTTPRequestHandler, HTTPServer

TOKEN = os.environ["B2M_SV_TOKEN"]
SERVICE = {
    "host": "127.0.0.1",
    "port": int(os.environ["B2M_MQTT_PORT"]),
    "ssl": False,
    "protocol": "3.1.1",
    "username": "addons",
    "password": os.environ["B2M_MQTT_PASSWORD"],
    "addon": "core_mosquitto",
}


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server's name)
        if self.headers.get("Authorization") != f"Bearer {TOKEN}":
            self.answer(401, {"result": "error", "message": "Unauthorized"})
        elif self.path == "/services/mqtt":
            self.answer(200, {"result": "ok", "data": SERVICE})
        else:
            self.answer(404, {"result": "error", "message": "Service does not exist"})

    def answer(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, fmt, *args):
        print("fake-supervisor:", fmt % args, flush=True)


HTTPServer(("127.0.0.1", int(os.environ["B2M_SV_PORT"])), Handler).serve_forever()
