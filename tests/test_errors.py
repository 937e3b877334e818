"""errors: every error class a user can catch is exported from ``netdsl`` under a plain name."""
from __future__ import annotations

import inspect

import pytest

import netdsl
from netdsl import errors


def _classes() -> list:
    return [c for _, c in inspect.getmembers(errors, inspect.isclass)
            if issubclass(c, errors.NetdslError) and c.__module__ == errors.__name__]


def test_every_error_class_is_exported():
    assert len(_classes()) >= 8
    for c in _classes():
        assert getattr(netdsl, c.__name__, None) is c, f"netdsl.{c.__name__} is not exported"
        assert not c.__name__.endswith("_"), c.__name__
        assert c.__doc__, c.__name__


def test_attribute_errors_are_attr_error():
    net = netdsl.Network("n")
    x = net.input("x", (1, 2, 4, 4))
    with pytest.raises(netdsl.AttrError, match="kernel"):
        net.apply("max_pool", [x], kernel="three")
    with pytest.raises(netdsl.NetdslError):
        net.apply("max_pool", [x], kernel=(2, 2), bogus=1)
