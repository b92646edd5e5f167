"""The sandbox follows the reference: permissions, limits, errors, persistence, faults."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests

from kprov.api.client import KnewtonClient
from kprov.api.errors import PermissionDenied, TokenRefused, Unprocessable
from kprov.api.pacing import RetryPolicy
from kprov.credentials import Secret
from kprov.sandbox.faults import FaultInjector, FaultRates
from tests.conftest import SANDBOX_KEY, Sandbox, start_sandbox


def client_for(box: Sandbox) -> KnewtonClient:
    return KnewtonClient(
        base_url=box.base_url,
        api_key=SANDBOX_KEY,
        api_secret=Secret("sandbox-secret"),
        retry=RetryPolicy(base_delay=0.001),
    )


def setup_class(client: KnewtonClient) -> tuple[str, str, str]:
    teacher, student = client.batch_create_accounts(["t1", "s1"])
    instance = client.create_learning_instance(graph_id="gref-1", name="Algebra I")
    assert teacher.account_id and student.account_id
    return teacher.account_id, student.account_id, instance.id


def test_errors_are_json_with_message_and_error_id(sandbox: Sandbox) -> None:
    answer = requests.get(sandbox.base_url + "/accounts/current", timeout=5)
    assert answer.status_code == 401
    assert set(answer.json()) == {"message", "error_id"}


def test_token_endpoint_requires_basic_auth_and_form_encoding(sandbox: Sandbox) -> None:
    url = sandbox.base_url + "/oauth/token"
    assert (
        requests.post(url, data={"grant_type": "client_credentials"}, timeout=5).status_code == 401
    )
    assert (
        requests.post(
            url,
            json={"grant_type": "client_credentials"},
            auth=(SANDBOX_KEY, "sandbox-secret"),
            timeout=5,
        ).status_code
        == 400
    )
    ok = requests.post(
        url,
        data={"grant_type": "client_credentials"},
        auth=(SANDBOX_KEY, "sandbox-secret"),
        timeout=5,
    )
    assert {"access_token", "refresh_token", "expires_in"} <= set(ok.json())


def test_only_the_partner_admin_creates_accounts_and_registers_instructors(
    sandbox: Sandbox,
) -> None:
    client = client_for(sandbox)
    teacher, student, instance = setup_class(client)
    with pytest.raises(PermissionDenied):
        client.create_registration(
            registration_type="instructor",
            account_id=teacher,
            learning_instance_id=instance,
            as_user="s1",
        )
    client.create_registration(
        registration_type="instructor", account_id=teacher, learning_instance_id=instance
    )
    with pytest.raises(PermissionDenied):  # a learner's own token may not register learners
        client.create_registration(
            registration_type="learner",
            account_id=student,
            learning_instance_id=instance,
            as_user="s1",
        )
    client.create_registration(
        registration_type="learner", account_id=student, learning_instance_id=instance, as_user="t1"
    )
    with pytest.raises(Unprocessable, match="already registered"):
        client.create_registration(
            registration_type="learner",
            account_id=student,
            learning_instance_id=instance,
            as_user="t1",
        )


def test_strict_mode_refuses_learner_registration_by_the_admin() -> None:
    box = start_sandbox(strict_learner_permissions=True)
    try:
        client = client_for(box)
        _teacher, student, instance = setup_class(client)
        with pytest.raises(PermissionDenied):
            client.create_registration(
                registration_type="learner", account_id=student, learning_instance_id=instance
            )
    finally:
        box.server.stop()


def test_batch_over_fifty_and_names_with_email_are_refused(sandbox: Sandbox) -> None:
    client = client_for(sandbox)
    token = client.token_for().access_token
    body = {
        "requests": [
            {"method": "post", "relative_url": "/accounts", "body": {"external_user_id": f"u{i}"}}
            for i in range(51)
        ]
    }
    answer = requests.post(
        sandbox.base_url + "/batch",
        json=body,
        timeout=5,
        headers={"Authorization": f"Bearer {token}"},
    )
    assert answer.status_code == 422
    with pytest.raises(Unprocessable, match="email"):
        client.create_learning_instance(graph_id="g", name="Mr Smith smith@school.org")


def test_deleting_an_instance_invalidates_its_registrations(sandbox: Sandbox) -> None:
    client = client_for(sandbox)
    teacher, _student, instance = setup_class(client)
    registration = client.create_registration(
        registration_type="instructor", account_id=teacher, learning_instance_id=instance
    )
    client.delete_learning_instance(instance)
    assert client.get_registration(registration.id).invalid is True


def test_expired_tokens_get_401_and_the_client_recovers() -> None:
    clock = {"now": 1000.0}
    box = start_sandbox(token_ttl=60)
    box.store._clock = lambda: clock["now"]
    try:
        client = client_for(box)
        client.current_account()
        clock["now"] += 3600
        assert client.current_account().external_user_id == "partner-admin"
        assert box.requests()["GET /accounts/current"] == 3  # one 401, then the retry
    finally:
        box.server.stop()


def test_state_survives_a_restart(tmp_path: Path) -> None:
    state = tmp_path / "sandbox.jsonl"
    first = start_sandbox(state_path=state)
    setup_class(client_for(first))
    first.server.stop()
    second = start_sandbox(state_path=state)
    try:
        client = client_for(second)
        assert client.account_id_of("s1")
        with pytest.raises(TokenRefused):
            client.account_id_of("nobody")
    finally:
        second.server.stop()


def test_fault_injection_is_seeded() -> None:
    rates = FaultRates.parse("503=0.2,500after=0.1,drop=0.1,429=0.05")
    injectors = [FaultInjector(rates, seed=5), FaultInjector(rates, seed=5)]
    draws = [[injector.draw() for _ in range(200)] for injector in injectors]
    assert draws[0] == draws[1]
    assert {d.value for d in draws[0]} >= {"none", "503"}
    with pytest.raises(ValueError):
        FaultRates.parse("teapot=0.1")


def test_knewton_limits_answer_429_per_token_without_retry_after() -> None:
    box = start_sandbox(knewton_limits=True)
    try:
        client = client_for(box)
        token = client.token_for().access_token
        headers = {"Authorization": f"Bearer {token}"}
        url = box.base_url + "/accounts/current"
        answers = [requests.get(url, headers=headers, timeout=5) for _ in range(16)]
        assert [a.status_code for a in answers[:15]] == [200] * 15  # every GET: 15 a minute
        refused = answers[15]
        assert refused.status_code == 429
        assert refused.headers["X-Knewton-Rate-Exceeded"] == "token-limited"
        assert "Retry-After" not in refused.headers
        teacher = client.batch_create_accounts(["t-quota"])[0]
        assert teacher.ok  # another endpoint's quota is untouched
    finally:
        box.server.stop()


def test_rate_limit_with_small_burst_answers_whole_second_retry_after() -> None:
    box = start_sandbox(rate_limit=5, burst=3)
    try:
        url = box.base_url + "/accounts/current"
        answers = [requests.get(url, timeout=5) for _ in range(4)]
        assert [a.status_code for a in answers] == [401, 401, 401, 429]  # 3 pass the limiter
        assert answers[3].headers["Retry-After"] == "1"
        assert answers[3].headers["X-Knewton-Rate-Exceeded"] == "ip-limited"
    finally:
        box.server.stop()


@pytest.mark.slow
def test_client_learns_a_small_burst_servers_rate_without_freezing() -> None:
    """Many workers against 200 req/s with burst 5 and Retry-After: 1: every request lands,
    the pacer learned a rate, and refusals stay a small share (not one per request)."""
    from concurrent.futures import ThreadPoolExecutor

    from kprov.api.pacing import Pacer

    box = start_sandbox(rate_limit=200, burst=5)
    try:
        pacer = Pacer(ceiling=8)
        client = KnewtonClient(
            base_url=box.base_url,
            api_key=SANDBOX_KEY,
            api_secret=Secret("sandbox-secret"),
            retry=RetryPolicy(base_delay=0.001),
            pacer=pacer,
            pool_size=8,
        )
        client.token_for()
        with ThreadPoolExecutor(8) as pool:
            accounts = list(pool.map(client.create_account, [f"r-{i}" for i in range(150)]))
        assert len({a.id for a in accounts}) == 150
        assert box.requests()["POST /accounts"] == 150  # a 429 processed nothing
        assert pacer.rate.cuts >= 1
        assert pacer.rate_limited_count < 40
    finally:
        box.server.stop()
