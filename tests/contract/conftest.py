"""Fixtures for the contract tests: the document, its validators, the official schemas."""

from __future__ import annotations

from typing import Any

import pytest

from proxy.contract.document import load_document
from proxy.contract.official import official_validator
from proxy.contract.validation import RequestValidator, ResponseValidator


@pytest.fixture(scope="session")
def doc() -> dict[str, Any]:
    return load_document()


@pytest.fixture(scope="session")
def request_validator(doc) -> RequestValidator:
    return RequestValidator(doc)


@pytest.fixture(scope="session")
def response_validator(doc) -> ResponseValidator:
    return ResponseValidator(doc)


@pytest.fixture(scope="session")
def official_request_validator():
    return official_validator("CreateChatCompletionRequest", "strict")
