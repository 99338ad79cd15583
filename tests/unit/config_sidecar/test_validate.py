"""Validation: parse by extension, JSON Schema for the app config, errors with file, line and reason."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from config_sidecar.validate import ConfigError, SchemaLoadError, TargetSchema, Validator, load_schema, parse_file

SCHEMA = {
    "type": "object",
    "required": ["greeting"],
    "additionalProperties": True,
    "properties": {
        "greeting": {"type": "string"},
        "password": {"type": "integer"},
        "chaos": {
            "type": "object",
            "properties": {
                "latency_ms": {"type": "integer", "minimum": 0},
                "error_rate": {"type": "number", "minimum": 0, "maximum": 1},
            },
        },
        "features": {"type": "object"},
    },
}


@pytest.fixture
def schema_validator(tmp_path: Path) -> Validator:
    path = tmp_path / "schema.json"
    path.write_text(json.dumps(SCHEMA))
    return Validator({"app.yaml": TargetSchema(load_schema(path))})


@pytest.mark.parametrize(
    ("name", "content", "line", "reason_part"),
    [
        ("app.yaml", b"a: 1\nb: [1, 2\nc: 3\n", 3, "flow sequence"),
        ("app.yml", b"a: 1\n  b: 2\n", 2, "mapping values are not allowed"),
        ("app.yaml", b"a: 1\n\tb: 2\n", 2, "tab"),
        ("settings.json", b'{\n  "a": 1,\n  "b": \n}\n', 4, "Expecting value"),
        ("settings.json", b'{"a": 1,}', 1, "Expecting property name"),
    ],
)
def test_parse_errors_name_file_line_and_reason(name: str, content: bytes, line: int, reason_part: str) -> None:
    error, documents = parse_file(name, content)
    assert documents is None
    assert error is not None
    assert (error.file, error.line) == (name, line)
    assert reason_part in error.reason


def test_other_files_are_opaque_and_multi_document_yaml_parses() -> None:
    assert parse_file("logo.png", b"\x89PNG\x00\xff") == (None, None)
    assert parse_file("notes.txt", b"not: [yaml") == (None, None)
    error, documents = parse_file("many.yaml", b"a: 1\n---\nb: 2\n")
    assert error is None
    assert documents == [{"a": 1}, {"b": 2}]


def test_non_utf8_yaml_is_an_error_not_a_crash() -> None:
    error, _ = parse_file("app.yaml", b"a: \xff\xfe\n")
    assert error is not None
    assert error.file == "app.yaml"


@pytest.mark.parametrize(
    ("name", "content", "reason_part"),
    [
        ("app.yaml", b"greeting: hi\nexpires: 2024-02-30\n", "cannot be built"),
        ("app.yaml", b"password: !!float hunter2\n", "cannot be built"),
        ("app.yaml", b"password: !!int hunter2\n", "cannot be built"),
        ("app.yaml", b"password: !!timestamp hunter2\n", "cannot be built"),
        ("settings.json", b'{"password": ' + b"7" * 5000 + b"}", "cannot be built"),
        ("settings.json", b"[" * 100_000, "nested too deeply"),
    ],
)
def test_values_the_parser_cannot_build_are_errors_that_never_quote_them(
    name: str, content: bytes, reason_part: str
) -> None:
    errors = Validator().validate({name: content})
    assert [(e.file, reason_part in e.reason) for e in errors] == [(name, True)]
    assert "hunter2" not in errors[0].reason
    assert "7777" not in errors[0].reason


def test_valid_set_passes(schema_validator: Validator) -> None:
    files = {"app.yaml": b"greeting: hi\nchaos:\n  latency_ms: 10\n  error_rate: 0.1\n", "x.bin": b"\0"}
    assert schema_validator.validate(files) == []


def test_schema_violation_names_the_line_and_rule_without_the_value(schema_validator: Validator) -> None:
    content = b"greeting: hi\nchaos:\n  latency_ms: 10\n  error_rate: 3.75\n"
    errors = schema_validator.validate({"app.yaml": content})
    assert errors == [ConfigError("app.yaml", 4, "chaos.error_rate: violates maximum 1")]
    assert "3.75" not in str(errors[0])


def test_schema_type_error_never_quotes_a_secret(schema_validator: Validator) -> None:
    errors = schema_validator.validate({"app.yaml": b"greeting: hi\npassword: hunter2\n"})
    assert len(errors) == 1
    assert errors[0].line == 2
    assert "hunter2" not in str(errors[0])
    assert "password" in errors[0].reason


def test_missing_required_key_points_at_the_document(schema_validator: Validator) -> None:
    errors = schema_validator.validate({"app.yaml": b"# comment\nfeatures: {}\n"})
    assert errors == [ConfigError("app.yaml", 2, "(document): 'greeting' is a required property")]


def test_schema_target_missing_from_the_set_is_an_error(schema_validator: Validator) -> None:
    errors = schema_validator.validate({"other.yaml": b"a: 1\n"})
    assert [(e.file, e.line) for e in errors] == [("app.yaml", None)]


def test_json_target_gets_line_numbers_too(tmp_path: Path) -> None:
    path = tmp_path / "schema.yaml"  # a schema may be written in YAML
    path.write_text("type: object\nproperties:\n  port: {type: integer}\n")
    validator = Validator({"app.json": TargetSchema(load_schema(path))})
    errors = validator.validate({"app.json": b'{\n  "name": "x",\n  "port": "eighty"\n}\n'})
    assert [(e.file, e.line) for e in errors] == [("app.json", 3)]


def test_every_broken_file_is_reported(schema_validator: Validator) -> None:
    errors = schema_validator.validate({"app.yaml": b"greeting: [\n", "b.json": b"{", "c.yaml": b"ok: 1\n"})
    assert sorted(e.file for e in errors) == ["app.yaml", "b.json"]


@pytest.mark.parametrize(
    ("content", "reason_part"),
    [("{not json", "does not parse"), ("[1, 2]", "must be a JSON object"), ('{"type": 12}', "not a valid JSON Schema")],
)
def test_bad_schema_file_is_refused_at_start(tmp_path: Path, content: str, reason_part: str) -> None:
    path = tmp_path / "schema.json"
    path.write_text(content)
    with pytest.raises(SchemaLoadError) as info:
        load_schema(path)
    assert reason_part in info.value.reason


def test_missing_schema_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SchemaLoadError):
        load_schema(tmp_path / "absent.json")


def test_nested_files_are_parsed_by_extension_and_named_by_path() -> None:
    errors = Validator().validate({"mesh/routes.yaml": b"routes: [\n", "mesh/notes.txt": b"{ not parsed"})
    assert [(e.file, e.line) for e in errors] == [("mesh/routes.yaml", 2)]


def test_schema_targets_name_relative_paths_exactly(tmp_path: Path) -> None:
    path = tmp_path / "schema.json"
    path.write_text(json.dumps(SCHEMA))
    # `app.yaml` is the top-level file only: another consumer's conf.d/app.yaml is neither checked nor a stand-in.
    top_only = Validator({"app.yaml": TargetSchema(load_schema(path))})
    assert top_only.validate({"app.yaml": b"greeting: hi\n", "conf.d/app.yaml": b"greeting: 5\n"}) == []
    missing = top_only.validate({"conf.d/app.yaml": b"greeting: hi\n"})
    assert [(e.file, e.line) for e in missing] == [("app.yaml", None)]
    # A nested file is a target when named by its path.
    nested = Validator({"conf.d/app.yaml": TargetSchema(load_schema(path))})
    errors = nested.validate({"conf.d/app.yaml": b"greeting: 5\n"})
    assert [(e.file, e.line) for e in errors] == [("conf.d/app.yaml", 1)]


MESH_SCHEMA = Path(__file__).resolve().parents[3] / "services" / "mesh-proxy" / "schemas" / "mesh-policy.schema.json"
APP_SCHEMA = Path(__file__).resolve().parents[3] / "services" / "config-sidecar" / "schemas" / "app.schema.json"
SHIPPED_CONFIG = Path(__file__).resolve().parents[3] / "config"


@pytest.fixture
def pod_validator() -> Validator:
    """What a pod with the mesh validates: app.yaml with the app's schema, mesh/*.yaml with the mesh policy's."""
    mesh = TargetSchema(load_schema(MESH_SCHEMA))
    return Validator(
        {"app.yaml": TargetSchema(load_schema(APP_SCHEMA)), "mesh/routes.yaml": mesh, "mesh/clusters.yaml": mesh}
    )


def shipped_config() -> dict[str, bytes]:
    return {str(p.relative_to(SHIPPED_CONFIG)): p.read_bytes() for p in SHIPPED_CONFIG.rglob("*") if p.is_file()}


def test_each_target_is_held_to_its_own_schema(pod_validator: Validator) -> None:
    files = shipped_config()
    assert pod_validator.validate(files) == []
    # The mesh schema would refuse app.yaml and the app's would refuse the policy: each file has its own.
    files["mesh/clusters.yaml"] = files["mesh/clusters.yaml"].replace(
        b"max_ejection_percent: 50", b"max_ejection_percent: 150"
    )
    files["app.yaml"] = files["app.yaml"].replace(b"error_rate: 0 ", b"error_rate: 7 ")
    errors = pod_validator.validate(files)
    assert [(e.file, e.reason) for e in errors] == [
        ("app.yaml", "chaos.error_rate: violates maximum 1"),
        ("mesh/clusters.yaml", "resources.0.outlier_detection.max_ejection_percent: violates maximum 100"),
    ]
    assert (
        errors[1].line == files["mesh/clusters.yaml"].decode().splitlines().index("      max_ejection_percent: 150") + 1
    )


@pytest.mark.parametrize(
    ("old", "new", "reason"),
    [
        (b"timeout: 2s", b"timeout: 2 seconds", "route.timeout: violates pattern"),
        (
            b"numerator: 0, denominator: HUNDRED}",
            b"numerator: 150, denominator: HUNDRED}",
            "maximum 100",
        ),
        (b"name: outbound", b"name: web-outbound", "resources.0.name"),
    ],
)
def test_a_bad_mesh_policy_is_refused_by_the_mesh_schema(
    pod_validator: Validator, old: bytes, new: bytes, reason: str
) -> None:
    files = shipped_config()
    assert old in files["mesh/routes.yaml"]
    files["mesh/routes.yaml"] = files["mesh/routes.yaml"].replace(old, new, 1)
    errors = pod_validator.validate(files)
    assert [e.file for e in errors] == ["mesh/routes.yaml"]
    assert reason in errors[0].reason


def test_a_missing_target_names_the_variable_that_gave_it_a_schema(tmp_path: Path) -> None:
    path = tmp_path / "schema.json"
    path.write_text(json.dumps(SCHEMA))
    validator = Validator(
        {
            "app.yaml": TargetSchema(load_schema(path), "CONFIG_SCHEMA_FILE"),
            "mesh/routes.yaml": TargetSchema(load_schema(path)),
        }
    )
    errors = validator.validate({"app.yaml": b"greeting: hi\n"})
    assert [str(e) for e in errors] == ["mesh/routes.yaml: missing, but CONFIG_SCHEMAS gives it a schema"]
    errors = validator.validate({"mesh/routes.yaml": b"greeting: hi\n"})
    assert [str(e) for e in errors] == ["app.yaml: missing, but CONFIG_SCHEMA_FILE gives it a schema"]
