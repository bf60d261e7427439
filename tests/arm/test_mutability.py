"""Create-only fields, found from the wire models' marks: a PUT that leaves one's object out keeps it, one that
changes it is refused, and fields never returned are left to their type."""

from __future__ import annotations

import pytest

from batchpoint.arm.errors import ArmError
from batchpoint.arm.mutability import CreateOnlyFields
from batchpoint.arm.wire import CreateOnly, WireModel


class Secrets(WireModel):
    key: str | None = CreateOnly(default=None)


class Size(WireModel):
    count: int = CreateOnly(default=1)
    label: str | None = None


class Properties(WireModel):
    size: Size | None = None
    sizes: list[Size] | None = None
    secrets: Secrets | None = CreateOnly(readable=False, default=None)
    description: str | None = None


FIELDS = CreateOnlyFields.of(Properties | None)


def test_the_create_only_fields_are_those_the_resource_returns_outside_lists() -> None:
    assert FIELDS.paths == (("size", "count"),)


def test_a_put_that_leaves_an_object_out_keeps_the_stored_one() -> None:
    before = {"size": {"count": 3, "label": "a"}, "description": "x"}
    assert FIELDS.keep({"description": "y"}, before) == {"description": "y", "size": {"count": 3, "label": "a"}}
    assert FIELDS.keep({"size": {"count": 3}}, before) == {"size": {"count": 3}}


def test_a_change_is_refused_with_the_field_and_its_value() -> None:
    FIELDS.check({"size": {"count": 3, "label": "a"}}, {"size": {"count": 3, "label": "b"}})
    with pytest.raises(ArmError) as refused:
        FIELDS.check({"size": {"count": 3}}, {"size": {"count": 4}})
    assert refused.value.status == 400
    assert "'properties.size.count' can only be set when the resource is created (it is 3)" in refused.value.message


class Bag(WireModel):
    count: int = CreateOnly(default=1)
    extra: dict[str, str] | None = CreateOnly(default=None)
    label: str | None = None


class BagProperties(WireModel):
    bag: Bag | None = None


BAG = CreateOnlyFields.of(BagProperties | None)


def test_a_put_that_leaves_a_nested_field_out_keeps_its_stored_value() -> None:
    before = {"bag": {"count": 3, "extra": {"a": "b"}, "label": "x"}}
    kept = BAG.keep({"bag": {"count": 3, "label": "y"}}, before)
    assert kept == {"bag": {"count": 3, "extra": {"a": "b"}, "label": "y"}}
    BAG.check(before, kept)


def test_an_empty_object_is_the_same_as_none() -> None:
    assert BAG.keep({"bag": {"count": 1, "extra": {}}}, {"bag": {"count": 1, "extra": {"a": "b"}}}) == {
        "bag": {"count": 1, "extra": {"a": "b"}}
    }
    BAG.check({"bag": {"count": 1, "extra": {}}}, {"bag": {"count": 1}})
    BAG.check({"bag": {"count": 1}}, {"bag": {"count": 1, "extra": {}}})
    with pytest.raises(ArmError):
        BAG.check({"bag": {"count": 1, "extra": {}}}, {"bag": {"count": 1, "extra": {"a": "b"}}})


def test_a_nested_field_left_out_is_not_its_default() -> None:
    sent = BagProperties.model_validate({"bag": {"label": "y"}})
    requested = BAG.unsent(sent, sent.model_dump(mode="json"))
    assert requested == {"bag": {"label": "y"}}
    assert BAG.keep(requested, {"bag": {"count": 3}}) == {"bag": {"count": 3, "label": "y"}}
    explicit = BagProperties.model_validate({"bag": {"count": 1}})
    assert BAG.unsent(explicit, explicit.model_dump(mode="json")) == {"bag": {"count": 1, "label": None}}


class Code(WireModel):
    codeId: str | None = CreateOnly(default=None)
    script: str = CreateOnly(default="score.py")


class CodeProperties(WireModel):
    code: Code | None = None


CODE = CreateOnlyFields.of(CodeProperties | None)
CODE_ID = (
    "/subscriptions/0/resourceGroups/Local/providers/Microsoft.MachineLearningServices/workspaces/w/codes/c/versions/1"
)


def test_arm_ids_are_the_same_in_any_casing_and_other_values_are_not() -> None:
    before = {"code": {"codeId": CODE_ID, "script": "score.py"}}
    for spelling in (CODE_ID.lower(), CODE_ID.replace("/Local/", "/LOCAL/")):
        kept = CODE.keep({"code": {"codeId": spelling, "script": "score.py"}}, before)
        assert kept == before  # the stored spelling stays, so re-sending it changes nothing
        CODE.check(before, {"code": {"codeId": spelling, "script": "score.py"}})
    for changed in (
        {"codeId": CODE_ID.replace("/1", "/2"), "script": "score.py"},
        {"codeId": CODE_ID, "script": "Score.py"},
    ):
        with pytest.raises(ArmError):
            CODE.check(before, {"code": changed})
