"""Provider credentials: from the environment locally, from one Secrets Manager JSON secret per
provider on AWS; a provider with none gets an empty mapping, and a secret value is never logged."""
from __future__ import annotations

import logging

import pytest

from chalicelib.adapters.provider_credentials import ProviderCredentials, secret_name
from chalicelib.config import ConfigError, load_settings
from tests.fake_applications import InMemorySecretStore


def test_locally_each_key_is_a_variable_named_after_the_provider():
    environ = {
        "DISPATCH_WHATSAPP_ACCESS_TOKEN": "EAAG",
        "DISPATCH_WHATSAPP_APP_SECRET": "s3cret",
        "DISPATCH_WHATSAPP_EMPTY": "",
        "DISPATCH_VIBER_AUTH_TOKEN": "other provider",
        "WHATSAPP_ACCESS_TOKEN": "not ours",
    }
    credentials = ProviderCredentials("env", InMemorySecretStore(), "dispatch", environ)
    assert credentials.get("whatsapp") == {"access_token": "EAAG", "app_secret": "s3cret"}
    assert credentials.get("aws_sms") == {}


def test_on_aws_a_provider_is_one_json_secret_under_the_prefix():
    secrets = InMemorySecretStore({"dispatch-prod/providers/viber": '{"Auth_Token": "abc", "n": 5}'})
    credentials = ProviderCredentials("secretsmanager", secrets, "dispatch-prod", {})
    assert secret_name("dispatch-prod", "viber") == "dispatch-prod/providers/viber"
    assert credentials.get("viber") == {"auth_token": "abc", "n": "5"}
    assert credentials.get("whatsapp") == {}  # no secret: the provider refuses its webhooks


def test_a_secret_that_is_not_a_json_object_is_an_error_that_never_shows_the_value(caplog):
    secrets = InMemorySecretStore({"p/providers/viber": "abc-plain-token"})
    caplog.set_level(logging.ERROR)
    assert ProviderCredentials("secretsmanager", secrets, "p", {}).get("viber") == {}
    assert "p/providers/viber" in caplog.text or any(
        getattr(r, "secret", None) == "p/providers/viber" for r in caplog.records
    )
    assert "abc-plain-token" not in caplog.text


def test_the_source_is_a_setting_with_two_values():
    assert load_settings({"DISPATCH_TABLE": "t"}).provider_credentials == "secretsmanager"
    assert load_settings({"DISPATCH_TABLE": "t", "DISPATCH_PROVIDER_CREDENTIALS": "env"}).provider_credentials == "env"
    with pytest.raises(ConfigError, match="DISPATCH_PROVIDER_CREDENTIALS"):
        load_settings({"DISPATCH_TABLE": "t", "DISPATCH_PROVIDER_CREDENTIALS": "ssm"})
    with pytest.raises(ValueError):
        ProviderCredentials("ssm", InMemorySecretStore(), "p", {})
