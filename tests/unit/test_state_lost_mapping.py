"""A mapping deleted beside a registry that records people is refused (exit 3), or rebuilt on
request with exactly the pairs the registry recorded, saying what it could not recover."""

from __future__ import annotations

from pathlib import Path

import pytest

from kprov.errors import ConfigError, ExitCode
from kprov.state.local import open_local_state
from kprov.state.mapping import MappingEntry, MappingJournal
from kprov.state.registry import RegistrationRecord

A1, A2, A3, A4 = (f"0b8e1f3c-1111-4222-8333-44445555666{n}" for n in range(1, 5))
INSTANCE = "307b072c-6194-46fa-b226-68d40cee521f"


def reg(account: str, external: str, n: int, status: str = "registered") -> RegistrationRecord:
    registration = f"d0effd52-c3a7-4a3c-827a-3ac5eaa049a{n}"
    return RegistrationRecord(account, INSTANCE, "learner", registration, external, "t", status)


def populated(tmp_path: Path, records: list[RegistrationRecord]) -> tuple[Path, Path]:
    state, mapping = tmp_path / "state", tmp_path / "state" / "mapping.csv"
    with open_local_state(state, mapping) as local:
        local.journal.append(
            [MappingEntry(r.external_user_id, r.account_id, "t") for r in records if r.account_id]
        )
        local.registry._append_registrations(records)
    return state, mapping


def test_a_deleted_mapping_beside_registrations_is_refused_naming_what_to_do(
    tmp_path: Path,
) -> None:
    state, mapping = populated(tmp_path, [reg(A1, "s-1", 1), reg(A2, "s-2", 2, "removed")])
    mapping.unlink()
    with pytest.raises(ConfigError) as caught, open_local_state(state, mapping):
        pass
    error = caught.value
    assert error.exit_code == ExitCode.CONFIG
    assert f"the mapping {mapping} is missing, but the registry in {state}" in error.message
    assert "registrations of 2 people" in error.message  # who left (removed) counts too
    assert "Restore the mapping from a backup" in str(error.hint)
    assert "kprov mapping rebuild" in str(error.hint) and "--rebuild-mapping" in str(error.hint)
    assert not mapping.exists()  # refused before anything was written


def test_a_state_with_instances_only_may_start_its_mapping(tmp_path: Path) -> None:
    state, mapping = tmp_path / "state", tmp_path / "state" / "mapping.csv"
    with open_local_state(state, mapping) as local:
        local.registry.record_instance_intent("k", "g", "K")
    with open_local_state(state, mapping) as local:
        assert len(local.mapping) == 0


def test_a_rebuild_recovers_exact_pairs_and_names_what_it_left_out(tmp_path: Path) -> None:
    records = [
        reg(A1, "s-1", 1),
        reg(A1, "s-1", 2, "removed"),  # history of one pair: one row
        reg(A2, "s-left", 3, "removed"),  # no longer in any roster: recovered all the same
        reg(A3, "s-3", 4),
        reg(A4, "s-3", 5),  # one id, two accounts: contradictory, left out
        reg(A4, "", 6),  # no external id: whose account is unknown
        reg("not-an-id", "s-5", 7),
    ]
    state, mapping = populated(tmp_path, records[:1])
    with open_local_state(state, mapping) as local:
        local.registry._append_registrations(records[1:])
    mapping.unlink()
    with open_local_state(state, mapping, rebuild_mapping=True) as local:
        found = local.rebuilt
        assert found is not None
        assert {(e.external_user_id, e.account_id, e.status) for e in found.recovered} == {
            ("s-1", A1, "recovered"),
            ("s-left", A2, "recovered"),
        }
        assert found.conflicts == ["'s-3' has 2 accounts"]
        assert (found.unnamed, found.malformed) == (1, 1)
        assert local.mapping.account_of == {"s-1": A1, "s-left": A2}
        summary = "\n".join(local.warnings)
        assert "2 account(s) recovered exactly" in summary
        assert "accounts never registered in an instance" in summary
    with open_local_state(state, mapping, rebuild_mapping=True) as local:
        assert local.rebuilt is not None and not local.rebuilt.recovered
        assert local.rebuilt.already == 2
    with open_local_state(state, mapping) as local:  # no longer refused
        assert len(local.mapping) == 2


def test_a_rebuild_never_overrides_the_mapping(tmp_path: Path) -> None:
    state, mapping = populated(tmp_path, [reg(A1, "s-1", 1)])
    with open_local_state(state, mapping) as local:
        local.journal.append([MappingEntry("s-9", A2, "t")])
        local.registry._append_registrations([reg(A2, "s-2", 2), reg(A3, "s-1", 3)])
    with open_local_state(state, mapping, rebuild_mapping=True) as local:
        assert local.rebuilt is not None
        assert local.rebuilt.recovered == []
        assert sorted(local.rebuilt.conflicts) == sorted(
            ["'s-1' has 2 accounts", f"account {A2} is mapped to 's-9'"]
        )


