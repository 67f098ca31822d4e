"""Notification routing, the rules file and webhook signatures: the pure parts."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import timedelta
from pathlib import Path

import pytest

from alerts.notify import NotificationEvaluator
from core.notifications import (
    Recipient,
    Rule,
    RulesError,
    check_audience,
    default_rules,
    delivery_key,
    parse_rules,
    retry_delay,
    route,
    sign,
    team_audience,
    verify,
)
from placewatch.settings import Settings

SECRET = "a-webhook-secret-of-some-length"


def rules_text(*entries: object) -> str:
    return json.dumps(list(entries), indent=2)


def test_a_rules_file_with_an_email_and_a_webhook_whose_secret_is_in_the_environment():
    text = """[
  {"audience": "team:highways", "kinds": ["gritting.*"], "channel": "email", "to": "duty@council.example"},
  {
    "audience": "patch:*",
    "kinds": ["damp.overdue"],
    "channel": "webhook",
    "to": "https://housing.example/hooks/placewatch",
    "secret": "env:HOUSING_HOOK_SECRET",
    "note": "the housing case system"
  }
]"""
    email, hook = parse_rules(text, env={"HOUSING_HOOK_SECRET": SECRET})
    assert (email.audience, email.kinds, email.channel, email.to) == (
        "team:highways",
        ("gritting.*",),
        "email",
        "duty@council.example",
    )
    assert (email.source, email.line, email.secret) == ("file entry 1", 2, None)
    assert (hook.source, hook.line, hook.secret) == ("file entry 2", 3, SECRET)
    assert SECRET not in repr(hook) and hook.view()["signed"] is True


def test_an_empty_file_means_no_rules():
    assert parse_rules("[]", env={}) == []


@pytest.mark.parametrize(
    ("entry", "reason"),
    [
        ({"audience": "team:highways", "kinds": ["gritting.*"], "channel": "sms", "to": "x"}, "channel 'sms'"),
        ({"audience": "team:highways", "kind": ["gritting.*"], "channel": "email", "to": "a@b.example"}, "kind"),
        ({"audience": "highways", "kinds": ["gritting.*"], "channel": "email", "to": "a@b.example"}, "audience"),
        ({"audience": "team:highways", "kinds": [], "channel": "email", "to": "a@b.example"}, "kinds"),
        ({"audience": "team:highways", "kinds": ["Gritting"], "channel": "email", "to": "a@b.example"}, "kind"),
        ({"audience": "team:highways", "kinds": ["*"], "channel": "email", "to": "not an address"}, "email address"),
        (
            {"audience": "team:highways", "kinds": ["*"], "channel": "email", "to": "a@b.example", "secret": SECRET},
            "only for webhooks",
        ),
        ({"audience": "team:highways", "kinds": ["*"], "channel": "webhook", "to": "https://h.example/"}, "secret"),
        (
            {
                "audience": "team:highways",
                "kinds": ["*"],
                "channel": "webhook",
                "to": "ftp://h.example/",
                "secret": SECRET,
            },
            "http",
        ),
        (
            {
                "audience": "team:highways",
                "kinds": ["*"],
                "channel": "webhook",
                "to": "https://h.example/",
                "secret": "short",
            },
            "at least 16",
        ),
        (
            {
                "audience": "team:highways",
                "kinds": ["*"],
                "channel": "webhook",
                "to": "https://h.example/",
                "secret": "env:NOT_SET_ANYWHERE",
            },
            "NOT_SET_ANYWHERE",
        ),
        ("just a string", "JSON object"),
    ],
)
def test_a_bad_entry_is_refused_naming_its_line_entry_and_reason(entry, reason):
    good = {"audience": "user:alice", "kinds": ["*"], "channel": "email", "to": "alice@council.example"}
    text = rules_text(good, entry)
    with pytest.raises(RulesError) as err:
        parse_rules(text, env={})
    second_entry_line = next(n for n, line in enumerate(text.splitlines(), 1) if line.startswith("  }")) + 1
    assert err.value.entry == 2
    assert err.value.line == second_entry_line
    assert reason in err.value.reason
    assert str(err.value).startswith(f"line {err.value.line}, entry 2: ")


def test_bad_json_is_refused_with_its_line():
    with pytest.raises(RulesError) as err:
        parse_rules('[\n  {"audience": "team:highways",\n  "kinds": ["gritting.*"]\n', env={})
    assert err.value.line is not None and err.value.line >= 3
    assert "not valid JSON" in err.value.reason


def test_the_file_must_be_an_array():
    with pytest.raises(RulesError, match="JSON array"):
        parse_rules('{"rules": []}', env={})


def test_one_webhook_url_cannot_have_two_secrets():
    hook = {"audience": "team:highways", "kinds": ["*"], "channel": "webhook", "to": "https://h.example/"}
    with pytest.raises(RulesError, match="different secret in entry 1") as err:
        parse_rules(rules_text({**hook, "secret": SECRET}, {**hook, "secret": SECRET + "x"}), env={})
    assert err.value.entry == 2
    assert len(parse_rules(rules_text({**hook, "secret": SECRET}, {**hook, "secret": SECRET}), env={})) == 2


def test_a_bad_rules_file_stops_the_dispatcher_at_start_up_with_the_file_line_and_reason(tmp_path):
    path = tmp_path / "rules.json"
    path.write_text(rules_text({"audience": "team:highways", "kinds": ["*"], "channel": "pager", "to": "x"}))
    with pytest.raises(ValueError) as err:
        NotificationEvaluator(Settings(notifications_file=path))
    assert str(err.value) == (
        f"PLACEWATCH_NOTIFICATIONS_FILE {path}: line 2, entry 1: channel 'pager' must be one of email, webhook"
    )
    with pytest.raises(ValueError, match="cannot read it"):
        NotificationEvaluator(Settings(notifications_file=tmp_path / "missing.json"))


HIGHWAYS = Recipient(name="hw", role="highways", email="hw@council.example")
OFFICER_A = Recipient(name="oa", role="officer", email="oa@council.example", patch="A")
OFFICER_B = Recipient(name="ob", role="officer", email="ob@council.example", patch="B")
TENANT_1 = Recipient(name="t1", role="tenant", email="t1@mail.example", home_id="H1")
TENANT_2 = Recipient(name="t2", role="tenant", email="t2@mail.example", home_id="H2")
ADMIN = Recipient(name="ad", role="admin", email="ad@council.example")
EVERYONE = [HIGHWAYS, OFFICER_A, OFFICER_B, TENANT_1, TENANT_2, ADMIN]


def routed(kind: str, audience: list[str], *extra: Rule) -> set[str]:
    rules = [*extra, *(r for p in EVERYONE for r in default_rules(p))]
    return {t.to for t in route(kind, audience, rules)}


def test_the_duty_officer_gets_gritting_decisions_and_escalations_and_highways_device_problems():
    assert routed("gritting.decision", ["team:highways"]) == {"hw@council.example"}
    assert routed("gritting.escalation", ["team:highways"]) == {"hw@council.example"}
    assert routed("device.problem", ["team:highways"]) == {"hw@council.example"}


def test_an_officer_gets_the_cases_of_their_patch_only():
    assert routed("damp.case", ["patch:A", "home:H1"]) == {"oa@council.example", "t1@mail.example"}
    assert routed("damp.overdue", ["patch:B"]) == {"ob@council.example"}
    assert routed("device.problem", ["patch:A"]) == {"oa@council.example"}


def test_a_tenant_gets_advice_about_their_own_home_only():
    assert routed("damp.advice", ["home:H2"]) == {"t2@mail.example"}
    assert routed("damp.overdue", ["patch:A", "home:H1"]) == {"oa@council.example"}  # the officer's clock


def test_admins_get_no_domain_events_but_do_get_failure_summaries_and_anyone_gets_what_is_sent_to_them():
    assert routed("gritting.decision", ["team:highways"]) == {"hw@council.example"}
    assert routed("notify.failure", ["role:admin"]) == {"ad@council.example"}
    assert routed("notify.test", ["user:t1"]) == {"t1@mail.example"}


def test_users_without_scope_or_a_plain_address_get_no_defaults():
    assert [r.audience for r in default_rules(Recipient(name="o", role="officer", email="o@c.example"))] == ["user:o"]
    assert default_rules(Recipient(name="x", role="tenant", email="x@c.example\nBcc: y@c.example", home_id="H")) == []


def test_a_file_rule_and_a_user_default_to_the_same_address_make_one_delivery():
    dup = Rule(
        audience="team:*", kinds=("gritting.*",), channel="email", to="HW@council.example", source="file entry 1"
    )
    targets = route("gritting.decision", ["team:highways"], [dup, *default_rules(HIGHWAYS)])
    assert [(t.to, t.source) for t in targets] == [("HW@council.example", "file entry 1")]


def test_team_audiences_from_device_owners():
    assert team_audience("highways") == "team:highways"
    assert team_audience("patch:north") == "patch:north"
    assert team_audience("admin") == "team:admin"


def test_audience_keys_are_checked():
    assert check_audience(["team:highways", "team:highways", "home:H 1".replace(" ", "")]) == [
        "team:highways",
        "home:H1",
    ]
    for bad in ([], "team:highways", ["highways"], ["patch:*"], ["street:x"]):
        with pytest.raises(ValueError):
            check_audience(bad)


def test_the_webhook_signature_is_hmac_sha256_of_timestamp_dot_body():
    body = b'{"event":"gritting.decision"}'
    expected = hmac.new(SECRET.encode(), b"1767225600." + body, hashlib.sha256).hexdigest()
    assert sign(SECRET, "1767225600", body) == "sha256=" + expected
    # pinned (openssl: printf '0.{}' | openssl dgst -sha256 -hmac kkkkkkkkkkkkkkkk)
    assert sign("k" * 16, "0", b"{}") == "sha256=543c08f8232c69490086e17ba74b08edebe38a51eb0661b9fa2672109e62daf2"
    assert verify(SECRET, "1767225600", body, "sha256=" + expected)
    assert not verify(SECRET, "1767225601", body, "sha256=" + expected)
    assert not verify(SECRET, "1767225600", body + b" ", "sha256=" + expected)
    assert not verify("another-secret-entirely", "1767225600", body, "sha256=" + expected)


def test_retries_back_off_30s_2min_10min_30min_then_every_2h():
    assert [retry_delay(n) for n in range(1, 8)] == [
        timedelta(seconds=30),
        timedelta(minutes=2),
        timedelta(minutes=10),
        timedelta(minutes=30),
        timedelta(hours=2),
        timedelta(hours=2),
        timedelta(hours=2),
    ]


def test_a_deliverys_idempotency_key_is_stable_and_differs_per_target():
    a = delivery_key("gritting.decision:42", "email", "hw@council.example")
    assert a == delivery_key("gritting.decision:42", "email", "hw@council.example")
    assert a != delivery_key("gritting.decision:42", "email", "oa@council.example")
    assert a != delivery_key("gritting.decision:43", "email", "hw@council.example")
    assert a.startswith("pw-") and len(a) == 35


def test_the_readme_example_rules_file_is_accepted():
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme[readme.index("## Notifications") :]
    block = section[section.index("\n    [") : section.index("\n    ]") + 6]
    text = "\n".join(line[4:] for line in block.strip("\n").splitlines())
    rules = parse_rules(text, env={"PAGER_HOOK_SECRET": SECRET})
    assert [r.channel for r in rules] == ["email", "webhook", "email", "email"]


def test_audience_ids_may_hold_spaces_as_council_registries_do() -> None:
    from core.notifications import check_audience

    assert check_audience(["patch:Knowle West", "home:Flat 3, 12 High St"]) == [
        "patch:Knowle West",
        "home:Flat 3, 12 High St",
    ]
