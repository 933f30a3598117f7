"""The field table (edge/cdn/config/fields.py) covers every member of the DistributionConfig shapes in botocore's
CloudFront model, and every refused field says what to do instead."""

from __future__ import annotations

from pathlib import Path

import botocore.loaders

from edge.cdn.config.fields import FIELDS, markdown_table

SHAPES = ("DistributionConfig", "Origin", "CacheBehavior", "CustomOriginConfig", "S3OriginConfig", "VpcOriginConfig")


def test_every_field_of_the_model_has_a_treatment() -> None:
    shapes = botocore.loaders.Loader().load_service_model("cloudfront", "service-2")["shapes"]
    missing = [f"{s}.{m}" for s in SHAPES for m in shapes[s]["members"] if f"{s}.{m}" not in FIELDS]
    assert not missing
    default_only = set(shapes["DefaultCacheBehavior"]["members"]) - set(shapes["CacheBehavior"]["members"])
    assert not default_only  # the default behavior's fields are CacheBehavior's (without PathPattern)


def test_refused_fields_name_a_next_step() -> None:
    assert all(t.next_step for t in FIELDS.values() if t.kind == "refused")
    assert all(t.text for t in FIELDS.values())


def test_the_readme_carries_the_table() -> None:
    readme = (Path(__file__).resolve().parents[3] / "README.md").read_text()
    assert markdown_table() in readme, "README.md: paste edge.cdn.config.fields.markdown_table() (its field table)"
