"""The operator's pod identity defaults: checked at start-up, with the offending key named."""
import pytest

from modelops_operator import podsecurity
from modelops_operator.main import parse_args


def test_empty_means_the_images_user_and_braces_leave_the_ids_to_the_platform():
    assert podsecurity.parse_defaults("") == podsecurity.DEFAULTS
    assert podsecurity.parse_defaults("{}") == {}
    assert podsecurity.pod_security_context({}, None) == podsecurity.RESTRICTED


@pytest.mark.parametrize("text, named", [
    ('{"runAsUser": 0}', "--pod-security-context.runAsUser"),
    ('{"fsGroup": "1000"}', "--pod-security-context.fsGroup"),
    ('{"fsGroupChangePolicy": "Never"}', "--pod-security-context.fsGroupChangePolicy"),
    ('{"runAsNonRoot": false}', "--pod-security-context.runAsNonRoot"),
    ('{"runAsUser": 1000', "--pod-security-context: not JSON"),
])
def test_bad_defaults_are_refused_naming_the_key(text, named):
    with pytest.raises(podsecurity.PodSecurityError, match=named.replace(".", r"\.")):
        podsecurity.parse_defaults(text)


def test_the_operator_refuses_to_start_with_bad_defaults(capsys, monkeypatch):
    monkeypatch.setenv("MODELOPS_POD_SECURITY_CONTEXT", '{"runAsUser": 0}')
    with pytest.raises(SystemExit):
        parse_args([])
    assert "--pod-security-context.runAsUser" in capsys.readouterr().err
    monkeypatch.setenv("MODELOPS_POD_SECURITY_CONTEXT", '{"runAsUser": 1001}')
    assert parse_args([]).pod_security_context == {"runAsUser": 1001}
