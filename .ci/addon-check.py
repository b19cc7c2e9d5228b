"""Validates the add-on the way the Supervisor does, with the Supervisor's own code.

    SUPERVISOR_SRC=<a checkout of home-assistant/supervisor> python3 .ci/addon-check.py \
        ha-addon [options.json ...]

Imports the Supervisor's add-on schema (SCHEMA_ADDON_CONFIG, or SCHEMA_APP_CONFIG since the
2026.06 "apps" rename), its translations schema and its options validator (AddonOptions /
AppOptions), then checks config.yaml, translations/*.yaml, and each options.json given (one
ending in `.bad.json` must be refused). Needs the Supervisor's Python (3.13 for 2026.02.x)
with its requirements; .ci/addon-e2e prepares that in a venv when the sources are present.
Also checks what the store's scan (`**/config.*`) would find: exactly one add-on.
"""

import json
import logging
import pathlib
import sys

import yaml


def main() -> int:
    # The Supervisor's advisories (deprecated keys, arches) are log warnings: show them.
    logging.basicConfig(level=logging.WARNING, format="addon-check: supervisor says: %(message)s")
    addon = pathlib.Path(sys.argv[1])
    repo = addon.resolve().parent
    try:
        from supervisor.addons import options as opts  # 2026.05 and before
        from supervisor.addons.validate import SCHEMA_ADDON_CONFIG as schema
        Options = opts.AddonOptions
    except ImportError:
        from supervisor.apps import options as opts
        from supervisor.apps.validate import SCHEMA_APP_CONFIG as schema
        Options = opts.AppOptions
    from supervisor.store.validate import SCHEMA_REPOSITORY_CONFIG

    raw = yaml.safe_load((addon / "config.yaml").read_text())
    config = schema(raw)
    print(f"addon-check: config.yaml valid: {config['slug']} {config['version']} {config['arch']}")
    SCHEMA_REPOSITORY_CONFIG(yaml.safe_load((repo / "repository.yaml").read_text()))
    print("addon-check: repository.yaml valid")
    try:
        from supervisor.addons.validate import SCHEMA_ADDON_TRANSLATIONS as translations
    except ImportError:
        from supervisor.apps.validate import SCHEMA_APP_TRANSLATIONS as translations
    for path in sorted((addon / "translations").glob("*.yaml")):
        translations(yaml.safe_load(path.read_text()))
        print(f"addon-check: {path.name} valid")
    # The default options must pass the schema, as the Supervisor checks them on install.
    Options(None, config["schema"], config["name"], config["slug"])(config["options"])
    print("addon-check: the default options pass the schema")
    for name in sys.argv[2:]:
        data = json.loads(pathlib.Path(name).read_text())
        validator = Options(None, config["schema"], config["name"], config["slug"])
        if name.endswith(".bad.json"):
            try:
                validator(data)
            except Exception as err:  # vol.Invalid, as the Supervisor reports it
                print(f"addon-check: {name} refused as expected: {str(err)[:120]}")
                continue
            print(f"addon-check: {name} should have been refused", file=sys.stderr)
            return 1
        validator(data)
        print(f"addon-check: {name} passes the schema")
    # The store scans every `config.{json,yaml,yml}` outside dot directories and `rootfs`.
    found = [
        p for p in repo.glob("**/config.*")
        if not any(part.startswith(".") or part in ("rootfs", "target") for part in p.relative_to(repo).parts)
        and p.suffix in (".json", ".yaml", ".yml")
    ]
    if [p.resolve() for p in found] != [(addon / "config.yaml").resolve()]:
        print(f"addon-check: the store would read these as add-ons: {found}", file=sys.stderr)
        return 1
    print("addon-check: the store's scan finds exactly this add-on")
    return 0


if __name__ == "__main__":
    sys.exit(main())