def test_a_rebuild_with_nothing_to_recover_still_leaves_a_mapping(tmp_path: Path) -> None:
    state, mapping = populated(tmp_path, [reg(A1, "", 1)])
    mapping.unlink()
    with open_local_state(state, mapping, rebuild_mapping=True) as local:
        assert local.rebuilt is not None and local.rebuilt.unnamed == 1
    assert mapping.read_text().startswith("external_user_id,account_id")
    with open_local_state(state, mapping):
        pass  # the rebuild was asked for once; the next run is not refused again


def test_a_mapping_replaced_by_another_states_is_refused(tmp_path: Path) -> None:
    """Adversary, round three: another profile's mapping copied over this one gives the same
    external ids other accounts; carrying on registered those accounts (other people, where
    ids collide across districts) in this state's classes. Refused, nothing written."""
    state, mapping = populated(tmp_path, [reg(A1, "s-1", 1), reg(A2, "s-2", 2)])
    other, _ = populated(tmp_path / "other", [reg(A3, "s-1", 3), reg(A2.upper(), "s-2", 4)])
    mapping.write_bytes((other / "mapping.csv").read_bytes())
    before = mapping.read_bytes()
    with pytest.raises(ConfigError) as caught, open_local_state(state, mapping):
        pass
    assert caught.value.exit_code == ExitCode.CONFIG
    assert f"gives 1 people other accounts than the registry registered ('s-1': mapping {A3}, " in (
        caught.value.message
    )
    assert "belongs to another state" in caught.value.message
    assert "--rebuild-mapping" in str(caught.value.hint)
    assert mapping.read_bytes() == before


def test_an_emptied_mapping_is_refused_like_a_lost_one(tmp_path: Path) -> None:
    """Truncated, `: >`, a failed copy: a mapping that holds nobody beside a registry with
    people registered is lost as surely as a missing one (exit 3, nothing sent)."""
    state, mapping = populated(tmp_path, [reg(A1, "s-1", 1)])
    for emptied in ("", "external_user_id,account_id,created_at,sis_id,status\n"):
        mapping.write_text(emptied)
        with pytest.raises(ConfigError) as caught, open_local_state(state, mapping):
            pass
        assert "holds nobody, but the registry" in caught.value.message
        assert "--rebuild-mapping" in str(caught.value.hint)
    with open_local_state(state, mapping, rebuild_mapping=True) as local:
        assert local.mapping.account_of == {"s-1": A1}


def test_a_mapping_that_lacks_some_registered_people_is_warned_about(tmp_path: Path) -> None:
    """An older backup restored: the people registered since are named, the run goes on."""
    state, mapping = populated(tmp_path, [reg(A1, "s-1", 1), reg(A2, "s-2", 2)])
    lines = mapping.read_text().splitlines(keepends=True)
    mapping.write_text("".join(line for line in lines if not line.startswith("s-2,")))
    with open_local_state(state, mapping) as local:
        [warning] = local.warnings
    assert "registrations of 1 people the mapping" in warning
    assert "`kprov mapping rebuild`" in warning


def test_a_mapping_named_outside_the_state_can_be_rebuilt_there_on_request(
    tmp_path: Path,
) -> None:
    from kprov.errors import InputError

    state, _mapping = populated(tmp_path, [reg(A1, "s-1", 1)])
    elsewhere = tmp_path / "backup" / "mapping.csv"
    elsewhere.parent.mkdir()
    with (
        pytest.raises(InputError, match="pass --rebuild-mapping"),
        open_local_state(state, elsewhere),
    ):
        pass
    with open_local_state(state, elsewhere, rebuild_mapping=True) as local:
        assert local.mapping.account_of == {"s-1": A1}


def test_an_export_of_a_lost_or_emptied_mapping_is_refused(tmp_path: Path) -> None:
    from kprov.state.rebuild import refuse_an_unreadable_export

    state, mapping = populated(tmp_path, [reg(A1, "s-1", 1)])
    mapping.write_text("")
    with pytest.raises(ConfigError, match="holds nobody, but the registry"):
        refuse_an_unreadable_export(state, MappingJournal(mapping))
    mapping.unlink()
    with pytest.raises(ConfigError, match="is missing, but the registry"):
        refuse_an_unreadable_export(state, MappingJournal(mapping))
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    refuse_an_unreadable_export(fresh, MappingJournal(fresh / "mapping.csv"))  # nothing yet
